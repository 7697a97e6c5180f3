"""The reason a card payment failed: read from real Stripe's shapes (the card error's
decline_code and payment_intent, a payment_failed intent's last_payment_error with its nested
payment_method, an expanded charge), kept at its most specific whichever path reports it first,
and said to the customer in words, never as Stripe's code.

The Stripe shapes below follow Stripe's API reference for a PaymentIntent and a card error
(docs.stripe.com/api/payment_intents/object, docs.stripe.com/api/errors), with the fields a
declined card fills in (docs.stripe.com/declines/codes); the ids are made up."""

import copy
from datetime import timedelta

import pytest
import stripe
import time_machine
from django.core import mail

from billing import gateway
from billing.declines import DECLINE_REASONS, DECLINED, decline_reason
from billing.models import Invoice, Payment, Subscription
from billing.services import billing_account, lifecycle, payments
from experiments import events
from experiments.models import Event

from ..helpers import DECLINED_AT_CHARGE, card_enter, paid_organization, visible_text

pytestmark = pytest.mark.django_db(transaction=True)

# A PaymentIntent as a declined off-session charge leaves it, in Stripe's shape.
PAYMENT_INTENT = {
    "amount": 1099, "amount_capturable": 0, "amount_received": 0, "application": None, "canceled_at": None,
    "cancellation_reason": None, "capture_method": "automatic",
    "client_secret": "pi_3FlywheelDeclined01_secret_madeup0001", "confirmation_method": "automatic",
    "created": 1234567890, "currency": "usd", "customer": {"id": "cus_FlywheelAcme01", "object": "customer"},
    "description": None, "id": "pi_3FlywheelDeclined01",
    "last_payment_error": {
        "charge": "ch_3FlywheelDeclined01", "code": "card_declined", "decline_code": "insufficient_funds",
        "doc_url": "https://stripe.com/docs/error-codes/card-declined", "message": "Your card has insufficient funds.",
        "payment_method": {"id": "pm_3FlywheelVisa9995", "object": "payment_method", "type": "card",
                           "card": {"brand": "visa", "last4": "9995", "exp_month": 8, "exp_year": 2030}},
        "type": "card_error",
    },
    "latest_charge": "ch_3FlywheelDeclined01", "livemode": False, "metadata": {}, "next_action": None,
    "object": "payment_intent", "payment_method": None, "payment_method_types": ["card"],
    "status": "requires_payment_method",
}


def test_a_payment_failed_intent_in_stripes_shape_gives_the_decline_code():
    intent = gateway.payment_intent_parse(copy.deepcopy(PAYMENT_INTENT))
    assert (intent.status, intent.error_code, intent.customer_id) == ("requires_payment_method", "insufficient_funds", "cus_FlywheelAcme01")
    assert intent.error_message == "Your card has insufficient funds."

    # No last_payment_error, the charge expanded (older API versions list it under `charges`).
    shape = copy.deepcopy(PAYMENT_INTENT)
    shape["last_payment_error"] = None
    charge = {"id": "ch_1", "object": "charge", "failure_code": "card_declined", "failure_message": "Your card was declined.",
              "outcome": {"reason": "expired_card", "type": "issuer_declined"}}
    assert gateway.payment_intent_parse({**shape, "latest_charge": charge}).error_code == "expired_card"
    listed = {**shape, "latest_charge": None, "charges": {"object": "list", "data": [charge], "has_more": False}}
    assert gateway.payment_intent_parse(listed).error_code == "expired_card"


def test_a_card_error_in_stripes_shape_carries_the_decline_code_and_the_payment_intent():
    body = {"error": {
        "charge": "ch_3FlywheelDeclined01", "code": "card_declined", "decline_code": "insufficient_funds",
        "doc_url": "https://stripe.com/docs/error-codes/card-declined", "message": "Your card has insufficient funds.",
        "payment_intent": copy.deepcopy(PAYMENT_INTENT), "type": "card_error",
    }}
    error = stripe.CardError("Your card has insufficient funds.", None, "card_declined", http_status=402, json_body=body)
    declined = gateway.card_declined_from(error)
    assert (declined.code, declined.decline_code, declined.payment_intent_id) == (
        "card_declined", "insufficient_funds", "pi_3FlywheelDeclined01"
    )


def _declined_renewal(localstripe):
    organization, admin, subscription = paid_organization(localstripe, seats=2)
    intent, _ = card_enter(localstripe, organization, admin, DECLINED_AT_CHARGE)
    billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=intent.id)
    return organization, subscription


def _renew(subscription):
    from config.celery import app as celery_app

    celery_app.conf.task_always_eager = True
    try:
        with time_machine.travel(subscription.current_period_end + timedelta(minutes=5), tick=False):
            lifecycle.lifecycle_tick()
    finally:
        celery_app.conf.task_always_eager = False
    return Payment.objects.get(invoice__kind=Invoice.Kind.RENEWAL)


