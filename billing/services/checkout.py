"""Checkout: the price of turning a trial (or Free, or a suspended subscription) into a paid
subscription, and doing it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.models import Organization, User
from accounts.services import organization_lock, seats_in_use
from catalog.models import Edition

from ..exceptions import (
    CheckoutInvalid,
    NoCardOnFile,
)
from ..models import (
    Invoice,
    Payment,
    Subscription,
)
from ..pricing import (
    discount_minor,
    period_end_after,
    prorate,
    unit_price,
)
from .billing_account import billing_account_of, discount_bp_require, payer_require
from .invoices import discount_lines, invoice_issue, owed_for_time_used
from .payments import payment_start


@dataclass(frozen=True)
class Quote:
    """The exact price of a checkout, shown before the admin confirms."""

    edition: Edition
    seats: int
    interval: str
    unit_amount_minor: int
    amount_minor: int
    currency: str
    period_start: datetime
    period_end: datetime
    discount_bp: int = 0
    discount_minor: int = 0

    @property
    def total_minor(self) -> int:
        """What is charged: the amount less the partner's discount."""
        return self.amount_minor - self.discount_minor

    @property
    def prorated(self) -> bool:
        """The first period is shortened to the organization's existing billing date."""
        return self.amount_minor != self.unit_amount_minor * self.seats


def checkout_quote(
    *, subscription: Subscription, edition: Edition, seats: int, interval: str, discount_bp: int = 0
) -> Quote:
    """Price `seats` seats of `edition` for one billing period starting now; with
    `discount_bp` (a partner buying), `discount_minor` is taken off (`total_minor`).

    Raises CheckoutInvalid naming what is wrong: another product's edition, a free edition,
    fewer seats than the organization uses, more than the edition allows, an unknown interval,
    a discount outside 0..99.99 %.
    """
    discount_bp_require(discount_bp)
    if edition.product_id != subscription.product_id or not edition.is_active:
        raise CheckoutInvalid(f"{edition} is not an edition of {subscription.product.name}.")
    if edition.is_free:
        raise CheckoutInvalid(f"{edition} is free: there is nothing to pay.")
    if interval not in Subscription.Interval.values:
        raise CheckoutInvalid(f"Billing must be monthly or annual, not {interval!r}.")
    in_use = seats_in_use(organization=subscription.organization)
    if seats < max(1, in_use):
        raise CheckoutInvalid(
            f"{subscription.organization.name} uses {in_use} seats (members and pending invites); "
            f"buy at least {max(1, in_use)}."
        )
    if seats > edition.seat_limit:
        raise CheckoutInvalid(f"{edition} allows at most {edition.seat_limit} users; choose a bigger edition.")
    unit = unit_price(edition, interval)
    start = timezone.now()
    full_end = period_end_after(start, interval)
    # Another product already paid on this interval sets the organization's billing date: the
    # first period runs to that date, prorated, so every product renews on one cycle.
    anchor = (
        Subscription.objects.filter(
            organization=subscription.organization,
            status=Subscription.Status.ACTIVE,
            interval=interval,
            current_period_end__gt=start,
            current_period_end__lte=full_end,
        )
        .exclude(pk=subscription.pk)
        .order_by("current_period_end")
        .first()
    )
    if anchor is None:
        return Quote(
            edition, seats, interval, unit, unit * seats, edition.currency, start, full_end,
            discount_bp, discount_minor(unit * seats, discount_bp),
        )
    amount = prorate(
        full_amount_minor=unit * seats,
        seconds_left=int((anchor.current_period_end - start).total_seconds()),
        seconds_in_period=int((full_end - start).total_seconds()),
    )
    return Quote(
        edition, seats, interval, unit, amount, edition.currency, start, anchor.current_period_end,
        discount_bp, discount_minor(amount, discount_bp),
    )


