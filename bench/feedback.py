"""NPS reports over a million responses, and the categorizer's agreement with staff.

    uv run python bench/feedback.py                        # 1,000,000 responses
    uv run python bench/feedback.py --responses 200000     # a quicker look
    uv run python bench/feedback.py --keep-db              # keep the database afterwards

What it starts (and always drops again, unless --keep-db): a fresh PostgreSQL database
`flywheel_bench_feedback`, migrated and catalog_synced. Bulk data is generated in SQL
(INSERT ... SELECT generate_series), never row by row: --organizations organizations (20,000),
one of them the largest with --largest-share of all responses (5%); 200,000 users; and
--responses surveys with their responses spread evenly over the last 24 months: scores about
40% promoters / 30% passives / 30% detractors, 30% with a comment (and its category), seven
roles, the catalog's products and editions, tenures up to three years, 40% paying. Then
VACUUM ANALYZE, as autovacuum would after a bulk load (index-only scans need the visibility map).

Timed in this process, with Django on that database (config.settings, DEBUG=0), each --rounds
times after one untimed warm-up run (the first figure, cold, is printed too):
  (a) the monthly report: feedback.selectors.monthly_report for the last full month (overall
      NPS and margin, last month, the twelve-month trend, and the role, product, edition,
      tenure, paying and category breakdowns);
  (b) the report of the largest organization: feedback.selectors.organization_report over its
      twelve months (its NPS, everyone's over the same months, trend, by role, 50 comments);
  (c) the whole digest build: (a) plus ten random comments plus the PNG chart (matplotlib).
Targets: (a) and (b) under 1 s. It also prints the categorizer's agreement with staff on the
labelled sample of tests/feedback/data/. Exit status 0 whether or not targets are met.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from time_to_value import PG, heading, load_average, maintenance_connection, manage  # noqa: E402

DB_NAME = "flywheel_bench_feedback"
TARGET_SECONDS = 1.0
ROLES = ["developer", "designer", "product_manager", "team_lead", "executive", "operations", "other"]
COMMENTS = [
    ("Boards take forever to load on Monday mornings", "reliability"),
    ("It crashed and I lost my draft", "reliability"),
    ("Sync is flaky between the app and the web", "reliability"),
    ("Hard to find where the settings are", "usability"),
    ("The interface is cluttered and confusing", "usability"),
    ("Simple and easy to pick up", "usability"),
    ("Please add a Gantt view", "functionality"),
    ("We need an integration with Salesforce", "functionality"),
    ("Missing recurring tasks", "functionality"),
    ("Great product, thanks", "other"),
    ("Too expensive for a small team", "other"),
    ("Support was very helpful", "other"),
]


def database_recreate() -> None:
    with maintenance_connection() as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{DB_NAME}"')


def database_drop() -> None:
    with maintenance_connection() as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def generate(*, responses: int, organizations: int, largest_share: float) -> dict[str, float]:
    """Fill the database in SQL; returns seconds per step."""
    import psycopg

    timings: dict[str, float] = {}
    users = 200_000
    comments_sql = "ARRAY[" + ",".join("'" + text.replace("'", "''") + "'" for text, _ in COMMENTS) + "]"
    categories_sql = "ARRAY[" + ",".join(f"'{category}'" for _, category in COMMENTS) + "]"
    roles_sql = "ARRAY[" + ",".join(f"'{role}'" for role in ROLES) + "]"
    every_n = max(round(1 / largest_share), 1)
    with psycopg.connect(**PG, dbname=DB_NAME, autocommit=True) as connection:
        started = time.perf_counter()
        connection.execute(
            """
            INSERT INTO accounts_user (password, is_superuser, first_name, last_name, is_staff, is_active,
                                       date_joined, public_id, email, time_zone, country)
            SELECT '!', false, 'User', i::text, false, true, now() - interval '3 years', gen_random_uuid(),
                   'user' || i || '@bench.example', '', ''
            FROM generate_series(1, %s) AS i
            """,
            [users],
        )
        connection.execute(
            """
            INSERT INTO accounts_organization (public_id, name, email_domain, join_by_domain, created_at)
            SELECT gen_random_uuid(), 'Organization ' || i, '', false,
                   now() - (interval '1 day' * (100 + (i * 7919) %% 1000))
            FROM generate_series(1, %s) AS i
            """,
            [organizations],
        )
        timings["users and organizations"] = time.perf_counter() - started
        editions = connection.execute(
            "SELECT e.id, e.product_id FROM catalog_edition e ORDER BY e.id"
        ).fetchall()
        edition_ids = "ARRAY[" + ",".join(str(edition) for edition, _ in editions) + "]"
        product_ids = "ARRAY[" + ",".join(str(product) for _, product in editions) + "]"
        first_org, last_org = connection.execute("SELECT min(id), max(id) FROM accounts_organization").fetchone()
        first_user = connection.execute("SELECT min(id) FROM accounts_user").fetchone()[0]
        started = time.perf_counter()
        # One statement: the surveys, then their responses from the surveys' rows (a data-modifying
        # CTE), so both agree on organization, user and time.
        connection.execute(
            f"""
            WITH surveys AS (
                INSERT INTO feedback_survey (public_id, organization_id, user_id, product_id, status, asked_at, closed_at)
                SELECT gen_random_uuid(),
                       CASE WHEN i %% {every_n} = 0 THEN {first_org}
                            ELSE {first_org} + 1 + (i * 104729) %% ({last_org} - {first_org}) END,
                       {first_user} + (i * 7919) %% {users},
                       NULL, 'answered', moment, moment
                FROM (SELECT i, now() - random() * interval '730 days' AS moment
                      FROM generate_series(1::bigint, %s) AS i) AS drawn
                RETURNING id, organization_id, user_id, asked_at
            ), answers AS (
                SELECT s.*, random() AS r_score, random() AS r_comment, 1 + floor(random() * 12)::int AS comment_index,
                       1 + floor(random() * 7)::int AS role_index,
                       1 + floor(random() * {len(editions)})::int AS edition_index
                FROM surveys s
            )
            INSERT INTO feedback_response (
                public_id, survey_id, organization_id, user_id, score, role, comment, may_contact,
                product_id, edition_id, seats, tenure_days, organization_age_days, paying,
                submitted_at, month, suggested_category, category
            )
            SELECT gen_random_uuid(), id, organization_id, user_id,
                   CASE WHEN r_score < 0.40 THEN 9 + floor(random() * 2)::int
                        WHEN r_score < 0.70 THEN 7 + floor(random() * 2)::int
                        ELSE floor(random() * 7)::int END,
                   ({roles_sql})[role_index],
                   CASE WHEN r_comment < 0.3 THEN ({comments_sql})[comment_index] ELSE '' END,
                   random() < 0.2,
                   ({product_ids})[edition_index], ({edition_ids})[edition_index],
                   10 + floor(random() * 200)::int, floor(random() * 1100)::int, floor(random() * 2000)::int,
                   random() < 0.4,
                   asked_at, date_trunc('month', asked_at AT TIME ZONE 'UTC')::date,
                   CASE WHEN r_comment < 0.3 THEN ({categories_sql})[comment_index] ELSE '' END,
                   CASE WHEN r_comment < 0.3 THEN ({categories_sql})[comment_index] ELSE '' END
            FROM answers
            """,  # noqa: S608 - numbers and constants of this script only
            [responses],
        )
        timings["surveys and responses"] = time.perf_counter() - started
        started = time.perf_counter()
        connection.execute("VACUUM ANALYZE feedback_survey")
        connection.execute("VACUUM ANALYZE feedback_response")
        connection.execute("ANALYZE accounts_user")
        connection.execute("ANALYZE accounts_organization")
        timings["vacuum analyze"] = time.perf_counter() - started
    return timings


def timed(work, rounds: int) -> tuple[float, list[float]]:
    started = time.perf_counter()
    work()
    cold = time.perf_counter() - started
    runs = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        runs.append(time.perf_counter() - started)
    return cold, runs


def line(label: str, cold: float, runs: list[float], target: float | None = None) -> None:
    median = statistics.median(runs)
    verdict = ""
    if target is not None:
        verdict = f"  target < {target * 1000:.0f} ms: {'met' if max(runs) < target else 'MISSED'}"
    print(
        f"{label:<44} cold {cold * 1000:7.1f} ms   median {median * 1000:7.1f} ms   "
        f"max {max(runs) * 1000:7.1f} ms{verdict}"
    )


def agreement() -> None:
    from feedback import categorizer

    path = ROOT / "tests" / "feedback" / "data" / "labelled_comments.jsonl"
    labelled = [
        (row["text"], row["category"])
        for row in (json.loads(text) for text in path.read_text(encoding="utf-8").splitlines() if text.strip())
    ]
    print(categorizer.agreement_text(categorizer.agreement(labelled)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--responses", type=int, default=1_000_000)
    parser.add_argument("--organizations", type=int, default=20_000)
    parser.add_argument("--largest-share", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("CACHE_URL", "CELERY_BROKER_URL", "POSTHOG_API_KEY", "EMAIL_HOST", "REDIS_URL")
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "FLYWHEEL_ENV": "development",
            "DEBUG": "0",
            "DATABASE_URL": f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{DB_NAME}",
            "LOG_LEVEL": "WARNING",
        }
    )
    heading("Flywheel NPS reports bench")
    print(f"load average before: {load_average()}")
    database_recreate()
    try:
        started = time.perf_counter()
        manage(env, "migrate", "--no-input")
        manage(env, "catalog_sync")
        print(f"migrate + catalog_sync: {time.perf_counter() - started:.1f} s")
        for step, seconds in generate(
            responses=args.responses, organizations=args.organizations, largest_share=args.largest_share
        ).items():
            print(f"generate {step}: {seconds:.1f} s")

        os.environ.update(env)
        import django

        django.setup()
        from django.db import connection
        from django.utils import timezone

        from accounts.models import Organization
        from feedback import selectors, services
        from feedback.models import Response
        from feedback.reports import month_of, months_back

        month = months_back(month_of(timezone.now()), 1)
        largest_id = (
            Response.objects.values("organization_id").order_by().annotate(n=django.db.models.Count("id"))
            .order_by("-n").values_list("organization_id", flat=True).first()
        )
        largest = Organization.objects.get(pk=largest_id)
        total = Response.objects.count()
        in_month = Response.objects.filter(month=month).count()
        in_largest = Response.objects.filter(organization=largest, month__gt=months_back(month, 12)).count()
        print(f"responses: {total:,}; in {month:%B %Y}: {in_month:,}; largest organization, its 12 months: {in_largest:,}")

        heading("Timings")
        cold, runs = timed(lambda: selectors.monthly_report(month=month), args.rounds)
        line("(a) monthly report (all breakdowns + trend)", cold, runs, TARGET_SECONDS)
        cold, runs = timed(lambda: selectors.organization_report(organization=largest, until=month), args.rounds)
        line("(b) largest organization's report", cold, runs, TARGET_SECONDS)
        cold, runs = timed(lambda: services._digest_summary(month), max(args.rounds // 2, 1))
        line("(c) digest build (a + 10 comments + chart)", cold, runs)
        report = selectors.monthly_report(month=month)
        print(
            f"monthly NPS {report.overall.nps:+.1f} ±{report.overall.margin:.1f} from "
            f"{report.overall.score.responses:,} answers; last month {report.previous.nps:+.1f}"
        )
        connection.close()

        heading("Categorizer agreement with staff (tests/feedback/data/labelled_comments.jsonl)")
        agreement()
        print(f"load average after: {load_average()}")
    finally:
        if not args.keep_db:
            from contextlib import suppress

            with suppress(Exception):
                from django.db import connections

                connections.close_all()
            database_drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
