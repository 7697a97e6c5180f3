"""Invoices: issuing a numbered invoice, marking it paid and applying what it bought (exactly
once), a purchase-order invoice paid by transfer, and the receipt email."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import Organization, User
from accounts.services import organization_lock
from catalog.models import AddOn, Edition
from common.money import money
from common.tasks import enqueue_on_commit
from experiments import events
from experiments.services import event_record

from .. import tasks
from ..documents import document_pdf, invoice_document
from ..entitlements import entitlements_invalidate
from ..exceptions import CheckoutInvalid
from ..formats import day, seats_text, span
from ..models import (
    AddOnSubscription,
    BillingAccount,
    CreditNote,
    Invoice,
    InvoiceLine,
    InvoiceSequence,
    Payment,
    Subscription,
)
from ..pricing import discount_description
from .billing_account import (
    billing_account_of,
    billing_email_admins,
    billing_email_recipients,
    customer_details,
    staff_email,
)
from .grants import addon_grants_changed_if_any, addon_invoice_apply, addons_follow_edition
from .refunds import RefundInvalid, credit_note_number, payment_refundable_minor, refund_request


def _invoice_number() -> str:
    sequence, _ = InvoiceSequence.objects.get_or_create(name="invoice")
    sequence = InvoiceSequence.objects.select_for_update().get(pk=sequence.pk)
    number = sequence.next_number
    InvoiceSequence.objects.filter(pk=sequence.pk).update(next_number=F("next_number") + 1)
    return f"{settings.INVOICE_NUMBER_PREFIX}-{number:06d}"


@dataclass(frozen=True)
class CreditLine:
    """Money owed back inside an invoice, as positive numbers (the line stores them negated)."""

    description: str
    quantity: int
    unit_amount_minor: int
    amount_minor: int


@dataclass(frozen=True)
class ChargeLine:
    """One more line of an invoice, after its first: an add-on on a renewal or on added seats,
    for the invoice's period unless its own is given."""

    description: str
    quantity: int
    unit_amount_minor: int
    amount_minor: int
    addon: AddOn | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None


def discount_lines(amount_minor: int, discount_bp: int) -> list[ChargeLine]:
    """The payer's discount as an invoice line of its own (negative), or none:
    "Partner discount (Gold, 15 %)". `amount_minor` is what it takes off (pricing.discount_minor)."""
    if amount_minor <= 0 or discount_bp <= 0:
        return []
    return [ChargeLine(description=discount_description(discount_bp), quantity=1, unit_amount_minor=-amount_minor, amount_minor=-amount_minor)]


def invoice_issue(
    *,
    organization: Organization,
    subscription: Subscription,
    kind: str,
    edition: Edition,
    seats: int,
    interval: str,
    unit_amount_minor: int,
    quantity: int,
    amount_minor: int,
    period_start: datetime,
    period_end: datetime,
    description: str,
    seats_delta: int = 0,
    request_key: str = "",
    credit: CreditLine | None = None,
    addon: AddOn | None = None,
    lines: Sequence[ChargeLine] = (),
    bill_to: Organization | None = None,
    discount_bp: int = 0,
) -> Invoice:
    """Issue a numbered invoice: its first line, then `lines` (one per add-on of a renewal or
    of added seats, each naming its add-on), and a credit line when given. Call inside the
    caller's transaction. The total is the lines' sum and is never negative.

    `addon`: an add-on invoice (kind addon) buys it; its first line names it too.

    `bill_to`: the organization that pays when not `organization` (a partner paying for its
    customer, the licensee): the invoice is made out to it and names the licensee beside it.
    `discount_bp`: the payer's discount its lines were priced at (the discount is a line of its
    own among `lines`); paying a conversion makes it the subscription's."""
    total = amount_minor + sum(line.amount_minor for line in lines) - (credit.amount_minor if credit else 0)
    if total < 0:
        raise CheckoutInvalid("The credit is larger than the charge; nothing to invoice.")
    invoice = Invoice.objects.create(
        organization=organization,
        number=_invoice_number(),
        kind=kind,
        currency=edition.currency,
        total_minor=total,
        seller_details=settings.SELLER_DETAILS,
        customer_details=customer_details(billing_account_of(bill_to or organization)),
        bill_to=bill_to if bill_to is not None and bill_to.pk != organization.pk else None,
        licensee_details=(
            customer_details(billing_account_of(organization)) if bill_to is not None and bill_to.pk != organization.pk else ""
        ),
        issued_at=timezone.now(),
        subscription=subscription,
        target_edition=edition,
        target_seats=seats,
        target_interval=interval,
        period_start=period_start,
        period_end=period_end,
        seats_delta=seats_delta,
        request_key=request_key,
        addon=addon,
        discount_bp=discount_bp if bill_to is not None and bill_to.pk != organization.pk else 0,
    )
    InvoiceLine.objects.create(
        invoice=invoice,
        description=description,
        quantity=quantity,
        unit_amount_minor=unit_amount_minor,
        amount_minor=amount_minor,
        period_start=period_start,
        period_end=period_end,
        addon=addon,
    )
    for line in lines:
        InvoiceLine.objects.create(
            invoice=invoice,
            description=line.description[:240],
            quantity=line.quantity,
            unit_amount_minor=line.unit_amount_minor,
            amount_minor=line.amount_minor,
            period_start=line.period_start or period_start,
            period_end=line.period_end or period_end,
            addon=line.addon,
        )
    if credit is not None:
        InvoiceLine.objects.create(
            invoice=invoice,
            description=credit.description,
            quantity=credit.quantity,
            unit_amount_minor=-credit.unit_amount_minor,
            amount_minor=-credit.amount_minor,
            period_start=period_start,
            period_end=period_end,
        )
    return invoice


