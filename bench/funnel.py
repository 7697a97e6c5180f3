"""The staff signup funnel over 30 days holding a million signups (target: under 1 s).

    uv run python bench/funnel.py                     # 1,000,000 people in the window (~5 min)
    uv run python bench/funnel.py --people 100000     # a quick check
    uv run python bench/funnel.py --keep-db           # keep flywheel_bench_funnel afterwards

What it starts (and always drops again unless --keep-db): a fresh PostgreSQL database
`flywheel_bench_funnel`, migrated; Django in this process against it (Redis db 13, nothing is
queued). No web server: the page's cost is funnel_report's.

Data, made by PostgreSQL (generate_series, bench/_bulk.py: indexes built after the load, no
trigger or foreign key check during it): --people people who signed up in the 30 days before
now, --before more in the 30 days before those (the window must skip them), each with a
journey drawn at random with a fixed seed: anonymous visit(s) to the signup page, signup,
email verified (85%), organization created (75% of those), trial (95%), workspace ready (92%),
invite sent (45%), a colleague joined (60% of those, with their own invited signup), paid
(30% of ready workspaces), each after the previous one; plus --visitors browsers that opened
the signup page and never signed up. Events stamped after now are left out.

Figures:
  1. generation, and building every person's funnel progress from the events
     (funnel_progress_rebuild: what migration 0004 leaves to the first refresh);
  2. funnel_report over the 30 days (the staff page's default), --rounds times: the page's
     answer time with nothing to refresh (the beat task keeps it so), and of its parts; and
     over a past period with partial days at both ends;
  3. new events with the triggers on: --arrivals more people's journeys inserted with the
     triggers (microseconds per event, against the same inserted with them off), the refresh
     of those people, and funnel_report right after a minute's worth of them arrived
     (--per-minute people, refreshed inside the report);
  4. the same answer: funnel_report against funnel_report_from_events (walking the events in
     Python, the old way and the definition) over two days of the window (a whole UTC day from
     the day counts, half a day each side from the rows), and the walk's time.
Exit status 0 whether or not the target is met.
"""

# ruff: noqa: S608 - SQL the bench writes from its own numbers and table names, nothing from outside

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _bulk import CpuBusy, bulk_fill, connect, django_setup, seconds, sequence_reset, users_fill_sql
from _harness import database_drop, database_recreate, heading, load_average, manage, web_server_env

DB_NAME = "flywheel_bench_funnel"
REDIS_URL = "redis://127.0.0.1:6379/13"
TARGET_SECONDS = 1.0

JOURNEY_SQL = """
CREATE UNLOGGED TABLE bench_journey AS
SELECT draw.i, draw.t0, draw.revisit, v.v, o.o, p.p, w.w, inv.inv, joined.joined, paid.paid
FROM (
    SELECT i,
           CASE WHEN i <= %(people)s THEN %(start)s::timestamptz + random() * %(span)s::interval
                ELSE %(start)s::timestamptz - random() * %(span)s::interval END AS t0,
           random() < 0.2 AS revisit,
           random() AS ro, random() AS rp, random() AS rw, random() AS ri, random() AS rj, random() AS rpay,
           random() AS gv, random() AS go, random() AS gp, random() AS gw, random() AS gi, random() AS gj,
           random() AS gpay, random() AS rv
    FROM generate_series(%(first)s, %(last)s) AS i
) AS draw
CROSS JOIN LATERAL (SELECT CASE WHEN draw.rv < 0.85 THEN draw.t0 + make_interval(secs => 20 + draw.gv * 3600) END AS v) AS v
CROSS JOIN LATERAL (SELECT CASE WHEN draw.ro < 0.75 THEN v.v + make_interval(secs => 5 + draw.go * 600) END AS o) AS o
CROSS JOIN LATERAL (SELECT CASE WHEN draw.rp < 0.95 THEN o.o + make_interval(secs => 1 + draw.gp * 60) END AS p) AS p
CROSS JOIN LATERAL (SELECT CASE WHEN draw.rw < 0.92 THEN p.p + make_interval(secs => 30 + draw.gw * 300) END AS w) AS w
CROSS JOIN LATERAL (SELECT CASE WHEN draw.ri < 0.45 THEN w.w + make_interval(secs => 60 + draw.gi * 3 * 86400) END AS inv) AS inv
CROSS JOIN LATERAL (SELECT CASE WHEN draw.rj < 0.6 THEN inv.inv + make_interval(secs => 300 + draw.gj * 86400) END AS joined) AS joined
CROSS JOIN LATERAL (SELECT CASE WHEN draw.rpay < 0.3 THEN w.w + make_interval(secs => 3600 + draw.gpay * 14 * 86400) END AS paid) AS paid
"""

