"""Product activity at size: 10 million events over 12 months, 200,000 people, 20,000
organizations; ingestion through the API against the bare JSON view, and the staff and
largest organization's figures (targets: each under 1 s).

    uv run python bench/activity.py                        # the full size (~6-10 min)
    uv run python bench/activity.py --events 1000000 --users 20000 --organizations 2000   # a quick check
    uv run python bench/activity.py --clients 4 --duration 5 --keep-db

What it starts (and always stops again): a fresh PostgreSQL database `flywheel_bench_activity`
(dropped and recreated at the start, dropped at the end unless --keep-db), migrated and
catalog_synced; gunicorn serving config.wsgi (--web-workers sync workers, 2) on a free port of
127.0.0.1 for the ingestion phase only; Django in this process for the figures. Redis db 13,
keys prefixed by a name unique to the run and deleted at the end. Settings: config.settings,
FLYWHEEL_ENV=development, DEBUG=0.

Data, made by PostgreSQL (generate_series; bench/_bulk.py: indexes built after the load, no
foreign key checks during it), with a fixed seed:
  - --users people and --organizations organizations; each person is a member of one
    organization drawn so that sizes are very uneven (organization 1 is the largest, some
    thousands), and 5% of them of a second one;
  - each membership uses one to three of the catalog's products, from a first day drawn over the
    last 12 months; --events events are spread over those (person, organization, product)
    uses, denser near each one's first day (so cohorts shrink as real ones do), 80% of them of
    a name the product counts as activity;
  - the daily rollups (ActivityDay) are those events grouped per person, organization,
    product and UTC day, as the API would have written them; the raw events (ActivityEvent)
    are those of the last ACTIVITY_RAW_RETENTION_DAYS (90) days, older ones being pruned;
  - when helper B's NPS-by-usage is on this branch (feedback Response.usage_state), --responses
    NPS answers over the 12 months with their usage state and days active drawn at random
    (the breakdown's cost does not depend on which state each answer has).

Figures:
  1. generation times and the table sizes;
  2. ingestion: --clients threads POST /api/v1/activity back to back (a closed loop), batches
     of 1,000 and of 100 new events of organization 1's members, against GET /api/v1/ping
     (no authentication, {"ok": true}) in the same rounds, alternating which goes first:
     requests/s, events/s, and the server's own time per request (gunicorn's access log);
  3. the staff usage figures over all organizations (activity.selectors: usage_figures,
     monthly_usage over 12 months, weekly and monthly retention in both modes, weekly
     lifecycle; feedback's NPS by usage state when it is here), computed live (no snapshot),
     --rounds times, the first (cold) printed apart; then the snapshot's build and the page's
     read through it when helper A's snapshot build is on this branch;
  4. the largest organization's report: the same figures for organization 1 alone (computed
     live, as its admins' report does), and feedback's organization report and usage when they
     are here; the target is checked on all of them and on the two the admins' report page
     computes (organization_report + organization_usage).
Exit status 0 whether or not the targets are met; what could not be measured is printed.
"""

# ruff: noqa: S608 - SQL the bench writes from its own numbers and table names, nothing from outside

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from _bulk import CpuBusy, bulk_fill, connect, django_setup, seconds, sequence_reset, users_fill_sql
from _harness import (
    Process,
    Sample,
    bench_cleanup,
    database_recreate,
    free_port,
    gunicorn_argv,
    heading,
    load_average,
    manage,
    merge,
    ms,
    percentile,
    server_times,
    wait_until,
    web_server_env,
)

DB_NAME = "flywheel_bench_activity"
REDIS_URL = "redis://127.0.0.1:6379/13"
TARGET_SECONDS = 1.0

SETUP = """
from accounts.api_keys import api_key_create
from accounts.models import Membership, Organization, User
admin = User.objects.create_user(email="bench-admin@bench.example", password=None, is_staff=True)
organization = Organization.objects.get(pk=1)
Membership.objects.create(organization=organization, user=admin, role="admin", source="signup")
_, raw = api_key_create(organization=organization, actor=admin, name="bench")
print("KEY", raw)
"""


