"""A purchase-order renewal for a period that began is a debt: never voided, still collected."""

from datetime import timedelta

import pytest
import time_machine

from billing.exceptions import CheckoutInvalid
from billing.models import BillingAccount, Invoice, Subscription
from billing.services import checkout, invoices, lifecycle, subscriptions
from catalog.selectors import edition_get

from ..helpers import paid_organization


def _purchase_order_renewal(localstripe, net_terms_days=30):
    organization, admin, subscription = paid_organization(localstripe, seats=3)
    BillingAccount.objects.filter(organization=organization).update(
        collection_method="invoice", po_number="PO-9", net_terms_days=net_terms_days
    )
    with time_machine.travel(subscription.current_period_end + timedelta(minutes=5), tick=False):
        lifecycle.lifecycle_tick()
    invoice = Invoice.objects.get(subscription=subscription, kind=Invoice.Kind.RENEWAL)
    subscription.refresh_from_db()
    assert invoice.status == Invoice.Status.OPEN and invoice.collection_method == "invoice"
    return organization, admin, subscription, invoice


def test_cancelling_keeps_the_purchase_order_invoice_of_the_period_used_and_it_can_be_paid(localstripe, catalog):
    organization, admin, subscription, invoice = _purchase_order_renewal(localstripe)
    with time_machine.travel(invoice.period_start + timedelta(days=2), tick=False):
        subscriptions.subscription_cancel(subscription=subscription, actor=admin, reason="too_expensive")
    with time_machine.travel(invoice.period_end + timedelta(minutes=5), tick=False):
        lifecycle.lifecycle_tick()  # the period ends: cancelled
        subscription.refresh_from_db()
        invoice.refresh_from_db()
        assert subscription.status == Subscription.Status.CANCELED and invoice.status == Invoice.Status.OPEN
    with time_machine.travel(invoice.due_at + timedelta(days=30), tick=False):
        lifecycle.lifecycle_tick()  # overdue: reminded, but an ended subscription is not suspended
        subscription.refresh_from_db()
        assert subscription.status == Subscription.Status.CANCELED
        invoices.invoice_mark_paid_by_transfer(invoice=invoice, actor=admin)  # the transfer arrives
    invoice.refresh_from_db()
    subscription.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert subscription.status == Subscription.Status.CANCELED  # paying a debt starts nothing again


def test_a_suspended_purchase_order_customer_pays_the_overdue_invoice_not_a_new_card_checkout(localstripe, catalog):
    organization, admin, subscription, invoice = _purchase_order_renewal(localstripe, net_terms_days=7)
    with time_machine.travel(invoice.due_at + timedelta(days=4), tick=False):
        lifecycle.lifecycle_tick()
        subscription.refresh_from_db()
        assert subscription.status == Subscription.Status.SUSPENDED
        with pytest.raises(CheckoutInvalid, match=rf"Invoice {invoice.number} for a period Tracker was used is not paid yet"):
            checkout.subscription_checkout(
                subscription=subscription, actor=admin, edition=edition_get(product_code="tracker", edition_code="standard"),
                seats=4, interval="month",
            )
        invoice.refresh_from_db()
        assert invoice.status == Invoice.Status.OPEN
        invoices.invoice_mark_paid_by_transfer(invoice=invoice, actor=admin)
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.ACTIVE