def owed_for_time_used(now) -> Q:
    """Open invoices that are a debt whatever happens next: a purchase-order renewal for a
    period that has begun (the customer had the product on its terms), or a purchase-order
    add-on (granted at once on those terms). Never voided."""
    return Q(
        kind__in=(Invoice.Kind.RENEWAL, Invoice.Kind.ADDON),
        collection_method=BillingAccount.Collection.INVOICE,
        period_start__lte=now,
    )


def invoice_mark_paid(*, invoice: Invoice, payment: Payment | None) -> Invoice:
    """Mark an invoice paid and apply what it bought, exactly once (applied_at)."""
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.applied_at is not None:
        return invoice
    now = timezone.now()
    if invoice.status == Invoice.Status.VOID:
        # Replaced (a quote, a renewal, a partner's change) while its payment was out: what it
        # bought is no longer on offer. The money goes back; nothing is applied.
        return invoice_paid_not_applied(invoice=invoice, payment=payment, why=f"invoice {invoice.number} was void when it was paid")
    if invoice.kind == Invoice.Kind.TAKEOVER and invoice.collection_method != BillingAccount.Collection.INVOICE:
        current = Subscription.objects.select_for_update(of=("self",)).get(pk=invoice.subscription_id)
        misfit = payer_take_over_misfit(invoice=invoice, subscription=current)
        if misfit:
            return invoice_paid_not_applied(invoice=invoice, payment=payment, why=misfit)
    invoice.status = Invoice.Status.PAID
    invoice.paid_at = now
    invoice.applied_at = now
    invoice.save(update_fields=["status", "paid_at", "applied_at"])
    if invoice.total_minor > 0:
        # Here and only here, under the invoice's lock and its applied_at: one receipt per
        # payment, however many of the webhook, the worker and staff see it paid.
        enqueue_on_commit(tasks.invoice_receipt_send, invoice.pk)
    subscription = Subscription.objects.select_for_update().select_related("edition").get(pk=invoice.subscription_id)
    if invoice.kind in GRANTED_ON_TERMS and invoice.collection_method == BillingAccount.Collection.INVOICE:
        return invoice  # granted when it was issued (invoice_grant_on_terms): paying it changes nothing more
    if invoice.kind == Invoice.Kind.RENEWAL:
        # A debt paid after the subscription ended (a purchase order paid late) starts nothing again.
        if subscription.status != Subscription.Status.CANCELED:
            reactivated = subscription.status == Subscription.Status.SUSPENDED
            if subscription.current_period_end is None or invoice.period_end > subscription.current_period_end:
                subscription.current_period_start = invoice.period_start
                subscription.current_period_end = invoice.period_end
            subscription.status = Subscription.Status.ACTIVE
            subscription.past_due_since = None
            subscription.dunning_attempts = 0
            subscription.next_dunning_at = None
            subscription.suspended_at = None
            subscription.save()
            if reactivated:
                addon_grants_changed_if_any(subscription=subscription)
        event_record(
            name=events.SUBSCRIPTION_RENEWED,
            user=payment.created_by if payment else None,
            organization=invoice.organization,
            properties={"product": subscription.product.code, "amount_minor": invoice.total_minor, "currency": invoice.currency},
        )
        return invoice
    if invoice.kind == Invoice.Kind.UPGRADE:
        previous_edition = subscription.edition.code
        subscription.edition = invoice.target_edition
        subscription.pending_edition = None
        subscription.save()
        addons_follow_edition(subscription=subscription)  # a downgrade given up: its add-ons stay
        event_record(
            name=events.EDITION_CHANGED,
            user=payment.created_by if payment else None,
            organization=invoice.organization,
            properties={
                "product": subscription.product.code,
                "from": previous_edition,
                "to": invoice.target_edition.code,
                "amount_minor": invoice.total_minor,
                "currency": invoice.currency,
            },
        )
        return invoice
    if invoice.kind == Invoice.Kind.SEATS:
        Subscription.objects.filter(pk=subscription.pk).update(seat_limit=F("seat_limit") + invoice.seats_delta)
        entitlements_invalidate(organization_id=invoice.organization_id)
        event_record(
            name=events.SEATS_ADDED,
            user=payment.created_by if payment else None,
            organization=invoice.organization,
            properties={
                "product": subscription.product.code,
                "seats_added": invoice.seats_delta,
                "amount_minor": invoice.total_minor,
                "currency": invoice.currency,
            },
        )
        return invoice
    if invoice.kind == Invoice.Kind.ADDON:
        addon = invoice.addon
        # A recurring add-on paid after its base ended (a purchase order paid late) starts nothing.
        if subscription.status != Subscription.Status.CANCELED or addon.pricing == AddOn.Pricing.ONE_OFF:
            addon_invoice_apply(
                invoice=invoice,
                actor=payment.created_by if payment else None,
                create=invoice.collection_method != BillingAccount.Collection.INVOICE,  # granted at issue
            )
        # Bought once: a purchase-order add-on was recorded when its invoice was issued (and granted).
        if invoice.collection_method == BillingAccount.Collection.INVOICE:
            return invoice
        event_record(
            name=events.ADDON_BOUGHT,
            user=payment.created_by if payment else None,
            organization=invoice.organization,
            properties={
                "product": subscription.product.code,
                "addon": addon.code,
                "amount_minor": invoice.total_minor,
                "currency": invoice.currency,
            },
        )
        return invoice
    if invoice.kind == Invoice.Kind.TAKEOVER:
        payer_take_over_apply(invoice=invoice, subscription=subscription, actor=payment.created_by if payment else None)
        return invoice
    conversion_apply(invoice=invoice, subscription=subscription, actor=payment.created_by if payment else None)
    return invoice


