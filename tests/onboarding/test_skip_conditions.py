"""Skip conditions are read for a whole chunk of sends at once, per recipient."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from experiments import events as analytics
from experiments.services import event_record
from onboarding.models import Send, Step
from onboarding.selectors import skip_conditions_met
from onboarding.services.enrolments import enrolment_create
from onboarding.services.sending import sends_deliver
from onboarding.services.tick import onboarding_tick

from ..conftest import organization_on
from ..factories import InviteFactory
from .factories import SequenceFactory, StepFactory


@pytest.mark.django_db
def test_each_condition_is_answered_per_recipient_for_a_whole_chunk(catalog):
    alone, alone_admin = organization_on("standard")
    inviting, inviting_admin = organization_on("standard")
    InviteFactory(organization=inviting, email="colleague@inviting.example", invited_by=inviting_admin)
    two, two_admin = organization_on("standard", members=2)
    ready, ready_admin = organization_on("standard")
    event_record(name=analytics.ENVIRONMENT_ACTIVE, organization=ready)
    recipients = [(alone_admin.pk, alone.pk), (inviting_admin.pk, inviting.pk), (two_admin.pk, two.pk), (ready_admin.pk, ready.pk), (alone_admin.pk + 10**6, None)]

    with CaptureQueriesContext(connection) as queries:
        invited = skip_conditions_met(Step.SkipCondition.INVITED_COLLEAGUE, recipients=recipients)
        workspace = skip_conditions_met(Step.SkipCondition.WORKSPACE_READY, recipients=recipients)
        paid = skip_conditions_met(Step.SkipCondition.PAID, recipients=recipients)
    assert len(queries) == 4  # invites and members, environments, payments
    assert invited == {inviting_admin.pk, two_admin.pk}
    assert workspace == {ready_admin.pk}
    assert paid == set()
    assert skip_conditions_met("", recipients=recipients) == set()


@pytest.mark.django_db
def test_a_chunk_skips_those_whose_condition_holds_and_sends_to_the_others(catalog, settings, mailoutbox):
    settings.ONBOARDING_DEFAULT_SEQUENCE = "invite-first"
    settings.ONBOARDING_EXPERIMENT_KEY = "no-such-experiment"
    settings.ONBOARDING_QUIET_HOURS_START = settings.ONBOARDING_QUIET_HOURS_END = 0
    sequence = SequenceFactory(key="invite-first")
    StepFactory(sequence=sequence, position=0, name="invite", skip_condition=Step.SkipCondition.INVITED_COLLEAGUE)
    StepFactory(sequence=sequence, position=1, name="tips")
    alone, alone_admin = organization_on("standard")
    two, two_admin = organization_on("standard", members=2)
    for organization, admin in ((alone, alone_admin), (two, two_admin)):
        enrolment_create(user=admin, organization=organization)

    report = onboarding_tick()
    assert sends_deliver(send_ids=report.send_ids) == {"sent": 1, "skipped": 1}
    assert [message.to for message in mailoutbox] == [[alone_admin.email]]
    assert Send.objects.get(enrolment__user=two_admin).status == Send.Status.SKIPPED
