"""Reads for onboarding: skip and exit conditions, and the staff report per variation."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from accounts.models import Invite, Membership, Organization, User
from billing.models import Subscription
from billing.selectors import subscriptions_of
from experiments.events import ENVIRONMENT_ACTIVE, SUBSCRIPTION_PAID
from experiments.models import Event

from .models import Enrolment, Send, Step


def organization_paid(*, organization: Organization) -> bool:
    """Has the organization ever paid for a subscription (billing's `subscription_paid`)?"""
    return Event.objects.filter(organization=organization, name=SUBSCRIPTION_PAID).exists()


def organizations_paid(*, organization_ids: set[int]) -> set[int]:
    """Which of these organizations have ever paid (one query for a whole chunk of sends)."""
    if not organization_ids:
        return set()
    return set(
        Event.objects.filter(organization_id__in=organization_ids, name=SUBSCRIPTION_PAID)
        .values_list("organization_id", flat=True)
        .distinct()
    )


def organization_trial(*, organization: Organization) -> Subscription | None:
    """The organization's first live subscription (its trial, at signup), for email context."""
    return subscriptions_of(organization=organization).first()


def skip_condition_met(condition: str, *, user: User, organization: Organization | None) -> bool:
    """Whether a step's skip condition holds for this recipient now."""
    if not condition or organization is None:
        return False
    if condition == Step.SkipCondition.INVITED_COLLEAGUE:
        return (
            Invite.objects.filter(organization=organization).exists()
            or Membership.objects.filter(organization=organization).exclude(user=user).exists()
        )
    if condition == Step.SkipCondition.PAID:
        return organization_paid(organization=organization)
    if condition == Step.SkipCondition.WORKSPACE_READY:
        return Event.objects.filter(organization=organization, name=ENVIRONMENT_ACTIVE).exists()
    return False


@dataclass
class VariationReport:
    experiment_key: str
    variation_key: str
    sequence_key: str
    enrolled: int
    holdout: int
    sent: int
    opened: int
    clicked: int
    converted: int
    unsubscribed: int

    @property
    def open_rate(self) -> float | None:
        return self.opened / self.sent if self.sent else None

    @property
    def click_rate(self) -> float | None:
        return self.clicked / self.sent if self.sent else None

    @property
    def conversion_rate(self) -> float | None:
        return self.converted / self.enrolled if self.enrolled else None


def variation_reports() -> list[VariationReport]:
    """Staff: per experiment variation (and sequence), enrolments, sends, opens, clicks, and
    conversions to paid of the enrolled organizations (whenever they paid after enrolling)."""
    paid = Event.objects.filter(name=SUBSCRIPTION_PAID).values("organization_id")
    enrolments = (
        Enrolment.objects.values("experiment_key", "variation_key", "sequence__key")
        .annotate(
            enrolled=Count("id"),
            holdout=Count("id", filter=Q(status=Enrolment.Status.HOLDOUT)),
            converted=Count("id", filter=Q(organization_id__in=paid)),
            unsubscribed=Count("id", filter=Q(exit_reason=Enrolment.ExitReason.UNSUBSCRIBED)),
        )
        .order_by("experiment_key", "variation_key")
    )
    sends = {
        (row["enrolment__experiment_key"], row["enrolment__variation_key"], row["enrolment__sequence__key"]): row
        for row in Send.objects.values(
            "enrolment__experiment_key", "enrolment__variation_key", "enrolment__sequence__key"
        ).annotate(
            sent=Count("id", filter=Q(status=Send.Status.SENT)),
            opened=Count("id", filter=Q(opened_at__isnull=False)),
            clicked=Count("id", filter=Q(clicked_at__isnull=False)),
        )
    }
    reports = []
    for row in enrolments:
        key = (row["experiment_key"], row["variation_key"], row["sequence__key"])
        counts = sends.get(key, {})
        reports.append(
            VariationReport(
                experiment_key=row["experiment_key"],
                variation_key=row["variation_key"],
                sequence_key=row["sequence__key"] or "",
                enrolled=row["enrolled"],
                holdout=row["holdout"],
                sent=counts.get("sent", 0),
                opened=counts.get("opened", 0),
                clicked=counts.get("clicked", 0),
                converted=row["converted"],
                unsubscribed=row["unsubscribed"],
            )
        )
    return reports


def sends_of(*, enrolment: Enrolment) -> QuerySet[Send]:
    return Send.objects.filter(enrolment=enrolment).select_related("step").order_by("step__position")


def organization_trials(*, organization_ids: set[int]) -> dict[int, Subscription]:
    """organization_trial for many organizations in one query (a chunk of sends): the same
    subscription billing.selectors.subscriptions_of lists first, by organization id."""
    trials: dict[int, Subscription] = {}
    if not organization_ids:
        return trials
    subscriptions = (
        Subscription.objects.filter(organization_id__in=organization_ids)
        .exclude(status=Subscription.Status.CANCELED)
        .select_related("product", "edition")
        .order_by("created_at", "id")
    )
    for subscription in subscriptions:
        trials.setdefault(subscription.organization_id, subscription)
    return trials
