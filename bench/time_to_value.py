"""Time to value: sign up and verify N users over HTTP against a real stack, then report.

    uv run python bench/time_to_value.py                 # 200 users, one at a time
    uv run python bench/time_to_value.py --users 30 --concurrency 4
    uv run python bench/time_to_value.py --env DATABASE_CONN_MAX_AGE=60   # try a setting

What it starts (and always stops again): a fresh PostgreSQL database `flywheel_bench`
(dropped and recreated at start, dropped at the end unless --keep-db), gunicorn serving
config.wsgi, and a real Celery worker on Redis db 10 with a queue name unique to this run.
Settings are config.settings with DEBUG=0 and Django's default password hasher
(PASSWORD_HASHERS is deliberately not set), mail written as .eml files to a temporary
MAIL_DIR by the worker.

Each simulated user: GET /signup?product=tracker&edition=standard, GET /accounts/signup/
(CSRF token from the form), POST the signup form (timed), wait for the verification email,
GET then POST the /accounts/confirm-email/<key>/ link. The first --warmup users (10) are
signed up the same way but left out of every figure: a web worker's first request pays for
imports, template compilation and the common-password list.

It prints p50/p95 of
  (a) the signup POST's wall time, seen by the client;
  (b) email_verified -> environment_active, from experiments_event (the same clock: both
      rows are stamped on this machine, by the web process and the worker);
  (c) make_password() with the configured default hasher, alone, in this process, timed
      --hash-rounds times (50) while the servers are idle, before the users;
and the ratio (a)/(c) at p50 and p95, with the targets next to them. For diagnosis it also
prints (c') make_password timed just before each signup POST (one user at a time only: the
hasher under the same machine load as (a)), the signup POST's time inside gunicorn (from its
access log), how long the verification email took to appear, and the confirmation POST.
Exit status 0 whether or not the targets are met; it asserts nothing.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import requests

# The shared harness (bench/_harness.py). Benches written before it import these names from
# here (`from time_to_value import PG, Process, percentile, ...`): keep every one of them in
# this module's namespace, including those it does not use itself.
from _harness import (
    PG,
    ROOT,
    Process,
    access_log_requests,
    celery_worker_argv,
    database_drop,
    database_recreate,
    free_port,
    gunicorn_argv,
    heading,
    load_average,
    manage,
    percentile,
    redis_keys_delete,
    wait_until,
)
from _harness import maintenance_connection as maintenance_connection  # re-exported only

DB_NAME = "flywheel_bench"
REDIS_URL = "redis://127.0.0.1:6379/10"
PASSWORD = "plum-Orchard-47-kettle"

TARGET_B_P95_MS = 500.0
TARGET_RATIO = 1.3

CSRF_RE = re.compile(r'name="csrfmiddlewaretoken"\s+value="([^"]+)"')
CONFIRM_RE = re.compile(r"/accounts/confirm-email/[^/\s]+/")


# The mailbox -------------------------------------------------------------------------------


def written_at(name: str) -> float:
    """MaildirBackend names each file after the UTC time it wrote it (%Y%m%dT%H%M%S%f)."""
    try:
        stamp = datetime.strptime(name[:21], "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)
    except ValueError:
        return float("nan")
    return stamp.timestamp()


class Mailbox:
    """Reads the .eml files the worker writes; remembers each file once parsed."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._seen: set[str] = set()
        # recipient -> (confirm path, when the worker wrote it: epoch seconds from the file name)
        self._links: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def _scan(self) -> None:
        if not self.directory.exists():
            return
        for path in self.directory.glob("*.eml"):
            if path.name in self._seen:
                continue
            self._seen.add(path.name)
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            part = message.get_body(preferencelist=("plain", "html"))
            body = part.get_content() if part else ""
            match = CONFIRM_RE.search(body)
            if match:
                recipient = str(message["To"]).strip().lower()
                self._links.setdefault(recipient, (match.group(0), written_at(path.name)))

    def confirm_link(self, address: str) -> tuple[str, float] | None:
        with self._lock:
            found = self._links.get(address.lower())
            if found is None:
                self._scan()
                found = self._links.get(address.lower())
            return found


# One user ----------------------------------------------------------------------------------


@dataclass
class UserResult:
    email: str
    signup_post_s: float = 0.0
    signup_post_at: float = 0.0  # time.time() when the signup POST was sent
    mail_written_after_s: float = 0.0
    confirm_post_s: float = 0.0
    hash_beside_s: float | None = None
    error: str = ""
    notes: list[str] = field(default_factory=list)


