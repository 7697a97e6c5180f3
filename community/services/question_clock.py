"""Support tiers, escalation policies and each question's escalation clock (pause, resume, stop,
follow upvotes, follow a better support tier); the question lock every write takes first, and
the answers' search vector.

The clock's arithmetic (business hours, holidays) is community.clock; this module moves a
question's clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Membership, Organization, User
from billing.models import Subscription
from billing.selectors import addons_granting, subscriptions_of
from catalog.models import AddOn, Edition, Product
from experiments.services import event_record

from .. import clock, events
from ..exceptions import (
    NotFound,
    PostInvalid,
)
from ..models import (
    Answer,
    BusinessCalendar,
    EscalationPolicy,
    Question,
)

DEFAULT_SUPPORT_TIER = "community"
# Subscriptions that entitle their organization to their edition's support tier. A suspended
# subscription (unpaid) falls back to the community tier.
SUPPORTED_STATUSES = (Subscription.Status.TRIALING, Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE)


@dataclass(frozen=True)
class SupportTier:
    """The asker's support: their edition of the product, the escalation policy of their best
    tier, and the add-on that tier came from (Premium support), when an add-on beat the edition."""

    edition: Edition | None
    policy: EscalationPolicy
    addon: AddOn | None = None


def support_tier_for(*, organization: Organization | None, product: Product) -> SupportTier:
    """The asker's edition of `product` and the escalation policy of their support tier: the
    best tier among the organization's supporting subscriptions of the product and the add-ons
    of the product that grant now (billing.selectors.addons_granting: a support tier such as
    Premium support's), else the community tier (no organization, no subscription, or a
    suspended one). On a tie the edition's tier wins: the add-on adds nothing then."""
    # (edition, tier, add-on it came from)
    candidates: list[tuple[Edition | None, str, AddOn | None]] = [(None, DEFAULT_SUPPORT_TIER, None)]
    if organization is not None:
        for subscription in subscriptions_of(organization=organization).filter(
            product=product, status__in=SUPPORTED_STATUSES
        ):
            candidates.append((subscription.edition, subscription.edition.support_tier, None))
        for addon_subscription in addons_granting(organization_id=organization.pk, product_id=product.pk):
            if addon_subscription.addon.support_tier:
                candidates.append(
                    (addon_subscription.subscription.edition, addon_subscription.addon.support_tier, addon_subscription.addon)
                )
    policies = {
        policy.support_tier: policy
        for policy in EscalationPolicy.objects.select_related("calendar").filter(
            support_tier__in=[tier for _, tier, _ in candidates]
        )
    }
    ranked = [
        (policies[tier].rank, addon is None, edition, policies[tier], addon)
        for edition, tier, addon in candidates
        if tier in policies
    ]
    if not ranked:
        fallback = EscalationPolicy.objects.select_related("calendar").order_by("rank").first()
        if fallback is None:
            raise PostInvalid("The community is not set up yet: no escalation policy exists.")
        edition = candidates[-1][0] if len(candidates) > 1 else None
        return SupportTier(edition=edition, policy=fallback)
    ranked.sort(key=lambda item: (item[0], item[1]), reverse=True)
    _, _, edition, policy, addon = ranked[0]
    if edition is None and len(candidates) > 1:
        edition = candidates[1][0]  # the asker's edition is still worth knowing
    return SupportTier(edition=edition, policy=policy, addon=addon)


def calendar_of(policy: EscalationPolicy) -> clock.Calendar:
    """The policy's calendar as plain values (holidays included)."""
    calendar: BusinessCalendar = policy.calendar
    return clock.Calendar(
        time_zone=calendar.time_zone,
        working_days=frozenset(int(day) for day in calendar.working_days),
        day_starts_at=calendar.day_starts_at,
        day_ends_at=calendar.day_ends_at,
        holidays=frozenset(calendar.holidays.values_list("date", flat=True)),
    )


def policy_seconds(policy: EscalationPolicy) -> int:
    return int(policy.hours_to_escalation * 3600)


def policy_is_business(policy: EscalationPolicy) -> bool:
    return policy.counting == EscalationPolicy.Counting.BUSINESS


