"""The signup funnel's steps, and each person's progress through them kept beside the events.

The staff funnel (experiments/selectors.py funnel_report) used to read every event of its
window into Python: at a million signups a month that is minutes. It now reads one row per
person, `FunnelProgress`: when they signed up and when they first reached each next step, in
order, computed from the events by `funnel_progress_refresh` below.

How the rows stay exact (PostgreSQL; migration 0004):

- Triggers on experiments_event (insert and delete: one statement-level trigger each, reading
  the statement's transition table; update: a row trigger that fires only when the name, the
  person, the organization, the time or `via_invite` changed) write a `FunnelChange` row for
  every person (`PERSON_EVENTS`) or organization (`ORGANIZATION_EVENTS`) whose funnel events
  changed, in the same transaction as the change, whichever way the event was written (the
  ORM, events_store's JSON insert, COPY, a cascade). A trigger rather than a call in
  experiments/services.py: the rows are derived data, and no write path can forget them.
- `funnel_progress_refresh` takes those marks, oldest first, and computes each marked person
  again from all their events (one statement, whatever order the events arrived in: an event
  stamped earlier than one already counted, a step before the one before it, a late signup).
  Refreshes take one advisory lock, so they run one after another, and each computes after
  taking it: the last refresh of a person has seen every event committed before it began,
  and an event committed later leaves a mark that the next refresh takes.
- The signup page's visitors are counted the same way: `FunnelVisit`, one row per
  `signup_started` event with the time of the same browser's previous visit (marked by
  browser), so the distinct browsers of a period are its visits whose previous one is older.
- `FunnelDay` counts, per UTC day of signup, the people who reached each step by how long it
  took them (a bucket of about 2%), and the day's visits: the refresh takes a person's old row
  out of the counts and puts the new one in, in the same transaction. The report adds the
  whole days of its period, corrects the two partial days at its ends and the people with a
  step after its end from their rows, and reads the exact median and 95th percentile from
  the few rows of the bucket that holds them (an index per wait).
- The report refreshes first (the marks are usually a minute's worth: the beat task
  `experiments.tasks.funnel_progress_refresh` drains them every minute), so it always answers
  from every committed event.

Why the per-person row gives the same answer as walking the events up to `until`: a person's
steps are in time order (each is the first event at or after the previous step), so the steps
reached before `until` are exactly those whose time is before `until`; the row is computed
once without `until`, and the report only compares. The organization of steps 4-8 is the first
one the person created after signing up (as before).

On SQLite (`make run` without DATABASE_URL) there are no triggers: the report walks the events
(selectors.funnel_report_from_events, the definition the tests hold the aggregation to).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction

from .events import (
    EMAIL_VERIFIED,
    ENVIRONMENT_ACTIVE,
    INVITE_ACCEPTED,
    INVITE_SENT,
    JOINED_BY_DOMAIN,
    ORGANIZATION_CREATED,
    SIGNED_UP,
    SIGNUP_STARTED,
    SUBSCRIPTION_PAID,
    SUBSCRIPTION_STARTED,
    TRIAL_STARTED,
)


@dataclass(frozen=True)
class FunnelStepDefinition:
    """One step: what it is called, which events reach it, and whose events they are: the
    person's own, or their organization's (by anyone in it, or by the system)."""

    key: str
    label: str
    events: tuple[str, ...]
    of_organization: bool

    @property
    def column(self) -> str:
        """The FunnelProgress column holding when a person reached the step."""
        return f"{self.key}_at"

    @property
    def after_column(self) -> str:
        """The FunnelProgress column holding the microseconds from the previous step."""
        return f"{self.key}_after"


# The signup funnel, in order. A person reaches a step only after reaching the one before it.
FUNNEL_STEPS = [
    FunnelStepDefinition("signed_up", "Signed up", (SIGNED_UP,), False),
    FunnelStepDefinition("email_verified", "Verified email", (EMAIL_VERIFIED,), False),
    FunnelStepDefinition(
        "organization_created", "Created an organization", (ORGANIZATION_CREATED,), False
    ),
    FunnelStepDefinition(
        "product_started",
        "Started a product (trial or Free)",
        (TRIAL_STARTED, SUBSCRIPTION_STARTED),
        True,
    ),
    FunnelStepDefinition("workspace_ready", "Workspace ready", (ENVIRONMENT_ACTIVE,), True),
    FunnelStepDefinition("invite_sent", "Invited a colleague", (INVITE_SENT,), True),
    FunnelStepDefinition(
        "colleague_joined", "A colleague joined", (INVITE_ACCEPTED, JOINED_BY_DOMAIN), True
    ),
    FunnelStepDefinition("paid", "Paid", (SUBSCRIPTION_PAID,), True),
]

# Whose progress an event can move (the triggers of migration 0004 name the same events; a
# test holds them to these lists). organization_created is a person's event that also decides
# the organization of their later steps.
PERSON_EVENTS = tuple(
    name for step in FUNNEL_STEPS if not step.of_organization for name in step.events
)
ORGANIZATION_EVENTS = tuple(
    name for step in FUNNEL_STEPS if step.of_organization for name in step.events
)

# Marks taken per transaction: a refresh after a quiet minute is one batch; the first one after
# the migration (every person who ever signed up) commits as it goes.
REFRESH_BATCH = 20_000
# pg_advisory_xact_lock's key for "a refresh is running" (any number no other lock uses).
REFRESH_LOCK = 0x46554E4E454C  # "FUNNEL"

# `via_invite` as Python's truth: true, a non-zero number, a non-empty string, list or object.
_VIA_INVITE = """COALESCE(CASE jsonb_typeof(event.properties -> 'via_invite')
        WHEN 'boolean' THEN (event.properties ->> 'via_invite')::boolean
        WHEN 'number' THEN (event.properties ->> 'via_invite')::numeric <> 0
        WHEN 'string' THEN event.properties ->> 'via_invite' <> ''
        WHEN 'array' THEN jsonb_array_length(event.properties -> 'via_invite') > 0
        WHEN 'object' THEN event.properties -> 'via_invite' <> '{}'::jsonb
    END, false)"""


# FunnelDay's steps: 0 the signup, 1-7 the steps after it (FUNNEL_STEPS' positions), then time
# to value, and the signup page's visits (by the day of the visit).
TIME_TO_VALUE = len(FUNNEL_STEPS)
VISITS = len(FUNNEL_STEPS) + 1


def _wait_buckets() -> list[int]:
    """Bucket bounds of a wait in microseconds, each about 2% above the one before, from 0 to
    beyond ten years: bucket b holds the waits from bound b-1 (included) to bound b (SQL's
    width_bucket, exact on integers)."""
    bounds, value = [0], 1
    while value < 10**15:
        bounds.append(value)
        value = max(value + 1, value * 51 // 50)
    return bounds


WAIT_BUCKETS = _wait_buckets()


def day_counts_sql(sign: int) -> str:
    """Add (sign 1) or take away (sign -1) the FunnelDay counts of the FunnelProgress rows of
    %(people)s: the signup, each step reached by its wait's bucket, and time to value."""
    rows = ["(0, 0)"]
    for index, step in enumerate(FUNNEL_STEPS[1:], start=1):
        rows.append(
            f"({index}, CASE WHEN p.{step.column} IS NOT NULL THEN width_bucket(p.{step.after_column}, %(buckets)s) END)"
        )
    rows.append(
        f"({TIME_TO_VALUE}, CASE WHEN p.time_to_value IS NOT NULL THEN width_bucket(p.time_to_value, %(buckets)s) END)"
    )
    return (
        "INSERT INTO experiments_funnelday (day, step, bucket, people) "  # noqa: S608 - FUNNEL_STEPS' columns
        f"SELECT (p.signed_up_at AT TIME ZONE 'UTC')::date, counted.step, counted.bucket, {sign} * count(*) "
        f"FROM experiments_funnelprogress p CROSS JOIN LATERAL (VALUES {', '.join(rows)}) AS counted (step, bucket) "
        "WHERE p.user_id = ANY(%(people)s) AND counted.bucket IS NOT NULL GROUP BY 1, 2, 3 "
        "ON CONFLICT (day, step, bucket) DO UPDATE SET people = experiments_funnelday.people + excluded.people"
    )


