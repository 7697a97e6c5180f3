"""The beat tick and a real Celery worker: each onboarding email is sent once, with its headers."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from onboarding.models import Send
from onboarding.services.enrolments import enrolment_create
from onboarding.services.tick import onboarding_tick
from onboarding.tasks import sends_deliver

from ..conftest import body_text, mails_to, wait_for
from ..factories import UserFactory
from .factories import fourteen_day_sequence

ZONES = ["UTC", "Europe/Paris", "America/New_York", "America/Los_Angeles", "Asia/Tokyo", "Asia/Kolkata", "Australia/Sydney"]


def zone_in_daytime() -> str:
    """A time zone where it is now between 10:00 and 19:00: the worker keeps real quiet hours."""
    return next(name for name in ZONES if 10 <= datetime.now(ZoneInfo(name)).hour < 19)


@pytest.mark.django_db(transaction=True)
def test_the_tick_hands_sends_to_the_worker_which_sends_each_once(celery_worker, settings):
    settings.ONBOARDING_DEFAULT_SEQUENCE = "worker-welcome"
    settings.ONBOARDING_EXPERIMENT_KEY = "no-such-experiment"
    fourteen_day_sequence("worker-welcome")
    user = UserFactory(email=f"worker-{uuid.uuid4().hex[:8]}@example.com", first_name="Lin", time_zone=zone_in_daytime())
    enrolment_create(user=user)

    report = onboarding_tick()  # commits, then publishes the chunk to the worker's queue
    assert report.enqueued == 1
    send = wait_for(lambda: Send.objects.filter(pk=report.send_ids[0], status=Send.Status.SENT).first(), what="the send")
    [message] = wait_for(lambda: mails_to(user.email), what="the email")
    assert message["Subject"] == "Step 0 for Lin"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/email/unsubscribe/" in str(message["List-Unsubscribe"])
    assert "Hello Lin" in body_text(message)
    assert send.to_email == user.email and send.attempts == 1

    # The same chunk delivered again (a redelivered task): the worker sends nothing more.
    sends_deliver.apply_async((report.send_ids,), queue=settings.CELERY_TASK_DEFAULT_QUEUE)
    wait_for(lambda: "{'done': 1}" in celery_worker.log(), what="the duplicate task to finish")
    assert len(mails_to(user.email)) == 1
    assert Send.objects.get(pk=send.pk).status == Send.Status.SENT
