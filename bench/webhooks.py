"""Stripe webhook intake: events per second accepted (verified and stored) and processed.

    uv run python bench/webhooks.py                          # wrk, 8 connections, 10 s
    uv run python bench/webhooks.py --duration 3             # a quick check
    uv run python bench/webhooks.py --worker after           # intake alone, then processing alone
    uv run python bench/webhooks.py --worker-nice 10         # the worker at a lower CPU priority
    uv run python bench/webhooks.py --server gunicorn        # gunicorn gthread, for comparison
    uv run python bench/webhooks.py --env DATABASE_CONN_MAX_AGE=0   # try a setting

What it starts (and always stops again): a fresh PostgreSQL database `flywheel_bench_webhooks`
(dropped and recreated at the start, dropped at the end unless --keep-db), migrated and
catalog_synced; localstripe (python -m billing.localstripe_server) on a free port; the web
server on a free port of 127.0.0.1, as docs/deployment.md runs it: granian --interface wsgi
config.wsgi:application, --web-workers 2 (one process per core) and --threads 2 (its blocking
threads) by default, connections kept alive (--server gunicorn: gunicorn -k gthread -w 2
--threads 4); a real Celery worker (--pool=threads, --worker-concurrency 4, under nice -n
--worker-nice if given) on Redis db 12 with a queue name unique to the run, whose keys are
deleted at the end.
Settings: config.settings, FLYWHEEL_ENV=development, DEBUG=0, Stripe at the localstripe.

Before the clock starts, --payments (20) organizations each get a Tracker Standard trial, a card
(a SetupIntent confirmed with 4242 4242 4242 4242, as Stripe.js would) and a checkout whose
PaymentIntent is charged in localstripe but not recorded in Flywheel (the payment stays
`processing`): only the webhooks can tell Flywheel, as in tests/billing/services/test_webhooks.py.

The events: --events (5,000) distinct Stripe events (payment_intent.succeeded 80 %,
.payment_failed 10 %, .requires_action 10 %), each carrying the real PaymentIntent as localstripe
returns it, spread over the payments, plus --duplicates (10 %) re-deliveries of some of them,
shuffled. Each is signed just before it is sent (the Stripe-Signature header `t=...,v1=...`,
HMAC-SHA256 of "<t>.<payload>" with STRIPE_WEBHOOK_SECRET) and POSTed to /stripe/webhook back
to back (a closed loop) by wrk over --clients (8) keep-alive connections for --duration seconds
(--events is then the pool it draws from), or with --client python by that many threads, each
with its own requests.Session, until all are sent. A missing wrk is installed first (Debian's
package, apt-get through sudo when not root); when that fails the Python client is used, and
the heading says which load generator ran. A --warmup (200) of other events goes
first, is processed, and is left out of every figure.

It prints
  accepted   events answered 2xx per second of wall time for all the POSTs (target 1,000/s),
             the client's p50/p99 latency, and the web server's own time per request (access log);
  processed  distinct events per second from the first POST (or, with --worker after, from the
             moment the worker is ready) until every stored WebhookEvent has processed_at
             (polled in the database);
  CPU        seconds of CPU used by each part (this client, the web server, the worker, localstripe,
             PostgreSQL: the bench database's connections, and the whole server, which also
             counts connections opened and closed meanwhile; Redis; the machine) while the
             events were being POSTed, and after, until the last was processed: where the two
             cores went. A speed probe (a fixed pure-Python loop) and a round-trip probe
             (SELECT 1 to PostgreSQL) at start and end show how fast the host computed and
             how fast it woke a process waiting on a socket;
  breakdown  with the servers stopped, in this process: json.loads, the signature check alone,
             gateway.webhook_event_parse, webhooks.webhook_receive (parse, store, enqueue), a
             duplicate, Celery's publish alone, the Django view through the test client, and
             config.wsgi.application called as the web server calls it (the bare endpoint).
It checks that every event was stored once and processed, and that every payment ended up
succeeded. Exit status 0 whether or not the target is met; it asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import io
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis
import requests
from _harness import (
    PG,
    ROOT,
    Process,
    access_log_requests,
    celery_worker_argv,
    database_drop,
    database_recreate,
    free_port,
    granian_argv,
    gunicorn_argv,
    heading,
    load_average,
    manage,
    percentile,
    redis_keys_delete,
    tool_ensure,
    wait_until,
)

DB_NAME = "flywheel_bench_webhooks"
REDIS_URL = "redis://127.0.0.1:6379/12"
SECRET_KEY = "sk_test_flywheel_local"
PUBLISHABLE_KEY = "pk_test_flywheel_local"
WEBHOOK_SECRET = "whsec_flywheel_bench"
TARGET_ACCEPTED = 1000.0
KINDS = (
    ["payment_intent.succeeded"] * 8
    + ["payment_intent.payment_failed"]
    + ["payment_intent.requires_action"]
)

# Run by `manage.py shell` with the run's settings. Payments charged in Stripe but not
# recorded in Flywheel: what _charged_but_unrecorded does in tests/billing/services/test_webhooks.py.
SETUP = """
import requests
from django.conf import settings
from accounts.models import Membership, Organization, User
from billing import gateway
from billing.services import billing_account, checkout, subscriptions
from billing.models import Payment
from catalog.selectors import edition_get

