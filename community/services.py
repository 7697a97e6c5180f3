"""Every write of the community forum and its escalation clock.

Lock order, everywhere: the question, then its answer, then escalations, then support engineers
(by pk), then members (by pk). Counters move with F(); uniqueness (one vote, one flag per user
and post, one escalation per question) is a database constraint.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Membership, Organization, User
from billing.models import Subscription
from billing.selectors import subscriptions_of
from catalog.models import Edition, Product
from common.tasks import enqueue_on_commit
from experiments.services import event_record, events_record

from . import clock, events, notifications, privileges
from .exceptions import (
    AlreadyFlagged,
    NotFound,
    PermissionDenied,
    PostInvalid,
    PrivilegeRequired,
    QuestionNotOpen,
    RateLimited,
)
from .markdown import markdown_render
from .models import (
    Answer,
    BusinessCalendar,
    Comment,
    Escalation,
    EscalationPolicy,
    Flag,
    Member,
    Question,
    Revision,
    SupportEngineer,
    Tag,
    Vote,
)

logger = logging.getLogger(__name__)

DEFAULT_SUPPORT_TIER = "community"
# Subscriptions that entitle their organization to their edition's support tier. A suspended
# subscription (unpaid) falls back to the community tier.
SUPPORTED_STATUSES = (Subscription.Status.TRIALING, Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE)
TAG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
MAX_TAGS = 5


# Members, reputation and privileges ------------------------------------------------------------


def member_of(*, user: User) -> Member:
    """The user's community member row, created on first use."""
    member, _ = Member.objects.get_or_create(user=user)
    return member


def _member_lock(user: User) -> Member:
    member_of(user=user)
    return Member.objects.select_for_update().get(user=user)


def _privilege_require(*, user: User, privilege: str) -> None:
    reputation = member_of(user=user).reputation
    if not privileges.has_privilege(user=user, reputation=reputation, privilege=privilege):
        raise PrivilegeRequired(
            f"You need {privileges.THRESHOLDS[privilege]} reputation to {privileges.LABELS[privilege]}; "
            f"you have {reputation}."
        )


def _reputation_move(changes: dict[int, int]) -> None:
    """Add to members' reputation (user id -> delta), in user id order (the lock order)."""
    for user_id in sorted(changes):
        if changes[user_id]:
            Member.objects.get_or_create(user_id=user_id)
            Member.objects.filter(user_id=user_id).update(reputation=F("reputation") + changes[user_id])


def _is_new_account(user: User, member: Member, now: datetime) -> bool:
    young = user.date_joined > now - timedelta(days=settings.COMMUNITY_NEW_ACCOUNT_DAYS)
    return young or member.reputation < settings.COMMUNITY_NEW_ACCOUNT_REPUTATION


def _rate_limit(*, user: User, now: datetime) -> None:
    """Refuse a post over the user's hourly limit. The member row is locked, so two posts at
    once by one user are counted one after the other (no check-then-act)."""
    if user.is_staff:
        return
    member = _member_lock(user)
    since = now - timedelta(hours=1)
    posted = (
        Question.objects.filter(author=user, created_at__gt=since).count()
        + Answer.objects.filter(author=user, created_at__gt=since).count()
        + Comment.objects.filter(author=user, created_at__gt=since).count()
    )
    new = _is_new_account(user, member, now)
    limit = settings.COMMUNITY_NEW_POSTS_PER_HOUR if new else settings.COMMUNITY_POSTS_PER_HOUR
    if posted >= limit:
        if new:
            raise RateLimited(
                f"New members may post {limit} times an hour. Please wait a while; the limit "
                "grows as you earn reputation."
            )
        raise RateLimited(f"You may post {limit} times an hour. Please wait a while before posting again.")


# Support tiers, policies and the clock ----------------------------------------------------------


def support_tier_for(*, organization: Organization | None, product: Product) -> tuple[Edition | None, EscalationPolicy]:
    """The asker's edition of `product` and the escalation policy of its support tier: the best
    tier among the organization's supporting subscriptions of the product, else the community
    tier (no organization, no subscription, or a suspended one)."""
    candidates: list[tuple[Edition | None, str]] = [(None, DEFAULT_SUPPORT_TIER)]
    if organization is not None:
        for subscription in subscriptions_of(organization=organization).filter(
            product=product, status__in=SUPPORTED_STATUSES
        ):
            candidates.append((subscription.edition, subscription.edition.support_tier))
    policies = {
        policy.support_tier: policy
        for policy in EscalationPolicy.objects.select_related("calendar").filter(
            support_tier__in=[tier for _, tier in candidates]
        )
    }
    ranked = [(policies[tier].rank, edition, policies[tier]) for edition, tier in candidates if tier in policies]
    if not ranked:
        fallback = EscalationPolicy.objects.select_related("calendar").order_by("rank").first()
        if fallback is None:
            raise PostInvalid("The community is not set up yet: no escalation policy exists.")
        edition = candidates[-1][0] if len(candidates) > 1 else None
        return edition, fallback
    ranked.sort(key=lambda item: item[0], reverse=True)
    _, edition, policy = ranked[0]
    if edition is None and len(candidates) > 1:
        edition = candidates[1][0]  # the asker's edition is still worth knowing
    return edition, policy


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


