"""A price page says what it costs in the customer's words (days, dates, proration) and, once
paid, says so before any button: Back after paying never buys a second time."""

from datetime import UTC, datetime

import time_machine
from django.urls import reverse

from billing.models import Invoice, Payment, Subscription
from billing.services import payments
from common.money import money

from ..helpers import paid_organization, visible_text

CHECKOUT_AT = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
SEATS_AT = datetime(2026, 12, 6, 14, 5, tzinfo=UTC)


def _seats_page(client, subscription, seats="7"):
    response = client.get(reverse("add_seats", args=[subscription.public_id]), {"seats": seats})
    assert response.status_code == 302 and "quote=" in response["Location"]
    return response["Location"], client.get(response["Location"])


def test_added_seats_are_priced_in_days_and_the_invoice_says_prorated(client, localstripe, catalog):
    with time_machine.travel(CHECKOUT_AT, tick=False):
        organization, admin, subscription = paid_organization(localstripe, seats=5)
    with time_machine.travel(SEATS_AT, tick=False):
        client.force_login(admin)
        url, page = _seats_page(client, subscription)
        text = visible_text(page.content.decode())
        assert (
            "7 seats × USD 8.15 per month, prorated for the 31 days left in this period, until 6 Jan 2027." in text
        ), text
        assert "seconds" not in text
        response = client.post(
            url, {"seats": "7", "request_key": page.context["request_key"], "quote_token": page.context["quote"].token}
        )
    payment = Payment.objects.get(invoice__kind=Invoice.Kind.SEATS)
    assert response["Location"] == reverse("payment_status", args=[payment.public_id])
    payments.payment_charge(payment_id=payment.pk)
    invoice_page = visible_text(client.get(reverse("invoice", args=[payment.invoice.public_id])).content.decode())
    assert "Tracker Standard: 7 seats × USD 8.15/month, prorated for 6 Dec 2026 – 6 Jan 2027" in invoice_page
    assert f"7 USD 8.15 {money(payment.amount_minor, 'USD')}" in invoice_page  # quantity, unit, amount
    assert "Flywheel Demo Ltd" in invoice_page and "Set SELLER_DETAILS" not in invoice_page


def test_back_after_paying_for_seats_says_they_were_added_and_never_buys_again(client, localstripe, catalog):
    with time_machine.travel(CHECKOUT_AT, tick=False):
        organization, admin, subscription = paid_organization(localstripe, seats=5)
    with time_machine.travel(SEATS_AT, tick=False):
        client.force_login(admin)
        url, page = _seats_page(client, subscription, seats="2")
        assert "no-store" in page["Cache-Control"]  # Back asks the server again
        form = {"seats": "2", "request_key": page.context["request_key"], "quote_token": page.context["quote"].token}
        client.post(url, form)
        payment = Payment.objects.get(invoice__kind=Invoice.Kind.SEATS)
        payments.payment_charge(payment_id=payment.pk)

        back = client.get(url)  # what Back shows now
        text = visible_text(back.content.decode())
        paid = money(payment.amount_minor, "USD")
        assert f"These seats were added on 6 Dec 2026: 2 seats for {paid}. View invoice {payment.invoice.number}" in text
        assert 'id="confirm-seats"' not in back.content.decode() and "Pay USD" not in text

        again = client.post(url, form)  # the old form, sent again
    assert again["Location"] == reverse("payment_status", args=[payment.public_id])
    assert Invoice.objects.filter(kind=Invoice.Kind.SEATS).count() == 1
    assert Payment.objects.filter(invoice__kind=Invoice.Kind.SEATS).count() == 1
    assert Subscription.objects.get(pk=subscription.pk).seat_limit == 7


def test_checkout_of_a_paid_subscription_says_so_before_any_button(client, localstripe, catalog):
    with time_machine.travel(CHECKOUT_AT, tick=False):
        organization, admin, subscription = paid_organization(localstripe, seats=5)
        client.force_login(admin)
        page = client.get(reverse("checkout", args=[subscription.public_id]))
    assert "no-store" in page["Cache-Control"]
    html = page.content.decode()
    invoice = Invoice.objects.get(kind=Invoice.Kind.CONVERSION)
    assert (
        f"Tracker Standard is paid for since 6 Dec 2026: 5 seats, renews on 6 Jan 2027. View invoice {invoice.number}"
        in visible_text(html)
    )
    assert 'id="pay"' not in html and "card-element" not in html


def test_added_seats_cost_exactly_the_price_shown_and_a_stale_price_is_refused(client, localstripe, catalog):
    from datetime import timedelta

    with time_machine.travel(CHECKOUT_AT, tick=False):
        organization, admin, subscription = paid_organization(localstripe, seats=5)
    with time_machine.travel(SEATS_AT, tick=False):
        client.force_login(admin)
        url, page = _seats_page(client, subscription, seats="3")
        shown = page.context["quote"].amount_minor
        stale_url, stale = _seats_page(client, subscription, seats="3")
    form = {"seats": "3", "request_key": stale.context["request_key"], "quote_token": stale.context["quote"].token}
    with time_machine.travel(SEATS_AT + timedelta(minutes=16), tick=False):
        client.force_login(admin)
        refused = client.post(stale_url, form)
    assert refused.status_code == 400
    text = visible_text(refused.content.decode())
    assert "This price was shown more than 15 minutes ago" in text and "Pay USD" in text  # the new price
    assert not Invoice.objects.filter(kind=Invoice.Kind.SEATS).exists()

    with time_machine.travel(SEATS_AT + timedelta(minutes=10), tick=False):
        client.force_login(admin)
        client.post(url, {"seats": "3", "request_key": page.context["request_key"], "quote_token": page.context["quote"].token})
    payment = Payment.objects.get(invoice__kind=Invoice.Kind.SEATS)
    assert payment.amount_minor == shown  # ten minutes later, still the price that was shown
