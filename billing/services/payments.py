"""Card payments of invoices: starting one, charging it off-session (the worker), recording a
failure (a renewal's starts dunning), applying what Stripe says about its PaymentIntent, and
paying an open invoice now."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.selectors import admin_membership_require
from accounts.services import organization_lock
from common.money import money
from common.tasks import enqueue_on_commit
from experiments import events
from experiments.services import event_record

from .. import gateway, tasks
from ..declines import reason_is_more_specific
from ..exceptions import (
    CardDeclined,
    CheckoutInvalid,
    NoCardOnFile,
    PaymentProcessorUnavailable,
    PaymentSetupInvalid,
)
from ..formats import day
from ..models import (
    BillingAccount,
    Invoice,
    Payment,
    Subscription,
)
from .billing_account import (
    PayerCollection,
    billing_account_of,
    billing_email_admins,
    payer_live_payment_refuse,
    payer_take_over_withdraw,
)
from .invoices import invoice_grant_on_terms, invoice_mark_paid

logger = logging.getLogger(__name__)


def payment_start(*, invoice: Invoice, account: BillingAccount, actor: User) -> Payment:
    """A pending payment of the whole invoice with the card on file, charged by the worker
    once the transaction commits."""
    payment = Payment.objects.create(
        organization=invoice.organization,
        invoice=invoice,
        amount_minor=invoice.total_minor,
        currency=invoice.currency,
        payment_method_id=account.payment_method_id,
        created_by=actor,
    )
    enqueue_on_commit(tasks.payment_charge, payment.pk)
    return payment


def invoice_collect(*, invoice: Invoice, collection: PayerCollection, actor: User | None, what: str) -> Payment | None:
    """Collect a new invoice as its payer pays (billing_account.payer_collection): by card, a
    pending payment charged by the worker after commit (NoCardOnFile when the payer has none);
    on purchase-order terms, the PO number and due date go on the invoice, what it buys is
    granted at once (invoice_grant_on_terms) and the invoice is emailed to the payer's billing
    recipients. `what` names the purchase in that email ("12 more seats of Tracker").
    Call inside the caller's transaction, with the organization and subscription locked."""
    if not collection.purchase_order:
        if not collection.account.has_card:
            raise NoCardOnFile(f"{collection.account.organization.name} has no card on file: add one first.")
        return payment_start(invoice=invoice, account=collection.account, actor=actor)
    invoice.collection_method = BillingAccount.Collection.INVOICE
    invoice.po_number = collection.po_number
    invoice.due_at = timezone.now() + timedelta(days=collection.net_terms_days)
    invoice.save(update_fields=["collection_method", "po_number", "due_at"])
    invoice_grant_on_terms(invoice=invoice, actor=actor)
    licensee = f" for {invoice.organization.name}" if invoice.bill_to_id else ""
    billing_email_admins(
        organization=invoice.bill_to or invoice.organization,
        subject=f"Invoice {invoice.number}{licensee}: {what}",
        body=(
            f"Granted now{licensee}, on purchase-order terms: {what}.\n\n"
            f"Invoice {invoice.number} (PO {invoice.po_number or '-'}) for {money(invoice.total_minor, invoice.currency)} "
            f"is due on {day(invoice.due_at)}. View it at {settings.SITE_URL}{reverse('invoice', args=[invoice.public_id])}"
        ),
    )
    return None


@dataclass(frozen=True)
class ChargeOutcome:
    done: bool
    retry_in: float | None = None