def csrf_token(html: str, where: str) -> str:
    match = CSRF_RE.search(html)
    if not match:
        raise RuntimeError(f"no csrfmiddlewaretoken in {where}")
    return match.group(1)


def one_user(
    base: str, address: str, mailbox: Mailbox, mail_timeout: float, hash_beside=None
) -> UserResult:
    """One visitor, start to finish. `hash_beside`, if given, is timed just before the signup
    POST (same machine load as the POST, never overlapping it when users run one at a time)."""
    result = UserResult(email=address)
    with requests.Session() as session:
        response = session.get(
            f"{base}/signup?product=tracker&edition=standard", allow_redirects=False
        )
        if response.status_code != 302:
            raise RuntimeError(f"GET /signup answered {response.status_code}")
        page = session.get(f"{base}/accounts/signup/")
        if page.status_code != 200:
            raise RuntimeError(f"GET /accounts/signup/ answered {page.status_code}")
        token = csrf_token(page.text, "the signup page")

        if hash_beside is not None:
            started = time.perf_counter()
            hash_beside()
            result.hash_beside_s = time.perf_counter() - started
        started = time.perf_counter()
        response = session.post(
            f"{base}/accounts/signup/",
            data={
                "email": address,
                "password1": PASSWORD,
                "password2": PASSWORD,
                "csrfmiddlewaretoken": token,
            },
            headers={"Referer": f"{base}/accounts/signup/"},
            allow_redirects=False,
        )
        posted = time.perf_counter()
        result.signup_post_s = posted - started
        result.signup_post_at = time.time() - result.signup_post_s
        if response.status_code != 302:
            raise RuntimeError(
                f"signup POST answered {response.status_code}: {response.text[:300]!r}"
            )

        answered_at = time.time()
        found = wait_until(
            lambda: mailbox.confirm_link(address),
            timeout=mail_timeout,
            what=f"the verification email to {address}",
            interval=0.01,
        )
        path, written = found
        result.mail_written_after_s = written - answered_at

        page = session.get(f"{base}{path}")
        if page.status_code != 200:
            raise RuntimeError(f"GET {path} answered {page.status_code}")
        token = csrf_token(page.text, "the confirmation page")
        started = time.perf_counter()
        response = session.post(
            f"{base}{path}",
            data={"csrfmiddlewaretoken": token},
            headers={"Referer": f"{base}{path}"},
            allow_redirects=False,
        )
        result.confirm_post_s = time.perf_counter() - started
        if response.status_code != 302:
            raise RuntimeError(
                f"confirmation POST answered {response.status_code}: {response.text[:300]!r}"
            )
    return result


# Figures -----------------------------------------------------------------------------------


def time_the_hasher(rounds: int) -> tuple[str, list[float]]:
    """make_password with the default hasher, `rounds` times, in this process."""
    import django

    django.setup()
    from django.contrib.auth.hashers import get_hasher, make_password

    hasher = get_hasher("default")
    label = f"{hasher.algorithm} ({type(hasher).__module__}.{type(hasher).__name__}"
    if hasattr(hasher, "iterations"):
        label += f", {hasher.iterations} iterations"
    label += ")"
    make_password(PASSWORD)  # warm up
    timings: list[float] = []
    for _ in range(rounds):
        started = time.perf_counter()
        make_password(PASSWORD)
        timings.append(time.perf_counter() - started)
    return label, timings


def verified_to_active(emails: list[str]) -> tuple[list[float], int, int]:
    """Seconds from email_verified to environment_active for each of `emails` (the measured
    users, not the warm-up ones), from the bench database."""
    with psycopg.connect(**PG, dbname=DB_NAME) as connection:
        rows = connection.execute(
            """
            SELECT v.user_id, MIN(v.occurred_at), MIN(a.occurred_at)
            FROM experiments_event v
            JOIN accounts_user u ON u.id = v.user_id
            JOIN experiments_event a ON a.user_id = v.user_id AND a.name = 'environment_active'
            WHERE v.name = 'email_verified' AND u.email = ANY(%s)
            GROUP BY v.user_id
            """,
            [emails],
        ).fetchall()
        verified = connection.execute(
            """
            SELECT COUNT(DISTINCT v.user_id) FROM experiments_event v JOIN accounts_user u ON u.id = v.user_id
            WHERE v.name = 'email_verified' AND u.email = ANY(%s)
            """,
            [emails],
        ).fetchone()[0]
    return (
        [(active - verified_at).total_seconds() for _, verified_at, active in rows],
        verified,
        len(rows),
    )


