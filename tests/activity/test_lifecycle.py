"""Lifecycle per period worked out by hand: new (first active day ever in the period),
returning (active in it and the one before), resurrecting (active in it, not the one before,
active earlier), dormant (active the period before, not in it); the running period marked
incomplete; one organization counted from its own rows only."""

from __future__ import annotations

from datetime import date

import pytest

from activity.selectors import LifecyclePoint, lifecycle
from catalog.models import Product

from ..conftest import active_on, organization_on
from ..factories import MembershipFactory

AS_OF = date(2026, 12, 5)  # a Saturday: the week of 30 Nov is still running


@pytest.fixture
def people(catalog):
    """Tracker, weeks starting on Mondays 2, 9, 16, 23 and 30 Nov:

    a: 2 Nov, 23 Nov, 30 Nov   b: 9 Nov, 16 Nov   c: 16 Nov, 1 Dec   d: 30 Nov   e: 10 Nov
    """
    acme, _ = organization_on("standard")
    globex, _ = organization_on("standard")
    named = {name: MembershipFactory(organization=acme).user for name in "abcde"}
    active_on(acme, named["a"], "tracker", date(2026, 11, 2), date(2026, 11, 23), date(2026, 11, 30))
    active_on(acme, named["b"], "tracker", date(2026, 11, 9), date(2026, 11, 16))
    active_on(acme, named["c"], "tracker", date(2026, 11, 16), date(2026, 12, 1))
    active_on(acme, named["d"], "tracker", date(2026, 11, 30))
    active_on(acme, named["e"], "tracker", date(2026, 11, 10))
    return acme, globex, named


@pytest.mark.django_db
def test_new_returning_resurrecting_and_dormant_by_week(people):
    tracker = Product.objects.get(code="tracker")
    assert lifecycle(product_id=tracker.pk, periods=3, as_of=AS_OF) == [
        # 16 Nov: c new; b returning (9 Nov); e dormant (10 Nov, not since).
        LifecyclePoint(
            start=date(2026, 11, 16), new=1, returning=1, resurrecting=0, dormant=1, complete=True
        ),
        # 23 Nov: a resurrecting (2 Nov, not 16 Nov); b and c dormant.
        LifecyclePoint(
            start=date(2026, 11, 23), new=0, returning=0, resurrecting=1, dormant=2, complete=True
        ),
        # 30 Nov (running): d new, a returning, c resurrecting; nobody of 23 Nov's week left.
        LifecyclePoint(
            start=date(2026, 11, 30), new=1, returning=1, resurrecting=1, dormant=0, complete=False
        ),
    ]


@pytest.mark.django_db
def test_a_person_active_in_two_organizations_is_one_across_them_and_new_in_the_second(people):
    acme, globex, named = people
    MembershipFactory(organization=globex, user=named["e"])
    active_on(globex, named["e"], "tracker", date(2026, 11, 24))
    tracker = Product.objects.get(code="tracker")
    # Across organizations e came back on 24 Nov after two weeks away: resurrecting.
    everyone = lifecycle(product_id=tracker.pk, periods=1, as_of=date(2026, 11, 29))
    assert everyone == [
        LifecyclePoint(
            start=date(2026, 11, 23), new=0, returning=0, resurrecting=2, dormant=2, complete=True
        )
    ]
    # In Globex alone it is e's first day there: new; Acme's figures do not see it.
    assert lifecycle(
        product_id=tracker.pk, periods=1, as_of=date(2026, 11, 29), organization_id=globex.pk
    ) == [
        LifecyclePoint(
            start=date(2026, 11, 23), new=1, returning=0, resurrecting=0, dormant=0, complete=True
        )
    ]
    assert (
        lifecycle(
            product_id=tracker.pk, periods=1, as_of=date(2026, 11, 29), organization_id=acme.pk
        )[0].resurrecting
        == 1
    )


@pytest.mark.django_db
def test_by_month_and_across_products(people):
    acme, _, named = people
    active_on(acme, named["e"], "wiki", date(2026, 10, 5))
    points = lifecycle(product_id=None, period="month", periods=2, as_of=AS_OF)
    assert points == [
        # November: a, b, c, d are new to every product; e used Wiki in October: returning.
        LifecyclePoint(
            start=date(2026, 11, 1), new=4, returning=1, resurrecting=0, dormant=0, complete=True
        ),
        # December so far: c returning; everyone else of November dormant (a, b, d, e).
        LifecyclePoint(
            start=date(2026, 12, 1), new=0, returning=1, resurrecting=0, dormant=4, complete=False
        ),
    ]
    assert points[0].active == 5


@pytest.mark.django_db
def test_a_week_ending_on_as_of_is_complete(people):
    tracker = Product.objects.get(code="tracker")
    (point,) = lifecycle(product_id=tracker.pk, periods=1, as_of=date(2026, 11, 29))  # a Sunday
    assert point.complete
