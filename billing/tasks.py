"""Billing's Celery tasks. Each imports its service inside the task body (the HackSoft Django
Styleguide's answer to a services <-> tasks circle): services enqueue these tasks, so this module
imports no service at import time. The registered names are billing.tasks.<function>, which the
beat schedule (config/settings.py) and queued messages use: keep them."""

from celery import shared_task


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=None)
def payment_charge(self, payment_id: int) -> None:
    """Charge one payment; the service bounds the attempts and picks the wait."""
    from .services import payments

    outcome = payments.payment_charge(payment_id=payment_id)
    if not outcome.done:
        raise self.retry(countdown=outcome.retry_in)


@shared_task(acks_late=True, ignore_result=True)
def webhook_process(event_id: int) -> None:
    """Apply one stored Stripe event. A temporary error is recorded on the event, which the
    drain retries after its backoff (the beat sweep nudges it). (Intake now nudges
    `webhooks_drain`; this stays for messages queued before an upgrade.)"""
    from .services import webhooks

    webhooks.webhook_process(event_id=event_id)


@shared_task(acks_late=True, ignore_result=True)
def webhooks_drain() -> None:
    """Apply every stored, unprocessed Stripe event (failures keep their error and back off)."""
    from .services import webhooks

    webhooks.webhooks_drain()


@shared_task(acks_late=True, ignore_result=True)
def lifecycle_tick() -> None:
    """Beat: trial reminders and ends, renewals, dunning retries, overdue purchase orders."""
    from .services import lifecycle

    lifecycle.lifecycle_tick()


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=None)
def credit_note_refund(self, credit_note_id: int) -> None:
    """Ask Stripe for one credit note's refund; the service bounds the attempts."""
    from .services import refunds

    outcome = refunds.credit_note_refund(credit_note_id=credit_note_id)
    if not outcome.done:
        raise self.retry(countdown=outcome.retry_in)


@shared_task(acks_late=True, ignore_result=True)
def payments_reconcile() -> None:
    """Beat, nightly: compare payments with Stripe's PaymentIntents (billing/services/reconciliation.py)."""
    from .services import reconciliation

    reconciliation.payments_reconcile()


@shared_task(acks_late=True, ignore_result=True)
def webhooks_resume_unprocessed() -> int:
    """Beat: nudge a drain for stored Stripe events that wait with no drain running."""
    from .services import webhooks

    return webhooks.webhooks_resume_unprocessed()


@shared_task(
    acks_late=True,
    ignore_result=True,
    autoretry_for=(OSError,),
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=10,
)
def invoice_receipt_send(invoice_id: int) -> None:
    """Email the receipt of one paid invoice (its PDF attached); retried on connection errors."""
    from .services import invoices

    invoices.invoice_receipt_send(invoice_id=invoice_id)
