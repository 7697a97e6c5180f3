"""Entitlements API throughput and latency against the same server's simplest JSON view.

    uv run python bench/entitlements.py                     # 8 clients, 3 rounds of 5 s
    uv run python bench/entitlements.py --clients 16 --duration 10
    uv run python bench/entitlements.py --web-workers 3 --env DATABASE_CONN_MAX_AGE=0

What it starts (and always stops again): a fresh PostgreSQL database
`flywheel_bench_entitlements` (dropped and recreated at the start, dropped at the end unless
--keep-db), migrated and catalog_synced, with one organization on a Tracker Standard trial and
one API key; gunicorn serving config.wsgi (--web-workers sync workers, 2 by default) on a free
port of 127.0.0.1; the shared cache on Redis db 11, its keys prefixed by a name unique to the
run and deleted at the end. Settings: config.settings, FLYWHEEL_ENV=development, DEBUG=0.

The two endpoints, in the same NinjaAPI, behind the same middleware, on the same server:
  bare          GET /api/v1/ping          no authentication, returns {"ok": true}
  entitlements  GET /api/v1/entitlements  Bearer API key, the organization's entitlements
The bare view is ninja's simplest operation rather than a plain Django view so that the ratio
measures what the entitlements operation itself costs (authenticating the key, reading the
cache, the tenant's answer), not the framework around both.

Two phases, each endpoint measured in the same rounds, alternating which goes first:
  1. throughput: --clients threads send requests back to back (a closed loop) for --duration
     seconds; requests per second over the rounds, and the ratio entitlements / bare;
  2. latency at moderate load: the same threads send on a fixed schedule (an open loop) at
     --load (0.5) times the entitlements endpoint's own throughput from phase 1, i.e. with the
     server half busy, the same rate for both endpoints. Latency counts from when a request was due, not when it went out, so a
     stalled server is not hidden by the client waiting for it (coordinated omission).
Each request opens its own connection: gunicorn's sync workers close it after each answer.
A --warmup of 2 s per endpoint runs first and is left out. Every answer is checked (status 200,
and the entitlements name the product); failures are counted and printed.

Targets: entitlements at least 0.8 of the bare view's throughput, and p99 under 10 ms at
moderate load. The load generator runs on the same machine (Python threads), so its own CPU
use is in every figure, equally for both endpoints. Exit status 0 whether or not they are met.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

from _harness import (
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
    wait_until,
    web_server_env,
)

DB_NAME = "flywheel_bench_entitlements"
REDIS_URL = "redis://127.0.0.1:6379/11"
TARGET_RATIO = 0.8
TARGET_P99_MS = 10.0

SETUP = """
from accounts.api_keys import api_key_create
from accounts.models import Membership
from billing.services.subscriptions import subscription_start_trial
from catalog.selectors import edition_get
from accounts.models import Organization, User

admin = User.objects.create_user(email="bench-admin@bench.example", password=None)
organization = Organization.objects.create(name="Bench", created_by=admin)
Membership.objects.create(organization=organization, user=admin, role="admin", source="signup")
for index in range(4):
    Membership.objects.create(
        organization=organization, user=User.objects.create_user(email=f"member{index}@bench.example")
    )
