"""Onboarding email through a real SMTP server on loopback (aiosmtpd, started by the test)."""

from __future__ import annotations

import email
import email.policy
import re
import socket

import pytest
from aiosmtpd.controller import Controller
from django.test import Client

from onboarding.models import Send, Suppression
from onboarding.services import enrolment_create, onboarding_tick, sends_deliver

from ..conftest import organization_on
from .factories import fourteen_day_sequence


class Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content, policy=email.policy.default)))
        return "250 OK"


@pytest.fixture
def smtp_server(settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    yield inbox
    controller.stop()


@pytest.mark.django_db
def test_an_onboarding_email_arrives_with_its_headers_and_both_bodies(catalog, settings, smtp_server):
    settings.ONBOARDING_DEFAULT_SEQUENCE = "smtp-welcome"
    settings.ONBOARDING_EXPERIMENT_KEY = "no-such-experiment"
    settings.ONBOARDING_QUIET_HOURS_START = settings.ONBOARDING_QUIET_HOURS_END = 0
    fourteen_day_sequence("smtp-welcome")
    organization, admin = organization_on("standard")
    admin.first_name = "Grace"
    admin.save(update_fields=["first_name"])
    enrolment_create(user=admin, organization=organization)

    report = onboarding_tick()
    assert sends_deliver(send_ids=report.send_ids) == {"sent": 1}

    [(recipients, message)] = smtp_server.messages
    assert recipients == [admin.email]
    assert message["Subject"] == "Step 0 for Grace"
    assert message["To"] == admin.email
    unsubscribe = re.fullmatch(r"<(http://[^>]+/email/unsubscribe/[^/>]+/)>", str(message["List-Unsubscribe"]).strip())
    assert unsubscribe, message["List-Unsubscribe"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    send = Send.objects.get(pk=report.send_ids[0])
    assert message["Message-ID"] == f"<{send.public_id.hex}@127.0.0.1>"  # fixed per send (SITE_URL's host)
    assert message["X-Flywheel-Sequence"] == "smtp-welcome"
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert f"Hello Grace of {organization.name}." in text
    assert f"Unsubscribe: {unsubscribe.group(1)}" in text
    assert "<p>Hello Grace</p>" in html
    assert unsubscribe.group(1) in html
    # Our own link is tracked through the signed redirect; a foreign one is left alone.
    assert re.search(r'href="http://[^"]+/email/click/[^"]+/">Open Flywheel', html)
    assert 'href="https://elsewhere.example/docs"' in html
    assert re.search(r'<img src="http://[^"]+/email/open/[^"]+\.gif"', html)

    # The unsubscribe link from the headers works when a mail client POSTs to it (RFC 8058).
    path = "/" + unsubscribe.group(1).split("://", 1)[1].split("/", 1)[1]
    response = Client(enforce_csrf_checks=True).post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert Suppression.objects.filter(email=admin.email, source="one-click").exists()
