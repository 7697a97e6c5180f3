"""Reads of analytics events: the signup funnel for staff, experiments with their exposures, the
outbox's events waiting for PostHog and those it refused."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet

from accounts.models import Organization

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


@dataclass(frozen=True)
class FunnelStepDefinition:
    """One step: what it is called, which events reach it, and whose events they are: the
    person's own, or their organization's (by anyone in it, or by the system)."""

    key: str
    label: str
    events: tuple[str, ...]
    of_organization: bool


# The signup funnel, in order. A person reaches a step only after reaching the one before it.
FUNNEL_STEPS = [
    FunnelStepDefinition("signed_up", "Signed up", (SIGNED_UP,), False),
    FunnelStepDefinition("email_verified", "Verified email", (EMAIL_VERIFIED,), False),
    FunnelStepDefinition("organization_created", "Created an organization", (ORGANIZATION_CREATED,), False),
    FunnelStepDefinition("product_started", "Started a product (trial or Free)", (TRIAL_STARTED, SUBSCRIPTION_STARTED), True),
    FunnelStepDefinition("workspace_ready", "Workspace ready", (ENVIRONMENT_ACTIVE,), True),
    FunnelStepDefinition("invite_sent", "Invited a colleague", (INVITE_SENT,), True),
    FunnelStepDefinition("colleague_joined", "A colleague joined", (INVITE_ACCEPTED, JOINED_BY_DOMAIN), True),
    FunnelStepDefinition("paid", "Paid", (SUBSCRIPTION_PAID,), True),
]
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


def _first_at_or_after(times: list[datetime], moment: datetime) -> datetime | None:
    return next((time for time in times if time >= moment), None)


def funnel_report(*, since: datetime, until: datetime) -> Funnel:
    """The people who signed up in [since, until) and, in order, each next step they reached
    before `until` (FUNNEL_STEPS), with the time between consecutive steps.

    Each step's time is its first event at or after the previous step's time, so a person's
    steps always run forward and every step's people are a subset of the previous step's."""
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

    steps: list[FunnelStep] = []
    first = len(reached)
    previous_count: int | None = None
    for index, definition in enumerate(FUNNEL_STEPS):
        people = [times for times in reached if len(times) > index]
        count = len(people)
        between = (
            Duration.of([(times[index] - times[index - 1]).total_seconds() for times in people]) if index else None
        )
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
    verified = 1
    ready = next(index for index, step in enumerate(FUNNEL_STEPS) if step.key == "workspace_ready")
    time_to_value = Duration.of(
        [(times[ready] - times[verified]).total_seconds() for times in reached if len(times) > ready]
    )
    visitors = (
        Event.objects.filter(name=SIGNUP_STARTED, occurred_at__gte=since, occurred_at__lt=until)
        .values("distinct_id")
        .distinct()
        .count()
    )
    return Funnel(since=since, until=until, steps=steps, time_to_value=time_to_value, signup_page_visitors=visitors)


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
