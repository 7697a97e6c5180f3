"""The clocks of a subscription billed to a partner: renewals billed to the partner with its
discount line, its purchase orders overdue suspending only what they cover, its billing ending at
the renewal after the link ended, and the emails each side reads."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail

from billing.models import BillingAccount, Invoice, Payment, Subscription
from billing.services import lifecycle
from billing.services.payer import subscription_payer_end
from billing.services.subscriptions import subscription_start_trial
from catalog.selectors import edition_get

from ..helpers import OK_CARD, card_set_up, partner_buys

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_tasks")]


def _tick(at):
    with time_machine.travel(at, tick=False):
        return lifecycle.lifecycle_tick()


def _mails_to(address):
    return [message for message in mail.outbox if address in message.to]


def test_a_renewal_is_billed_to_the_partner_with_its_discount_line_and_charged_to_its_card(localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, _ = partner_buys(localstripe, seats=5)
    mail.outbox.clear()
    _tick(subscription.current_period_end + timedelta(minutes=5))
    renewal = Invoice.objects.get(subscription=subscription, kind=Invoice.Kind.RENEWAL)
    assert renewal.bill_to == partner and renewal.status == Invoice.Status.PAID
    assert [(line.description.split(",")[0], line.amount_minor) for line in renewal.lines.order_by("pk")] == [
        ("Tracker Standard", 40750),
        ("Partner discount (Gold", -6113),
    ]
    assert renewal.total_minor == 34637
    payment = Payment.objects.get(invoice=renewal)
    assert payment.payment_method_id == BillingAccount.objects.get(organization=partner).payment_method_id
    # The receipt is the partner's; the customer's admins get none of the partner's amounts.
    receipts = [m for m in _mails_to(partner_admin.email) if "Receipt" in m.subject]
    assert receipts and "USD 346.37" in receipts[0].subject
    assert not any("346.37" in m.body or "Receipt" in m.subject for m in _mails_to(customer_admin.email))


def test_a_partner_renewal_that_fails_tells_the_partner_and_the_customer_without_amounts(localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, _ = partner_buys(localstripe, seats=5)
    BillingAccount.objects.filter(organization=partner).update(payment_method_id="", card_last4="")
    mail.outbox.clear()
    _tick(subscription.current_period_end + timedelta(minutes=5))
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.PAST_DUE
    [to_partner] = [m for m in _mails_to(partner_admin.email) if "Payment failed" in m.subject]
    assert f"Payment failed for Tracker of {customer.name}" in to_partner.subject and "USD 346.37" in to_partner.body
    [to_customer] = _mails_to(customer_admin.email)
    assert "the renewal payment by Northwind Partners did not go through" in to_customer.subject
    assert "Tracker keeps working meanwhile" in to_customer.body and "USD" not in to_customer.body


def test_an_overdue_partner_purchase_order_suspends_only_the_subscription_it_covers(localstripe, catalog, settings):
    customer, customer_admin, partner, partner_admin, subscription, invoice = partner_buys(
        localstripe, seats=5, collection="invoice", po_number="NW-9"
    )
    # The customer's own other product, paid by its own card, is not touched.
    wiki = subscription_start_trial(
        organization=customer, edition=edition_get(product_code="wiki", edition_code="standard"), actor=customer_admin
    )
    Subscription.objects.filter(pk=wiki.pk).update(trial_ends_at=invoice.due_at + timedelta(days=60))
    mail.outbox.clear()
    _tick(invoice.due_at + timedelta(days=settings.DUNNING_GRACE_DAYS, minutes=5))
    subscription.refresh_from_db()
    wiki.refresh_from_db()
    assert subscription.status == Subscription.Status.SUSPENDED
    assert wiki.status == Subscription.Status.TRIALING
    [to_partner] = [m for m in _mails_to(partner_admin.email) if "suspended" in m.subject]
    assert to_partner.subject == f"[Flywheel] Tracker is suspended for {customer.name}"
    [to_customer] = [m for m in _mails_to(customer_admin.email) if "suspended" in m.subject]
    assert to_customer.subject == "[Flywheel] Tracker is suspended: managed by Northwind Partners"
    assert "Ask Northwind Partners" in to_customer.body and "USD" not in to_customer.body and invoice.number not in to_customer.body


def test_after_the_link_ends_mid_period_the_next_renewal_is_the_customers_at_list_price(localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, _ = partner_buys(
        localstripe, seats=5, collection="invoice", po_number="NW-3"
    )
    card_set_up(localstripe, customer, customer_admin, OK_CARD)
    with time_machine.travel(subscription.current_period_start + timedelta(days=100), tick=False):
        subscription_payer_end(subscription=subscription, at=subscription.current_period_start + timedelta(days=100))
    subscription.refresh_from_db()
    assert subscription.billed_to == partner and subscription.billed_to_ends_at_renewal  # the partner's term goes on
    _tick(subscription.current_period_end + timedelta(minutes=5))
    subscription.refresh_from_db()
    renewal = Invoice.objects.get(subscription=subscription, kind=Invoice.Kind.RENEWAL)
    assert renewal.bill_to is None and renewal.discount_bp == 0 and renewal.total_minor == 40750
    assert renewal.status == Invoice.Status.PAID and renewal.collection_method == "card" and renewal.po_number == ""
    assert subscription.billed_to is None and subscription.billed_to_discount_bp == 0
    assert not subscription.billed_to_ends_at_renewal and subscription.purchase_order_number == ""
    assert subscription.status == Subscription.Status.ACTIVE


def test_after_the_link_ends_a_customer_without_a_card_is_asked_for_one_by_dunning(localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, _ = partner_buys(localstripe, seats=5)
    subscription_payer_end(subscription=subscription, at=subscription.current_period_start)
    mail.outbox.clear()
    _tick(subscription.current_period_end + timedelta(minutes=5))
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.PAST_DUE and subscription.billed_to is None
    assert any("Payment failed for Tracker" == m.subject.removeprefix("[Flywheel] ") for m in _mails_to(customer_admin.email))
    assert not _mails_to(partner_admin.email)


def _partner_trial(localstripe):
    from accounts.models import Membership

    from ...factories import MembershipFactory, OrganizationFactory, UserFactory
    from ..helpers import partner_org

    partner, partner_admin = partner_org(localstripe)
    admin = UserFactory(email="boss@acme-trial.example")
    customer = OrganizationFactory(name="Acme Trial", email_domain="acme-trial.example", created_by=admin)
    MembershipFactory(organization=customer, user=admin, role=Membership.Role.ADMIN, source="signup")
    edition = edition_get(product_code="tracker", edition_code="standard")
    subscription = subscription_start_trial(organization=customer, edition=edition, actor=partner_admin, on_behalf=partner, discount_bp=1500)
    return customer, admin, partner, partner_admin, subscription, edition


def test_a_trial_the_partner_started_is_the_customers_at_once_when_the_link_ends(localstripe, catalog):
    """Review of issue 22, M3: a trial has no paid term for the partner to keep and never renews."""
    from billing.services import checkout

    customer, admin, partner, partner_admin, subscription, edition = _partner_trial(localstripe)
    assert subscription.billed_to == partner
    subscription_payer_end(subscription=subscription, at=subscription.created_at)
    subscription.refresh_from_db()
    assert subscription.billed_to is None and subscription.billed_to_discount_bp == 0 and not subscription.billed_to_ends_at_renewal
    card_set_up(localstripe, customer, admin, OK_CARD)
    payment = checkout.subscription_checkout(subscription=subscription, actor=admin, edition=edition, seats=1, interval="year")
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED and payment.invoice.bill_to is None
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.ACTIVE and subscription.billed_to is None


def test_the_partner_hears_that_a_trial_it_started_is_ending_and_the_customer_is_told_to_ask_it(localstripe, catalog):
    customer, admin, partner, partner_admin, subscription, edition = _partner_trial(localstripe)
    mail.outbox.clear()
    _tick(subscription.trial_ends_at - timedelta(days=2, hours=12))
    [to_partner] = [m for m in mail.outbox if partner_admin.email in m.to]
    assert "The Tracker trial of Acme Trial ends in 3 days" in to_partner.subject
    assert "buy it for them" in to_partner.body
    [to_customer] = [m for m in mail.outbox if admin.email in m.to]
    assert "Northwind Partners manages Tracker for you: to keep it, ask them" in to_customer.body
    assert "/billing/checkout/" not in to_customer.body
