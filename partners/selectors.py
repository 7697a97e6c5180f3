"""Partners' reads, and the two checks every partner page and action starts with.

Every query that serves a partner is scoped by its partner *and* an active link: a partner
reaches a customer through `customer_for_partner` only, which answers an unlinked customer, a
customer of another partner, an ended link and an id that exists nowhere with the same
CustomerNotLinked (a 404 with one sentence)."""

from __future__ import annotations

from uuid import UUID

from django.conf import settings

from accounts.models import Membership, Organization, User

from .exceptions import CustomerNotLinked, NotAPartner
from .models import Partner, PartnerLink


def tier_name(code: str) -> str:
    """A tier's name as configured (settings.PARTNER_TIERS), or the code when unknown."""
    tier = settings.PARTNER_TIERS.get(code)
    return tier["name"] if tier else code


def tier_discount_bp(code: str) -> int:
    """A tier's discount in basis points (1500 = 15 %); an unknown tier has none."""
    tier = settings.PARTNER_TIERS.get(code)
    return int(tier["discount_bp"]) if tier else 0


def partner_of(organization: Organization) -> Partner | None:
    """The organization's partner record when it is an active partner."""
    return Partner.objects.filter(organization=organization, status=Partner.Status.ACTIVE).first()


def partner_for_member(*, user: User, organization: Organization, admin: bool = False) -> Partner:
    """The partner the user acts for: `organization` must be an active partner and the user one
    of its people (one of its admins with `admin=True`: anything that moves money or ends a
    link). Otherwise NotAPartner (a 404)."""
    partner = partner_of(organization)
    if partner is None or not user.is_authenticated:
        raise NotAPartner()
    roles = [Membership.Role.ADMIN] if admin else [Membership.Role.ADMIN, Membership.Role.MEMBER]
    if not Membership.objects.filter(organization=organization, user=user, role__in=roles).exists():
        raise NotAPartner("Only an admin of your partner organization can do that.") if admin else NotAPartner()
    return partner


def link_for_partner(*, partner: Partner, customer_id: UUID | str) -> PartnerLink:
    """The partner's active link to the customer whose public id is `customer_id`, or
    CustomerNotLinked (the same answer for every other case)."""
    link = (
        PartnerLink.objects.select_related("customer", "partner__organization")
        .filter(partner=partner, customer__public_id=customer_id, status=PartnerLink.Status.ACTIVE)
        .first()
    )
    if link is None:
        raise CustomerNotLinked()
    return link


def customer_for_partner(*, partner: Partner, customer_id: UUID | str) -> Organization:
    """The linked customer organization, checked as `link_for_partner` does."""
    return link_for_partner(partner=partner, customer_id=customer_id).customer


def active_link_of_customer(organization: Organization) -> PartnerLink | None:
    """The customer's active partner link, if it has one (at most one: a database constraint)."""
    return (
        PartnerLink.objects.select_related("partner__organization")
        .filter(customer=organization, status=PartnerLink.Status.ACTIVE)
        .first()
    )
