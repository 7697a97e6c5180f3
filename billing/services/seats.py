"""Seats: the seat policy that accounts asks before adding a user, adding seats for a prorated
charge, and removing seats from the next renewal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from accounts.exceptions import SeatLimitReached
from accounts.models import Organization, User
from accounts.services import organization_lock, seats_in_use
from catalog.models import AddOn, Edition
from common.money import money

from ..exceptions import (
    CheckoutInvalid,
    NoCardOnFile,
)
from ..formats import seats_text, span, time_left
from ..models import (
    AddOnSubscription,
    Invoice,
    Payment,
    Subscription,
)
from ..pricing import (
    PRICE_CHANGED,
    addon_unit_price,
    discount_minor,
    period_seconds,
    prorate,
    quote_token_make,
    quote_token_read,
    unit_price,
)
from .billing_account import (
    discount_bp_require,
    payer_collection,
    payer_require,
    payer_take_over_withdraw,
)
from .invoices import ChargeLine, discount_lines, invoice_issue
from .payments import invoice_collect


def seat_limit_enforce(organization: Organization, seats_in_use: int, seats_wanted: int) -> None:
    """The seat policy: every live subscription of the organization must have room.

    Called by accounts with the organization row locked, so the count cannot change under it.
    """
    if seats_wanted < 0:
        return
    subscriptions = (
        Subscription.objects.filter(organization=organization, status__in=Subscription.LIVE_STATUSES)
        .select_related("product", "edition", "billed_to")
        .order_by("seat_limit", "pk")
    )
    for subscription in subscriptions:
        if seats_in_use + seats_wanted > subscription.seat_limit:
            bigger = (
                Edition.objects.filter(
                    product=subscription.product, is_active=True, seat_limit__gt=subscription.seat_limit
                )
                .order_by("rank")
                .first()
            )
            situation = (
                f"{subscription.product.name} {subscription.edition.name} allows {subscription.seat_limit} users "
                f"and {organization.name} already has {seats_in_use} (members and pending invites)."
            )
            if subscription.billed_to_id:
                advice = managed_seat_advice(subscription)
                raise SeatLimitReached(
                    f"{situation} {advice}", limit=subscription.seat_limit, product=subscription.product.code,
                    to_admin=f"{situation} {advice}",
                )
            raise SeatLimitReached(
                f"{situation} {_seat_advice(bigger, to_admin=False)}",
                limit=subscription.seat_limit,
                product=subscription.product.code,
                to_admin=f"{situation} {_seat_advice(bigger, to_admin=True)}",
            )


def managed_seat_advice(subscription: Subscription) -> str:
    """The way out of a full subscription a partner manages, said to members and admins alike:
    the partner adds seats, asked from Flywheel's ask page (the partners app's, by URL name)."""
    partner = subscription.billed_to.name
    try:
        ask = reverse("partners:ask") + "?" + urlencode({"product": subscription.product.code, "kind": "seats"})
    except NoReverseMatch:
        ask = reverse("billing")
    return (
        f"{subscription.product.name} is managed by {partner}: ask {partner} for more seats "
        f"({settings.SITE_URL}{ask}), or free a seat by removing a member or withdrawing an invite."
    )


def _seat_advice(bigger: Edition | None, *, to_admin: bool) -> str:
    """The way out of a full edition, said to everyone ("an admin can move to ...") or to the
    admin, who is the one who can take it ("move to ...")."""
    if bigger is None:
        return "An admin can free a seat by removing a member or withdrawing an invite."
    return (
        f"To get more seats, {'' if to_admin else 'an admin can '}move to {bigger.product.name} {bigger.name} "
        f"(up to {bigger.seat_limit} users), or free a seat by removing a member or withdrawing an invite."
    )


@dataclass(frozen=True)
class SeatsAddOnLine:
    """A per-seat add-on's share of added seats: its own prorated line on the seats invoice."""

    addon: AddOn
    seats: int
    unit_amount_minor: int
    amount_minor: int


@dataclass(frozen=True)
class SeatsQuote:
    """The prorated price of adding seats until the end of the current period.

    seats amount = seats x price per seat for the period x seconds left / seconds in the
    period, rounded half up to a whole minor unit (docs/billing.md); each active per-seat
    add-on of the subscription adds its own line, prorated the same way (`addon_lines`).
    `amount_minor` is the total charged: the seats and their add-ons.
    """

    seats: int
    unit_amount_minor: int
    amount_minor: int
    currency: str
    period_start: datetime
    period_end: datetime
    seconds_left: int
    seconds_in_period: int
    new_seat_limit: int
    token: str = ""
    seats_amount_minor: int = 0
    addon_lines: tuple[SeatsAddOnLine, ...] = ()
    # A partner's discount (basis points) and what it takes off the seats and their add-ons;
    # `amount_minor` is already net of it.
    discount_bp: int = 0
    discount_minor: int = 0

    @property
    def time_left(self) -> str:
        """What is left of the period in days (hours on its last day): "31 days"."""
        return time_left(self.seconds_left)