def post_loop(
    port: int,
    path: str,
    headers: dict[str, str],
    bodies: Callable[[], bytes | None],
    check,
    clients: int,
    duration: float,
) -> Sample:
    """`clients` threads, each POSTing its next body (from `bodies`, None when they ran out) as
    soon as the last one is answered, until `duration` is over."""
    sample = Sample()
    lock = threading.Lock()
    gate = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client() -> None:
        latencies, failures = [], []
        gate.wait()
        while time.perf_counter() < deadline[0]:
            body = bodies()
            if body is None:
                break
            started = time.perf_counter()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                connection.request(
                    "POST" if body else "GET", path, body=body or None, headers=headers
                )
                response = connection.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException) as error:
                failures.append(f"{type(error).__name__}: {error}")
                continue
            finally:
                connection.close()
            if response.status == 200 and check(answer):
                latencies.append(time.perf_counter() - started)
            else:
                failures.append(f"HTTP {response.status}: {answer[:160]!r}")
        with lock:
            sample.latencies.extend(latencies)
            sample.failures.extend(failures)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline[0] = began + duration
    gate.wait()
    for thread in threads:
        thread.join()
    sample.elapsed = time.perf_counter() - began
    return sample


class Batches:
    """Bodies of POST /api/v1/activity: `size` new events each (ids never sent before), of the
    organization's `members`, built ahead so the clients' own CPU is not in the figure."""

    def __init__(
        self,
        *,
        size: int,
        count: int,
        members: list[str],
        names: list[str],
        now_text: str,
        run: str,
    ) -> None:
        self.size = size
        self.lock = threading.Lock()
        self.bodies = []
        for batch in range(count):
            events = [
                {
                    "id": f"{run}-{size}-{batch}-{index}",
                    "user": members[(batch * size + index) % len(members)],
                    "product": "tracker",
                    "name": names[index % len(names)],
                    "occurred_at": now_text,
                }
                for index in range(size)
            ]
            self.bodies.append(json.dumps({"events": events}).encode())
        self.next = 0

    def take(self) -> bytes | None:
        with self.lock:
            if self.next >= len(self.bodies):
                return None
            self.next += 1
            return self.bodies[self.next - 1]


