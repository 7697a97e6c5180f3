"""GET /api/v1/entitlements/check: entitled and by what, or why not and the offers (add-ons and
editions that grant the feature), cheapest first, with their exact price now and Flywheel's
page that buys each; the tenant wall (another organization's key never sees this one's)."""

from datetime import UTC, datetime, timedelta

import time_machine
from django.conf import settings
from django.utils import timezone

from accounts import api_keys
from billing.features import addon_price
from billing.models import AddOnSubscription, Subscription
from billing.pricing import add_months, period_seconds, prorate
from billing.services.subscriptions import edition_change_quote
from catalog.models import AddOn
from catalog.selectors import edition_get

from ..conftest import organization_on
from .helpers import addon_on

START = datetime(2026, 12, 6, tzinfo=UTC)
NOW = START + timedelta(days=10)


def _key(organization, admin):
    _, raw = api_keys.api_key_create(organization=organization, actor=admin, name="Tracker servers")
    return raw


def _check(client, raw, status=200, **params):
    response = client.get("/api/v1/entitlements/check", params, headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == status, response.content
    return response.json()


def paid_standard(seats=5, *, interval="month"):
    """An organization paying Tracker Standard for `seats` seats, its period from START."""
    organization, admin = organization_on("standard")
    subscription = organization.subscriptions.get()
    subscription.status = Subscription.Status.ACTIVE
    subscription.interval = interval
    subscription.seat_limit = seats
    subscription.trial_ends_at = None
    subscription.current_period_start = START
    subscription.current_period_end = add_months(START, 1 if interval == "month" else 12)
    subscription.save()
    return organization, admin, subscription


def _site(path, organization, **params):
    query = "".join(f"{name}={value}&" for name, value in params.items())
    return f"{settings.SITE_URL}{path}?{query}organization={organization.public_id}"


# Entitled ---------------------------------------------------------------------------------------


def test_a_feature_of_the_edition(client, trial_organization):
    organization, admin = trial_organization
    assert _check(client, _key(organization, admin), product="tracker", feature="permissions") == {
        "product": "tracker",
        "feature": "permissions",
        "entitled": True,
        "source": {"source": "edition", "code": "standard", "name": "Standard"},
        "reason": None,
        "offers": None,
        "cheapest": None,
    }


def test_a_feature_of_a_granting_addon(client, trial_organization):
    organization, admin = trial_organization
    addon_on(organization.subscriptions.get(), "github", status=AddOnSubscription.Status.TRIALING)
    answer = _check(client, _key(organization, admin), product="tracker", feature="github-sync")
    assert answer["entitled"] is True
    assert answer["source"] == {"source": "addon", "code": "github", "name": "GitHub integration"}


# Not entitled: the offers -------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_a_paid_organization_is_offered_the_addon_for_the_rest_of_its_period(client, catalog):
    organization, admin, subscription = paid_standard(seats=5)
    answer = _check(client, _key(organization, admin), product="tracker", feature="github-sync")
    # 21 days of a 31-day month, of 5 seats at 1.50: 7.50 x 21 / 31 = 5.08.
    expected = prorate(full_amount_minor=750, seconds_left=21 * 86400, seconds_in_period=period_seconds(START, "month"))
    assert expected == 508
    offer = {
        "kind": "addon",
        "code": "github",
        "name": "GitHub integration",
        "amount_minor": 508,
        "currency": "USD",
        "price_text": "USD 5.08 for the rest of this period, until 6 Jan 2027, then USD 1.50 per seat per month",
        "trial_days": 14,
        "url": _site(f"/billing/addons/{subscription.public_id}/github/", organization),
    }
    assert answer == {
        "product": "tracker",
        "feature": "github-sync",
        "entitled": False,
        "source": None,
        "reason": "Tracker Standard does not include github-sync. GitHub integration includes it: "
        "USD 5.08 for the rest of this period, until 6 Jan 2027, then USD 1.50 per seat per month.",
        "offers": [offer],
        "cheapest": offer,
    }


@time_machine.travel(NOW, tick=False)
def test_an_edition_is_priced_as_the_change_of_edition(client, catalog):
    organization, admin, subscription = paid_standard(seats=5)
    answer = _check(client, _key(organization, admin), product="tracker", feature="sso")
    quote = edition_change_quote(subscription=subscription, edition=edition_get(product_code="tracker", edition_code="premium"))
    assert [(offer["kind"], offer["code"]) for offer in answer["offers"]] == [("edition", "premium"), ("edition", "enterprise")]
    premium = answer["cheapest"]
    assert premium["amount_minor"] == quote.total_minor
    assert premium["name"] == "Tracker Premium"
    assert premium["price_text"] == (
        f"USD {quote.total_minor / 100:.2f} for the rest of this period, until 6 Jan 2027, then USD 16.00 per seat per month"
    )
    assert premium["url"] == _site(f"/billing/edition/{subscription.public_id}/", organization, edition="premium")
    assert premium["trial_days"] == 0


@time_machine.travel(NOW, tick=False)
def test_offers_are_cheapest_first_whether_addon_or_edition(client, catalog):
    organization, admin, subscription = paid_standard(seats=5)
    github = AddOn.objects.get(product__code="tracker", code="github")
    github.features = ["github-sync", "sso"]
    github.save()
    answer = _check(client, _key(organization, admin), product="tracker", feature="sso")
    assert [offer["code"] for offer in answer["offers"]] == ["github", "premium", "enterprise"]
    amounts = [offer["amount_minor"] for offer in answer["offers"]]
    assert amounts == sorted(amounts)
    # An add-on dearer than the editions comes after them.
    github.monthly_price_minor = 100_000
    github.save()
    answer = _check(client, _key(organization, admin), product="tracker", feature="sso")
    assert [offer["code"] for offer in answer["offers"]] == ["premium", "enterprise", "github"]
    assert answer["cheapest"]["code"] == "premium"


@time_machine.travel(NOW, tick=False)
def test_a_yearly_subscription_is_priced_on_its_year(client, catalog):
    organization, admin, subscription = paid_standard(seats=2, interval="year")
    answer = _check(client, _key(organization, admin), product="tracker", feature="github-sync")
    seconds = int((subscription.current_period_end - timezone.now()).total_seconds())
    expected = prorate(full_amount_minor=1500 * 2, seconds_left=seconds, seconds_in_period=period_seconds(START, "year"))
    assert answer["cheapest"]["amount_minor"] == expected
    assert answer["cheapest"]["price_text"].endswith("until 6 Dec 2027, then USD 15.00 per seat per year")


def test_a_trial_is_offered_the_full_monthly_price_and_told_so(client, trial_organization):
    organization, admin = trial_organization
    subscription = organization.subscriptions.get()
    answer = _check(client, _key(organization, admin), product="tracker", feature="github-sync")
    [offer] = answer["offers"]
    assert offer["amount_minor"] == 150 * subscription.seat_limit
    assert offer["price_text"] == (
        f"USD {150 * subscription.seat_limit / 100:.2f} per month ({subscription.seat_limit} seats at USD 1.50 per seat "
        "per month): the full monthly price, as Tracker has no paid period yet"
    )
    assert offer["trial_days"] == 14
    # An edition for a trial: checking out on it, at its full monthly price for the seats in use.
    answer = _check(client, _key(organization, admin), product="tracker", feature="sso")
    assert answer["cheapest"]["url"] == _site(f"/billing/checkout/{subscription.public_id}/", organization, edition="premium")
    assert answer["cheapest"]["price_text"] == (
        "USD 16.00 per month (1 seat at USD 16.00 per seat per month): the full monthly price, "
        "as Tracker has no paid period yet"
    )


def test_an_addon_tried_once_has_no_trial_left(client, trial_organization):
    organization, admin = trial_organization
    tried = addon_on(organization.subscriptions.get(), "github", status=AddOnSubscription.Status.TRIALING)
    tried.status = AddOnSubscription.Status.CANCELED
    tried.canceled_at = timezone.now()
    tried.save()
    answer = _check(client, _key(organization, admin), product="tracker", feature="github-sync")
    assert answer["cheapest"]["code"] == "github" and answer["cheapest"]["trial_days"] == 0


def test_an_addon_needing_a_bigger_edition_is_not_offered_but_said(client, free_organization):
    organization, admin = free_organization
    answer = _check(client, _key(organization, admin), product="tracker", feature="github-sync")
    assert answer["offers"] == [] and answer["cheapest"] is None
    assert answer["reason"] == (
        "Tracker Free does not include github-sync. GitHub integration needs Tracker Standard or above; you are on Free."
    )


def test_a_suspended_product_is_told_with_no_offers(client, trial_organization):
    organization, admin = trial_organization
    subscription = organization.subscriptions.get()
    subscription.status = Subscription.Status.SUSPENDED
    subscription.suspended_at = timezone.now()
    subscription.save()
    answer = _check(client, _key(organization, admin), product="tracker", feature="permissions")
    assert answer["entitled"] is False and answer["offers"] == []
    assert answer["reason"].startswith("Tracker is suspended for ")


def test_an_addon_suspended_on_its_own_says_to_pay_it(client, catalog):
    organization, admin, subscription = paid_standard()
    addon_on(subscription, "github", status=AddOnSubscription.Status.SUSPENDED, suspended_at=timezone.now())
    answer = _check(client, _key(organization, admin), product="tracker", feature="github-sync")
    assert answer["entitled"] is False and answer["offers"] == []
    assert "GitHub integration is suspended: its invoice is overdue." in answer["reason"]


def test_a_product_the_organization_does_not_have(client, trial_organization):
    organization, admin = trial_organization
    answer = _check(client, _key(organization, admin), product="wiki", feature="slack-share")
    assert answer["entitled"] is False and answer["offers"] == []
    assert "has no Wiki subscription" in answer["reason"]


# Refusals ---------------------------------------------------------------------------------------


def test_unknown_product_and_feature_are_refused_with_a_sentence(client, trial_organization):
    organization, admin = trial_organization
    raw = _key(organization, admin)
    assert _check(client, raw, 404, product="nope", feature="sso") == {
        "detail": "There is no product 'nope': use a product code such as tracker."
    }
    detail = _check(client, raw, 400, product="tracker", feature="teleport")["detail"]
    assert detail.startswith("Tracker has no feature 'teleport': its features are boards, backlog,")
    assert "github-sync" in detail
    assert _check(client, raw, 422, product="tracker")["detail"][0]["loc"][-1] == "feature"
    response = client.get("/api/v1/entitlements/check", {"product": "tracker", "feature": "sso"})
    assert response.status_code == 401


def test_a_revoked_key_is_refused(client, trial_organization):
    organization, admin = trial_organization
    key, raw = api_keys.api_key_create(organization=organization, actor=admin, name="old")
    api_keys.api_key_revoke(api_key=key, actor=admin)
    refused = _check(client, raw, 401, product="tracker", feature="sso")
    assert set(refused) == {"detail"}  # nothing of the organization: no offers, no entitlement


# The tenant wall --------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_another_organizations_key_never_sees_this_organizations_offers(client, catalog):
    acme, acme_admin, acme_subscription = paid_standard(seats=5)
    addon_on(acme_subscription, "premium-support")
    globex, globex_admin = organization_on("standard")
    globex_subscription = globex.subscriptions.get()
    answer = _check(client, _key(globex, globex_admin), product="tracker", feature="github-sync")
    text = str(answer)
    assert str(acme.public_id) not in text and str(acme_subscription.public_id) not in text
    assert answer["cheapest"]["url"] == _site(f"/billing/addons/{globex_subscription.public_id}/github/", globex)
    # Acme's add-on grants Acme only.
    addon_on(acme_subscription, "github")
    assert _check(client, _key(acme, acme_admin), product="tracker", feature="github-sync")["entitled"] is True
    assert _check(client, _key(globex, globex_admin), product="tracker", feature="github-sync")["entitled"] is False


# The price helper -------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_a_flat_addon_is_priced_whole_for_the_rest_of_the_period(catalog):
    _, _, subscription = paid_standard(seats=5)
    addon = AddOn.objects.get(product__code="tracker", code="premium-support")
    amount, text, full_month = addon_price(subscription=subscription, addon=addon)
    # 99.00 x 21 / 31 = 67.06, whatever the seats.
    assert (amount, full_month) == (6706, False)
    assert text == "USD 67.06 for the rest of this period, until 6 Jan 2027, then USD 99.00 per month"


def test_a_one_off_addon_is_its_one_price(trial_organization):
    organization, _ = trial_organization
    addon = AddOn.objects.get(product__code="tracker", code="training")
    assert addon_price(subscription=organization.subscriptions.get(), addon=addon) == (50000, "USD 500.00, once", False)


@time_machine.travel(NOW, tick=False)
def test_a_paid_base_is_priced_by_the_addon_checkouts_quote_and_its_refusal_said(client, catalog):
    from billing.services.addons import addon_quote

    organization, admin, subscription = paid_standard(seats=5)
    github = AddOn.objects.get(product__code="tracker", code="github")
    cheapest = _check(client, _key(organization, admin), product="tracker", feature="github-sync")["cheapest"]
    assert cheapest["amount_minor"] == addon_quote(subscription=subscription, addon=github).amount_minor == 508
    # A base ending at its period end can add nothing: the add-on checkout's sentence says so.
    subscription.cancel_at_period_end = True
    subscription.save()
    answer = _check(client, _key(organization, admin), product="tracker", feature="github-sync")
    assert answer["offers"] == []
    assert answer["reason"] == (
        "Tracker Standard does not include github-sync. "
        "Tracker ends on 6 Jan 2027: keep it first, then add GitHub integration."
    )