edition = edition_get(product_code="tracker", edition_code="standard")
for index in range({count}):
    admin = User.objects.create_user(email=f"admin{{index}}@bench{{index}}.example", password=None)
    organization = Organization.objects.create(
        name=f"Bench {{index}}", email_domain=f"bench{{index}}.example", created_by=admin
    )
    Membership.objects.create(organization=organization, user=admin, role="admin", source="signup")
    subscriptions.subscription_start_trial(organization=organization, edition=edition, actor=admin)
    setup = billing_account.card_setup_start(organization=organization, actor=admin)
    confirmed = requests.post(
        f"{{settings.STRIPE_API_BASE}}/v1/setup_intents/{{setup.id}}/confirm",
        json={{
            "key": settings.STRIPE_PUBLISHABLE_KEY,
            "client_secret": setup.client_secret,
            "use_stripe_sdk": True,
            "payment_method_data": {{
                "type": "card",
                "card": {{"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}},
                "billing_details": {{"address": {{"postal_code": "10001"}}}},
            }},
        }},
        timeout=10,
    )
    confirmed.raise_for_status()
    account = billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=setup.id)
    payment = checkout.subscription_checkout(
        subscription=organization.subscriptions.get(), actor=admin, edition=edition, seats=5, interval="month"
    )
    Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.PROCESSING, attempts=1)
    charged = gateway.payment_intent_charge(
        amount=payment.amount_minor,
        currency=payment.currency,
        customer_id=account.stripe_customer_id,
        payment_method_id=payment.payment_method_id,
        metadata={{"flywheel_payment": str(payment.public_id), "flywheel_invoice": payment.invoice.number}},
        idempotency_key=f"flywheel-payment-{{payment.public_id}}",
    )
    print("INTENT", charged.id, charged.status, payment.public_id)
"""


# Helpers ------------------------------------------------------------------------------------


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header for `payload`: what stripe.WebhookSignature._compute_signature
    computes over f"{timestamp}.{payload}" (checked against it once at start)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


def us(seconds: float) -> str:
    return f"{seconds * 1e6:8.0f} µs"


# CPU accounting from /proc ----------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int | str) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()  # fields from the 3rd (state) on


def pid_cpu(pid: int | str) -> float:
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / TICK if fields else 0.0  # utime + stime


def group_cpu(pgid: int) -> float:
    """CPU seconds of every live process in the process group `pgid`."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(entry)
            if fields and int(fields[2]) == pgid:
                total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def postgres_server_cpu() -> float:
    """CPU seconds of the whole PostgreSQL server: the postmaster, its live children, and the
    children it has reaped (cutime/cstime): connections opened and closed between two snapshots
    count here, and only here. Every database on the server is in it, not only the bench's."""
    names, parents = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        names[entry] = text[text.find("(") + 1 : text.rfind(")")]
        parents[entry] = text[text.rfind(")") + 2 :].split()
    total = 0.0
    for pid, name in names.items():
        if name != "postgres":
            continue
        fields = parents[pid]
        own = int(fields[11]) + int(fields[12])
        if names.get(fields[1]) != "postgres":  # the postmaster: add its reaped children
            own += int(fields[13]) + int(fields[14])
        total += own / TICK
    return total


def machine_cpu() -> tuple[float, float]:
    """(CPU seconds the whole machine spent busy, seconds the hypervisor stole), all cores
    summed, from /proc/stat: busy is user+nice+system+irq+softirq, steal is not in it."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    values += [0] * (8 - len(values))
    busy = values[0] + values[1] + values[2] + values[5] + values[6]
    return busy / TICK, values[7] / TICK


def speed_probe() -> float:
    """Milliseconds for a fixed bit of pure Python (best of 5): compare runs with it. On a busy
    or throttled host it grows, and every CPU figure grows with it."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        sum(i * i for i in range(1_000_000))
        best = min(best, time.perf_counter() - started)
    return best * 1000


def round_trip_probe() -> float:
    """Median microseconds of a `SELECT 1` round trip to PostgreSQL over 127.0.0.1 (500 of them,
    one connection). Every webhook waits on several round trips; on a host whose idle vCPUs
    halt and are slow to wake (a VM without guest halt polling) this grows several-fold while
    the speed probe does not, and the web server's CPU per event grows with it."""
    with psycopg.connect(**PG, dbname="postgres", autocommit=True) as connection:
        durations = []
        for _ in range(500):
            started = time.perf_counter()
            connection.execute("SELECT 1").fetchone()
            durations.append(time.perf_counter() - started)
    return statistics.median(durations) * 1e6


class CpuMeter:
    """CPU seconds per part of the stack between two snapshots."""

    def __init__(self, groups: dict[str, Process]) -> None:
        self.groups = groups
        self.redis_pid: int | None = None
        try:
            self.redis_pid = int(redis.Redis.from_url(REDIS_URL).info("server")["process_id"])
        except (redis.RedisError, KeyError, ValueError):
            pass

    def _postgres_pids(self) -> list[int]:
        with psycopg.connect(**PG, dbname=DB_NAME, autocommit=True) as connection:
            return [
                row[0]
                for row in connection.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                    [DB_NAME],
                )
            ]

    def snapshot(self) -> dict[str, object]:
        times = os.times()
        return {
            # This process and the children it waited for meanwhile (wrk).
            "client (bench + wrk)": times.user + times.system + times.children_user + times.children_system,
            **{name: group_cpu(process.popen.pid) for name, process in self.groups.items()},
            "postgres, bench database": {pid: pid_cpu(pid) for pid in self._postgres_pids()},
            "postgres, whole server": postgres_server_cpu(),
            "redis": pid_cpu(self.redis_pid) if self.redis_pid else 0.0,
            "machine (all processes)": machine_cpu()[0],
            "stolen by the hypervisor": machine_cpu()[1],
            "at": time.perf_counter(),
        }

    @staticmethod
    def spent(before: dict, after: dict) -> tuple[dict[str, float], float]:
        out: dict[str, float] = {}
        for key, value in after.items():
            if key == "at":
                continue
            if key == "postgres, bench database":  # its connections alive at the end
                out[key] = sum(cpu - before[key].get(pid, 0.0) for pid, cpu in value.items())
            else:
                out[key] = value - before[key]
        return out, after["at"] - before["at"]


