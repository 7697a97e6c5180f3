"""Paying by card against localstripe over HTTP: card capture, conversion, declines, 3-D
Secure, double clicks, Stripe outages."""

import pytest

from billing.exceptions import CardDeclined, CheckoutInvalid, NoCardOnFile
from billing.models import Invoice, Payment, Subscription
from billing.services import billing_account, checkout, payments, webhooks
from catalog.selectors import edition_get
from common.exceptions import NotFound
from experiments.models import Event

from ...conftest import organization_on
from ..helpers import (
    DECLINED_AT_CHARGE,
    DECLINED_AT_SETUP,
    OK_CARD,
    THREE_D_SECURE,
    card_enter,
    standard_checkout,
)


def _standard():
    return edition_get(product_code="tracker", edition_code="standard")


def test_trial_converts_when_the_card_is_charged(localstripe, trial_organization):
    organization, admin = trial_organization
    intent, _ = card_enter(localstripe, organization, admin, OK_CARD)
    account = billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=intent.id)
    assert (account.card_last4, account.card_brand) == ("4242", "visa")

    payment = standard_checkout(organization, admin, seats=5, interval="year")
    invoice = payment.invoice
    assert invoice.number.startswith("FW-") and invoice.status == Invoice.Status.OPEN
    assert invoice.total_minor == 5 * 8150
    assert [(line.quantity, line.unit_amount_minor, line.amount_minor) for line in invoice.lines.all()] == [(5, 8150, 40750)]
    assert payments.payment_charge(payment_id=payment.pk).done

    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED and payment.stripe_payment_intent_id.startswith("pi_")
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and invoice.paid_at
    subscription = Subscription.objects.get(organization=organization)
    assert subscription.status == Subscription.Status.ACTIVE
    assert (subscription.edition.code, subscription.seat_limit, subscription.interval) == ("standard", 5, "year")
    assert subscription.trial_ends_at is None and subscription.current_period_end > subscription.current_period_start
    assert Event.objects.filter(name="subscription_paid", organization=organization).count() == 1

    # Charging again (a retried task) changes nothing.
    assert payments.payment_charge(payment_id=payment.pk).done
    assert Payment.objects.filter(invoice=invoice).count() == 1


def test_a_card_declined_at_entry_is_never_stored(localstripe, trial_organization):
    organization, admin = trial_organization
    intent, confirmed = card_enter(localstripe, organization, admin, DECLINED_AT_SETUP)
    assert confirmed["error"]["message"] == "Your card was declined."
    with pytest.raises(CardDeclined, match="not confirmed"):
        billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=intent.id)
    with pytest.raises(NoCardOnFile):
        standard_checkout(organization, admin)
    assert not Invoice.objects.exists()


def test_a_charge_declined_by_the_bank_keeps_the_trial_and_another_card_pays(localstripe, trial_organization):
    organization, admin = trial_organization
    intent, _ = card_enter(localstripe, organization, admin, DECLINED_AT_CHARGE)
    billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=intent.id)
    payment = standard_checkout(organization, admin)
    payments.payment_charge(payment_id=payment.pk)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED
    assert payment.failure_message == "Your card was declined."
    subscription = Subscription.objects.get(organization=organization)
    assert subscription.status == Subscription.Status.TRIALING and subscription.edition.code == "standard"
    assert payment.invoice.status == Invoice.Status.OPEN

    intent, _ = card_enter(localstripe, organization, admin, OK_CARD)
    billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=intent.id)
    retry = standard_checkout(organization, admin)
    assert retry.pk != payment.pk and retry.invoice_id == payment.invoice_id  # same invoice, new attempt
    payments.payment_charge(payment_id=retry.pk)
    retry.refresh_from_db()
    assert retry.status == Payment.Status.SUCCEEDED
    assert Invoice.objects.filter(organization=organization).count() == 1
    assert Subscription.objects.get(organization=organization).status == Subscription.Status.ACTIVE


def test_three_d_secure_card_is_authenticated_when_entered(localstripe, trial_organization):
    organization, admin = trial_organization
    intent, confirmed = card_enter(localstripe, organization, admin, THREE_D_SECURE)
    assert confirmed["status"] == "succeeded"
    account = billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=intent.id)
    assert account.card_last4 == "3155"

    failed_intent, failed = card_enter(localstripe, organization, admin, THREE_D_SECURE, authenticate=False)
    assert failed["status"] == "canceled"
    with pytest.raises(CardDeclined):
        billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=failed_intent.id)


def test_off_session_charge_that_needs_authentication_waits_for_the_customer(localstripe, trial_organization):
    organization, admin = trial_organization
    intent, _ = card_enter(localstripe, organization, admin, THREE_D_SECURE)
    billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=intent.id)
    payment = standard_checkout(organization, admin)
    payments.payment_charge(payment_id=payment.pk)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.REQUIRES_ACTION and payment.client_secret
    assert Subscription.objects.get(organization=organization).status == Subscription.Status.TRIALING


