"""Staff see the events PostHog refused in the admin, with its reason, and send them again."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from experiments import events
from experiments.models import Event
from experiments.services import event_record, events_forward

from ..factories import UserFactory
from .helpers import capture_error, recorded_events, unsent

CHANGELIST = reverse("admin:experiments_event_changelist")


def refuse_empty_distinct_ids(request: dict):
    if any(not message["distinct_id"] for message in request["body"]["batch"]):
        return capture_error(400, "missing_distinct_id", "event submitted without a distinct_id")
    return None


@pytest.mark.django_db
def test_staff_filter_dead_events_read_the_reason_and_retry_them_once(sink, admin_client):
    sink.answer = refuse_empty_distinct_ids
    good = recorded_events(2)
    dead = event_record(name=events.SIGNUP_STARTED, distinct_id="")
    events_forward(batch_size=10)
    waiting = event_record(name=events.SIGNUP_STARTED, distinct_id="anonymous-later")

    listing = admin_client.get(CHANGELIST, {"state": "dead"})
    assert listing.status_code == 200
    assert [event.pk for event in listing.context["cl"].result_list] == [dead.pk]
    page = listing.content.decode()
    assert "PostHog refused the event (400): event submitted without a distinct_id [missing_distinct_id]" in page
    assert "Retry the selected dead events" in page
    sent = admin_client.get(CHANGELIST, {"state": "sent"}).context["cl"].result_list
    assert sorted(event.pk for event in sent) == sorted(event.pk for event in good)
    assert [event.pk for event in admin_client.get(CHANGELIST, {"state": "unsent"}).context["cl"].result_list] == [waiting.pk]

    # Retrying a dead event and a sent one: only the dead one goes back.
    response = admin_client.post(
        CHANGELIST, {"action": "retry_dead", "_selected_action": [dead.pk, good[0].pk], "index": 0}, follow=True
    )
    assert "1 dead event(s) back in the outbox; the next forward run sends them; 1 skipped because they were not dead." in (
        response.content.decode()
    )
    dead.refresh_from_db()
    assert dead.dead_at is None and dead.sent_at is None
    assert "missing_distinct_id" in dead.last_error  # kept until it is sent

    # PostHog takes it now: it goes out once, and nothing already sent goes out again.
    sink.answer = None
    report = events_forward(batch_size=10)
    assert (report.sent, report.dead) == (2, 0)
    assert sink.accepted_counts() == {str(event.public_id): 1 for event in [*good, dead, waiting]}
    assert unsent() == []


@pytest.mark.django_db
def test_staff_who_may_only_view_events_cannot_retry_them(client):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_event", content_type__app_label="experiments"))
    client.force_login(viewer)
    Event.objects.create(name=events.SIGNUP_STARTED, distinct_id="")

    listing = client.get(CHANGELIST)

    assert listing.status_code == 200
    assert "Retry the selected dead events" not in listing.content.decode()
