"""Buying what a quote priced (the partners app's quotes, a partner's or a direct customer's):
a fresh term of one product from now, at the quote's own lines, by card or against a purchase
order."""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Organization, User
from accounts.selectors import admin_membership_require
from accounts.services import organization_lock, seats_in_use
from catalog.models import AddOn, Edition
from experiments import events
from experiments.services import event_record
from provisioning.services import environment_request

from ..exceptions import CheckoutInvalid, ManagedByPayer, NoCardOnFile, SubscriptionExists
from ..formats import seats_text
from ..models import BillingAccount, Invoice, Payment, Subscription
from ..pricing import addon_edition_meets, period_end_after
from .billing_account import (
    PayerCollection,
    billing_account_of,
    discount_bp_require,
    partner_interval_require,
)
from .invoices import ChargeLine, invoice_issue, owed_for_time_used
from .payments import invoice_collect

COLLECTIONS = ("card", "invoice")


def subscription_buy_quoted(
    *,
    organization: Organization,
    edition: Edition,
    seats: int,
    interval: str,
    addons: Sequence[AddOn],
    lines: Sequence[ChargeLine],
    actor: User,
    on_behalf: Organization | None,
    discount_bp: int,
    collection: str,
    po_number: str,
    request_key: str,
) -> Invoice:
    """Buy a fresh term of `edition`'s product for `organization` (the licensee) from now:
    `seats` seats for one `interval`, with `addons`, at the quote's `lines`, already priced
    (the first is the edition's line; then one per add-on, each naming it; a partner's discount
    is a negative line). One invoice; `on_behalf` (a partner) is its bill-to, the organization
    its licensee. The actor is an admin of the payer: `on_behalf`, or the organization itself
    (a direct quote).

    `collection` "card": the payer's card on file is charged by the worker (NoCardOnFile
    when it has none), and paying applies it: status active, the period, the add-ons, billed to
    `on_behalf` at `discount_bp` (or to nobody for a direct quote). "invoice": granted at once,
    the invoice quoting `po_number` and due in QUOTE_PO_NET_TERMS_DAYS, emailed to the payer;
    the subscription's `purchase_order_number` becomes `po_number` so its renewals are invoiced
    on those terms too. A partner pays on terms only when its billing account is on invoice
    terms.

    Refused (CheckoutInvalid, nothing written): a product the organization already pays for
    (active and paid: "use Add seats or Change edition"), a product billed to another partner,
    an unpaid purchase-order invoice of the product, monthly for a partner (PARTNER_ANNUAL_ONLY),
    seats outside 1..the edition's limit or under the seats in use, an add-on of another product
    or needing a bigger edition, a one-off add-on (training credits are bought on their own).

    Invariant: one request key, one purchase: the same `request_key` (unique per organization,
    "quote:<quote id>:<product code>") returns the invoice the first call issued. Locks: the
    organization, then the subscription.
    """
    payer = on_behalf or organization
    admin_membership_require(organization=payer, user=actor, doing="buy for this organization" if on_behalf else "manage billing")
    if on_behalf is not None:
        if on_behalf.pk == organization.pk:
            raise CheckoutInvalid(f"{on_behalf.name} cannot buy on its own behalf: use its billing page.")
        partner_interval_require(interval=interval)
    elif discount_bp:
        raise CheckoutInvalid("A direct quote has no partner discount.")
    if not request_key or len(request_key) > 64:
        raise CheckoutInvalid("The request is missing its key; reload the page and try again.")
    if collection not in COLLECTIONS:
        raise CheckoutInvalid(f"Pay by card or by invoice against a purchase order, not {collection!r}.")
    po_number = " ".join((po_number or "").split())
    if collection == "invoice" and not po_number:
        raise CheckoutInvalid("Give the purchase-order number the invoice should quote.")
    if len(po_number) > 64:
        raise CheckoutInvalid("A purchase-order number has at most 64 characters.")
    discount_bp_require(discount_bp)
    if not edition.is_active or edition.is_free:
        raise CheckoutInvalid(f"{edition} cannot be bought.")
    if interval not in Subscription.Interval.values:
        raise CheckoutInvalid(f"Billing must be monthly or annual, not {interval!r}.")
    if not 1 <= seats <= edition.seat_limit:
        raise CheckoutInvalid(f"{edition} is sold for 1 to {edition.seat_limit} seats, not {seats}.")
    if not lines:
        raise CheckoutInvalid("The quote has no lines.")
    for addon in addons:
        if addon.product_id != edition.product_id:
            raise CheckoutInvalid(f"{addon.name} is not an add-on of {edition.product.name}.")
        if addon.pricing == AddOn.Pricing.ONE_OFF:
            raise CheckoutInvalid(f"{addon.name} (training credits) is bought on its own, not with a quote.")
        if not addon_edition_meets(addon, edition):
            raise CheckoutInvalid(f"{addon.name} needs {addon.min_edition} or above.")
    line_addons = {line.addon.pk for line in lines if line.addon is not None}
    if line_addons != {addon.pk for addon in addons}:
        raise CheckoutInvalid("The quote's lines and its add-ons do not match.")
    product = edition.product
    with transaction.atomic():
        organization = organization_lock(organization)
        existing = Invoice.objects.filter(organization=organization, request_key=request_key).first()
        if existing is not None:
            if existing.kind != Invoice.Kind.CONVERSION or existing.subscription.product_id != product.pk:
                raise CheckoutInvalid("This request was already used for something else; reload the page and try again.")
            return existing
        in_use = seats_in_use(organization=organization)
        if seats < in_use:
            raise CheckoutInvalid(
                f"{organization.name} uses {in_use} seats (members and pending invites); buy at least {in_use}."
            )
        subscription = (
            Subscription.objects.select_for_update(of=("self",))
            .select_related("billed_to", "product")
            .filter(organization=organization, product=product, status__in=Subscription.LIVE_STATUSES)
            .first()
        )
        now = timezone.now()
        if subscription is not None:
            if subscription.status == Subscription.Status.ACTIVE and subscription.interval:
                raise CheckoutInvalid(
                    f"{organization.name} already pays for {product.name}: use Add seats or Change edition instead of a quote."
                )
            if subscription.billed_to_id and subscription.billed_to_id != (on_behalf.pk if on_behalf else None):
                if on_behalf is None:
                    raise ManagedByPayer(f"{product.name} is managed by {subscription.billed_to.name}: ask them from the billing page.")
                raise ManagedByPayer(f"{product.name} of {organization.name} is billed to another partner.")
            owed = Invoice.objects.filter(
                owed_for_time_used(now), subscription=subscription, status=Invoice.Status.OPEN
            ).first()
            if owed is not None:
                raise CheckoutInvalid(
                    f"Invoice {owed.number} for a period {product.name} was used is not paid yet; it has to be paid first."
                )
            live = (
                Payment.objects.select_related("invoice__bill_to")
                .filter(invoice__subscription=subscription, invoice__status=Invoice.Status.OPEN, status__in=Payment.LIVE)
                .first()
            )
            if live is not None:
                # Voiding an invoice whose payment may still succeed would bill this term twice.
                paying = live.invoice.bill_to if live.invoice.bill_to_id else organization
                raise CheckoutInvalid(
                    f"{paying.name} is paying for {product.name} right now; try again in a minute."
                )
            account = _payer_account_ready(payer=payer, on_behalf=on_behalf, collection=collection)
            # Anything else still open (a checkout declined earlier) is replaced by this purchase.
            Invoice.objects.filter(subscription=subscription, status=Invoice.Status.OPEN).exclude(owed_for_time_used(now)).update(
                status=Invoice.Status.VOID
            )
        else:
            account = _payer_account_ready(payer=payer, on_behalf=on_behalf, collection=collection)
            try:
                with transaction.atomic():
                    # Nothing of the product yet: it starts suspended and becomes active when the
                    # invoice is paid (card) or at once (purchase order).
                    subscription = Subscription.objects.create(
                        organization=organization,
                        product=product,
                        edition=edition,
                        status=Subscription.Status.SUSPENDED,
                        seat_limit=seats,
                        suspended_at=now,
                        started_by=actor,
                    )
            except IntegrityError:
                raise SubscriptionExists(f"{organization.name} already has {product.name}.") from None
            event_record(
                name=events.SUBSCRIPTION_STARTED,
                user=actor,
                organization=organization,
                properties={"product": product.code, "edition": edition.code, "seat_limit": seats, "quoted": True},
            )
            environment_request(
                organization=organization,
                product=product,
                requested_by=actor,
                plan={"edition": edition.code, "seat_limit": seats},
            )
        first, rest = lines[0], list(lines[1:])
        period_end = period_end_after(now, interval)
        try:
            with transaction.atomic():
                invoice = invoice_issue(
                    organization=organization,
                    subscription=subscription,
                    kind=Invoice.Kind.CONVERSION,
                    edition=edition,
                    seats=seats,
                    interval=interval,
                    unit_amount_minor=first.unit_amount_minor,
                    quantity=first.quantity,
                    amount_minor=first.amount_minor,
                    period_start=now,
                    period_end=period_end,
                    description=first.description,
                    request_key=request_key,
                    lines=rest,
                    bill_to=on_behalf,
                    discount_bp=discount_bp if on_behalf is not None else 0,
                )
        except IntegrityError:
            raise CheckoutInvalid("This quote is being accepted already; reload the page in a moment.") from None
        if collection == "invoice":
            subscription.purchase_order_number = po_number
            subscription.save(update_fields=["purchase_order_number", "updated_at"])
            terms = PayerCollection(account, True, po_number, settings.QUOTE_PO_NET_TERMS_DAYS)
        else:
            terms = PayerCollection(account, False, "", 0)
        invoice_collect(invoice=invoice, collection=terms, actor=actor, what=f"{edition}, {seats_text(seats)}, {'annual' if interval == Subscription.Interval.YEAR else 'monthly'}")
        invoice.refresh_from_db()
        return invoice


def _payer_account_ready(*, payer: Organization, on_behalf: Organization | None, collection: str) -> BillingAccount:
    """The payer's billing account, if it can pay as chosen: a card on file, or (a partner)
    purchase-order terms granted by staff."""
    account = billing_account_of(payer)
    if collection == "card" and not account.has_card:
        raise NoCardOnFile(f"{payer.name} has no card on file: add one first, or pay against a purchase order.")
    if collection == "invoice" and on_behalf is not None and account.collection_method != BillingAccount.Collection.INVOICE:
        raise CheckoutInvalid(
            f"{on_behalf.name} is not on purchase-order terms yet: pay by card, or ask us for invoice terms from the billing page."
        )
    return account
