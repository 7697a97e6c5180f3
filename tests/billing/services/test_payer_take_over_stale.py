"""A take-over is good only for what it priced: one term of one edition, seat count and set of
add-ons. A declined one is voided by the renewal and by the partner's changes, a stale one is
refused at pay-now and, if paid anyway, refunded and never applied; the partner's own declined
invoices are voided at the take-over and cannot be paid after it. (Review of issue 22: H1, H2, M1.)"""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.db import transaction

from billing.exceptions import CheckoutInvalid
from billing.models import CreditNote, Invoice, Payment, Subscription
from billing.services import lifecycle
from billing.services.invoices import invoice_mark_paid
from billing.services.payer import (
    subscription_payer_take_over_now,
    subscription_payer_take_over_quote,
)
from billing.services.payments import invoice_pay_now
from billing.services.seats import subscription_add_seats

from ...factories import UserFactory
from ..helpers import DECLINED_AT_CHARGE, OK_CARD, card_set_up, partner_buys

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_tasks")]


def _declined_take_over(localstripe, subscription, customer, customer_admin):
    card_set_up(localstripe, customer, customer_admin, DECLINED_AT_CHARGE)
    quote = subscription_payer_take_over_quote(subscription=subscription)
    failed = subscription_payer_take_over_now(subscription=subscription, actor=customer_admin, request_key="t-1", quote_token=quote.token)
    failed.refresh_from_db()
    assert failed.status == Payment.Status.FAILED
    return failed


