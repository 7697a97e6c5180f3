"""Helpers for the account tests: mail sent in-process, read as its recipient reads it."""

from __future__ import annotations

import email
import email.policy
import re

import pytest
from django.core import mail

from config.celery import app as celery_app

from ..conftest import body_text, mails_to


@pytest.fixture
def eager_mail():
    """Queued mail is sent in-process when the transaction's on-commit callbacks run (the
    tests run them with django_capture_on_commit_callbacks(execute=True))."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def sent_to(address: str) -> list:
    """Messages sent in this process (pytest-django's outbox) to `address`, parsed as a mail
    program parses them, so tests read the subject and the text part as the recipient does."""
    found = []
    for message in mail.outbox:
        if address.lower() in " ".join(message.to).lower():
            found.append(email.message_from_bytes(message.message().as_bytes(), policy=email.policy.default))
    return found


def last_mail_to(address: str):
    messages = sent_to(address)
    assert messages, f"no mail to {address}"
    return messages[-1]


def assert_reads_well(text: str) -> None:
    """No hole where a name or an address should be: "Hello from !", "an account on .",
    "None", a template tag left over."""
    for hole in (" !", " .", " ,", "  ", "None", "{{", "{%", "()"):
        assert hole not in text, f"{hole!r} in:\n{text}"


def link_in(text: str, path_part: str) -> str:
    """The path of the first link in `text` that contains `path_part`."""
    match = re.search(rf"https?://\S*{re.escape(path_part)}\S*", text)
    assert match, f"no link with {path_part} in:\n{text}"
    return "/" + match.group(0).split("://", 1)[1].split("/", 1)[1]


__all__ = ["assert_reads_well", "body_text", "eager_mail", "last_mail_to", "link_in", "mails_to", "sent_to"]
