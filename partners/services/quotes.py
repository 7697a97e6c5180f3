"""Quotes: a priced, numbered offer for one customer organization (the licensee), made by a
partner (its tier's discount, the partner pays) or by the customer's own admin (a direct quote
for procurement: list prices, paid by card or against a purchase order).

A quote buys a fresh term of each product it names, starting when it is accepted: the edition
x seats, per-seat add-ons x seats, flat add-ons x 1, for the interval. Its prices are fixed when
it is made and it is valid until the end of the UTC day QUOTE_VALID_DAYS later. Accepting it
calls billing's `subscription_buy_quoted` once per product, in one transaction, with the request
key "quote:<quote public id>:<product code>": accepting twice (a double click, two tabs, two
threads) buys once.

See partners/services/__init__.py for the order modules import in."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from accounts.models import Organization, User
from accounts.selectors import admin_membership_require
from accounts.services import organization_lock, seats_in_use
from billing.formats import day, seats_text
from billing.models import Invoice, Subscription
from billing.pricing import addon_edition_meets, addon_unit_price, unit_price
from billing.services.billing_account import (
    billing_account_of,
    customer_details,
)
from billing.services.invoices import ChargeLine
from catalog.models import AddOn, Edition, Product
from common.money import money

from ..documents import discount_label, discount_percent
from ..exceptions import QuoteInvalid, QuoteNotAcceptable
from ..models import PartnerLink, Quote, QuoteLine, QuoteSequence
from ..selectors import link_for_partner, partner_for_member, tier_discount_bp
from .audit import audit_record
from .notify import notify_customer_admins, notify_partner, possessive, site_link

logger = logging.getLogger(__name__)

NOTE_MAX_LENGTH = 2000
PO_NUMBER_MAX_LENGTH = 64


# Pricing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuoteItem:
    """What the quote's maker chose for one product: its edition, seats and add-ons."""

    edition: Edition
    seats: int
    addons: tuple[AddOn, ...] = ()

    @property
    def product(self) -> Product:
        return self.edition.product


@dataclass(frozen=True)
class PricedLine:
    """One line of a quote as priced (an edition x seats, or an add-on)."""

    product: Product
    description: str
    quantity: int
    unit_amount_minor: int
    amount_minor: int
    edition: Edition | None = None
    addon: AddOn | None = None


@dataclass(frozen=True)
class PricedProduct:
    """A product's lines, their sum and its share of the discount (rounded half up per product,
    as each product gets its own invoice with its own discount line)."""

    product: Product
    edition: Edition
    seats: int
    lines: tuple[PricedLine, ...]
    subtotal_minor: int
    discount_minor: int

    @property
    def total_minor(self) -> int:
        return self.subtotal_minor - self.discount_minor


@dataclass(frozen=True)
class QuotePrice:
    """Everything a quote's page shows before it is made: lines, subtotal, discount, total."""

    interval: str
    currency: str
    discount_bp: int
    discount_label: str
    products: tuple[PricedProduct, ...] = field(default_factory=tuple)

    @property
    def lines(self) -> list[PricedLine]:
        return [line for product in self.products for line in product.lines]

    @property
    def subtotal_minor(self) -> int:
        return sum(product.subtotal_minor for product in self.products)

    @property
    def discount_minor(self) -> int:
        return sum(product.discount_minor for product in self.products)

    @property
    def total_minor(self) -> int:
        return self.subtotal_minor - self.discount_minor

    @property
    def discount_line_minor(self) -> int:
        """The discount as its line shows it: negative."""
        return -self.discount_minor


def interval_words(interval: str) -> str:
    """"annual" / "monthly", as lines and emails say it."""
    return "annual" if interval == Subscription.Interval.YEAR else "monthly"


def discount_of(amount_minor: int, discount_bp: int) -> int:
    """`discount_bp` basis points of `amount_minor`, rounded half up, in integers."""
    return (amount_minor * discount_bp * 2 + 10000) // 20000


