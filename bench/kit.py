"""The in-product kit: its size, the time from its script's load to the first message shown,
and the message endpoint's throughput and p99 against the same server's bare JSON view.

    uv run python bench/kit.py                       # 40 page loads, 8 clients, 3 rounds of 5 s
    uv run python bench/kit.py --loads 100 --duration 10
    uv run python bench/kit.py --size-only           # just the size, nothing started

What it starts (and always stops again): a fresh PostgreSQL database `flywheel_bench_kit`
(dropped and recreated at the start, dropped at the end unless --keep-db), migrated and
catalog_synced, with two organizations (below) and a kit secret for Tracker; gunicorn serving
config.wsgi (--web-workers sync workers, 2 by default) on a free port of 127.0.0.1; the
shared cache on Redis db 11, its keys prefixed by a name unique to the run and deleted at the
end; a small product site (a thread of this process, on another free port: another origin) whose
page mints a token per load and embeds the kit as docs/in-product.md says; headless Chromium
(/usr/bin/chromium, installed with apt-get when missing) driven by Playwright.
Settings: config.settings, FLYWHEEL_ENV=development, DEBUG=0, DEMO_PRODUCT_URL = the product
site (so its origin is Tracker's).

The people:
  due       the admin of "Bench Full", on Tracker Free with all 10 seats taken: the seat-limit
            prompt is due on every page load (until dismissed, which the bench never does)
  nothing   a member of "Bench Calm", on a fresh Tracker Standard trial, who joined today:
            no prompt, not yet asked for the survey, no nudge for a member: nothing is due

1. Size: static/kit/v1/kit.js raw, gzipped (level 9, as a server or CDN would) and what
   Flywheel actually sends (its Content-Encoding, if any). Target: under 15 KB gzipped.
2. Load to first message (the "due" person), --loads page loads, each in a new page:
   from the moment the browser starts fetching kit.js (its Resource Timing entry) to the
   kit's `flywheel:shown` event, read in the page by the product's own script; also from the
   navigation's start, and the kit's three requests (script, token exchange, message) alone.
   "cold" loads run each in a new browser context (empty HTTP cache, a new connection);
   "warm" ones share one context, so kit.js comes from the cache (Cache-Control max-age=300).
3. The message endpoint under load, bench/entitlements.py's method (bench/_harness.py):
   bare (GET /api/v1/ping) and GET /kit/v1/message for each person (a session credential from
   one token exchange, the product's Origin), each in the same rounds, alternating which goes
   first; phase 1 throughput in a closed loop (--clients back to back), phase 2 latency in an
   open loop at --load (0.5) times the slower message endpoint's throughput, latency counted
   from when each request was due. Targets: at least 0.8 of the bare view's throughput, and
   p99 under 10 ms at moderate load.

The load generator and Chromium run on the same machine as the server, so their CPU use is in
every figure. Exit status 0 whether or not the targets are met.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import secrets
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import jwt
from _harness import (
    ROOT,
    Endpoint,
    Process,
    Sample,
    bench_cleanup,
    closed_loop,
    database_recreate,
    free_port,
    gunicorn_argv,
    heading,
    load_average,
    manage,
    merge,
    ms,
    one_request,
    open_loop,
    percentile,
    server_times,
    tool_ensure,
    wait_until,
    web_server_env,
)

DB_NAME = "flywheel_bench_kit"
REDIS_URL = "redis://127.0.0.1:6379/11"
KIT_PATH = ROOT / "static" / "kit" / "v1" / "kit.js"
TARGET_GZIP_BYTES = 15 * 1024
TARGET_RATIO = 0.8
TARGET_P99_MS = 10.0
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")

SETUP = """
from accounts.models import Membership, Organization, User
from billing.services.subscriptions import subscription_start_trial
from catalog.models import Product
from catalog.selectors import edition_get
from inproduct.identity import kit_secret_issue