def conversion_apply(*, invoice: Invoice, subscription: Subscription, actor: User | None) -> Subscription:
    """What a conversion invoice buys: the edition, seats, interval and period it names, status
    active, and its payer: billed to `invoice.bill_to` at its discount (a partner's purchase),
    or to the organization itself. The add-ons its lines name become active (a quote that
    bought them). Call with the organization, the subscription and the invoice locked."""
    previous = subscription.status
    subscription.edition = invoice.target_edition
    subscription.seat_limit = invoice.target_seats
    subscription.interval = invoice.target_interval
    subscription.status = Subscription.Status.ACTIVE
    subscription.trial_ends_at = None
    subscription.suspended_at = None
    subscription.current_period_start = invoice.period_start
    subscription.current_period_end = invoice.period_end
    subscription.billed_to_id = invoice.bill_to_id
    subscription.billed_to_discount_bp = invoice.discount_bp if invoice.bill_to_id else 0
    subscription.billed_to_ends_at_renewal = False
    if invoice.collection_method != BillingAccount.Collection.INVOICE:
        subscription.purchase_order_number = ""  # paid by card: its renewals are charged to the card
    subscription.save()
    for addon in AddOn.objects.filter(pk__in=invoice.lines.exclude(addon=None).values("addon")):
        if addon.pricing != AddOn.Pricing.ONE_OFF:
            addon_line_grant(invoice=invoice, addon=addon, actor=actor)
    if previous == Subscription.Status.SUSPENDED:
        addon_grants_changed_if_any(subscription=subscription)
    entitlements_invalidate(organization_id=invoice.organization_id)
    event_record(
        name=events.SUBSCRIPTION_PAID,
        user=actor,
        organization=invoice.organization,
        properties={
            "product": subscription.product.code,
            "edition": invoice.target_edition.code,
            "seats": invoice.target_seats,
            "interval": invoice.target_interval,
            "amount_minor": invoice.total_minor,
            "currency": invoice.currency,
            "from_status": previous,
            "billed_to_partner": bool(invoice.bill_to_id),
        },
    )
    return subscription


def addon_line_grant(*, invoice: Invoice, addon: AddOn, actor: User | None) -> None:
    """An add-on bought on a line of a conversion invoice (a quote): active on the base."""
    live = (
        AddOnSubscription.objects.select_for_update(of=("self",))
        .filter(subscription_id=invoice.subscription_id, addon=addon, status__in=AddOnSubscription.LIVE_STATUSES)
        .first()
    )
    if live is None:
        AddOnSubscription.objects.create(
            organization_id=invoice.organization_id,
            subscription_id=invoice.subscription_id,
            addon=addon,
            status=AddOnSubscription.Status.ACTIVE,
            started_by=actor,
        )
    elif live.status != AddOnSubscription.Status.ACTIVE:
        live.status = AddOnSubscription.Status.ACTIVE
        live.trial_ends_at = None
        live.suspended_at = None
        live.save(update_fields=["status", "trial_ends_at", "suspended_at", "updated_at"])


def invoice_grant_on_terms(*, invoice: Invoice, actor: User | None) -> None:
    """A purchase-order invoice grants what it buys when it is issued (net terms: the customer
    has it while the invoice is being paid); paying it by transfer later changes nothing more
    (invoice_mark_paid). Call with the organization, the subscription and the invoice locked."""
    subscription = Subscription.objects.select_for_update().select_related("edition", "product").get(pk=invoice.subscription_id)
    if invoice.kind == Invoice.Kind.CONVERSION:
        conversion_apply(invoice=invoice, subscription=subscription, actor=actor)
    elif invoice.kind == Invoice.Kind.SEATS:
        Subscription.objects.filter(pk=subscription.pk).update(seat_limit=F("seat_limit") + invoice.seats_delta)
        entitlements_invalidate(organization_id=invoice.organization_id)
        event_record(
            name=events.SEATS_ADDED,
            user=actor,
            organization=invoice.organization,
            properties={
                "product": subscription.product.code,
                "seats_added": invoice.seats_delta,
                "amount_minor": invoice.total_minor,
                "currency": invoice.currency,
                "collection": "invoice",
            },
        )
    elif invoice.kind == Invoice.Kind.UPGRADE:
        previous_edition = subscription.edition.code
        subscription.edition = invoice.target_edition
        subscription.pending_edition = None
        subscription.save()
        addons_follow_edition(subscription=subscription)
        entitlements_invalidate(organization_id=invoice.organization_id)
        event_record(
            name=events.EDITION_CHANGED,
            user=actor,
            organization=invoice.organization,
            properties={
                "product": subscription.product.code,
                "from": previous_edition,
                "to": invoice.target_edition.code,
                "amount_minor": invoice.total_minor,
                "currency": invoice.currency,
                "collection": "invoice",
            },
        )
    elif invoice.kind == Invoice.Kind.ADDON:
        addon_invoice_apply(invoice=invoice, actor=actor)
    elif invoice.kind == Invoice.Kind.TAKEOVER:
        payer_take_over_apply(invoice=invoice, subscription=subscription, actor=actor)


GRANTED_ON_TERMS = (Invoice.Kind.CONVERSION, Invoice.Kind.SEATS, Invoice.Kind.UPGRADE, Invoice.Kind.TAKEOVER)


# Taking a partner's subscription over now -----------------------------------------------------


def payer_take_over_misfit(*, invoice: Invoice, subscription: Subscription) -> str:
    """Why a take-over invoice no longer fits its subscription ("" when it does): it priced the
    rest of one term of one edition, seat count and set of recurring add-ons, billed to a
    partner; a renewal, a partner's change or an earlier take-over since makes it stale."""
    if subscription.billed_to_id is None:
        return "the subscription was billed to nobody any more"
    if subscription.status != Subscription.Status.ACTIVE or subscription.current_period_end != invoice.period_end:
        return "the term it priced is over"
    if subscription.edition_id != invoice.target_edition_id or subscription.seat_limit != invoice.target_seats:
        return "the edition or seats changed since it was priced"
    addons = set(
        AddOnSubscription.objects.filter(subscription=subscription, status=AddOnSubscription.Status.ACTIVE)
        .exclude(addon__pricing=AddOn.Pricing.ONE_OFF)
        .values_list("addon_id", flat=True)
    )
    if addons != set(invoice.lines.exclude(addon=None).values_list("addon_id", flat=True)):
        return "the add-ons changed since it was priced"
    return ""


def invoice_paid_not_applied(*, invoice: Invoice, payment: Payment | None, why: str) -> Invoice:
    """A payment arrived for an invoice that must not apply any more (`why`): the invoice is
    void and marked handled (applied_at, so a repeated webhook does nothing), the payment is
    refunded in full (a pending credit note, refunded by the worker), and staff are told; if it
    cannot be refunded here, staff are told to pay it back. Call with the invoice locked."""
    invoice.status = Invoice.Status.VOID
    invoice.applied_at = timezone.now()
    invoice.save(update_fields=["status", "applied_at"])
    refunded = False
    if payment is not None and payment.stripe_payment_intent_id:
        amount = payment_refundable_minor(payment)
        if amount > 0:
            try:
                refund_request(payment=payment, amount_minor=amount, reason=f"Not applied: {why}", actor=None)
                refunded = True
            except RefundInvalid:
                refunded = False
    staff_email(
        subject=f"Payment for invoice {invoice.number} not applied{'; refunded' if refunded else ': pay it back'}",
        body=(
            f"A payment of {money(payment.amount_minor if payment else invoice.total_minor, invoice.currency)} came in for "
            f"invoice {invoice.number} of {invoice.organization.name}, but {why}, so it bought nothing. "
            + ("It is being refunded to the card." if refunded else "Refund it by hand and record it in the admin.")
        ),
    )
    return invoice



def payer_take_over_apply(*, invoice: Invoice, subscription: Subscription, actor: User | None) -> None:
    """The licensee paid (or owes on its purchase order) the rest of the current term at list
    price: the subscription is its own from now on (billed_to cleared, same period end), and the
    partner that paid for the term is credited its unused days at what it paid (payer_credit_unused).
    Applied once; a subscription no longer billed to anyone (taken over already) changes nothing."""
    partner_id = subscription.billed_to_id
    if partner_id is None:
        return
    subscription.billed_to = None
    subscription.billed_to_discount_bp = 0
    subscription.billed_to_ends_at_renewal = False
    subscription.purchase_order_number = ""  # the partner's purchase order, if any, is not the organization's
    subscription.save()
    entitlements_invalidate(organization_id=invoice.organization_id)
    payer_credit_unused(
        subscription=subscription,
        payer=Organization.objects.get(pk=partner_id),
        at=invoice.period_start,
        until=invoice.period_end,
        actor=actor,
    )
    event_record(
        name=events.SUBSCRIPTION_PAID,
        user=actor,
        organization=invoice.organization,
        properties={
            "product": subscription.product.code,
            "edition": subscription.edition.code,
            "seats": subscription.seat_limit,
            "interval": subscription.interval,
            "amount_minor": invoice.total_minor,
            "currency": invoice.currency,
            "from_status": subscription.status,
            "taken_over_from_partner": True,
        },
    )


