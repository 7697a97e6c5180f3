"""Outgoing mail: queued through the worker, and a development backend writing .eml files.

In production Django's SMTP backend is used; the worker sends, never the web request.
"""

from __future__ import annotations

import os
import uuid
from email.utils import make_msgid
from pathlib import Path

from django.conf import settings
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone

from common.tasks import enqueue_on_commit

from .tasks import email_send


class MaildirBackend(BaseEmailBackend):
    """Writes each message as one .eml file under settings.MAIL_DIR (read at /dev/mailbox)."""

    def send_messages(self, email_messages):
        directory = Path(settings.MAIL_DIR)
        directory.mkdir(parents=True, exist_ok=True)
        sent = 0
        for message in email_messages:
            name = f"{timezone.now():%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.eml"
            temporary = directory / f".{name}.tmp"
            temporary.write_bytes(message.message().as_bytes(linesep="\n"))
            os.replace(temporary, directory / name)  # readers never see half a message
            sent += 1
        return sent


def message_to_payload(message: EmailMessage) -> dict:
    headers = dict(message.extra_headers)
    headers.setdefault("Message-ID", make_msgid(domain="flywheel.localhost"))
    return {
        "subject": message.subject,
        "body": message.body,
        "from_email": message.from_email,
        "to": list(message.to),
        "reply_to": list(message.reply_to),
        "headers": headers,
        "alternatives": [
            [content, mimetype] for content, mimetype in getattr(message, "alternatives", [])
        ],
    }


def payload_to_message(payload: dict) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=payload["subject"],
        body=payload["body"],
        from_email=payload["from_email"],
        to=payload["to"],
        reply_to=payload.get("reply_to") or None,
        headers=payload.get("headers") or {},
    )
    for content, mimetype in payload.get("alternatives", []):
        message.attach_alternative(content, mimetype)
    return message


def email_text(*, body: str, reason: str, greeting: str = "Hello,") -> str:
    """A plain-text email in Flywheel's one frame: a greeting, the body, the team's signature
    with the site's address, and why the recipient gets it (as allauth's emails are framed by
    templates/account/email/base_message.txt)."""
    return (
        f"{greeting}\n\n{body.strip()}\n\n"
        f"The {settings.SITE_NAME} team\n{settings.SITE_URL}\n\n"
        f"-- \n{reason}\n"
    )


def email_subject(subject: str) -> str:
    """A subject with the site's name in front, once."""
    prefix = f"[{settings.SITE_NAME}]"
    return subject if subject.startswith(prefix) else f"{prefix} {subject}"


def mail_queue(message: EmailMessage) -> None:
    """Send `message` from the worker once the current transaction commits.

    The Message-ID is fixed here, so a retried task resends the same message, which mail
    systems deduplicate.
    """
    enqueue_on_commit(email_send, message_to_payload(message))
