"""`return_to` on billing's pages (the kit's link actions pass the product page): carried from
page to page, "Back to <product>" once done, and only ever to a product's origin
(catalog.selectors.origin_is_a_products); any other address is ignored."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.urls import reverse

from billing.models import Invoice, Payment
from billing.services import payments

from ..helpers import card_enter, paid_organization, visible_text

pytestmark = pytest.mark.django_db

PRODUCT_PAGE = "http://127.0.0.1:8001/w/4a7f2c3e-0000-4000-8000-000000000001/"
ELSEWHERE = "https://evil.example/w/phish/"


@pytest.fixture(autouse=True)
def demo_product_origin(settings):
    settings.DEMO_PRODUCT_URL = "http://127.0.0.1:8001"


def test_added_seats_carry_the_way_back_and_the_paid_page_offers_back_to_the_product(client, localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe, seats=5)
    client.force_login(admin)

    start = client.get(reverse("add_seats", args=[subscription.public_id]), {"seats": "2", "return_to": PRODUCT_PAGE})
    assert start.status_code == 302 and f"return_to={quote(PRODUCT_PAGE, safe='')}" in start["Location"]
    page = client.get(start["Location"])
    html = page.content.decode()
    assert f'name="return_to" value="{PRODUCT_PAGE}"' in html
    confirmed = client.post(
        start["Location"],
        {"seats": "2", "request_key": page.context["request_key"], "quote_token": page.context["quote"].token,
         "return_to": PRODUCT_PAGE},
    )
    payment = Payment.objects.get(invoice__kind=Invoice.Kind.SEATS)
    assert confirmed["Location"] == f"{reverse('payment_status', args=[payment.public_id])}?return_to={quote(PRODUCT_PAGE, safe='')}"

    pending = client.get(confirmed["Location"]).content.decode()
    assert "Back to Tracker" not in pending  # nothing to go back to before it is paid
    assert f"return_to={quote(PRODUCT_PAGE, safe='')}" in pending  # the page's poll keeps it
    payments.payment_charge(payment_id=payment.pk)
    paid = client.get(confirmed["Location"]).content.decode()
    assert f'<a class="button" id="return-to" href="{PRODUCT_PAGE}">Back to Tracker</a>' in paid
    assert "Back to billing" in paid


def test_an_address_that_is_not_a_products_is_ignored_everywhere(client, localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe, seats=5)
    client.force_login(admin)
    for address in (ELSEWHERE, "javascript:alert(1)", "//evil.example/", "/billing/", "http://127.0.0.1:8002/"):
        billing = client.get(reverse("billing"), {"return_to": address}).content.decode()
        assert 'id="return-trip"' not in billing and "evil.example" not in billing, address
        start = client.get(reverse("add_seats", args=[subscription.public_id]), {"seats": "1", "return_to": address})
        page = client.get(start["Location"]).content.decode()
        assert 'name="return_to"' not in page, address
        card = client.get(reverse("card_update"), {"return_to": address}).content.decode()
        assert 'name="return_to"' not in card, address


def test_the_billing_page_leads_on_with_the_way_back(client, localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe, seats=5)
    client.force_login(admin)
    html = client.get(reverse("billing"), {"return_to": PRODUCT_PAGE}).content.decode()
    assert f'<a href="{PRODUCT_PAGE}">← Back to Tracker</a>' in html
    assert f'{reverse("card_update")}?return_to={quote(PRODUCT_PAGE, safe="")}' in html
    assert html.count(f'name="return_to" value="{PRODUCT_PAGE}"') >= 3  # add seats, change edition, remove, cancel


def test_the_billing_pages_own_prompt_keeps_the_way_back(client, localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe, seats=1)
    client.force_login(admin)
    html = client.get(reverse("billing"), {"return_to": PRODUCT_PAGE}).content.decode()
    add_seats = reverse("add_seats", args=[subscription.public_id])
    assert f'href="{add_seats}?return_to={quote(PRODUCT_PAGE, safe="")}"' in html  # 1 of 1 seat: "Add seats"


def test_a_new_card_saved_from_the_product_goes_straight_back_to_it(client, localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe, seats=5)
    client.force_login(admin)
    page = client.get(reverse("card_update"), {"return_to": PRODUCT_PAGE}).content.decode()
    assert f'name="return_to" value="{PRODUCT_PAGE}"' in page
    assert f'href="{PRODUCT_PAGE}">Cancel</a>' in page
    intent, _ = card_enter(localstripe, organization, admin, "5555555555554444")
    saved = client.post(reverse("card_update"), {"setup_intent": intent.id, "return_to": PRODUCT_PAGE})
    assert saved.status_code == 302 and saved["Location"] == PRODUCT_PAGE


def test_a_trial_bought_from_the_product_is_paid_then_offers_back(client, localstripe, catalog):
    from ...conftest import organization_on

    organization, admin = organization_on("standard")
    subscription = organization.subscriptions.get()
    client.force_login(admin)
    checkout = client.get(reverse("checkout", args=[subscription.public_id]), {"return_to": PRODUCT_PAGE})
    html = checkout.content.decode()
    assert f'name="return_to" value="{PRODUCT_PAGE}"' in html
    intent = checkout.context["setup"]
    localstripe.enter_card(intent.client_secret, "4242424242424242")
    paid = client.post(
        reverse("checkout", args=[subscription.public_id]),
        {"edition": "standard", "seats": "1", "interval": "month", "setup_intent": intent.id, "return_to": PRODUCT_PAGE},
    )
    assert paid.status_code == 302 and paid["Location"].endswith(f"?return_to={quote(PRODUCT_PAGE, safe='')}")
    payment = Payment.objects.get(invoice__subscription=subscription)
    payments.payment_charge(payment_id=payment.pk)
    text = visible_text(client.get(paid["Location"]).content.decode())
    assert "Back to Tracker" in text and "Paid" in text