# Every event of the journeys; a colleague's id is the person's plus %(colleagues)s.
EVENTS_SQL = """
INSERT INTO experiments_event (public_id, name, distinct_id, user_id, organization_id, properties, occurred_at,
                               sent_at, attempts, last_error)
SELECT gen_random_uuid(), e.name, e.distinct_id, e.user_id, e.organization_id, e.properties, e.at, e.at, 0, ''
FROM {journeys} AS j
CROSS JOIN LATERAL (VALUES
    ('signup_started', 'anon-' || j.i, NULL::bigint, NULL::bigint, '{{"product": "tracker"}}'::jsonb, j.t0 - interval '90 seconds'),
    ('signup_started', 'anon-' || j.i, NULL, NULL, '{{}}', CASE WHEN j.revisit THEN j.t0 - interval '1 day' END),
    ('signed_up', 'user-' || j.i, j.i, NULL, jsonb_build_object('anonymous_id', 'anon-' || j.i, 'via_invite', false), j.t0),
    ('email_verified', 'user-' || j.i, j.i, NULL, '{{}}', j.v),
    ('organization_created', 'user-' || j.i, j.i, j.i, '{{"domain": ""}}', j.o),
    ('trial_started', 'org-' || j.i, NULL, j.i, '{{"product": "tracker"}}', j.p),
    ('environment_active', 'org-' || j.i, NULL, j.i, '{{}}', j.w),
    ('invite_sent', 'user-' || j.i, j.i, j.i, '{{"role": "member"}}', j.inv),
    ('signed_up', 'user-c' || j.i, j.i + %(colleagues)s, NULL, '{{"anonymous_id": "", "via_invite": true}}', j.joined - interval '1 minute'),
    ('invite_accepted', 'user-c' || j.i, j.i + %(colleagues)s, j.i, '{{}}', j.joined),
    ('subscription_paid', 'org-' || j.i, NULL, j.i, '{{"amount_minor": 9900, "currency": "EUR"}}', j.paid)
) AS e(name, distinct_id, user_id, organization_id, properties, at)
WHERE e.at IS NOT NULL AND e.at < %(now)s
"""

VISITORS_SQL = """
INSERT INTO experiments_event (public_id, name, distinct_id, properties, occurred_at, sent_at, attempts, last_error)
SELECT gen_random_uuid(), 'signup_started', 'anon-visitor-' || k, '{}', t, t, 0, ''
FROM (SELECT k, %(start)s::timestamptz + random() * interval '30 days' AS t FROM generate_series(1, %(visitors)s) AS k) AS v
"""