def organization(name, edition, members):
    admin = User.objects.create_user(email=f"admin@{name.lower().replace(' ', '-')}.example", password=None)
    org = Organization.objects.create(name=name, created_by=admin)
    Membership.objects.create(organization=org, user=admin, role="admin", source="signup")
    users = [User.objects.create_user(email=f"member{i}@{name.lower().replace(' ', '-')}.example") for i in range(members - 1)]
    for user in users:
        Membership.objects.create(organization=org, user=user)
    subscription_start_trial(
        organization=org, edition=edition_get(product_code="tracker", edition_code=edition), actor=admin
    )
    return org, admin, users

full, full_admin, _ = organization("Bench Full", "free", 10)
calm, _, calm_members = organization("Bench Calm", "standard", 2)
secret, value = kit_secret_issue(product=Product.objects.get(code="tracker"))
print("SECRET", secret.key_id, value)
print("DUE", full_admin.public_id, full.public_id)
print("NOTHING", calm_members[0].public_id, calm.public_id)
"""

# The product's page: no inline script, a strict CSP, the kit from Flywheel's origin. The
# product's own script (page.js) reads when the kit showed its message.
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Board - Tracker</title><script type="module" src="/page.js"></script></head>
<body><main><h1>Board</h1><p>Fix the login redirect</p></main>
<flywheel-kit token="{token}"></flywheel-kit>
<script type="module" src="{flywheel}/kit/v1/kit.js"></script>
</body></html>"""

PAGE_JS = """
const done = (outcome) => {
  const entries = performance.getEntriesByType("resource");
  const find = (part) => entries.find((entry) => entry.name.includes(part));
  const script = find("/kit/v1/kit.js"), session = find("/kit/v1/session"), message = find("/kit/v1/message");
  window.kitTiming = {
    outcome, at: performance.now(), scriptStart: script ? script.startTime : NaN,
    script: script ? script.duration : NaN, session: session ? session.duration : NaN,
    message: message ? message.duration : NaN,
  };
};
document.addEventListener("flywheel:shown", () => done("shown"));
document.addEventListener("flywheel:error", (event) => done(`error: ${event.detail.detail}`));
"""


def token_mint(*, key_id: str, secret: str, user: str, organization: str) -> str:
    """A kit token as a product's server mints it (docs/in-product.md, "The token")."""
    now = int(time.time())
    claims = {
        "iss": "tracker",
        "aud": "flywheel-kit",
        "sub": user,
        "org": organization,
        "iat": now,
        "exp": now + 300,
        "jti": secrets.token_urlsafe(24),
    }
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": key_id})


class ProductSite:
    """The product's pages on their own origin; each load of / mints a token for `person`."""

    def __init__(self, port: int, flywheel: str, mint) -> None:
        self.url = f"http://127.0.0.1:{port}"

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                """Quiet: one line per page load would bury the bench's figures."""

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = urlparse(self.path).path
                if path == "/":
                    body, kind = PAGE.format(token=mint(), flywheel=flywheel), "text/html; charset=utf-8"
                elif path == "/page.js":
                    body, kind = PAGE_JS, "text/javascript"
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.send_header(
                    "Content-Security-Policy",
                    f"default-src 'self'; script-src 'self' {flywheel}; connect-src {flywheel}; style-src 'self'",
                )
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def size_report() -> int:
    raw = KIT_PATH.read_bytes()
    gzipped = len(gzip.compress(raw, compresslevel=9))
    print(f"  static/kit/v1/kit.js  {len(raw):,} bytes raw, {gzipped:,} bytes gzipped (level 9)")
    verdict = "MET" if gzipped < TARGET_GZIP_BYTES else "NOT MET"
    print(f"  gzipped {gzipped / 1024:.1f} KB < {TARGET_GZIP_BYTES // 1024} KB: {verdict}")
    return gzipped


