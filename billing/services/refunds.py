"""Refunds and credit notes, and the Stripe events about money going back (refunds, disputes).

A refund is asked for the way a charge is: the credit note is written `pending` and committed,
then the worker asks Stripe (idempotency key `flywheel-refund-<credit note id>`, and the note's
id in the refund's metadata), and the outcome is recorded. Only then does the credit note take
the next number of its own gapless sequence and become final. Refunds made outside Flywheel
(Stripe's dashboard) become credit notes when Stripe tells us (`charge.refunded`).

This module imports no other module of billing.services, so the webhook drain (billing.services.webhooks)
can dispatch refund and dispute events here.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from accounts.mail import mail_queue
from accounts.models import User
from accounts.services import organization_lock
from common.exceptions import FlywheelError
from common.money import money
from common.tasks import enqueue_on_commit
from experiments import events
from experiments.services import event_record

from .. import gateway, tasks
from ..events import DISPUTE_CLOSED
from ..exceptions import (
    CardDeclined,
    PaymentProcessorUnavailable,
    PaymentSetupInvalid,
    StripeObjectMissing,
    WebhookNotOurs,
)
from ..models import (
    CreditNote,
    Dispute,
    Invoice,
    InvoiceSequence,
    Payment,
    Subscription,
)

logger = logging.getLogger(__name__)

REFUND_REASONS = (
    ("requested_by_customer", "Requested by the customer"),
    ("duplicate", "Duplicate payment"),
    ("fraudulent", "Fraudulent payment"),
    ("service_issue", "Service problem"),
)
OUTSIDE_REFUND_REASON = "Refunded in Stripe"


class RefundInvalid(FlywheelError):
    default_message = "That refund is not possible."


@dataclass(frozen=True)
class RefundOutcome:
    done: bool
    retry_in: float | None = None


def credit_note_number() -> str:
    """The next credit note number. Call inside the transaction that issues the credit note:
    the sequence row stays locked until it commits, so numbers have no gaps."""
    sequence, _ = InvoiceSequence.objects.get_or_create(name="credit_note")
    sequence = InvoiceSequence.objects.select_for_update().get(pk=sequence.pk)
    number = sequence.next_number
    InvoiceSequence.objects.filter(pk=sequence.pk).update(next_number=F("next_number") + 1)
    prefix = getattr(settings, "CREDIT_NOTE_NUMBER_PREFIX", f"{settings.INVOICE_NUMBER_PREFIX}-CN")
    return f"{prefix}-{number:06d}"


def payment_refundable_minor(payment: Payment) -> int:
    """What is left to refund of a payment: what it collected less every credit note that is
    issued or on its way (pending)."""
    if payment.status != Payment.Status.SUCCEEDED:
        return 0
    taken = (
        CreditNote.objects.filter(payment=payment, status__in=(CreditNote.Status.PENDING, CreditNote.Status.ISSUED))
        .aggregate(total=Sum("amount_minor"))["total"]
        or 0
    )
    return max(0, payment.amount_minor - int(taken))


def _lock_payment(payment: Payment) -> Payment:
    """Lock in the order of every billing change: organization, subscription, payment, invoice."""
    organization_lock(payment.organization)
    Subscription.objects.select_for_update(of=("self",)).filter(invoices__payments=payment).first()
    locked = Payment.objects.select_for_update(of=("self",)).select_related("invoice", "organization").get(pk=payment.pk)
    Invoice.objects.select_for_update().filter(pk=locked.invoice_id).first()
    return locked


def refund_request(*, payment: Payment, amount_minor: int, reason: str, actor: User | None) -> CreditNote:
    """Staff: give back `amount_minor` of a succeeded card payment. Writes a pending credit
    note; once committed, the worker asks Stripe for the refund (`credit_note_refund`).

    Invariant: the credit notes of a payment (issued or pending) never add up to more than it
    collected. Checked under the payment's lock, so two staff clicking at once cannot both
    refund the last of it.
    """
    reason = " ".join(reason.split())[:240]
    if not reason:
        raise RefundInvalid("Say why the money goes back: the reason is printed on the credit note.")
    if amount_minor <= 0:
        raise RefundInvalid("Refund more than nothing.")
    with transaction.atomic():
        payment = _lock_payment(payment)
        if payment.status != Payment.Status.SUCCEEDED or not payment.stripe_payment_intent_id:
            raise RefundInvalid(f"Only a succeeded card payment can be refunded; this one is {payment.get_status_display().lower()}.")
        refundable = payment_refundable_minor(payment)
        if amount_minor > refundable:
            raise RefundInvalid(
                f"At most {money(refundable, payment.currency)} of invoice {payment.invoice.number} is left to refund."
            )
        note = CreditNote.objects.create(
            organization=payment.organization,
            invoice=payment.invoice,
            payment=payment,
            currency=payment.currency,
            amount_minor=amount_minor,
            reason=reason,
            created_by=actor,
        )
        enqueue_on_commit(tasks.credit_note_refund, note.pk)
    logger.info("refund of %s on invoice %s requested by %s", amount_minor, payment.invoice.number, actor)
    return note


def credit_note_refund(*, credit_note_id: int) -> RefundOutcome:
    """Ask Stripe to refund one pending credit note (the worker's job). No row is locked while
    Stripe is called.

    Invariant: one credit note, at most one refund. The idempotency key is the credit note's
    id; before a new attempt, a refund Stripe already has for it (a crash after Stripe
    answered) is adopted instead of refunding again (localstripe ignores idempotency keys).
    """
    with transaction.atomic():
        note = (
            CreditNote.objects.select_for_update(of=("self",))
            .select_related("payment", "invoice")
            .filter(pk=credit_note_id)
            .first()
        )
        if note is None or note.status != CreditNote.Status.PENDING:
            return RefundOutcome(done=True)
        note.attempts += 1
        note.save(update_fields=["attempts"])
    payment = note.payment
    try:
        existing = None
        if note.attempts > 1:
            existing = next(
                (
                    refund
                    for refund in gateway.refunds_of_payment_intent(payment.stripe_payment_intent_id)
                    if refund.metadata.get("flywheel_credit_note") == str(note.public_id)
                ),
                None,
            )
        refund = existing or gateway.refund_create(
            payment_intent_id=payment.stripe_payment_intent_id,
            amount=note.amount_minor,
            metadata={
                "flywheel_credit_note": str(note.public_id),
                "flywheel_invoice": note.invoice.number,
                "flywheel_payment": str(payment.public_id),
            },
            idempotency_key=f"flywheel-refund-{note.public_id}",
        )
    except PaymentProcessorUnavailable as error:
        if note.attempts >= settings.PAYMENT_MAX_ATTEMPTS:
            credit_note_record_failure(credit_note_id=note.pk, message=error.message)
            return RefundOutcome(done=True)
        CreditNote.objects.filter(pk=note.pk, status=CreditNote.Status.PENDING).update(failure_message=error.message)
        return RefundOutcome(done=False, retry_in=settings.PAYMENT_RETRY_SECONDS * note.attempts)
    except (PaymentSetupInvalid, CardDeclined) as error:
        credit_note_record_failure(credit_note_id=note.pk, message=error.message)
        return RefundOutcome(done=True)
    refund_record(payment=payment, refund=refund)
    return RefundOutcome(done=True)


@transaction.atomic
def credit_note_record_failure(*, credit_note_id: int, message: str) -> CreditNote:
    """Stripe refused the refund: the credit note fails without a number, nothing was given
    back, and staff may try again. An issued credit note is never failed."""
    note = CreditNote.objects.select_for_update().get(pk=credit_note_id)
    if note.status == CreditNote.Status.PENDING:
        note.status = CreditNote.Status.FAILED
        note.failure_message = message[:2000]
        note.save(update_fields=["status", "failure_message"])
        logger.warning("refund for credit note %s failed: %s", note.public_id, message)
        _staff_tell_refund_failed(note)
    return note


def _staff_tell_refund_failed(note: CreditNote) -> None:
    """Staff hear of a refund Stripe refused (a partner's take-over credit, or any other):
    nothing went back, the amount is refundable again, and they retry it from the admin."""
    staff = sorted(User.objects.filter(is_staff=True, is_active=True).values_list("email", flat=True))
    if not staff:
        return
    invoice = note.invoice
    payer = invoice.bill_to if invoice.bill_to_id else invoice.organization
    mail_queue(
        EmailMessage(
            subject=f"[{settings.SITE_NAME}] Refund of {money(note.amount_minor, note.currency)} to {payer.name} failed (invoice {invoice.number})",
            body=(
                f"Stripe did not refund {money(note.amount_minor, note.currency)} of invoice {invoice.number} to {payer.name}: "
                f"{note.failure_message} Nothing was given back and the amount can be refunded again: use Refund on invoice "
                f"{invoice.number} in the admin, or pay it back by transfer. Reason on the credit note: {note.reason}"
            ),
            to=staff,
        )
    )


def refund_record(*, payment: Payment, refund: gateway.Refund) -> CreditNote | None:
    """Bring Flywheel in line with one Stripe refund of `payment`: the refund's credit note is
    issued (numbered) once it succeeded, failed if Stripe could not refund.

    Idempotent and safe in any order: one credit note per Stripe refund (a database
    constraint), found by refund id or by the credit note id in the refund's metadata; a
    refund nobody asked Flywheel for (the Stripe dashboard) gets a credit note of its own.
    """
    with transaction.atomic():
        payment = _lock_payment(payment)
        note = CreditNote.objects.select_for_update().filter(stripe_refund_id=refund.id).first()
        if note is None:
            named = refund.metadata.get("flywheel_credit_note", "")
            try:
                named_id = uuid.UUID(named) if named else None
            except ValueError:
                named_id = None
            if named_id is not None:
                note = CreditNote.objects.select_for_update().filter(public_id=named_id, payment=payment).first()
        if refund.status in ("failed", "canceled"):
            if note is None:
                return None
            if note.status == CreditNote.Status.ISSUED:
                logger.error(
                    "Stripe refund %s failed after credit note %s was issued: give the money back by other means",
                    refund.id,
                    note.number,
                )
                return note
            note.status = CreditNote.Status.FAILED
            note.stripe_refund_id = refund.id
            note.failure_message = f"Stripe could not refund: {refund.failure_reason or refund.status}."
            note.save(update_fields=["status", "stripe_refund_id", "failure_message"])
            return note
        if note is None:
            note = CreditNote(
                organization=payment.organization,
                invoice=payment.invoice,
                payment=payment,
                source=CreditNote.Source.STRIPE,
                currency=refund.currency,
                amount_minor=refund.amount,
                reason=OUTSIDE_REFUND_REASON,
            )
            logger.warning("refund %s of invoice %s was made outside Flywheel", refund.id, payment.invoice.number)
        if note.status == CreditNote.Status.ISSUED:
            return note
        note.stripe_refund_id = refund.id
        if refund.status not in ("succeeded", "pending"):
            note.save()  # e.g. requires_action: known, not yet final
            return note
        if refund.amount != note.amount_minor or refund.currency.upper() != note.currency.upper():
            logger.error(
                "Stripe refunded %s %s for credit note %s, which asked for %s %s: the credit note says what Stripe did",
                refund.amount,
                refund.currency,
                note.public_id,
                note.amount_minor,
                note.currency,
            )
            note.amount_minor, note.currency = refund.amount, refund.currency.upper()
        note.number = credit_note_number()
        note.status = CreditNote.Status.ISSUED
        note.issued_at = timezone.now()
        note.failure_message = ""
        note.save()
        _payment_refunded(
            payment, amount_minor=note.amount_minor, currency=note.currency, source="refund", reference=note.number
        )
        return note


# Webhooks -------------------------------------------------------------------------------------

REFUND_WEBHOOKS = ("charge.refunded", "charge.refund.updated", "refund.created", "refund.updated", "refund.failed")
DISPUTE_WEBHOOKS = (
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
)
HANDLED_WEBHOOKS = REFUND_WEBHOOKS + DISPUTE_WEBHOOKS


def webhook_apply(*, event_type: str, payload: dict[str, Any]) -> None:
    """Apply a stored Stripe event about refunds or disputes; other types are ignored.

    Refund events only name the charge: its refunds are read back from Stripe and each is
    recorded (refund_record), so a duplicate, late or reordered event changes nothing.
    """
    if event_type not in HANDLED_WEBHOOKS:
        return
    obj = (payload.get("data") or {}).get("object") or {}
    if event_type in DISPUTE_WEBHOOKS:
        created = payload.get("created")
        dispute_record(
            dispute=obj, event_created=datetime.fromtimestamp(int(created), tz=UTC) if created else None
        )
        return
    charge_id = obj.get("id", "") if obj.get("object") == "charge" else obj.get("charge", "")
    if isinstance(charge_id, dict):
        charge_id = charge_id.get("id", "")
    if charge_id:
        charge_refunds_sync(charge_id=str(charge_id))


def _payment_of_charge(charge_id: str, *, about: str) -> Payment:
    """The Flywheel payment a charge collected. WebhookNotOurs (the event is recorded as not
    ours, with this reason) when Stripe has no such charge in this account (a Connect
    account's, deleted test data) or its PaymentIntent is no payment of Flywheel's."""
    try:
        charge = gateway.charge_retrieve(charge_id)
    except StripeObjectMissing:
        raise WebhookNotOurs(f"{about} for charge {charge_id}, which Stripe does not have in this account") from None
    payment = (
        Payment.objects.select_related("invoice", "organization").filter(stripe_payment_intent_id=charge.payment_intent_id).first()
        if charge.payment_intent_id
        else None
    )
    if payment is None:
        raise WebhookNotOurs(f"{about} for charge {charge_id}, which no Flywheel payment knows")
    return payment


def charge_refunds_sync(*, charge_id: str) -> list[CreditNote]:
    """Record every refund Stripe has for the charge's PaymentIntent. WebhookNotOurs when no
    Flywheel payment knows the charge."""
    payment = _payment_of_charge(charge_id, about="refund event")
    notes = [
        refund_record(payment=payment, refund=refund)
        for refund in gateway.refunds_of_payment_intent(payment.stripe_payment_intent_id)
    ]
    return [note for note in notes if note is not None]


def dispute_record(*, dispute: dict[str, Any], event_created: datetime | None = None) -> Dispute | None:
    """Store a dispute (chargeback) once by Stripe's id and follow it to its outcome.

    Any dispute event may come first (Stripe does not promise an order): the first one stores
    the dispute, later ones move its status, through every status Stripe documents
    (Dispute.OPEN_STATUSES, APPEAL_STATUSES, CLOSED_STATUSES). A status is only replaced by one
    from a newer event (`status_at`), and a decided dispute (won, warning closed, prevented)
    never reopens, so a late or duplicate event changes nothing; only a lost one is reopened,
    by its appeal, and a won appeal gives back what the loss took from revenue. A dispute on
    a charge no Flywheel payment knows raises WebhookNotOurs. Staff hear of a new dispute and of its outcome;
    they answer it with evidence in Stripe by `evidence_due_by`. The charge is read back from
    Stripe to find the payment; the dispute's facts come from the verified event.
    """
    dispute_id = str(dispute.get("id", ""))
    charge_id = dispute.get("charge", "")
    if isinstance(charge_id, dict):
        charge_id = charge_id.get("id", "")
    if not dispute_id or not charge_id:
        return None
    status = str(dispute.get("status") or "")[:32]
    due_by = (dispute.get("evidence_details") or {}).get("due_by")
    existing = Dispute.objects.filter(stripe_dispute_id=dispute_id).first()
    if existing is None:
        payment = _payment_of_charge(str(charge_id), about=f"dispute {dispute_id}")
        try:
            with transaction.atomic():
                existing, created = Dispute.objects.get_or_create(
                    stripe_dispute_id=dispute_id,
                    defaults={
                        "organization": payment.organization,
                        "payment": payment,
                        "amount_minor": int(dispute.get("amount") or payment.amount_minor),
                        "currency": str(dispute.get("currency") or payment.currency).upper(),
                        "reason": str(dispute.get("reason") or "")[:64],
                        "status": status,
                        "status_at": event_created,
                        "closed_at": timezone.now() if status in Dispute.CLOSED_STATUSES else None,
                        "evidence_due_by": datetime.fromtimestamp(int(due_by), tz=UTC) if due_by else None,
                    },
                )
        except IntegrityError:
            existing, created = Dispute.objects.get(stripe_dispute_id=dispute_id), False
        if created:
            logger.error(
                "payment %s of %s (invoice %s) is disputed: %s %s, reason %r, status %s; answer with evidence in Stripe by %s",
                payment.public_id,
                payment.organization,
                payment.invoice.number,
                existing.amount_minor,
                existing.currency,
                existing.reason,
                existing.status,
                existing.evidence_due_by or "the deadline Stripe gives",
            )
            if existing.closed_at:
                with transaction.atomic():
                    _dispute_closed(Dispute.objects.select_for_update().get(pk=existing.pk))
            return existing
    return _dispute_status_apply(dispute_id=dispute_id, status=status, event_created=event_created, due_by=due_by)


def _dispute_status_apply(*, dispute_id: str, status: str, event_created: datetime | None, due_by: Any) -> Dispute:
    with transaction.atomic():
        record = Dispute.objects.select_for_update().get(stripe_dispute_id=dispute_id)
        if not status or status == record.status:
            return record
        if event_created is not None and record.status_at is not None and event_created < record.status_at:
            return record  # a stale event: a newer one already set the status
        if record.closed_at is not None and status not in Dispute.REOPENED_BY.get(record.status, ()):
            return record  # decided for good (won, warning closed, prevented)
        reopened = record.closed_at is not None
        record.status = status
        record.status_at = event_created or record.status_at
        if due_by:
            record.evidence_due_by = datetime.fromtimestamp(int(due_by), tz=UTC)
        closing = status in Dispute.CLOSED_STATUSES
        record.closed_at = timezone.now() if closing else None
        record.save(update_fields=["status", "status_at", "evidence_due_by", "closed_at"])
        if closing:
            _dispute_closed(record)
        elif reopened:
            logger.error(
                "dispute %s on payment %s of %s (invoice %s) was lost and is appealed: %s; answer in Stripe by %s",
                record.stripe_dispute_id,
                record.payment.public_id,
                record.organization,
                record.payment.invoice.number,
                record.status,
                record.evidence_due_by or "the deadline Stripe gives",
            )
        return record


def _payment_refunded(payment: Payment, *, amount_minor: int, currency: str, source: str, reference: str) -> None:
    """The analytics event of money given back on a paid invoice (revenue in experiment analysis
    is what was paid less this), in the caller's transaction."""
    event_record(
        name=events.PAYMENT_REFUNDED,
        organization=payment.organization,
        properties={
            "amount_minor": amount_minor,
            "currency": currency.upper(),
            "source": source,
            "reference": reference,
            "invoice": payment.invoice.number,
        },
    )


def _dispute_closed(record: Dispute) -> None:
    """A dispute was decided: analytics hears the outcome, and revenue loses what a lost
    dispute took back, once (`refund_recorded_minor`). A dispute won on appeal after it was
    lost gives that back: a payment_refunded event of the negative amount, which experiment
    analysis subtracts like any refund, so the revenue is what it was before the dispute. In
    the caller's transaction, with the dispute locked."""
    payment = record.payment
    reversed_minor = 0
    if record.status == "lost" and record.refund_recorded_minor == 0:
        _payment_refunded(
            payment, amount_minor=record.amount_minor, currency=record.currency, source="dispute", reference=record.stripe_dispute_id
        )
        record.refund_recorded_minor = record.amount_minor
    elif record.status != "lost" and record.refund_recorded_minor:
        reversed_minor = record.refund_recorded_minor
        _payment_refunded(
            payment,
            amount_minor=-reversed_minor,
            currency=record.currency,
            source="dispute_appeal_won",
            reference=record.stripe_dispute_id,
        )
        record.refund_recorded_minor = 0
    record.save(update_fields=["refund_recorded_minor"])
    event_record(
        name=DISPUTE_CLOSED,
        organization=record.organization,
        properties={
            "dispute": record.stripe_dispute_id,
            "outcome": record.status,
            "amount_minor": record.amount_minor,
            "currency": record.currency,
            "invoice": payment.invoice.number,
            "appeal_won": bool(reversed_minor),
        },
    )
    log = logger.error if record.status == "lost" else logger.warning
    log(
        "dispute %s on payment %s of %s (invoice %s) closed: %s (%s %s)%s",
        record.stripe_dispute_id,
        payment.public_id,
        record.organization,
        payment.invoice.number,
        record.status,
        record.amount_minor,
        record.currency,
        f"; won on appeal, the {reversed_minor} {record.currency} lost is back" if reversed_minor else "",
    )


@transaction.atomic
def credit_note_paid_back(*, credit_note: CreditNote, actor: User) -> CreditNote:
    """Staff paid back by bank transfer what a credit note of source transfer owes (a partner's
    unused days on a purchase-order invoice it had paid by transfer): `paid_back_at`, once."""
    note = CreditNote.objects.select_for_update().get(pk=credit_note.pk)
    if note.source != CreditNote.Source.TRANSFER:
        raise RefundInvalid(f"Credit note {note.number or note.public_id} was refunded to a card; nothing to pay back by hand.")
    if note.paid_back_at is None:
        CreditNote.objects.filter(pk=note.pk).update(paid_back_at=timezone.now())
        note.refresh_from_db()
        logger.info("credit note %s paid back by transfer, recorded by %s", note.number, actor)
    return note
