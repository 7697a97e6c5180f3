"""Who pays for a subscription, changing: a partner's billing ending at the next renewal, and
the licensee taking the subscription over now (paying the rest of the term at list price, the
partner credited its unused days)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Organization, User
from accounts.selectors import admin_membership_require
from accounts.services import organization_lock
from catalog.models import AddOn
from common.money import money

from ..entitlements import entitlements_invalidate
from ..exceptions import CheckoutInvalid, NoCardOnFile
from ..formats import seats_text, span, time_left
from ..models import AddOnSubscription, BillingAccount, Invoice, Payment, Subscription
from ..pricing import (
    PRICE_CHANGED,
    addon_quantity,
    addon_unit_price,
    period_seconds,
    prorate,
    quote_token_make,
    quote_token_read,
    unit_price,
)
from .billing_account import (
    PayerCollection,
    billing_account_of,
    discount_bp_require,
    payer_live_payment_refuse,
)
from .invoices import ChargeLine, invoice_issue, invoice_mark_paid
from .payments import invoice_collect


def subscription_payer_end(*, subscription: Subscription, at: datetime) -> Subscription:
    """The partner that pays for `subscription` stops at the next renewal (its link ended at
    `at`, or the customer moves to direct billing then): `billed_to_ends_at_renewal`. The
    partner keeps paying for and managing the current term; the renewal clears the payer and
    invoices the organization itself at list price (its card, or its own purchase-order terms),
    and a purchase-order number the partner gave stops applying. Idempotent; a subscription
    billed to nobody is returned unchanged. Sends no email: the caller says what happens when.

    A subscription with no paid term (a trial the partner started, or the Free edition it fell
    back to) has nothing for the partner to keep paying and never renews: it is the
    organization's own at once (billed_to, its discount and purchase order cleared), so its
    admins can buy it themselves. Locks: organization, then subscription."""
    with transaction.atomic():
        organization_lock(subscription.organization)
        subscription = Subscription.objects.select_for_update(of=("self",)).get(pk=subscription.pk)
        if subscription.billed_to_id is None:
            return subscription
        if subscription.status != Subscription.Status.ACTIVE or not subscription.interval:
            subscription.billed_to = None
            subscription.billed_to_discount_bp = 0
            subscription.billed_to_ends_at_renewal = False
            subscription.purchase_order_number = ""
            subscription.save(
                update_fields=["billed_to", "billed_to_discount_bp", "billed_to_ends_at_renewal", "purchase_order_number", "updated_at"]
            )
            entitlements_invalidate(organization_id=subscription.organization_id)
            return subscription
        if subscription.billed_to_ends_at_renewal:
            return subscription
        subscription.billed_to_ends_at_renewal = True
        subscription.save(update_fields=["billed_to_ends_at_renewal", "updated_at"])
        return subscription


def subscription_payer_start(
    *, subscription: Subscription, payer: Organization, discount_bp: int, actor: User
) -> Subscription:
    """A partner (`payer`, the actor one of its admins) becomes the payer of a subscription its
    customer paid for itself: from now on every charge of it (seats, editions, add-ons, the
    renewal) is billed to the partner at `discount_bp`; the current term, already paid by the
    organization, is not refunded. Only for a subscription billed to nobody, or to `payer` with
    its end scheduled (the link was ended and made again: the end is withdrawn). No money moves
    now. Locks: organization, then subscription."""
    admin_membership_require(organization=payer, user=actor, doing="take over a customer's billing")
    if payer.pk == subscription.organization_id:
        raise CheckoutInvalid(f"{payer.name} already pays for its own subscriptions.")
    discount_bp_require(discount_bp)
    with transaction.atomic():
        organization_lock(subscription.organization)
        subscription = Subscription.objects.select_for_update(of=("self",)).select_related("product").get(pk=subscription.pk)
        if subscription.billed_to_id not in (None, payer.pk):
            raise CheckoutInvalid(f"{subscription.product.name} is billed to another partner until its renewal.")
        subscription.billed_to = payer
        subscription.billed_to_discount_bp = discount_bp
        subscription.billed_to_ends_at_renewal = False
        subscription.purchase_order_number = ""
        subscription.save(
            update_fields=["billed_to", "billed_to_discount_bp", "billed_to_ends_at_renewal", "purchase_order_number", "updated_at"]
        )
        return subscription


@dataclass(frozen=True)
class TakeOverQuote:
    """What taking a partner-billed subscription over now costs its organization: the rest of
    the current term at list price (the edition's seats and each active recurring add-on),
    prorated to the second like added seats; from the renewal on, the full list price.
    `collection` is how the organization pays ("card", or "invoice" on its own purchase-order
    terms); `token` is the signed price for the confirming form (QUOTE_MAX_AGE)."""

    subscription: Subscription
    partner: Organization
    lines: tuple[ChargeLine, ...]
    amount_minor: int
    currency: str
    period_start: datetime
    period_end: datetime
    seconds_left: int
    renewal_amount_minor: int
    collection: str
    po_number: str
    token: str

    @property
    def time_left(self) -> str:
        return time_left(self.seconds_left)


def subscription_payer_take_over_quote(*, subscription: Subscription, at: datetime | None = None) -> TakeOverQuote:
    """Price taking `subscription` over from its partner now (as at `at`). CheckoutInvalid says
    why not: billed to nobody, not active and paid, its period over."""
    if subscription.billed_to_id is None:
        raise CheckoutInvalid(f"{subscription.product.name} is billed to {subscription.organization.name} already.")
    if subscription.status != Subscription.Status.ACTIVE or not subscription.interval or not subscription.current_period_end:
        raise CheckoutInvalid(
            f"{subscription.product.name} is not active and paid for: it moves to direct billing at its renewal instead."
        )
    now = at or timezone.now()
    seconds_left = int((subscription.current_period_end - now).total_seconds())
    if seconds_left <= 0:
        raise CheckoutInvalid("The current term has ended; it moves to direct billing at the renewal.")
    seconds_in_period = period_seconds(subscription.current_period_start, subscription.interval)
    per = "year" if subscription.interval == Subscription.Interval.YEAR else "month"
    edition = subscription.edition
    unit = unit_price(edition, subscription.interval)
    seats = subscription.seat_limit
    lines = [
        ChargeLine(
            description=f"{edition}: {seats_text(seats)} × {money(unit, edition.currency)}/{per}, prorated for {span(now, subscription.current_period_end)}",
            quantity=seats,
            unit_amount_minor=unit,
            amount_minor=prorate(full_amount_minor=unit * seats, seconds_left=seconds_left, seconds_in_period=seconds_in_period),
        )
    ]
    renewal = unit * (subscription.pending_seat_limit or seats)
    for row in (
        AddOnSubscription.objects.select_related("addon")
        .filter(subscription=subscription, status=AddOnSubscription.Status.ACTIVE)
        .exclude(addon__pricing=AddOn.Pricing.ONE_OFF)
        .order_by("addon__position", "pk")
    ):
        addon = row.addon
        addon_unit = addon_unit_price(addon, subscription.interval)
        quantity = addon_quantity(addon, seat_limit=seats)
        what = f"{seats_text(quantity)} × {money(addon_unit, addon.currency)}/{per}" if addon.pricing == AddOn.Pricing.PER_SEAT else f"{money(addon_unit, addon.currency)}/{per}"
        lines.append(
            ChargeLine(
                description=f"{addon.name}: {what}, prorated for {span(now, subscription.current_period_end)}",
                quantity=quantity,
                unit_amount_minor=addon_unit,
                amount_minor=prorate(full_amount_minor=addon_unit * quantity, seconds_left=seconds_left, seconds_in_period=seconds_in_period),
                addon=addon,
            )
        )
        renewal += addon_unit * addon_quantity(addon, seat_limit=subscription.pending_seat_limit or seats)
    amount = sum(line.amount_minor for line in lines)
    account = BillingAccount.objects.filter(organization_id=subscription.organization_id).first()
    on_terms = account is not None and account.collection_method == BillingAccount.Collection.INVOICE
    return TakeOverQuote(
        subscription=subscription,
        partner=subscription.billed_to,
        lines=tuple(lines),
        amount_minor=amount,
        currency=edition.currency,
        period_start=now,
        period_end=subscription.current_period_end,
        seconds_left=seconds_left,
        renewal_amount_minor=renewal,
        collection="invoice" if on_terms else "card",
        po_number=account.po_number if on_terms else "",
        token=quote_token_make(kind="takeover", subscription=subscription, detail=str(subscription.billed_to_id), at=now, total_minor=amount),
    )


def subscription_payer_take_over_now(
    *, subscription: Subscription, actor: User, request_key: str, quote_token: str, po_number: str = ""
) -> Payment | Invoice:
    """The organization's admin takes a partner-billed subscription over now: it pays the price
    shown (subscription_payer_take_over_quote, its `quote_token`), by its own card, or against
    its own purchase order (`po_number`, or its account's purchase-order terms): invoice kind
    takeover, billed to the organization. Once paid (on terms: at once), billed_to is cleared
    (same edition, seats and period end, at list price from now on) and the partner is credited
    its unused days (invoices.payer_credit_unused: a partial refund of its card payment, a
    voided purchase-order invoice replaced by one for the days used, or a credit note staff
    pay back). The subscription stays active throughout; a declined card moves nothing.

    Invariant: one request key, one take-over; while one is being charged, asking again returns
    its payment. Returns the payment (card) or the invoice (purchase order, or nothing to pay).
    Locks: organization, then subscription."""
    admin_membership_require(organization=subscription.organization, user=actor, doing="manage billing")
    if not request_key or len(request_key) > 64:
        raise CheckoutInvalid("The request is missing its key; reload the page and try again.")
    po_number = " ".join((po_number or "").split())
    if len(po_number) > 64:
        raise CheckoutInvalid("A purchase-order number has at most 64 characters.")
    with transaction.atomic():
        organization = organization_lock(subscription.organization)
        existing = Invoice.objects.filter(organization=organization, request_key=request_key).first()
        if existing is not None:
            if existing.kind != Invoice.Kind.TAKEOVER:
                raise CheckoutInvalid("This request was already used for something else; reload the page and try again.")
            payment = existing.payments.order_by("-created_at").first()
            return payment if payment is not None and existing.collection_method == BillingAccount.Collection.CARD else existing
        subscription = (
            Subscription.objects.select_for_update(of=("self",))
            .select_related("product", "edition", "billed_to", "organization")
            .get(pk=subscription.pk)
        )
        for unpaid in Invoice.objects.select_for_update().filter(
            subscription=subscription, kind=Invoice.Kind.TAKEOVER, status=Invoice.Status.OPEN
        ):
            live = unpaid.payments.filter(status__in=Payment.LIVE).first()
            if live is not None:
                return live
            unpaid.status = Invoice.Status.VOID  # declined earlier: replaced by this one
            unpaid.save(update_fields=["status"])
        if subscription.billed_to_id is None:
            raise CheckoutInvalid(f"{subscription.product.name} is billed to {organization.name} already.")
        payer_live_payment_refuse(subscription=subscription)
        at, shown_total = quote_token_read(
            token=quote_token, kind="takeover", subscription=subscription, detail=str(subscription.billed_to_id)
        )
        quote = subscription_payer_take_over_quote(subscription=subscription, at=at)
        if quote.amount_minor != shown_total:
            raise CheckoutInvalid(PRICE_CHANGED)
        account = billing_account_of(organization)
        on_terms = account.collection_method == BillingAccount.Collection.INVOICE
        if po_number and not on_terms:
            # On terms the partner is credited at once, before the organization pays a cent:
            # only an account staff approved for invoice terms may take over that way.
            raise CheckoutInvalid(
                f"{organization.name} is not on invoice terms: pay by card, or ask us for invoice terms from the billing page."
            )
        if not on_terms and not account.has_card:
            raise NoCardOnFile("Add a card first, or pay against a purchase order.")
        first, rest = quote.lines[0], list(quote.lines[1:])
        invoice = invoice_issue(
            organization=organization,
            subscription=subscription,
            kind=Invoice.Kind.TAKEOVER,
            edition=subscription.edition,
            seats=subscription.seat_limit,
            interval=subscription.interval,
            unit_amount_minor=first.unit_amount_minor,
            quantity=first.quantity,
            amount_minor=first.amount_minor,
            period_start=quote.period_start,
            period_end=quote.period_end,
            description=first.description,
            request_key=request_key,
            lines=rest,
        )
        if invoice.total_minor == 0:
            invoice_mark_paid(invoice=invoice, payment=None)
            return invoice
        if on_terms:
            terms = PayerCollection(
                account,
                True,
                po_number or account.po_number,
                settings.QUOTE_PO_NET_TERMS_DAYS if po_number else account.net_terms_days,
            )
        else:
            terms = PayerCollection(account, False, "", 0)
        payment = invoice_collect(
            invoice=invoice, collection=terms, actor=actor, what=f"{subscription.product.name} billed to {organization.name} directly"
        )
        if payment is None:
            if po_number:  # its own purchase order: the renewals quote it too
                Subscription.objects.filter(pk=subscription.pk).update(purchase_order_number=po_number)
            invoice.refresh_from_db()
            return invoice
        return payment
