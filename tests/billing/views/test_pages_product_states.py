"""A cancelled or suspended product looks it on every page (/app/, /billing/, its workspace),
says what happened and what to do, and never offers to open a workspace that does not work.
A product whose trial was used is offered for sale, with its price, not tried again."""

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.models import Subscription
from common.money import money

from ...conftest import organization_on
from ...factories import MembershipFactory
from ..helpers import workspace_ready

pytestmark = pytest.mark.django_db

PRICE = f"Standard: {money(815, 'USD')} per seat a month"


def _page(client, name, *args) -> str:
    response = client.get(reverse(name, args=args))
    assert response.status_code == 200, response.status_code
    return response.content.decode()


@pytest.fixture
def cancelled_trial(client, catalog):
    organization, admin = organization_on("standard")
    member = MembershipFactory(organization=organization).user
    environment = workspace_ready(organization)
    subscription = organization.subscriptions.get()
    client.force_login(admin)
    client.post(reverse("subscription_manage", args=[subscription.public_id]), {"action": "cancel"})
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.CANCELED
    return organization, admin, member, environment, subscription


def test_a_cancelled_trial_looks_cancelled_everywhere(client, cancelled_trial):
    organization, admin, member, environment, subscription = cancelled_trial
    today = f"{timezone.localtime(subscription.canceled_at):%-d %b %Y}"

    home = _page(client, "home")
    assert "no products yet" not in home
    assert "Cancelled" in home and f"Tracker was cancelled on {today}" in home
    assert 'id="open-workspace"' not in home and "Your workspace is ready" not in home
    assert "This workspace is closed" in home
    assert "Buy Tracker" in home and PRICE in home

    workspace = _page(client, "builtin_workspace", environment.public_id)
    assert "active since" not in workspace and "ready since" not in workspace
    assert f"cancelled on {today}" in workspace and 'id="open-workspace"' not in workspace
    assert "Buy Tracker" in workspace and PRICE in workspace

    status = _page(client, "environment_status", environment.public_id)
    assert "This workspace is closed" in status and 'id="open-workspace"' not in status

    billing = _page(client, "billing")
    assert f"Tracker was cancelled on {today}" in billing and "Buy Tracker" in billing

    client.force_login(member)
    for page in (_page(client, "home"), _page(client, "builtin_workspace", environment.public_id)):
        assert f"Tracker was cancelled on {today}" in page
        assert f"Ask your admin ({admin.email}) if you need Tracker again." in page
        assert "Buy Tracker" not in page and 'id="open-workspace"' not in page


def test_a_suspended_trial_says_why_and_what_to_do(client, catalog):
    organization, admin = organization_on("standard")
    member = MembershipFactory(organization=organization).user
    environment = workspace_ready(organization)
    subscription = organization.subscriptions.get()
    Subscription.objects.filter(pk=subscription.pk).update(
        status=Subscription.Status.SUSPENDED, suspended_at=timezone.now(), trial_ends_at=None
    )
    client.force_login(admin)
    checkout = reverse("checkout", args=[subscription.public_id])
    for page in (_page(client, "home"), _page(client, "builtin_workspace", environment.public_id), _page(client, "billing")):
        assert "has been suspended since" in page and "because its trial ended" in page
        assert f'href="{checkout}"' in page and PRICE in page
    assert 'id="open-workspace"' not in _page(client, "home")
    assert "ready since" not in _page(client, "builtin_workspace", environment.public_id)

    client.force_login(member)
    home = _page(client, "home")
    assert f"Ask your admin ({admin.email}) to buy Tracker." in home
    assert checkout not in home and 'id="open-workspace"' not in home


def test_trying_a_product_whose_trial_was_used_creates_nothing_and_offers_to_buy(client, cancelled_trial):
    organization, admin, member, environment, subscription = cancelled_trial
    assert "Try Tracker" not in _page(client, "billing")
    assert "Try Tracker" not in _page(client, "home")

    response = client.post(reverse("product_trial_start"), {"product": "tracker"})  # an old tab's "Try Tracker"
    assert response.status_code == 302
    assert list(Subscription.objects.filter(organization=organization)) == [subscription]  # nothing created
    billing = client.get(response["Location"]).content.decode()
    assert "has had its Tracker trial already" in billing and money(815, "USD") in billing
    assert "Buy Tracker" in billing

    response = client.post(reverse("product_trial_start"), {"product": "tracker", "buy": "1"})
    bought = Subscription.objects.exclude(pk=subscription.pk).get(organization=organization)
    assert response["Location"] == reverse("checkout", args=[bought.public_id])
    assert bought.trial_ends_at is None and bought.status == Subscription.Status.SUSPENDED


def test_the_trial_offer_on_app_is_for_products_never_tried(client, catalog):
    organization, admin = organization_on("standard")
    workspace_ready(organization)
    client.force_login(admin)
    home = _page(client, "home")
    assert "Try Wiki" in home and "Try Tracker" not in home


def test_a_cancelled_free_edition_never_tried_offers_its_trial_not_a_purchase(client, catalog):
    organization, admin = organization_on("free")
    workspace_ready(organization)
    subscription = organization.subscriptions.get()
    client.force_login(admin)
    client.post(reverse("subscription_manage", args=[subscription.public_id]), {"action": "cancel"})
    home = _page(client, "home")
    assert "Tracker was cancelled on" in home
    assert "Try Tracker" in home and "14 days of Standard free, no card needed" in home
    assert "Buy Tracker" not in home and PRICE not in home
