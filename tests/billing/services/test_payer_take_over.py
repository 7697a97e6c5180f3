"""The customer takes a partner-billed subscription over now: it pays the rest of the term at
list price, the partner is credited its unused days (refund, reissued purchase order, or a
credit note staff pay back), nothing is billed twice and nothing lapses."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail

from billing.exceptions import CheckoutInvalid, NoCardOnFile
from billing.models import CreditNote, Invoice, Payment, Subscription
from billing.pricing import prorate
from billing.services.invoices import invoice_mark_paid_by_transfer
from billing.services.payer import (
    subscription_payer_take_over_now,
    subscription_payer_take_over_quote,
)

from ...factories import UserFactory
from ..helpers import DECLINED_AT_CHARGE, OK_CARD, card_set_up, on_invoice_terms, partner_buys

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_tasks")]


def test_taking_over_halfway_charges_the_customer_the_rest_at_list_price_and_refunds_the_partner(localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, bought = partner_buys(localstripe, seats=5)
    card_set_up(localstripe, customer, customer_admin, OK_CARD)
    halfway = subscription.current_period_start + (subscription.current_period_end - subscription.current_period_start) / 2
    mail.outbox.clear()
    with time_machine.travel(halfway, tick=False):
        quote = subscription_payer_take_over_quote(subscription=subscription)
        seconds = int((subscription.current_period_end - subscription.current_period_start).total_seconds())
        assert quote.amount_minor == prorate(full_amount_minor=40750, seconds_left=quote.seconds_left, seconds_in_period=seconds)
        assert quote.partner == partner and quote.collection == "card"
        payment = subscription_payer_take_over_now(
            subscription=subscription, actor=customer_admin, request_key="take-1", quote_token=quote.token
        )
        again = subscription_payer_take_over_now(
            subscription=subscription, actor=customer_admin, request_key="take-1", quote_token=quote.token
        )
    assert again.pk == payment.pk
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED and payment.invoice.bill_to is None
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.ACTIVE and subscription.billed_to is None
    assert subscription.billed_to_discount_bp == 0 and subscription.current_period_end == bought.period_end
    [note] = CreditNote.objects.filter(invoice=bought)
    assert note.status == CreditNote.Status.ISSUED and note.number  # refunded to the partner's card
    # Nothing billed twice: the partner keeps what it paid for the days used, the customer pays the rest.
    partner_paid = bought.total_minor - note.amount_minor
    assert note.amount_minor == prorate(full_amount_minor=bought.total_minor, seconds_left=quote.seconds_left, seconds_in_period=seconds)
    assert partner_paid + note.amount_minor == bought.total_minor
    assert payment.amount_minor == quote.amount_minor
    [to_partner] = [m for m in mail.outbox if partner_admin.email in m.to and "your credit" in m.subject]
    assert "to your card is on its way" in to_partner.body and note.invoice.number in to_partner.body


def test_a_declined_card_moves_nothing(localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, bought = partner_buys(localstripe, seats=5)
    card_set_up(localstripe, customer, customer_admin, DECLINED_AT_CHARGE)
    quote = subscription_payer_take_over_quote(subscription=subscription)
    payment = subscription_payer_take_over_now(subscription=subscription, actor=customer_admin, request_key="t-1", quote_token=quote.token)
    payment.refresh_from_db()
    subscription.refresh_from_db()
    assert payment.status == Payment.Status.FAILED
    assert subscription.billed_to == partner and subscription.status == Subscription.Status.ACTIVE
    assert not CreditNote.objects.exists()


def test_an_open_partner_purchase_order_is_voided_and_reissued_for_the_days_used(localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, bought = partner_buys(
        localstripe, seats=5, collection="invoice", po_number="NW-5"
    )
    card_set_up(localstripe, customer, customer_admin, OK_CARD)
    later = subscription.current_period_start + timedelta(days=73)
    with time_machine.travel(later, tick=False):
        quote = subscription_payer_take_over_quote(subscription=subscription)
        subscription_payer_take_over_now(subscription=subscription, actor=customer_admin, request_key="t-2", quote_token=quote.token)
    bought.refresh_from_db()
    assert bought.status == Invoice.Status.VOID
    [replacement] = Invoice.objects.filter(bill_to=partner).exclude(pk=bought.pk)
    seconds = int((bought.period_end - bought.period_start).total_seconds())
    unused = prorate(full_amount_minor=bought.total_minor, seconds_left=int((bought.period_end - later).total_seconds()), seconds_in_period=seconds)
    assert replacement.total_minor == bought.total_minor - unused
    assert replacement.status == Invoice.Status.OPEN and replacement.po_number == "NW-5" and replacement.period_end == later
    assert f"Replaces invoice {bought.number}" in replacement.lines.get().description
    subscription.refresh_from_db()
    assert subscription.billed_to is None and subscription.purchase_order_number == ""
    # The partner's replacement, unpaid and overdue, never suspends what the customer now owns.
    from billing.services import lifecycle

    with time_machine.travel(replacement.due_at + timedelta(days=30), tick=False):
        lifecycle.lifecycle_tick()
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.ACTIVE


def test_a_partner_purchase_order_paid_by_transfer_gets_a_credit_note_staff_pay_back(localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, bought = partner_buys(
        localstripe, seats=5, collection="invoice", po_number="NW-6"
    )
    staff = UserFactory(is_staff=True, email="finance@flywheel.example")
    invoice_mark_paid_by_transfer(invoice=bought, actor=staff)
    on_invoice_terms(customer)  # staff approved: only then may a take-over be put on a purchase order
    later = subscription.current_period_start + timedelta(days=200)
    mail.outbox.clear()
    with time_machine.travel(later, tick=False):
        quote = subscription_payer_take_over_quote(subscription=subscription)
        invoice = subscription_payer_take_over_now(
            subscription=subscription, actor=customer_admin, request_key="t-3", quote_token=quote.token, po_number="ACME-PO-1"
        )
    assert isinstance(invoice, Invoice) and invoice.po_number == "ACME-PO-1" and invoice.bill_to is None
    subscription.refresh_from_db()
    assert subscription.billed_to is None and subscription.purchase_order_number == "ACME-PO-1"
    [note] = CreditNote.objects.filter(invoice=bought)
    assert note.source == CreditNote.Source.TRANSFER and note.payment is None and note.number and note.paid_back_at is None
    [to_staff] = [m for m in mail.outbox if staff.email in m.to]
    assert "Pay back" in to_staff.subject and "Northwind Partners" in to_staff.subject
    [to_partner] = [m for m in mail.outbox if partner_admin.email in m.to and "your credit" in m.subject]
    assert "our team pays it back by bank transfer" in to_partner.body


def test_a_subscription_billed_to_nobody_has_nothing_to_take_over(localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, bought = partner_buys(localstripe, seats=5)
    quote = subscription_payer_take_over_quote(subscription=subscription)
    Subscription.objects.filter(pk=subscription.pk).update(billed_to=None, billed_to_discount_bp=0)
    subscription.refresh_from_db()
    with pytest.raises(CheckoutInvalid, match="billed to"):
        subscription_payer_take_over_quote(subscription=subscription)
    with pytest.raises(CheckoutInvalid):
        subscription_payer_take_over_now(subscription=subscription, actor=customer_admin, request_key="t-4", quote_token=quote.token)


def test_without_a_card_or_purchase_order_the_customer_is_asked_for_one(localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, bought = partner_buys(localstripe, seats=5)
    quote = subscription_payer_take_over_quote(subscription=subscription)
    with pytest.raises(NoCardOnFile):
        subscription_payer_take_over_now(subscription=subscription, actor=customer_admin, request_key="t-5", quote_token=quote.token)
    assert not Invoice.objects.filter(kind=Invoice.Kind.TAKEOVER).exists()


def test_a_purchase_order_take_over_needs_staff_approved_invoice_terms(localstripe, catalog):
    """Review of issue 22, M4: on a purchase order the partner is credited at once, before the
    customer pays; a PO number typed by any admin is not enough."""
    customer, customer_admin, partner, partner_admin, subscription, bought = partner_buys(localstripe, seats=5)
    with time_machine.travel(subscription.current_period_start + timedelta(days=100), tick=False):
        quote = subscription_payer_take_over_quote(subscription=subscription)
        with pytest.raises(CheckoutInvalid, match="is not on invoice terms: pay by card, or ask us for invoice terms from the billing page"):
            subscription_payer_take_over_now(
                subscription=subscription, actor=customer_admin, request_key="t-po", quote_token=quote.token, po_number="TYPED-1"
            )
    subscription.refresh_from_db()
    assert subscription.billed_to == partner and subscription.purchase_order_number == ""
    assert not Invoice.objects.filter(kind=Invoice.Kind.TAKEOVER).exists()
    assert not CreditNote.objects.filter(invoice=bought).exists()


def test_a_partner_refund_that_cannot_start_is_owed_not_claimed_and_staff_are_told(localstripe, catalog, monkeypatch):
    """Review of issue 22, L1: the refund is refused (here: as if staff had just refunded the
    payment by hand); the partner is not told "refunded", staff refund it from the admin."""
    from billing.services import invoices
    from billing.services.refunds import RefundInvalid

    def refused(**kwargs):
        raise RefundInvalid("At most USD 0.00 of invoice FW-000001 is left to refund.")

    customer, customer_admin, partner, partner_admin, subscription, bought = partner_buys(localstripe, seats=5)
    staff = UserFactory(is_staff=True, email="finance@flywheel.example")
    card_set_up(localstripe, customer, customer_admin, OK_CARD)
    monkeypatch.setattr(invoices, "refund_request", refused)
    mail.outbox.clear()
    with time_machine.travel(subscription.current_period_start + timedelta(days=100), tick=False):
        quote = subscription_payer_take_over_quote(subscription=subscription)
        subscription_payer_take_over_now(subscription=subscription, actor=customer_admin, request_key="t-l1", quote_token=quote.token)
    subscription.refresh_from_db()
    assert subscription.billed_to is None
    assert not CreditNote.objects.filter(invoice=bought).exists()
    [to_partner] = [m for m in mail.outbox if partner_admin.email in m.to and "your credit" in m.subject]
    assert "is due back to you; our team refunds it and writes to you when it is done" in to_partner.body
    assert "refunded to your card" not in to_partner.body and "on its way" not in to_partner.body
    [to_staff] = [m for m in mail.outbox if staff.email in m.to]
    assert f"(invoice {bought.number})" in to_staff.subject and "Refund USD" in to_staff.subject
    assert f"Refund on invoice {bought.number}" in to_staff.body


def test_a_partner_refund_stripe_refuses_tells_staff_and_stays_refundable(localstripe, catalog):
    from billing.services.refunds import credit_note_record_failure, payment_refundable_minor

    customer, customer_admin, partner, partner_admin, subscription, bought = partner_buys(localstripe, seats=5)
    staff = UserFactory(is_staff=True, email="finance@flywheel.example")
    card_set_up(localstripe, customer, customer_admin, OK_CARD)
    with time_machine.travel(subscription.current_period_start + timedelta(days=100), tick=False):
        quote = subscription_payer_take_over_quote(subscription=subscription)
        subscription_payer_take_over_now(subscription=subscription, actor=customer_admin, request_key="t-l1b", quote_token=quote.token)
    [note] = CreditNote.objects.filter(invoice=bought)
    CreditNote.objects.filter(pk=note.pk).update(status=CreditNote.Status.PENDING, number="", issued_at=None)
    mail.outbox.clear()
    credit_note_record_failure(credit_note_id=note.pk, message="The card was closed.")
    [to_staff] = [m for m in mail.outbox if staff.email in m.to]
    assert "failed" in to_staff.subject and "Northwind Partners" in to_staff.subject
    assert "The card was closed." in to_staff.body and f"Refund on invoice {bought.number}" in to_staff.body
    payment = bought.payments.get(status=Payment.Status.SUCCEEDED)
    assert payment_refundable_minor(payment) == bought.total_minor  # refundable again