def subscription_checkout(
    *,
    subscription: Subscription,
    actor: User,
    edition: Edition,
    seats: int,
    interval: str,
    on_behalf: Organization | None = None,
    discount_bp: int = 0,
) -> Payment:
    """Turn a trial (or the Free edition, or a suspended subscription) into a paid one.

    Issues an invoice for the quoted amount and a payment, commits, then the worker charges
    the card on file off-session. A double click finds the payment already in flight and
    returns it: one invoice, one charge. After a declined card the same invoice is retried.
    Locks: organization, then subscription (the order every seat change uses).

    `on_behalf` (a partner buying for its customer; the actor is one of its admins): the
    invoice is billed to it, at `discount_bp` off (a line of its own), charged to its card, and
    paying it makes the subscription billed to it (annual only, PARTNER_ANNUAL_ONLY). Without
    it, a subscription billed to a partner is refused (ManagedByPayer).
    """
    organization = subscription.organization
    payer_require(
        subscription=subscription, actor=actor, on_behalf=on_behalf, interval=interval, may_become_payer=True
    )
    if on_behalf is None:
        discount_bp = 0
    with transaction.atomic():
        organization = organization_lock(organization)
        subscription = Subscription.objects.select_for_update().select_related("product").get(pk=subscription.pk)
        subscription.organization = organization
        payer_require(
            subscription=subscription, actor=actor, on_behalf=on_behalf, interval=interval, may_become_payer=True
        )
        account = billing_account_of(on_behalf or organization)
        if not account.has_card:
            raise NoCardOnFile("Add a card before paying.")
        live = (
            Payment.objects.select_related("invoice__bill_to")
            .filter(invoice__subscription=subscription, invoice__status=Invoice.Status.OPEN)
            .exclude(status=Payment.Status.FAILED)
            .first()
        )
        if live is not None:
            if live.invoice.bill_to_id != (on_behalf.pk if on_behalf else None):
                # Another payer's (a partner's quote, or the customer's own while a partner
                # asks): not this buyer's payment to show, and not to replace while it runs.
                paying = live.invoice.bill_to if live.invoice.bill_to_id else organization
                raise CheckoutInvalid(f"{paying.name} is paying for {subscription.product.name} right now; try again in a minute.")
            return live
        if subscription.status == Subscription.Status.ACTIVE and subscription.interval:
            raise CheckoutInvalid(f"{subscription.product.name} is already paid for.")
        owed_now = owed_for_time_used(timezone.now())
        owed = Invoice.objects.filter(owed_now, subscription=subscription, status=Invoice.Status.OPEN).first()
        if owed is not None:
            raise CheckoutInvalid(
                f"Invoice {owed.number} for a period {subscription.product.name} was used is not paid yet; once it is "
                "paid (against its purchase order), the subscription is active again."
            )
        quote = checkout_quote(subscription=subscription, edition=edition, seats=seats, interval=interval, discount_bp=discount_bp)
        invoice = (
            Invoice.objects.filter(
                subscription=subscription,
                status=Invoice.Status.OPEN,
                kind=Invoice.Kind.CONVERSION,
                target_edition=edition,
                target_seats=seats,
                target_interval=interval,
                total_minor=quote.total_minor,
                bill_to=on_behalf,
            )
            .order_by("-issued_at")
            .first()
        )
        if invoice is None:
            Invoice.objects.filter(subscription=subscription, status=Invoice.Status.OPEN).exclude(owed_now).update(
                status=Invoice.Status.VOID
            )
            invoice = invoice_issue(
                organization=organization,
                subscription=subscription,
                kind=Invoice.Kind.CONVERSION,
                edition=edition,
                seats=seats,
                interval=interval,
                unit_amount_minor=quote.unit_amount_minor,
                quantity=seats,
                amount_minor=quote.amount_minor,
                period_start=quote.period_start,
                period_end=quote.period_end,
                description=(
                    f"{edition}, {seats} seat{'s' if seats != 1 else ''}, "
                    f"{'monthly' if interval == Subscription.Interval.MONTH else 'annual'}"
                ),
                lines=discount_lines(quote.discount_minor, discount_bp),
                bill_to=on_behalf,
                discount_bp=discount_bp,
            )
        return payment_start(invoice=invoice, account=account, actor=actor)
