"""The card form in development (localstripe's Stripe.js): it asks for MM / YY, takes a year
typed in four digits, and says what is wrong in words."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from billing.models import BillingAccount

from ..conftest import organization_on
from ..factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
TIMEOUT_MS = 20_000


def test_a_four_digit_expiry_year_is_taken_and_errors_are_words(catalog, localstripe, live_server, browser, tmp_path):
    organization, admin = organization_on("standard")
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=login]", admin.email)
        page.fill("input[name=password]", PASSWORD)
        page.click("form button[type=submit]")
        page.wait_for_url(lambda url: "/accounts/login" not in url)
        page.goto(f"{live_server.url}/billing/card/")
        expect(page.locator("#card-help")).to_contain_text("expiry date as MM / YY (for example 04 / 30)")
        card = page.locator("#card-element")
        expect(card.get_by_label("Expiry year (YY)")).to_be_visible()

        # A number Stripe refuses: the answer is words, never "Bad request".
        card.get_by_label("Card number").fill("1234")
        card.get_by_label("Expiry month (MM)").fill("4")
        card.get_by_label("Expiry year (YY)").fill("2030")
        card.get_by_label("Security code (CVC)").fill("123")
        card.get_by_label("Postal code").fill("10001")
        page.click("#save-card")
        error = page.locator("#card-error")
        expect(error).not_to_be_empty()
        assert "bad request" not in error.inner_text().lower()
        assert BillingAccount.objects.filter(organization=organization, payment_method_id="").exists()  # nothing stored

        # The year typed as 2030 is taken as 30.
        card.get_by_label("Card number").fill("4242424242424242")
        card.get_by_label("Expiry year (YY)").fill("2030")
        page.click("#save-card")
        page.wait_for_url(lambda url: url.endswith("/billing/"))
        expect(page.locator("#card-on-file")).to_contain_text("Visa ending 4242, expires 4/2030")
    except Exception:
        page.screenshot(path=str(tmp_path / "card-form.png"), full_page=True)
        raise
    finally:
        context.close()
    account = BillingAccount.objects.get(organization=organization)
    assert (account.card_last4, account.card_exp_month, account.card_exp_year) == ("4242", 4, 2030)