def _edition_line(item: QuoteItem, interval: str) -> PricedLine:
    unit = unit_price(item.edition, interval)
    return PricedLine(
        product=item.product,
        edition=item.edition,
        description=f"{item.edition}, {seats_text(item.seats)}, {interval_words(interval)}",
        quantity=item.seats,
        unit_amount_minor=unit,
        amount_minor=unit * item.seats,
    )


def _addon_line(item: QuoteItem, addon: AddOn, interval: str) -> PricedLine:
    unit = addon_unit_price(addon, interval)
    per_seat = addon.pricing == AddOn.Pricing.PER_SEAT
    quantity = item.seats if per_seat else 1
    return PricedLine(
        product=item.product,
        addon=addon,
        description=(
            f"{addon.name} for {item.product.name}, {seats_text(item.seats)}, {interval_words(interval)}"
            if per_seat
            else f"{addon.name} for {item.product.name}, {interval_words(interval)}"
        ),
        quantity=quantity,
        unit_amount_minor=unit,
        amount_minor=unit * quantity,
    )


def quote_validate(
    *,
    organization: Organization,
    partner_tier: str | None,
    interval: str,
    items: Sequence[QuoteItem],
    partner_organization: Organization | None = None,
) -> None:
    """Refuse, with a sentence naming what is wrong, a quote that could not be bought:
    nothing chosen, a product twice, an unknown or free edition, seats under the seats in use or
    over the edition's limit, an add-on of another product, one-off or needing a bigger edition,
    a product already paid for (v1: use Add seats or Change edition), a product another payer
    manages (a partner's trial quoted directly, or another partner's), monthly from a partner
    when partner-managed subscriptions are annual only, two currencies."""
    if interval not in Subscription.Interval.values:
        raise QuoteInvalid("Choose monthly or annual billing.")
    if partner_tier is not None and settings.PARTNER_ANNUAL_ONLY and interval != Subscription.Interval.YEAR:
        raise QuoteInvalid("Subscriptions a partner manages are billed annually: choose annual billing.")
    if not items:
        raise QuoteInvalid("Choose at least one product to quote.")
    seen: set[int] = set()
    in_use = seats_in_use(organization=organization)
    currencies = set()
    for item in items:
        edition, product = item.edition, item.product
        if product.pk in seen:
            raise QuoteInvalid(f"{product.name} is in this quote twice: quote each product once.")
        seen.add(product.pk)
        if not edition.is_active or not product.is_active:
            raise QuoteInvalid(f"{edition} is not for sale.")
        if edition.is_free:
            raise QuoteInvalid(f"{edition} is free: there is nothing to quote. Choose a paid edition.")
        if item.seats < 1:
            raise QuoteInvalid(f"Choose at least 1 seat of {product.name}.")
        if item.seats < in_use:
            raise QuoteInvalid(
                f"{organization.name} uses {seats_text(in_use)} (members and pending invites): "
                f"quote at least {in_use} seats of {product.name}."
            )
        if item.seats > edition.seat_limit:
            raise QuoteInvalid(f"{edition} allows at most {edition.seat_limit:,} users: choose a bigger edition.")
        currencies.add(edition.currency)
        addon_ids: set[int] = set()
        for addon in item.addons:
            if addon.product_id != product.pk or not addon.is_active:
                raise QuoteInvalid(f"{addon.name} is not an add-on of {product.name}.")
            if addon.pk in addon_ids:
                raise QuoteInvalid(f"{addon.name} is in this quote twice.")
            addon_ids.add(addon.pk)
            if addon.pricing == AddOn.Pricing.ONE_OFF:
                raise QuoteInvalid(f"{addon.name} is bought once, from the billing page, not on a quote.")
            if not addon_edition_meets(addon, edition):
                raise QuoteInvalid(
                    f"{addon.name} needs {product.name} {addon.min_edition.name} or above: choose a bigger edition or leave it out."
                )
            currencies.add(addon.currency)
        live = (
            Subscription.objects.filter(organization=organization, product=product, status__in=Subscription.LIVE_STATUSES)
            .select_related("edition", "billed_to")
            .first()
        )
        if live is not None and live.interval and live.status in (Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE):
            raise QuoteInvalid(
                f"{organization.name} already pays for {live.edition} ({seats_text(live.seat_limit)}, renews on "
                f"{day(live.current_period_end)}): use Add seats or Change edition for it instead of a quote."
            )
        payer_id = partner_organization.pk if partner_organization is not None else None
        if live is not None and live.billed_to_id and live.billed_to_id != payer_id:
            raise QuoteInvalid(
                f"{product.name} is managed by {live.billed_to.name}: "
                + (f"ask {live.billed_to.name} for a quote." if partner_organization is None else "only they can quote it.")
            )
    if len(currencies) > 1:
        raise QuoteInvalid("These products are priced in different currencies: make one quote per currency.")


