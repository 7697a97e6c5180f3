"""Staff reorder a sequence's steps while people are part-way through it: an enrolment whose
next position now names a step it was already sent moves on past it instead of stalling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from onboarding.models import Enrolment, Send
from onboarding.services.enrolments import enrolment_create
from onboarding.services.sending import sends_deliver
from onboarding.services.tick import onboarding_tick

from ..conftest import organization_on
from .factories import everyone_enrolled_in

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_swapping_two_steps_mid_flight_does_not_strand_the_enrolment(catalog, settings):
    sequence = everyone_enrolled_in("reordered", settings)  # welcome 0, invite 1, tips 2, case-study 3, trial-ending 4
    settings.MARKETING_EMAIL_CAP_COUNT = 100
    with time_machine.travel(START, tick=False) as traveller:
        organization, admin = organization_on("standard")
        enrolment = enrolment_create(user=admin, organization=organization)
        sends_deliver(send_ids=onboarding_tick().send_ids)  # day 0: welcome; now waiting for position 1
        # Staff put the welcome after the invite (swap positions 0 and 1, through a spare one).
        steps = {step.name: step for step in sequence.steps.all()}
        for name, position in [("welcome", 99), ("invite", 0), ("welcome", 1)]:
            steps[name].position = position
            steps[name].save(update_fields=["position"])
        for days in range(1, 16):
            traveller.move_to(START + timedelta(days=days))
            sends_deliver(send_ids=onboarding_tick().send_ids)
        enrolment.refresh_from_db()
        sent = [send.step.name for send in Send.objects.filter(enrolment=enrolment).order_by("id")]
    assert enrolment.status == Enrolment.Status.COMPLETED, f"stranded: {enrolment.status}, next_position={enrolment.next_position}, next_send_at={enrolment.next_send_at}, sent={sent}"
