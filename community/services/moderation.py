"""Moderation: flags, reviews, closing and deleting questions.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from experiments.services import event_record

from .. import events, privileges
from ..exceptions import (
    AlreadyFlagged,
    NotFound,
    PermissionDenied,
    PostInvalid,
    QuestionNotOpen,
)
from ..models import (
    Answer,
    Flag,
    Question,
)
from .escalations import escalation_resolve
from .members import moderator_require, privilege_require
from .question_clock import (
    answers_vector_refresh,
    question_clock_follow_upvotes,
    question_clock_stop,
    question_lock,
)


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
    question = question_lock(question_id)
    post: Question | Answer = question if answer_id is None else Answer.objects.select_for_update().get(pk=answer_id)
    if post.author_id == user.pk:
        raise PermissionDenied("You cannot flag your own post.")
    privilege_require(user=user, privilege=privileges.FLAG)
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
            answers_vector_refresh(question.pk)
            question_clock_follow_upvotes(question, now=now, actor=user)
        event_record(name=events.POST_HIDDEN, user=user, properties={"post": str(post.public_id)})
        return True
    return post.is_hidden


@transaction.atomic
def post_review(*, moderator: User, keep: bool, question_id: int | None = None, answer_id: int | None = None) -> None:
    """A moderator reviews a flagged post: keep it (shown again, flags cleared) or delete it."""
    moderator_require(moderator)
    now = timezone.now()
    if answer_id is not None:
        question_id = Answer.objects.filter(pk=answer_id).values_list("question_id", flat=True).first()
        if question_id is None:
            raise NotFound("Answer not found.")
    question = question_lock(question_id)
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
        answers_vector_refresh(question.pk)
        question_clock_follow_upvotes(question, now=now, actor=moderator)
    event_record(name=events.POST_REVIEWED, user=moderator, properties={"question": str(question.public_id), "kept": keep})


def _question_remove(question: Question, *, now: datetime, moderator: User) -> None:
    question.state = Question.State.DELETED
    question.updated_at = now
    question.save(update_fields=["state", "updated_at"])
    question_clock_stop(question, now=now, reason=Question.StopReason.CLOSED, actor=moderator)
    escalation_resolve(question, now=now, actor=moderator)
    event_record(name=events.QUESTION_DELETED, user=moderator, properties={"question": str(question.public_id)})


@transaction.atomic
def question_close(*, moderator: User, question_id: int, duplicate_of_id: int | None = None) -> Question:
    """Close a question, optionally as a duplicate of another. Staff, or members with the close
    privilege. Stops the clock and resolves an escalation."""
    now = timezone.now()
    privilege_require(user=moderator, privilege=privileges.CLOSE)
    question = question_lock(question_id)
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
    question_clock_stop(question, now=now, reason=Question.StopReason.CLOSED, actor=moderator)
    escalation_resolve(question, now=now, actor=moderator)
    event_record(
        name=events.QUESTION_CLOSED,
        user=moderator,
        properties={"question": str(question.public_id), "duplicate": duplicate_of_id is not None},
    )
    return question


@transaction.atomic
def question_delete(*, moderator: User, question_id: int) -> None:
    """Staff delete a question: it disappears for members; its clock stops."""
    moderator_require(moderator)
    question = question_lock(question_id)
    if question.state != Question.State.DELETED:
        _question_remove(question, now=timezone.now(), moderator=moderator)
