"""Votes and acceptance, and the reputation they move.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from experiments.services import event_record

from .. import events, notifications, privileges
from ..exceptions import (
    NotFound,
    PermissionDenied,
    PostInvalid,
)
from ..models import (
    Answer,
    Question,
    Vote,
)
from .escalations import escalation_resolve
from .members import privilege_require, reputation_move
from .question_clock import question_clock_follow_upvotes, question_clock_stop, question_lock


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
    question = question_lock(question_id)
    if question.state == Question.State.DELETED:
        raise NotFound("Question not found.")
    post: Question | Answer = question
    if answer_id is not None:
        answer = Answer.objects.select_for_update().get(pk=answer_id)
        post = answer
    if post.author_id == user.pk:
        raise PermissionDenied("You cannot vote on your own post.")
    privilege_require(user=user, privilege=privileges.VOTE_UP if value == 1 else privileges.VOTE_DOWN)
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
    reputation_move(changes)
    post.refresh_from_db(fields=["score"])
    if answer is not None:
        question_clock_follow_upvotes(question, now=now, actor=user)
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
    question = question_lock(question_id)
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
    reputation_move(changes)
    question_clock_stop(question, now=now, reason=Question.StopReason.SELF_SOLVED if own else Question.StopReason.ACCEPTED, actor=user)
    escalation_resolve(question, now=now, actor=user)
    event_record(
        name=events.ANSWER_ACCEPTED,
        user=user,
        organization=question.organization,
        properties={"question": str(question.public_id), "answer": str(answer.public_id)},
    )
    notifications.notify_answer_accepted(question=question, answer=answer)
    return question