def question_clock_pause(question: Question, *, now: datetime, actor: User) -> None:
    """Running -> paused, keeping what is left of the clock (in the policy's seconds)."""
    if question.clock != Question.Clock.RUNNING:
        return
    policy = question.policy
    question.clock_remaining_seconds = clock.seconds_left(
        calendar=calendar_of(policy), business=policy_is_business(policy), now=now, deadline=question.deadline
    )
    question.clock = Question.Clock.PAUSED
    question.deadline = None
    question.save(update_fields=["clock", "clock_remaining_seconds", "deadline"])
    event_record(name=events.CLOCK_PAUSED, user=actor, properties={"question": str(question.public_id)})


def _clock_run_again(question: Question, *, now: datetime) -> None:
    """Paused or stopped -> running, the deadline recomputed from now and the seconds that were
    left (kept when it paused or stopped)."""
    policy = question.policy
    question.deadline = clock.deadline_after(
        calendar=calendar_of(policy),
        business=policy_is_business(policy),
        start=now,
        seconds=question.clock_remaining_seconds or 0,
    )
    question.clock, question.clock_remaining_seconds = Question.Clock.RUNNING, None
    question.clock_stopped_at, question.stop_reason = None, ""
    question.save(update_fields=["clock", "deadline", "clock_remaining_seconds", "clock_stopped_at", "stop_reason"])


def question_clock_resume(question: Question, *, now: datetime, actor: User) -> None:
    """Paused -> running, the deadline recomputed from now and what was left."""
    if question.clock != Question.Clock.PAUSED:
        return
    _clock_run_again(question, now=now)
    event_record(name=events.CLOCK_RESUMED, user=actor, properties={"question": str(question.public_id)})


def question_clock_stop(question: Question, *, now: datetime, reason: str, actor: User | None) -> None:
    """Running or paused -> stopped: the community answered (or staff closed it) in time."""
    if question.clock not in (Question.Clock.RUNNING, Question.Clock.PAUSED):
        return
    if question.clock == Question.Clock.RUNNING:
        # Kept (a paused clock keeps its own): an upvote taken back restarts the clock from here.
        policy = question.policy
        question.clock_remaining_seconds = clock.seconds_left(
            calendar=calendar_of(policy), business=policy_is_business(policy), now=now, deadline=question.deadline
        )
    question.clock = Question.Clock.STOPPED
    question.deadline = None
    question.clock_stopped_at = now
    question.stop_reason = reason
    question.save(update_fields=["clock", "deadline", "clock_remaining_seconds", "clock_stopped_at", "stop_reason"])
    _clock_event(question, events.CLOCK_STOPPED, actor=actor, reason=reason, tier=question.support_tier)


def _clock_event(question: Question, name: str, *, actor: User | None, **properties) -> None:
    """An analytics event of the question's clock, by the actor or else the question itself."""
    event_record(
        name=name,
        user=actor,
        organization=question.organization,
        distinct_id=None if actor or question.organization else f"question:{question.public_id}",
        properties={"question": str(question.public_id), **properties},
    )


def question_clock_upgrade(question: Question, *, support: SupportTier, now: datetime) -> bool:
    """A running or paused clock moved to a better support tier (Premium support bought): the
    question takes the better policy, and its clock keeps the time already consumed. Consumed
    is measured in the old policy's counting (what the old policy allows minus what was left of
    it); what is left now is what the new policy allows minus that, never below zero, and never
    more than was left before (a better tier never makes a clock slower). A running clock's
    deadline is now plus what is left in the new policy's counting: a deadline already passed
    is now, escalated by the next tick. A paused clock keeps what is left in its seconds. Call
    with the question locked (question_lock). Returns whether anything changed."""
    old, new = question.policy, support.policy
    if question.state != Question.State.OPEN or question.clock not in (Question.Clock.RUNNING, Question.Clock.PAUSED):
        return False
    if new.rank <= old.rank:
        return False  # a tier going down (or sideways) never changes a clock
    old_calendar, old_business = calendar_of(old), policy_is_business(old)
    if question.clock == Question.Clock.RUNNING:
        left_before = clock.seconds_left(calendar=old_calendar, business=old_business, now=now, deadline=question.deadline)
    else:
        left_before = question.clock_remaining_seconds or 0
    consumed = max(0, policy_seconds(old) - left_before)
    left = max(0, policy_seconds(new) - consumed)
    new_calendar, new_business = calendar_of(new), policy_is_business(new)
    previous = {"deadline": question.deadline, "remaining": question.clock_remaining_seconds}
    if question.clock == Question.Clock.RUNNING:
        deadline = clock.deadline_after(calendar=new_calendar, business=new_business, start=now, seconds=left)
        question.deadline = min(deadline, question.deadline)
    else:
        question.clock_remaining_seconds = min(left, left_before) if new.counting == old.counting else left
    question.policy, question.support_tier = new, new.support_tier
    question.save(update_fields=["policy", "support_tier", "deadline", "clock_remaining_seconds"])
    _clock_event(
        question,
        events.CLOCK_UPGRADED,
        actor=None,
        from_tier=old.support_tier,
        tier=new.support_tier,
        addon=support.addon.code if support.addon else "",
        consumed_seconds=consumed,
        deadline_before=previous["deadline"].isoformat() if previous["deadline"] else None,
        deadline=question.deadline.isoformat() if question.deadline else None,
        remaining_seconds=question.clock_remaining_seconds,
    )
    return True


