"""The billing journey in headless Chromium: a Free organization at its seat limit is refused an
11th invite, the product's in-product prompt leads the admin to billing, the admin buys Standard
by card, adds seats (prorated), then tries Wiki, whose workspace the worker prepares.

localstripe stands in for Stripe (its fake Stripe.js card element in the checkout page); the
real Celery worker charges the card and provisions the workspaces.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import expect

from accounts.api_keys import api_key_create
from accounts.models import Invite
from billing.models import Invoice, Payment, Subscription
from provisioning.models import Environment

from ..conftest import organization_on
from ..factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
TIMEOUT_MS = 20_000


def _log_in(page, email):
    page.goto("/accounts/login/")
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


def _prompts(live_url, raw_key, user):
    """What the product's servers get from the prompts API for `user`."""
    response = requests.get(
        f"{live_url}/api/v1/prompts",
        params={"user": str(user.public_id)},
        headers={"Authorization": f"Bearer {raw_key}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_free_at_its_seat_limit_buys_adds_seats_and_tries_wiki(
    celery_worker, catalog, localstripe, live_server, settings, browser, tmp_path
):
    # Prompt links point at the live server (the prompts are built in the live server's thread).
    settings.SITE_URL = live_server.url
    organization, admin = organization_on("free", members=10)
    tracker = organization.subscriptions.get()
    _, raw_key = api_key_create(organization=organization, actor=admin, name="Tracker servers")

    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        _log_in(page, admin.email)

        # 1. An 11th person is refused, naming Free's limit and the bigger edition.
        page.goto("/app/members/")
        expect(page.locator("#members tr.member")).to_have_count(10)
        page.fill("#invite-form input[name=email]", f"eleventh@{organization.email_domain}")
        page.click("#invite-form button[type=submit]")
        refusal = page.locator("#invite-form")
        expect(refusal).to_contain_text("Tracker Free allows 10 users")
        expect(refusal).to_contain_text(f"{organization.name} already has 10")
        expect(refusal).to_contain_text("Tracker Standard (up to 100 users)")
        assert not Invite.objects.filter(organization=organization).exists()

        # 2. The product asks the API what to tell its admin: all seats are taken.
        found = [p for p in _prompts(live_server.url, raw_key, admin) if p["kind"] == "seat_limit_reached"]
        assert len(found) == 1, found
        prompt = found[0]
        assert (prompt["product"], prompt["threshold"]) == ("tracker", "10")
        assert "All 10 seats of Tracker Free are taken" in prompt["title"]
        assert prompt["cta_label"]
        cta = urlsplit(prompt["cta_url"])
        assert cta.path.startswith("/billing/"), prompt["cta_url"]
        # Open the call to action in the browser, as the product would link it.
        page.goto(prompt["cta_url"] if cta.scheme else "/billing/")
        if cta.scheme:
            # The link names the organization; the page drops that once it has switched to it.
            assert f"organization={organization.public_id}" in cta.query
            expect(page).to_have_url(prompt["cta_url"].replace(f"&organization={organization.public_id}", ""))
        expect(page.get_by_role("heading", name="Buy Tracker")).to_be_visible()

        # 3. The billing page's Upgrade leads to the same checkout; buy Standard there.
        page.goto("/billing/")
        upgrade = page.locator("#billing-tracker > a.button")
        expect(upgrade).to_have_text("Upgrade")
        expect(upgrade).to_have_attribute("href", f"/billing/checkout/{tracker.public_id}/")
        upgrade.click()
        page.select_option("select[name=edition]", "standard")
        page.locator("input[name=seats]").fill("12")
        page.check("input[name=interval][value=month]")
        expect(page.locator("#quote-total")).to_have_text("USD 97.80")  # 12 x 8.15, before paying
        expect(page.locator("#quote")).to_contain_text("12 seats × USD 8.15 per seat per month")
        _enter_card(page, "4242424242424242")
        page.click("#pay")
        payment = page.locator("#payment")
        expect(payment).to_have_attribute("data-status", "succeeded")
        expect(payment).to_contain_text("USD 97.80")
        expect(payment).to_contain_text("Tracker Standard is active with 12 seats")

        # Ten of twelve seats in use: the prompt is gone.
        assert not [p for p in _prompts(live_server.url, raw_key, admin) if p["kind"] == "seat_limit_reached"]

        # 4. Back on billing, add 5 seats: the exact prorated price, then one click.
        payment.get_by_role("link", name="Back to billing").click()
        section = page.locator("#billing-tracker")
        expect(section).to_contain_text("Active")
        expect(section).to_contain_text("12 seats")
        section.locator("form.add-seats input[name=seats]").fill("5")
        section.locator("form.add-seats button[type=submit]").click()
        expect(page.get_by_role("heading", name="Add seats to Tracker Standard")).to_be_visible()
        explained = page.locator("#seats-explained").inner_text()
        assert re.search(
            r"5 seats × USD 8\.15 per month, prorated for the \d+ days? left in this period, until \d{1,2} \w{3} \d{4}\.",
            explained,
        ), explained
        seats_price = page.locator("#seats-total").inner_text()
        seats_minor = int(seats_price.removeprefix("USD ").replace(",", "").replace(".", ""))
        assert 0 < seats_minor <= 5 * 815
        expect(page.locator("main")).to_contain_text("You will have 17 seats as soon as the payment goes through")
        page.click("#confirm-seats")
        expect(payment).to_have_attribute("data-status", "succeeded")
        expect(payment).to_contain_text(seats_price)
        expect(payment).to_contain_text("5 seats added to Tracker")
        payment.get_by_role("link", name="Back to billing").click()
        expect(section).to_contain_text("17 seats")

        # 5. Try Wiki: the home page shows its workspace being prepared, then ready.
        page.click("#try-wiki")
        expect(page).to_have_url(re.compile(r"/app/$"))
        expect(page.locator("ul.messages")).to_contain_text("Your Wiki Standard trial has started")
        expect(page.locator("#subscription-wiki")).to_contain_text("Trialing")
        wiki_environment = Environment.objects.get(organization=organization, product__code="wiki")
        status = page.locator(f"#environment-{wiki_environment.public_id}")
        expect(status).to_be_visible()
        expect(status).to_have_attribute("data-status", "active")
        expect(status).to_contain_text("Your workspace is ready")
        expect(status.locator("#open-workspace")).to_have_text("Open Wiki")
    except Exception:
        page.screenshot(path=str(tmp_path / "billing-journey.png"), full_page=True)
        raise
    finally:
        context.close()

    tracker.refresh_from_db()
    assert (tracker.status, tracker.edition.code, tracker.seat_limit, tracker.interval) == (
        Subscription.Status.ACTIVE, "standard", 17, "month"
    )
    invoices = list(Invoice.objects.filter(organization=organization).order_by("issued_at", "pk"))
    assert [(invoice.kind, invoice.status, invoice.total_minor) for invoice in invoices] == [
        (Invoice.Kind.CONVERSION, Invoice.Status.PAID, 9780),
        (Invoice.Kind.SEATS, Invoice.Status.PAID, seats_minor),
    ]
    assert all(invoice.subscription_id == tracker.pk for invoice in invoices)
    assert invoices[1].seats_delta == 5
    payments = Payment.objects.filter(invoice__organization=organization)
    assert sorted(payments.values_list("status", flat=True)) == [Payment.Status.SUCCEEDED] * 2
    wiki = Subscription.objects.get(organization=organization, product__code="wiki")
    assert (wiki.status, wiki.edition.code, wiki.trial_ends_at is not None) == (
        Subscription.Status.TRIALING, "standard", True
    )
    assert Environment.objects.get(organization=organization, product__code="wiki").status == Environment.Status.ACTIVE
    assert not Invite.objects.filter(organization=organization).exists()