def seats_quote(
    *, subscription: Subscription, seats: int, at: datetime | None = None, discount_bp: int | None = None
) -> SeatsQuote:
    """Price `seats` more seats for the rest of the paid period, as at `at` (now by default);
    CheckoutInvalid says why not. `discount_bp`: the partner's discount (by default the
    subscription's own, billed_to_discount_bp), a line of its own taken off the total."""
    if subscription.status != Subscription.Status.ACTIVE or not subscription.interval or not subscription.current_period_end:
        raise CheckoutInvalid(f"{subscription.product.name} is not paid for yet: buy it first.")
    if seats < 1:
        raise CheckoutInvalid("Add at least one seat.")
    edition = subscription.edition
    # Seats being paid for count already: two purchases under way must not pass the limit together.
    buying = sum(
        Invoice.objects.filter(
            subscription=subscription, kind=Invoice.Kind.SEATS, status=Invoice.Status.OPEN, payments__status__in=Payment.LIVE
        ).values_list("seats_delta", flat=True)
    )
    if subscription.seat_limit + buying + seats > edition.seat_limit:
        being_bought = f" ({buying} more being paid for)" if buying else ""
        raise CheckoutInvalid(
            f"{edition} allows at most {edition.seat_limit} users and you have {subscription.seat_limit} seats{being_bought}; "
            "choose a bigger edition to add more."
        )
    now = at or timezone.now()
    seconds_left = int((subscription.current_period_end - now).total_seconds())
    if seconds_left <= 0:
        raise CheckoutInvalid("The current period has ended; seats are added at renewal.")
    seconds_in_period = period_seconds(subscription.current_period_start, subscription.interval)
    unit = unit_price(edition, subscription.interval)
    seats_amount = prorate(full_amount_minor=unit * seats, seconds_left=seconds_left, seconds_in_period=seconds_in_period)
    addon_lines = tuple(
        SeatsAddOnLine(
            addon=row.addon,
            seats=seats,
            unit_amount_minor=addon_unit_price(row.addon, subscription.interval),
            amount_minor=prorate(
                full_amount_minor=addon_unit_price(row.addon, subscription.interval) * seats,
                seconds_left=seconds_left,
                seconds_in_period=seconds_in_period,
            ),
        )
        for row in AddOnSubscription.objects.select_related("addon")
        .filter(subscription=subscription, status=AddOnSubscription.Status.ACTIVE, addon__pricing=AddOn.Pricing.PER_SEAT)
        .order_by("addon__position", "pk")
    )
    gross = seats_amount + sum(line.amount_minor for line in addon_lines)
    if discount_bp is None:
        discount_bp = subscription.billed_to_discount_bp if subscription.billed_to_id else 0
    discount_bp_require(discount_bp)
    discount = discount_minor(gross, discount_bp)
    amount = gross - discount
    return SeatsQuote(
        discount_bp=discount_bp,
        discount_minor=discount,
        seats=seats,
        unit_amount_minor=unit,
        amount_minor=amount,
        seats_amount_minor=seats_amount,
        addon_lines=addon_lines,
        currency=edition.currency,
        period_start=now,
        period_end=subscription.current_period_end,
        seconds_left=seconds_left,
        seconds_in_period=seconds_in_period,
        new_seat_limit=subscription.seat_limit + seats,
        token=quote_token_make(kind="seats", subscription=subscription, detail=str(seats), at=now, total_minor=amount),
    )