def timed(function: Callable[[], object], rounds: int) -> tuple[float, list[float], object]:
    """The first (cold) time, the following `rounds` times (one when the first took more than
    5 s: a figure that slow is not one to average), and the last answer."""
    started = time.perf_counter()
    answer = function()
    cold = time.perf_counter() - started
    warm = []
    for _ in range(rounds if cold < 5 else 1):
        started = time.perf_counter()
        answer = function()
        warm.append(time.perf_counter() - started)
    return cold, warm, answer


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--events", type=int, default=10_000_000, help="activity events over 12 months (10,000,000)"
    )
    parser.add_argument("--users", type=int, default=200_000, help="people (200,000)")
    parser.add_argument("--organizations", type=int, default=20_000, help="organizations (20,000)")
    parser.add_argument(
        "--responses",
        type=int,
        default=100_000,
        help="NPS answers over 12 months, when B's usage state is here (100,000)",
    )
    parser.add_argument("--clients", type=int, default=4, help="ingestion client threads (4)")
    parser.add_argument(
        "--duration", type=float, default=5.0, help="seconds per endpoint per round (5)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="ingestion rounds, and timed runs of each figure (3)"
    )
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn sync workers (2)")
    parser.add_argument("--keep-db", action="store_true", help=f"leave the {DB_NAME} database")
    args = parser.parse_args()

    run = uuid.uuid4().hex[:10]
    port = free_port()
    scratch = Path(tempfile.mkdtemp(prefix="flywheel-bench-activity-"))
    prefix = f"flywheel-bench-{run}"
    env = web_server_env(
        db_name=DB_NAME,
        redis_url=REDIS_URL,
        prefix=prefix,
        site_url=f"http://127.0.0.1:{port}",
        scratch=scratch,
    )
    heading("Flywheel product activity bench")
    print(
        f"  {args.events:,} events over 12 months, {args.users:,} people, {args.organizations:,} organizations; "
        f"{os.cpu_count()} CPU(s); load average at start: {load_average()}"
    )
    web: Process | None = None
    failures: list[str] = []
    missing: list[str] = []
    try:
        database_recreate(DB_NAME)
        manage(env, "migrate", "--noinput")
        manage(env, "catalog_sync")
        django_setup(env)
        from django.utils import timezone

        from activity.selectors import last_whole_day

        as_of = last_whole_day()
        db = connect(DB_NAME)
        db.execute("SELECT setseed(0.21)")
        products = db.execute(
            "SELECT id, code, activity_events FROM catalog_product WHERE is_active ORDER BY id"
        ).fetchall()
        product_ids = "ARRAY[" + ",".join(str(pk) for pk, _, _ in products) + "]"

        heading("1. Generation")
        timings = {}
        started = time.perf_counter()
        timings["people"] = bulk_fill(
            db, "accounts_user", [users_fill_sql(f"generate_series(1, {args.users}) AS i")]
        )
        timings["organizations"] = bulk_fill(
            db,
            "accounts_organization",
            [
                "INSERT INTO accounts_organization (id, public_id, name, email_domain, join_by_domain, created_at) "
                f"SELECT i, gen_random_uuid(), 'Organization ' || i, '', false, now() - interval '2 years' FROM generate_series(1, {args.organizations}) AS i"
            ],
        )
        # Organization of each person: 1 + floor(n * r^3), so organization 1 holds some 4% of everyone.
        timings["memberships"] = bulk_fill(
            db,
            "accounts_membership",
            [
                "INSERT INTO accounts_membership (organization_id, user_id, role, source, created_at) "
                f"SELECT DISTINCT ON (o, i) o, i, 'member', 'staff', now() - interval '1 year' FROM ("
                f"SELECT i, least({args.organizations}, 1 + floor({args.organizations} * random() ^ 3))::bigint AS o FROM generate_series(1, {args.users}) AS i "
                f"UNION ALL SELECT i, 1 + floor({args.organizations} * random())::bigint FROM generate_series(1, {args.users}) AS i WHERE random() < 0.05"
                ") AS drawn"
            ],
        )
        for table in ("accounts_user", "accounts_organization", "accounts_membership"):
            sequence_reset(db, table)
        # Each membership's uses: 1 to 3 products, from a first day in the last 12 months, and
        # how fast its activity fades after it (the exponent of the day draw).
        db.execute(
            f"""CREATE UNLOGGED TABLE bench_use AS
            SELECT row_number() OVER () AS id, m.organization_id, m.user_id, p.product_id,
                   %(as_of)s::date - floor(random() * 365)::int AS first_day, 1 + 3 * random() AS fade
            FROM accounts_membership m
            CROSS JOIN LATERAL (SELECT ({product_ids})[1 + floor(random() * {len(products)})::int] AS product_id WHERE m.id > 0
                                UNION SELECT ({product_ids})[1 + floor(random() * {len(products)})::int] WHERE random() < 0.4 AND m.id > 0
                                UNION SELECT ({product_ids})[1 + floor(random() * {len(products)})::int] WHERE random() < 0.15 AND m.id > 0) AS p
            WHERE m.user_id <= {args.users}""".replace("%(as_of)s", f"'{as_of.isoformat()}'")
        )
        db.execute("ALTER TABLE bench_use ADD PRIMARY KEY (id)")
        uses = db.execute("SELECT count(*) FROM bench_use").fetchone()[0]
        db.execute(
            f"""CREATE UNLOGGED TABLE bench_event AS
            SELECT k, u.organization_id, u.user_id, u.product_id,
                   u.first_day + floor(random() ^ u.fade * (%(as_of)s::date - u.first_day + 1))::int AS day,
                   floor(random() * 86400)::int AS second, random() < 0.8 AS counts
            FROM (SELECT k, 1 + floor(random() * {uses})::bigint AS use_id FROM generate_series(1, {args.events}) AS k) AS drawn
            JOIN bench_use u ON u.id = drawn.use_id""".replace(
                "%(as_of)s", f"'{as_of.isoformat()}'"
            )
        )
        timings["events drawn"] = time.perf_counter() - started - sum(timings.values())
        timings["daily rollups"] = bulk_fill(
            db,
            "activity_activityday",
            [
                "INSERT INTO activity_activityday (organization_id, user_id, product_id, day, events, active_events) "
                "SELECT organization_id, user_id, product_id, day, count(*), count(*) FILTER (WHERE counts) "
                "FROM bench_event GROUP BY organization_id, user_id, product_id, day"
            ],
        )
        names = {pk: (events or ["used"]) for pk, _, events in products}
        counting = (
            "CASE e.product_id "
            + " ".join(f"WHEN {pk} THEN ARRAY{events!r}" for pk, events in names.items())
            + " END"
        )
        oldest = as_of - timedelta(
            days=int(os.environ.get("ACTIVITY_RAW_RETENTION_DAYS", "90")) - 1
        )
        timings["raw events (90 days)"] = bulk_fill(
            db,
            "activity_activityevent",
            [
                "INSERT INTO activity_activityevent (organization_id, user_id, product_id, event_id, name, occurred_at, received_at) "
                f"SELECT e.organization_id, e.user_id, e.product_id, 'bench-' || e.k, "
                f"CASE WHEN e.counts THEN ({counting})[1 + e.k % array_length({counting}, 1)] ELSE 'settings_opened' END, "
                "e.day + make_interval(secs => e.second), e.day + make_interval(secs => e.second + 5) "
                f"FROM bench_event e WHERE e.day >= '{oldest.isoformat()}'"
            ],
        )
        sequence_reset(db, "activity_activityday")
        sequence_reset(db, "activity_activityevent")
        db.execute("DROP TABLE bench_event")
        sizes = {
            table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in (
                "accounts_user",
                "accounts_organization",
                "accounts_membership",
                "activity_activityday",
                "activity_activityevent",
            )
        }
        largest = db.execute(
            "SELECT organization_id, count(*) FROM accounts_membership GROUP BY organization_id ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
        largest_days = db.execute(
            "SELECT count(*) FROM activity_activityday WHERE organization_id = %s", [largest[0]]
        ).fetchone()[0]
        print(
            f"  {sizes['accounts_user']:,} people, {sizes['accounts_organization']:,} organizations, "
            f"{sizes['accounts_membership']:,} memberships, {uses:,} product uses"
        )
        print(
            f"  {args.events:,} events -> {sizes['activity_activityday']:,} daily rollups (12 months), "
            f"{sizes['activity_activityevent']:,} raw events kept (90 days)"
        )
        print(
            f"  the largest organization (id {largest[0]}): {largest[1]:,} members, {largest_days:,} daily rollups"
        )
        print(
            "  " + ", ".join(f"{name} {seconds(value).strip()}" for name, value in timings.items())
        )
        print(
            f"  generation in all: {seconds(time.perf_counter() - started).strip()}; load average {load_average()}"
        )
        responses = responses_generate(db, args.responses, as_of, missing)

        heading("2. Ingestion through the API against the bare JSON view")
        output = manage(env, "shell", "-c", SETUP)
        raw_key = next(line.split()[1] for line in output.splitlines() if line.startswith("KEY "))
        members = [
            str(public_id)
            for (public_id,) in db.execute(
                "SELECT u.public_id FROM accounts_user u JOIN accounts_membership m ON m.user_id = u.id "
                "WHERE m.organization_id = 1 AND u.id <= %s ORDER BY u.id",
                [args.users],
            ).fetchall()
        ]
        tracker_names = next(events for _, code, events in products if code == "tracker")
        now_text = (timezone.now() - timedelta(minutes=1)).isoformat()
        # New batches for the rounds at up to 20 (of 1,000) or 100 (of 100) a second; a client
        # that runs out stops, and its rate counts the time it had.
        batch_sets = {
            size: Batches(
                size=size,
                count=count,
                members=members,
                names=tracker_names,
                now_text=now_text,
                run=run,
            )
            for size, count in (
                (1000, 20 * args.rounds * int(args.duration) + 20),
                (100, 100 * args.rounds * int(args.duration) + 50),
            )
        }
        access_log = scratch / "access.log"
        web = Process(
            "web", gunicorn_argv(port, args.web_workers, access_log, timeout=120), env, scratch
        )
        wait_until(lambda: _ping(port), timeout=60, what="gunicorn", interval=0.2, processes=[web])
        auth = {"Authorization": f"Bearer {raw_key}", "Content-Type": "application/json"}
        endpoints = {
            "bare (GET /api/v1/ping)": (
                "/api/v1/ping",
                {},
                lambda: b"",
                lambda body: body == b'{"ok": true}',
                0,
            ),
            "activity, 1,000 events a batch": (
                "/api/v1/activity",
                auth,
                batch_sets[1000].take,
                lambda body: json.loads(body)["accepted"] == 1000,
                1000,
            ),
            "activity, 100 events a batch": (
                "/api/v1/activity",
                auth,
                batch_sets[100].take,
                lambda body: json.loads(body)["accepted"] == 100,
                100,
            ),
        }
        # Warm-up: each worker's first requests (imports, connections) are left out.
        for path, headers, bodies, check, _ in endpoints.values():
            post_loop(port, path, headers, bodies, check, args.clients, 1.5)
        access_log.write_text("")
        busy = CpuBusy()
        samples: dict[str, list[Sample]] = {label: [] for label in endpoints}
        for round_index in range(args.rounds):
            order = list(endpoints.items())
            if round_index % 2:
                order.reverse()
            for label, (path, headers, bodies, check, _) in order:
                samples[label].append(
                    post_loop(port, path, headers, bodies, check, args.clients, args.duration)
                )
        share = busy.share()
        web.stop()
        web = None
        inside = server_times(access_log)
        print(
            f"  {args.clients} clients back to back, {args.rounds} rounds x {args.duration:g} s per endpoint, gunicorn -w {args.web_workers} (sync)"
        )
        rates = {}
        for label, (_, _, _, _, size) in endpoints.items():
            sample = merge(samples[label])
            failures.extend(sample.failures)
            rate = len(sample.latencies) / sample.elapsed if sample.elapsed else float("nan")
            rates[label] = rate
            events_text = f"{rate * size:9,.0f} events/s" if size else " " * 16
            print(
                f"    {label:<32} {rate:8.1f} req/s {events_text}   p50 {ms(percentile(sample.latencies, 50))}  "
                f"p99 {ms(percentile(sample.latencies, 99))}   n={len(sample.latencies)}, failed {len(sample.failures)}"
            )
        for path, values in sorted(inside.items()):
            print(
                f"    server time {path:<20} p50 {ms(percentile(values, 50))}  mean {ms(statistics.fmean(values))}  n={len(values)}"
            )
        bare = rates["bare (GET /api/v1/ping)"]
        for label, (_, _, _, _, size) in endpoints.items():
            if size:
                print(
                    f"    {label}: {rates[label] * size / bare:.1f} events for each ping answered in the same time ({rates[label] / bare:.3f} requests per ping)"
                )
        print(
            f"  cores {share:.0%} busy during the rounds (every process on the machine, the load generator too); load average {load_average()}"
        )

        heading("3. Staff usage figures over all organizations")
        staff = staff_figures(
            args.rounds, as_of, organization_id=None, missing=missing, responses=responses
        )
        read = _snapshot(as_of, args.rounds, missing, responses)
        heading("4. The largest organization's report")
        report_figures: dict[str, float] = {}
        organization = staff_figures(
            args.rounds,
            as_of,
            organization_id=largest[0],
            missing=missing,
            responses=responses,
            medians=report_figures,
        )
        # What the admins' report page itself computes (feedback's views): its NPS report and
        # its usage (active people, seats, MAU trend, retention heat map).
        page = [
            label
            for label in report_figures
            if "organization_report" in label or "organization_usage" in label
        ]

        heading("Targets")
        for name, total in (
            ("staff usage figures computed live (no snapshot)", staff),
            *(
                [("staff usage figures read through the snapshot", read)]
                if read is not None
                else []
            ),
            (
                f"largest organization's figures, all of the above ({largest[1]:,} members)",
                organization,
            ),
            *(
                [
                    (
                        "largest organization's admin report page ("
                        + " + ".join(label.split("(")[-1].rstrip(")") for label in page)
                        + ")",
                        sum(report_figures[label] for label in page),
                    )
                ]
                if page
                else []
            ),
        ):
            verdict = "MET" if total < TARGET_SECONDS else "NOT MET"
            print(f"  {name}: median {seconds(total).strip()} < {TARGET_SECONDS:g} s: {verdict}")
        if missing:
            heading("Not measured")
            for line in missing:
                print(f"  {line}")
        if failures:
            heading(f"Failures ({len(failures)})")
            for failure in sorted(set(failures))[:20]:
                print(f"  {failure}")
        print(f"\n  load average at end: {load_average()}")
        db.close()
    finally:
        from django.db import connections

        connections.close_all()
        bench_cleanup(
            web=web,
            show_log=bool(failures),
            redis_url=REDIS_URL,
            prefix=prefix,
            db_name=DB_NAME,
            keep_db=args.keep_db,
            scratch=scratch,
        )
    return 0


def _ping(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/api/v1/ping")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def responses_generate(db, count: int, as_of, missing: list[str]) -> int:
    """NPS answers with a usage state when helper B's columns are here; 0 otherwise."""
    from feedback.models import Response

    fields = {field.name for field in Response._meta.get_fields()}
    if not {"usage_state", "active_days"} <= fields:
        missing.append(
            "NPS by usage: feedback Response has no usage_state/active_days on this branch (helper B's work not merged)"
        )
        return 0
    started = time.perf_counter()
    states = "ARRAY['new', 'returning', 'resurrecting', 'dormant', 'none']"
    db.execute(
        f"""WITH surveys AS (
            INSERT INTO feedback_survey (public_id, organization_id, user_id, product_id, status, asked_at, closed_at)
            SELECT gen_random_uuid(), m.organization_id, m.user_id, NULL, 'answered', moment, moment
            FROM (SELECT k, 1 + floor(random() * (SELECT max(id) FROM accounts_membership))::bigint AS membership,
                         '{as_of.isoformat()}'::date - random() * interval '365 days' AS moment
                  FROM generate_series(1, {count}) AS k) AS drawn
            JOIN accounts_membership m ON m.id = drawn.membership
            RETURNING id, organization_id, user_id, asked_at
        )
        INSERT INTO feedback_response (public_id, survey_id, organization_id, user_id, score, role, comment, may_contact,
                                       seats, tenure_days, organization_age_days, paying, active_days, usage_state,
                                       submitted_at, month, suggested_category, category)
        SELECT gen_random_uuid(), id, organization_id, user_id, floor(random() * 11)::int, 'other', '', false,
               10, floor(random() * 700)::int, 700, random() < 0.4, floor(random() * 31)::int,
               ({states})[1 + floor(random() * 5)::int], asked_at, date_trunc('month', asked_at)::date, '', ''
        FROM surveys"""
    )
    db.execute("VACUUM ANALYZE feedback_response")
    print(
        f"  {count:,} NPS answers with a usage state (drawn at random) in {seconds(time.perf_counter() - started).strip()}"
    )
    return count


def staff_figures(
    rounds: int,
    as_of,
    *,
    organization_id: int | None,
    missing: list[str],
    responses: int,
    medians: dict[str, float] | None = None,
) -> float:
    """Time each figure of the staff page (or of one organization's report), live; returns the
    median total."""
    from activity import selectors

    month = as_of.replace(day=1)
    figures: dict[str, Callable[[], object]] = {
        "DAU, WAU, MAU, stickiness (usage_figures)": lambda: selectors.usage_figures(
            as_of=as_of, organization_id=organization_id
        ),
    }
    for name in ("monthly_usage", "retention", "lifecycle"):
        if not hasattr(selectors, name):
            missing.append(
                f"{name}: not in activity.selectors on this branch (helper A's interface)"
            )
    if hasattr(selectors, "monthly_usage"):
        figures["MAU trend, 12 months (monthly_usage)"] = lambda: selectors.monthly_usage(
            until=month, months=12, organization_id=organization_id, as_of=as_of
        )
    if hasattr(selectors, "retention"):
        for period in ("week", "month"):
            for mode in ("n_day", "unbounded"):
                figures[f"retention by {period}, {mode.replace('_', '-')}"] = (
                    lambda period=period, mode=mode: selectors.retention(
                        product_id=None,
                        period=period,
                        mode=mode,
                        as_of=as_of,
                        organization_id=organization_id,
                    )
                )
    if hasattr(selectors, "lifecycle"):
        figures["lifecycle by week"] = lambda: selectors.lifecycle(
            product_id=None, period="week", as_of=as_of, organization_id=organization_id
        )
    if responses:
        figures.update(_nps_figures(month, organization_id, missing))
    busy = CpuBusy()
    medians = {} if medians is None else medians
    totals_cold = 0.0
    warm_totals = [0.0] * rounds
    for label, function in figures.items():
        cold, warm, _ = timed(function, rounds)
        totals_cold += cold
        for index in range(rounds):
            warm_totals[index] += warm[min(index, len(warm) - 1)]
        medians[label] = statistics.median(warm)
        print(
            f"    {label:<56} cold {seconds(cold)}   then {', '.join(seconds(value).strip() for value in warm)}"
        )
    median = statistics.median(warm_totals) if warm_totals else totals_cold
    print(
        f"    {'all of them':<56} cold {seconds(totals_cold)}   then median {seconds(median).strip()}"
    )
    print(f"    cores {busy.share():.0%} busy meanwhile; load average {load_average()}")
    return median


def _nps_figures(
    month, organization_id: int | None, missing: list[str]
) -> dict[str, Callable[[], object]]:
    """Helper B's figures of the staff NPS page (or of the organization's admin report), when
    they are here: the NPS with its breakdowns by use of the product, and MAU and retention
    beside it."""
    from feedback import selectors as feedback

    wanted = (
        ["monthly_report", "usage_beside_nps"]
        if organization_id is None
        else ["organization_report", "organization_usage"]
    )
    absent = [name for name in wanted if not hasattr(feedback, name)]
    if absent:
        missing.append(f"feedback.selectors has no {', '.join(absent)} on this branch (helper B)")
        return {}
    if organization_id is None:
        return {
            "NPS and its breakdowns, by usage too (monthly_report)": lambda: (
                feedback.monthly_report(month=month)
            ),
            "MAU and retention beside the NPS (usage_beside_nps)": lambda: (
                feedback.usage_beside_nps(month=month)
            ),
        }
    from accounts.models import Organization

    organization = Organization.objects.get(pk=organization_id)
    return {
        "its NPS report (organization_report)": lambda: feedback.organization_report(
            organization=organization, until=month
        ),
        "its active people, seats, trend (organization_usage)": lambda: feedback.organization_usage(
            organization=organization, month=month
        ),
    }


def _snapshot(as_of, rounds: int, missing: list[str], responses: int) -> float | None:
    """Helper A's snapshot of the staff figures (activity.services.staff_figures_build): its
    build for `as_of`, then the staff figures again, now read through it. Returns their median
    total, None when the build is not on this branch."""
    from activity import services

    build = getattr(services, "staff_figures_build", None)
    if build is None:
        missing.append(
            "the staff figures snapshot: no activity.services.staff_figures_build on this branch (helper A)"
        )
        return None
    busy = CpuBusy()
    started = time.perf_counter()
    build(as_of=as_of)
    took = time.perf_counter() - started
    print(
        f"    snapshot build (activity.services.staff_figures_build) for {as_of}: {seconds(took).strip()} (cores {busy.share():.0%} busy)"
    )
    print("    the same figures, read through the snapshot:")
    return staff_figures(rounds, as_of, organization_id=None, missing=missing, responses=responses)


if __name__ == "__main__":
    sys.exit(main())