def verified_to_active_steps(emails: list[str]) -> dict[str, list[float]]:
    """(b) cut at the environment's own timestamps: requested (web, inside the confirmation
    request's transaction), started (the worker's first attempt) and active."""
    with psycopg.connect(**PG, dbname=DB_NAME) as connection:
        rows = connection.execute(
            """
            SELECT MIN(v.occurred_at), MIN(e.requested_at), MIN(e.started_at), MIN(e.active_at)
            FROM experiments_event v
            JOIN accounts_user u ON u.id = v.user_id
            JOIN provisioning_environment e ON e.requested_by_id = v.user_id
            WHERE v.name = 'email_verified' AND u.email = ANY(%s) AND e.active_at IS NOT NULL
            GROUP BY v.user_id
            """,
            [emails],
        ).fetchall()
    return {
        "verified -> environment requested (web)": [(r[1] - r[0]).total_seconds() for r in rows],
        "requested -> worker started (commit+queue)": [(r[2] - r[1]).total_seconds() for r in rows],
        "worker started -> active (worker)": [(r[3] - r[2]).total_seconds() for r in rows],
    }


def signup_times_in_gunicorn(access_log: Path, skip: int) -> list[float]:
    """Seconds gunicorn spent on each signup POST (%(D)s), in order, the warm-up ones skipped."""
    return [
        seconds
        for method, path, _, seconds in access_log_requests(access_log, "gunicorn")
        if method == "POST" and path == "/accounts/signup/"
    ][skip:]


def count_active() -> int:
    with psycopg.connect(**PG, dbname=DB_NAME) as connection:
        return connection.execute(
            "SELECT COUNT(DISTINCT user_id) FROM experiments_event WHERE name = 'environment_active'"
        ).fetchone()[0]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms"


def line(label: str, values: list[float], target: str = "") -> None:
    p50, p95 = percentile(values, 50), percentile(values, 95)
    if not values:
        print(f"  {label:<44} no samples")
        return
    extra = (
        f"   (n={len(values)}, mean {statistics.fmean(values) * 1000:.1f} ms, "
        f"max {max(values) * 1000:.1f} ms)"
    )
    print(f"  {label:<44} p50 {ms(p50)}   p95 {ms(p95)}{extra}")
    if target:
        print(f"  {'':<44} target: {target}")


def csv_write(path: Path, results: list[UserResult]) -> None:
    import csv

    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "email",
                "signup_post_at",
                "signup_post_ms",
                "hash_beside_ms",
                "confirm_post_ms",
                "email_written_after_answer_ms",
            ]
        )
        for r in sorted(results, key=lambda r: r.signup_post_at):
            writer.writerow(
                [
                    r.email,
                    f"{r.signup_post_at:.3f}",
                    f"{r.signup_post_s * 1000:.1f}",
                    "" if r.hash_beside_s is None else f"{r.hash_beside_s * 1000:.1f}",
                    f"{r.confirm_post_s * 1000:.1f}",
                    f"{r.mail_written_after_s * 1000:.1f}",
                ]
            )


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