def payment_charge(*, payment_id: int) -> ChargeOutcome:
    """Charge one pending payment off-session (the worker's job). No row is locked while
    Stripe is called: the attempt is claimed and committed first.

    Invariant: a payment is charged at most once. The PaymentIntent's idempotency key is the
    payment's id; before a new attempt, an intent Stripe already has for this payment (a
    crash after Stripe answered) is adopted instead of creating another. When Stripe could not
    be reached by the last attempt, that attempt may still have charged (its answer lost): the
    payment fails only once Stripe says it holds no intent for it, and until Stripe answers it
    is only looked up, never charged again.
    """
    with transaction.atomic():
        payment = (
            Payment.objects.select_for_update(of=("self",))
            .select_related("organization__billing_account", "invoice__bill_to__billing_account")
            .filter(pk=payment_id)
            .first()
        )
        if payment is None or payment.status not in (Payment.Status.PENDING, Payment.Status.PROCESSING):
            return ChargeOutcome(done=True)
        payment.status = Payment.Status.PROCESSING
        payment.attempts += 1
        payment.save(update_fields=["status", "attempts", "updated_at"])
    # The payer's Stripe customer: a partner's card pays for its customer's invoices.
    account = payment.invoice.bill_to.billing_account if payment.invoice.bill_to_id else payment.organization.billing_account
    key = f"flywheel-payment-{payment.public_id}"
    try:
        existing = None
        if payment.attempts > 1:
            # An earlier attempt may have reached Stripe before it was cut off.
            existing = next(
                (
                    intent
                    for intent in gateway.payment_intents_of_customer(account.stripe_customer_id)
                    if intent.metadata.get("flywheel_payment") == str(payment.public_id)
                ),
                None,
            )
        if existing is None and payment.attempts > settings.PAYMENT_MAX_ATTEMPTS:
            # Only checking whether the last attempt charged: Stripe says it did not.
            payment_record_failure(
                payment_id=payment.pk, message=payment.failure_message or "Stripe could not be reached.", code="processor_unavailable"
            )
            return ChargeOutcome(done=True)
        intent = existing or gateway.payment_intent_charge(
            amount=payment.amount_minor,
            currency=payment.currency,
            customer_id=account.stripe_customer_id,
            payment_method_id=payment.payment_method_id,
            metadata={"flywheel_payment": str(payment.public_id), "flywheel_invoice": payment.invoice.number},
            idempotency_key=key,
        )
    except CardDeclined as declined:
        payment_record_failure(
            payment_id=payment.pk,
            message=declined.message,
            code=declined.decline_code or declined.code,
            payment_intent_id=declined.payment_intent_id,
        )
        return ChargeOutcome(done=True)
    except PaymentProcessorUnavailable as error:
        Payment.objects.filter(pk=payment.pk, status=Payment.Status.PROCESSING).update(
            status=Payment.Status.PENDING, failure_message=error.message
        )
        # After the last attempt, whether it charged is unknown until Stripe answers: look again.
        attempts = min(payment.attempts, settings.PAYMENT_MAX_ATTEMPTS)
        return ChargeOutcome(done=False, retry_in=settings.PAYMENT_RETRY_SECONDS * attempts)
    except PaymentSetupInvalid as error:
        payment_record_failure(payment_id=payment.pk, message=error.message, code="invalid_request")
        return ChargeOutcome(done=True)
    payment_apply_intent(intent=intent)
    return ChargeOutcome(done=True)


@transaction.atomic
def payment_record_failure(*, payment_id: int, message: str, code: str = "", payment_intent_id: str = "") -> Payment:
    """A payment failed: the invoice stays open so the admin can try another card. A payment
    that already succeeded is never turned back.

    Recorded once, whichever of the worker (its card error) and Stripe's webhook comes first:
    a payment already failed only gains what the second path knows better (a more specific
    reason, the declined PaymentIntent's id), and nobody is told again. Locks in the billing
    order: organization, subscription, payment."""
    found = Payment.objects.select_related("organization").get(pk=payment_id)
    organization_lock(found.organization)
    Subscription.objects.select_for_update(of=("self",)).filter(invoices__payments=found).first()
    payment = Payment.objects.select_for_update().get(pk=payment_id)
    if payment.status == Payment.Status.SUCCEEDED:
        return payment
    if payment_intent_id and not payment.stripe_payment_intent_id:
        payment.stripe_payment_intent_id = payment_intent_id[:64]
    if payment.status == Payment.Status.FAILED:
        _failure_reason_keep(payment, code=code, message=message)
        payment.save(update_fields=["stripe_payment_intent_id", "failure_message", "failure_code", "updated_at"])
        return payment
    payment.status = Payment.Status.FAILED
    payment.failure_message = message[:2000]
    payment.failure_code = code[:64]
    payment.save(update_fields=["status", "stripe_payment_intent_id", "failure_message", "failure_code", "updated_at"])
    renewal_payment_failed(payment)
    return payment


def _failure_reason_keep(payment: Payment, *, code: str, message: str) -> None:
    """A failure already recorded takes another path's reason only if it is more specific
    (insufficient_funds over card_declined), so the order of the paths never loses it."""
    if reason_is_more_specific(code, payment.failure_code):
        payment.failure_code = code[:64]
        payment.failure_message = (message or payment.failure_message)[:2000]
    elif not payment.failure_message:
        payment.failure_message = message[:2000]