def sql(statement: str, **values: object) -> str:
    """`statement` with its %(name)s values written in (numbers and timestamps the bench made)."""
    return statement % {
        name: value if isinstance(value, int) else f"'{value}'" for name, value in values.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--people",
        type=int,
        default=1_000_000,
        help="people who signed up in the 30 days (1,000,000)",
    )
    parser.add_argument(
        "--before",
        type=int,
        default=100_000,
        help="people who signed up in the 30 days before (100,000)",
    )
    parser.add_argument(
        "--visitors",
        type=int,
        default=300_000,
        help="signup-page visitors who never signed up (300,000)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="funnel_report runs (5)")
    parser.add_argument(
        "--arrivals", type=int, default=10_000, help="people arriving with the triggers on (10,000)"
    )
    parser.add_argument(
        "--per-minute",
        type=int,
        default=1_000,
        help="people arriving before the last report (1,000)",
    )
    parser.add_argument("--keep-db", action="store_true", help=f"leave the {DB_NAME} database")
    args = parser.parse_args()

    run = uuid.uuid4().hex[:10]
    scratch = Path(tempfile.mkdtemp(prefix="flywheel-bench-funnel-"))
    env = web_server_env(
        db_name=DB_NAME,
        redis_url=REDIS_URL,
        prefix=f"flywheel-bench-{run}",
        site_url="http://127.0.0.1:1",
        scratch=scratch,
    )
    heading("Flywheel signup funnel bench")
    total = args.people + args.before
    print(
        f"  {args.people:,} people in the 30-day window, {args.before:,} before it, {args.visitors:,} visitors who never signed up"
    )
    print(f"  database {DB_NAME}; {os.cpu_count()} CPU(s); load average at start: {load_average()}")
    try:
        database_recreate(DB_NAME)
        manage(env, "migrate", "--noinput")
        django_setup(env)
        from django.db import connection as django_connection
        from django.utils import timezone

        from experiments.funnel import funnel_progress_rebuild, funnel_progress_refresh
        from experiments.selectors import (
            funnel_default_window,
            funnel_report,
            funnel_report_from_events,
        )

        now = timezone.now().replace(microsecond=0)
        since, until = funnel_default_window(now, days=30)
        db = connect(DB_NAME)
        db.execute("SELECT setseed(0.21)")

        heading("1. Generation and the first build")
        started = time.perf_counter()
        db.execute(
            sql(
                JOURNEY_SQL,
                people=args.people,
                start=since.isoformat(),
                span="30 days",
                first=1,
                last=total,
            )
        )
        colleagues = (
            total + 2 * args.arrivals + args.per_minute
        )  # colleague ids above every person's
        users = bulk_fill(
            db,
            "accounts_user",
            [
                users_fill_sql(f"generate_series(1, {total}) AS i"),
                users_fill_sql(
                    f"(SELECT i + {colleagues} AS i FROM bench_journey WHERE joined IS NOT NULL) AS c"
                ),
            ],
        )
        organizations = bulk_fill(
            db,
            "accounts_organization",
            [
                "INSERT INTO accounts_organization (id, public_id, name, email_domain, join_by_domain, created_by_id, created_at) "
                "SELECT i, gen_random_uuid(), 'Organization ' || i, '', false, i, o FROM bench_journey WHERE o IS NOT NULL"
            ],
        )
        events = bulk_fill(
            db,
            "experiments_event",
            [
                sql(
                    EVENTS_SQL.format(journeys="bench_journey"),
                    colleagues=colleagues,
                    now=now.isoformat(),
                ),
                sql(VISITORS_SQL, start=since.isoformat(), visitors=args.visitors),
            ],
        )
        event_count = db.execute("SELECT count(*) FROM experiments_event").fetchone()[0]
        user_count = db.execute("SELECT count(*) FROM accounts_user").fetchone()[0]
        print(
            f"  {user_count:,} users, {event_count:,} events: journeys + users {seconds(users)}, organizations {seconds(organizations)}, events {seconds(events)}"
        )
        print(f"  generation in all: {seconds(time.perf_counter() - started)}")
        print(f"  load average now: {load_average()}")
        busy = CpuBusy()
        started = time.perf_counter()
        built = funnel_progress_rebuild()
        build = time.perf_counter() - started
        db.execute("VACUUM ANALYZE experiments_funnelprogress")
        db.execute("VACUUM ANALYZE experiments_funnelvisit")
        print(
            f"  funnel progress of every person and the visits of every browser built from the events: "
            f"{built:,} people and browsers in {seconds(build).strip()} ({build / max(built, 1) * 1e6:.0f} us each; "
            f"cores {busy.share():.0%} busy)"
        )

        heading("2. funnel_report over the last 30 days (the staff page's default)")
        print(
            f"  window {since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC; load average {load_average()}"
        )
        busy.start()
        times, parts = [], {"refresh (nothing to do)": []}
        report = None
        for _ in range(args.rounds):
            started = time.perf_counter()
            report = funnel_report(since=since, until=until)
            times.append(time.perf_counter() - started)
            started = time.perf_counter()
            funnel_progress_refresh()
            parts["refresh (nothing to do)"].append(time.perf_counter() - started)
        share = busy.share()
        assert report is not None
        for step in report.steps:
            between = step.from_previous
            timing = (
                f"median {between.median_seconds:>9.0f} s, p95 {between.p95_seconds:>9.0f} s"
                if between and between.median_seconds is not None
                else ""
            )
            print(f"    {step.label:<36} {step.count:>9,}  {timing}")
        print(
            f"    time to value: {report.time_to_value.count:,} people, median {report.time_to_value.median_seconds:.0f} s"
        )
        print(f"    signup page visitors (distinct browsers): {report.signup_page_visitors:,}")
        median = statistics.median(times)
        refresh = statistics.median(parts["refresh (nothing to do)"])
        print(
            f"  funnel_report: {', '.join(seconds(value).strip() for value in times)}; median {seconds(median).strip()}"
        )
        print(
            f"    of which: refresh with nothing to do {seconds(refresh).strip()}; the rest (30 days of FunnelDay counts, "
            f"the partial days at both ends, the distinct browsers, 16 bucket lookups) {seconds(median - refresh).strip()}"
        )
        past_since = since + timedelta(days=5, hours=3)
        past_until = until - timedelta(days=10, hours=5)
        started = time.perf_counter()
        past = funnel_report(since=past_since, until=past_until)
        took = time.perf_counter() - started
        print(
            f"  a past period with partial days at both ends ({past_since:%d %b %H:%M} to {past_until:%d %b %H:%M}, "
            f"{past.steps[0].count:,} signups, some with steps after its end): {seconds(took).strip()}"
        )
        print(
            f"  cores {share:.0%} busy over these runs (every process on the machine); load average {load_average()}"
        )

        heading("3. New events with the triggers on")
        arrivals_first = total + 1
        db.execute(
            sql(
                JOURNEY_SQL.replace("bench_journey", "bench_arrivals"),
                people=10**12,  # all drawn after start: signups of 10 days ago arriving late
                start=(now - timedelta(days=10)).isoformat(),
                span="1 day",
                first=arrivals_first,
                last=arrivals_first + 2 * args.arrivals + args.per_minute - 1,
            )
        )
        db.execute(users_fill_sql("(SELECT i FROM bench_arrivals) AS a"))
        db.execute(
            users_fill_sql(
                f"(SELECT i + {colleagues} AS i FROM bench_arrivals WHERE joined IS NOT NULL) AS c"
            )
        )
        db.execute(
            "INSERT INTO accounts_organization (id, public_id, name, email_domain, join_by_domain, created_by_id, created_at) "
            "SELECT i, gen_random_uuid(), 'Organization ' || i, '', false, i, o FROM bench_arrivals WHERE o IS NOT NULL"
        )
        for table in ("accounts_user", "accounts_organization"):
            sequence_reset(db, table)
        # Four batches, off, on, off, on, so neither mode has the colder cache.
        half = args.arrivals // 2
        batches = [
            (
                "off" if index % 2 == 0 else "on",
                f"(SELECT * FROM bench_arrivals WHERE i >= {arrivals_first + index * half} AND i < {arrivals_first + (index + 1) * half})",
            )
            for index in range(4)
        ]
        spent: dict[str, float] = {"on": 0.0, "off": 0.0}
        rows: dict[str, int] = {"on": 0, "off": 0}
        for triggers, journeys in batches:
            if triggers == "off":
                db.execute(
                    "ALTER TABLE experiments_event DISABLE TRIGGER experiments_event_funnel_insert"
                )
            started = time.perf_counter()
            inserted = db.execute(
                sql(
                    EVENTS_SQL.format(journeys=journeys), colleagues=colleagues, now=now.isoformat()
                )
            ).rowcount
            spent[triggers] += time.perf_counter() - started
            rows[triggers] += inserted
            if triggers == "off":
                db.execute(
                    "ALTER TABLE experiments_event ENABLE TRIGGER experiments_event_funnel_insert"
                )
                # What the trigger would have marked, so the funnel stays exact.
                db.execute(
                    f"INSERT INTO experiments_funnelchange (user_id, distinct_id) SELECT i, '' FROM {journeys} AS j "
                    f"UNION SELECT i + {colleagues}, '' FROM {journeys} AS j WHERE joined IS NOT NULL "
                    f"UNION SELECT NULL, 'anon-' || i FROM {journeys} AS j"
                )
        per_event = {mode: spent[mode] / max(rows[mode], 1) for mode in spent}
        for mode in ("off", "on"):
            print(
                f"  {2 * half:,} people's journeys, {rows[mode]:,} events in two INSERTs, triggers {mode}: "
                f"{per_event[mode] * 1e6:.1f} us an event"
            )
        cost = (per_event["on"] - per_event["off"]) * 1e6
        print(
            f"  the triggers' cost: {cost:.1f} us an event"
            + (" (below this machine's noise)" if cost <= 0 else "")
        )
        marks = db.execute("SELECT count(*) FROM experiments_funnelchange").fetchone()[0]
        started = time.perf_counter()
        refreshed = funnel_progress_refresh()
        took = time.perf_counter() - started
        print(
            f"  refresh of {marks:,} marks: {refreshed:,} people in {seconds(took).strip()} ({took / max(refreshed, 1) * 1e6:.0f} us a person)"
        )
        minute = f"(SELECT * FROM bench_arrivals WHERE i >= {arrivals_first + 2 * args.arrivals})"
        db.execute(
            sql(EVENTS_SQL.format(journeys=minute), colleagues=colleagues, now=now.isoformat())
        )
        marks = db.execute("SELECT count(*) FROM experiments_funnelchange").fetchone()[0]
        started = time.perf_counter()
        report = funnel_report(since=since, until=until)
        took = time.perf_counter() - started
        print(
            f"  funnel_report right after {args.per_minute:,} more people arrived ({marks:,} marks to refresh first): {seconds(took).strip()}"
        )
        print(f"    signed up in the window now: {report.steps[0].count:,}")

        heading("4. The same answer as walking the events")
        # A whole UTC day from the day counts, and half a day each side from the rows.
        middle = (until - timedelta(days=8)).date()
        day_since = datetime.combine(middle, datetime.min.time(), tzinfo=UTC) - timedelta(hours=12)
        day_until = day_since + timedelta(days=2)
        started = time.perf_counter()
        walked = funnel_report_from_events(since=day_since, until=day_until)
        walk = time.perf_counter() - started
        started = time.perf_counter()
        aggregated = funnel_report(since=day_since, until=day_until)
        aggregate = time.perf_counter() - started

        def figures(funnel):
            return (
                [(s.key, s.count, s.from_previous) for s in funnel.steps],
                funnel.time_to_value,
                funnel.signup_page_visitors,
            )

        same = figures(walked) == figures(aggregated)
        print(
            f"  two days ({day_since:%d %b %H:%M} to {day_until:%d %b %H:%M}): {walked.steps[0].count:,} signups; walking the events {seconds(walk).strip()}, "
            f"the aggregate {seconds(aggregate).strip()}; same answer: {'yes' if same else 'NO'}"
        )
        if not same:
            print(f"    walked:     {figures(walked)}\n    aggregated: {figures(aggregated)}")
        print(
            f"  (walking 30 days is about {walk * args.people / max(walked.steps[0].count, 1):.0f} s at this rate, not run)"
        )

        heading("Target")
        verdict = "MET" if median < TARGET_SECONDS else "NOT MET"
        print(
            f"  funnel_report over 30 days holding {report.steps[0].count:,} signups: median {seconds(median).strip()} < {TARGET_SECONDS:g} s: {verdict}"
        )
        print(f"  load average at end: {load_average()}")
        django_connection.close()
        db.close()
    finally:
        if args.keep_db:
            print(f"\n  kept database {DB_NAME}")
        else:
            database_drop(DB_NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