def _policy_seconds(policy: EscalationPolicy) -> int:
    return int(policy.hours_to_escalation * 3600)


def _is_business(policy: EscalationPolicy) -> bool:
    return policy.counting == EscalationPolicy.Counting.BUSINESS


def _clock_pause(question: Question, *, now: datetime, actor: User) -> None:
    """Running -> paused, keeping what is left of the clock (in the policy's seconds)."""
    if question.clock != Question.Clock.RUNNING:
        return
    policy = question.policy
    question.clock_remaining_seconds = clock.seconds_left(
        calendar=calendar_of(policy), business=_is_business(policy), now=now, deadline=question.deadline
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
        business=_is_business(policy),
        start=now,
        seconds=question.clock_remaining_seconds or 0,
    )
    question.clock, question.clock_remaining_seconds = Question.Clock.RUNNING, None
    question.clock_stopped_at, question.stop_reason = None, ""
    question.save(update_fields=["clock", "deadline", "clock_remaining_seconds", "clock_stopped_at", "stop_reason"])


def _clock_resume(question: Question, *, now: datetime, actor: User) -> None:
    """Paused -> running, the deadline recomputed from now and what was left."""
    if question.clock != Question.Clock.PAUSED:
        return
    _clock_run_again(question, now=now)
    event_record(name=events.CLOCK_RESUMED, user=actor, properties={"question": str(question.public_id)})


