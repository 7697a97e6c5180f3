"""Every successful payment sends the organization's admins one receipt: the amount, what it
paid for, the invoice's link and its PDF, exactly once however many parts notice the success."""

import time
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.urls import reverse

from billing import gateway
from billing.models import BillingAccount, Invoice, Payment
from billing.services import invoices, lifecycle, payments, subscriptions
from billing.services.seats import subscription_add_seats
from catalog.selectors import edition_get

from ...conftest import body_text, mails_to, wait_for
from ..helpers import paid_organization

pytestmark = pytest.mark.django_db(transaction=True)


def _receipts(address):
    return [message for message in mails_to(address) if str(message["Subject"]).startswith("[Flywheel] Receipt")]


def _wait_receipts(address, count):
    return wait_for(lambda: len(_receipts(address)) >= count and _receipts(address), timeout=30, what=f"{count} receipts")


def _receipt_of(receipts, invoice_number: str):
    """The one receipt whose subject names this invoice."""
    [receipt] = [message for message in receipts if str(message["Subject"]).endswith(f"(invoice {invoice_number})")]
    return receipt


def test_every_paid_invoice_sends_one_receipt_with_its_pdf(localstripe, catalog, celery_worker):
    organization, admin, subscription = paid_organization(localstripe, seats=5)
    [receipt] = _wait_receipts(admin.email, 1)
    conversion = Invoice.objects.get(organization=organization, kind=Invoice.Kind.CONVERSION)
    assert str(receipt["Subject"]) == f"[Flywheel] Receipt for Tracker: USD 40.75 paid (invoice {conversion.number})"
    text = body_text(receipt)
    assert "Thank you: Tracker Standard is paid for, with 5 seats." in text
    assert "Amount paid: USD 40.75" in text and "Paid with: Visa ending 4242" in text
    assert "Tracker Standard, 5 seats, monthly" in text
    assert f"{settings.SITE_URL}{reverse('invoice', args=[conversion.public_id])}" in text
    [pdf] = [part for part in receipt.iter_attachments() if part.get_content_type() == "application/pdf"]
    assert pdf.get_filename() == f"{conversion.number}.pdf" and pdf.get_content().startswith(b"%PDF")
    assert receipt.get_body(preferencelist=("html",)) is not None

    # The webhook and the worker both notice the same success: an outcome already recorded is a no-op.
    payment = Payment.objects.get(invoice=conversion)
    payments.payment_apply_intent(intent=gateway.payment_intent_retrieve(payment.stripe_payment_intent_id))
    payments.payment_charge(payment_id=payment.pk)

    # Added seats, and an upgrade: one receipt each.
    seats = subscription_add_seats(subscription=subscription, actor=admin, seats=2, request_key="seats-1")
    payments.payment_charge(payment_id=seats.pk)
    upgrade = subscriptions.subscription_change_edition(
        subscription=subscription, actor=admin, edition=edition_get(product_code="tracker", edition_code="premium"),
        request_key="upgrade-1",
    )
    payments.payment_charge(payment_id=upgrade.pk)
    payments.payment_apply_intent(intent=gateway.payment_intent_retrieve(Payment.objects.get(pk=upgrade.pk).stripe_payment_intent_id))
    receipts = _wait_receipts(admin.email, 3)
    # The worker's threads may write these two in either order: find each by its invoice.
    assert "Thank you: 2 seats added to Tracker Standard." in body_text(_receipt_of(receipts, seats.invoice.number))
    assert "Thank you: Tracker is now on Premium." in body_text(_receipt_of(receipts, upgrade.invoice.number))

    # The off-session renewal (charged by the worker), then a purchase order paid by transfer.
    subscription.refresh_from_db()
    with time_machine.travel(subscription.current_period_end + timedelta(minutes=5), tick=False):
        lifecycle.lifecycle_tick()
    renewal = wait_for(
        lambda: Invoice.objects.filter(subscription=subscription, kind=Invoice.Kind.RENEWAL, status=Invoice.Status.PAID).first(),
        what="the renewal charged by the worker",
    )
    _wait_receipts(admin.email, 4)
    BillingAccount.objects.filter(organization=organization).update(collection_method="invoice", po_number="PO-77")
    subscription.refresh_from_db()
    with time_machine.travel(subscription.current_period_end + timedelta(minutes=5), tick=False):
        lifecycle.lifecycle_tick()
    purchase_order = Invoice.objects.get(subscription=subscription, kind=Invoice.Kind.RENEWAL, po_number="PO-77")
    invoices.invoice_mark_paid_by_transfer(invoice=purchase_order, actor=admin)
    invoices.invoice_mark_paid_by_transfer(invoice=purchase_order, actor=admin)  # clicked twice
    receipts = _wait_receipts(admin.email, 5)
    assert "Paid with: Bank transfer against PO PO-77" in body_text(_receipt_of(receipts, purchase_order.number))
    assert "Thank you: Tracker Premium is renewed until" in body_text(_receipt_of(receipts, renewal.number))

    time.sleep(2)  # anything sent twice would have arrived by now
    receipts = _receipts(admin.email)
    numbers = [str(message["Subject"]).rsplit("invoice ", 1)[1].rstrip(")") for message in receipts]
    assert sorted(numbers) == sorted(
        Invoice.objects.filter(organization=organization, status=Invoice.Status.PAID).values_list("number", flat=True)
    )
    assert len(numbers) == len(set(numbers)) == 5 and renewal.number in numbers and purchase_order.number in numbers