def test_double_click_issues_one_invoice_and_one_charge(localstripe, trial_organization):
    organization, admin = trial_organization
    intent, _ = card_enter(localstripe, organization, admin, OK_CARD)
    billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=intent.id)
    first = standard_checkout(organization, admin)
    second = standard_checkout(organization, admin)
    assert first.pk == second.pk
    payments.payment_charge(payment_id=first.pk)
    payments.payment_charge(payment_id=second.pk)
    assert Payment.objects.count() == 1 and Invoice.objects.count() == 1
    account = organization.billing_account
    from billing import gateway

    assert len(gateway.payment_intents_of_customer(account.stripe_customer_id)) == 1


def test_stripe_down_charges_nothing_then_the_retry_charges_once(localstripe, trial_organization, settings):
    organization, admin = trial_organization
    intent, _ = card_enter(localstripe, organization, admin, OK_CARD)
    billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=intent.id)
    payment = standard_checkout(organization, admin)
    real_base = settings.STRIPE_API_BASE
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens there
    outcome = payments.payment_charge(payment_id=payment.pk)
    assert not outcome.done and outcome.retry_in > 0
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING
    assert "did not answer" in payment.failure_message
    assert Subscription.objects.get(organization=organization).status == Subscription.Status.TRIALING

    settings.STRIPE_API_BASE = real_base
    assert payments.payment_charge(payment_id=payment.pk).done
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED and payment.attempts == 2
    from billing import gateway

    assert len(gateway.payment_intents_of_customer(organization.billing_account.stripe_customer_id)) == 1


def test_checkout_refuses_bad_choices_with_reasons(localstripe, trial_organization):
    organization, admin = organization_on("standard", members=3)
    intent, _ = card_enter(localstripe, organization, admin, OK_CARD)
    billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=intent.id)
    subscription = organization.subscriptions.get()
    with pytest.raises(CheckoutInvalid, match="uses 3 seats .* buy at least 3"):
        checkout.subscription_checkout(subscription=subscription, actor=admin, edition=_standard(), seats=2, interval="month")
    with pytest.raises(CheckoutInvalid, match="allows at most 100 users"):
        checkout.subscription_checkout(subscription=subscription, actor=admin, edition=_standard(), seats=101, interval="month")
    with pytest.raises(CheckoutInvalid, match="is free"):
        checkout.subscription_checkout(
            subscription=subscription, actor=admin, edition=edition_get(product_code="tracker", edition_code="free"), seats=3, interval="month"
        )
    with pytest.raises(CheckoutInvalid, match="is not an edition of Tracker"):
        checkout.subscription_checkout(
            subscription=subscription, actor=admin, edition=edition_get(product_code="wiki", edition_code="standard"), seats=3, interval="month"
        )
    with pytest.raises(CheckoutInvalid, match="monthly or annual"):
        checkout.subscription_checkout(subscription=subscription, actor=admin, edition=_standard(), seats=3, interval="week")
    assert not Invoice.objects.exists()


def test_another_organizations_card_setup_is_not_found(localstripe, catalog):
    acme, acme_admin = organization_on("standard")
    globex, globex_admin = organization_on("standard")
    acme_intent, _ = card_enter(localstripe, acme, acme_admin, OK_CARD)
    billing_account.card_setup_start(organization=globex, actor=globex_admin)
    with pytest.raises(NotFound):
        billing_account.card_setup_complete(organization=globex, actor=globex_admin, setup_intent_id=acme_intent.id)
    assert not globex.billing_account.has_card


def test_a_processing_intent_keeps_the_payment_under_way_and_never_unfails_one(localstripe, trial_organization):
    """payment_intent.processing (the bank has not answered yet) is applied; a payment already
    failed stays failed."""
    from billing import gateway

    organization, admin = trial_organization
    intent, _ = card_enter(localstripe, organization, admin, OK_CARD)
    billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=intent.id)
    payment = standard_checkout(organization, admin)
    assert {"payment_intent.processing", "payment_intent.canceled"} <= set(webhooks.HANDLED_WEBHOOKS)

    def processing(payment_id: str) -> gateway.PaymentIntent:
        return gateway.PaymentIntent(
            id="pi_processing", status="processing", amount=payment.amount_minor, currency=payment.currency, customer_id="",
            client_secret="", metadata={"flywheel_payment": payment_id}, error_message="", error_code="",
        )

    payments.payment_apply_intent(intent=processing(str(payment.public_id)))
    payment.refresh_from_db()
    assert (payment.status, payment.stripe_payment_intent_id) == (Payment.Status.PROCESSING, "pi_processing")
    Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.FAILED, failure_code="card_declined")
    payments.payment_apply_intent(intent=processing(str(payment.public_id)))
    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED
