"""Cohort retention worked out by hand: cohorts by the week (or month) of a person's first
active day, N-day ("on week n") and unbounded ("on or after week n") modes, a person in two
organizations counted once across them and apart within each, all products at once, small
cohorts left out of the average, the running week lighter and later ones blank; and, through
the ingestion service, retried batches, a day boundary in another time zone and pruned raw
events."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from activity.models import ActivityDay, ActivityEvent
from activity.selectors import retention
from activity.services import activity_prune, activity_record
from catalog.models import Product

from ..conftest import active_on, organization_on
from ..factories import MembershipFactory

# A Saturday: its week (Monday 30 Nov to Sunday 6 Dec) is still running.
AS_OF = date(2026, 12, 5)


def _member(organization):
    return MembershipFactory(organization=organization).user


@pytest.fixture
def hand_made(catalog):
    """Tracker people in Acme (and one also in Globex), by week (weeks start on Mondays):

    a: 9 Nov, 10 Nov, 25 Nov (Acme); 16 Nov (Globex)  -> cohort 9 Nov
    b: 15 Nov (the Sunday ending the week of 9 Nov), 3 Dec -> cohort 9 Nov
    c: 16 Nov; Wiki on 9 Nov                           -> Tracker cohort 16 Nov
    d: 17 Nov, 24 Nov                                  -> cohort 16 Nov
    e: 1 Dec                                           -> cohort 30 Nov (the running week)
    f: 20 Oct, 18 Nov                                  -> cohort 19 Oct, before the 4 weeks shown
    g: 6 Dec                                           -> after as_of: not counted
    h: 10 Nov, events of names that do not count       -> never active
    """
    acme, _ = organization_on("standard")
    globex, _ = organization_on("standard")
    people = {name: _member(acme) for name in "abcdefgh"}
    MembershipFactory(organization=globex, user=people["a"])
    active_on(acme, people["a"], "tracker", date(2026, 11, 9), date(2026, 11, 10), date(2026, 11, 25))
    active_on(globex, people["a"], "tracker", date(2026, 11, 16))
    active_on(acme, people["b"], "tracker", date(2026, 11, 15), date(2026, 12, 3))
    active_on(acme, people["c"], "tracker", date(2026, 11, 16))
    active_on(acme, people["c"], "wiki", date(2026, 11, 9))
    active_on(acme, people["d"], "tracker", date(2026, 11, 17), date(2026, 11, 24))
    active_on(acme, people["e"], "tracker", date(2026, 12, 1))
    active_on(acme, people["f"], "tracker", date(2026, 10, 20), date(2026, 11, 18))
    active_on(acme, people["g"], "tracker", date(2026, 12, 6))
    active_on(acme, people["h"], "tracker", date(2026, 11, 10), counting=False)
    return acme, globex, Product.objects.get(code="tracker")


def _table(result):
    return [(cohort.start, cohort.size, cohort.small, cohort.retained) for cohort in result.cohorts]


@pytest.mark.django_db
def test_n_day_retention_by_week_within_one_organization(hand_made, settings):
    settings.ACTIVITY_MIN_COHORT = 2
    acme, _, tracker = hand_made
    result = retention(
        product_id=tracker.pk,
        period="week",
        mode="n_day",
        periods=4,
        as_of=AS_OF,
        organization_id=acme.pk,
    )
    assert _table(result) == [
        # a and b; week 1 (16 Nov): nobody in Acme; week 2 (23 Nov): a; week 3 (30 Nov): b.
        (date(2026, 11, 9), 2, False, [2, 0, 1, 1]),
        # c and d; week 1 (23 Nov): d; week 2 (30 Nov): nobody yet; week 3 (7 Dec) is after as_of.
        (date(2026, 11, 16), 2, False, [2, 1, 0, None]),
        # Nobody started in the week of 23 Nov (a's 25 Nov is not a start): an empty, small cohort.
        (date(2026, 11, 23), 0, True, [0, 0, None, None]),
        # e alone: fewer than 2, small.
        (date(2026, 11, 30), 1, True, [1, None, None, None]),
    ]
    first, second, empty, running = result.cohorts
    assert (first.share(2), second.share(1), empty.share(0), running.share(1)) == (
        0.5,
        0.5,
        None,
        None,
    )
    # Averages: non-small cohorts, cells whose week has ended (30 Nov's week runs on as_of).
    assert result.average(0) == 1.0  # (2 + 2) / (2 + 2)
    assert result.average(1) == 0.25  # (0 + 1) / (2 + 2)
    assert result.average(2) == 0.5  # 1 / 2: the second cohort's week 2 is the running week
    assert result.average(3) is None  # the first cohort's week 3 is the running week too
    assert [result.cell_complete(first, n) for n in range(4)] == [True, True, True, False]
    assert (
        result.product,
        result.period,
        result.mode,
        result.as_of,
        result.periods,
        result.min_cohort,
    ) == (tracker, "week", "n_day", AS_OF, 4, 2)


@pytest.mark.django_db
def test_unbounded_retention_counts_a_return_in_any_later_week(hand_made, settings):
    settings.ACTIVITY_MIN_COHORT = 2
    acme, _, tracker = hand_made
    result = retention(
        product_id=tracker.pk, mode="unbounded", periods=4, as_of=AS_OF, organization_id=acme.pk
    )
    assert _table(result)[:2] == [
        # a was last active in the week of 23 Nov, b in that of 30 Nov: both count for weeks 1 and 2.
        (date(2026, 11, 9), 2, False, [2, 2, 2, 1]),
        # c never came back; d last came in the week of 23 Nov.
        (date(2026, 11, 16), 2, False, [2, 1, 0, None]),
    ]
    assert result.average(1) == 0.75  # (2 + 1) / 4
    assert "or in any later week up to 5 Dec 2026" in result.definition


@pytest.mark.django_db
def test_a_person_in_two_organizations_counts_once_across_them_and_apart_in_each(
    hand_made, settings
):
    settings.ACTIVITY_MIN_COHORT = 2
    acme, globex, tracker = hand_made
    everyone = retention(product_id=tracker.pk, periods=4, as_of=AS_OF)
    # a's Globex day (16 Nov) is week 1 of a's start in Tracker (9 Nov, in Acme): across
    # organizations a is one person.
    assert _table(everyone)[0] == (date(2026, 11, 9), 2, False, [2, 1, 1, 1])
    # Within Globex, a started on 16 Nov and is alone there.
    assert _table(
        retention(product_id=tracker.pk, periods=4, as_of=AS_OF, organization_id=globex.pk)
    ) == [
        (date(2026, 11, 9), 0, True, [0, 0, 0, 0]),
        (date(2026, 11, 16), 1, True, [1, 0, 0, None]),
        (date(2026, 11, 23), 0, True, [0, 0, None, None]),
        (date(2026, 11, 30), 0, True, [0, None, None, None]),
    ]


@pytest.mark.django_db
def test_all_products_start_with_a_persons_first_day_in_any_product(hand_made, settings):
    settings.ACTIVITY_MIN_COHORT = 2
    _, _, _ = hand_made
    result = retention(product_id=None, periods=4, as_of=AS_OF)
    # c's Wiki day (9 Nov) makes c start in the week of 9 Nov with a and b; in week 1 (16 Nov)
    # a (Globex) and c (Tracker) are active.
    assert _table(result)[0] == (date(2026, 11, 9), 3, False, [3, 2, 1, 1])
    assert (result.product, result.product_name) == (None, "All products")
    assert result.definition.startswith(
        "A cohort is the people who started in any product in the same week"
    )


@pytest.mark.django_db
def test_monthly_cohorts_and_the_default_small_cohort(hand_made):
    acme, _, tracker = hand_made
    result = retention(
        product_id=tracker.pk, period="month", periods=3, as_of=AS_OF, organization_id=acme.pk
    )
    # October: f (back in November); November: a, b, c, d, h never; December: e.
    assert _table(result) == [
        (date(2026, 10, 1), 1, True, [1, 1, 0]),
        (date(2026, 11, 1), 4, True, [4, 1, None]),  # b in December
        (date(2026, 12, 1), 1, True, [1, None, None]),
    ]
    # Every cohort is under the default 20 people: no average at all.
    assert result.min_cohort == 20
    assert [result.average(n) for n in range(3)] == [None, None, None]
    assert "Cohorts of fewer than 20 people are marked small" in result.definition


@pytest.mark.django_db
def test_a_cohort_of_exactly_the_minimum_is_not_small(catalog, settings):
    settings.ACTIVITY_MIN_COHORT = 3
    acme, _ = organization_on("standard")
    for _ in range(3):
        active_on(acme, _member(acme), "tracker", date(2026, 11, 30))
    for _ in range(2):
        active_on(acme, _member(acme), "tracker", date(2026, 11, 23))
    small, full = retention(
        product_id=Product.objects.get(code="tracker").pk, periods=2, as_of=AS_OF
    ).cohorts
    assert (small.size, small.small, full.size, full.small) == (2, True, 3, False)


@pytest.mark.django_db
def test_unknown_period_or_mode_is_refused(catalog):
    with pytest.raises(ValueError):
        retention(product_id=None, period="day", as_of=AS_OF)
    with pytest.raises(ValueError):
        retention(product_id=None, mode="bracket", as_of=AS_OF)


@pytest.mark.django_db
def test_through_the_service_retries_time_zones_and_pruned_raw_events(catalog, settings):
    settings.ACTIVITY_MIN_COHORT = 1
    acme, ana = organization_on("standard")
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    tracker = Product.objects.get(code="tracker")

    def send(event_id, at):
        row = {
            "id": event_id,
            "user": str(ana.public_id),
            "product": "tracker",
            "name": "card_created",
            "occurred_at": at,
        }
        return activity_record(organization_id=acme.pk, rows=[row], now=now)

    # 23:30 in New York on Sunday 15 Nov is 04:30 UTC on Monday 16 Nov: ana starts in the week
    # of 16 Nov, not that of 9 Nov.
    assert send("e1", "2026-11-15T23:30:00-05:00").accepted == 1
    assert send("e1", "2026-11-15T23:30:00-05:00").duplicates == 1  # the retry counts nothing
    # 00:30 in Paris on Monday 30 Nov is 23:30 UTC on Sunday 29 Nov: week 1, not week 2.
    assert send("e2", "2026-11-30T00:30:00+01:00").accepted == 1
    assert ActivityDay.objects.get(user=ana, day=date(2026, 11, 16)).events == 1

    def table():
        return _table(
            retention(product_id=tracker.pk, periods=3, as_of=AS_OF, organization_id=acme.pk)
        )

    expected = [
        (date(2026, 11, 16), 1, False, [1, 1, 0]),
        (date(2026, 11, 23), 0, True, [0, 0, None]),
        (date(2026, 11, 30), 0, True, [0, None, None]),
    ]
    assert table() == expected
    # Months later the raw events are pruned; the rollups, and so the figures, stay.
    assert activity_prune(now=now + timedelta(days=200)) == 2
    assert not ActivityEvent.objects.exists()
    assert table() == expected