def _clock_stop(question: Question, *, now: datetime, reason: str, actor: User | None) -> None:
    """Running or paused -> stopped: the community answered (or staff closed it) in time."""
    if question.clock not in (Question.Clock.RUNNING, Question.Clock.PAUSED):
        return
    if question.clock == Question.Clock.RUNNING:
        # Kept (a paused clock keeps its own): an upvote taken back restarts the clock from here.
        policy = question.policy
        question.clock_remaining_seconds = clock.seconds_left(
            calendar=calendar_of(policy), business=_is_business(policy), now=now, deadline=question.deadline
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


def _upvoted_from_outside(question: Question) -> bool:
    """A visible answer upvoted (score above 0) by its author's peers, from outside the asker's
    organization: what stops the clock as "upvoted"."""
    answers = Answer.objects.filter(question_id=question.pk, is_deleted=False, is_hidden=False, score__gt=0)
    return any(_author_outside_asker_organization(question, answer) for answer in answers)


def _clock_follow_upvotes(question: Question, *, now: datetime, actor: User | None) -> None:
    """After a vote on an answer, or an answer hidden, shown again or deleted: a running (or
    paused) clock stops when an answer from outside the asker's organization is upvoted, and a
    clock stopped for that alone runs again, with the time it had left, once no such answer is
    left (the vote taken back, the answer removed), so the question still reaches support."""
    upvoted = _upvoted_from_outside(question)
    if upvoted and question.clock in (Question.Clock.RUNNING, Question.Clock.PAUSED):
        _clock_stop(question, now=now, reason=Question.StopReason.UPVOTED, actor=actor)
    elif (
        not upvoted
        and question.clock == Question.Clock.STOPPED
        and question.stop_reason == Question.StopReason.UPVOTED
        and question.accepted_answer_id is None
    ):
        _clock_run_again(question, now=now)
        _clock_event(question, events.CLOCK_RESUMED, actor=actor, reason="upvote_gone")


def _question_lock(question_id: int) -> Question:
    try:
        return (
            Question.objects.select_for_update(of=("self",))
            .select_related("policy__calendar", "author")
            .get(pk=question_id)
        )
    except Question.DoesNotExist:
        raise NotFound("Question not found.") from None


def _answers_vector_refresh(question_id: int) -> None:
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


# Questions, answers, comments ------------------------------------------------------------------


def _tags_parse(tags: list[str] | str) -> list[str]:
    if isinstance(tags, str):
        tags = re.split(r"[\s,]+", tags)
    names = []
    for raw in tags:
        name = raw.strip().lower()
        if not name:
            continue
        if not TAG_RE.match(name):
            raise PostInvalid(f"“{raw[:40]}” is not a tag: use lower-case letters, digits and dashes.")
        if name not in names:
            names.append(name)
    if len(names) > MAX_TAGS:
        raise PostInvalid(f"A question takes at most {MAX_TAGS} tags.")
    return names


def _tags_set(question: Question, names: list[str]) -> None:
    tags = []
    for name in names:
        tag, _ = Tag.objects.get_or_create(name=name)
        tags.append(tag)
    question.tags.set(tags)


def _text_check(*, title: str | None, body: str) -> None:
    if title is not None and not (10 <= len(title.strip()) <= 200):
        raise PostInvalid("A title takes 10 to 200 characters: say what you need in a sentence.")
    if len(body.strip()) < 15:
        raise PostInvalid("Please say a little more (at least 15 characters).")
    if len(body) > 30000:
        raise PostInvalid("A post takes at most 30,000 characters.")


@transaction.atomic
def question_ask(
    *,
    author: User,
    organization: Organization | None,
    product: Product,
    title: str,
    body: str,
    tags: list[str] | str = (),
) -> Question:
    """Post a question and start its clock at the deadline of the asker's support tier.

    Invariant: the asker's organization, edition and tier are those at the time of asking and
    never change; a running question always has a deadline.
    """
    now = timezone.now()
    _text_check(title=title, body=body)
    names = _tags_parse(list(tags) if not isinstance(tags, str) else tags)
    if organization is not None and not Membership.objects.filter(user=author, organization=organization).exists():
        raise PermissionDenied("You are not a member of that organization.")
    _rate_limit(user=author, now=now)
    edition, policy = support_tier_for(organization=organization, product=product)
    question = Question.objects.create(
        product=product,
        author=author,
        organization=organization,
        edition=edition,
        support_tier=policy.support_tier,
        title=title.strip(),
        body=body,
        body_html=markdown_render(body),
        created_at=now,
        updated_at=now,
        policy=policy,
        clock=Question.Clock.RUNNING,
        deadline=clock.deadline_after(
            calendar=calendar_of(policy), business=_is_business(policy), start=now, seconds=_policy_seconds(policy)
        ),
    )
    _tags_set(question, names)
    Revision.objects.create(question=question, number=1, editor=author, title=question.title, body=body, created_at=now)
    event_record(
        name=events.QUESTION_ASKED,
        user=author,
        organization=organization,
        properties={"question": str(question.public_id), "product": product.code, "tier": policy.support_tier},
    )
    return question


def _edit_allowed(*, editor: User, author_id: int) -> None:
    if editor.pk != author_id:
        _privilege_require(user=editor, privilege=privileges.EDIT_OTHERS)


@transaction.atomic
def question_edit(*, question_id: int, editor: User, title: str, body: str, tags: list[str] | str) -> Question:
    """Edit a question, keeping the old text as a revision. The asker editing a question that
    waits on them answers the request for information: the clock resumes."""
    now = timezone.now()
    question = _question_lock(question_id)
    if question.state == Question.State.DELETED:
        raise NotFound("Question not found.")
    _edit_allowed(editor=editor, author_id=question.author_id)
    _text_check(title=title, body=body)
    names = _tags_parse(tags)
    number = question.revisions.count() + 1
    question.title, question.body, question.body_html = title.strip(), body, markdown_render(body)
    question.updated_at = now
    question.save(update_fields=["title", "body", "body_html", "updated_at"])
    _tags_set(question, names)
    Revision.objects.create(question=question, number=number, editor=editor, title=question.title, body=body, created_at=now)
    if editor.pk == question.author_id:
        _clock_resume(question, now=now, actor=editor)
    event_record(name=events.QUESTION_EDITED, user=editor, properties={"question": str(question.public_id)})
    return question


def _is_support(user: User) -> bool:
    return SupportEngineer.objects.filter(user=user).exists()


@transaction.atomic
def answer_post(*, question_id: int, author: User, body: str) -> Answer:
    """Answer an open question. An answer by a support engineer resolves the question's
    escalation; the asker is notified by email."""
    now = timezone.now()
    question = _question_lock(question_id)
    if question.state == Question.State.DELETED:
        raise NotFound("Question not found.")
    if question.state != Question.State.OPEN:
        raise QuestionNotOpen()
    _text_check(title=None, body=body)
    _rate_limit(user=author, now=now)
    answer = Answer.objects.create(
        question=question, author=author, body=body, body_html=markdown_render(body), created_at=now, updated_at=now
    )
    Revision.objects.create(answer=answer, number=1, editor=author, body=body, created_at=now)
    Question.objects.filter(pk=question.pk).update(answer_count=F("answer_count") + 1, updated_at=now)
    Question.objects.filter(pk=question.pk, first_answer_at__isnull=True).update(first_answer_at=now)
    _answers_vector_refresh(question.pk)
    if _is_support(author) or author.is_staff:
        # Support answered: before the deadline, nothing is left to escalate.
        _clock_stop(question, now=now, reason=Question.StopReason.SUPPORT, actor=author)
        _escalation_resolve(question, now=now, actor=author)
    event_record(
        name=events.ANSWER_POSTED,
        user=author,
        properties={"question": str(question.public_id), "answer": str(answer.public_id)},
    )
    notifications.notify_answer_posted(question=question, answer=answer)
    return answer


@transaction.atomic
def answer_edit(*, answer_id: int, editor: User, body: str) -> Answer:
    """Edit an answer, keeping the old text as a revision."""
    now = timezone.now()
    question_id = Answer.objects.filter(pk=answer_id, is_deleted=False).values_list("question_id", flat=True).first()
    if question_id is None:
        raise NotFound("Answer not found.")
    _question_lock(question_id)
    answer = Answer.objects.select_for_update().get(pk=answer_id)
    _edit_allowed(editor=editor, author_id=answer.author_id)
    _text_check(title=None, body=body)
    number = answer.revisions.count() + 1
    answer.body, answer.body_html, answer.updated_at = body, markdown_render(body), now
    answer.save(update_fields=["body", "body_html", "updated_at"])
    Revision.objects.create(answer=answer, number=number, editor=editor, body=body, created_at=now)
    _answers_vector_refresh(question_id)
    event_record(name=events.ANSWER_EDITED, user=editor, properties={"answer": str(answer.public_id)})
    return answer


@transaction.atomic
def comment_post(
    *,
    author: User,
    body: str,
    question_id: int | None = None,
    answer_id: int | None = None,
    asks_for_information: bool = False,
) -> Comment:
    """Comment on a question or an answer.

    A comment by someone other than the asker that asks for more information pauses the
    question's clock; any comment by the asker resumes it.
    """
    now = timezone.now()
    if (question_id is None) == (answer_id is None):
        raise PostInvalid("A comment belongs to one question or one answer.")
    answer = None
    if answer_id is not None:
        question_id = Answer.objects.filter(pk=answer_id, is_deleted=False).values_list("question_id", flat=True).first()
        if question_id is None:
            raise NotFound("Answer not found.")
    question = _question_lock(question_id)
    if question.state == Question.State.DELETED:
        raise NotFound("Question not found.")
    if answer_id is not None:
        answer = Answer.objects.select_related("author").get(pk=answer_id)
    text = body.strip()
    if not 2 <= len(text) <= 600:
        raise PostInvalid("A comment takes 2 to 600 characters.")
    _rate_limit(user=author, now=now)
    comment = Comment.objects.create(
        question=None if answer else question,
        answer=answer,
        author=author,
        body=text,
        asks_for_information=bool(asks_for_information and author.pk != question.author_id),
        created_at=now,
    )
    if comment.asks_for_information:
        _clock_pause(question, now=now, actor=author)
    elif author.pk == question.author_id:
        _clock_resume(question, now=now, actor=author)
    event_record(
        name=events.COMMENT_POSTED,
        user=author,
        properties={"question": str(question.public_id), "asks_for_information": comment.asks_for_information},
    )
    notifications.notify_comment_posted(
        comment=comment, post_author=answer.author if answer else question.author, question=question
    )
    return comment


# Votes and acceptance ---------------------------------------------------------------------------


def _author_outside_asker_organization(question: Question, answer: Answer) -> bool:
    if question.organization_id is None:
        return answer.author_id != question.author_id
    return not Membership.objects.filter(organization_id=question.organization_id, user_id=answer.author_id).exists()


@transaction.atomic
def vote_cast(*, user: User, value: int, question_id: int | None = None, answer_id: int | None = None) -> int:
    """Vote a post up (+1) or down (-1); the same vote again withdraws it. Returns the score.

    Invariant: one vote per user and post (a constraint); the post's score and its author's
    reputation move by exactly the change. An upvoted answer from outside the asker's
    organization stops the question's clock.
    """
    now = timezone.now()
    if value not in (1, -1) or (question_id is None) == (answer_id is None):
        raise PostInvalid("A vote is up or down, on one post.")
    answer = None
    if answer_id is not None:
        question_id = Answer.objects.filter(pk=answer_id, is_deleted=False).values_list("question_id", flat=True).first()
        if question_id is None:
            raise NotFound("Answer not found.")
    question = _question_lock(question_id)
    if question.state == Question.State.DELETED:
        raise NotFound("Question not found.")
    post: Question | Answer = question
    if answer_id is not None:
        answer = Answer.objects.select_for_update().get(pk=answer_id)
        post = answer
    if post.author_id == user.pk:
        raise PermissionDenied("You cannot vote on your own post.")
    _privilege_require(user=user, privilege=privileges.VOTE_UP if value == 1 else privileges.VOTE_DOWN)
    target = {"answer": answer} if answer else {"question": question}
    existing = Vote.objects.select_for_update().filter(user=user, **target).first()
    old = existing.value if existing else 0
    new = 0 if old == value else value
    if existing and new == 0:
        existing.delete()
    elif existing:
        existing.value = new
        existing.save(update_fields=["value"])
    else:
        Vote.objects.create(user=user, value=new, created_at=now, **target)

    def earned(vote: int) -> tuple[int, int]:
        if vote == 1:
            return (privileges.ANSWER_UPVOTED if answer else privileges.QUESTION_UPVOTED), 0
        if vote == -1:
            return privileges.POST_DOWNVOTED, (privileges.DOWNVOTER_ON_ANSWER if answer else 0)
        return 0, 0

    author_old, voter_old = earned(old)
    author_new, voter_new = earned(new)
    changes = {post.author_id: author_new - author_old}
    changes[user.pk] = changes.get(user.pk, 0) + voter_new - voter_old
    type(post).objects.filter(pk=post.pk).update(score=F("score") + (new - old))
    _reputation_move(changes)
    post.refresh_from_db(fields=["score"])
    if answer is not None:
        _clock_follow_upvotes(question, now=now, actor=user)
    event_record(
        name=events.VOTE_CAST,
        user=user,
        properties={"post": str(post.public_id), "kind": "answer" if answer else "question", "value": new},
    )
    return post.score


@transaction.atomic
def answer_accept(*, user: User, answer_id: int) -> Question:
    """The asker accepts one answer (accepting another moves the acceptance). Stops the clock
    and resolves an escalation; the answer's author earns reputation and an email."""
    now = timezone.now()
    question_id = Answer.objects.filter(pk=answer_id, is_deleted=False).values_list("question_id", flat=True).first()
    if question_id is None:
        raise NotFound("Answer not found.")
    question = _question_lock(question_id)
    if question.author_id != user.pk:
        raise PermissionDenied("Only the asker can accept an answer.")
    answer = Answer.objects.select_related("author").get(pk=answer_id)
    if question.accepted_answer_id == answer.pk:
        return question
    # The answer's author earns for an accepted answer, and the asker for accepting one, only
    # when they are not the same person (accepting your own answer earns nothing).
    own = answer.author_id == user.pk
    previous = Answer.objects.get(pk=question.accepted_answer_id) if question.accepted_answer_id is not None else None
    changes: dict[int, int] = {}
    if previous is not None and previous.author_id != user.pk:
        changes[previous.author_id] = -privileges.ANSWER_ACCEPTED
    if not own:
        changes[answer.author_id] = changes.get(answer.author_id, 0) + privileges.ANSWER_ACCEPTED
    held = previous is not None and previous.author_id != user.pk  # the asker has the acceptor's reputation
    acceptor = (0 if own else privileges.ACCEPTOR) - (privileges.ACCEPTOR if held else 0)
    if acceptor:
        changes[user.pk] = changes.get(user.pk, 0) + acceptor
    question.accepted_answer = answer
    question.updated_at = now
    question.save(update_fields=["accepted_answer", "updated_at"])
    _reputation_move(changes)
    _clock_stop(question, now=now, reason=Question.StopReason.SELF_SOLVED if own else Question.StopReason.ACCEPTED, actor=user)
    _escalation_resolve(question, now=now, actor=user)
    event_record(
        name=events.ANSWER_ACCEPTED,
        user=user,
        organization=question.organization,
        properties={"question": str(question.public_id), "answer": str(answer.public_id)},
    )
    notifications.notify_answer_accepted(question=question, answer=answer)
    return question


# Moderation --------------------------------------------------------------------------------------


@transaction.atomic
def post_flag(*, user: User, reason: str, question_id: int | None = None, answer_id: int | None = None) -> bool:
    """Flag a post for moderators. Returns whether the post is now hidden.

    Invariant: one flag per user and post (a constraint); a post with COMMUNITY_FLAGS_TO_HIDE
    unreviewed flags is hidden until a moderator reviews it.
    """
    now = timezone.now()
    if reason not in Flag.Reason.values or (question_id is None) == (answer_id is None):
        raise PostInvalid("Choose why you flag this post.")
    if answer_id is not None:
        question_id = Answer.objects.filter(pk=answer_id, is_deleted=False).values_list("question_id", flat=True).first()
        if question_id is None:
            raise NotFound("Answer not found.")
    question = _question_lock(question_id)
    post: Question | Answer = question if answer_id is None else Answer.objects.select_for_update().get(pk=answer_id)
    if post.author_id == user.pk:
        raise PermissionDenied("You cannot flag your own post.")
    _privilege_require(user=user, privilege=privileges.FLAG)
    target = {"question": question} if answer_id is None else {"answer": post}
    try:
        with transaction.atomic():
            Flag.objects.create(user=user, reason=reason, created_at=now, **target)
    except IntegrityError:
        raise AlreadyFlagged() from None
    model = type(post)
    model.objects.filter(pk=post.pk).update(flag_count=F("flag_count") + 1)
    post.refresh_from_db(fields=["flag_count", "is_hidden"])
    event_record(name=events.POST_FLAGGED, user=user, properties={"post": str(post.public_id), "reason": reason})
    if not post.is_hidden and post.flag_count >= settings.COMMUNITY_FLAGS_TO_HIDE:
        model.objects.filter(pk=post.pk).update(is_hidden=True)
        if isinstance(post, Answer):
            # A hidden answer is not an answer: the question counts (and searches) as unanswered
            # without it, and an upvote on it no longer stops the clock.
            Question.objects.filter(pk=question.pk).update(answer_count=F("answer_count") - 1)
            _answers_vector_refresh(question.pk)
            _clock_follow_upvotes(question, now=now, actor=user)
        event_record(name=events.POST_HIDDEN, user=user, properties={"post": str(post.public_id)})
        return True
    return post.is_hidden


def _staff_require(user: User) -> None:
    if not user.is_staff:
        raise PermissionDenied("Only moderators can do that.")


@transaction.atomic
def post_review(*, moderator: User, keep: bool, question_id: int | None = None, answer_id: int | None = None) -> None:
    """A moderator reviews a flagged post: keep it (shown again, flags cleared) or delete it."""
    _staff_require(moderator)
    now = timezone.now()
    if answer_id is not None:
        question_id = Answer.objects.filter(pk=answer_id).values_list("question_id", flat=True).first()
        if question_id is None:
            raise NotFound("Answer not found.")
    question = _question_lock(question_id)
    target = {"question": question} if answer_id is None else {"answer_id": answer_id}
    Flag.objects.filter(reviewed_at__isnull=True, **target).update(reviewed_at=now, reviewed_by=moderator)
    if answer_id is None:
        if keep:
            Question.objects.filter(pk=question.pk).update(is_hidden=False, flag_count=0)
        else:
            _question_remove(question, now=now, moderator=moderator)
    else:
        # answer_count counts the answers shown: one comes back when a hidden one is kept, and
        # one goes when a shown one is deleted. Each change is made once, whoever reviews first
        # (two moderators on one queue page, a double submit).
        answer = Answer.objects.select_for_update().get(pk=answer_id)
        counted = not answer.is_deleted and not answer.is_hidden
        if answer.is_deleted:
            Answer.objects.filter(pk=answer_id).update(flag_count=0)
        elif keep:
            Answer.objects.filter(pk=answer_id).update(is_hidden=False, flag_count=0)
            if not counted:
                Question.objects.filter(pk=question.pk).update(answer_count=F("answer_count") + 1)
        else:
            Answer.objects.filter(pk=answer_id).update(flag_count=0, is_deleted=True)
            if counted:
                Question.objects.filter(pk=question.pk).update(answer_count=F("answer_count") - 1)
        _answers_vector_refresh(question.pk)
        _clock_follow_upvotes(question, now=now, actor=moderator)
    event_record(name=events.POST_REVIEWED, user=moderator, properties={"question": str(question.public_id), "kept": keep})


def _question_remove(question: Question, *, now: datetime, moderator: User) -> None:
    question.state = Question.State.DELETED
    question.updated_at = now
    question.save(update_fields=["state", "updated_at"])
    _clock_stop(question, now=now, reason=Question.StopReason.CLOSED, actor=moderator)
    _escalation_resolve(question, now=now, actor=moderator)
    event_record(name=events.QUESTION_DELETED, user=moderator, properties={"question": str(question.public_id)})


@transaction.atomic
def question_close(*, moderator: User, question_id: int, duplicate_of_id: int | None = None) -> Question:
    """Close a question, optionally as a duplicate of another. Staff, or members with the close
    privilege. Stops the clock and resolves an escalation."""
    now = timezone.now()
    _privilege_require(user=moderator, privilege=privileges.CLOSE)
    question = _question_lock(question_id)
    if question.state != Question.State.OPEN:
        raise QuestionNotOpen("This question is already closed.")
    if duplicate_of_id is not None:
        if duplicate_of_id == question.pk or not Question.objects.filter(
            pk=duplicate_of_id, state=Question.State.OPEN
        ).exists():
            raise PostInvalid("Choose another open question as the original.")
        question.duplicate_of_id = duplicate_of_id
    question.state = Question.State.CLOSED
    question.updated_at = now
    question.save(update_fields=["state", "duplicate_of", "updated_at"])
    _clock_stop(question, now=now, reason=Question.StopReason.CLOSED, actor=moderator)
    _escalation_resolve(question, now=now, actor=moderator)
    event_record(
        name=events.QUESTION_CLOSED,
        user=moderator,
        properties={"question": str(question.public_id), "duplicate": duplicate_of_id is not None},
    )
    return question


@transaction.atomic
def question_delete(*, moderator: User, question_id: int) -> None:
    """Staff delete a question: it disappears for members; its clock stops."""
    _staff_require(moderator)
    question = _question_lock(question_id)
    if question.state != Question.State.DELETED:
        _question_remove(question, now=timezone.now(), moderator=moderator)


@transaction.atomic
def notifications_unsubscribe(*, user: User) -> None:
    """Stop the community's email to this member (support staff email is not affected)."""
    member = _member_lock(user)
    if member.notify_by_email:
        member.notify_by_email = False
        member.save(update_fields=["notify_by_email"])
        event_record(name=events.NOTIFICATIONS_UNSUBSCRIBED, user=user)


# Escalations -------------------------------------------------------------------------------------


def questions_escalate(*, question_ids: list[int], now: datetime | None = None) -> list[Escalation]:
    """Escalate due questions: clock -> escalated, one escalation each, assigned round robin.

    Invariant: a question is escalated once. The caller holds the rows' locks (the tick's
    FOR UPDATE SKIP LOCKED); the state change is conditional (still running and due), and the
    escalation is unique per question, so a second tick, or a concurrent one, does nothing.
    One statement per step for the whole batch, whatever its size; the engineers are told by
    one task after the commit.
    """
    now = now or timezone.now()
    questions = list(
        Question.objects.select_related("author", "organization", "policy")
        .filter(pk__in=question_ids, clock=Question.Clock.RUNNING, deadline__lte=now)
        .order_by("deadline", "pk")
    )
    if not questions:
        return []
    Question.objects.filter(pk__in=[q.pk for q in questions], clock=Question.Clock.RUNNING).update(
        clock=Question.Clock.ESCALATED, deadline=None
    )
    engineers = _engineers_lock()
    taken: dict[int, int] = {}
    escalations = []
    for question in questions:
        escalation = Escalation(question=question, support_tier=question.support_tier, escalated_at=now)
        engineer = _engineer_next(engineers, now=now)
        if engineer is not None:
            taken[engineer.pk] = taken.get(engineer.pk, 0) + 1
            escalation.engineer = engineer
            escalation.state = Escalation.State.ASSIGNED
            escalation.assigned_at = now
            escalation.reminder_due_at = now + timedelta(seconds=int(question.policy.reminder_hours * 3600))
        escalations.append(escalation)
    Escalation.objects.bulk_create(escalations)
    by_pk = {engineer.pk: engineer for engineer in engineers}
    for engineer_id, count in sorted(taken.items()):
        SupportEngineer.objects.filter(pk=engineer_id).update(
            open_assignments=F("open_assignments") + count, last_assigned_at=by_pk[engineer_id].last_assigned_at
        )
    # One event per escalation, naming the engineer it went to (an escalation assigned later,
    # from the queue, records its own assignment event).
    events_record(
        events=[
            {
                "name": events.QUESTION_ESCALATED,
                "user": escalation.question.author,
                "organization": escalation.question.organization,
                "properties": {
                    "question": str(escalation.question.public_id),
                    "tier": escalation.question.support_tier,
                    "engineer": str(escalation.engineer.user.public_id) if escalation.engineer else "",
                },
            }
            for escalation in escalations
        ]
    )
    assigned = [escalation.pk for escalation in escalations if escalation.engineer is not None]
    if assigned:
        from .tasks import escalations_notify

        enqueue_on_commit(escalations_notify, assigned)
    return escalations


def escalations_notify(*, escalation_ids: list[int]) -> int:
    """Email each escalation's engineer that it is theirs (from the worker, after the tick)."""
    escalations = Escalation.objects.select_related("question", "engineer__user").filter(
        pk__in=escalation_ids, state=Escalation.State.ASSIGNED
    )
    sent = 0
    with transaction.atomic():
        for escalation in escalations:
            notifications.notify_engineer_assigned(escalation=escalation, engineer=escalation.engineer)
            sent += 1
    return sent


def _engineer_next(engineers: list[SupportEngineer], *, now: datetime) -> SupportEngineer | None:
    """Round robin: the on-duty engineer under their cap assigned least recently (then by pk).
    Moves the chosen one's in-memory count and time, so a batch keeps rotating."""
    available = [engineer for engineer in engineers if engineer.open_assignments < engineer.cap]
    if not available:
        return None
    epoch = datetime.min.replace(tzinfo=now.tzinfo)
    engineer = min(available, key=lambda e: (e.last_assigned_at or epoch, e.pk))
    engineer.open_assignments += 1
    # Strictly increasing within a batch, so the rotation goes on at one `now`.
    engineer.last_assigned_at = max(now, max((e.last_assigned_at or epoch) for e in engineers) + timedelta(microseconds=1))
    return engineer


def _engineers_lock() -> list[SupportEngineer]:
    return list(SupportEngineer.objects.select_for_update().filter(on_duty=True).select_related("user").order_by("pk"))


def _escalation_assign(escalation: Escalation, *, now: datetime, engineers: list[SupportEngineer] | None = None) -> bool:
    """Give a queued escalation to the on-duty engineer under their cap who was assigned least
    recently (round robin). Returns False, leaving it queued, when everyone is at their cap."""
    if engineers is None:
        engineers = _engineers_lock()
    engineer = _engineer_next(engineers, now=now)
    if engineer is None:
        return False
    SupportEngineer.objects.filter(pk=engineer.pk).update(
        open_assignments=F("open_assignments") + 1, last_assigned_at=engineer.last_assigned_at
    )
    policy = escalation.question.policy
    escalation.engineer = engineer
    escalation.state = Escalation.State.ASSIGNED
    escalation.assigned_at = now
    escalation.reminder_due_at = now + timedelta(seconds=int(policy.reminder_hours * 3600))
    escalation.save(update_fields=["engineer", "state", "assigned_at", "reminder_due_at", "lead_flagged_at"])
    event_record(
        name=events.ESCALATION_ASSIGNED,
        user=engineer.user,
        properties={"question": str(escalation.question.public_id), "tier": escalation.support_tier},
    )
    notifications.notify_engineer_assigned(escalation=escalation, engineer=engineer)
    return True


def _escalation_resolve(question: Question, *, now: datetime, actor: User | None) -> None:
    """Close the question's open escalation, if any, and free its engineer's slot."""
    escalation = (
        Escalation.objects.select_for_update()
        .filter(question=question)
        .exclude(state=Escalation.State.RESOLVED)
        .first()
    )
    if escalation is None:
        return
    if escalation.engineer_id is not None:
        SupportEngineer.objects.filter(pk=escalation.engineer_id, open_assignments__gt=0).update(
            open_assignments=F("open_assignments") - 1
        )
    escalation.state = Escalation.State.RESOLVED
    escalation.resolved_at = now
    escalation.save(update_fields=["state", "resolved_at"])
    event_record(
        name=events.ESCALATION_RESOLVED,
        user=actor,
        organization=question.organization,
        distinct_id=None if actor or question.organization else f"question:{question.public_id}",
        properties={"question": str(question.public_id), "tier": escalation.support_tier},
    )


@transaction.atomic
def escalation_reassign(*, moderator: User, escalation_id: int) -> bool:
    """Staff put an escalation back through the round robin (an engineer went off duty)."""
    _staff_require(moderator)
    now = timezone.now()
    escalation = Escalation.objects.select_related("question__policy").select_for_update(of=("self",)).get(pk=escalation_id)
    if escalation.state == Escalation.State.RESOLVED:
        return False
    engineers = _engineers_lock()
    previous = escalation.engineer_id
    if previous is not None:
        SupportEngineer.objects.filter(pk=previous, open_assignments__gt=0).update(
            open_assignments=F("open_assignments") - 1
        )
        escalation.state, escalation.engineer, escalation.assigned_at = Escalation.State.QUEUED, None, None
        escalation.lead_flagged_at = None
    if not _escalation_assign(escalation, now=now, engineers=[e for e in engineers if e.pk != previous]):
        escalation.reminder_due_at = None
        escalation.save(update_fields=["state", "engineer", "assigned_at", "reminder_due_at", "lead_flagged_at"])
        return False
    return True


@dataclass
class TickReport:
    escalated: int = 0
    assigned_from_queue: int = 0
    lead_flagged: int = 0


def escalations_due(*, now: datetime, batch: int) -> list[int]:
    """Ids of due questions, oldest deadline first, locked; rows another tick holds are skipped.
    Reads the partial index on deadline (running questions only)."""
    return list(
        Question.objects.select_for_update(skip_locked=True)
        .filter(clock=Question.Clock.RUNNING, deadline__lte=now)
        .order_by("deadline")
        .values_list("pk", flat=True)[:batch]
    )


def escalation_tick(*, now: datetime | None = None) -> TickReport:
    """Beat: escalate every due question, give queued escalations to engineers with room, and
    flag to the support lead the assigned ones still unanswered after the policy's time.

    Cost grows with what is due, not with all questions: each small batch of due rows is claimed
    through the partial deadline index with FOR UPDATE SKIP LOCKED and escalated in its own
    transaction, so two ticks at once share the work and never escalate a question twice.
    """
    now = now or timezone.now()
    report = TickReport()
    batch = settings.COMMUNITY_TICK_BATCH
    while report.escalated < settings.COMMUNITY_TICK_MAX:
        with transaction.atomic():
            ids = escalations_due(now=now, batch=batch)
            escalated = len(questions_escalate(question_ids=ids, now=now)) if ids else 0
        report.escalated += escalated
        if len(ids) < batch or not escalated:
            break
    report.assigned_from_queue = escalations_assign_queued(now=now)
    report.lead_flagged = escalations_flag_to_lead(now=now)
    return report


@transaction.atomic
def escalations_assign_queued(*, now: datetime | None = None) -> int:
    """Assign escalations left queued (everyone was at their cap), oldest first."""
    now = now or timezone.now()
    queued = list(
        Escalation.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("question__policy")
        .filter(state=Escalation.State.QUEUED)
        .order_by("escalated_at", "pk")[:100]
    )
    if not queued:
        return 0
    engineers = _engineers_lock()
    assigned = 0
    for escalation in queued:
        if not _escalation_assign(escalation, now=now, engineers=engineers):
            break
        assigned += 1
    return assigned


@transaction.atomic
def escalations_flag_to_lead(*, now: datetime | None = None) -> int:
    """Tell the support lead about assigned escalations still unanswered after the policy's
    reminder time. Each is flagged once (the row is locked and marked in one transaction)."""
    now = now or timezone.now()
    due = list(
        Escalation.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("question", "engineer__user")
        .filter(state=Escalation.State.ASSIGNED, lead_flagged_at__isnull=True, reminder_due_at__lte=now)
        .order_by("reminder_due_at")[:200]
    )
    if not due:
        return 0
    leads = list(
        SupportEngineer.objects.filter(is_lead=True).select_related("user").values_list("user__email", flat=True)
    ) or [settings.COMMUNITY_SUPPORT_LEAD_EMAIL]
    for escalation in due:
        escalation.lead_flagged_at = now
        escalation.save(update_fields=["lead_flagged_at"])
        event_record(
            name=events.ESCALATION_LEAD_FLAGGED,
            user=escalation.engineer.user if escalation.engineer else None,
            distinct_id=None if escalation.engineer else f"question:{escalation.question.public_id}",
            properties={"question": str(escalation.question.public_id), "tier": escalation.support_tier},
        )
        notifications.notify_lead_unanswered(escalation=escalation, lead_emails=leads)
    return len(due)


def support_engineer_set(*, user: User, on_duty: bool = True, cap: int = 10, is_lead: bool = False) -> SupportEngineer:
    """Mark a staff user as a support engineer (or update their duty, cap and lead role)."""
    if not user.is_staff:
        raise PermissionDenied("Support engineers are staff users.")
    engineer, _ = SupportEngineer.objects.update_or_create(
        user=user, defaults={"on_duty": on_duty, "cap": cap, "is_lead": is_lead}
    )
    return engineer

