"""What a customer organization reads of its partner: who manages which product, its links,
the directory it may choose from, its requests and its audit log.

Every read is scoped by the customer organization (the current organization of the request);
nothing here reads a partner's own data beyond what the directory publishes."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode
from uuid import UUID

from django.db.models import QuerySet
from django.urls import reverse

from accounts.models import Organization
from billing.models import Subscription
from common.exceptions import NotFound

from .models import AuditEntry, Partner, PartnerLink, PartnerRequest
from .selectors import tier_name

# How many audit entries the customer's activity page shows at once.
ACTIVITY_PAGE_SIZE = 50


@dataclass(frozen=True)
class ManagedBy:
    """A product of the organization that a partner pays for and manages."""

    subscription: Subscription
    payer: Organization

    @property
    def name(self) -> str:
        return self.payer.name


def managed_subscriptions_of(*, organization: Organization) -> list[Subscription]:
    """The organization's live subscriptions billed to another organization (a partner),
    product order, with the payer loaded."""
    return list(
        Subscription.objects.filter(organization=organization, billed_to__isnull=False)
        .exclude(status=Subscription.Status.CANCELED)
        .select_related("product", "edition", "billed_to")
        .order_by("product__position", "product__code")
    )


def managed_by_of(*, organization: Organization) -> dict[int, ManagedBy]:
    """Product id -> who manages it, for the organization's partner-managed products."""
    return {
        subscription.product_id: ManagedBy(subscription=subscription, payer=subscription.billed_to)
        for subscription in managed_subscriptions_of(organization=organization)
    }


def managed_by_for_product(*, organization: Organization, product_code: str) -> ManagedBy | None:
    """Who manages one product of the organization, or None when the organization pays itself."""
    subscription = (
        Subscription.objects.filter(organization=organization, product__code=product_code, billed_to__isnull=False)
        .exclude(status=Subscription.Status.CANCELED)
        .select_related("product", "edition", "billed_to")
        .first()
    )
    return ManagedBy(subscription=subscription, payer=subscription.billed_to) if subscription else None


def ask_partner_path(*, product_code: str = "", kind: str = "") -> str:
    """Flywheel's "ask <partner>" page, about a product and what is needed."""
    query = urlencode({key: value for key, value in (("product", product_code), ("kind", kind)) if value})
    return reverse("partners:ask") + (f"?{query}" if query else "")


def links_of_customer(*, organization: Organization) -> QuerySet[PartnerLink]:
    """Every link of the organization, newest first, with its partner."""
    return (
        PartnerLink.objects.filter(customer=organization)
        .select_related("partner__organization")
        .order_by("-created_at", "-pk")
    )


def pending_links_of_customer(*, organization: Organization) -> list[PartnerLink]:
    """Invitations waiting for the organization's answer, and its own requests waiting for a
    partner's."""
    return list(links_of_customer(organization=organization).filter(status__in=PartnerLink.PENDING_STATUSES))


def get_link_of_customer(*, organization: Organization, link_id: UUID | str) -> PartnerLink:
    """One of the organization's links by its public id; NotFound for any other id."""
    link = links_of_customer(organization=organization).filter(public_id=link_id).first()
    if link is None:
        raise NotFound("Your organization has no partner invitation with that id.")
    return link


def directory_partners() -> QuerySet[Partner]:
    """The partners customers may choose from: active and listed, by name."""
    return (
        Partner.objects.filter(status=Partner.Status.ACTIVE, listed=True)
        .select_related("organization")
        .order_by("organization__name", "pk")
    )


def get_directory_partner(*, partner_id: UUID | str) -> Partner:
    partner = directory_partners().filter(public_id=partner_id).first()
    if partner is None:
        raise NotFound("No partner in the directory has that id.")
    return partner


def partner_tier_name(partner: Partner) -> str:
    return tier_name(partner.tier)


def requests_of_customer(*, organization: Organization, limit: int = 20) -> list[PartnerRequest]:
    """The organization's latest requests to its partners, newest first."""
    return list(
        PartnerRequest.objects.filter(customer=organization)
        .select_related("partner__organization", "product", "requested_by")
        .order_by("-created_at", "-pk")[:limit]
    )


def get_request_of_customer(*, organization: Organization, request_id: UUID | str) -> PartnerRequest:
    found = (
        PartnerRequest.objects.filter(customer=organization, public_id=request_id)
        .select_related("partner__organization", "product")
        .first()
    )
    if found is None:
        raise NotFound("Your organization has no request with that id.")
    return found


def audit_of_customer(*, organization: Organization, page: int = 1) -> tuple[list[AuditEntry], bool]:
    """One page of the organization's partner audit log, newest first, and whether there is
    an older page."""
    page = max(page, 1)
    start = (page - 1) * ACTIVITY_PAGE_SIZE
    rows = list(
        AuditEntry.objects.filter(customer=organization)
        .select_related("partner__organization", "actor")
        .order_by("-created_at", "-pk")[start : start + ACTIVITY_PAGE_SIZE + 1]
    )
    return rows[:ACTIVITY_PAGE_SIZE], len(rows) > ACTIVITY_PAGE_SIZE