def served_size(port: int) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/kit/v1/kit.js", headers={"Accept-Encoding": "gzip"})
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200:
        return f"HTTP {response.status} (is identity's kit.js view merged?)"
    encoding = response.getheader("Content-Encoding") or "none"
    return (
        f"{len(body):,} bytes, Content-Encoding {encoding}, Content-Type {response.getheader('Content-Type')}, "
        f"Cache-Control {response.getheader('Cache-Control')}"
    )


def session_credential(port: int, origin: str, token: str) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(
            "POST",
            "/kit/v1/session",
            body=json.dumps({"token": token}),
            headers={"Content-Type": "application/json", "Origin": origin},
        )
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"the token exchange answered {response.status}: {body[:300]!r}")
    return json.loads(body)["session"]


def page_loads(page_url: str, loads: int, *, cold: bool) -> tuple[list[dict], list[str]]:
    """`loads` loads of the product page; each one's timings, and what went wrong."""
    from playwright.sync_api import sync_playwright

    timings, failures = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            shared = None if cold else browser.new_context(viewport={"width": 1280, "height": 800})
            for _ in range(loads):
                context = shared or browser.new_context(viewport={"width": 1280, "height": 800})
                page = context.new_page()
                try:
                    page.goto(page_url)
                    # Polled with evaluate: wait_for_function compiles its string with eval,
                    # which the page's CSP refuses.
                    deadline = time.monotonic() + 20
                    while (timing := page.evaluate("window.kitTiming")) is None and time.monotonic() < deadline:
                        page.wait_for_timeout(20)
                    if timing is None:
                        raise TimeoutError("no flywheel:shown within 20 s")
                    if timing["outcome"] != "shown":
                        failures.append(timing["outcome"])
                    else:
                        timings.append(timing)
                except Exception as error:  # noqa: BLE001 - a failed load is counted, the bench goes on
                    failures.append(f"{type(error).__name__}: {str(error).splitlines()[0][:200]}")
                finally:
                    page.close()
                    if shared is None:
                        context.close()
            if shared is not None:
                shared.close()
        finally:
            browser.close()
    return timings, failures