def cpu_table(spent: dict[str, float], wall: float, per: int, per_label: str) -> None:
    """`postgres, bench database` counts the bench database's connections alive at the end;
    `postgres, whole server` also counts connections that came and went in between (and any
    other database's): it overlaps the first, and `other` is the machine minus the parts
    without it."""
    cores = os.cpu_count() or 1
    print(
        f"    {'':<26} {'CPU s':>7} {'of ' + str(cores) + ' cores':>11} {'ms per ' + per_label:>18}"
    )
    for name, seconds in spent.items():
        share = seconds / (wall * cores) if wall else float("nan")
        each = seconds * 1000 / per if per else float("nan")
        print(f"    {name:<26} {seconds:7.2f} {share:10.0%} {each:18.3f}")
    parts = sum(
        v
        for k, v in spent.items()
        if k
        not in ("machine (all processes)", "stolen by the hypervisor", "postgres, whole server")
    )
    other = spent.get("machine (all processes)", 0.0) - parts
    print(
        f"    {'other (not counted above)':<26} {other:7.2f} {other / (wall * cores) if wall else 0:10.0%}"
        f" {other * 1000 / per if per else 0:18.3f}"
    )


# The clients ---------------------------------------------------------------------------------


@dataclass
class Delivery:
    event_id: str
    payload: bytes


@dataclass
class Sent:
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    duplicates_answered: int = 0
    elapsed: float = 0.0
    accepted: int = 0
    # wrk reports percentiles, not every latency.
    p50: float | None = None
    p99: float | None = None
    latency_max: float | None = None
    exhausted: bool = False


