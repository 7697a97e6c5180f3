"""A user deleted while their email is in flight: the rest of the chunk is still recorded as
sent, and no event names the deleted user."""

from __future__ import annotations

import pytest

from experiments.models import Event
from onboarding.models import Send
from onboarding.services.enrolments import enrolment_create
from onboarding.services.sending import sends_deliver
from onboarding.services.tick import onboarding_tick

from ..conftest import organization_on
from .factories import everyone_enrolled_in


@pytest.mark.django_db(transaction=True)
def test_a_user_deleted_during_the_smtp_call_does_not_undo_the_rest_of_the_chunk(catalog, settings, during_first_send):
    everyone_enrolled_in("deleted", settings)
    people = [organization_on("standard") for _ in range(3)]
    for organization, admin in people:
        enrolment_create(user=admin, organization=organization)
    send_ids = onboarding_tick().send_ids
    assert len(send_ids) == 3
    doomed = people[0][1]
    during_first_send(lambda: type(doomed).objects.filter(pk=doomed.pk).delete())
    sends_deliver(send_ids=send_ids)  # raised IntegrityError at commit, undoing the whole chunk's records
    others = Send.objects.filter(enrolment__user__in=[admin for _, admin in people[1:]])
    assert sorted(others.values_list("status", flat=True)) == ["sent", "sent"]
    assert not Event.objects.filter(user_id=doomed.pk).exists()
    assert Event.objects.filter(name="onboarding_email_sent").count() == 2
