"""Reads of quotes (kept apart from partners/selectors.py so the quotes work could be built beside
the partner pages): who may see a quote, and the lists the partner's and the customer's pages show.

A quote is seen by the people of its partner (an active partner, an active link to the
customer, the partner organization being the one they work in) and by the admins of the
customer organization (working in it). Anyone else, and any id that exists nowhere, gets the
same NotFound."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from django.db.models import QuerySet

from accounts.models import Membership, Organization, User
from billing.models import Subscription

from .exceptions import CustomerNotLinked, NotAPartner
from .models import Partner, PartnerLink, Quote
from .selectors import link_for_partner, partner_for_member

QUOTE_NOT_FOUND = "No quote of yours has that number."


class QuoteNotFound(CustomerNotLinked):
    default_message = QUOTE_NOT_FOUND


@dataclass(frozen=True)
class QuoteAccess:
    """A quote and what its viewer may do with it."""

    quote: Quote
    as_partner: bool  # seen by the partner's people (else by the customer's admin)
    can_accept: bool  # an admin of the payer: the partner's admin, or the customer's admin for a direct quote
    can_withdraw: bool


def get_quote_for_viewer(*, user: User, organization: Organization | None, quote_id: UUID | str) -> QuoteAccess:
    """The quote whose public id is `quote_id`, for a user working in `organization`; QuoteNotFound otherwise."""
    quote = (
        Quote.objects.select_related("organization", "partner__organization", "created_by", "accepted_by")
        .filter(public_id=quote_id)
        .first()
    )
    if quote is None or organization is None or not user.is_authenticated:
        raise QuoteNotFound()
    if quote.partner_id and organization.pk == quote.partner.organization_id:
        try:
            partner = partner_for_member(user=user, organization=organization)
            link_for_partner(partner=partner, customer_id=quote.organization.public_id)
        except (NotAPartner, CustomerNotLinked):
            raise QuoteNotFound() from None
        is_admin = Membership.objects.filter(organization=organization, user=user, role=Membership.Role.ADMIN).exists()
        return QuoteAccess(quote=quote, as_partner=True, can_accept=is_admin, can_withdraw=True)
    if organization.pk == quote.organization_id:
        if not Membership.objects.filter(organization=organization, user=user, role=Membership.Role.ADMIN).exists():
            raise QuoteNotFound()
        direct = not quote.partner_id
        return QuoteAccess(quote=quote, as_partner=False, can_accept=direct, can_withdraw=direct)
    raise QuoteNotFound()


def quotes_of_customer(*, organization: Organization) -> QuerySet[Quote]:
    """Every quote for the organization, partner and direct, newest first (its admins' list)."""
    return (
        Quote.objects.filter(organization=organization)
        .select_related("partner__organization")
        .prefetch_related("lines")
        .order_by("-created_at", "-pk")
    )


def quotes_of_partner(*, partner: Partner, customer: Organization | None = None) -> QuerySet[Quote]:
    """The partner's quotes for customers it is linked to now (for one customer when given),
    newest first: a customer whose link ended is out of the partner's sight."""
    quotes = (
        Quote.objects.filter(
            partner=partner,
            organization__partner_links__partner=partner,
            organization__partner_links__status=PartnerLink.Status.ACTIVE,
        )
        .select_related("organization")
        .prefetch_related("lines")
    )
    if customer is not None:
        quotes = quotes.filter(organization=customer)
    return quotes.order_by("-created_at", "-pk")


def live_subscriptions_by_product(*, organization: Organization) -> dict[int, Subscription]:
    """The organization's live subscription of each product (product id -> subscription)."""
    return {
        subscription.product_id: subscription
        for subscription in Subscription.objects.filter(
            organization=organization, status__in=Subscription.LIVE_STATUSES
        ).select_related("edition", "product", "billed_to")
    }


def subscription_for_partner(*, partner: Partner, customer_id: UUID | str, subscription_id: UUID | str) -> Subscription:
    """A live subscription of a customer linked to the partner (link_for_partner), billed to the
    partner, by its public id; the same CustomerNotLinked for anything else (another customer's,
    one the customer pays itself or another payer pays, a random id). A partner's price pages
    never show how someone else pays (their PO number, their card)."""
    link = link_for_partner(partner=partner, customer_id=customer_id)
    subscription = (
        Subscription.objects.select_related("product", "edition", "billed_to", "organization")
        .filter(
            organization=link.customer,
            public_id=subscription_id,
            status__in=Subscription.LIVE_STATUSES,
            billed_to=partner.organization,
        )
        .first()
    )
    if subscription is None:
        raise CustomerNotLinked()
    return subscription
