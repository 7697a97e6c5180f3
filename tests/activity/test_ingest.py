"""POST /api/v1/activity and activity_record: each event stored and counted exactly once
(retries, repeats inside a batch, two requests at once), every bad row refused with its index
and why while the good rows are kept, days counted in UTC, the tenant wall, and pruning that
leaves the rollups whole. The answers are worked out by hand in each test."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection

from accounts import api_keys
from accounts.models import Membership
from activity.models import ActivityDay, ActivityEvent
from activity.services import activity_prune, activity_record

from ..conftest import organization_on

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _key(organization, admin) -> str:
    _, raw = api_keys.api_key_create(organization=organization, actor=admin, name="Tracker servers")
    return raw


def _event(user, name="card_created", *, at="2026-12-06T10:00:00Z", product="tracker", id=None):
    return {"id": id or uuid.uuid4().hex, "user": str(user.public_id), "product": product, "name": name, "occurred_at": at}


def _post(client, raw, events):
    return client.post(
        "/api/v1/activity", {"events": events}, content_type="application/json", headers={"Authorization": f"Bearer {raw}"}
    )


def _days(organization):
    return sorted(
        (row.user_id, row.product.code, row.day, row.events, row.active_events)
        for row in ActivityDay.objects.filter(organization=organization).select_related("product")
    )


@pytest.mark.django_db
def test_a_batch_is_stored_and_rolled_up_and_sending_it_again_counts_nothing_twice(client, catalog):
    organization, admin = organization_on("standard", members=2)
    colleague = Membership.objects.exclude(user=admin).get(organization=organization).user
    raw = _key(organization, admin)
    batch = [
        _event(admin, "card_created"),
        _event(admin, "card_moved", at="2026-12-06T11:00:00+00:00"),
        _event(admin, "settings_opened"),  # kept, not counted as activity: not in Tracker's activity_events
        _event(colleague, "page_viewed", product="wiki"),  # counts for Wiki (organization need not have it yet)
        _event(colleague, "card_created", at="2026-12-05T23:59:59Z"),
    ]
    with time_machine.travel(NOW, tick=False):
        first = _post(client, raw, batch)
        again = _post(client, raw, batch)
    assert first.status_code == 200, first.content
    assert first.json() == {"accepted": 5, "duplicates": 0, "errors": []}
    assert again.json() == {"accepted": 0, "duplicates": 5, "errors": []}
    assert ActivityEvent.objects.count() == 5
    assert _days(organization) == sorted([
        (admin.pk, "tracker", date(2026, 12, 6), 3, 2),
        (colleague.pk, "wiki", date(2026, 12, 6), 1, 1),
        (colleague.pk, "tracker", date(2026, 12, 5), 1, 1),
    ])


@pytest.mark.django_db
def test_days_are_utc_days_whatever_offset_the_product_sends(catalog):
    organization, admin = organization_on("standard")
    with time_machine.travel(NOW, tick=False):
        report = activity_record(organization_id=organization.pk, rows=[
            _event(admin, at="2026-12-05T23:30:00-05:00"),  # 04:30 UTC on the 6th
            _event(admin, at="2026-12-06T00:30:00+02:00"),  # 22:30 UTC on the 5th
            _event(admin, at="2026-12-06T00:00:00Z"),       # the 6th's first second
        ])
    assert report.accepted == 3
    assert _days(organization) == [
        (admin.pk, "tracker", date(2026, 12, 5), 1, 1),
        (admin.pk, "tracker", date(2026, 12, 6), 2, 2),
    ]


@pytest.mark.django_db
def test_each_bad_row_is_named_and_the_good_rows_are_kept(client, catalog):
    organization, admin = organization_on("standard")
    stranger_org, stranger = organization_on("standard")
    raw = _key(organization, admin)
    good = _event(admin, id="good-1")
    rows = [
        good,
        {**_event(admin), "id": ""},
        {**_event(admin), "user": "not-a-uuid"},
        _event(stranger, id="theirs"),  # another organization's person: the tenant wall
        {**_event(admin), "product": "spreadsheet"},
        {**_event(admin), "name": "Card Created"},
        {**_event(admin), "occurred_at": "yesterday"},
        {**_event(admin), "occurred_at": "2026-12-06T10:00:00"},  # no offset
        {**_event(admin), "occurred_at": "2026-12-06T12:30:00Z"},  # 30 minutes ahead
        {**_event(admin), "occurred_at": "2026-08-01T10:00:00Z"},  # older than the 90 days kept
        {**_event(admin), "colour": "blue"},
        "not an object",
        {**good},  # the same id again in the batch
    ]
    with time_machine.travel(NOW, tick=False):
        answer = _post(client, raw, rows)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["accepted"], body["duplicates"]) == (1, 1)
    errors = {error["index"]: error["error"] for error in body["errors"]}
    assert sorted(errors) == list(range(1, 12))
    assert errors[1].startswith("id is missing")
    assert errors[2] == "user must be a user's id (a UUID), got 'not-a-uuid'."
    assert errors[3] == "user is not a member of this organization."
    assert errors[4].startswith("product 'spreadsheet' is not one of Flywheel's products (servicedesk, tracker, wiki)")
    assert errors[5].startswith("name must be 1 to 64 characters")
    assert errors[6].startswith("occurred_at must be an ISO 8601 time with its offset") and errors[7] == errors[6].replace("'yesterday'", "'2026-12-06T10:00:00'")
    assert errors[8] == "occurred_at is in the future: check the product's clock."
    assert errors[9] == "occurred_at is more than 90 days ago: such events are no longer accepted."
    assert errors[10] == "Unknown field: colour."
    assert errors[11].startswith("Each event is an object")
    assert list(ActivityEvent.objects.values_list("event_id", flat=True)) == ["good-1"]
    assert not ActivityDay.objects.filter(organization=stranger_org).exists()


@pytest.mark.django_db
def test_a_batch_too_large_or_malformed_is_refused_whole_with_a_sentence(client, catalog, settings):
    organization, admin = organization_on("standard")
    raw = _key(organization, admin)
    settings.ACTIVITY_BATCH_MAX = 2
    with time_machine.travel(NOW, tick=False):
        too_many = _post(client, raw, [_event(admin) for _ in range(3)])
    assert too_many.status_code == 400
    assert too_many.json()["detail"] == "At most 2 events per request; this one has 3. Split the batch."
    malformed = client.post("/api/v1/activity", "{", content_type="application/json", headers={"Authorization": f"Bearer {raw}"})
    assert malformed.status_code in (400, 422) and malformed.status_code != 500
    unauthenticated = client.post("/api/v1/activity", {"events": []}, content_type="application/json")
    assert unauthenticated.status_code == 401
    assert not ActivityEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_requests_carrying_the_same_events_at_once_count_them_once(catalog):
    organization, admin = organization_on("standard")
    batch = [_event(admin, at=f"2026-12-06T0{hour}:00:00Z") for hour in range(8)]
    reports, failures = [], []
    barrier = threading.Barrier(4)

    def send():
        try:
            barrier.wait()
            with time_machine.travel(NOW, tick=False):
                reports.append(activity_record(organization_id=organization.pk, rows=batch))
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sorted(report.accepted for report in reports) == [0, 0, 0, 8]
    assert sum(report.duplicates for report in reports) == 24
    assert _days(organization) == [(admin.pk, "tracker", date(2026, 12, 6), 8, 8)]


@pytest.mark.django_db
def test_pruning_deletes_old_raw_events_and_keeps_every_rollup(catalog):
    organization, admin = organization_on("standard")
    with time_machine.travel(NOW, tick=False):
        activity_record(organization_id=organization.pk, rows=[
            _event(admin, at="2026-09-10T10:00:00Z", id="old"), _event(admin, at="2026-12-01T10:00:00Z", id="recent"),
        ])
    before = _days(organization)
    with time_machine.travel(NOW + timedelta(days=3), tick=False):
        assert activity_prune() == 1
        call_command("activity_prune", stdout=open("/dev/null", "w"))  # noqa: SIM115 - nothing left to delete
        # The pruned event cannot come back: it is now older than what is accepted.
        report = activity_record(organization_id=organization.pk, rows=[_event(admin, at="2026-09-10T10:00:00Z", id="old")])
    assert report.accepted == 0 and report.errors[0].error.startswith("occurred_at is more than 90 days ago")
    assert list(ActivityEvent.objects.values_list("event_id", flat=True)) == ["recent"]
    assert _days(organization) == before


@pytest.mark.django_db
def test_the_nightly_beat_task_prunes(catalog, settings):
    from activity.tasks import activity_raw_prune

    assert settings.CELERY_BEAT_SCHEDULE["prune-raw-activity"]["task"] == "activity.tasks.activity_raw_prune"
    organization, admin = organization_on("standard")
    with time_machine.travel(NOW, tick=False):
        activity_record(organization_id=organization.pk, rows=[_event(admin, at="2026-09-10T10:00:00Z")])
    with time_machine.travel(NOW + timedelta(days=3), tick=False):
        assert activity_raw_prune() == 1
    assert ActivityDay.objects.filter(organization=organization).count() == 1