def question_clocks_follow_support_tier(*, organization_id: int, product_id: int, now: datetime | None = None) -> int:
    """After what an organization's add-ons grant on a product changed (billing's
    addon_grants_changed): each of its open questions on the product whose clock is running or
    paused moves to the organization's support tier now, when that tier is better than the
    question's (question_clock_upgrade). Each question in its own transaction, locked. Returns
    how many clocks changed."""
    organization = Organization.objects.filter(pk=organization_id).first()
    product = Product.objects.filter(pk=product_id).first()
    if organization is None or product is None:
        return 0
    now = now or timezone.now()
    open_questions = Question.objects.filter(
        organization=organization,
        product=product,
        state=Question.State.OPEN,
        clock__in=(Question.Clock.RUNNING, Question.Clock.PAUSED),
    )
    if not open_questions.exists():
        return 0  # most grants: nothing to move (and a community not set up yet has no policy to read)
    support = support_tier_for(organization=organization, product=product)
    question_ids = list(
        open_questions.filter(policy__rank__lt=support.policy.rank).order_by("pk").values_list("pk", flat=True)
    )
    changed = 0
    for question_id in question_ids:
        with transaction.atomic():
            changed += question_clock_upgrade(question_lock(question_id), support=support, now=now)
    return changed


def _upvoted_from_outside(question: Question) -> bool:
    """A visible answer upvoted (score above 0) by its author's peers, from outside the asker's
    organization: what stops the clock as "upvoted"."""
    answers = Answer.objects.filter(question_id=question.pk, is_deleted=False, is_hidden=False, score__gt=0)
    return any(_author_outside_asker_organization(question, answer) for answer in answers)


def question_clock_follow_upvotes(question: Question, *, now: datetime, actor: User | None) -> None:
    """After a vote on an answer, or an answer hidden, shown again or deleted: a running (or
    paused) clock stops when an answer from outside the asker's organization is upvoted, and a
    clock stopped for that alone runs again, with the time it had left, once no such answer is
    left (the vote taken back, the answer removed), so the question still reaches support."""
    upvoted = _upvoted_from_outside(question)
    if upvoted and question.clock in (Question.Clock.RUNNING, Question.Clock.PAUSED):
        question_clock_stop(question, now=now, reason=Question.StopReason.UPVOTED, actor=actor)
    elif (
        not upvoted
        and question.clock == Question.Clock.STOPPED
        and question.stop_reason == Question.StopReason.UPVOTED
        and question.accepted_answer_id is None
    ):
        _clock_run_again(question, now=now)
        _clock_event(question, events.CLOCK_RESUMED, actor=actor, reason="upvote_gone")


def question_lock(question_id: int) -> Question:
    try:
        return (
            Question.objects.select_for_update(of=("self",))
            .select_related("policy__calendar", "author")
            .get(pk=question_id)
        )
    except Question.DoesNotExist:
        raise NotFound("Question not found.") from None


def answers_vector_refresh(question_id: int) -> None:
    """The answers' text as the question's weight-C search vector (PostgreSQL only)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE community_question SET answers_vector = (
                SELECT setweight(to_tsvector('english', coalesce(string_agg(body, ' '), '')), 'C')
                FROM community_answer
                WHERE question_id = %s AND NOT is_deleted AND NOT is_hidden
            ) WHERE id = %s
            """,
            [question_id, question_id],
        )


def _author_outside_asker_organization(question: Question, answer: Answer) -> bool:
    if question.organization_id is None:
        return answer.author_id != question.author_id
    return not Membership.objects.filter(organization_id=question.organization_id, user_id=answer.author_id).exists()