def test_the_renewal_voids_a_declined_take_over_so_it_cannot_take_the_partners_new_year(localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, bought = partner_buys(localstripe, seats=5)
    with time_machine.travel(subscription.current_period_start + timedelta(days=300), tick=False):
        failed = _declined_take_over(localstripe, subscription, customer, customer_admin)
    renew_at = subscription.current_period_end + timedelta(hours=1)
    with time_machine.travel(renew_at, tick=False):
        lifecycle.lifecycle_tick()
    renewal = Invoice.objects.get(kind=Invoice.Kind.RENEWAL)
    assert renewal.status == Invoice.Status.PAID and renewal.bill_to == partner
    failed.invoice.refresh_from_db()
    assert failed.invoice.status == Invoice.Status.VOID
    with time_machine.travel(renew_at + timedelta(days=1), tick=False):
        card_set_up(localstripe, customer, customer_admin, OK_CARD)
        with pytest.raises(CheckoutInvalid, match=f"Invoice {failed.invoice.number} is void; there is nothing to pay"):
            invoice_pay_now(invoice=failed.invoice, actor=customer_admin)
    subscription.refresh_from_db()
    assert subscription.billed_to == partner
    assert not CreditNote.objects.filter(invoice=renewal).exists()
    assert failed.invoice.payments.filter(status=Payment.Status.SUCCEEDED).count() == 0


def test_a_take_over_whose_term_is_over_is_refused_at_pay_now_before_the_renewal_runs(localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, bought = partner_buys(localstripe, seats=5)
    with time_machine.travel(subscription.current_period_start + timedelta(days=300), tick=False):
        failed = _declined_take_over(localstripe, subscription, customer, customer_admin)
    with time_machine.travel(subscription.current_period_end + timedelta(minutes=5), tick=False):
        card_set_up(localstripe, customer, customer_admin, OK_CARD)
        with pytest.raises(CheckoutInvalid, match="was for a period that is over; make the change again"):
            invoice_pay_now(invoice=failed.invoice, actor=customer_admin)
    subscription.refresh_from_db()
    assert subscription.billed_to == partner and failed.invoice.payments.count() == 1


def test_a_take_over_paid_after_its_term_moved_is_refunded_and_changes_nothing(localstripe, catalog):
    """The backstop: a take-over whose payment was out while the partner renewed (the renewal
    leaves an invoice with a live payment alone) finds its term gone when the money arrives."""
    customer, customer_admin, partner, partner_admin, subscription, bought = partner_buys(localstripe, seats=5)
    UserFactory(is_staff=True, email="finance@flywheel.example")
    with time_machine.travel(subscription.current_period_start + timedelta(days=300), tick=False):
        failed = _declined_take_over(localstripe, subscription, customer, customer_admin)
    Subscription.objects.filter(pk=subscription.pk).update(current_period_end=subscription.current_period_end + timedelta(days=365))
    mail.outbox.clear()
    with transaction.atomic():
        invoice = invoice_mark_paid(invoice=failed.invoice, payment=None)
    assert invoice.status == Invoice.Status.VOID and invoice.applied_at is not None
    subscription.refresh_from_db()
    assert subscription.billed_to == partner
    assert not CreditNote.objects.filter(invoice=bought).exists()
    [to_staff] = [m for m in mail.outbox if "finance@flywheel.example" in m.to]
    assert f"Payment for invoice {invoice.number} not applied" in to_staff.subject
    assert "the term it priced is over" in to_staff.body


def test_the_partner_adding_seats_voids_a_declined_take_over_and_the_customer_is_asked_to_take_over_again(localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, bought = partner_buys(localstripe, seats=5)
    with time_machine.travel(subscription.current_period_start + timedelta(days=100), tick=False):
        failed = _declined_take_over(localstripe, subscription, customer, customer_admin)
        mail.outbox.clear()
        subscription.refresh_from_db()
        subscription_add_seats(subscription=subscription, actor=partner_admin, seats=5, request_key="s-1", on_behalf=partner)
        failed.invoice.refresh_from_db()
        assert failed.invoice.status == Invoice.Status.VOID
        [note] = [m for m in mail.outbox if customer_admin.email in m.to and "Take over Tracker again" in m.subject]
        assert "take it over again from the billing page at the new price" in note.body
        assert "USD" not in note.body  # none of the partner's amounts
        card_set_up(localstripe, customer, customer_admin, OK_CARD)
        with pytest.raises(CheckoutInvalid, match="is void; there is nothing to pay"):
            invoice_pay_now(invoice=failed.invoice, actor=customer_admin)
        subscription.refresh_from_db()
        assert subscription.seat_limit == 10 and subscription.billed_to == partner
        # Taken over again, at the new price: 10 seats.
        quote = subscription_payer_take_over_quote(subscription=subscription)
        subscription_payer_take_over_now(subscription=subscription, actor=customer_admin, request_key="t-2", quote_token=quote.token)
    subscription.refresh_from_db()
    takeover = Invoice.objects.get(kind=Invoice.Kind.TAKEOVER, status=Invoice.Status.PAID)
    assert takeover.target_seats == subscription.seat_limit == 10 and subscription.billed_to is None


def test_the_partner_cannot_change_the_subscription_while_the_take_over_is_being_charged(localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, bought = partner_buys(localstripe, seats=5)
    with time_machine.travel(subscription.current_period_start + timedelta(days=100), tick=False):
        failed = _declined_take_over(localstripe, subscription, customer, customer_admin)
        Payment.objects.filter(pk=failed.pk).update(status=Payment.Status.PROCESSING)  # the bank has not answered
        subscription.refresh_from_db()
        with pytest.raises(CheckoutInvalid, match=f"{customer.name} is moving Tracker to direct billing right now; try again in a minute"):
            subscription_add_seats(subscription=subscription, actor=partner_admin, seats=5, request_key="s-1", on_behalf=partner)
    subscription.refresh_from_db()
    failed.invoice.refresh_from_db()
    assert subscription.seat_limit == 5 and failed.invoice.status == Invoice.Status.OPEN
    assert not Invoice.objects.filter(kind=Invoice.Kind.SEATS).exists()


def test_the_partners_declined_seats_invoice_is_voided_at_the_take_over_and_cannot_be_paid_after(localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, bought = partner_buys(localstripe, seats=5)
    card_set_up(localstripe, customer, customer_admin, OK_CARD)
    with time_machine.travel(subscription.current_period_start + timedelta(days=100), tick=False):
        card_set_up(localstripe, partner, partner_admin, DECLINED_AT_CHARGE)
        declined = subscription_add_seats(subscription=subscription, actor=partner_admin, seats=5, request_key="s-1", on_behalf=partner)
        declined.refresh_from_db()
        assert declined.status == Payment.Status.FAILED
        subscription.refresh_from_db()
        quote = subscription_payer_take_over_quote(subscription=subscription)
        subscription_payer_take_over_now(subscription=subscription, actor=customer_admin, request_key="t-1", quote_token=quote.token)
        subscription.refresh_from_db()
        assert subscription.billed_to is None
        seats_invoice = declined.invoice
        seats_invoice.refresh_from_db()
        assert seats_invoice.status == Invoice.Status.VOID
        card_set_up(localstripe, partner, partner_admin, OK_CARD)
        with pytest.raises(CheckoutInvalid, match=f"Invoice {seats_invoice.number} is void; there is nothing to pay"):
            invoice_pay_now(invoice=seats_invoice, actor=partner_admin)
    subscription.refresh_from_db()
    assert subscription.seat_limit == 5
    assert not seats_invoice.payments.filter(status=Payment.Status.SUCCEEDED).exists()


def test_taking_over_waits_while_the_partners_payment_is_being_charged(localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, bought = partner_buys(localstripe, seats=5)
    card_set_up(localstripe, customer, customer_admin, OK_CARD)
    with time_machine.travel(subscription.current_period_start + timedelta(days=100), tick=False):
        card_set_up(localstripe, partner, partner_admin, DECLINED_AT_CHARGE)
        declined = subscription_add_seats(subscription=subscription, actor=partner_admin, seats=5, request_key="s-1", on_behalf=partner)
        Payment.objects.filter(pk=declined.pk).update(status=Payment.Status.PROCESSING)
        subscription.refresh_from_db()
        quote = subscription_payer_take_over_quote(subscription=subscription)
        with pytest.raises(CheckoutInvalid, match="Northwind Partners is paying for a change to Tracker right now; try again in a minute"):
            subscription_payer_take_over_now(subscription=subscription, actor=customer_admin, request_key="t-1", quote_token=quote.token)
    subscription.refresh_from_db()
    assert subscription.billed_to == partner
    assert not Invoice.objects.filter(kind=Invoice.Kind.TAKEOVER).exists()
