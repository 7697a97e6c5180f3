"""A person's use of a product before a day (the NPS snapshot): days active in the 30 whole UTC
days before it, and their lifecycle state, worked out by hand on rollups made for each case."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from activity.models import ActivityDay
from activity.people import PersonUsage, active_days_band, person_usage_before, usage_from_days
from activity.services import activity_record
from catalog.models import Product

from ..conftest import organization_on
from ..factories import MembershipFactory, UserFactory

DAY = date(2026, 12, 6)  # the answer's day; W0 = 6 Nov .. 5 Dec, W1 = 7 Oct .. 5 Nov


def _active(organization, user, product_code, *days_before, counting=True):
    product = Product.objects.get(code=product_code)
    ActivityDay.objects.bulk_create(
        [
            ActivityDay(
                organization=organization,
                user=user,
                product=product,
                day=DAY - timedelta(days=before),
                events=3,
                active_events=3 if counting else 0,
            )
            for before in days_before
        ]
    )


def _usage(organization, user, product_code="tracker", day=DAY):
    product_id = None if product_code is None else Product.objects.get(code=product_code).pk
    return person_usage_before(
        user_id=user.pk, organization_id=organization.pk, product_id=product_id, day=day
    )


@pytest.mark.django_db
def test_each_state_and_its_active_days(catalog):
    acme, admin = organization_on("standard")
    new, returning, back, dormant, nobody, boundary = (UserFactory() for _ in range(6))
    for user in (new, returning, back, dormant, nobody, boundary):
        MembershipFactory(organization=acme, user=user)
    _active(acme, new, "tracker", 1, 2, 30)  # first day ever is the 30th day back: W0
    _active(acme, returning, "tracker", 1, 31)  # W0 (day-1) and W1 (day-31)
    _active(acme, back, "tracker", 5, 61)  # W0, nothing in W1, day-61 is before W1
    _active(acme, dormant, "tracker", 31, 45)  # W1 only, nothing in W0
    _active(acme, nobody, "tracker", 3, counting=False)  # events whose names do not count
    _active(acme, boundary, "tracker", 0, -1, 60)  # the answer's day and after: not before it

    assert _usage(acme, new) == PersonUsage(active_days=3, state="new")
    assert _usage(acme, returning) == PersonUsage(active_days=1, state="returning")
    assert _usage(acme, back) == PersonUsage(active_days=1, state="resurrecting")
    assert _usage(acme, dormant) == PersonUsage(active_days=0, state="dormant")
    assert _usage(acme, nobody) == PersonUsage(active_days=0, state="none")
    assert _usage(acme, admin) == PersonUsage(active_days=0, state="none")
    # day-60 is the first day of W1: active in W1 only, and nothing on or after the answer's day counts.
    assert _usage(acme, boundary) == PersonUsage(active_days=0, state="dormant")


@pytest.mark.django_db
def test_thirty_days_at_most_and_the_product_or_all_of_them(catalog):
    acme, ana = organization_on("standard")
    _active(acme, ana, "tracker", *range(1, 41))  # every day of W0 and 10 of W1
    _active(acme, ana, "wiki", 1, 2, 70)  # 2 of those days in another product, 1 long ago

    assert _usage(acme, ana) == PersonUsage(active_days=30, state="returning")
    assert _usage(acme, ana, "wiki") == PersonUsage(active_days=2, state="resurrecting")
    assert _usage(acme, ana, "servicedesk") == PersonUsage(active_days=0, state="none")
    # Every product of the organization: a day active in two products is one day.
    assert _usage(acme, ana, None) == PersonUsage(active_days=30, state="returning")


@pytest.mark.django_db
def test_only_the_organization_of_the_answer_counts(catalog):
    acme, _ = organization_on("standard")
    globex, _ = organization_on("standard")
    both = UserFactory()
    MembershipFactory(organization=acme, user=both)
    MembershipFactory(organization=globex, user=both)
    _active(globex, both, "tracker", 1, 2, 3, 40)
    _active(acme, both, "tracker", 2)

    assert _usage(acme, both) == PersonUsage(active_days=1, state="new")
    assert _usage(globex, both) == PersonUsage(active_days=3, state="returning")


@pytest.mark.django_db
def test_events_through_the_service_across_a_day_boundary_and_retried(catalog, settings):
    """Recorded like a product reports them: an event late on 5 December in New York is on
    6 December UTC, the answer's day, so it is not "before"; a retried batch counts once."""
    settings.ACTIVITY_RAW_RETENTION_DAYS = 400
    acme, ana = organization_on("standard")
    tracker = Product.objects.get(code="tracker")
    events = [
        {
            "id": "e1",
            "user": str(ana.public_id),
            "product": "tracker",
            "name": "card_created",
            "occurred_at": "2026-12-05T20:30:00-05:00",
        },  # 01:30 UTC on the 6th
        {
            "id": "e2",
            "user": str(ana.public_id),
            "product": "tracker",
            "name": "card_created",
            "occurred_at": "2026-12-05T18:30:00-05:00",
        },  # 23:30 UTC on the 5th
        {
            "id": "e3",
            "user": str(ana.public_id),
            "product": "tracker",
            "name": "card_created",
            "occurred_at": "2026-10-20T12:00:00Z",
        },  # W1
    ]
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    first = activity_record(organization_id=acme.pk, rows=events, now=now)
    again = activity_record(organization_id=acme.pk, rows=events, now=now)
    assert (first.accepted, first.errors, again.duplicates) == (3, [], 3)
    assert (
        ActivityDay.objects.get(user=ana, product=tracker, day=date(2026, 12, 5)).active_events == 1
    )

    assert _usage(acme, ana) == PersonUsage(active_days=1, state="returning")
    assert _usage(acme, ana, day=date(2026, 12, 7)) == PersonUsage(active_days=2, state="returning")


def test_the_same_answer_from_a_list_of_days():
    days = [DAY - timedelta(days=before) for before in (1, 1, 2, 31, 0, -3)]
    assert usage_from_days(days, day=DAY) == PersonUsage(active_days=2, state="returning")
    assert usage_from_days([], day=DAY) == PersonUsage(active_days=0, state="none")
    assert usage_from_days([DAY - timedelta(days=61)], day=DAY) == PersonUsage(
        active_days=0, state="dormant"
    )
    assert usage_from_days([DAY - timedelta(days=30)], day=DAY) == PersonUsage(
        active_days=1, state="new"
    )


@pytest.mark.parametrize(
    ("days", "band"),
    [
        (0, "0"),
        (1, "1-3"),
        (3, "1-3"),
        (4, "4-9"),
        (9, "4-9"),
        (10, "10-19"),
        (19, "10-19"),
        (20, "20-30"),
        (30, "20-30"),
    ],
)
def test_active_days_bands(days, band):
    assert active_days_band(days) == band