def _visit_counts_sql(sign: int) -> str:
    """Add or take away the FunnelDay visit counts of the FunnelVisit rows of %(browsers)s."""
    return (
        "INSERT INTO experiments_funnelday (day, step, bucket, people) "  # noqa: S608 - fixed SQL and numbers
        f"SELECT (occurred_at AT TIME ZONE 'UTC')::date, {VISITS}, 0, {sign} * count(*) FROM experiments_funnelvisit "
        "WHERE distinct_id = ANY(%(browsers)s) GROUP BY 1 "
        "ON CONFLICT (day, step, bucket) DO UPDATE SET people = experiments_funnelday.people + excluded.people"
    )


def progress_counts_sql(*, late: bool) -> str:
    """(step, bucket, people) of the FunnelProgress rows that signed up in [%(low)s, %(high)s):
    with `late` False, the signup and each step reached before %(until)s (the two partial days
    at a period's ends); with `late` True, only the steps reached at or after %(until)s, of the
    rows whose last step is (what the whole days' counts hold that the period must not)."""
    compare = ">=" if late else "<"
    rows = [] if late else ["(0, 0)"]
    for index, step in enumerate(FUNNEL_STEPS[1:], start=1):
        rows.append(
            f"({index}, CASE WHEN p.{step.column} {compare} %(until)s THEN width_bucket(p.{step.after_column}, %(buckets)s) END)"
        )
    rows.append(
        f"({TIME_TO_VALUE}, CASE WHEN p.workspace_ready_at {compare} %(until)s THEN width_bucket(p.time_to_value, %(buckets)s) END)"
    )
    return (
        "SELECT counted.step, counted.bucket, count(*) FROM experiments_funnelprogress p "  # noqa: S608 - FUNNEL_STEPS' columns
        f"CROSS JOIN LATERAL (VALUES {', '.join(rows)}) AS counted (step, bucket) "
        "WHERE p.signed_up_at >= %(low)s AND p.signed_up_at < %(high)s AND counted.bucket IS NOT NULL"
        + (" AND p.last_step_at >= %(until)s" if late else "")
        + " GROUP BY 1, 2"
    )