@dataclass(frozen=True)
class PayerCredit:
    """What a partner gets back for one of its invoices when its customer took over: `kind` is
    "refund" (card: a partial refund requested, a pending credit note), "owed" (the refund
    could not be started: staff refund it), "reissued" (an open purchase order: voided,
    `replacement` billed for the used days) or "transfer" (paid by transfer: a credit note staff
    pay back)."""

    invoice: Invoice
    amount_minor: int
    kind: str
    replacement: Invoice | None = None


def payer_unused_minor(invoice: Invoice, *, at: datetime) -> int:
    """The unused part of what `invoice` charged for its period, from `at` to the period's end:
    total x seconds left / seconds of the invoice's period, rounded half up."""
    seconds = int((invoice.period_end - invoice.period_start).total_seconds())
    left = int((invoice.period_end - max(at, invoice.period_start)).total_seconds())
    if seconds <= 0 or left <= 0:
        return 0
    return (invoice.total_minor * min(left, seconds) * 2 + seconds) // (2 * seconds)


def payer_credit_unused(
    *, subscription: Subscription, payer: Organization, at: datetime, until: datetime, actor: User | None
) -> list[PayerCredit]:
    """Credit `payer` the days it paid for after `at` on `subscription`: each of its invoices
    billed for the current term (the term itself, seats, upgrades, add-ons) that is paid or
    open. A card payment is refunded in part (refund_request: a pending credit note, refunded by
    the worker, numbered once Stripe refunds). An open purchase-order invoice is voided and
    replaced by one for the used days only (numbered, billed to the payer). One already paid by
    transfer gets an issued credit note (source transfer) for staff to pay back; staff are told.
    Only the term the take-over paid for counts: invoices that start at or after `until` (a
    later term) are not the payer's to get back. The payer's open card invoices (declined, never
    charged) are voided, in this transaction: the subscription is no longer the payer's to pay
    for. The payer's admins are emailed what comes back. Call with the organization and the
    subscription locked."""
    credits: list[PayerCredit] = []
    for unpaid in Invoice.objects.select_for_update(of=("self",)).filter(
        subscription=subscription, bill_to=payer, status=Invoice.Status.OPEN, collection_method=BillingAccount.Collection.CARD
    ):
        # payer_live_payment_refuse kept a live one from reaching here; should one be out anyway,
        # its success finds the invoice void and is refunded (invoice_paid_not_applied).
        unpaid.status = Invoice.Status.VOID
        unpaid.save(update_fields=["status"])
    invoices = (
        Invoice.objects.select_for_update(of=("self",))
        .filter(
            subscription=subscription,
            bill_to=payer,
            period_end__gt=at,
            period_start__lt=until,
            status__in=(Invoice.Status.OPEN, Invoice.Status.PAID),
        )
        .exclude(kind=Invoice.Kind.TAKEOVER)
        .exclude(addon__pricing=AddOn.Pricing.ONE_OFF)  # training credits are the partner's to use
        .order_by("issued_at", "pk")
    )
    for paid in invoices:
        unused = payer_unused_minor(paid, at=at)
        if unused <= 0:
            continue
        reason = f"Unused days from {day(at)} of invoice {paid.number}: {subscription.organization.name} took {subscription.product.name} over"
        if paid.status == Invoice.Status.OPEN and paid.collection_method == BillingAccount.Collection.INVOICE:
            paid.status = Invoice.Status.VOID
            paid.save(update_fields=["status"])
            used = paid.total_minor - unused
            replacement = None
            if used > 0:
                replacement = invoice_issue(
                    organization=paid.organization,
                    subscription=subscription,
                    kind=paid.kind,
                    edition=paid.target_edition,
                    seats=paid.target_seats,
                    interval=paid.target_interval,
                    unit_amount_minor=used,
                    quantity=1,
                    amount_minor=used,
                    period_start=paid.period_start,
                    period_end=at,
                    description=f"Replaces invoice {paid.number}: {span(paid.period_start, at)} used of {span(paid.period_start, paid.period_end)}",
                    bill_to=payer,
                    discount_bp=paid.discount_bp,
                    addon=paid.addon,
                )
                replacement.collection_method = BillingAccount.Collection.INVOICE
                replacement.po_number = paid.po_number
                replacement.due_at = paid.due_at
                replacement.save(update_fields=["collection_method", "po_number", "due_at"])
            credits.append(PayerCredit(paid, unused, "reissued", replacement))
            continue
        if paid.status != Invoice.Status.PAID:
            continue
        payment = paid.payments.filter(status=Payment.Status.SUCCEEDED).first()
        if payment is not None and payment.stripe_payment_intent_id:
            amount = min(unused, payment_refundable_minor(payment))
            if amount > 0:
                try:
                    refund_request(payment=payment, amount_minor=amount, reason=reason[:240], actor=actor)
                except RefundInvalid as error:
                    # Nothing went back: the amount stays refundable on the payment, and staff
                    # refund it from the admin (as any failed refund is retried).
                    credits.append(PayerCredit(paid, amount, "owed"))
                    staff_email(
                        subject=f"Refund {money(amount, paid.currency)} to {payer.name} (invoice {paid.number})",
                        body=(
                            f"{subscription.organization.name} took {subscription.product.name} over from {payer.name} on {day(at)}. "
                            f"The refund of the unused days, {money(amount, paid.currency)} of invoice {paid.number}, could not be "
                            f"started: {error.message} Refund it from the admin (Refund on invoice {paid.number}), or pay it back "
                            f"by transfer: {settings.SITE_URL}{reverse('admin:billing_invoice_change', args=[paid.pk])}"
                        ),
                    )
                    continue
                credits.append(PayerCredit(paid, amount, "refund"))
            continue
        note = CreditNote.objects.create(
            organization=paid.organization,
            invoice=paid,
            payment=None,
            number=credit_note_number(),
            status=CreditNote.Status.ISSUED,
            source=CreditNote.Source.TRANSFER,
            currency=paid.currency,
            amount_minor=unused,
            reason=reason[:240],
            created_by=actor,
            issued_at=timezone.now(),
        )
        credits.append(PayerCredit(paid, unused, "transfer"))
        staff_email(
            subject=f"Pay back {money(unused, paid.currency)} to {payer.name} (credit note {note.number})",
            body=(
                f"{subscription.organization.name} took {subscription.product.name} over from {payer.name} on {day(at)}. "
                f"{payer.name} paid invoice {paid.number} by transfer; credit note {note.number} gives back "
                f"{money(unused, paid.currency)} for the unused days. Pay it back by transfer and record it in the admin: "
                f"{settings.SITE_URL}{reverse('admin:billing_creditnote_change', args=[note.pk])}"
            ),
        )
    if credits:
        lines = []
        for credit in credits:
            if credit.kind == "refund":
                lines.append(
                    f"- Invoice {credit.invoice.number}: a refund of {money(credit.amount_minor, credit.invoice.currency)} "
                    "to your card is on its way; it shows on your statement within a few days."
                )
            elif credit.kind == "owed":
                lines.append(
                    f"- Invoice {credit.invoice.number}: {money(credit.amount_minor, credit.invoice.currency)} is due back to you; "
                    "our team refunds it and writes to you when it is done."
                )
            elif credit.kind == "reissued":
                replaced = f", replaced by invoice {credit.replacement.number} for the days used ({money(credit.replacement.total_minor, credit.replacement.currency)})" if credit.replacement else ""
                lines.append(f"- Invoice {credit.invoice.number} is void{replaced}.")
            else:
                lines.append(
                    f"- Invoice {credit.invoice.number}: {money(credit.amount_minor, credit.invoice.currency)} credited; "
                    "our team pays it back by bank transfer."
                )
        billing_email_admins(
            organization=payer,
            subject=f"{subscription.organization.name} took over {subscription.product.name}: your credit",
            body=(
                f"{subscription.organization.name} now pays for {subscription.product.name} directly, from {day(at)}. "
                "You are credited the days you paid for after that date:\n\n" + "\n".join(lines)
            ),
        )
    return credits


