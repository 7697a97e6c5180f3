"""Reads of analytics events: the signup funnel for staff."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, QuerySet

from accounts.models import Organization

from .events import EMAIL_VERIFIED, ENVIRONMENT_ACTIVE, SIGNED_UP, SIGNUP_FUNNEL, SIGNUP_STARTED
from .models import Event, Experiment


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


@dataclass
class FunnelStep:
    name: str
    count: int
    share_of_first: float | None
    from_previous: Duration | None


@dataclass
class Funnel:
    since: datetime
    until: datetime
    steps: list[FunnelStep]
    time_to_value: Duration


def funnel_report(*, since: datetime, until: datetime) -> Funnel:
    """Counts per signup step and the time between consecutive steps, per person.

    A person is a user; their anonymous `signup_started` is joined to them through the
    `anonymous_id` that `signed_up` carries. Each person counts once per step, at the first
    time they reached it.
    """
    rows = (
        Event.objects.filter(name__in=SIGNUP_FUNNEL, occurred_at__gte=since, occurred_at__lt=until)
        .order_by("occurred_at")
        .values_list("name", "distinct_id", "user_id", "occurred_at", "properties")
    )
    anonymous_started: dict[str, datetime] = {}
    first: dict[object, dict[str, datetime]] = {}
    anonymous_to_user: dict[str, int] = {}
    for name, distinct_id, user_id, occurred_at, properties in rows.iterator(chunk_size=5000):
        if name == SIGNUP_STARTED:
            anonymous_started.setdefault(distinct_id, occurred_at)
            continue
        if user_id is None:
            continue
        if name == SIGNED_UP and properties.get("anonymous_id"):
            anonymous_to_user[properties["anonymous_id"]] = user_id
        first.setdefault(user_id, {}).setdefault(name, occurred_at)
    people: dict[object, dict[str, datetime]] = {}
    for anonymous_id, started_at in anonymous_started.items():
        key = anonymous_to_user.get(anonymous_id, f"anonymous:{anonymous_id}")
        people.setdefault(key, {})[SIGNUP_STARTED] = started_at
    for user_id, steps in first.items():
        people.setdefault(user_id, {}).update(steps)

    result: list[FunnelStep] = []
    first_count: int | None = None
    for index, step in enumerate(SIGNUP_FUNNEL):
        count = sum(1 for steps in people.values() if step in steps)
        if first_count is None:
            first_count = count
        between = None
        if index:
            previous = SIGNUP_FUNNEL[index - 1]
            between = Duration.of(
                [
                    (steps[step] - steps[previous]).total_seconds()
                    for steps in people.values()
                    if step in steps and previous in steps and steps[step] >= steps[previous]
                ]
            )
        result.append(
            FunnelStep(step, count, (count / first_count) if first_count else None, between)
        )
    time_to_value = Duration.of(
        [
            (steps[ENVIRONMENT_ACTIVE] - steps[EMAIL_VERIFIED]).total_seconds()
            for steps in people.values()
            if ENVIRONMENT_ACTIVE in steps and EMAIL_VERIFIED in steps
            and steps[ENVIRONMENT_ACTIVE] >= steps[EMAIL_VERIFIED]
        ]
    )
    return Funnel(since=since, until=until, steps=result, time_to_value=time_to_value)


def funnel_default_window(now: datetime) -> tuple[datetime, datetime]:
    return now - timedelta(days=30), now + timedelta(seconds=1)


def events_for_organization(*, organization: Organization) -> QuerySet[Event]:
    """An organization's own events, newest first; never another organization's."""
    return Event.objects.filter(organization=organization).order_by("-occurred_at")


def experiments_with_exposures() -> QuerySet[Experiment]:
    """Staff: all experiments (they are company-wide, not per organization), newest first."""
    return Experiment.objects.annotate(exposure_count=Count("exposures")).order_by("-created_at")