def print_loads(label: str, timings: list[dict], failures: list[str], loads: int) -> None:
    def row(name: str, values: list[float]) -> None:
        values = [value for value in values if value == value]  # NaN: an entry the page lacked
        if values:
            print(
                f"      {name:<34} p50 {percentile(values, 50):7.1f} ms   p95 {percentile(values, 95):7.1f} ms"
                f"   max {max(values):7.1f} ms"
            )

    print(f"    {label}: {len(timings)} of {loads} loads showed the message, {len(failures)} failed")
    row("script load -> message shown", [t["at"] - t["scriptStart"] for t in timings])
    row("navigation start -> message shown", [t["at"] for t in timings])
    row("  kit.js request", [t["script"] for t in timings])
    row("  token exchange (POST session)", [t["session"] for t in timings])
    row("  message request (GET message)", [t["message"] for t in timings])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-only", action="store_true", help="print the size and stop")
    parser.add_argument("--loads", type=int, default=40, help="page loads, cold and warm each (40)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads (8)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per endpoint per round (5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per phase (3)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per endpoint (2)")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn sync workers (2)")
    parser.add_argument(
        "--load", type=float, default=0.5, help="phase 2 rate, as a fraction of the slower message endpoint's throughput (0.5)"
    )
    parser.add_argument("--keep-db", action="store_true", help=f"leave the {DB_NAME} database")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="extra setting for the server (repeatable)"
    )
    args = parser.parse_args()

    heading("Flywheel in-product kit bench")
    print("  1. size")
    gzipped = size_report()
    if args.size_only:
        return 0

    extra_env = dict(item.split("=", 1) for item in args.env)
    run = uuid.uuid4().hex[:10]
    port, product_port = free_port(), free_port()
    flywheel, product = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{product_port}"
    scratch = Path(tempfile.mkdtemp(prefix="flywheel-bench-kit-"))
    prefix = f"flywheel-bench-{run}"
    env = web_server_env(db_name=DB_NAME, redis_url=REDIS_URL, prefix=prefix, site_url=flywheel, scratch=scratch)
    env["DEMO_PRODUCT_URL"] = product  # the product site's origin is Tracker's
    env.update(extra_env)
    print(
        f"\n  {args.loads} page loads cold and warm; {args.clients} clients, {args.rounds} rounds x {args.duration:g} s "
        f"per endpoint and phase; gunicorn -w {args.web_workers} (sync), {os.cpu_count()} CPU(s)"
    )
    print(f"  database {DB_NAME}, Redis db 11 prefix {prefix}, Flywheel {flywheel}, product site {product}")
    print(f"  load average at start: {load_average()}")
    if extra_env:
        print(f"  extra settings: {extra_env}")

    web: Process | None = None
    site: ProductSite | None = None
    failures: list[str] = []
    try:
        if not Path(CHROMIUM).exists() and tool_ensure("chromium") is None:
            raise SystemExit(f"Chromium is needed at {CHROMIUM} (CHROMIUM_PATH)")
        print("\n  recreating the database, migrating, syncing the catalog, creating the people ...", flush=True)
        database_recreate(DB_NAME)
        manage(env, "migrate", "--noinput")
        manage(env, "catalog_sync")
        lines = {line.split()[0]: line.split()[1:] for line in manage(env, "shell", "-c", SETUP).splitlines() if line}
        key_id, secret = lines["SECRET"]

        def mint(person: str) -> str:
            user, organization = lines[person]
            return token_mint(key_id=key_id, secret=secret, user=user, organization=organization)

        print("  starting gunicorn and the product site ...", flush=True)
        access_log = scratch / "access.log"
        web = Process("web", gunicorn_argv(port, args.web_workers, access_log), env, scratch)
        bare = Endpoint("bare (/api/v1/ping)", "/api/v1/ping", {}, lambda body: body == b'{"ok": true}')
        wait_until(lambda: one_request(port, bare)[0], timeout=60, what="gunicorn", interval=0.2, processes=[web])
        site = ProductSite(product_port, flywheel, lambda: mint("DUE"))
        print(f"  kit.js as Flywheel serves it: {served_size(port)}")

        heading("2. Script load to first message shown (headless Chromium)")
        for label, cold in (("cold (new context each load)", True), ("warm (one context, kit.js cached)", False)):
            timings, load_failures = page_loads(product + "/", args.loads, cold=cold)
            failures.extend(load_failures)
            print_loads(label, timings, load_failures, args.loads)

        heading("3. The message endpoint against the bare view")
        endpoints = [bare]
        for person, label, check in (
            ("DUE", "message (one due)", lambda body: json.loads(body)["message"] is not None),
            ("NOTHING", "message (nothing due)", lambda body: json.loads(body)["message"] is None),
        ):
            credential = session_credential(port, product, mint(person))
            endpoints.append(
                Endpoint(label, "/kit/v1/message", {"Authorization": f"Bearer {credential}", "Origin": product}, check)
            )
            ok, error = one_request(port, endpoints[-1])
            if not ok:
                raise RuntimeError(f"{label}: {error}")
        print(f"  warming up ({args.warmup:g} s per endpoint) ...", flush=True)
        for endpoint in endpoints:
            closed_loop(port, endpoint, args.clients, args.warmup)
        access_log.write_text("")  # gunicorn appends (O_APPEND): the warm-up is left out

        print("  phase 1: throughput, closed loop ...", flush=True)
        throughput: dict[str, list[Sample]] = {endpoint.label: [] for endpoint in endpoints}
        for round_index in range(args.rounds):
            order = endpoints if round_index % 2 == 0 else endpoints[::-1]
            for endpoint in order:
                throughput[endpoint.label].append(closed_loop(port, endpoint, args.clients, args.duration))
        rps = {label: len(merge(samples).latencies) / merge(samples).elapsed for label, samples in throughput.items()}
        rate = max(1.0, min(rps[endpoint.label] for endpoint in endpoints[1:]) * args.load)

        print(f"  phase 2: latency at {rate:.0f} requests/s, open loop ...", flush=True)
        paced: dict[str, list[Sample]] = {endpoint.label: [] for endpoint in endpoints}
        for round_index in range(args.rounds):
            order = endpoints if round_index % 2 == 0 else endpoints[::-1]
            for endpoint in order:
                paced[endpoint.label].append(open_loop(port, endpoint, args.clients, rate, args.duration))

        print(f"\n  load average at end: {load_average()}")
        print(f"\n  Phase 1: throughput, {args.clients} clients back to back")
        for label, samples in throughput.items():
            sample = merge(samples)
            failures.extend(sample.failures)
            per_round = ", ".join(f"{len(s.latencies) / s.elapsed:.0f}" for s in samples)
            print(
                f"    {label:<24} {rps[label]:8.1f} req/s  (rounds: {per_round})   "
                f"p50 {ms(percentile(sample.latencies, 50))}  p99 {ms(percentile(sample.latencies, 99))}"
                f"   n={len(sample.latencies)}, failed {len(sample.failures)}"
            )
        ratios = {endpoint.label: rps[endpoint.label] / rps[bare.label] for endpoint in endpoints[1:]}
        for label, ratio in ratios.items():
            print(f"    ratio {label} / bare: {ratio:.3f}   (target >= {TARGET_RATIO})")
        print(f"\n  Phase 2: latency at {rate:.0f} req/s ({args.load:g} x the slower message endpoint's throughput)")
        p99 = {}
        for label, samples in paced.items():
            sample = merge(samples)
            failures.extend(sample.failures)
            p99[label] = percentile(sample.latencies, 99)
            print(
                f"    {label:<24} p50 {ms(percentile(sample.latencies, 50))}  p95 {ms(percentile(sample.latencies, 95))}"
                f"  p99 {ms(p99[label])}  max {ms(max(sample.latencies) if sample.latencies else float('nan'))}"
                f"   achieved {len(sample.latencies) / sample.elapsed:.0f} req/s, n={len(sample.latencies)}, "
                f"failed {len(sample.failures)}"
            )
        times = server_times(access_log)
        print("\n  Inside gunicorn (access log, both phases, warm-up left out; both message rows share a path)")
        for path in ("/api/v1/ping", "/kit/v1/message"):
            values = times.get(path, [])
            if values:
                print(f"    {path:<24} p50 {ms(percentile(values, 50))}  p99 {ms(percentile(values, 99))}   n={len(values)}")

        heading("Targets")
        print(f"  kit.js gzipped {gzipped:,} bytes < {TARGET_GZIP_BYTES:,}: {'MET' if gzipped < TARGET_GZIP_BYTES else 'NOT MET'}")
        for label, ratio in ratios.items():
            print(f"  {label}: throughput ratio {ratio:.3f} >= {TARGET_RATIO}: {'MET' if ratio >= TARGET_RATIO else 'NOT MET'}")
            p99_ms = p99[label] * 1000
            verdict = "MET" if p99_ms < TARGET_P99_MS else "NOT MET"
            print(f"  {label}: p99 {p99_ms:.2f} ms < {TARGET_P99_MS:g} ms at {rate:.0f} req/s: {verdict}")
        if failures:
            heading(f"Failures ({len(failures)})")
            for failure in sorted(set(failures))[:20]:
                print(f"  {failure}")
    finally:
        if site is not None:
            site.stop()
        bench_cleanup(
            web=web, show_log=bool(failures), redis_url=REDIS_URL, prefix=prefix, db_name=DB_NAME,
            keep_db=args.keep_db, scratch=scratch,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
