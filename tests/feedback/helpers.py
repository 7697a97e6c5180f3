"""Builders for feedback tests: members with a tenure, answered surveys, bulk responses."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from django.utils import timezone

from accounts.models import Membership
from feedback import services
from feedback.models import Response, Survey

from ..factories import MembershipFactory


def member(organization, *, joined_days_ago: int = 30, role: str = Membership.Role.MEMBER) -> Membership:
    """A member of `organization` who joined that many days ago."""
    membership = MembershipFactory(organization=organization, role=role)
    Membership.objects.filter(pk=membership.pk).update(created_at=timezone.now() - timedelta(days=joined_days_ago))
    membership.refresh_from_db()
    return membership


def age(membership: Membership, *, days: int) -> Membership:
    """Move the membership's start `days` into the past."""
    Membership.objects.filter(pk=membership.pk).update(created_at=timezone.now() - timedelta(days=days))
    return Membership.objects.select_related("user", "organization").get(pk=membership.pk)


def answer(membership: Membership, *, score: int, comment: str = "", role: str = "developer", may_contact=False):
    decision = services.survey_decide(membership=membership, product_code="tracker")
    assert decision.ask, decision.reason
    response, created = services.response_submit(
        membership=membership,
        survey_public_id=decision.survey.public_id,
        score=score,
        role=role,
        comment=comment,
        may_contact=may_contact,
    )
    assert created
    return response


def responses_insert(organization, scores, *, month: date, role: str = "developer", comment: str = "",
                     paying: bool = False, tenure_days: int = 40, category: str = "", user=None):
    """Stored answers without going through the ask rules (for report arithmetic)."""
    moment = datetime(month.year, month.month, 10, 12, 0, tzinfo=UTC)
    rows = []
    for score in scores:
        survey = Survey.objects.create(
            organization=organization, user=user or organization.created_by, asked_at=moment, status="answered"
        )
        rows.append(
            Response(
                survey=survey, organization=organization, user=user or organization.created_by, score=score,
                role=role, comment=comment, submitted_at=moment, month=month, paying=paying,
                tenure_days=tenure_days, category=category if comment else "",
                suggested_category=category if comment else "",
            )
        )
    return Response.objects.bulk_create(rows)
