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
    if organization is None:
        return False
    return user.pk in skip_conditions_met(condition, recipients=[(user.pk, organization.pk)])


def skip_conditions_met(condition: str, *, recipients: list[tuple[int, int | None]]) -> set[int]:
    """The users among (user id, organization id) pairs for whom a step's skip condition holds
    now: one or two queries for a whole chunk of sends. Nobody without an organization."""
    organization_ids = {organization_id for _, organization_id in recipients if organization_id is not None}
    if not condition or not organization_ids:
        return set()
    if condition == Step.SkipCondition.INVITED_COLLEAGUE:
        inviting = set(
            Invite.objects.filter(organization_id__in=organization_ids).values_list("organization_id", flat=True).distinct()
        )
        members: dict[int, set[int]] = {}
        for organization_id, user_id in Membership.objects.filter(organization_id__in=organization_ids).values_list(
            "organization_id", "user_id"
        ):
            members.setdefault(organization_id, set()).add(user_id)
        return {
            user_id
            for user_id, organization_id in recipients
            if organization_id in inviting or members.get(organization_id, set()) - {user_id}
        }
    if condition == Step.SkipCondition.PAID:
        done = organizations_paid(organization_ids=organization_ids)
    elif condition == Step.SkipCondition.WORKSPACE_READY:
        done = set(
            Event.objects.filter(organization_id__in=organization_ids, name=ENVIRONMENT_ACTIVE)
            .values_list("organization_id", flat=True)
            .distinct()
        )
    else:
        return set()
    return {user_id for user_id, organization_id in recipients if organization_id in done}


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
