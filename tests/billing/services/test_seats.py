"""Adding seats with one click: the prorated price shown first, one charge per request, the
seats granted when the charge succeeds."""

import threading
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from billing import gateway, pricing
from billing.exceptions import CheckoutInvalid
from billing.models import Invoice, Payment, Subscription
from billing.services import payments, seats
from billing.services.seats import seats_quote, subscription_add_seats

from ...conftest import organization_on
from ..helpers import paid_organization


@pytest.mark.parametrize(
    ("full", "left", "period", "expected"),
    [
        (815, 15 * 86400, 30 * 86400, 408),  # 407.5 rounds half up
        (815, 30 * 86400, 30 * 86400, 815),  # the whole period
        (815, 1, 30 * 86400, 0),  # a second left rounds to nothing
        (8150 * 3, 100 * 86400, 365 * 86400, 6699),  # 6698.63...
        (815, 40 * 86400, 30 * 86400, 815),  # never more than the whole period
    ],
)
def test_proration_arithmetic(full, left, period, expected):
    assert pricing.prorate(full_amount_minor=full, seconds_left=left, seconds_in_period=period) == expected


def test_seats_added_mid_period_cost_the_prorated_price(localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe, seats=5, interval="month")
    period = (subscription.current_period_end - subscription.current_period_start).total_seconds()
    with time_machine.travel(subscription.current_period_start + timedelta(seconds=period / 2), tick=False):
        quote = seats_quote(subscription=subscription, seats=2)
        assert quote.amount_minor == pricing.prorate(
            full_amount_minor=2 * 815, seconds_left=int(period / 2), seconds_in_period=int(period)
        )
        assert quote.amount_minor == 815  # half a month of two seats
        assert quote.new_seat_limit == 7
        payment = subscription_add_seats(
            subscription=subscription, actor=admin, seats=2, request_key=uuid.uuid4().hex
        )
    assert payment.amount_minor == 815 and payment.invoice.kind == Invoice.Kind.SEATS
    assert Subscription.objects.get(pk=subscription.pk).seat_limit == 5  # not before payment
    payments.payment_charge(payment_id=payment.pk)
    assert Subscription.objects.get(pk=subscription.pk).seat_limit == 7


def test_double_click_charges_once(localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe)
    key = uuid.uuid4().hex
    first = subscription_add_seats(subscription=subscription, actor=admin, seats=1, request_key=key)
    second = subscription_add_seats(subscription=subscription, actor=admin, seats=1, request_key=key)
    assert first.pk == second.pk
    payments.payment_charge(payment_id=first.pk)
    payments.payment_charge(payment_id=second.pk)
    assert Subscription.objects.get(pk=subscription.pk).seat_limit == 6
    assert Invoice.objects.filter(kind=Invoice.Kind.SEATS).count() == 1
    assert len(gateway.payment_intents_of_customer(organization.billing_account.stripe_customer_id)) == 2  # purchase + seats


def test_seats_beyond_the_edition_or_before_paying_are_refused(localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe, seats=99)
    with pytest.raises(CheckoutInvalid, match="allows at most 100 users and you have 99 seats"):
        subscription_add_seats(subscription=subscription, actor=admin, seats=2, request_key="k1")
    trial, trial_admin = organization_on("standard")
    with pytest.raises(CheckoutInvalid, match="is not paid for yet"):
        seats_quote(subscription=trial.subscriptions.get(), seats=1)
    assert not Invoice.objects.filter(kind=Invoice.Kind.SEATS).exists()


def test_stripe_down_during_add_seats_grants_nothing_and_the_retry_charges_once(localstripe, catalog, settings):
    organization, admin, subscription = paid_organization(localstripe)
    payment = seats.subscription_add_seats(subscription=subscription, actor=admin, seats=3, request_key="down")
    real_base = settings.STRIPE_API_BASE
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    assert not payments.payment_charge(payment_id=payment.pk).done
    assert Subscription.objects.get(pk=subscription.pk).seat_limit == 5
    settings.STRIPE_API_BASE = real_base
    payments.payment_charge(payment_id=payment.pk)
    assert Subscription.objects.get(pk=subscription.pk).seat_limit == 8
    assert len(gateway.payment_intents_of_customer(organization.billing_account.stripe_customer_id)) == 2


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_add_one_seat_requests(localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe, seats=5)
    barrier = threading.Barrier(20)
    errors: list[str] = []

    def add_one():
        try:
            barrier.wait()
            payment = subscription_add_seats(
                subscription=subscription, actor=admin, seats=1, request_key=uuid.uuid4().hex
            )
            payments.payment_charge(payment_id=payment.pk)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=add_one) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert Subscription.objects.get(pk=subscription.pk).seat_limit == 25
    seat_payments = Payment.objects.filter(invoice__kind=Invoice.Kind.SEATS)
    assert seat_payments.count() == 20 and all(p.status == Payment.Status.SUCCEEDED for p in seat_payments)
    intents = gateway.payment_intents_of_customer(organization.billing_account.stripe_customer_id)
    assert len(intents) == 21  # the purchase and twenty seat charges
    numbers = sorted(int(number.split("-")[1]) for number in Invoice.objects.values_list("number", flat=True))
    assert numbers == list(range(numbers[0], numbers[0] + 21))  # no gaps


def test_add_seats_page_shows_the_price_then_one_click(client, localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe)
    client.force_login(admin)
    assert "See the price" in client.get(reverse("billing")).content.decode()
    page = client.get(reverse("add_seats", args=[subscription.public_id]), {"seats": "2"}, follow=True).content.decode()
    assert 'id="seats-total"' in page and "You will have 7 seats as soon as the payment goes through" in page
    key = page.split('name="request_key" value="')[1].split('"')[0]
    token = page.split('name="quote_token" value="')[1].split('"')[0]
    form = {"seats": "2", "request_key": key, "quote_token": token}
    response = client.post(reverse("add_seats", args=[subscription.public_id]), form)
    again = client.post(reverse("add_seats", args=[subscription.public_id]), form)
    assert response.status_code == again.status_code == 302 and response["Location"] == again["Location"]
    payments.payment_charge(payment_id=Payment.objects.get(invoice__kind=Invoice.Kind.SEATS).pk)
    assert "2 seats added to Tracker" in client.get(response["Location"]).content.decode()
    refused = client.get(reverse("add_seats", args=[subscription.public_id]), {"seats": "500"}, follow=True).content.decode()
    assert "allows at most 100 users" in refused

    other, other_admin = organization_on("standard")
    client.force_login(other_admin)
    assert client.get(reverse("add_seats", args=[subscription.public_id])).status_code == 404
    assert timezone.now()  # the clock is real again