def quote_price(
    *,
    organization: Organization,
    partner_tier: str | None,
    interval: str,
    items: Sequence[QuoteItem],
    partner_organization: Organization | None = None,
) -> QuotePrice:
    """Validate (quote_validate) and price a quote: list prices from the catalog for the
    interval, less the partner tier's discount per product (none for a direct quote)."""
    quote_validate(
        organization=organization,
        partner_tier=partner_tier,
        interval=interval,
        items=items,
        partner_organization=partner_organization,
    )
    discount_bp = tier_discount_bp(partner_tier) if partner_tier is not None else 0
    products = []
    for item in items:
        lines = (_edition_line(item, interval), *(_addon_line(item, addon, interval) for addon in item.addons))
        subtotal = sum(line.amount_minor for line in lines)
        products.append(
            PricedProduct(
                product=item.product,
                edition=item.edition,
                seats=item.seats,
                lines=lines,
                subtotal_minor=subtotal,
                discount_minor=discount_of(subtotal, discount_bp),
            )
        )
    return QuotePrice(
        interval=interval,
        currency=items[0].edition.currency,
        discount_bp=discount_bp,
        discount_label=discount_label(tier=partner_tier, discount_bp=discount_bp) if partner_tier and discount_bp else "",
        products=tuple(products),
    )


# Numbers and dates -----------------------------------------------------------------------------


def quote_number_take(*, at: datetime) -> str:
    """The next quote number of `at`'s year, "Q-2026-000001": taken under a row lock in the
    caller's transaction, so numbers have no gaps and no duplicates (a quote that fails to be
    made rolls its number back with it)."""
    name = f"quote-{at.year}"
    if not QuoteSequence.objects.filter(name=name).exists():
        try:
            with transaction.atomic():
                QuoteSequence.objects.create(name=name)
        except IntegrityError:
            pass  # another quote created the year's row first; lock theirs
    sequence = QuoteSequence.objects.select_for_update().get(name=name)
    QuoteSequence.objects.filter(pk=sequence.pk).update(next_number=F("next_number") + 1)
    return f"Q-{at.year}-{sequence.next_number:06d}"


def quote_valid_until(created_at: datetime) -> datetime:
    """The end of the UTC day QUOTE_VALID_DAYS after `created_at`."""
    last_day = (created_at.astimezone(UTC) + timedelta(days=settings.QUOTE_VALID_DAYS)).date()
    return datetime.combine(last_day, time.max, tzinfo=UTC)


def quote_is_expired(quote: Quote, *, at: datetime | None = None) -> bool:
    return quote.status == Quote.Status.OPEN and (at or timezone.now()) > quote.valid_until


# Make, withdraw --------------------------------------------------------------------------------


