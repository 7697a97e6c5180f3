"""Replaying stored webhooks and reconciling payments with Stripe's PaymentIntents, against
localstripe."""

from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from billing import gateway
from billing.models import Invoice, Payment, Subscription, WebhookEvent
from billing.services import reconciliation, webhooks
from billing.tasks import payments_reconcile as payments_reconcile_task
from experiments.models import Event

from ..factories import PaymentFactory
from ..helpers import (
    charged_but_unrecorded,
    paid_payment,
    webhook_event,
    webhook_post,
    webhook_signed,
)


def _store(client, event_id, kind, intent_id):
    payload, signature = webhook_signed(webhook_event(event_id, kind, intent_id))
    assert webhook_post(client, payload, signature).status_code == 200
    return WebhookEvent.objects.get(stripe_event_id=event_id)


def _command(name, *args):
    out, err = StringIO(), StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def test_reconcile_repairs_a_charge_flywheel_never_recorded(localstripe, trial_organization):
    organization, admin = trial_organization
    payment, intent_id = charged_but_unrecorded(localstripe, organization, admin)
    assert payment.status == Payment.Status.PROCESSING and not payment.stripe_payment_intent_id

    report = reconciliation.payments_reconcile()
    assert [(finding.kind, finding.payment_intent_id) for finding in report.findings] == [("repaired", intent_id)]
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED and payment.stripe_payment_intent_id == intent_id
    assert Invoice.objects.get(pk=payment.invoice_id).status == Invoice.Status.PAID
    assert Subscription.objects.get(organization=organization).status == Subscription.Status.ACTIVE

    again = reconciliation.payments_reconcile()  # nothing left to repair, nothing applied twice
    assert again.findings == [] and again.intents_checked == 1
    assert Event.objects.filter(name="subscription_paid", organization=organization).count() == 1


def test_unknown_intents_and_mismatches_are_reported_not_repaired(localstripe, trial_organization):
    organization, admin = trial_organization
    paid = paid_payment(localstripe, organization, admin)
    customer = organization.billing_account.stripe_customer_id
    stray = gateway.payment_intent_charge(
        amount=999, currency="usd", customer_id=customer, payment_method_id=paid.payment_method_id,
        metadata={}, idempotency_key="made-elsewhere",
    )
    # A payment still waiting, and a PaymentIntent naming it for another amount.
    pending = PaymentFactory(invoice=paid.invoice, payment_method_id=paid.payment_method_id, status=Payment.Status.FAILED)
    wrong = gateway.payment_intent_charge(
        amount=1, currency="usd", customer_id=customer, payment_method_id=paid.payment_method_id,
        metadata={"flywheel_payment": str(pending.public_id)}, idempotency_key="wrong-amount",
    )

    out = _command("stripe_reconcile")
    assert f"unknown_intent: {stray.id}" in out and "USD 9.99" in out
    assert f"amount_mismatch: {wrong.id} payment {pending.public_id}" in out
    assert "0 repaired, 2 to look at" in out
    pending.refresh_from_db()
    assert pending.status == Payment.Status.FAILED and pending.stripe_payment_intent_id == ""


def test_a_second_charge_for_a_paid_invoice_is_reported_as_a_duplicate(localstripe, trial_organization):
    organization, admin = trial_organization
    paid = paid_payment(localstripe, organization, admin)
    retry = PaymentFactory(invoice=paid.invoice, payment_method_id=paid.payment_method_id, status=Payment.Status.FAILED)
    twice = gateway.payment_intent_charge(
        amount=paid.amount_minor, currency="usd", customer_id=organization.billing_account.stripe_customer_id,
        payment_method_id=paid.payment_method_id, metadata={"flywheel_payment": str(retry.public_id)},
        idempotency_key="charged-twice",
    )
    report = reconciliation.payments_reconcile()
    assert [(finding.kind, finding.payment_intent_id) for finding in report.findings] == [("duplicate_charge", twice.id)]
    retry.refresh_from_db()
    assert retry.status == Payment.Status.FAILED


def test_a_success_stripe_does_not_know_is_reported(localstripe, trial_organization):
    organization, admin = trial_organization
    paid = paid_payment(localstripe, organization, admin)
    Payment.objects.filter(pk=paid.pk).update(stripe_payment_intent_id="pi_never_heard_of")
    localstripe.flush()
    report = reconciliation.payments_reconcile()
    assert [(finding.kind, finding.payment_intent_id) for finding in report.findings] == [
        ("not_in_stripe", "pi_never_heard_of")
    ]


def test_the_nightly_task_is_scheduled_and_runs(localstripe, trial_organization):
    schedule = settings.CELERY_BEAT_SCHEDULE["reconcile-stripe-payments"]
    assert schedule["task"] == "billing.tasks.payments_reconcile"
    organization, admin = trial_organization
    payment, _ = charged_but_unrecorded(localstripe, organization, admin)
    payments_reconcile_task()  # what beat sends, run here
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED


def test_replay_reapplies_stored_events_idempotently(client, localstripe, trial_organization):
    organization, admin = trial_organization
    payment, intent_id = charged_but_unrecorded(localstripe, organization, admin)
    failed_event = _store(client, "evt_replay_failed", "payment_intent.payment_failed", intent_id)
    webhooks.webhook_process(event_id=failed_event.pk)
    succeeded_event = _store(client, "evt_replay_ok", "payment_intent.succeeded", intent_id)  # stored, never processed
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED  # the handler reads Stripe's current state
    Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.PROCESSING)  # pretend it was missed

    out = _command("stripe_replay", "--event-id", "evt_replay_ok", "--event-id", "evt_missing")
    assert "replayed evt_replay_ok payment_intent.succeeded" in out and "Not stored (never received): evt_missing" in out
    assert "1 of 1 events replayed" in out
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED
    succeeded_event.refresh_from_db()
    assert succeeded_event.processed_at is not None

    before = Event.objects.filter(name="subscription_paid", organization=organization).count()
    out = _command("stripe_replay", "--type", "payment_intent.succeeded", "--type", "payment_intent.payment_failed")
    assert "2 of 2 events replayed" in out
    out = _command("stripe_replay", "--since", "2000-01-01")
    assert "2 of 2 events replayed" in out
    assert Event.objects.filter(name="subscription_paid", organization=organization).count() == before == 1
    assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED

    assert "would replay evt_replay_failed" in _command("stripe_replay", "--since", "2000-01-01", "--dry-run")
    with pytest.raises(CommandError, match="Choose the events"):
        call_command("stripe_replay")
    with pytest.raises(CommandError, match="Not a date"):
        call_command("stripe_replay", "--since", "yesterday")