WRK_SCRIPT = r"""
-- Each wrk thread sends its share of the pre-signed deliveries, each once, for the run's
-- duration; a thread that runs out sends GETs (answered 405, not counted) and says so.
local path = os.getenv("WEBHOOK_DELIVERIES")
local nthreads = tonumber(os.getenv("WEBHOOK_THREADS"))
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  deliveries = {}
  local i = 0
  local file = io.open(path, "rb")
  local data = file:read("*a")
  file:close()
  -- records end with \30 (RS); a record's signature and body are split by \31 (US)
  for signature, body in data:gmatch("([^\30\31]*)\31([^\30]*)\30") do
    if i % nthreads == id then
      deliveries[#deliveries + 1] = wrk.format("POST", "/stripe/webhook",
        {["Stripe-Signature"] = signature, ["Content-Type"] = "application/json"}, body)
    end
    i = i + 1
  end
  index = 0
  ok = 0
  duplicates = 0
  failed = 0
  extra = 0
end

function request()
  index = index + 1
  if index > #deliveries then
    extra = extra + 1
    return wrk.format("GET", "/stripe/webhook")
  end
  return deliveries[index]
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
    if body:find('"duplicate": true', 1, true) then duplicates = duplicates + 1 end
  elseif status ~= 405 then
    failed = failed + 1
  end
end

function done(summary, latency, requests)
  local ok_all, dup_all, failed_all, extra_all = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    ok_all = ok_all + thread:get("ok")
    dup_all = dup_all + thread:get("duplicates")
    failed_all = failed_all + thread:get("failed")
    extra_all = extra_all + thread:get("extra")
  end
  io.write(string.format(
    "WRKRESULT ok=%d duplicates=%d failed=%d exhausted=%d runtime_us=%d p50_us=%d p99_us=%d max_us=%d errors=%d\n",
    ok_all, dup_all, failed_all, extra_all, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def post_all_wrk(
    url: str, deliveries: list[Delivery], connections: int, threads: int, duration: float
) -> Sent:
    """POST deliveries in order, each at most once, with wrk (C, event-driven) for `duration`
    seconds: the load generator costs a fraction of what Python clients cost, leaving the two
    cores to the server. Every payload is signed just before wrk starts (signatures stay valid
    for STRIPE_WEBHOOK_TOLERANCE). `exhausted` says the deliveries ran out before the end."""
    wrk = shutil.which("wrk")
    if not wrk:
        raise RuntimeError("wrk is not installed (apt-get install wrk), or use --client python")  # main() installs it
    scratch = Path(tempfile.mkdtemp(prefix="flywheel-wrk-"))
    try:
        records = []
        for delivery in deliveries:
            if b"\x1e" in delivery.payload or b"\x1f" in delivery.payload:
                raise RuntimeError("a payload holds a control character JSON never has")
            signature = sign(delivery.payload, WEBHOOK_SECRET).encode()
            records.append(signature + b"\x1f" + delivery.payload + b"\x1e")
        (scratch / "deliveries.tsv").write_bytes(b"".join(records))
        (scratch / "send.lua").write_text(WRK_SCRIPT)
        threads = max(1, min(threads, connections))
        env = {
            **os.environ,
            "WEBHOOK_DELIVERIES": str(scratch / "deliveries.tsv"),
            "WEBHOOK_THREADS": str(threads),
        }
        base = url.rsplit("/stripe/webhook", 1)[0]
        completed = subprocess.run(
            [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--timeout", "30s",
             "-s", str(scratch / "send.lua"), base],
            env=env, capture_output=True, text=True, timeout=900, check=False,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    match = re.search(r"WRKRESULT (.*)", completed.stdout)
    if not match:
        raise RuntimeError(f"wrk printed no result: {completed.stdout[-400:]} {completed.stderr[-400:]}")
    values = dict(item.split("=") for item in match.group(1).split())
    sent = Sent(
        accepted=int(values["ok"]),
        duplicates_answered=int(values["duplicates"]),
        elapsed=int(values["runtime_us"]) / 1e6,
        p50=int(values["p50_us"]) / 1e6,
        p99=int(values["p99_us"]) / 1e6,
        latency_max=int(values["max_us"]) / 1e6,
        exhausted=int(values["exhausted"]) > 0,
    )
    failed = int(values["failed"]) + int(values["errors"])
    sent.failures = [f"{failed} requests failed (non-2xx or socket errors)"] if failed else []
    return sent


def post_all(url: str, deliveries: list[Delivery], clients: int) -> Sent:
    """POST every delivery, `clients` threads back to back, each with its own Session."""
    sent = Sent()
    lock = threading.Lock()
    cursor = [0]
    gate = threading.Barrier(clients + 1)

    def client() -> None:
        latencies, failures, duplicates = [], [], 0
        with requests.Session() as session:
            gate.wait()
            while True:
                with lock:
                    index = cursor[0]
                    cursor[0] += 1
                if index >= len(deliveries):
                    break
                delivery = deliveries[index]
                headers = {
                    "Content-Type": "application/json",
                    "Stripe-Signature": sign(delivery.payload, WEBHOOK_SECRET),
                }
                started = time.perf_counter()
                try:
                    response = session.post(url, data=delivery.payload, headers=headers, timeout=30)
                except requests.RequestException as error:
                    failures.append(f"{type(error).__name__}: {error}")
                    continue
                took = time.perf_counter() - started
                if 200 <= response.status_code < 300:
                    latencies.append(took)
                    if b'"duplicate": true' in response.content:
                        duplicates += 1
                else:
                    failures.append(f"HTTP {response.status_code}: {response.text[:160]!r}")
        with lock:
            sent.latencies.extend(latencies)
            sent.failures.extend(failures)
            sent.duplicates_answered += duplicates

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    gate.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    sent.elapsed = time.perf_counter() - began
    sent.accepted = len(sent.latencies)
    return sent


def make_deliveries(
    prefix: str, count: int, duplicates: float, intents: list[dict], rng: random.Random
) -> tuple[list[Delivery], int]:
    """`count` distinct events plus round(count * duplicates) re-deliveries, shuffled."""
    distinct = []
    for number in range(count):
        intent = intents[number % len(intents)]
        event = {
            "id": f"evt_{prefix}{number:07d}",
            "object": "event",
            "api_version": "2024-06-20",
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": rng.choice(KINDS),
            "data": {"object": intent},
        }
        # Stripe sends its events pretty-printed, two spaces.
        distinct.append(Delivery(event["id"], json.dumps(event, indent=2).encode()))
    repeated = rng.sample(distinct, min(len(distinct), round(count * duplicates)))
    deliveries = distinct + repeated
    rng.shuffle(deliveries)
    return deliveries, len(distinct)


# The database --------------------------------------------------------------------------------


def events_state(prefix: str) -> tuple[int, int, object, object, int, int]:
    """(stored, unprocessed, first received_at, last processed_at, attempts > 1, with last_error)
    for the events whose id starts with evt_<prefix>."""
    with psycopg.connect(**PG, dbname=DB_NAME) as connection:
        return connection.execute(
            """
            SELECT COUNT(*), COUNT(*) FILTER (WHERE processed_at IS NULL), MIN(received_at),
                   MAX(processed_at), COUNT(*) FILTER (WHERE attempts > 1),
                   COUNT(*) FILTER (WHERE last_error <> '')
            FROM billing_webhookevent WHERE stripe_event_id LIKE %s
            """,
            [f"evt_{prefix}%"],
        ).fetchone()


def wait_processed(prefix: str, expected: int, stall: float, worker: Process) -> tuple:
    """Poll until all `expected` events of `prefix` are stored and processed, or until nothing
    has moved for `stall` seconds. Returns the last events_state()."""
    last_left, moved_at = None, time.monotonic()
    while True:
        state = events_state(prefix)
        stored, unprocessed = state[0], state[1]
        left = expected - stored + unprocessed
        if left == 0:
            return state
        if left != last_left:
            last_left, moved_at = left, time.monotonic()
        elif time.monotonic() - moved_at > stall:
            return state
        if not worker.alive():
            raise RuntimeError(f"the Celery worker exited:\n{worker.log_tail()}")
        time.sleep(0.2)


def payments_state() -> dict[str, int]:
    with psycopg.connect(**PG, dbname=DB_NAME) as connection:
        return dict(
            connection.execute("SELECT status, COUNT(*) FROM billing_payment GROUP BY status")
        )


def server_times(access_log: Path, server: str) -> list[float]:
    """Seconds the web server spent on each /stripe/webhook answered 2xx (its access log)."""
    return [
        seconds
        for _, path, status, seconds in access_log_requests(access_log, server)
        if path == "/stripe/webhook" and status.startswith("2")
    ]


# The breakdown, in this process ---------------------------------------------------------------


def breakdown(env: dict[str, str], prefix: str, intents: list[dict], rounds: int) -> None:
    """Each step of taking a webhook in, timed alone in this process, `rounds` times each."""
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import stripe
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from billing import gateway
    from billing.services import webhooks
    from billing.tasks import webhook_process

    rng = random.Random(11)
    queue = settings.CELERY_TASK_DEFAULT_QUEUE

    def fresh(tag: str) -> list[Delivery]:
        return make_deliveries(f"{prefix}{tag}", rounds, 0.0, intents, rng)[0]

    def timed(label: str, items: list, step) -> None:
        step(items[0])  # warm up (imports, connections)
        durations = []
        for item in items[1:]:
            started = time.perf_counter()
            step(item)
            durations.append(time.perf_counter() - started)
        print(
            f"    {label:<58} mean {us(statistics.fmean(durations))}  p50 {us(percentile(durations, 50))}"
            f"  p99 {us(percentile(durations, 99))}"
        )

    tolerance = settings.STRIPE_WEBHOOK_TOLERANCE
    signed = [(d.payload, sign(d.payload, WEBHOOK_SECRET)) for d in fresh("a")]
    size = statistics.fmean(len(p) for p, _ in signed)
    print(f"    ({rounds} rounds each, payloads of {size:.0f} bytes, servers stopped)")
    timed("json.loads(payload)", signed, lambda item: json.loads(item[0]))
    timed(
        "stripe.WebhookSignature.verify_header (HMAC only)",
        signed,
        lambda item: stripe.WebhookSignature.verify_header(
            item[0].decode(), item[1], WEBHOOK_SECRET, tolerance
        ),
    )
    timed(
        "stripe.Webhook.construct_event",
        signed,
        lambda item: stripe.Webhook.construct_event(item[0], item[1], WEBHOOK_SECRET, tolerance),
    )
    timed(
        "gateway.webhook_event_parse (construct_event + to_dict)",
        signed,
        lambda item: gateway.webhook_event_parse(payload=item[0], signature=item[1]),
    )
    timed(
        "Celery publish alone (webhook_process.apply_async)",
        list(range(rounds)),
        lambda _: webhook_process.apply_async((0,), queue=queue),
    )
    connection.ensure_connection()
    new = [(d.payload, sign(d.payload, WEBHOOK_SECRET)) for d in fresh("b")]
    timed(
        "webhooks.webhook_receive, new event (parse+store+enqueue)",
        new,
        lambda item: webhooks.webhook_receive(payload=item[0], signature=item[1]),
    )
    timed(
        "webhooks.webhook_receive, duplicate",
        new,
        lambda item: webhooks.webhook_receive(payload=item[0], signature=item[1]),
    )
    client = Client()
    via_django = [(d.payload, sign(d.payload, WEBHOOK_SECRET)) for d in fresh("c")]

    def post(item) -> None:
        response = client.post(
            "/stripe/webhook",
            data=item[0],
            content_type="application/json",
            headers={"Stripe-Signature": item[1]},
            HTTP_HOST="127.0.0.1",
        )
        if response.status_code != 200:
            raise RuntimeError(
                f"the test client got {response.status_code}: {response.content[:200]!r}"
            )

    timed("the Django view through the test client (all middleware)", via_django, post)
    from config.wsgi import application

    def wsgi_post(item) -> None:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/stripe/webhook",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "HTTP_HOST": "127.0.0.1",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(item[0])),
            "HTTP_STRIPE_SIGNATURE": item[1],
            "wsgi.input": io.BytesIO(item[0]),
        }
        answer: list[str] = []
        b"".join(application(environ, lambda status, headers, exc_info=None: answer.append(status)))
        if not answer[0].startswith("200"):
            raise RuntimeError(f"config.wsgi.application answered {answer[0]}")

    via_wsgi = [(d.payload, sign(d.payload, WEBHOOK_SECRET)) for d in fresh("d")]
    timed("config.wsgi.application, as the web server calls it", via_wsgi, wsgi_post)
    print(
        "    (webhook_receive - parse = storing and nudging; config.wsgi.application - webhook_receive\n"
        "     = the bare WSGI endpoint's own work; the server's time - that = the web server)"
    )


# Main --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--events",
        type=int,
        default=None,
        help="distinct events: the pool a timed wrk run draws from (20,000), or how many the "
        "Python clients send (5,000)",
    )
    parser.add_argument(
        "--duplicates",
        type=float,
        default=0.1,
        help="re-deliveries of already-sent events, as a fraction of --events (0.1)",
    )
    parser.add_argument(
        "--client",
        choices=("wrk", "python"),
        default="wrk",
        help="load generator: wrk (C, installed with apt-get install wrk; the default) or "
        "Python threads with requests (--clients of them), which cost about 1 ms of CPU per POST",
    )
    parser.add_argument(
        "--clients", type=int, default=8, help="concurrent connections (wrk) or client threads (8)"
    )
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk -t (1)")
    parser.add_argument(
        "--duration",
        type=float,
        default=10.0,
        help="with wrk: seconds of load; --events is then the pool of distinct events to draw "
        "from, and must outlast the run (10)",
    )
    parser.add_argument(
        "--payments", type=int, default=20, help="Flywheel payments the events are about (20)"
    )
    parser.add_argument(
        "--warmup", type=int, default=200, help="events sent and processed first, not counted (200)"
    )
    parser.add_argument(
        "--server",
        choices=("granian", "gunicorn"),
        default="granian",
        help="the web server: granian, as docs/deployment.md runs Flywheel (the default), or "
        "gunicorn (its earlier setup, for comparison)",
    )
    parser.add_argument(
        "--worker-class",
        choices=("sync", "gthread"),
        default="gthread",
        help="gunicorn -k, with --server gunicorn (gthread)",
    )
    parser.add_argument(
        "--web-workers", type=int, default=2, help="web server processes: granian --workers, gunicorn -w (2)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads per web process: granian --blocking-threads (2, as docs/deployment.md runs "
        "it), gunicorn --threads with gthread (4, its earlier setup)",
    )
    parser.add_argument(
        "--worker-concurrency", type=int, default=4, help="Celery worker threads (4)"
    )
    parser.add_argument(
        "--worker",
        choices=("during", "after"),
        default="during",
        help="run the Celery worker while the events arrive (during, the default: both share the "
        "cores) or stop it and start it once they are all in (after: intake and processing "
        "each alone)",
    )
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=0,
        metavar="N",
        help="start the worker under nice -n N (0, the default: the same priority as the web "
        "server), to see how much a lower priority gives the intake back (docs/deployment.md)",
    )
    parser.add_argument(
        "--breakdown-rounds",
        type=int,
        default=500,
        help="rounds per step of the in-process breakdown; 0 skips it (500)",
    )
    parser.add_argument(
        "--stall",
        type=float,
        default=60.0,
        help="give up processing after this many seconds without progress (60)",
    )
    parser.add_argument(
        "--seed", type=int, default=7, help="random seed for kinds, duplicates, order (7)"
    )
    parser.add_argument("--keep-db", action="store_true", help=f"leave the {DB_NAME} database")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra setting for every process, e.g. --env DATABASE_CONN_MAX_AGE=0 (repeatable)",
    )
    args = parser.parse_args()
    if args.client == "wrk" and tool_ensure("wrk") is None:
        # A bench runs with what it can get, and says so: Python threads cost the server's two
        # cores about 1 ms of CPU per POST that wrk does not, so the two figures differ.
        print("  wrk could not be installed: the Python client is used instead (--client python)")
        args.client = "python"
    if args.events is None:
        args.events = 20000 if args.client == "wrk" else 5000
    extra_env = dict(item.split("=", 1) for item in args.env)

    run = uuid.uuid4().hex[:10]
    port, stripe_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    stripe_base = f"http://127.0.0.1:{stripe_port}"
    scratch = Path(tempfile.mkdtemp(prefix="flywheel-bench-webhooks-"))
    queue = f"flywheel-bench-{run}"
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in (
            "CACHE_URL",
            "CELERY_BROKER_URL",
            "POSTHOG_API_KEY",
            "EMAIL_HOST",
            "STRIPE_SECRET_KEY",
            "STRIPE_PUBLISHABLE_KEY",
            "STRIPE_API_BASE",
            "STRIPE_JS_URL",
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
            "LOCALSTRIPE_PORT": str(stripe_port),
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "MAIL_DIR": str(scratch / "mail"),
            "FLYWHEEL_VAR_DIR": str(scratch / "var"),
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra_env)
    if args.threads is None:
        args.threads = 2 if args.server == "granian" else 4
    if args.server == "granian":
        web_label = f"granian --workers {args.web_workers} --blocking-threads {args.threads}"
    else:
        web_label = f"gunicorn -k {args.worker_class} -w {args.web_workers}" + (
            f" --threads {args.threads}" if args.worker_class == "gthread" else ""
        )

    heading("Flywheel webhook intake bench")
    print(
        f"  {args.events} events (+{round(args.events * args.duplicates)} duplicates, "
        f"+{args.warmup} warm-up) about {args.payments} payments, {args.clients} {'wrk connections' if args.client == 'wrk' else 'client threads'}, "
        f"{web_label}, {'nice -n ' + str(args.worker_nice) + ' ' if args.worker_nice else ''}"
        f"celery --pool=threads -c {args.worker_concurrency} ({args.worker} the intake), "
        f"{os.cpu_count()} CPU(s)"
    )
    if extra_env:
        print(f"  extra settings: {extra_env}")
    print(f"  load generator: {'wrk (' + str(shutil.which('wrk')) + ')' if args.client == 'wrk' else 'Python threads (requests)'}")
    print(f"  database {DB_NAME}, Redis db 12 queue {queue}, web {base}, localstripe {stripe_base}")
    print(
        f"  load average at start: {load_average()} (other work on the machine skews every figure)"
    )
    print(f"  speed probe at start: {speed_probe():.1f} ms (a fixed pure-Python loop, best of 5)")
    print(f"  round-trip probe at start: {round_trip_probe():.0f} µs (SELECT 1 to PostgreSQL, median of 500)")

    # Our signing is Stripe's.
    import stripe

    probe_payload, probe_t = b'{"id": "evt_probe"}', 1_700_000_000
    expected = stripe.WebhookSignature._compute_signature(
        f"{probe_t}.{probe_payload.decode()}", WEBHOOK_SECRET
    )
    assert sign(probe_payload, WEBHOOK_SECRET, probe_t) == f"t={probe_t},v1={expected}"

    processes: list[Process] = []
    worker: Process | None = None
    failures: list[str] = []
    try:
        print("\n  recreating the database, migrating, syncing the catalog ...", flush=True)
        database_recreate(DB_NAME)
        manage(env, "migrate", "--noinput")
        manage(env, "catalog_sync")

        print("  starting localstripe ...", flush=True)
        localstripe = Process(
            "localstripe",
            [sys.executable, "-m", "billing.localstripe_server", "--port", str(stripe_port)],
            env,
            scratch,
        )
        processes.append(localstripe)

        def stripe_up() -> bool:
            try:
                requests.get(f"{stripe_base}/js.stripe.com/v3/", timeout=1)
                return True
            except requests.RequestException:
                return False

        wait_until(stripe_up, timeout=30, what="localstripe", interval=0.1, processes=[localstripe])

        print(
            f"  creating {args.payments} payments charged in localstripe, not yet recorded ...",
            flush=True,
        )
        started = time.perf_counter()
        # Their checkout tasks (payment_charge) go to a queue nobody reads: the bench charges
        # the intents itself, so that only the webhooks tell Flywheel.
        output = manage(
            {**env, "CELERY_QUEUE": f"{queue}-setup"},
            "shell",
            "-c",
            SETUP.format(count=args.payments),
        )
        lines = [line.split() for line in output.splitlines() if line.startswith("INTENT ")]
        intent_ids = [parts[1] for parts in lines]
        if len(intent_ids) != args.payments or any(parts[2] != "succeeded" for parts in lines):
            raise RuntimeError(f"setting up the payments went wrong:\n{output[-2000:]}")
        intents = []
        for intent_id in intent_ids:
            answer = requests.get(
                f"{stripe_base}/v1/payment_intents/{intent_id}", auth=(SECRET_KEY, ""), timeout=10
            )
            answer.raise_for_status()
            intents.append(answer.json())
        print(
            f"    {len(intents)} PaymentIntents in {time.perf_counter() - started:.1f}s; "
            f"payments: {payments_state()}"
        )

        print(f"  starting {web_label} and the Celery worker ...", flush=True)
        access_log = scratch / "access.log"
        if args.server == "granian":
            web_argv = granian_argv(
                port,
                args.web_workers,
                access_log,
                blocking_threads=args.threads,
                log_config=scratch / "granian-logging.json",
            )
        else:
            web_argv = gunicorn_argv(
                port,
                args.web_workers,
                access_log,
                worker_class=args.worker_class,
                timeout=120,
                threads=args.threads if args.worker_class == "gthread" else None,
            )
        web = Process("web", web_argv, env, scratch)
        processes.append(web)
        worker_argv = celery_worker_argv(args.worker_concurrency, nice=args.worker_nice)

        def worker_start(name: str) -> Process:
            process = Process(name, worker_argv, env, scratch)
            processes.append(process)
            wait_until(
                lambda: " ready." in process.log_tail(200),
                timeout=60,
                what="the Celery worker",
                interval=0.1,
                processes=[process],
            )
            return process

        def web_up() -> bool:
            try:
                return requests.get(f"{base}/", timeout=2).status_code < 500
            except requests.RequestException:
                return False

        wait_until(web_up, timeout=60, what=args.server, interval=0.2, processes=[web])
        worker = worker_start("worker")

        rng = random.Random(args.seed)
        url = f"{base}/stripe/webhook"

        def send(url: str, deliveries: list[Delivery]) -> Sent:
            if args.client == "wrk":
                return post_all_wrk(url, deliveries, args.clients, args.wrk_threads, args.duration)
            return post_all(url, deliveries, args.clients)
        if args.warmup:
            print(
                f"  warming up with {args.warmup} events (left out of every figure) ...", flush=True
            )
            warm, warm_distinct = make_deliveries(f"{run}w", args.warmup, 0.0, intents, rng)
            sent = post_all(url, warm, args.clients)  # few: Python threads will do
            if sent.failures:
                raise RuntimeError(f"warm-up POSTs failed: {sent.failures[:3]}")
            state = wait_processed(f"{run}w", warm_distinct, args.stall, worker)
            if state[1] or state[0] != warm_distinct:
                failures.append(
                    f"warm-up: {state[0]} of {warm_distinct} events stored, {state[1]} unprocessed "
                    f"after {args.stall:.0f}s without progress"
                )

        deliveries, distinct = make_deliveries(
            f"{run}m", args.events, args.duplicates, intents, rng
        )
        sizes = [len(d.payload) for d in deliveries]
        meter = CpuMeter({args.server: web, "celery worker": worker, "localstripe": localstripe})
        if args.worker == "after":
            worker.stop()
            meter.groups.pop("celery worker")
        access_log.write_text("")  # the server appends (O_APPEND): the warm-up is left out

        print(
            f"  POSTing {len(deliveries)} deliveries ({distinct} distinct events, "
            f"{len(deliveries) - distinct} duplicates, {statistics.fmean(sizes):.0f} bytes each on average) ...",
            flush=True,
        )
        cpu_before = meter.snapshot()
        intake_started_at = time.time()
        sent = send(url, deliveries)
        intake_ended_at = time.time()
        cpu_after = meter.snapshot()
        failures.extend(sent.failures)
        state_after_intake = events_state(f"{run}m")
        if args.client == "wrk":
            if sent.exhausted:
                failures.append(
                    f"wrk ran out of deliveries before {args.duration:g}s: raise --events "
                    "(the rate is understated)"
                )
            distinct = state_after_intake[0]  # a timed run sends part of the pool

        print("  waiting until every stored event is processed ...", flush=True)
        if args.worker == "after":
            worker = worker_start("worker-after")
            meter.groups["celery worker"] = worker
            processing_from = time.time()
        else:
            processing_from = intake_started_at
        processing_cpu_before = meter.snapshot()
        state = wait_processed(f"{run}m", distinct, args.stall, worker)
        processing_cpu_after = meter.snapshot()
        stored, unprocessed, _, last_processed, retried, errored = state
        payments = payments_state()

        # Figures --------------------------------------------------------------------------
        heading("Results")
        print(
            f"  load average at end: {load_average()}, speed probe at end: {speed_probe():.1f} ms, "
            f"round-trip probe at end: {round_trip_probe():.0f} µs"
        )
        print()
        accepted = sent.accepted
        rate = accepted / sent.elapsed if sent.elapsed else float("nan")
        print(f"  Intake: {len(deliveries)} POSTs by {args.clients} {'wrk connections' if args.client == 'wrk' else 'client threads'} to {web_label}")
        print(
            f"    accepted (2xx)           {accepted} in {sent.elapsed:.2f} s = {rate:8.1f} events/s"
            f"   (target >= {TARGET_ACCEPTED:,.0f}/s)"
        )
        print(
            f"    of which distinct        {stored} stored (expected {distinct}), "
            f"{sent.duplicates_answered} answered as duplicates (sent {len(deliveries) - distinct}), "
            f"{len(sent.failures)} failed"
        )
        print(
            f"    client latency           p50 {ms(sent.p50 if sent.p50 is not None else percentile(sent.latencies, 50))}  "
            f"p99 {ms(sent.p99 if sent.p99 is not None else percentile(sent.latencies, 99))}  "
            f"max {ms(sent.latency_max if sent.latency_max is not None else max(sent.latencies, default=float('nan')))}"
        )
        inside = server_times(access_log, args.server)
        if inside:
            print(
                f"    inside {args.server:<17} p50 {ms(percentile(inside, 50))}  "
                f"p99 {ms(percentile(inside, 99))}  mean {ms(statistics.fmean(inside))}  (access log, n={len(inside)})"
            )
        print(
            f"    processed when the last POST was answered: {state_after_intake[0] - state_after_intake[1]}"
            f" of {state_after_intake[0]} stored"
        )
        print()
        done = stored - unprocessed
        print(
            f"  Processing: celery --pool=threads -c {args.worker_concurrency}, "
            + (
                "running while the events arrived"
                if args.worker == "during"
                else "started once every event was in"
            )
        )
        if last_processed is not None:
            span = last_processed.timestamp() - processing_from
            what = "first POST" if args.worker == "during" else "worker ready"
            print(
                f"    processed                {done} of {distinct} in {span:.2f} s ({what} -> last processed_at)"
                f" = {done / span if span > 0 else float('nan'):8.1f} events/s"
            )
            print(
                f"    last processed_at - last POST answered: {last_processed.timestamp() - intake_ended_at:+.2f} s"
            )
        if unprocessed or stored != distinct:
            failures.append(
                f"{unprocessed} stored events unprocessed and {distinct - stored} not stored "
                f"after {args.stall:.0f}s without progress"
            )
        print(f"    retried (attempts > 1) {retried}, with last_error {errored}")
        print(f"    payments by status: {payments}")
        if set(payments) != {"succeeded"}:
            failures.append(f"not every payment succeeded: {payments}")

        print()
        spent, wall = CpuMeter.spent(cpu_before, cpu_after)
        print(f"  CPU while the events were POSTed ({wall:.2f} s wall):")
        cpu_table(spent, wall, accepted, "accepted event")
        spent, wall = CpuMeter.spent(processing_cpu_before, processing_cpu_after)
        if wall > 0.5:
            print(f"  CPU from then until the last event was processed ({wall:.2f} s wall):")
            cpu_table(spent, wall, max(1, state_after_intake[1]), "event left")

        heading("Target")
        verdict = "MET" if rate >= TARGET_ACCEPTED else "NOT MET"
        print(f"  accepted {rate:.1f} events/s >= {TARGET_ACCEPTED:,.0f}/s: {verdict}")
        print(
            f"  (processed {done / span if last_processed and span > 0 else float('nan'):.1f} events/s; no target)"
        )

        if args.breakdown_rounds > 0:
            for process in reversed(processes):
                process.stop()
            # localstripe is not needed for intake; the worker and web must not compete.
            heading("Breakdown: one webhook's intake, step by step, in this process")
            breakdown(env, f"{run}x", intents, args.breakdown_rounds)

        if failures:
            heading(f"Failures ({len(failures)})")
            for failure in sorted(set(failures))[:20]:
                print(f"  {failure}")
    finally:
        for process in reversed(processes):
            process.stop()
        if failures and processes:
            for process in processes:
                print(f"\n--- last lines of the {process.name} log ---\n{process.log_tail(20)}")
        redis_keys_delete(REDIS_URL, queue)
        if args.keep_db:
            print(f"\n  kept database {DB_NAME}")
        else:
            try:
                database_drop(DB_NAME)
            except psycopg.Error as error:
                print(f"  (could not drop {DB_NAME}: {error})")
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
