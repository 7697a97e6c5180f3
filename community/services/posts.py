"""Questions, answers and comments: ask, edit, answer, comment, with the posting rate limit.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Membership, Organization, User
from catalog.models import Product
from experiments.services import event_record

from .. import clock, events, notifications, privileges
from ..exceptions import (
    NotFound,
    PermissionDenied,
    PostInvalid,
    QuestionNotOpen,
    RateLimited,
)
from ..markdown import markdown_render
from ..models import (
    Answer,
    Comment,
    Member,
    Question,
    Revision,
    SupportEngineer,
    Tag,
)
from .escalations import escalation_resolve
from .members import member_lock, privilege_require
from .question_clock import (
    answers_vector_refresh,
    calendar_of,
    policy_is_business,
    policy_seconds,
    question_clock_pause,
    question_clock_resume,
    question_clock_stop,
    question_lock,
    support_tier_for,
)

TAG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
MAX_TAGS = 5


def _is_new_account(user: User, member: Member, now: datetime) -> bool:
    young = user.date_joined > now - timedelta(days=settings.COMMUNITY_NEW_ACCOUNT_DAYS)
    return young or member.reputation < settings.COMMUNITY_NEW_ACCOUNT_REPUTATION


def _rate_limit(*, user: User, now: datetime) -> None:
    """Refuse a post over the user's hourly limit. The member row is locked, so two posts at
    once by one user are counted one after the other (no check-then-act)."""
    if user.is_staff:
        return
    member = member_lock(user)
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

    Invariant: the asker's organization and edition are those at the time of asking and never
    change; the tier only gets better (Premium support bought later moves its clock:
    question_clock.question_clocks_follow_support_tier); a running question always has a deadline.
    """
    now = timezone.now()
    _text_check(title=title, body=body)
    names = _tags_parse(list(tags) if not isinstance(tags, str) else tags)
    if organization is not None and not Membership.objects.filter(user=author, organization=organization).exists():
        raise PermissionDenied("You are not a member of that organization.")
    _rate_limit(user=author, now=now)
    support = support_tier_for(organization=organization, product=product)
    policy = support.policy
    question = Question.objects.create(
        product=product,
        author=author,
        organization=organization,
        edition=support.edition,
        support_tier=policy.support_tier,
        title=title.strip(),
        body=body,
        body_html=markdown_render(body),
        created_at=now,
        updated_at=now,
        policy=policy,
        clock=Question.Clock.RUNNING,
        deadline=clock.deadline_after(
            calendar=calendar_of(policy), business=policy_is_business(policy), start=now, seconds=policy_seconds(policy)
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
        privilege_require(user=editor, privilege=privileges.EDIT_OTHERS)


@transaction.atomic
def question_edit(*, question_id: int, editor: User, title: str, body: str, tags: list[str] | str) -> Question:
    """Edit a question, keeping the old text as a revision. The asker editing a question that
    waits on them answers the request for information: the clock resumes."""
    now = timezone.now()
    question = question_lock(question_id)
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
        question_clock_resume(question, now=now, actor=editor)
    event_record(name=events.QUESTION_EDITED, user=editor, properties={"question": str(question.public_id)})
    return question


def _is_support(user: User) -> bool:
    return SupportEngineer.objects.filter(user=user).exists()


@transaction.atomic
def answer_post(*, question_id: int, author: User, body: str) -> Answer:
    """Answer an open question. An answer by a support engineer resolves the question's
    escalation; the asker is notified by email."""
    now = timezone.now()
    question = question_lock(question_id)
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
    answers_vector_refresh(question.pk)
    if _is_support(author) or author.is_staff:
        # Support answered: before the deadline, nothing is left to escalate.
        question_clock_stop(question, now=now, reason=Question.StopReason.SUPPORT, actor=author)
        escalation_resolve(question, now=now, actor=author)
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
    question_lock(question_id)
    answer = Answer.objects.select_for_update().get(pk=answer_id)
    _edit_allowed(editor=editor, author_id=answer.author_id)
    _text_check(title=None, body=body)
    number = answer.revisions.count() + 1
    answer.body, answer.body_html, answer.updated_at = body, markdown_render(body), now
    answer.save(update_fields=["body", "body_html", "updated_at"])
    Revision.objects.create(answer=answer, number=number, editor=editor, body=body, created_at=now)
    answers_vector_refresh(question_id)
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
    question = question_lock(question_id)
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
        question_clock_pause(question, now=now, actor=author)
    elif author.pk == question.author_id:
        question_clock_resume(question, now=now, actor=author)
    event_record(
        name=events.COMMENT_POSTED,
        user=author,
        properties={"question": str(question.public_id), "asks_for_information": comment.asks_for_information},
    )
    notifications.notify_comment_posted(
        comment=comment, post_author=answer.author if answer else question.author, question=question
    )
    return comment
