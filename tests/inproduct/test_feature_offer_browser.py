"""A denied feature's offer in headless Chromium: the product's page (strict CSP, hostile
stylesheet: test_kit_browser.py's ProductSite) calls `element.requestFeature("github-sync")` as its
"Sync with GitHub" button does; the kit shows the cheapest offer with its price to an admin,
with the way to Flywheel's page that buys it and back, and "ask the admins" to a member."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from accounts.models import Membership
from experiments.models import Event

from ..conftest import organization_on, wait_for
from ..journeys.conftest import TIMEOUT_MS
from .kit_site import kit_problems

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REQUEST = "() => document.querySelector('flywheel-kit').requestFeature('github-sync')"


@pytest.fixture
def acme(settings):
    """Acme on a Tracker Standard trial (no message due on its own): its admin and a member."""
    settings.FEEDBACK_SAMPLING_RATE = 0.0
    organization, admin = organization_on("standard", members=2)
    organization.name = "Acme"
    organization.save()
    admin.first_name, admin.last_name = "Ada", "Lovelace"
    admin.save()
    member = Membership.objects.filter(organization=organization, role=Membership.Role.MEMBER).get().user
    return organization, admin, member


def _ready(page):
    page.wait_for_function("() => customElements.get('flywheel-kit') !== undefined")


def test_an_admin_sees_the_price_and_the_way_to_buy_and_to_try(product_site, open_page, acme):  # noqa: F811
    organization, admin, _ = acme
    product_site.person = (admin, organization)
    page = open_page(product_site.url + "/")
    _ready(page)
    assert page.evaluate(REQUEST) == {"entitled": False}

    card = page.locator("flywheel-kit").locator("section")
    expect(card).to_be_visible(timeout=TIMEOUT_MS)
    expect(card.get_by_role("heading")).to_have_text("Add GitHub integration to Tracker")
    expect(card.locator(".price")).to_contain_text("GitHub integration: USD ")
    expect(card.locator(".price")).to_contain_text("per seat per month")
    buy = card.get_by_role("link", name="Add GitHub integration")
    href = buy.get_attribute("href")
    subscription = organization.subscriptions.get()
    assert href.startswith(f"{product_site.flywheel}/billing/addons/{subscription.public_id}/github/"), href
    query = parse_qs(urlparse(href).query)
    assert query["return_to"] == [product_site.url + "/"] and query["organization"] == [str(organization.public_id)]
    assert page.evaluate("window.cspViolations") == []
    assert kit_problems(page) == []
    wait_for(
        lambda: Event.objects.filter(name="kit_message_shown", user=admin, properties__type="feature_offer").exists(),
        what="the shown event",
    )

    card.get_by_role("button", name="Try free for 14 days").click()
    expect(card.locator(".outcome")).to_contain_text("Your GitHub integration trial has started: 14 days, free, until ")
    assert page.evaluate(REQUEST) == {"entitled": True}
    wait_for(
        lambda: Event.objects.filter(name="kit_trial_started", user=admin, properties__addon="github").exists(),
        what="the trial's event",
    )


def test_a_member_asks_the_admins(product_site, open_page, acme):  # noqa: F811
    organization, _, member = acme
    product_site.person = (member, organization)
    page = open_page(product_site.url + "/")
    _ready(page)
    assert page.evaluate(REQUEST) == {"entitled": False}
    card = page.locator("flywheel-kit").locator("section")
    expect(card.get_by_text("Admins of Acme: Ada Lovelace")).to_be_visible(timeout=TIMEOUT_MS)
    expect(card.locator(".price")).to_have_count(0)
    card.get_by_role("button", name="Ask an admin").click()
    expect(card.locator(".outcome")).to_have_text("We asked Ada Lovelace (admin of Acme).")
    assert kit_problems(page) == []
