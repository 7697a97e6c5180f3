"""A trial admin buys by card in headless Chromium, through localstripe's Stripe.js."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from billing.models import Payment, Subscription

from ..conftest import organization_on
from ..factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
TIMEOUT_MS = 20_000


def _log_in(page, live_url, email):
    page.goto(f"{live_url}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login" not in url)


def _enter_card(page, number):
    card = page.locator("#card-element")
    card.get_by_label("Card number").fill(number)
    card.get_by_label("Expiry month (MM)").fill("12")
    card.get_by_label("Expiry year (YY)").fill("34")
    card.get_by_label("Security code (CVC)").fill("123")
    card.get_by_label("Postal code").fill("10001")


@pytest.mark.parametrize(
    ("number", "three_d_secure"), [("4242424242424242", False), ("4000002500003155", True)], ids=["card", "3-D Secure"]
)
def test_trial_admin_pays_by_card(celery_worker, catalog, localstripe, live_server, browser, number, three_d_secure, tmp_path):
    organization, admin = organization_on("standard")
    subscription = organization.subscriptions.get()
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        _log_in(page, live_server.url, admin.email)
        page.goto(f"{live_server.url}/billing/")
        page.click("#billing-tracker > a.button")
        page.locator("input[name=seats]").fill("2")
        expect(page.locator("#quote-total")).to_have_text("USD 16.30")  # 2 x 8.15, before paying
        _enter_card(page, number)
        page.click("#pay")
        if three_d_secure:
            # Once when the card is entered, and again when the bank asks for this charge.
            page.get_by_role("button", name="Complete authentication").click()
            page.get_by_role("button", name="Confirm with my bank").click()
            page.get_by_role("button", name="Complete authentication").click()
        expect(page.locator("#payment")).to_have_attribute("data-status", "succeeded")
        expect(page.locator("#payment")).to_contain_text("Tracker Standard is active with 2 seats")
    except Exception:
        page.screenshot(path=str(tmp_path / "checkout.png"), full_page=True)
        raise
    finally:
        context.close()
    subscription.refresh_from_db()
    assert (subscription.status, subscription.seat_limit, subscription.interval) == (Subscription.Status.ACTIVE, 2, "month")
    assert Payment.objects.get().status == Payment.Status.SUCCEEDED


def test_a_declined_card_shows_the_banks_reason(celery_worker, catalog, localstripe, live_server, browser, tmp_path):
    organization, admin = organization_on("standard")
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        _log_in(page, live_server.url, admin.email)
        page.goto(f"{live_server.url}/billing/checkout/{organization.subscriptions.get().public_id}/")
        _enter_card(page, "4000000000000002")
        page.click("#pay")
        expect(page.locator("#card-error")).to_have_text("Your card was declined.")
    except Exception:
        page.screenshot(path=str(tmp_path / "declined.png"), full_page=True)
        raise
    finally:
        context.close()
    assert not Payment.objects.exists()
    assert organization.subscriptions.get().status == Subscription.Status.TRIALING
