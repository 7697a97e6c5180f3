"""A chunk slower than ONBOARDING_STALE_MINUTES is swept while its worker is alive: the
worker's late record neither rewinds the sequence nor loses a step, and what it sent is
recorded as sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from onboarding.models import Send, Step
from onboarding.services.enrolments import enrolment_create
from onboarding.services.sending import sends_deliver
from onboarding.services.tick import onboarding_tick

from ..conftest import organization_on
from .factories import SequenceFactory, StepFactory

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_a_slow_worker_swept_while_alive_does_not_lose_the_rest_of_the_sequence(catalog, settings, during_first_send):
    settings.ONBOARDING_DEFAULT_SEQUENCE = "slow"
    settings.ONBOARDING_EXPERIMENT_KEY = "no-such-experiment"
    settings.ONBOARDING_QUIET_HOURS_START = settings.ONBOARDING_QUIET_HOURS_END = 0
    settings.MARKETING_EMAIL_CAP_COUNT = 100  # the cap is not what this is about
    sequence = SequenceFactory(key="slow")
    StepFactory(sequence=sequence, position=0, name="welcome", delay=timedelta(0))
    StepFactory(sequence=sequence, position=1, name="invite", delay=timedelta(minutes=5), delay_from=Step.DelayFrom.PREVIOUS)
    StepFactory(sequence=sequence, position=2, name="tips", delay=timedelta(days=3))
    with time_machine.travel(START, tick=False) as traveller:
        organization, admin = organization_on("standard")
        enrolment = enrolment_create(user=admin, organization=organization)
        [welcome_id] = onboarding_tick().send_ids

        def the_beat_meanwhile():
            traveller.move_to(START + timedelta(minutes=31))
            sends_deliver(send_ids=onboarding_tick().send_ids)

        during_first_send(the_beat_meanwhile)  # the first email takes 31 minutes to go out
        for days in range(1, 6):
            traveller.move_to(START + timedelta(days=days))
            sends_deliver(send_ids=onboarding_tick().send_ids)
        enrolment.refresh_from_db()
        sends = {send.step.name: send.status for send in Send.objects.filter(enrolment=enrolment).select_related("step")}
    assert sends.get("tips") == Send.Status.SENT, f"tips never sent: {sends}, enrolment {enrolment.status} next_position={enrolment.next_position} next_send_at={enrolment.next_send_at}"