def _stripe_says(payment, code: str) -> gateway.PaymentIntent:
    """Stripe's payment_failed intent for `payment`, as real Stripe shapes it (decline_code)."""
    shape = copy.deepcopy(PAYMENT_INTENT)
    shape.update(id=payment.stripe_payment_intent_id or "pi_declined", amount=payment.amount_minor,
                 currency=payment.currency.lower(), metadata={"flywheel_payment": str(payment.public_id)})
    shape["last_payment_error"]["decline_code"] = code
    return gateway.payment_intent_parse(shape)


def _failure_emails():
    return [message for message in mail.outbox if message.subject == "[Flywheel] Payment failed for Tracker"]


def test_the_banks_reason_replaces_the_generic_one_that_came_first(localstripe, catalog):
    organization, subscription = _declined_renewal(localstripe)
    payment = _renew(subscription)  # the worker: localstripe says only card_declined
    assert payment.failure_code == "card_declined"
    payments.payment_apply_intent(intent=_stripe_says(payment, "insufficient_funds"))  # Stripe's webhook
    payments.payment_apply_intent(intent=_stripe_says(payment, ""))  # a generic later delivery
    payment.refresh_from_db()
    assert payment.failure_code == "insufficient_funds"
    assert payment.decline_reason == "Your bank declined the charge: the card has insufficient funds."
    assert len(_failure_emails()) == 1
    assert Event.objects.filter(name=events.PAYMENT_FAILED, organization=organization).count() == 1


def test_the_banks_reason_that_came_first_is_kept_and_told(localstripe, catalog, monkeypatch):
    organization, subscription = _declined_renewal(localstripe)
    charge = gateway.payment_intent_charge

    def webhook_first(**kwargs):
        try:
            return charge(**kwargs)
        except Exception:
            payment = Payment.objects.get(invoice__kind=Invoice.Kind.RENEWAL)
            payments.payment_apply_intent(intent=_stripe_says(payment, "insufficient_funds"))
            raise

    monkeypatch.setattr(gateway, "payment_intent_charge", webhook_first)
    payment = _renew(subscription)  # then the worker's generic card_declined
    assert payment.failure_code == "insufficient_funds"
    [email] = _failure_emails()
    assert "Your bank declined the charge: the card has insufficient funds." in email.body
    assert "insufficient_funds" not in email.body and "card_declined" not in email.body
    assert Subscription.objects.get(pk=subscription.pk).status == Subscription.Status.PAST_DUE


def test_every_documented_decline_code_reads_as_a_sentence_never_as_the_code():
    documented = [
        "authentication_required", "approve_with_id", "call_issuer", "card_not_supported", "card_velocity_exceeded",
        "currency_not_supported", "do_not_honor", "do_not_try_again", "duplicate_transaction", "expired_card",
        "fraudulent", "generic_decline", "incorrect_number", "incorrect_cvc", "incorrect_pin", "incorrect_zip",
        "insufficient_funds", "invalid_account", "invalid_amount", "invalid_cvc", "invalid_expiry_month",
        "invalid_expiry_year", "invalid_number", "invalid_pin", "issuer_not_available", "lost_card",
        "merchant_blacklist", "new_account_information_available", "no_action_taken", "not_permitted",
        "offline_pin_required", "online_or_offline_pin_required", "pickup_card", "pin_try_exceeded",
        "processing_error", "reenter_transaction", "restricted_card", "revocation_of_all_authorizations",
        "revocation_of_authorization", "security_violation", "service_not_allowed", "stolen_card",
        "stop_payment_order", "testmode_decline", "transaction_not_allowed", "try_again_later",
        "withdrawal_count_limit_exceeded",
    ]
    for code in documented:
        sentence = decline_reason(code)
        assert sentence.endswith(".") and code not in sentence and "_" not in sentence, code
    assert {code for code in documented if code not in DECLINE_REASONS} == {"generic_decline"}
    # Stripe's advice: a lost or stolen card, or fraud, is told as a plain decline.
    assert decline_reason("stolen_card") == decline_reason("fraudulent") == DECLINED
    assert decline_reason("something_new") == decline_reason("") == DECLINED == "Your bank declined the charge."


def test_the_pages_that_show_a_failed_payment_say_why_in_words(client, localstripe, catalog):
    organization, subscription = _declined_renewal(localstripe)
    payment = _renew(subscription)
    payments.payment_apply_intent(intent=_stripe_says(payment, "expired_card"))
    admin = organization.memberships.get(role="admin").user
    client.force_login(admin)
    sentence = "Your bank declined the charge: the card has expired."
    from django.urls import reverse

    pages = {
        "payment": reverse("payment_status", args=[payment.public_id]),
        "invoice": reverse("invoice", args=[payment.invoice.public_id]),
        "card": f"{reverse('card_update')}?invoice={payment.invoice.public_id}",
        "billing": reverse("billing"),
    }
    for name, url in pages.items():
        response = client.get(url)
        assert response.status_code == 200, name
        text = visible_text(response.content.decode())
        assert sentence in text, name
        assert "expired_card" not in text and "card_declined" not in text, name
