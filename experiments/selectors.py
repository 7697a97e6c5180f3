"""Reads of analytics events: the signup funnel for staff, experiments with their exposures, the
outbox's events waiting for PostHog and those it refused."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet

from accounts.models import Organization

from .events import (
    EMAIL_VERIFIED,
    ORGANIZATION_CREATED,
    SIGNED_UP,
    SIGNUP_STARTED,
)
from .funnel import (
    FUNNEL_STEPS,
    TIME_TO_VALUE,
    VISITS,
    WAIT_BUCKETS,
    funnel_changes_waiting,
    funnel_progress_refresh,
    progress_counts_sql,
)
from .models import Event, Experiment, FunnelDay, FunnelProgress, FunnelVisit

# A request brings the funnel up to date itself when at most this many marks wait (a minute's
# worth is a few hundred); more (the first refresh after the migration: minutes per million
# people) are left to the beat, and the page says how many are not counted yet.
INLINE_REFRESH_MAX = 20_000


def percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of `values` (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Duration:
    count: int
    median_seconds: float | None
    p95_seconds: float | None

    @classmethod
    def of(cls, seconds: list[float]) -> Duration:
        return cls(len(seconds), percentile(seconds, 0.5), percentile(seconds, 0.95))


FUNNEL_DEFINITION = (
    "People who signed up in the period (not those who joined through an invite or their email "
    "domain: they are counted as colleagues who joined), and how many of them then reached each "
    "step, in this order, by the end of the period. A person counts at a step only if they reached "
    "every step before it first, so each step is part of the one above. Steps about the "
    "organization (product, workspace, colleagues, payment) count for the person who created it."
)


@dataclass
class FunnelStep:
    key: str
    label: str
    count: int
    share_of_previous: float | None
    share_of_first: float | None
    from_previous: Duration | None


@dataclass
class Funnel:
    since: datetime
    until: datetime
    steps: list[FunnelStep]
    time_to_value: Duration
    signup_page_visitors: int
    definition: str = FUNNEL_DEFINITION
    # People and browsers whose events are not counted yet: more were waiting than a request
    # should compute (the first refresh after the migration); the beat catches up.
    catching_up: int = 0


def funnel_report(*, since: datetime, until: datetime) -> Funnel:
    """The people who signed up in [since, until) and, in order, each next step they reached
    before `until` (FUNNEL_STEPS), with the time between consecutive steps.

    Each step's time is its first event at or after the previous step's time, so a person's
    steps always run forward and every step's people are a subset of the previous step's.

    On PostgreSQL it brings the per-person progress up to date with the committed events
    (experiments/funnel.py: usually a minute's worth of marks, or none), adds up the period's
    whole days from FunnelDay, corrects them from the rows of the partial days at both ends and
    of the people with a step after `until`, and reads each median and 95th percentile from the
    rows of the bucket that holds it: about 0.4 s for 30 days holding a million signups
    (bench/funnel.py), where walking their events took minutes. Elsewhere it walks the events
    (funnel_report_from_events), which gives the same answer."""
    if connection.vendor != "postgresql":
        return funnel_report_from_events(since=since, until=until)
    waiting = funnel_changes_waiting(at_most=INLINE_REFRESH_MAX)
    if waiting <= INLINE_REFRESH_MAX:
        funnel_progress_refresh()
    with _one_snapshot(), connection.cursor() as cursor:
        histogram, visits = _histogram(cursor, since=since, until=until)
        counts = [histogram[0].get(0, 0)] + [
            sum(histogram[index].values()) for index in range(1, TIME_TO_VALUE + 1)
        ]
        waits: list[Duration | None] = [None]
        for index, (after, reached) in enumerate(_WAITS, start=1):
            values = [
                _wait_at(cursor, histogram[index], counts[index], fraction, after=after, reached=reached, since=since, until=until)
                for fraction in (0.5, 0.95)
            ]
            waits.append(
                Duration(
                    count=counts[index],
                    median_seconds=values[0] / 1e6 if values[0] is not None else None,
                    p95_seconds=values[1] / 1e6 if values[1] is not None else None,
                )
            )
        # Distinct browsers: the period's visits less those whose browser's previous visit is
        # in the period too.
        cursor.execute(
            f"SELECT count(*) FROM {FunnelVisit._meta.db_table} WHERE previous_at >= %s AND occurred_at < %s",  # noqa: S608 - the model's table
            [since, until],
        )
        visitors = visits - cursor.fetchone()[0]
    return Funnel(
        since=since,
        until=until,
        steps=_steps(counts[:TIME_TO_VALUE], waits[:TIME_TO_VALUE]),
        time_to_value=waits[TIME_TO_VALUE],
        signup_page_visitors=visitors,
        catching_up=waiting if waiting > INLINE_REFRESH_MAX else 0,
    )


# Per FunnelDay step after the signup: the wait's column and the time it is reached at.
_WAITS = [(step.after_column, step.column) for step in FUNNEL_STEPS[1:]] + [("time_to_value", "workspace_ready_at")]


@contextmanager
def _one_snapshot() -> Iterator[None]:
    """The report's reads in one snapshot (REPEATABLE READ), so that a refresh committing
    between them cannot make the day counts and the rows disagree; inside a caller's
    transaction, that transaction's."""
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _histogram(cursor, *, since: datetime, until: datetime) -> tuple[list[dict[int, int]], int]:
    """Per FunnelDay step, people by wait bucket, of those who signed up in [since, until) and
    reached the step before `until`; and the signup page's visits in the period. Whole UTC days
    come from FunnelDay, less the people with a step at or after `until`; the partial days at
    both ends from the rows."""
    histogram: list[dict[int, int]] = [defaultdict(int) for _ in range(TIME_TO_VALUE + 1)]
    first = since.astimezone(UTC)
    first_day = first.date() if first == _midnight(first.date()) else first.date() + timedelta(days=1)
    last_day = until.astimezone(UTC).date()
    parameters = {"until": until, "buckets": WAIT_BUCKETS}
    visits = 0
    if first_day < last_day:
        cursor.execute(
            f"SELECT step, bucket, sum(people) FROM {FunnelDay._meta.db_table} "  # noqa: S608 - the model's table
            "WHERE day >= %s AND day < %s GROUP BY step, bucket",
            [first_day, last_day],
        )
        for step, bucket, people in cursor.fetchall():
            if step == VISITS:
                visits += people
            else:
                histogram[step][bucket] += people
        cursor.execute(progress_counts_sql(late=True), {**parameters, "low": _midnight(first_day), "high": _midnight(last_day)})
        for step, bucket, people in cursor.fetchall():
            histogram[step][bucket] -= people
        edges = [(since, _midnight(first_day)), (_midnight(last_day), until)]
    else:
        edges = [(since, until)]
    for low, high in edges:
        if low >= high:
            continue
        cursor.execute(progress_counts_sql(late=False), {**parameters, "low": low, "high": high})
        for step, bucket, people in cursor.fetchall():
            histogram[step][bucket] += people
        cursor.execute(
            f"SELECT count(*) FROM {FunnelVisit._meta.db_table} WHERE occurred_at >= %s AND occurred_at < %s",  # noqa: S608 - the model's table
            [low, high],
        )
        visits += cursor.fetchone()[0]
    return histogram, visits


def _wait_at(cursor, buckets: dict[int, int], count: int, fraction: float, *, after: str, reached: str, since: datetime, until: datetime) -> int | None:
    """The nearest-rank `fraction` of the waits (microseconds) counted in `buckets`: the bucket
    that holds that rank, then the row at its place among the bucket's rows, in order."""
    if not count:
        return None
    rank = max(1, math.ceil(fraction * count))
    below = 0
    for bucket in sorted(buckets):
        if below + buckets[bucket] >= rank:
            break
        below += buckets[bucket]
    else:
        return None  # the counts hold fewer than `count`: cannot happen in one snapshot
    low = WAIT_BUCKETS[bucket - 1]
    high = WAIT_BUCKETS[bucket] if bucket < len(WAIT_BUCKETS) else None
    cursor.execute(
        f"SELECT {after} FROM {FunnelProgress._meta.db_table} WHERE {after} >= %(low)s "  # noqa: S608 - FUNNEL_STEPS' columns
        + (f"AND {after} < %(high)s " if high is not None else "")
        + f"AND signed_up_at >= %(since)s AND signed_up_at < %(until)s AND {reached} < %(until)s "
        f"ORDER BY {after} OFFSET %(offset)s LIMIT 1",
        {"low": low, "high": high, "since": since, "until": until, "offset": rank - below - 1},
    )
    found = cursor.fetchone()
    return found[0] if found else None


def _steps(counts: list[int], durations: list[Duration | None]) -> list[FunnelStep]:
    steps: list[FunnelStep] = []
    first = counts[0]
    previous_count: int | None = None
    for definition, count, between in zip(FUNNEL_STEPS, counts, durations, strict=True):
        steps.append(
            FunnelStep(
                key=definition.key,
                label=definition.label,
                count=count,
                share_of_previous=(count / previous_count) if previous_count else None,
                share_of_first=(count / first) if first else None,
                from_previous=between,
            )
        )
        previous_count = count
    return steps


def _signup_page_visitors(*, since: datetime, until: datetime) -> int:
    """Distinct browsers that opened the signup page in [since, until), from the events."""
    return (
        Event.objects.filter(name=SIGNUP_STARTED, occurred_at__gte=since, occurred_at__lt=until)
        .values("distinct_id")
        .distinct()
        .count()
    )


def _first_at_or_after(times: list[datetime], moment: datetime) -> datetime | None:
    return next((time for time in times if time >= moment), None)


def funnel_report_from_events(*, since: datetime, until: datetime) -> Funnel:
    """funnel_report by walking the events of the window in Python: the definition the
    aggregation is held to (tests/experiments/test_funnel_progress.py), and the funnel on
    SQLite. Reads every signup of the window and their events: slow past some ten thousand."""
    signups: dict[int, datetime] = {}
    for user_id, occurred_at, properties in (
        Event.objects.filter(name=SIGNED_UP, user__isnull=False, occurred_at__gte=since, occurred_at__lt=until)
        .order_by("occurred_at")
        .values_list("user_id", "occurred_at", "properties")
        .iterator(chunk_size=5000)
    ):
        if (properties or {}).get("via_invite"):
            continue
        signups.setdefault(user_id, occurred_at)

    person_names = [name for step in FUNNEL_STEPS[1:] if not step.of_organization for name in step.events]
    person_events: dict[tuple[int, str], list[datetime]] = {}
    organization_of: dict[int, int] = {}
    for user_id, name, occurred_at, organization_id in (
        Event.objects.filter(name__in=person_names, user_id__in=list(signups), occurred_at__lt=until)
        .order_by("occurred_at")
        .values_list("user_id", "name", "occurred_at", "organization_id")
        .iterator(chunk_size=5000)
    ):
        person_events.setdefault((user_id, name), []).append(occurred_at)
        if name == ORGANIZATION_CREATED and organization_id is not None and occurred_at >= signups[user_id]:
            organization_of.setdefault(user_id, organization_id)

    organization_names = [name for step in FUNNEL_STEPS if step.of_organization for name in step.events]
    organization_events: dict[tuple[int, str], list[datetime]] = {}
    for organization_id, name, occurred_at in (
        Event.objects.filter(name__in=organization_names, organization_id__in=set(organization_of.values()), occurred_at__lt=until)
        .order_by("occurred_at")
        .values_list("organization_id", "name", "occurred_at")
        .iterator(chunk_size=5000)
    ):
        organization_events.setdefault((organization_id, name), []).append(occurred_at)

    # Per person, the time of each step they reached in order.
    reached: list[list[datetime]] = []
    for user_id, signed_up_at in signups.items():
        times = [signed_up_at]
        for step in FUNNEL_STEPS[1:]:
            candidates: list[datetime] = []
            for name in step.events:
                if step.of_organization:
                    organization_id = organization_of.get(user_id)
                    candidates += organization_events.get((organization_id, name), []) if organization_id else []
                else:
                    candidates += person_events.get((user_id, name), [])
            moment = _first_at_or_after(sorted(candidates), times[-1])
            if moment is None:
                break
            times.append(moment)
        reached.append(times)

    counts = [sum(1 for times in reached if len(times) > index) for index in range(len(FUNNEL_STEPS))]
    durations: list[Duration | None] = [None] + [
        Duration.of([(times[index] - times[index - 1]).total_seconds() for times in reached if len(times) > index])
        for index in range(1, len(FUNNEL_STEPS))
    ]
    verified = 1
    ready = next(index for index, step in enumerate(FUNNEL_STEPS) if step.key == "workspace_ready")
    time_to_value = Duration.of(
        [(times[ready] - times[verified]).total_seconds() for times in reached if len(times) > ready]
    )
    return Funnel(
        since=since,
        until=until,
        steps=_steps(counts, durations),
        time_to_value=time_to_value,
        signup_page_visitors=_signup_page_visitors(since=since, until=until),
    )


FUNNEL_PERIODS = {"7": 7, "30": 30, "90": 90}


def funnel_default_window(now: datetime, *, days: int = 30) -> tuple[datetime, datetime]:
    return now - timedelta(days=days), now + timedelta(seconds=1)


def events_for_organization(*, organization: Organization) -> QuerySet[Event]:
    """An organization's own events, newest first; never another organization's."""
    return Event.objects.filter(organization=organization).order_by("-occurred_at")


def experiments_with_exposures() -> QuerySet[Experiment]:
    """Staff: all experiments (they are company-wide, not per organization), newest first."""
    return Experiment.objects.annotate(exposure_count=Count("exposures")).order_by("-created_at")


@dataclass
class Signups:
    count: int
    verified: int


def signups_between(*, since: datetime, until: datetime) -> Signups:
    """People who signed up in [since, until) (not through an invite, as the funnel counts
    them), and how many of them have verified their email since."""
    users = {
        user_id
        for user_id, properties in Event.objects.filter(
            name=SIGNED_UP, user__isnull=False, occurred_at__gte=since, occurred_at__lt=until
        ).values_list("user_id", "properties")
        if not (properties or {}).get("via_invite")
    }
    verified = (
        Event.objects.filter(name=EMAIL_VERIFIED, user_id__in=list(users)).values("user_id").distinct().count()
        if users
        else 0
    )
    return Signups(count=len(users), verified=verified)


def experiments_running_count() -> int:
    return Experiment.objects.filter(status=Experiment.Status.RUNNING).count()


def events_claimable(*, now: datetime) -> QuerySet[Event]:
    """Outbox events a forward run may take at `now`, oldest first: not sent, not dead, and
    not leased to another run (or their lease is over). Served by the partial index
    event_unsent_idx, whose condition is the first two."""
    return (
        Event.objects.filter(sent_at__isnull=True, dead_at__isnull=True)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
        .order_by("id")
    )


def events_dead_count() -> int:
    """Events PostHog refused for good (or too large to send), waiting for staff: served by the
    partial index event_dead_idx."""
    return Event.objects.filter(dead_at__isnull=False).count()
