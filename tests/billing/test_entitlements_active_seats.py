"""The entitlements API's `active_seats` per product: the organization's people active in the
product in the 30 whole UTC days ending yesterday, against the seats it holds
(billing.selectors.active_seats_of). The figure changes when the UTC day does, without any
write, so a cached answer never outlives the day it was computed on (billing/entitlements.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from accounts import api_keys
from activity.models import ActivityDay
from billing import entitlements
from billing.models import Subscription
from billing.services import subscriptions
from catalog.models import Product
from catalog.selectors import edition_get
from common import shared_redis

from ..conftest import organization_on
from ..factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

# 23:59:30 UTC on 6 December: yesterday is the 5th until midnight, 30 seconds away.
BEFORE_MIDNIGHT = datetime(2026, 12, 6, 23, 59, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _redis_only(settings):
    """The shared Redis alone: a web process's own memory is covered by test_api.py."""
    settings.ENTITLEMENTS_LOCAL_SECONDS = 0


def _key(organization, admin) -> str:
    return api_keys.api_key_create(organization=organization, actor=admin, name="Tracker servers")[
        1
    ]


def _entitlements(client, raw):
    response = client.get("/api/v1/entitlements", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 200, response.content
    return {row["product"]: row["active_seats"] for row in response.json()}


def _active(organization, user, day: date, product_code: str = "tracker", active_events: int = 1):
    ActivityDay.objects.create(
        organization=organization,
        user=user,
        product=Product.objects.get(code=product_code),
        day=day,
        events=max(active_events, 1),
        active_events=active_events,
    )


@time_machine.travel(BEFORE_MIDNIGHT, tick=False)
def test_each_product_says_how_many_of_its_seats_were_used_in_the_last_30_days(client, catalog):
    organization, admin = organization_on("standard")
    Subscription.objects.filter(organization=organization).update(seat_limit=8)
    subscriptions.subscription_start_trial(
        organization=organization,
        edition=edition_get(product_code="wiki", edition_code="free"),
        actor=admin,
    )
    colleague = MembershipFactory(organization=organization).user
    yesterday = date(2026, 12, 5)
    _active(organization, admin, yesterday)
    _active(organization, admin, yesterday - timedelta(days=3))  # the same person: once
    _active(organization, colleague, yesterday - timedelta(days=29))  # the 30th day back: counts
    _active(
        organization,
        MembershipFactory(organization=organization).user,
        yesterday - timedelta(days=30),
    )  # 31st: not
    _active(
        organization, MembershipFactory(organization=organization).user, date(2026, 12, 6)
    )  # today: not yet
    _active(
        organization, MembershipFactory(organization=organization).user, yesterday, active_events=0
    )  # no counting event
    stranger_org, stranger = organization_on("standard")
    _active(stranger_org, stranger, yesterday)  # another organization's
    _active(organization, UserFactory(), yesterday, "servicedesk")  # a product it does not have

    answer = _entitlements(client, _key(organization, admin))

    assert answer == {
        "tracker": {"active": 2, "seats": 8, "ratio": 0.25, "as_of": "2026-12-05"},
        "wiki": {"active": 0, "seats": 10, "ratio": 0.0, "as_of": "2026-12-05"},
    }


def test_a_cached_answer_ends_with_the_utc_day_it_was_computed_on(client, catalog):
    organization, admin = organization_on("standard")
    raw = _key(organization, admin)
    client_redis = shared_redis.client()
    data_key = shared_redis.key(f"entitlements:{organization.pk}")
    with time_machine.travel(BEFORE_MIDNIGHT, tick=False):
        assert _entitlements(client, raw)["tracker"]["active"] == 0
        # Kept 30 seconds at most (not ENTITLEMENTS_CACHE_SECONDS, 300): until midnight UTC.
        assert 0 < client_redis.ttl(data_key) <= 30
        # Someone is active today: no change to the answer until today is a whole day.
        _active(organization, admin, date(2026, 12, 6))
        assert _entitlements(client, raw)["tracker"] == {
            "active": 0,
            "seats": 100,
            "ratio": 0.0,
            "as_of": "2026-12-05",
        }
    # Past midnight (Redis has not expired the entry yet: its clock did not move): the entry's
    # day is over, so the answer is computed again, for the new yesterday.
    with time_machine.travel(BEFORE_MIDNIGHT + timedelta(seconds=31), tick=False):
        assert _entitlements(client, raw)["tracker"] == {
            "active": 1,
            "seats": 100,
            "ratio": 0.01,
            "as_of": "2026-12-06",
        }
        assert 300 - 2 <= client_redis.ttl(data_key) <= 300  # a new day: the usual lifetime


def test_an_answer_computed_before_midnight_and_finished_after_it_is_not_kept(
    client, catalog, monkeypatch
):
    organization, admin = organization_on("standard")
    raw = _key(organization, admin)
    data_key = shared_redis.key(f"entitlements:{organization.pk}")
    compute = entitlements.entitlements_compute
    with time_machine.travel(BEFORE_MIDNIGHT + timedelta(seconds=29.5), tick=False) as traveller:

        def compute_across_midnight(*, organization_id):
            rows = compute(organization_id=organization_id)
            traveller.shift(timedelta(seconds=1))  # a slow query: now 00:00:00.5 on 7 December
            return rows

        monkeypatch.setattr(entitlements, "entitlements_compute", compute_across_midnight)
        assert _entitlements(client, raw)["tracker"]["as_of"] == "2026-12-05"
        assert not shared_redis.client().exists(data_key)
        monkeypatch.setattr(entitlements, "entitlements_compute", compute)
        assert _entitlements(client, raw)["tracker"]["as_of"] == "2026-12-06"
        assert shared_redis.client().exists(data_key)