@transaction.atomic
def quote_create(
    *,
    organization: Organization,
    partner,
    actor: User,
    interval: str,
    items: Sequence[QuoteItem],
    note: str = "",
) -> Quote:
    """Make a numbered quote for `organization` (the licensee).

    With `partner` (a Partner): the actor is one of the partner's people, the customer is linked
    to it (an active link; otherwise the same CustomerNotLinked as for any unknown customer),
    prices carry the tier's discount, the partner is the bill-to; an audit entry records it.
    Without: a direct quote by an admin of the organization, at list prices, billed to itself.
    Prices are fixed now; it is valid until the end of the UTC day QUOTE_VALID_DAYS later."""
    note = (note or "").strip()
    if len(note) > NOTE_MAX_LENGTH:
        raise QuoteInvalid(f"The note is longer than {NOTE_MAX_LENGTH:,} characters.")
    if partner is not None:
        partner = partner_for_member(user=actor, organization=partner.organization)
        link_for_partner(partner=partner, customer_id=organization.public_id)
        bill_to = partner.organization
    else:
        admin_membership_require(organization=organization, user=actor, doing="make a quote")
        bill_to = organization
    price = quote_price(
        organization=organization,
        partner_tier=partner.tier if partner else None,
        interval=interval,
        items=items,
        partner_organization=partner.organization if partner else None,
    )
    now = timezone.now()
    quote = Quote.objects.create(
        number=quote_number_take(at=now),
        organization=organization,
        partner=partner,
        interval=interval,
        currency=price.currency,
        subtotal_minor=price.subtotal_minor,
        discount_bp=price.discount_bp,
        discount_minor=price.discount_minor,
        total_minor=price.total_minor,
        valid_until=quote_valid_until(now),
        seller_details=settings.SELLER_DETAILS,
        bill_to_details=customer_details(billing_account_of(bill_to)),
        licensee_details=customer_details(billing_account_of(organization)),
        note=note,
        created_by=actor,
    )
    QuoteLine.objects.bulk_create(
        [
            QuoteLine(
                quote=quote,
                product=line.product,
                edition=line.edition,
                addon=line.addon,
                description=line.description,
                quantity=line.quantity,
                unit_amount_minor=line.unit_amount_minor,
                amount_minor=line.amount_minor,
                position=position,
            )
            for position, line in enumerate(price.lines)
        ]
    )
    if partner is not None:
        audit_record(
            partner=partner,
            customer=organization,
            actor=actor,
            actor_side=PartnerLink.Side.PARTNER,
            action="quote_made",
            summary=(
                f"{partner.organization.name} made quote {quote.number} for {organization.name}: "
                f"{quote_summary(quote)}, {money(quote.total_minor, quote.currency)}, valid until {day(quote.valid_until)}."
            ),
            detail={"quote": str(quote.public_id), "number": quote.number, "total_minor": quote.total_minor},
        )
        _quote_made_email(quote)
    logger.info("quote %s made for organization %s (partner %s)", quote.number, organization.pk, partner.pk if partner else "-")
    return quote


def quote_lock(quote: Quote) -> Quote:
    """Lock the quote row (after the organization's, the order every billing change takes)."""
    organization_lock(quote.organization)
    return (
        Quote.objects.select_for_update(of=("self",))
        .select_related("organization", "partner__organization")
        .get(pk=quote.pk)
    )


def quote_actor_check(*, quote: Quote, actor: User, admin: bool) -> None:
    """Who may act on a quote: for a partner quote, one of the partner's people (an admin with
    `admin=True`) while the link is active; for a direct quote, an admin of the customer."""
    if quote.partner_id:
        partner = partner_for_member(user=actor, organization=quote.partner.organization, admin=admin)
        link_for_partner(partner=partner, customer_id=quote.organization.public_id)
    else:
        admin_membership_require(organization=quote.organization, user=actor, doing="act on quotes")