# A browser's visits to the signup page, each with the time of the visit before it.
VISITS_SQL = (
    "INSERT INTO experiments_funnelvisit (event_id, distinct_id, occurred_at, previous_at) "
    "SELECT id, distinct_id, occurred_at, lag(occurred_at) OVER (PARTITION BY distinct_id ORDER BY occurred_at, id) "
    "FROM experiments_event WHERE name = %s AND distinct_id = ANY(%s)"
)


def progress_sql() -> str:
    """One INSERT computing the FunnelProgress rows of the people in %(people)s (an array of
    user ids) from all their events: the first signup not through an invite, the first
    organization they created at or after it, then each step's first event at or after the
    previous step's time (a LATERAL lookup per step, on the event indexes by user and by
    organization and time)."""
    joins = [
        "LEFT JOIN LATERAL (SELECT event.organization_id FROM experiments_event event "
        "WHERE event.user_id = person.user_id AND event.name = %(organization_created)s "
        "AND event.organization_id IS NOT NULL AND event.occurred_at >= person.signed_up_at "
        "ORDER BY event.occurred_at, event.id LIMIT 1) AS organization ON true"
    ]
    previous = "person.signed_up_at"
    columns = ["user_id", "organization_id", FUNNEL_STEPS[0].column]
    values = ["person.user_id", "organization.organization_id", "person.signed_up_at"]
    durations, duration_values = [], []
    for index, step in enumerate(FUNNEL_STEPS[1:], start=1):
        owner = (
            "event.organization_id = organization.organization_id"
            if step.of_organization
            else "event.user_id = person.user_id"
        )
        joins.append(
            f"LEFT JOIN LATERAL (SELECT min(event.occurred_at) AS at FROM experiments_event event "  # noqa: S608 - FUNNEL_STEPS' columns; values are parameters
            f"WHERE {owner} AND event.name = ANY(%(step{index})s) AND event.occurred_at >= {previous}) "
            f"AS step{index} ON true"
        )
        durations.append(step.after_column)
        duration_values.append(
            f"(extract(epoch FROM step{index}.at - {previous}) * 1000000)::bigint"
        )
        previous = f"step{index}.at"
        columns.append(step.column)
        values.append(previous)
    verified = next(
        index for index, step in enumerate(FUNNEL_STEPS) if step.key == "email_verified"
    )
    ready = next(index for index, step in enumerate(FUNNEL_STEPS) if step.key == "workspace_ready")
    columns += [*durations, "last_step_at", "time_to_value"]
    values += [
        *duration_values,
        f"GREATEST(person.signed_up_at, {', '.join(f'step{index}.at' for index in range(1, len(FUNNEL_STEPS)))})",
        f"(extract(epoch FROM step{ready}.at - step{verified}.at) * 1000000)::bigint",
    ]
    return (
        "WITH person AS (SELECT event.user_id, min(event.occurred_at) AS signed_up_at "  # noqa: S608 - as above
        "FROM experiments_event event WHERE event.user_id = ANY(%(people)s) AND event.name = %(signed_up)s "
        f"AND NOT {_VIA_INVITE} GROUP BY event.user_id) "
        f"INSERT INTO experiments_funnelprogress ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM person {' '.join(joins)}"
    )