def invoice_mark_paid_by_transfer(*, invoice: Invoice, actor: User) -> Invoice:
    """Staff: a purchase-order invoice was paid by bank transfer or cheque. Reactivates the
    subscription it covers if the invoice had suspended it; an add-on invoice reactivates its
    add-on (or training pack) only, never the base."""
    with transaction.atomic():
        organization_lock(invoice.organization)
        Subscription.objects.select_for_update(of=("self",)).filter(pk=invoice.subscription_id).first()
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status != Invoice.Status.OPEN:
            return invoice
        invoice = invoice_mark_paid(invoice=invoice, payment=None)
        if invoice.kind != Invoice.Kind.ADDON and Subscription.objects.filter(
            pk=invoice.subscription_id, status=Subscription.Status.SUSPENDED
        ).update(status=Subscription.Status.ACTIVE, suspended_at=None):
            addon_grants_changed_if_any(subscription=invoice.subscription)
        entitlements_invalidate(organization_id=invoice.organization_id)
        return invoice


def invoice_receipt_send(*, invoice_id: int) -> bool:
    """Email the receipt of a paid invoice to the organization's admins (and billing address):
    the amount, what it paid for, how, the invoice's link and its PDF attached. Sent by the
    worker; its Message-ID is the invoice's, so a retried task is one message to mail systems.
    Returns whether a message was sent."""
    invoice = (
        Invoice.objects.select_related("organization", "subscription__product", "target_edition")
        .filter(pk=invoice_id, status=Invoice.Status.PAID)
        .first()
    )
    if invoice is None:
        return False
    payer = invoice.bill_to or invoice.organization
    recipients = billing_email_recipients(payer)
    if not recipients:
        return False
    product = invoice.subscription.product.name
    pack = getattr(invoice, "training_pack", None) if invoice.kind == Invoice.Kind.ADDON else None
    headline = {
        Invoice.Kind.CONVERSION: f"Thank you: {invoice.target_edition} is paid for, with {seats_text(invoice.target_seats)}.",
        Invoice.Kind.SEATS: f"Thank you: {seats_text(invoice.seats_delta)} added to {invoice.target_edition}.",
        Invoice.Kind.UPGRADE: f"Thank you: {product} is now on {invoice.target_edition.name}.",
        Invoice.Kind.RENEWAL: f"Thank you: {invoice.target_edition} is renewed until {day(invoice.period_end)}.",
        Invoice.Kind.TAKEOVER: (
            f"Thank you: {product} is billed to {invoice.organization.name} directly now, paid until "
            f"{day(invoice.period_end)}; it renews with you at list price from then."
        ),
    }.get(invoice.kind, f"Thank you: invoice {invoice.number} is paid.")
    if invoice.kind == Invoice.Kind.ADDON and invoice.addon is not None:
        if pack is not None:
            headline = (
                f"Thank you: {invoice.addon.name} is yours, {pack.credits} training credits to use by {day(pack.expires_at)}."
            )
        else:
            headline = f"Thank you: {invoice.addon.name} is added to {product} {invoice.target_edition.name}."
    payment = invoice.payments.filter(status=Payment.Status.SUCCEEDED).first()
    account = BillingAccount.objects.filter(organization=payer).first()
    if payment is None:
        paid_with_short = f"Bank transfer{f' against PO {invoice.po_number}' if invoice.po_number else ''}"
    elif account is not None and account.card_last4:
        paid_with_short = f"{account.card_brand.capitalize()} ending {account.card_last4}"
    else:
        paid_with_short = "Card"
    document = invoice_document(invoice)
    context = {
        "invoice": invoice,
        "headline": headline,
        "paid_with_short": paid_with_short,
        "paid_with": f"Paid with: {paid_with_short}",
        "lines": document.lines,
        "invoice_url": f"{settings.SITE_URL}{reverse('invoice', args=[invoice.public_id])}",
        # Paid by a partner for its customer: whom it was for.
        "licensee": invoice.organization.name if invoice.bill_to_id else "",
    }
    message = EmailMultiAlternatives(
        subject=(
            f"[{settings.SITE_NAME}] Receipt for {product}{f' of {invoice.organization.name}' if invoice.bill_to_id else ''}: "
            f"{money(invoice.total_minor, invoice.currency)} paid (invoice {invoice.number})"
        ),
        body=render_to_string("billing/email/receipt.txt", context),
        to=recipients,
        headers={"Message-ID": f"<receipt-{invoice.public_id}@flywheel.localhost>"},
    )
    message.attach_alternative(render_to_string("billing/email/receipt.html", context), "text/html")
    message.attach(document.filename, document_pdf(document), "application/pdf")
    message.connection = get_connection()
    message.send()
    return True
