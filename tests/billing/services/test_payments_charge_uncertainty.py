"""A charge whose answer from Stripe was lost is never charged again: it is looked up until
Stripe answers, then adopted, or failed if Stripe has no intent for it."""

from datetime import timedelta
from unittest import mock

import pytest
import time_machine
from django.utils import timezone

from billing import gateway
from billing.exceptions import PaymentProcessorUnavailable
from billing.models import Payment
from billing.services import billing_account, lifecycle, payments, refunds

from ...conftest import organization_on
from ..helpers import OK_CARD, card_enter, standard_checkout


def _paying_organization(localstripe):
    organization, admin = organization_on("standard")
    intent, _ = card_enter(localstripe, organization, admin, OK_CARD)
    billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=intent.id)
    return organization, admin


def _intents_of(organization, payment):
    return [
        intent for intent in gateway.payment_intents_of_customer(organization.billing_account.stripe_customer_id)
        if intent.metadata.get("flywheel_invoice") == payment.invoice.number and intent.status == "succeeded"
    ]


def test_a_charge_whose_answer_was_lost_on_the_last_attempt_is_adopted_not_charged_again(localstripe, catalog, settings):
    organization, admin = _paying_organization(localstripe)
    payment = standard_checkout(organization, admin)
    real_charge, calls = gateway.payment_intent_charge, []

    def stripe_in_trouble(**kwargs):
        calls.append(1)
        if len(calls) < settings.PAYMENT_MAX_ATTEMPTS:
            raise PaymentProcessorUnavailable("connection refused")  # never reached Stripe
        real_charge(**kwargs)  # the last attempt reaches Stripe, which charges the card ...
        raise PaymentProcessorUnavailable("read timeout")  # ... but its answer is lost

    real_lookup, failed_lookups = gateway.payment_intents_of_customer, []

    def lookups_fail_twice_after_the_charge(customer_id):
        if len(calls) == settings.PAYMENT_MAX_ATTEMPTS and len(failed_lookups) < 2:  # Stripe still away
            failed_lookups.append(1)
            raise PaymentProcessorUnavailable("connection refused")
        return real_lookup(customer_id)

    with mock.patch.object(gateway, "payment_intent_charge", stripe_in_trouble), \
            mock.patch.object(gateway, "payment_intents_of_customer", lookups_fail_twice_after_the_charge):
        outcomes = []
        while not outcomes or not outcomes[-1].done:
            outcomes.append(payments.payment_charge(payment_id=payment.pk))
            payment.refresh_from_db()
            assert payment.status != Payment.Status.FAILED  # never "nothing was charged" while unknown
    assert len(calls) == settings.PAYMENT_MAX_ATTEMPTS and len(failed_lookups) == 2  # looked up, never charged again
    assert payment.status == Payment.Status.SUCCEEDED and payment.invoice.status == "paid"
    assert len(_intents_of(organization, payment)) == 1


def test_when_stripe_answers_that_the_last_attempt_did_not_charge_the_payment_fails(localstripe, catalog, settings):
    organization, admin = _paying_organization(localstripe)
    payment = standard_checkout(organization, admin)
    with mock.patch.object(gateway, "payment_intent_charge", side_effect=PaymentProcessorUnavailable("read timeout")) as charge:
        while not payments.payment_charge(payment_id=payment.pk).done:
            pass
    payment.refresh_from_db()
    assert charge.call_count == settings.PAYMENT_MAX_ATTEMPTS
    assert (payment.status, payment.failure_code) == (Payment.Status.FAILED, "processor_unavailable")
    assert _intents_of(organization, payment) == []


@pytest.mark.django_db(transaction=True)
def test_a_charge_and_a_refund_whose_tasks_were_never_published_are_scheduled_again(localstripe, catalog, settings):
    from billing import tasks

    organization, admin = _paying_organization(localstripe)
    with mock.patch.object(tasks.payment_charge, "apply_async", side_effect=ConnectionError("broker down")):
        payment = standard_checkout(organization, admin)  # committed; its task lost
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING
    published = []
    with mock.patch.object(tasks.payment_charge, "apply_async", side_effect=lambda args, **_: published.append(args)):
        assert lifecycle.work_resume_stalled(now=timezone.now()) == 0  # not stale yet: its task may be on its way
        later = timezone.now() + timedelta(minutes=settings.PAYMENT_STALE_MINUTES + 1)
        with time_machine.travel(later, tick=False):
            assert lifecycle.lifecycle_tick().resumed == 1
    assert published == [(payment.pk,)]
    payments.payment_charge(payment_id=payment.pk)  # what the worker does with it
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED

    with mock.patch.object(tasks.credit_note_refund, "apply_async", side_effect=ConnectionError("broker down")):
        note = refunds.refund_request(payment=payment, amount_minor=500, reason="Goodwill", actor=None)
    published = []
    with mock.patch.object(tasks.credit_note_refund, "apply_async", side_effect=lambda args, **_: published.append(args)), \
            time_machine.travel(timezone.now() + timedelta(minutes=settings.PAYMENT_STALE_MINUTES + 1), tick=False):
        assert lifecycle.work_resume_stalled(now=timezone.now()) == 1
    assert published == [(note.pk,)]


def test_a_late_success_for_a_payment_whose_invoice_another_paid_is_flagged_not_a_crash(localstripe, catalog, caplog):
    # Stripe says an intent succeeded for a payment that had failed, after a retry paid the
    # invoice: the webhook must not fail for ever on the one-live-payment constraint.
    organization, admin = _paying_organization(localstripe)
    first = standard_checkout(organization, admin)
    Payment.objects.filter(pk=first.pk).update(status=Payment.Status.FAILED, failure_message="declined")
    retry = standard_checkout(organization, admin)
    payments.payment_charge(payment_id=retry.pk)
    retry.refresh_from_db()
    assert retry.status == Payment.Status.SUCCEEDED
    late = gateway.PaymentIntent(
        id="pi_late_success", status="succeeded", amount=first.amount_minor, currency=first.currency,
        customer_id=organization.billing_account.stripe_customer_id, client_secret="", error_message="", error_code="",
        metadata={"flywheel_payment": str(first.public_id), "flywheel_invoice": first.invoice.number},
    )
    payments.payment_apply_intent(intent=late)
    first.refresh_from_db()
    assert first.status == Payment.Status.FAILED and "refund it in Stripe" in first.failure_message
    assert "the customer may have paid twice; refund pi_late_success" in caplog.text
    assert Payment.objects.get(pk=retry.pk).status == Payment.Status.SUCCEEDED