# Main --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--users", type=int, default=200, help="how many users to sign up and verify (200)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="users in flight at once (1). Above the web workers or CPU cores, (a) includes queueing and CPU contention",
    )
    parser.add_argument("--web-workers", type=int, default=3, help="gunicorn sync workers (3)")
    parser.add_argument(
        "--worker-concurrency", type=int, default=4, help="Celery worker threads (4)"
    )
    parser.add_argument(
        "--hash-rounds", type=int, default=50, help="make_password timings for (c) (50)"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=10,
        help="users signed up first and left out of every figure, so each web worker's first request "
        "(imports, template compilation, password lists) is not counted (10)",
    )
    parser.add_argument(
        "--keep-db", action="store_true", help=f"leave the {DB_NAME} database for inspection"
    )
    parser.add_argument(
        "--csv", type=Path, help="also write one row per measured user (timings in ms) to this file"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra setting for every process, e.g. --env DATABASE_CONN_MAX_AGE=60 (repeatable)",
    )
    args = parser.parse_args()
    extra_env = dict(item.split("=", 1) for item in args.env)
    if "PASSWORD_HASHERS" in extra_env:
        parser.error(
            "the bench measures the default password hasher: PASSWORD_HASHERS cannot be set"
        )

    run = uuid.uuid4().hex[:10]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    scratch = Path(tempfile.mkdtemp(prefix="flywheel-bench-"))
    mail_dir = scratch / "mail"
    queue = f"flywheel-bench-{run}"

    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in (
            "PASSWORD_HASHERS",
            "EMAIL_HOST",
            "CELERY_BROKER_URL",
            "CACHE_URL",
            "POSTHOG_API_KEY",
        )
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "FLYWHEEL_ENV": "development",
            "DEBUG": "0",
            "DATABASE_URL": f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{DB_NAME}",
            "REDIS_URL": REDIS_URL,
            "CELERY_QUEUE": queue,
            "CACHE_KEY_PREFIX": queue,
            "SITE_URL": base,
            "SIGNUP_RATE_LIMIT": "100000/m/ip",
            "MAIL_DIR": str(mail_dir),
            "FLYWHEEL_VAR_DIR": str(scratch / "var"),
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra_env)
    os.environ.update(env)  # for django.setup() in this process, (c)
    os.environ.pop("PASSWORD_HASHERS", None)
    sys.path.insert(0, str(ROOT))

    heading("Flywheel time-to-value bench")
    print(
        f"  users {args.users} (+{args.warmup} warm-up), concurrency {args.concurrency}, gunicorn -w {args.web_workers}, "
        f"celery --pool=threads -c {args.worker_concurrency}, {os.cpu_count()} CPU(s)"
    )
    if extra_env:
        print(f"  extra settings: {extra_env}")
    print(f"  database {DB_NAME}, Redis db 10 queue {queue}, web {base}, scratch {scratch}")
    print(
        f"  load average at start: {load_average()} (other work on the machine skews every figure)"
    )

    processes: list[Process] = []
    results: list[UserResult] = []
    failures: list[str] = []
    try:
        print("\n  recreating the database, migrating, syncing the catalog ...", flush=True)
        database_recreate(DB_NAME)
        manage(env, "migrate", "--noinput")
        manage(env, "catalog_sync")

        print("  starting gunicorn and the Celery worker ...", flush=True)
        web = Process(
            "web",
            gunicorn_argv(
                port,
                args.web_workers,
                scratch / "access.log",
                timeout=120,
            ),
            env,
            scratch,
        )
        processes.append(web)
        worker = Process("worker", celery_worker_argv(args.worker_concurrency), env, scratch)
        processes.append(worker)

        def web_up() -> bool:
            try:
                return requests.get(f"{base}/", timeout=2).status_code < 500
            except requests.RequestException:
                return False

        wait_until(web_up, timeout=60, what="gunicorn", interval=0.2, processes=processes)
        wait_until(
            lambda: " ready." in worker.log_tail(200),
            timeout=60,
            what="the Celery worker",
            interval=0.2,
            processes=processes,
        )

        print(
            f"  timing make_password x{args.hash_rounds} in this process (servers idle) ...",
            flush=True,
        )
        hasher_label, hash_times = time_the_hasher(args.hash_rounds)

        from django.contrib.auth.hashers import make_password

        mailbox = Mailbox(mail_dir)
        if args.warmup:
            print(
                f"  warming up with {args.warmup} users (left out of the figures) ...", flush=True
            )
            for i in range(args.warmup):
                try:
                    one_user(base, f"warmup{i}@warmup{i}-{run}.example", mailbox, 60.0)
                except Exception as error:  # noqa: BLE001 - reported below, the run goes on
                    failures.append(f"warm-up user {i}: {error}")

        # One user at a time: also time make_password beside each signup POST, so (c) can be
        # compared under the same machine load as (a). With concurrency it would compete with
        # the web workers' own hashing, so it is not done then.
        beside = (lambda: make_password(PASSWORD)) if args.concurrency <= 1 else None
        print(f"  signing up and verifying {args.users} users ...", flush=True)
        addresses = [f"user{i}@company{i}-{run}.example" for i in range(args.users)]
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=max(1, args.concurrency)) as pool:
            futures = {
                pool.submit(one_user, base, address, mailbox, 60.0, beside): address
                for address in addresses
            }
            for done, future in enumerate(as_completed(futures), 1):
                try:
                    results.append(future.result())
                except Exception as error:  # noqa: BLE001 - reported below, the run goes on
                    failures.append(f"{futures[future]}: {error}")
                if done % 25 == 0 or done == len(futures):
                    print(
                        f"    {done}/{len(futures)} users done ({len(failures)} failed), "
                        f"{time.perf_counter() - started:.1f}s",
                        flush=True,
                    )
        elapsed = time.perf_counter() - started
        if args.csv:
            csv_write(args.csv, results)

        expected = len(results) + args.warmup - sum(f.startswith("warm-up") for f in failures)
        try:
            wait_until(
                lambda: count_active() >= expected,
                timeout=60,
                what="every environment to be active",
                interval=0.2,
                processes=[worker],
            )
        except RuntimeError as error:
            failures.append(str(error))
        to_active, verified_count, active_count = verified_to_active([r.email for r in results])

        # Figures --------------------------------------------------------------------------
        signup_times = [r.signup_post_s for r in results]
        heading("Results")
        print(
            f"  {len(results)} of {args.users} users signed up and verified in {elapsed:.1f}s "
            f"({len(failures)} failure(s)); email_verified for {verified_count}, "
            f"environment_active for {active_count}"
        )
        print(f"  password hasher: {hasher_label}")
        print(f"  load average at end: {load_average()}")
        print()
        line("(a) signup POST wall time", signup_times)
        line(
            "(b) email verified -> environment active", to_active, f"p95 < {TARGET_B_P95_MS:.0f} ms"
        )
        line("(c) make_password alone (default hasher)", hash_times)
        print()
        a50, a95 = percentile(signup_times, 50), percentile(signup_times, 95)
        c50, c95 = percentile(hash_times, 50), percentile(hash_times, 95)
        r50 = a50 / c50 if c50 else float("nan")
        r95 = a95 / c95 if c95 else float("nan")
        print(f"  (a)/(c) at p50 {r50:6.2f}    at p95 {r95:6.2f}    target < {TARGET_RATIO}")
        print(
            f"  (a)-(c) at p50 {(a50 - c50) * 1000:.1f} ms: what the signup request costs beyond hashing"
        )
        print()
        print("  Other timings (for diagnosis)")
        beside_times = [r.hash_beside_s for r in results if r.hash_beside_s is not None]
        if beside_times:
            line("(c') make_password beside each signup POST", beside_times)
            print(
                f"  {'':<44} (a)/(c') at p50 {a50 / percentile(beside_times, 50):.2f}, "
                f"at p95 {a95 / percentile(beside_times, 95):.2f}: (c) under the same load as (a)"
            )
        server_times = signup_times_in_gunicorn(scratch / "access.log", skip=args.warmup)
        if server_times:
            line("signup POST inside gunicorn (access log)", server_times)
            print(
                f"  {'':<44} client wall - server time at p50 "
                f"{(a50 - percentile(server_times, 50)) * 1000:.1f} ms"
            )
        line(
            "email written by worker - signup answered",
            [r.mail_written_after_s for r in results],
        )
        print(f"  {'':<44} (negative: the worker wrote it before the client had the answer)")
        steps = verified_to_active_steps([r.email for r in results])
        if steps:
            print("  (b) step by step:")
            for label, values in steps.items():
                line(f"  {label}", values)
        line("confirmation POST wall time", [r.confirm_post_s for r in results])

        heading("Targets")
        b95 = percentile(to_active, 95) * 1000
        print(
            f"  (b) p95 {b95:.1f} ms < {TARGET_B_P95_MS:.0f} ms: {verdict(b95 < TARGET_B_P95_MS)}"
        )
        print(f"  (a)/(c) p50 {r50:.3f} < {TARGET_RATIO}: {verdict(r50 < TARGET_RATIO)}")
        print(f"  (a)/(c) p95 {r95:.3f} < {TARGET_RATIO}: {verdict(r95 < TARGET_RATIO)}")
        if args.concurrency > min(args.web_workers, os.cpu_count() or 1):
            print(
                f"  note: concurrency {args.concurrency} exceeds the web workers or CPU cores, so (a) includes "
                "queueing and CPU contention that (c) does not"
            )

        if failures:
            heading(f"Failures ({len(failures)})")
            for failure in failures[:20]:
                print(f"  {failure}")
    finally:
        for process in reversed(processes):
            process.stop()
        if failures and processes:
            for process in processes:
                print(f"\n--- last lines of the {process.name} log ---\n{process.log_tail(30)}")
        redis_keys_delete(REDIS_URL, queue)
        if args.keep_db:
            print(f"\n  kept database {DB_NAME}")
        else:
            try:
                database_drop(DB_NAME)
            except Exception as error:  # noqa: BLE001
                print(f"  (could not drop {DB_NAME}: {error})")
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
