"""Buying what a quote priced: a fresh term billed to the partner (or the customer itself),
by card or against a purchase order; accepting twice buys once; what is paid already is refused."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from billing import gateway
from billing.exceptions import CheckoutInvalid, ManagedByPayer, NoCardOnFile
from billing.models import AddOnSubscription, BillingAccount, Invoice, Payment, Subscription
from billing.services.quoted import subscription_buy_quoted
from catalog.models import AddOn
from catalog.selectors import edition_get

from ...conftest import organization_on
from ..helpers import OK_CARD, card_set_up, partner_buys, partner_org, quoted_lines

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_tasks")]


def _standard():
    return edition_get(product_code="tracker", edition_code="standard")


def test_a_partner_buys_a_quote_by_card_billed_to_it_with_the_discount_line_and_the_customer_as_licensee(localstripe, catalog):
    github = AddOn.objects.get(product__code="tracker", code="github")
    customer, customer_admin, partner, partner_admin, subscription, invoice = partner_buys(
        localstripe, seats=5, discount_bp=1500, addons=[github]
    )
    invoice.refresh_from_db()
    subscription.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and invoice.kind == Invoice.Kind.CONVERSION
    assert invoice.organization == customer and invoice.bill_to == partner
    assert partner.name in invoice.customer_details and customer.name in invoice.licensee_details
    lines = [(line.description, line.amount_minor) for line in invoice.lines.order_by("pk")]
    # 5 seats × USD 81.50 a year, GitHub 5 × USD 15.00, less 15 % of USD 482.50 (USD 72.375, half up).
    assert lines == [
        ("Tracker Standard, 5 seats, annual", 40750),
        ("GitHub integration", 7500),
        ("Partner discount (Gold, 15 %)", -7238),
    ]
    assert invoice.total_minor == 41012 and invoice.discount_bp == 1500
    assert subscription.status == Subscription.Status.ACTIVE and subscription.interval == "year"
    assert subscription.billed_to == partner and subscription.billed_to_discount_bp == 1500
    assert subscription.seat_limit == 5 and subscription.purchase_order_number == ""
    assert subscription.current_period_end - subscription.current_period_start >= timedelta(days=365)
    assert AddOnSubscription.objects.get(subscription=subscription, addon=github).status == AddOnSubscription.Status.ACTIVE
    # The partner's card paid it, at the partner's Stripe customer.
    payment = Payment.objects.get(invoice=invoice)
    assert payment.status == Payment.Status.SUCCEEDED and payment.payment_method_id == BillingAccount.objects.get(organization=partner).payment_method_id
    intents = gateway.payment_intents_of_customer(BillingAccount.objects.get(organization=partner).stripe_customer_id)
    assert [intent.amount for intent in intents] == [41012]


def test_accepting_twice_buys_once(localstripe, catalog):
    customer, customer_admin = organization_on("standard")
    partner, partner_admin = partner_org(localstripe)
    arguments = dict(
        organization=customer, edition=_standard(), seats=3, interval="year", addons=[],
        lines=quoted_lines(_standard(), seats=3), actor=partner_admin, on_behalf=partner, discount_bp=1500,
        collection="card", po_number="", request_key="quote:4f1c7c4e-0000-4000-8000-000000000001:tracker",
    )
    first = subscription_buy_quoted(**arguments)
    second = subscription_buy_quoted(**arguments)
    assert first.pk == second.pk
    assert Invoice.objects.filter(organization=customer, kind=Invoice.Kind.CONVERSION).count() == 1
    assert Payment.objects.filter(invoice=first).count() == 1


def test_a_partner_on_purchase_order_terms_is_granted_at_once_and_invoiced_on_net_terms(localstripe, catalog, settings):
    mail.outbox.clear()
    customer, customer_admin, partner, partner_admin, subscription, invoice = partner_buys(
        localstripe, seats=4, collection="invoice", po_number="NW-PO-1"
    )
    subscription.refresh_from_db()
    assert invoice.status == Invoice.Status.OPEN and invoice.collection_method == "invoice"
    assert invoice.po_number == "NW-PO-1" and invoice.bill_to == partner
    assert abs(invoice.due_at - (timezone.now() + timedelta(days=settings.QUOTE_PO_NET_TERMS_DAYS))) < timedelta(minutes=1)
    assert subscription.status == Subscription.Status.ACTIVE and subscription.billed_to == partner
    assert subscription.purchase_order_number == "NW-PO-1" and not Payment.objects.filter(invoice=invoice).exists()
    [message] = [m for m in mail.outbox if invoice.number in m.subject]
    assert message.to == [partner_admin.email]
    assert f"Invoice {invoice.number} for {customer.name}" in message.subject
    assert "Granted now for" in message.body and "PO NW-PO-1" in message.body and "USD 277.10" in message.body
    # Paying it by transfer later changes nothing more (it was granted when issued).
    from billing.services.invoices import invoice_mark_paid_by_transfer

    invoice_mark_paid_by_transfer(invoice=invoice, actor=partner_admin)
    subscription.refresh_from_db()
    assert subscription.seat_limit == 4 and subscription.status == Subscription.Status.ACTIVE


def test_a_partner_without_terms_cannot_pay_against_a_purchase_order_and_nothing_is_written(localstripe, catalog):
    customer, customer_admin = organization_on("standard")
    partner, partner_admin = partner_org(localstripe)
    with pytest.raises(CheckoutInvalid, match="Northwind Partners is not on purchase-order terms yet"):
        subscription_buy_quoted(
            organization=customer, edition=_standard(), seats=3, interval="year", addons=[],
            lines=quoted_lines(_standard(), seats=3), actor=partner_admin, on_behalf=partner, discount_bp=1500,
            collection="invoice", po_number="PO-1", request_key="quote:x:tracker",
        )
    assert not Invoice.objects.filter(organization=customer).exists()


def test_refusals_say_why_and_write_nothing(localstripe, catalog):
    customer, customer_admin = organization_on("standard")
    partner, partner_admin = partner_org(localstripe)
    common = dict(
        organization=customer, edition=_standard(), addons=[], actor=partner_admin, on_behalf=partner,
        discount_bp=1500, collection="card", po_number="",
    )
    with pytest.raises(CheckoutInvalid, match="Subscriptions managed by a partner are billed annually"):
        subscription_buy_quoted(**common, seats=3, interval="month", lines=quoted_lines(_standard(), seats=3, interval="month"), request_key="q:1")
    with pytest.raises(CheckoutInvalid, match="sold for 1 to 100 seats"):
        subscription_buy_quoted(**common, seats=101, interval="year", lines=quoted_lines(_standard(), seats=101), request_key="q:2")
    # The customer's own admin is not the partner's: the organization is not found for them.
    from common.exceptions import NotFound

    with pytest.raises(NotFound):
        subscription_buy_quoted(**{**common, "actor": customer_admin}, seats=3, interval="year", lines=quoted_lines(_standard(), seats=3), request_key="q:3")
    assert not Invoice.objects.filter(organization=customer).exists()


def test_a_product_already_paid_is_refused(localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, invoice = partner_buys(localstripe, seats=3)
    with pytest.raises(CheckoutInvalid, match=f"{customer.name} already pays for Tracker: use Add seats or Change edition"):
        subscription_buy_quoted(
            organization=customer, edition=_standard(), seats=3, interval="year", addons=[],
            lines=quoted_lines(_standard(), seats=3), actor=partner_admin, on_behalf=partner, discount_bp=1500,
            collection="card", po_number="", request_key="quote:again:tracker",
        )
    assert Invoice.objects.filter(organization=customer).count() == 1


def test_a_partner_without_a_card_is_told_to_add_one(localstripe, catalog):
    customer, customer_admin = organization_on("standard")
    partner, partner_admin = partner_org(localstripe, card=False)
    with pytest.raises(NoCardOnFile, match="Northwind Partners has no card on file"):
        subscription_buy_quoted(
            organization=customer, edition=_standard(), seats=3, interval="year", addons=[],
            lines=quoted_lines(_standard(), seats=3), actor=partner_admin, on_behalf=partner, discount_bp=1500,
            collection="card", po_number="", request_key="quote:nocard:tracker",
        )
    assert not Invoice.objects.filter(organization=customer).exists()


def test_a_direct_quote_accepted_with_a_po_number_puts_the_subscription_on_terms(localstripe, catalog):
    customer, customer_admin = organization_on("standard")
    edition = _standard()
    invoice = subscription_buy_quoted(
        organization=customer, edition=edition, seats=3, interval="month", addons=[],
        lines=quoted_lines(edition, seats=3, interval="month", discount_bp=0), actor=customer_admin, on_behalf=None,
        discount_bp=0, collection="invoice", po_number="ACME-77", request_key="quote:direct:tracker",
    )
    subscription = Subscription.objects.get(organization=customer)
    assert invoice.bill_to is None and invoice.total_minor == 3 * 815 and invoice.po_number == "ACME-77"
    assert subscription.status == Subscription.Status.ACTIVE and subscription.billed_to is None
    assert subscription.purchase_order_number == "ACME-77" and subscription.interval == "month"


def test_a_new_product_for_the_customer_starts_with_the_quote(localstripe, catalog):
    customer, customer_admin = organization_on("standard", product_code="wiki")
    partner, partner_admin = partner_org(localstripe)
    card_set_up(localstripe, partner, partner_admin, OK_CARD)
    invoice = subscription_buy_quoted(
        organization=customer, edition=_standard(), seats=2, interval="year", addons=[],
        lines=quoted_lines(_standard(), seats=2), actor=partner_admin, on_behalf=partner, discount_bp=1500,
        collection="card", po_number="", request_key="quote:new:tracker",
    )
    subscription = Subscription.objects.get(organization=customer, product__code="tracker")
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert subscription.status == Subscription.Status.ACTIVE and subscription.billed_to == partner


def test_a_product_billed_to_a_partner_cannot_be_bought_by_a_direct_quote(localstripe, catalog):
    customer, customer_admin = organization_on("standard")
    partner, partner_admin = partner_org(localstripe)
    from billing.services.subscriptions import subscription_cancel, subscription_start_trial

    subscription_cancel(subscription=customer.subscriptions.get(), actor=customer_admin)
    subscription_start_trial(
        organization=customer, edition=edition_get(product_code="tracker", edition_code="standard"),
        actor=partner_admin, on_behalf=partner, discount_bp=1500,
    )
    with pytest.raises(ManagedByPayer, match="Tracker is managed by Northwind Partners: ask them from the billing page."):
        subscription_buy_quoted(
            organization=customer, edition=_standard(), seats=3, interval="month", addons=[],
            lines=quoted_lines(_standard(), seats=3, interval="month", discount_bp=0), actor=customer_admin,
            on_behalf=None, discount_bp=0, collection="card", po_number="", request_key="quote:d:tracker",
        )


def test_a_subscription_bought_against_a_purchase_order_renews_on_those_terms(localstripe, catalog, settings):
    customer, customer_admin = organization_on("standard")
    edition = _standard()
    invoice = subscription_buy_quoted(
        organization=customer, edition=edition, seats=3, interval="month", addons=[],
        lines=quoted_lines(edition, seats=3, interval="month", discount_bp=0), actor=customer_admin, on_behalf=None,
        discount_bp=0, collection="invoice", po_number="ACME-78", request_key="quote:renew:tracker",
    )
    import time_machine

    from billing.services import lifecycle

    with time_machine.travel(invoice.period_end + timedelta(minutes=5), tick=False):
        lifecycle.lifecycle_tick()
        renewal = Invoice.objects.get(organization=customer, kind=Invoice.Kind.RENEWAL)
        assert renewal.collection_method == "invoice" and renewal.po_number == "ACME-78"
        assert abs(renewal.due_at - (timezone.now() + timedelta(days=settings.QUOTE_PO_NET_TERMS_DAYS))) < timedelta(minutes=1)
    assert not Payment.objects.filter(invoice=renewal).exists()
    subscription = Subscription.objects.get(organization=customer)
    assert subscription.status == Subscription.Status.ACTIVE and subscription.current_period_start == invoice.period_end


def test_the_partner_gets_the_receipt_naming_its_customer_and_the_customer_gets_none(localstripe, catalog):
    mail.outbox.clear()
    customer, customer_admin, partner, partner_admin, subscription, invoice = partner_buys(localstripe, seats=5)
    [receipt] = [m for m in mail.outbox if "Receipt" in m.subject]  # sent by the worker once paid
    assert receipt.to == [partner_admin.email]
    assert receipt.subject == f"[Flywheel] Receipt for Tracker of {customer.name}: USD 346.37 paid (invoice {invoice.number})"
    assert f"For {customer.name}, the licensee: you pay for it as its partner." in receipt.body
    assert "- Partner discount (Gold, 15 %)" in receipt.body and "-USD 61.13" in receipt.body
    assert not [m for m in mail.outbox if customer_admin.email in m.to]