@transaction.atomic
def quote_withdraw(*, quote: Quote, actor: User) -> Quote:
    """Withdraw an open quote: it can no longer be accepted (its number stays taken). An
    accepted quote cannot be withdrawn; withdrawing twice is a no-op."""
    quote_actor_check(quote=quote, actor=actor, admin=False)
    quote = quote_lock(quote)
    if quote.status == Quote.Status.WITHDRAWN:
        return quote
    if quote.status == Quote.Status.ACCEPTED:
        raise QuoteNotAcceptable(f"Quote {quote.number} was accepted on {day(quote.accepted_at)}: it cannot be withdrawn.")
    quote.status = Quote.Status.WITHDRAWN
    quote.withdrawn_at = timezone.now()
    quote.save(update_fields=["status", "withdrawn_at"])
    if quote.partner_id:
        audit_record(
            partner=quote.partner,
            customer=quote.organization,
            actor=actor,
            actor_side=PartnerLink.Side.PARTNER,
            action="quote_withdrawn",
            summary=f"{quote.partner.organization.name} withdrew quote {quote.number} for {quote.organization.name}.",
            detail={"quote": str(quote.public_id), "number": quote.number},
        )
        notify_customer_admins(
            customer=quote.organization,
            subject=f"{quote.partner.organization.name} withdrew quote {quote.number}",
            body=(
                f"{quote.partner.organization.name}, {possessive(quote.organization.name)} partner, withdrew quote {quote.number} "
                f"({quote_summary(quote)}) on {day(quote.withdrawn_at)}. Nothing was bought with it; its PDF now says "
                "it was withdrawn."
            ),
        )
    return quote


# Accept ----------------------------------------------------------------------------------------


def request_key_of(quote: Quote, product: Product) -> str:
    """The request key of the invoice a quote's product is bought with (unique per organization)."""
    return f"quote:{quote.public_id}:{product.code}"[:64]


def invoices_of_quote(quote: Quote) -> list[Invoice]:
    """The invoices accepting the quote issued, one per product, in the quote's order."""
    keys = [request_key_of(quote, product) for product in quote_products(quote)]
    by_key = {invoice.request_key: invoice for invoice in Invoice.objects.filter(organization=quote.organization, request_key__in=keys)}
    return [by_key[key] for key in keys if key in by_key]


def quote_products(quote: Quote) -> list[Product]:
    products: list[Product] = []
    for line in quote.lines.select_related("product").order_by("position", "pk"):
        if line.product not in products:
            products.append(line.product)
    return products


def quote_summary(quote: Quote) -> str:
    """"Tracker Standard, 50 seats, annual and Wiki Premium, 20 seats, annual" (the edition lines)."""
    parts = [line.description for line in quote.lines.filter(edition__isnull=False).order_by("position", "pk")]
    return " and ".join(parts)


def charge_lines_of(quote: Quote, product: Product) -> list[ChargeLine]:
    """The quote's lines for one product as billing's invoice lines: the edition line first,
    then its add-ons, then the discount as a negative line (its share for this product)."""
    lines = list(quote.lines.filter(product=product).select_related("edition", "addon").order_by("position", "pk"))
    charge = [
        ChargeLine(
            description=line.description,
            quantity=line.quantity,
            unit_amount_minor=line.unit_amount_minor,
            amount_minor=line.amount_minor,
            addon=line.addon,
        )
        for line in lines
    ]
    if quote.discount_bp and quote.partner_id:
        discount = discount_of(sum(line.amount_minor for line in lines), quote.discount_bp)
        if discount:
            charge.append(
                ChargeLine(
                    description=discount_label(tier=quote.partner.tier, discount_bp=quote.discount_bp),
                    quantity=1,
                    unit_amount_minor=-discount,
                    amount_minor=-discount,
                )
            )
    return charge


def quote_acceptable_check(*, quote: Quote, at: datetime) -> None:
    """Refuse (QuoteNotAcceptable) a withdrawn or expired quote, saying which."""
    if quote.status == Quote.Status.WITHDRAWN:
        raise QuoteNotAcceptable(
            f"Quote {quote.number} was withdrawn on {day(quote.withdrawn_at)}: nothing was bought. Ask for a new quote."
        )
    if at > quote.valid_until:
        raise QuoteNotAcceptable(
            f"Quote {quote.number} expired on {day(quote.valid_until)}: nothing was bought. Ask for a new quote."
        )