def _progress_parameters(people: list[int]) -> dict[str, object]:
    parameters: dict[str, object] = {
        "people": people,
        "signed_up": FUNNEL_STEPS[0].events[0],
        "organization_created": ORGANIZATION_CREATED,
    }
    for index, step in enumerate(FUNNEL_STEPS[1:], start=1):
        parameters[f"step{index}"] = list(step.events)
    return parameters


def funnel_changes_waiting(*, at_most: int) -> int:
    """How many changes wait for the refresh, counted up to `at_most` + 1 (cheap however many
    wait). 0 on SQLite, which has no marks."""
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT 1 FROM experiments_funnelchange LIMIT %s) AS waiting", [at_most + 1]
        )
        return int(cursor.fetchone()[0])


def funnel_progress_refresh(*, batch: int = REFRESH_BATCH) -> int:
    """Compute again the FunnelProgress of every person whose funnel events changed since the
    last refresh (the FunnelChange marks), a batch of marks per transaction; returns how many
    people were computed. A no-op (one short transaction) when nothing changed, and on SQLite.

    Invariant: when it returns, every person's row equals what their committed events say
    (a person without a signup of their own has no row)."""
    if connection.vendor != "postgresql":
        return 0
    computed = 0
    sql, removed, added = progress_sql(), day_counts_sql(-1), day_counts_sql(1)
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [REFRESH_LOCK])
            # A statement after the lock: it sees every mark (and event) committed until now.
            cursor.execute(
                "DELETE FROM experiments_funnelchange WHERE id IN "
                "(SELECT id FROM experiments_funnelchange ORDER BY id LIMIT %s) "
                "RETURNING user_id, organization_id, distinct_id",
                [batch],
            )
            marks = cursor.fetchall()
            if not marks:
                return computed
            people = {user_id for user_id, _, _ in marks if user_id is not None}
            organizations = sorted(
                {organization_id for _, organization_id, _ in marks if organization_id is not None}
            )
            browsers = sorted({distinct_id for _, _, distinct_id in marks if distinct_id})
            if browsers:
                cursor.execute(_visit_counts_sql(-1), {"browsers": browsers})
                cursor.execute(
                    "DELETE FROM experiments_funnelvisit WHERE distinct_id = ANY(%s)", [browsers]
                )
                cursor.execute(VISITS_SQL, [SIGNUP_STARTED, browsers])
                cursor.execute(_visit_counts_sql(1), {"browsers": browsers})
            if organizations:
                cursor.execute(
                    "SELECT user_id FROM experiments_funnelprogress WHERE organization_id = ANY(%s)",
                    [organizations],
                )
                people.update(user_id for (user_id,) in cursor.fetchall())
            ordered = sorted(people)
            computed += len(browsers)
            counted = {"people": ordered, "buckets": WAIT_BUCKETS}
            cursor.execute(removed, counted)
            cursor.execute(
                "DELETE FROM experiments_funnelprogress WHERE user_id = ANY(%s)", [ordered]
            )
            if ordered:
                cursor.execute(sql, _progress_parameters(ordered))
                cursor.execute(added, counted)
            computed += len(ordered)


def funnel_progress_rebuild() -> int:
    """Mark every person who ever signed up and every browser that opened the signup page, and
    refresh them all (what migration 0004 leaves to the first refresh; also the bench's build).
    Returns how many people and browsers were computed."""
    if connection.vendor != "postgresql":
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO experiments_funnelchange (user_id, distinct_id) SELECT DISTINCT user_id, '' FROM experiments_event "
            "WHERE name = %s AND user_id IS NOT NULL",
            [SIGNED_UP],
        )
        cursor.execute(
            "INSERT INTO experiments_funnelchange (distinct_id) SELECT DISTINCT distinct_id FROM experiments_event "
            "WHERE name = %s",
            [SIGNUP_STARTED],
        )
    return funnel_progress_refresh()
