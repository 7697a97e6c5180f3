"""A customer moves to direct billing: its admin takes over what a partner pays for.

Two ways, both from /app/partner/direct/:
- at renewal: the partner link ends (from the customer's side) and every subscription billed
  to a partner is flagged `billed_to_ends_at_renewal` (billing's `subscription_payer_end`): the
  partner keeps the current term it paid for, the next renewal is the customer's own, at list
  price. Nothing is charged now.
- now, one product at a time: the link ends as above, and the admin pays the prorated list
  price of the rest of the current term (billing's take-over quote, the exact amount shown
  first); once paid, billing clears `billed_to` and credits the partner the unused days. If the
  payment fails, nothing moves (the product stays the partner's until its renewal).

Each writes one audit entry (the link's end writes its own)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import Organization, User
from accounts.selectors import admin_membership_require
from accounts.services import organization_lock
from billing.formats import day
from billing.models import AddOnSubscription, Invoice, Payment, Subscription
from billing.pricing import addon_quantity, addon_unit_price, unit_price
from billing.services.payer import (
    TakeOverQuote,
    subscription_payer_end,
    subscription_payer_take_over_now,
    subscription_payer_take_over_quote,
)
from common.exceptions import FlywheelError, NotFound
from common.money import money

from ..exceptions import PartnerError
from ..models import Partner, PartnerLink
from ..selectors import active_link_of_customer
from . import links
from .audit import audit_record


@dataclass(frozen=True)
class DirectOption:
    """One partner-managed product, and what moving it to direct billing means."""

    subscription: Subscription
    payer: Organization
    renews_at: datetime | None
    # What the first renewal billed to the customer costs at list price (edition x seats, and
    # its add-ons), per billing period.
    renewal_minor: int
    currency: str
    # Paying for the rest of the term now: billing's quote (None when it cannot be bought now,
    # with `now_refusal` saying why).
    now_quote: TakeOverQuote | None = None
    now_refusal: str = ""

    @property
    def period_word(self) -> str:
        return "year" if self.subscription.interval == Subscription.Interval.YEAR else "month"


def renewal_price_minor(subscription: Subscription) -> int:
    """The subscription's next period at list price: its edition (pending edition and seats
    when a change waits for the renewal) and its add-ons that renew with it."""
    edition = subscription.pending_edition or subscription.edition
    seats = subscription.pending_seat_limit or subscription.seat_limit
    interval = subscription.interval or Subscription.Interval.YEAR
    total = unit_price(edition, interval) * seats
    for addon_subscription in AddOnSubscription.objects.filter(
        subscription=subscription, status=AddOnSubscription.Status.ACTIVE, cancel_at_period_end=False
    ).select_related("addon"):
        total += addon_unit_price(addon_subscription.addon, interval) * addon_quantity(addon_subscription.addon, seat_limit=seats)
    return total


def _managed(organization: Organization) -> list[Subscription]:
    return list(
        Subscription.objects.filter(organization=organization, billed_to__isnull=False)
        .exclude(status=Subscription.Status.CANCELED)
        .select_related("product", "edition", "pending_edition", "billed_to")
        .order_by("product__position", "product__code")
    )


def direct_options(*, organization: Organization) -> list[DirectOption]:
    """Each product a partner pays for, with the renewal's list price and the price of taking
    it over now (billing's quote), for the direct-billing page."""
    options = []
    for subscription in _managed(organization):
        quote, refusal = None, ""
        try:
            quote = take_over_quote(subscription=subscription)
        except PartnerError as error:
            refusal = error.message
        options.append(
            DirectOption(
                subscription=subscription,
                payer=subscription.billed_to,
                renews_at=subscription.current_period_end,
                renewal_minor=renewal_price_minor(subscription),
                currency=subscription.edition.currency,
                now_quote=quote,
                now_refusal=refusal,
            )
        )
    return options


def take_over_quote(*, subscription: Subscription) -> TakeOverQuote:
    """Billing's price of taking the subscription over now (the rest of the term at list
    price), or PartnerError with billing's reason."""
    try:
        return subscription_payer_take_over_quote(subscription=subscription)
    except FlywheelError as error:
        raise PartnerError(error.message) from None


def _link_end_for_direct(*, organization: Organization, actor: User, reason: str) -> PartnerLink | None:
    link = active_link_of_customer(organization)
    if link is not None:
        links.link_end(link=link, actor=actor, side=PartnerLink.Side.CUSTOMER, reason=reason)
    return link


def _partner_of(payer: Organization) -> Partner | None:
    return Partner.objects.filter(organization=payer).first()


@transaction.atomic
def direct_at_renewal(*, organization: Organization, actor: User) -> list[Subscription]:
    """The admin moves the organization to direct billing at renewal: its partner link ends and
    every subscription billed to a partner becomes the organization's own at its next renewal
    (at list price). Nothing is charged now. Refused, with nothing written, when nothing is
    billed to a partner and no partner is linked."""
    admin_membership_require(organization=organization, user=actor, doing="move to direct billing")
    organization_lock(organization)
    managed = _managed(organization)
    link = active_link_of_customer(organization)
    if link is None and not managed:
        raise PartnerError(f"{organization.name} already pays Flywheel directly: there is nothing to move.")
    _link_end_for_direct(organization=organization, actor=actor, reason="Moved to direct billing")
    now = timezone.now()
    moved = []
    for subscription in Subscription.objects.filter(pk__in=[sub.pk for sub in managed]).select_related(
        "product", "edition", "pending_edition", "billed_to"
    ).order_by("pk"):
        if not subscription.billed_to_ends_at_renewal:
            # Billed to a partner it has no active link with (its link's end flagged the rest).
            subscription = subscription_payer_end(subscription=subscription, at=now)
        moved.append(subscription)
        audit_record(
            partner=_partner_of(subscription.billed_to),
            customer=organization,
            actor=actor,
            actor_side=PartnerLink.Side.CUSTOMER,
            action="direct_at_renewal",
            summary=(
                f"{organization.name} moves {subscription.product.name} to direct billing: "
                f"{subscription.billed_to.name} pays until {_day(subscription.current_period_end)}, "
                + (
                    "when it ends (it is cancelled)."
                    if subscription.cancel_at_period_end
                    else f"then it is billed to {organization.name} at list price "
                    f"({money(renewal_price_minor(subscription), subscription.edition.currency)} a "
                    f"{'year' if subscription.interval == Subscription.Interval.YEAR else 'month'})."
                )
            ),
            detail={"subscription": str(subscription.public_id), "payer": str(subscription.billed_to.public_id)},
        )
    return moved


def at_renewal_sentence(moved: list[Subscription]) -> str:
    """What the admin is told once the move at renewal is recorded."""
    if not moved:
        return "You no longer have a partner. Nothing was billed to them."
    parts = [f"{sub.product.name} from {_day(sub.current_period_end)}" for sub in moved]
    return "Moved to direct billing: " + ", ".join(parts) + ". Until then your partner keeps paying; nothing is charged now."


def direct_now(
    *, organization: Organization, actor: User, subscription_id: str, request_key: str, quote_token: str, po_number: str = ""
) -> Payment | Invoice:
    """The admin takes one partner-managed subscription over now: the partner link ends (other
    products move at their renewal) and billing charges the admin the prorated list price it
    quoted (`quote_token`), clearing `billed_to` once paid and crediting the partner. Returns
    billing's outcome (a payment to follow, or the invoice)."""
    admin_membership_require(organization=organization, user=actor, doing="move to direct billing")
    subscription = next((sub for sub in _managed(organization) if str(sub.public_id) == str(subscription_id)), None)
    if subscription is None:
        raise NotFound("No product of yours billed to a partner has that id.")
    if not request_key:
        raise PartnerError("That form is out of date: reload the page and try again.")
    with transaction.atomic():
        organization_lock(organization)
        _link_end_for_direct(organization=organization, actor=actor, reason="Moved to direct billing (took over now)")
        outcome = subscription_payer_take_over_now(
            subscription=subscription, actor=actor, request_key=request_key, quote_token=quote_token, po_number=po_number
        )
        invoice = outcome.invoice if isinstance(outcome, Payment) else outcome
        audit_record(
            partner=_partner_of(subscription.billed_to),
            customer=organization,
            actor=actor,
            actor_side=PartnerLink.Side.CUSTOMER,
            action="direct_now",
            summary=(
                f"{organization.name} takes {subscription.product.name} over from {subscription.billed_to.name} now: "
                f"{money(invoice.total_minor, invoice.currency)} at list price for the rest of the term until "
                f"{_day(subscription.current_period_end)} (invoice {invoice.number or 'being issued'}); "
                f"{subscription.billed_to.name} is credited the days it no longer pays for once this is paid."
            ),
            detail={
                "subscription": str(subscription.public_id),
                "payer": str(subscription.billed_to.public_id),
                "invoice": str(invoice.public_id),
            },
        )
    return outcome


def direct_now_next(outcome: Payment | Invoice) -> str:
    """Where the admin goes after confirming a take-over: the payment's page while the card is
    charged, else the invoice (on purchase-order terms, or nothing to pay)."""
    if isinstance(outcome, Payment):
        return reverse("payment_status", args=[outcome.public_id])
    return reverse("invoice", args=[outcome.public_id])


def _day(moment: datetime | None) -> str:
    return day(moment) or "the end of the period"