subscription_start_trial(
    organization=organization, edition=edition_get(product_code="tracker", edition_code="standard"), actor=admin
)
_, raw = api_key_create(organization=organization, actor=admin, name="bench")
print("KEY", raw)
"""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads (8)")
    parser.add_argument(
        "--duration", type=float, default=5.0, help="seconds per endpoint per round (5)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds per phase (3)")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds of warm-up per endpoint (2)"
    )
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn sync workers (2)")
    parser.add_argument(
        "--load",
        type=float,
        default=0.5,
        help="phase 2 rate, as a fraction of the entitlements endpoint's throughput in phase 1 (0.5)",
    )
    parser.add_argument(
        "--local-seconds",
        type=float,
        default=None,
        help="ENTITLEMENTS_LOCAL_SECONDS for the server (default: the server's own, 30: answers "
        "kept in each web process's memory, forgotten when any process publishes a change); "
        "0 makes every request read Redis",
    )
    parser.add_argument("--keep-db", action="store_true", help=f"leave the {DB_NAME} database")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra setting for the server, e.g. --env DATABASE_CONN_MAX_AGE=0 (repeatable)",
    )
    args = parser.parse_args()
    extra_env = dict(item.split("=", 1) for item in args.env)

    run = uuid.uuid4().hex[:10]
    port = free_port()
    scratch = Path(tempfile.mkdtemp(prefix="flywheel-bench-entitlements-"))
    prefix = f"flywheel-bench-{run}"
    env = web_server_env(db_name=DB_NAME, redis_url=REDIS_URL, prefix=prefix, site_url=f"http://127.0.0.1:{port}", scratch=scratch)
    env.update(extra_env)
    if args.local_seconds is not None:
        env["ENTITLEMENTS_LOCAL_SECONDS"] = repr(args.local_seconds)

    heading("Flywheel entitlements API bench")
    print(
        f"  {args.clients} clients, {args.rounds} rounds x {args.duration:g} s per endpoint and phase, "
        f"gunicorn -w {args.web_workers} (sync), {os.cpu_count()} CPU(s)"
    )
    if extra_env:
        print(f"  extra settings: {extra_env}")
    print(
        "  ENTITLEMENTS_LOCAL_SECONDS="
        + (
            "server default (30: kept in memory, invalidated by pub/sub)"
            if args.local_seconds is None
            else f"{args.local_seconds:g}" + (" (memory copy off: every request reads Redis)" if not args.local_seconds else "")
        )
    )
    print(f"  database {DB_NAME}, Redis db 11 prefix {prefix}, server http://127.0.0.1:{port}")
    print(f"  load average at start: {load_average()}")

    web: Process | None = None
    failures: list[str] = []
    try:
        print(
            "\n  recreating the database, migrating, syncing the catalog, creating the key ...",
            flush=True,
        )
        database_recreate(DB_NAME)
        manage(env, "migrate", "--noinput")
        manage(env, "catalog_sync")
        output = manage(env, "shell", "-c", SETUP)
        raw_key = next(line.split()[1] for line in output.splitlines() if line.startswith("KEY "))

        print("  starting gunicorn ...", flush=True)
        access_log = scratch / "access.log"
        web = Process(
            "web",
            gunicorn_argv(port, args.web_workers, access_log),
            env,
            scratch,
        )

        def ping_answers() -> bool:
            return one_request(port, bare)[0]

        bare = Endpoint(
            "bare (/api/v1/ping)", "/api/v1/ping", {}, lambda body: body == b'{"ok": true}'
        )
        entitlements = Endpoint(
            "entitlements",
            "/api/v1/entitlements",
            {"Authorization": f"Bearer {raw_key}"},
            lambda body: json.loads(body)[0]["product"] == "tracker",
        )
        wait_until(ping_answers, timeout=60, what="gunicorn", interval=0.2, processes=[web])
        ok, error = one_request(port, entitlements)
        if not ok:
            raise RuntimeError(f"the entitlements endpoint does not answer: {error}")
        print(f"  entitlements answer: {one_body(port, entitlements)}")

        print(f"  warming up ({args.warmup:g} s per endpoint) ...", flush=True)
        for endpoint in (bare, entitlements):
            closed_loop(port, endpoint, args.clients, args.warmup)
        # gunicorn appends (O_APPEND), so emptying the log leaves the warm-up out of it.
        access_log.write_text("")

        print("  phase 1: throughput, closed loop ...", flush=True)
        throughput: dict[str, list[Sample]] = {bare.label: [], entitlements.label: []}
        for round_index in range(args.rounds):
            order = (bare, entitlements) if round_index % 2 == 0 else (entitlements, bare)
            for endpoint in order:
                throughput[endpoint.label].append(
                    closed_loop(port, endpoint, args.clients, args.duration)
                )
        rps = {
            label: len(merge(samples).latencies) / merge(samples).elapsed
            for label, samples in throughput.items()
        }
        rate = max(1.0, rps[entitlements.label] * args.load)

        print(f"  phase 2: latency at {rate:.0f} requests/s, open loop ...", flush=True)
        paced: dict[str, list[Sample]] = {bare.label: [], entitlements.label: []}
        for round_index in range(args.rounds):
            order = (bare, entitlements) if round_index % 2 == 0 else (entitlements, bare)
            for endpoint in order:
                paced[endpoint.label].append(
                    open_loop(port, endpoint, args.clients, rate, args.duration)
                )

        heading("Results")
        print(f"  load average at end: {load_average()}")
        print()
        print(f"  Phase 1: throughput, {args.clients} clients back to back")
        for label, samples in throughput.items():
            sample = merge(samples)
            failures.extend(sample.failures)
            per_round = ", ".join(f"{len(s.latencies) / s.elapsed:.0f}" for s in samples)
            print(
                f"    {label:<22} {rps[label]:8.1f} req/s  (rounds: {per_round})   "
                f"p50 {ms(percentile(sample.latencies, 50))}  p99 {ms(percentile(sample.latencies, 99))}"
                f"   n={len(sample.latencies)}, failed {len(sample.failures)}"
            )
        ratio = rps[entitlements.label] / rps[bare.label] if rps[bare.label] else float("nan")
        print(f"    ratio entitlements / bare: {ratio:.3f}   (target >= {TARGET_RATIO})")
        print()
        print(
            f"  Phase 2: latency at {rate:.0f} req/s ({args.load:g} x the entitlements endpoint's throughput)"
        )
        p99 = {}
        for label, samples in paced.items():
            sample = merge(samples)
            failures.extend(sample.failures)
            achieved = len(sample.latencies) / sample.elapsed
            p99[label] = percentile(sample.latencies, 99)
            print(
                f"    {label:<22} p50 {ms(percentile(sample.latencies, 50))}  "
                f"p95 {ms(percentile(sample.latencies, 95))}  p99 {ms(p99[label])}  "
                f"max {ms(max(sample.latencies) if sample.latencies else float('nan'))}   "
                f"achieved {achieved:.0f} req/s, n={len(sample.latencies)}, failed {len(sample.failures)}"
            )
        print()
        print("  Inside gunicorn (access log, both phases, warm-up left out)")
        times = server_times(access_log)
        for label, path in ((bare.label, bare.path), (entitlements.label, entitlements.path)):
            values = times.get(path, [])
            if values:
                print(
                    f"    {label:<22} p50 {ms(percentile(values, 50))}  p99 {ms(percentile(values, 99))}  "
                    f"mean {ms(statistics.fmean(values))}   n={len(values)}"
                )

        heading("Targets")
        verdict = "MET" if ratio >= TARGET_RATIO else "NOT MET"
        print(f"  throughput ratio {ratio:.3f} >= {TARGET_RATIO}: {verdict}")
        p99_ms = p99[entitlements.label] * 1000
        verdict = "MET" if p99_ms < TARGET_P99_MS else "NOT MET"
        print(
            f"  entitlements p99 {p99_ms:.2f} ms < {TARGET_P99_MS:g} ms at {rate:.0f} req/s: {verdict}"
        )
        if failures:
            heading(f"Failures ({len(failures)})")
            for failure in sorted(set(failures))[:20]:
                print(f"  {failure}")
    finally:
        bench_cleanup(
            web=web, show_log=bool(failures), redis_url=REDIS_URL, prefix=prefix, db_name=DB_NAME,
            keep_db=args.keep_db, scratch=scratch,
        )
    return 0


def one_body(port: int, endpoint: Endpoint) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", endpoint.path, headers=endpoint.headers)
        return connection.getresponse().read().decode()[:300]
    finally:
        connection.close()


if __name__ == "__main__":
    sys.exit(main())
