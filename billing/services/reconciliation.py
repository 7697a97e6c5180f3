"""Nightly reconciliation: Flywheel's payments against Stripe's PaymentIntents.

Webhooks can be lost and workers can die between Stripe's answer and our record of it. This
reads every PaymentIntent Stripe created in a window and compares it with the payment it
names. One kind of difference is repaired, because the repair is the same safe, idempotent
step a webhook would take: Stripe charged, Flywheel did not record it
(billing.services.payments.payment_apply_intent). Everything else is reported, logged and printed, for
a person to decide: amounts or currencies that differ, PaymentIntents no payment knows, a
payment charged twice, a success Flywheel recorded that Stripe does not show.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError
from django.utils import timezone

from common.exceptions import FlywheelError
from common.money import money

from .. import gateway
from ..exceptions import PaymentSetupInvalid
from ..models import Payment
from .payments import payment_apply_intent

logger = logging.getLogger(__name__)

REPAIRED = "repaired"
AMOUNT_MISMATCH = "amount_mismatch"
UNKNOWN_INTENT = "unknown_intent"
DUPLICATE_CHARGE = "duplicate_charge"
NOT_IN_STRIPE = "not_in_stripe"
STATUS_MISMATCH = "status_mismatch"
REPAIR_FAILED = "repair_failed"


@dataclass(frozen=True)
class Finding:
    kind: str
    payment_intent_id: str
    payment_id: str
    detail: str

    def __str__(self) -> str:
        payment = f" payment {self.payment_id}" if self.payment_id else ""
        return f"{self.kind}: {self.payment_intent_id or '-'}{payment}: {self.detail}"


@dataclass
class ReconciliationReport:
    since: datetime
    intents_checked: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def repaired(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.kind == REPAIRED]

    @property
    def problems(self) -> list[Finding]:
        """What a person has to look at: everything that was not repaired."""
        return [finding for finding in self.findings if finding.kind != REPAIRED]

    def add(self, kind: str, intent_id: str, payment: Payment | None, detail: str) -> None:
        finding = Finding(kind, intent_id, str(payment.public_id) if payment else "", detail)
        self.findings.append(finding)
        if kind == REPAIRED:
            logger.warning("reconciliation %s", finding)
        else:
            logger.error("reconciliation %s", finding)


def _payment_named_by(intent: gateway.PaymentIntent) -> Payment | None:
    payment = Payment.objects.select_related("invoice").filter(stripe_payment_intent_id=intent.id).first()
    if payment is not None:
        return payment
    named = intent.metadata.get("flywheel_payment", "")
    try:
        return Payment.objects.select_related("invoice").filter(public_id=uuid.UUID(named)).first() if named else None
    except ValueError:
        return None


def payments_reconcile(*, since: datetime | None = None, days: int = 3) -> ReconciliationReport:
    """Compare every PaymentIntent created since `since` (default: `days` ago) with Flywheel's
    payments; repair what Stripe charged and Flywheel missed, report the rest. Safe to run at
    any time and as often as wanted: a second run finds nothing left to repair."""
    since = since or timezone.now() - timedelta(days=days)
    report = ReconciliationReport(since=since)
    intents = gateway.payment_intents_created_since(int(since.timestamp()))
    report.intents_checked = len(intents)
    seen: set[int] = set()
    for intent in intents:
        payment = _payment_named_by(intent)
        amount = money(intent.amount, intent.currency)
        if payment is None:
            report.add(
                UNKNOWN_INTENT,
                intent.id,
                None,
                f"{intent.status}, {amount}, customer {intent.customer_id or '-'}: no Flywheel payment names it",
            )
            continue
        seen.add(payment.pk)
        if payment.stripe_payment_intent_id and payment.stripe_payment_intent_id != intent.id:
            if intent.status == "succeeded":
                report.add(
                    DUPLICATE_CHARGE,
                    intent.id,
                    payment,
                    f"{amount} charged by a second PaymentIntent; the payment's is {payment.stripe_payment_intent_id}",
                )
            continue
        if intent.amount != payment.amount_minor or intent.currency.upper() != payment.currency.upper():
            report.add(
                AMOUNT_MISMATCH,
                intent.id,
                payment,
                f"Stripe {intent.status} {amount}, Flywheel {money(payment.amount_minor, payment.currency)} "
                f"for invoice {payment.invoice.number}",
            )
            continue
        if intent.status == "succeeded" and payment.status != Payment.Status.SUCCEEDED:
            _repair(report, intent, payment)
        elif payment.status == Payment.Status.SUCCEEDED and intent.status != "succeeded":
            report.add(STATUS_MISMATCH, intent.id, payment, f"Flywheel recorded a success, Stripe says {intent.status}")
    _succeeded_payments_missing(report, since, seen)
    logger.info(
        "reconciliation since %s: %s PaymentIntents, %s repaired, %s to look at",
        since.isoformat(),
        report.intents_checked,
        len(report.repaired),
        len(report.problems),
    )
    return report


def _repair(report: ReconciliationReport, intent: gateway.PaymentIntent, payment: Payment) -> None:
    paid_by_another = (
        Payment.objects.filter(invoice_id=payment.invoice_id, status=Payment.Status.SUCCEEDED).exclude(pk=payment.pk).first()
    )
    if paid_by_another is not None:
        report.add(
            DUPLICATE_CHARGE,
            intent.id,
            payment,
            f"Stripe charged {money(intent.amount, intent.currency)}, but invoice {payment.invoice.number} "
            f"was already paid by payment {paid_by_another.public_id}",
        )
        return
    previous = payment.get_status_display().lower()
    try:
        applied = payment_apply_intent(intent=intent)
    except (FlywheelError, IntegrityError) as error:
        report.add(REPAIR_FAILED, intent.id, payment, f"Stripe charged, recording it failed: {error}")
        return
    if applied is not None and applied.status == Payment.Status.SUCCEEDED:
        report.add(
            REPAIRED,
            intent.id,
            payment,
            f"Stripe charged {money(intent.amount, intent.currency)}, Flywheel had it {previous}: "
            f"now succeeded, invoice {payment.invoice.number} paid",
        )
    else:
        report.add(REPAIR_FAILED, intent.id, payment, "Stripe charged, Flywheel could not record it")


def _succeeded_payments_missing(report: ReconciliationReport, since: datetime, seen: set[int]) -> None:
    """Payments Flywheel recorded as succeeded in the window whose PaymentIntent Stripe did not
    list: read each back (it may simply be older than the window)."""
    candidates = (
        Payment.objects.select_related("invoice")
        .filter(status=Payment.Status.SUCCEEDED, succeeded_at__gte=since)
        .exclude(pk__in=seen)
        .order_by("pk")
    )
    for payment in candidates:
        if not payment.stripe_payment_intent_id:
            report.add(NOT_IN_STRIPE, "", payment, "succeeded in Flywheel without a PaymentIntent")
            continue
        try:
            intent = gateway.payment_intent_retrieve(payment.stripe_payment_intent_id)
        except PaymentSetupInvalid:
            report.add(NOT_IN_STRIPE, payment.stripe_payment_intent_id, payment, "Stripe does not know this PaymentIntent")
            continue
        if intent.status != "succeeded":
            report.add(STATUS_MISMATCH, intent.id, payment, f"Flywheel recorded a success, Stripe says {intent.status}")
        elif intent.amount != payment.amount_minor or intent.currency.upper() != payment.currency.upper():
            report.add(
                AMOUNT_MISMATCH,
                intent.id,
                payment,
                f"Stripe {money(intent.amount, intent.currency)}, Flywheel {money(payment.amount_minor, payment.currency)}",
            )
