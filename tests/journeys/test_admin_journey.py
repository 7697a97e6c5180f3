"""An admin, at 1280 px and at 390 px: /app/ with the trial's days left, the members page
(with the public user id the API needs), an invitation, billing with the trial and a paid
product, the exact price of more seats before paying, the NPS report, the API keys page and
/api/. axe-core
and the sideways-scroll check run on every page (tests/journeys/conftest.py)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Invite
from billing.models import Subscription
from billing.services import billing_account, checkout, payments, seats, subscriptions
from catalog.selectors import edition_get
from common.money import money

from ..conftest import organization_on
from ..factories import PASSWORD
from .conftest import main_text, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def paid_wiki(localstripe, organization, admin) -> Subscription:
    """Wiki Standard, 5 seats, monthly, paid by card (what the checkout page and the worker do)."""
    wiki_standard = edition_get(product_code="wiki", edition_code="standard")
    wiki = subscriptions.subscription_start_trial(organization=organization, edition=wiki_standard, actor=admin)
    intent = billing_account.card_setup_start(organization=organization, actor=admin)
    localstripe.enter_card(intent.client_secret, "4242424242424242")
    billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=intent.id)
    payment = checkout.subscription_checkout(
        subscription=wiki, actor=admin, edition=wiki_standard, seats=5, interval="month"
    )
    payments.payment_charge(payment_id=payment.pk)
    wiki.refresh_from_db()
    assert wiki.status == Subscription.Status.ACTIVE
    return wiki


def test_admin_sees_the_trial_members_billing_seat_prices_and_api_keys(
    catalog, localstripe, live_server, people, check_page, viewport
):
    organization, admin = organization_on("standard", members=3)
    wiki = paid_wiki(localstripe, organization, admin)
    colleague = f"casey@{organization.email_domain}"
    page = people.open()
    sign_in(page, admin.email, PASSWORD, check_page)

    # 1. /app/: both products, the trial's days left and a way to buy it.
    page.goto("/app/")
    check_page(page, "home")
    home = main_text(page)
    assert organization.name in home and "Tracker" in home and "Wiki" in home, home
    check_page.soft(re.search(r"\b1[34] days\b", home), f"/app/ says the trial's days left:\n{home}")
    check_page.soft(page.locator("main a", has_text=re.compile(r"^\s*Buy\b")).count(), "/app/ has a Buy link")
    check_page.soft(page.locator("header a[href='/app/api-keys/']").count(), "the admin's menu links API keys")

    # 2. Members: the three of them, the public user id to copy, and an invitation.
    page.goto("/app/members/")
    check_page(page, "members")
    expect(page.locator("#members tr.member")).to_have_count(3)
    expect(page.locator(f'#members tr.member[data-email="{admin.email}"]')).to_be_visible()
    check_page.soft(str(admin.public_id) in main_text(page), "the members page shows the public user id")
    form = page.locator("#invite-form")
    form.locator("input[name=email]").fill(colleague)
    form.locator("button[type=submit]").click()
    expect(page.locator("main")).to_contain_text(f"Invitation sent to {colleague}")
    expect(page.locator(f'#invites tr.invite[data-email="{colleague}"]')).to_be_visible()
    check_page(page, "members after inviting")
    assert Invite.objects.filter(organization=organization, email=colleague, status=Invite.Status.PENDING).exists()

    # 3. Billing: the trial (days left, Buy) and the paid Wiki with its seats and renewal.
    page.goto("/billing/")
    check_page(page, "billing")
    tracker_section = page.locator("#billing-tracker")
    expect(tracker_section).to_contain_text("Standard")
    expect(tracker_section.get_by_role("link", name="Buy Tracker").first).to_be_visible()
    tracker_text = tracker_section.inner_text()
    check_page.soft(re.search(r"\b1[34] days\b", tracker_text), f"/billing/ says the trial's days left:\n{tracker_text}")
    wiki_section = page.locator("#billing-wiki")
    expect(wiki_section).to_contain_text("Active")
    expect(wiki_section).to_contain_text("5 seats")
    expect(wiki_section).to_contain_text(wiki.current_period_end.strftime("%-d %b %Y"))

    # 4. Two more Wiki seats: the exact prorated price, in days, before any money moves.
    before = seats.seats_quote(subscription=wiki, seats=2).amount_minor
    wiki_section.locator("form.add-seats input[name=seats]").fill("2")
    wiki_section.locator("form.add-seats button[type=submit]").click()
    expect(page.get_by_role("heading", name="Add seats to Wiki Standard")).to_be_visible()
    check_page(page, "add seats price")
    after = seats.seats_quote(subscription=wiki, seats=2).amount_minor
    total = page.locator("#seats-total").inner_text().strip()
    assert total in {money(before, "USD"), money(after, "USD")}, total
    assert 0 < after <= 2 * wiki.edition.monthly_price_minor
    preview = main_text(page)
    assert f"2 seats × {money(wiki.edition.monthly_price_minor, 'USD')}" in preview, preview
    assert "7 seats" in preview, preview
    check_page.soft("seconds" not in preview and re.search(r"\d+ days?\b", preview),
                    f"the seats price says the time left in days, not seconds:\n{preview}")
    wiki.refresh_from_db()
    assert wiki.seat_limit == 5  # nothing bought by looking

    # 5. The NPS report of the organization quotes the question its users were asked.
    page.goto("/app/feedback/")
    check_page(page, "feedback report")
    report = main_text(page)
    assert "NPS" in report or "recommend" in report, report
    check_page.soft("recommend us" not in report, "the NPS report quotes the survey's question ('recommend Tracker')")

    # 6. API keys, and /api/ for developers pointing at them.
    page.goto("/app/api-keys/")
    check_page(page, "API keys")
    expect(page.get_by_role("heading", name=re.compile("API keys", re.IGNORECASE)).first).to_be_visible()
    expect(page.locator("#api-key-form")).to_be_visible()
    response = page.goto("/api/")
    if check_page.soft(response is not None and response.status == 200,
                       f"/api/ answers a page for developers (HTTP {response.status if response else None})"):
        check_page(page, "/api/")
        check_page.soft(page.locator("main a[href='/app/api-keys/']").count(), "/api/ links the API keys page")

    check_page.assert_clean()
