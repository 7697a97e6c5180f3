"""The stored staff figures (docs/activity.md#how-the-staff-figures-stay-fast): a build gives the
same answers as the live computation, the staff figures are then read from it (a rollup written
behind its back does not show until the next build) while one organization's stay live; an
event arriving late for a stored day asks for one debounced rebuild, however many late batches
come; events of today ask for none; the beat builds after midnight UTC."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pytest
import redis
import time_machine
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connection, transaction

from activity.models import StaffFiguresSnapshot
from activity.selectors import (
    lifecycle,
    monthly_usage,
    retention,
    staff_figures_built_at,
    usage_figures,
)
from activity.services import REBUILD_PENDING_KEY, activity_record, staff_figures_build
from activity.tasks import staff_figures_rebuild
from catalog.models import Product

from ..conftest import active_on, organization_on
from ..factories import MembershipFactory

AS_OF = date(2026, 12, 5)
NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def _figures(product_id, organization_id=None):
    return (
        retention(product_id=product_id, periods=5, as_of=AS_OF, organization_id=organization_id),
        retention(
            product_id=product_id,
            period="month",
            mode="unbounded",
            periods=3,
            as_of=AS_OF,
            organization_id=organization_id,
        ),
        lifecycle(product_id=product_id, periods=5, as_of=AS_OF, organization_id=organization_id),
        monthly_usage(
            until=date(2026, 12, 1),
            months=3,
            product_id=product_id,
            as_of=AS_OF,
            organization_id=organization_id,
        ),
    )


@pytest.fixture
def acme(catalog):
    organization, ana = organization_on("standard")
    bo = MembershipFactory(organization=organization).user
    active_on(
        organization,
        ana,
        "tracker",
        date(2026, 10, 30),
        date(2026, 11, 9),
        date(2026, 11, 17),
        date(2026, 12, 5),
    )
    active_on(organization, bo, "tracker", date(2026, 11, 10), date(2026, 12, 1))
    active_on(organization, bo, "wiki", date(2026, 11, 3))
    return organization, ana, bo


@pytest.mark.django_db
def test_a_build_answers_as_the_live_computation_and_is_then_what_staff_read(acme):
    organization, _, _ = acme
    tracker = Product.objects.get(code="tracker")
    live = {key: _figures(key) for key in (tracker.pk, None)}
    live_usage = usage_figures(as_of=AS_OF)
    assert staff_figures_built_at(as_of=AS_OF) is None

    # Weeks and months, for Tracker, Wiki, Service Desk and all products; and the DAU/WAU/MAU row.
    assert staff_figures_build(as_of=AS_OF, now=NOW) == 2 * 4 + 1
    assert staff_figures_built_at(as_of=AS_OF) == NOW
    assert {key: _figures(key) for key in (tracker.pk, None)} == live
    assert usage_figures(as_of=AS_OF) == live_usage

    # Rollups written behind the snapshot's back (cy on 25 Nov and 2 Dec): staff figures keep the
    # stored answer until the next build; the organization's own figures are computed live.
    cy = MembershipFactory(organization=organization).user
    active_on(organization, cy, "tracker", date(2026, 11, 25), date(2026, 12, 2))
    assert _figures(tracker.pk) == live[tracker.pk]
    assert usage_figures(as_of=AS_OF)[0].mau == live_usage[0].mau == 2
    assert usage_figures(as_of=AS_OF, organization_id=organization.pk)[0].mau == 3
    assert (
        lifecycle(product_id=tracker.pk, periods=1, as_of=AS_OF, organization_id=organization.pk)[
            0
        ].returning
        == 1
    )
    staff_figures_build(as_of=AS_OF, now=NOW)
    assert lifecycle(product_id=tracker.pk, periods=1, as_of=AS_OF)[0].returning == 1
    assert usage_figures(as_of=AS_OF)[0].mau == 3
    # Another day has no snapshot: computed live.
    assert lifecycle(product_id=tracker.pk, periods=1, as_of=date(2026, 12, 6))[0].returning == 1


@pytest.mark.django_db
def test_old_snapshots_are_deleted_and_a_rebuild_replaces_the_days_rows(acme):
    staff_figures_build(as_of=date(2026, 11, 20), now=NOW)
    staff_figures_build(as_of=AS_OF, now=NOW)
    staff_figures_build(as_of=AS_OF, now=NOW)
    assert sorted(set(StaffFiguresSnapshot.objects.values_list("as_of", flat=True))) == [AS_OF]
    assert StaffFiguresSnapshot.objects.count() == 9


def _parked_queue_length() -> int:
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    return broker.llen(django_settings.CELERY_TASK_DEFAULT_QUEUE)


@pytest.mark.django_db(transaction=True)
def test_a_late_event_asks_for_one_debounced_rebuild_that_takes_it_in(acme):
    organization, ana, _ = acme
    tracker = Product.objects.get(code="tracker")
    cache.delete(REBUILD_PENDING_KEY)
    with time_machine.travel(NOW, tick=False):
        staff_figures_build()
        assert (
            lifecycle(product_id=tracker.pk, periods=1)[0].returning == 0
        )  # ana was not active the week before... yet
        queued = _parked_queue_length()

        def send(event_id, at):
            row = {
                "id": event_id,
                "user": str(ana.public_id),
                "product": "tracker",
                "name": "card_created",
                "occurred_at": at,
            }
            return activity_record(organization_id=organization.pk, rows=[row])

        # An event of today is in no stored day: no rebuild.
        assert send("today", "2026-12-06T08:00:00Z").accepted == 1
        assert cache.get(REBUILD_PENDING_KEY) is None and _parked_queue_length() == queued
        # 24 Nov (the week before as_of's) arrives late: a rebuild is scheduled; a second late batch adds nothing.
        assert send("late-1", "2026-11-24T22:00:00Z").accepted == 1
        assert cache.get(REBUILD_PENDING_KEY) is not None and _parked_queue_length() == queued + 1
        assert send("late-2", "2026-11-30T03:00:00+05:00").accepted == 1
        assert _parked_queue_length() == queued + 1
        # Until the rebuild runs, staff read the stored figures.
        assert lifecycle(product_id=tracker.pk, periods=1)[0].returning == 0

        # The task (as the worker runs it): the pending key goes, the late events are in.
        staff_figures_rebuild()
        assert cache.get(REBUILD_PENDING_KEY) is None
        assert lifecycle(product_id=tracker.pk, periods=1)[0].returning == 1
        # The next late batch schedules the next rebuild.
        assert send("late-3", "2026-12-03T10:00:00Z").accepted == 1
        assert _parked_queue_length() == queued + 2
    cache.delete(REBUILD_PENDING_KEY)


def test_the_beat_builds_yesterdays_figures_after_midnight(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["build-staff-usage-figures"]
    assert entry["task"] == "activity.tasks.staff_figures_rebuild"
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({0}, {20})


@pytest.mark.django_db(transaction=True)
def test_two_builds_at_once_run_one_after_the_other_and_the_day_has_one_set_of_rows(acme):
    """The nightly beat, a page asking and a late event's rebuild can overlap: the second build
    waits for the first to commit (an advisory lock), then replaces its rows; neither fails."""
    first_built, release = threading.Event(), threading.Event()
    errors: list[Exception] = []

    def first() -> None:
        try:
            with transaction.atomic():
                staff_figures_build(as_of=AS_OF)
                first_built.set()
                release.wait(10)
        except Exception as error:  # pragma: no cover - what the test asserts is absent
            errors.append(error)
        finally:
            connection.close()

    def second() -> None:
        try:
            staff_figures_build(as_of=AS_OF)
        except Exception as error:  # pragma: no cover - as above
            errors.append(error)
        finally:
            connection.close()

    one = threading.Thread(target=first)
    one.start()
    assert first_built.wait(10)
    two = threading.Thread(target=second)
    two.start()
    two.join(0.5)
    assert two.is_alive()  # waiting for the first build's transaction
    release.set()
    one.join(10)
    two.join(10)
    assert errors == []
    rows = StaffFiguresSnapshot.objects.filter(as_of=AS_OF)
    assert rows.count() == len({(row.period, row.product_key) for row in rows}) > 0