def renewal_payment_failed(payment: Payment) -> None:
    """A renewal charge failed: the subscription goes past due and dunning starts (retries on
    DUNNING_RETRY_DAYS, an email each time, then suspension after DUNNING_GRACE_DAYS)."""
    invoice = payment.invoice
    if invoice.kind != Invoice.Kind.RENEWAL or invoice.status != Invoice.Status.OPEN:
        return
    subscription = Subscription.objects.select_for_update(of=("self",)).select_related("product").get(pk=invoice.subscription_id)
    now = timezone.now()
    if subscription.status == Subscription.Status.ACTIVE:
        subscription.status = Subscription.Status.PAST_DUE
        subscription.past_due_since = now
        subscription.dunning_attempts = 0
        subscription.next_dunning_at = now + timedelta(days=settings.DUNNING_RETRY_DAYS[0])
        subscription.save()
        event_record(
            name=events.PAYMENT_FAILED,
            organization=subscription.organization,
            properties={
                "product": subscription.product.code,
                "invoice": invoice.number,
                "reason": payment.failure_message[:200],
                "code": payment.failure_code,
            },
        )
    if invoice.bill_to_id:
        # The partner pays: it gets the invoice's email; the customer's admins hear only that
        # their product is affected, never the partner's amounts.
        billing_email_admins(
            organization=subscription.organization,
            subject=f"{subscription.product.name}: the renewal payment by {invoice.bill_to.name} did not go through",
            body=(
                f"{subscription.product.name} is managed by {invoice.bill_to.name}, who pays for it. Their payment for "
                f"the renewal did not go through; we have told them and will try again. {subscription.product.name} "
                f"keeps working meanwhile. If it stays unpaid, {subscription.product.name} will be suspended: "
                f"ask {invoice.bill_to.name} from your billing page, {settings.SITE_URL}{reverse('billing')}"
            ),
        )
    billing_email_admins(
        organization=invoice.bill_to or subscription.organization,
        subject=f"Payment failed for {subscription.product.name}" + (f" of {subscription.organization.name}" if invoice.bill_to_id else ""),
        body=(
            f"We could not charge your card for invoice {invoice.number} "
            f"({money(payment.amount_minor, payment.currency)}). {payment.decline_reason}\n\n"
            f"Enter a card and pay this invoice here: {settings.SITE_URL}/billing/card/?invoice={invoice.public_id}\n\n"
            "We will try again automatically. If the invoice stays unpaid, "
            f"{subscription.product.name} will be suspended."
        ),
    )


def payment_apply_intent(*, intent: gateway.PaymentIntent) -> Payment | None:
    """Bring the payment a PaymentIntent belongs to in line with the intent's current state.

    Idempotent and safe in any order: a settled payment only moves from failed to succeeded
    (a later successful retry of the same intent), never back; success applies the invoice.
    """
    payment_public_id = intent.metadata.get("flywheel_payment", "")
    found = Payment.objects.filter(stripe_payment_intent_id=intent.id).first() if intent.id else None
    if found is None and payment_public_id:
        try:
            found = Payment.objects.filter(public_id=uuid.UUID(payment_public_id)).first()
        except ValueError:
            found = None
    if found is None:
        return None
    if found.status == Payment.Status.SUCCEEDED and found.stripe_payment_intent_id == intent.id:
        return found  # settled for good: nothing an intent says can change it, so take no locks
    with transaction.atomic():
        # The lock order of every billing change: organization, subscription, payment, invoice.
        organization_lock(found.organization)
        Subscription.objects.select_for_update(of=("self",)).filter(invoices__payments=found).first()
        payment = Payment.objects.select_for_update().get(pk=found.pk)
        if intent.amount != payment.amount_minor or intent.currency.upper() != payment.currency.upper():
            logger.error("PaymentIntent %s does not match payment %s", intent.id, payment.public_id)
            return payment
        if not payment.stripe_payment_intent_id:
            payment.stripe_payment_intent_id = intent.id
            payment.client_secret = intent.client_secret
        if intent.status == "succeeded":
            holder = None
            if payment.status != Payment.Status.SUCCEEDED:
                holder = (
                    Payment.objects.filter(invoice_id=payment.invoice_id, status__in=(*Payment.LIVE, Payment.Status.SUCCEEDED))
                    .exclude(pk=payment.pk)
                    .first()
                )
            if holder is not None:
                # Another payment holds the invoice already (paid, or under way): Stripe says this
                # one charged too. It cannot also be the invoice's payment: staff refund it.
                logger.error(
                    "PaymentIntent %s succeeded for payment %s of invoice %s, which payment %s (%s) holds: "
                    "the customer may have paid twice; refund %s in Stripe if so",
                    intent.id, payment.public_id, payment.invoice.number, holder.public_id, holder.status, intent.id,
                )
                payment.failure_message = (
                    f"Stripe charged this ({intent.id}) while payment {holder.public_id} held the invoice: "
                    "refund it in Stripe if both went through."
                )
                payment.save()
                return payment
            if payment.status != Payment.Status.SUCCEEDED:
                payment.status = Payment.Status.SUCCEEDED
                payment.succeeded_at = timezone.now()
                payment.failure_message = ""
                payment.save()
                invoice_mark_paid(invoice=payment.invoice, payment=payment)
            return payment
        if payment.status == Payment.Status.SUCCEEDED:
            return payment
        if intent.status == "requires_action":
            payment.status = Payment.Status.REQUIRES_ACTION
        elif intent.status in ("requires_payment_method", "canceled"):
            # requires_payment_method: the charge was declined; canceled: the intent will never
            # charge (canceled in Stripe, or abandoned). Either fails the payment, once.
            if payment.status == Payment.Status.FAILED:
                # Already recorded (the worker's card error, or an earlier delivery of this
                # event): the admins were told once. Only the intent's link and a more specific
                # reason than the first path's are added.
                _failure_reason_keep(payment, code=intent.error_code, message=intent.error_message)
                payment.save()
                return payment
            payment.status = Payment.Status.FAILED
            payment.failure_message = intent.error_message or (
                "The payment was canceled." if intent.status == "canceled" else "The payment was not completed."
            )
            payment.failure_code = intent.error_code or ("canceled" if intent.status == "canceled" else "")
            payment.save()
            renewal_payment_failed(payment)
            return payment
        elif intent.status == "processing" and payment.status != Payment.Status.FAILED:
            # The bank has not answered yet (some cards, bank debits): still under way. A payment
            # already failed stays failed; a success comes as `succeeded`.
            payment.status = Payment.Status.PROCESSING
        payment.save()
        return payment


