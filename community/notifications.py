"""Email the community sends: to members (answers, comments, acceptance; they can unsubscribe)
and to support staff (assignments, the lead's "still unanswered" flag; not optional).

Each builder queues its message with accounts.mail.mail_queue, so it leaves after the commit.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.urls import reverse

from accounts.mail import email_text, mail_queue

UNSUBSCRIBE_SALT = "community.unsubscribe"


def unsubscribe_token(user) -> str:
    return signing.dumps(str(user.public_id), salt=UNSUBSCRIBE_SALT)


def unsubscribe_user_public_id(token: str) -> str | None:
    """The user the token was made for, or None when it was tampered with."""
    try:
        return signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None


def _question_url(question) -> str:
    return settings.SITE_URL + reverse("community_question", args=[question.public_id])


def _send(*, to: str, subject: str, lines: list[str], unsubscribe_for=None) -> None:
    headers = {}
    reason = f"You receive this email because you take part in the {settings.SITE_NAME} community."
    if unsubscribe_for is not None:
        link = settings.SITE_URL + reverse("community_unsubscribe", args=[unsubscribe_token(unsubscribe_for)])
        reason = f"{reason}\nStop these emails: {link}"
        headers["List-Unsubscribe"] = f"<{link}>"
    else:
        reason = f"You receive this email because you are one of {settings.SITE_NAME}'s support engineers."
    mail_queue(
        EmailMultiAlternatives(
            subject=subject,
            body=email_text(body="\n".join(lines), reason=reason),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[to],
            headers=headers,
        )
    )


def _member_wants_mail(user) -> bool:
    member = getattr(user, "community_member", None)
    return member is None or member.notify_by_email


def notify_answer_posted(*, question, answer) -> None:
    if answer.author_id == question.author_id or not _member_wants_mail(question.author):
        return
    _send(
        to=question.author.email,
        subject=f"New answer to your question: {question.title}",
        lines=[f"Someone answered your question \"{question.title}\".", "", _question_url(question)],
        unsubscribe_for=question.author,
    )


def notify_comment_posted(*, comment, post_author, question) -> None:
    if comment.author_id == post_author.pk or not _member_wants_mail(post_author):
        return
    kind = "question" if comment.question_id else "answer"
    lines = [f"New comment on your {kind} in \"{question.title}\":", "", comment.body, "", _question_url(question)]
    if comment.asks_for_information:
        lines.insert(0, "You were asked for more information. Reply with a comment or edit your question.")
    _send(to=post_author.email, subject=f"New comment: {question.title}", lines=lines, unsubscribe_for=post_author)


def notify_answer_accepted(*, question, answer) -> None:
    if answer.author_id == question.author_id or not _member_wants_mail(answer.author):
        return
    _send(
        to=answer.author.email,
        subject=f"Your answer was accepted: {question.title}",
        lines=[f"The asker accepted your answer to \"{question.title}\". Thank you!", "", _question_url(question)],
        unsubscribe_for=answer.author,
    )


def _tier_name(support_tier: str) -> str:
    """A support tier as the escalation policies name it ("Premium support"), never its code."""
    from .models import EscalationPolicy

    name = EscalationPolicy.objects.filter(support_tier=support_tier).values_list("name", flat=True).first()
    return name or support_tier.replace("-", " ").replace("_", " ")


def notify_engineer_assigned(*, escalation, engineer) -> None:
    question = escalation.question
    _send(
        to=engineer.user.email,
        subject=f"[Support queue] Assigned to you: {question.title}",
        lines=[
            f"A question from a {_tier_name(escalation.support_tier)} customer went unanswered past "
            "its deadline and is now yours.",
            "",
            question.title,
            _question_url(question),
            "",
            "Your queue: " + settings.SITE_URL + reverse("community_support_queue"),
        ],
    )


def notify_lead_unanswered(*, escalation, lead_emails: list[str]) -> None:
    question = escalation.question
    engineer = escalation.engineer.user.email if escalation.engineer else "nobody"
    for address in lead_emails:
        _send(
            to=address,
            subject=f"[Support queue] Still unanswered: {question.title}",
            lines=[
                f"Assigned to {engineer} on {escalation.assigned_at:%-d %b %Y, %H:%M} UTC and still unanswered.",
                "",
                _question_url(question),
            ],
        )
