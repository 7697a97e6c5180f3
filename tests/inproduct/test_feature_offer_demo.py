"""The demo product's "Sync with GitHub" in headless Chromium, across Flywheel (live_server) and
the demo product (its own process): the button asks the kit (requestFeature), which shows the
GitHub integration's offer while Acme lacks it, and lets the product sync once it has it. The
demo product reads no entitlements: the kit is its only line to Flywheel."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Membership
from billing.models import AddOnSubscription

from ..billing.helpers import addon_on, workspace_ready
from ..conftest import organization_on
from ..journeys.conftest import (  # noqa: F401
    check_page,
    demo_product,
    kit_card,
    open_workspace,
    people,
    signed_in,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sync_with_github_offers_the_addon_until_acme_has_it(demo_product, people, check_page, settings):  # noqa: F811
    settings.FEEDBACK_SAMPLING_RATE = 0.0
    organization, admin = organization_on("standard", members=2)
    environment = workspace_ready(organization)
    page = signed_in(people, admin)
    # Reduced motion: the offer's card is at its final colours when axe reads them (it fades in).
    page.emulate_media(reduced_motion="reduce")
    open_workspace(page, demo_product, environment)
    # The visit's own message (an admin with nothing pressing: the products to try) ...
    expect(kit_card(page)).to_contain_text("Try another product")

    sync = page.get_by_role("button", name="Sync with GitHub")
    with page.expect_response(lambda response: response.url.endswith("/kit/v1/feature")) as asked:
        sync.click()
    assert asked.value.status == 200 and asked.value.json()["entitled"] is False
    # ... makes way for the feature's offer, which the person asked for.
    card = kit_card(page)
    expect(card).to_have_count(1)
    expect(card.get_by_role("heading")).to_have_text("Add GitHub integration to Tracker")
    expect(card).to_contain_text("per seat per month")
    buy = card.get_by_role("link", name="Add GitHub integration")
    subscription = organization.subscriptions.get()
    expect(buy).to_have_attribute("href", re.compile(rf"/billing/addons/{subscription.public_id}/github/\?.*return_to="))
    expect(card.get_by_role("button", name="Try free for 14 days")).to_be_visible()
    check_page(page, "Tracker offering the GitHub integration")

    # Once Acme has it (bought or tried on Flywheel), the same button syncs.
    addon_on(subscription, "github", status=AddOnSubscription.Status.TRIALING)
    card.get_by_role("button", name="Dismiss").click()
    sync.click()
    expect(page.get_by_role("status").filter(has_text="Tracker is in sync with GitHub")).to_be_visible()
    expect(kit_card(page)).to_have_count(0)
    check_page.assert_clean()


def test_a_member_is_told_to_ask_the_admins(demo_product, people, check_page, settings):  # noqa: F811
    settings.FEEDBACK_SAMPLING_RATE = 0.0
    organization, _ = organization_on("standard", members=2)
    member = Membership.objects.filter(organization=organization, role=Membership.Role.MEMBER).get().user
    environment = workspace_ready(organization)
    page = signed_in(people, member)
    open_workspace(page, demo_product, environment)
    page.get_by_role("button", name="Sync with GitHub").click()
    card = kit_card(page)
    expect(card).to_contain_text("Ask an admin of")
    card.get_by_role("button", name="Ask an admin").click()
    expect(card.locator(".outcome")).to_contain_text("We asked ")
    check_page.assert_clean()
