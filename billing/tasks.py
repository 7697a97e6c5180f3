from celery import shared_task

from . import lifecycle, services


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=None)
def payment_charge(self, payment_id: int) -> None:
    """Charge one payment; the service bounds the attempts and picks the wait."""
    outcome = services.payment_charge(payment_id=payment_id)
    if not outcome.done:
        raise self.retry(countdown=outcome.retry_in)


@shared_task(acks_late=True, ignore_result=True)
def webhook_process(event_id: int) -> None:
    """Apply one stored Stripe event. A temporary error is recorded on the event, which the
    drain retries after its backoff (the beat sweep nudges it). (Intake now nudges
    `webhooks_drain`; this stays for messages queued before an upgrade.)"""
    services.webhook_process(event_id=event_id)


@shared_task(acks_late=True, ignore_result=True)
def webhooks_drain() -> None:
    """Apply every stored, unprocessed Stripe event (failures keep their error and back off)."""
    services.webhooks_drain()


@shared_task(acks_late=True, ignore_result=True)
def lifecycle_tick() -> None:
    """Beat: trial reminders and ends, renewals, dunning retries, overdue purchase orders."""
    lifecycle.lifecycle_tick()


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=None)
def credit_note_refund(self, credit_note_id: int) -> None:
    """Ask Stripe for one credit note's refund; the service bounds the attempts."""
    from . import refunds

    outcome = refunds.credit_note_refund(credit_note_id=credit_note_id)
    if not outcome.done:
        raise self.retry(countdown=outcome.retry_in)


@shared_task(acks_late=True, ignore_result=True)
def payments_reconcile() -> None:
    """Beat, nightly: compare payments with Stripe's PaymentIntents (billing/reconciliation.py)."""
    from . import reconciliation

    reconciliation.payments_reconcile()


@shared_task(acks_late=True, ignore_result=True)
def webhooks_resume_unprocessed() -> int:
    """Beat: nudge a drain for stored Stripe events that wait with no drain running."""
    return services.webhooks_resume_unprocessed()


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
    services.invoice_receipt_send(invoice_id=invoice_id)