@transaction.atomic
def quote_accept(*, quote: Quote, actor: User, paid_with: str, po_number: str = "") -> list[Invoice]:
    """Buy what the quote says, once: one invoice per product through billing's
    `subscription_buy_quoted`, all in this transaction (a refusal for one product buys none).

    A partner quote is accepted by an admin of the partner (active link), paid by the partner's
    card on file or, when the partner's billing account is on invoice terms, against a purchase
    order; bill-to the partner at its discount. A direct quote is accepted by an admin of the
    customer, by card or against a purchase order (net terms, granted at once).

    Locks: the organization, then the quote row; its status and expiry are checked under the
    lock. Accepting an accepted quote returns its invoices and buys nothing more; an expired or
    withdrawn quote is refused and nothing is written."""
    quote_actor_check(quote=quote, actor=actor, admin=True)
    po_number = " ".join((po_number or "").split())
    if paid_with not in Quote.PaidWith.values:
        raise QuoteInvalid("Choose how to pay: by card or against a purchase order.")
    if paid_with == Quote.PaidWith.PURCHASE_ORDER:
        if not po_number:
            raise QuoteInvalid("Enter the purchase-order number the invoice should quote.")
        if len(po_number) > PO_NUMBER_MAX_LENGTH:
            raise QuoteInvalid(f"The purchase-order number is longer than {PO_NUMBER_MAX_LENGTH} characters.")
    quote = quote_lock(quote)
    if quote.status == Quote.Status.ACCEPTED:
        return invoices_of_quote(quote)
    now = timezone.now()
    quote_acceptable_check(quote=quote, at=now)
    payer = quote.partner.organization if quote.partner_id else quote.organization
    account = billing_account_of(payer)
    if paid_with == Quote.PaidWith.PURCHASE_ORDER and quote.partner_id and account.collection_method != account.Collection.INVOICE:
        raise QuoteInvalid(
            f"{payer.name} pays by card: purchase orders need invoice terms, which Flywheel's staff set up on request "
            "(Billing → Pay by invoice)."
        )
    if paid_with == Quote.PaidWith.CARD and not account.has_card:
        raise QuoteInvalid(f"{payer.name} has no card on file: add one on the billing page, then accept again.")
    from billing.services.quoted import (
        subscription_buy_quoted,  # helper A's module, merged when published
    )

    invoices = []
    lines_by_product: dict[int, list] = {}
    for line in quote.lines.select_related("product", "edition", "addon").order_by("position", "pk"):
        lines_by_product.setdefault(line.product_id, []).append(line)
    for product_lines in lines_by_product.values():
        product = product_lines[0].product
        edition_line = next(line for line in product_lines if line.edition_id)
        invoices.append(
            subscription_buy_quoted(
                organization=quote.organization,
                edition=edition_line.edition,
                seats=edition_line.quantity,
                interval=quote.interval,
                addons=[line.addon for line in product_lines if line.addon_id],
                lines=charge_lines_of(quote, product),
                actor=actor,
                on_behalf=quote.partner.organization if quote.partner_id else None,
                discount_bp=quote.discount_bp if quote.partner_id else 0,
                collection="invoice" if paid_with == Quote.PaidWith.PURCHASE_ORDER else "card",
                po_number=po_number if paid_with == Quote.PaidWith.PURCHASE_ORDER else "",
                request_key=request_key_of(quote, product),
            )
        )
    quote.status = Quote.Status.ACCEPTED
    quote.accepted_by = actor
    quote.accepted_at = now
    quote.paid_with = paid_with
    quote.po_number = po_number if paid_with == Quote.PaidWith.PURCHASE_ORDER else ""
    quote.save(update_fields=["status", "accepted_by", "accepted_at", "paid_with", "po_number"])
    how = f"invoiced against purchase order {quote.po_number}" if quote.po_number else "paid by card"
    invoice_numbers = ", ".join(invoice.number for invoice in invoices)
    if quote.partner_id:
        audit_record(
            partner=quote.partner,
            customer=quote.organization,
            actor=actor,
            actor_side=PartnerLink.Side.PARTNER,
            action="quote_accepted",
            summary=(
                f"{quote.partner.organization.name} accepted quote {quote.number} and bought {quote_summary(quote)} "
                f"for {quote.organization.name}, {how} (invoice {invoice_numbers}, billed to {quote.partner.organization.name})."
            ),
            detail={
                "quote": str(quote.public_id),
                "number": quote.number,
                "invoices": [invoice.number for invoice in invoices],
                "total_minor": quote.total_minor,
                "paid_with": paid_with,
            },
        )
    _quote_accepted_emails(quote, invoices)
    return invoices


