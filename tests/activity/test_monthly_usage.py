"""Monthly usage beside NPS, worked out by hand: each calendar month's active people (its MAU,
through as_of while it runs), the month before's, and how many of those came back; a person in
two organizations counted once across them; a product or all products; months after as_of."""

from __future__ import annotations

from datetime import date

import pytest

from activity.selectors import MonthUsage, monthly_usage
from catalog.models import Product

from ..conftest import active_on, organization_on
from ..factories import MembershipFactory

AS_OF = date(2026, 12, 5)


@pytest.fixture
def months(catalog):
    """a: Tracker in Sep, Oct, Nov, Dec   b: Tracker 31 Oct, Wiki 2 Dec   c: Tracker 1 and 30 Nov
    d: Tracker in Sep   x: Tracker 10 Nov in Acme and 12 Nov in Globex   y: Tracker 6 Dec (after as_of)"""
    acme, _ = organization_on("standard")
    globex, _ = organization_on("standard")
    named = {name: MembershipFactory(organization=acme).user for name in "abcdxy"}
    MembershipFactory(organization=globex, user=named["x"])
    active_on(
        acme,
        named["a"],
        "tracker",
        date(2026, 9, 3),
        date(2026, 10, 3),
        date(2026, 11, 3),
        date(2026, 12, 3),
    )
    active_on(acme, named["b"], "tracker", date(2026, 10, 31))
    active_on(acme, named["b"], "wiki", date(2026, 12, 2))
    active_on(acme, named["c"], "tracker", date(2026, 11, 1), date(2026, 11, 30))
    active_on(acme, named["d"], "tracker", date(2026, 9, 20))
    active_on(acme, named["x"], "tracker", date(2026, 11, 10))
    active_on(globex, named["x"], "tracker", date(2026, 11, 12))
    active_on(acme, named["y"], "tracker", date(2026, 12, 6))
    return acme, globex


@pytest.mark.django_db
def test_mau_and_monthly_retention_of_a_product(months):
    tracker = Product.objects.get(code="tracker")
    points = monthly_usage(until=date(2026, 12, 1), months=3, product_id=tracker.pk, as_of=AS_OF)
    assert points == [
        # October: a, b; September had a, d; a came back.
        MonthUsage(month=date(2026, 10, 1), active=2, previous_active=2, retained=1, complete=True),
        # November: a, c, x (once, though in two organizations); of a and b, a came back.
        MonthUsage(month=date(2026, 11, 1), active=3, previous_active=2, retained=1, complete=True),
        # December so far: a (b used Wiki, y came after as_of); of a, c and x, a came back.
        MonthUsage(
            month=date(2026, 12, 1), active=1, previous_active=3, retained=1, complete=False
        ),
    ]
    assert [point.retained_share for point in points] == [0.5, 0.5, pytest.approx(1 / 3)]


@pytest.mark.django_db
def test_all_products_and_one_organization(months):
    acme, globex = months
    everything = monthly_usage(until=date(2026, 12, 1), months=1, as_of=AS_OF)
    assert everything == [
        MonthUsage(month=date(2026, 12, 1), active=2, previous_active=3, retained=1, complete=False)
    ]
    assert monthly_usage(
        until=date(2026, 12, 1), months=2, organization_id=globex.pk, as_of=AS_OF
    ) == [
        MonthUsage(month=date(2026, 11, 1), active=1, previous_active=0, retained=0, complete=True),
        MonthUsage(
            month=date(2026, 12, 1), active=0, previous_active=1, retained=0, complete=False
        ),
    ]
    assert (
        monthly_usage(until=date(2026, 11, 1), months=1, organization_id=acme.pk, as_of=AS_OF)[
            0
        ].active
        == 3
    )
    assert (
        monthly_usage(until=date(2026, 11, 1), months=1, organization_id=globex.pk, as_of=AS_OF)[
            0
        ].retained_share
        is None
    )


@pytest.mark.django_db
def test_a_month_is_complete_once_its_last_day_is_in_and_later_months_are_empty(months):
    tracker = Product.objects.get(code="tracker")
    november, december, january = monthly_usage(
        until=date(2027, 1, 1), months=3, product_id=tracker.pk, as_of=date(2026, 11, 30)
    )
    assert (november.active, november.complete) == (3, True)
    assert december == MonthUsage(
        month=date(2026, 12, 1), active=0, previous_active=3, retained=0, complete=False
    )
    assert january == MonthUsage(
        month=date(2027, 1, 1), active=0, previous_active=0, retained=0, complete=False
    )
    # `until` may be any day of its month.
    assert monthly_usage(until=date(2026, 11, 17), months=1, product_id=tracker.pk, as_of=AS_OF)[
        0
    ].month == date(2026, 11, 1)