def invoice_pay_now(*, invoice: Invoice, actor: User) -> Payment:
    """Charge an open card invoice to the card on file now: after a decline, with the card
    the admin just entered. The invoice is the one whose price was shown; paying it applies
    its change as if the first attempt had succeeded.

    Invariant: at most one payment per invoice is in flight or succeeded (a database
    constraint), so a double click returns the payment already under way.
    """
    payer = invoice.bill_to or invoice.organization
    admin_membership_require(organization=payer, user=actor, doing="manage billing")
    with transaction.atomic():
        organization_lock(invoice.organization)
        subscription = (
            Subscription.objects.select_for_update(of=("self",))
            .select_related("product", "billed_to", "organization")
            .get(pk=invoice.subscription_id)
        )
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status != Invoice.Status.OPEN:
            raise CheckoutInvalid(f"Invoice {invoice.number} is {invoice.get_status_display().lower()}; there is nothing to pay.")
        if invoice.collection_method != BillingAccount.Collection.CARD:
            raise CheckoutInvalid(f"Invoice {invoice.number} is paid by bank transfer against its purchase order.")
        stale_kinds = (Invoice.Kind.UPGRADE, Invoice.Kind.SEATS, Invoice.Kind.ADDON, Invoice.Kind.TAKEOVER)
        if invoice.kind in stale_kinds and invoice.period_end <= timezone.now():
            # Priced for the rest of a period that is over: paying it now would give the change
            # for the next period at this one's price.
            raise CheckoutInvalid(f"Invoice {invoice.number} was for a period that is over; make the change again.")
        live = invoice.payments.exclude(status=Payment.Status.FAILED).first()
        if live is not None:
            return live
        if invoice.kind == Invoice.Kind.TAKEOVER:
            if subscription.billed_to_id is None or subscription.current_period_end != invoice.period_end:
                raise CheckoutInvalid(
                    f"Invoice {invoice.number} priced a term that has changed; take {subscription.product.name} over again from the billing page."
                )
            payer_live_payment_refuse(subscription=subscription)
        elif invoice.bill_to_id and invoice.bill_to_id == subscription.billed_to_id:
            payer_take_over_withdraw(subscription=subscription)  # the partner's change makes its price stale
        account = billing_account_of(payer)
        if not account.has_card:
            raise NoCardOnFile("Add a card first.")
        return payment_start(invoice=invoice, account=account, actor=actor)


def payment_refresh(*, payment: Payment) -> Payment | None:
    """Read the payment's PaymentIntent back from Stripe and apply what it says: after 3-D
    Secure in the browser, before Stripe's webhook tells the same. Idempotent and safe in any
    order, as payment_apply_intent is (its rules decide; this only fetches the intent)."""
    return payment_apply_intent(intent=gateway.payment_intent_retrieve(payment.stripe_payment_intent_id))
