"""`activity_demo` (run by `demo_data` in `make run`): the demo organizations' people have weeks
of activity in the rollups, sent through the activity service, and running it again stores
nothing twice."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from activity.models import ActivityDay, ActivityEvent
from activity.selectors import usage_figures


@pytest.mark.django_db
def test_the_demo_people_are_active_and_a_second_run_adds_nothing(catalog):
    call_command("demo_data", "--only-accounts", stdout=io.StringIO())
    printed = io.StringIO()
    call_command("activity_demo", stdout=printed)
    events, days = ActivityEvent.objects.count(), ActivityDay.objects.count()
    assert events > 0 and days > 0
    assert "/staff/usage/" in printed.getvalue()

    again = io.StringIO()
    call_command("activity_demo", stdout=again)
    assert (ActivityEvent.objects.count(), ActivityDay.objects.count()) == (events, days)
    assert "0 events stored" in again.getvalue()
    tracker = usage_figures()[0]
    assert tracker.product.code == "tracker" and tracker.mau > 0
