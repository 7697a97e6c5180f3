"""The server took the whole message and the connection dropped before its answer: the email
may have been delivered, so it is marked unknown, keeps its frequency-cap slot and is never
sent again; the sequence moves on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from onboarding.models import MarketingSend, Send
from onboarding.services.enrolments import enrolment_create
from onboarding.services.sending import sends_deliver
from onboarding.services.tick import onboarding_tick

from ..conftest import organization_on
from .factories import everyone_enrolled_in
from .scripted_smtp import CLOSE, ScriptedServer

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_a_message_the_server_took_is_not_sent_again_when_the_reply_is_lost(catalog, settings):
    everyone_enrolled_in("dropped", settings)
    messages_taken = []

    def script(index, line):
        if line == "END":  # the server has the whole message (e.g. queued it), then the link dies
            messages_taken.append(index)
            return CLOSE if len(messages_taken) == 1 else None
        return None

    server = ScriptedServer(script)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", server.port, 5
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    try:
        with time_machine.travel(START, tick=False) as traveller:
            organization, admin = organization_on("standard")
            enrolment_create(user=admin, organization=organization)
            [send_id] = onboarding_tick().send_ids
            first = sends_deliver(send_ids=[send_id])
            send = Send.objects.select_related("enrolment").get(pk=send_id)
            cap_rows = MarketingSend.objects.filter(email=admin.email).count()
            traveller.move_to(START + timedelta(minutes=10))
            sends_deliver(send_ids=onboarding_tick().send_ids)
    finally:
        server.close()
    # The message was taken once already: it must not be taken a second time.
    assert len(messages_taken) == 1, f"the same email reached the server {len(messages_taken)} times"
    assert first == {"unknown": 1}
    assert send.status == Send.Status.UNKNOWN and "it may have been delivered" in send.last_error
    assert cap_rows == 1  # the cap slot is kept: the email may have gone out
    assert send.enrolment.next_position == 1 and send.enrolment.next_send_at is not None  # the sequence moved on