# Emails ----------------------------------------------------------------------------------------


def _quote_url(quote: Quote, organization: Organization) -> str:
    """The quote's page, opened in `organization` (the reader's: the partner's or the customer's)."""
    return site_link(reverse("partners:quote", args=[quote.public_id]), organization=organization)


def _quote_made_email(quote: Quote) -> None:
    """Tell the customer's admins a partner quote is ready to read (no action needed from them)."""
    partner_name = quote.partner.organization.name
    notify_customer_admins(
        customer=quote.organization,
        subject=f"{partner_name} sent {quote.organization.name} quote {quote.number}",
        body=(
            f"{partner_name}, {possessive(quote.organization.name)} partner, made quote {quote.number} for {quote_summary(quote)}.\n\n"
            f"{partner_name} pays for it and is billed for it; it is valid until {day(quote.valid_until)}. "
            f"You can read it and download its PDF here:\n{_quote_url(quote, quote.organization)}\n\n"
            f"Nothing is bought until {partner_name} accepts it."
        ),
    )


def _quote_accepted_emails(quote: Quote, invoices: list[Invoice]) -> None:
    """For a partner quote, tell the partner (the whole quote, its invoices and amounts) and the
    customer's admins (what they now have and who manages it, without the partner's prices).
    A direct quote's payer hears from billing alone (each invoice on terms, or its receipt): one
    email per invoice is enough for the people who accepted it themselves."""
    if not quote.partner_id:
        return
    bought = quote_summary(quote)
    how = (
        f"invoiced against purchase order {quote.po_number}, due in {settings.QUOTE_PO_NET_TERMS_DAYS} days"
        if quote.po_number
        else "charged to the card on file"
    )
    invoice_list = "\n".join(f"- {invoice.number}: {money(invoice.total_minor, invoice.currency)}" for invoice in invoices)
    partner_name = quote.partner.organization.name
    notify_partner(
        partner=quote.partner,
        subject=f"Quote {quote.number} accepted: {quote.organization.name}",
        body=(
            f"Quote {quote.number} for {quote.organization.name} was accepted on {day(quote.accepted_at)}: "
            f"{bought}.\n\nTotal {money(quote.total_minor, quote.currency)} (after the "
            f"{discount_percent(quote.discount_bp)} partner discount), {how}. Invoices, billed to {partner_name}:\n"
            f"{invoice_list}\n\nThe quote: {_quote_url(quote, quote.partner.organization)}"
        ),
    )
    notify_customer_admins(
        customer=quote.organization,
        subject=f"{partner_name} bought {bought} for {quote.organization.name}",
        body=(
            f"{partner_name} accepted quote {quote.number} on {day(quote.accepted_at)} and bought {bought} "
            f"for {quote.organization.name}, for a term starting today.\n\n"
            f"{partner_name} is billed for it and manages it: to change seats or editions, ask {partner_name}. "
            f"You can still see it on your billing page and cancel it there.\n\n"
            f"The quote: {_quote_url(quote, quote.organization)}"
        ),
    )