def subscription_add_seats(
    *,
    subscription: Subscription,
    actor: User,
    seats: int,
    request_key: str,
    quote_token: str | None = None,
    on_behalf: Organization | None = None,
    discount_bp: int | None = None,
) -> Payment | Invoice:
    """Add seats to a paid subscription for a prorated charge; they are granted when the
    charge succeeds. Each active per-seat add-on gets one more line on the same invoice, for
    the added seats, prorated the same way.

    With `quote_token` (the price the admin saw, seats_quote), the charge is exactly that
    price, priced at the moment it was shown; a price older than QUOTE_MAX_AGE, or one the
    subscription no longer matches, is refused and nothing is written.

    Invariant: one request key, one invoice and one charge. A double click or a retried
    request (same key) returns the payment it started. Locks: organization, then subscription.

    The payer pays (payer_collection): `on_behalf`, a partner the subscription is billed to,
    whose admin the actor is, at `discount_bp` (by default the subscription's rate), by its
    card, or on its purchase-order terms: then the seats are granted at once and the invoice
    (not a payment) is returned. A subscription billed to a partner refuses the organization's
    own admins (ManagedByPayer).
    """
    organization = subscription.organization
    payer_require(subscription=subscription, actor=actor, on_behalf=on_behalf)
    if not request_key or len(request_key) > 64:
        raise CheckoutInvalid("The request is missing its key; reload the page and try again.")
    with transaction.atomic():
        organization = organization_lock(organization)
        existing = Payment.objects.filter(invoice__organization=organization, invoice__request_key=request_key).order_by("-created_at").first()
        if existing is not None:
            return existing
        on_terms = Invoice.objects.filter(organization=organization, request_key=request_key, kind=Invoice.Kind.SEATS).first()
        if on_terms is not None:
            return on_terms
        subscription = (
            Subscription.objects.select_for_update(of=("self",)).select_related("product", "edition", "billed_to").get(pk=subscription.pk)
        )
        payer_require(subscription=subscription, actor=actor, on_behalf=on_behalf)
        if subscription.billed_to_id:
            payer_take_over_withdraw(subscription=subscription)  # it priced the subscription as it was
        collection = payer_collection(subscription, kind=Invoice.Kind.SEATS)
        if not collection.purchase_order and not collection.account.has_card:
            raise NoCardOnFile("Add a card before buying seats.")
        at, shown_total = None, None
        if quote_token is not None:
            at, shown_total = quote_token_read(token=quote_token, kind="seats", subscription=subscription, detail=str(seats))
        quote = seats_quote(subscription=subscription, seats=seats, at=at, discount_bp=discount_bp)
        if shown_total is not None and quote.amount_minor != shown_total:
            raise CheckoutInvalid(PRICE_CHANGED)
        if quote.amount_minor == 0:
            raise CheckoutInvalid("The period ends now; seats are added at renewal.")
        per = "year" if subscription.interval == Subscription.Interval.YEAR else "month"
        invoice = invoice_issue(
            organization=organization,
            subscription=subscription,
            kind=Invoice.Kind.SEATS,
            edition=subscription.edition,
            seats=quote.new_seat_limit,
            interval=subscription.interval,
            unit_amount_minor=quote.unit_amount_minor,
            quantity=seats,
            amount_minor=quote.seats_amount_minor,
            period_start=quote.period_start,
            period_end=quote.period_end,
            description=(
                f"{subscription.edition}: {seats_text(seats)} × {money(quote.unit_amount_minor, quote.currency)}/"
                f"{'year' if subscription.interval == Subscription.Interval.YEAR else 'month'}, "
                f"prorated for {span(quote.period_start, quote.period_end)}"
            ),
            seats_delta=seats,
            request_key=request_key,
            lines=[
                ChargeLine(
                    description=(
                        f"{line.addon.name}: {seats_text(seats)} × {money(line.unit_amount_minor, quote.currency)}/{per}, "
                        f"prorated for {span(quote.period_start, quote.period_end)}"
                    ),
                    quantity=seats,
                    unit_amount_minor=line.unit_amount_minor,
                    amount_minor=line.amount_minor,
                    addon=line.addon,
                )
                for line in quote.addon_lines
            ]
            + discount_lines(quote.discount_minor, quote.discount_bp),
            bill_to=subscription.billed_to,
            discount_bp=quote.discount_bp,
        )
        payment = invoice_collect(invoice=invoice, collection=collection, actor=actor, what=f"{seats} more seat{'s' if seats != 1 else ''} of {subscription.product.name}")
        return payment if payment is not None else invoice


def subscription_remove_seats(
    *, subscription: Subscription, actor: User, seats: int, on_behalf: Organization | None = None
) -> Subscription:
    """Fewer seats from the next renewal; refused below the seats the organization uses. A
    subscription billed to a partner: the partner's (`on_behalf`), never its customer's admins."""
    payer_require(subscription=subscription, actor=actor, on_behalf=on_behalf)
    with transaction.atomic():
        organization = organization_lock(subscription.organization)
        subscription = Subscription.objects.select_for_update(of=("self",)).select_related("product").get(pk=subscription.pk)
        if subscription.status != Subscription.Status.ACTIVE or not subscription.interval:
            raise CheckoutInvalid(f"{subscription.product.name} is not paid for.")
        target = (subscription.pending_seat_limit or subscription.seat_limit) - seats
        in_use = seats_in_use(organization=organization)
        if seats < 1 or target < max(1, in_use):
            raise CheckoutInvalid(
                f"{organization.name} uses {in_use} seats (members and pending invites); it cannot go below that."
            )
        subscription.pending_seat_limit = target
        subscription.save(update_fields=["pending_seat_limit", "updated_at"])
        return subscription
