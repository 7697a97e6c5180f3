"""Factories for partner rows, written as the services leave them (no email, no audit entry):
an approved partner organization with its admin, a link in any status, a request. Need the
`catalog` fixture only when a subscription or product is involved.

For the emails and audit entries a transition writes, call the services
(partners/services/links.py and friends)."""

from __future__ import annotations

import factory
from django.utils import timezone

from accounts.models import Membership
from partners.models import Partner, PartnerApplication, PartnerLink, PartnerRequest

from ..factories import MembershipFactory, OrganizationFactory, UserFactory


class PartnerApplicationFactory(factory.django.DjangoModelFactory):
    """A pending application of a new organization, applied for by its admin (`applied_by`)."""

    class Meta:
        model = PartnerApplication

    organization = factory.SubFactory(OrganizationFactory, name=factory.Sequence(lambda n: f"Partner Firm {n}"))
    company_name = factory.SelfAttribute("organization.name")
    country = "GB"
    website = "https://partner.example"
    contact_name = "Pat Partner"
    contact_email = factory.Sequence(lambda n: f"contact{n}@partner.example")
    description = "We resell and support software for mid-sized firms."
    applied_by = factory.SubFactory(UserFactory)


class PartnerFactory(factory.django.DjangoModelFactory):
    """An approved, active Gold partner (its organization named "Partner Firm <n>"); pass
    `organization` to make an existing organization a partner."""

    class Meta:
        model = Partner

    organization = factory.SubFactory(OrganizationFactory, name=factory.Sequence(lambda n: f"Partner Firm {n}"))
    tier = "gold"
    status = Partner.Status.ACTIVE
    country = "GB"
    website = "https://partner.example"
    description = "Licences, onboarding and support for growing teams."
    contact_email = factory.Sequence(lambda n: f"partner-contact{n}@partner.example")
    approved_at = factory.LazyFunction(timezone.now)


class PartnerLinkFactory(factory.django.DjangoModelFactory):
    """An active link (accepted now) between a partner and a customer organization; pass
    `status` for another (ended links get closed_at too)."""

    class Meta:
        model = PartnerLink

    partner = factory.SubFactory(PartnerFactory)
    customer = factory.SubFactory(OrganizationFactory)
    status = PartnerLink.Status.ACTIVE
    accepted_at = factory.LazyAttribute(lambda o: timezone.now() if o.status in ("active", "ended") else None)
    closed_at = factory.LazyAttribute(
        lambda o: timezone.now() if o.status in ("ended", "declined", "withdrawn") else None
    )


class PartnerRequestFactory(factory.django.DjangoModelFactory):
    """An open "ask your partner" for 5 more seats, through an active link."""

    class Meta:
        model = PartnerRequest

    link = factory.SubFactory(PartnerLinkFactory)
    partner = factory.SelfAttribute("link.partner")
    customer = factory.SelfAttribute("link.customer")
    kind = PartnerRequest.Kind.SEATS
    seats_wanted = 5
    message = "We are hiring five engineers next month."


def admin_of(organization, email: str | None = None):
    """A new admin of the organization (a verified user)."""
    user = UserFactory(**({"email": email} if email else {}))
    MembershipFactory(organization=organization, user=user, role=Membership.Role.ADMIN)
    return user


def member_of(organization, email: str | None = None):
    """A new member (not an admin) of the organization."""
    user = UserFactory(**({"email": email} if email else {}))
    MembershipFactory(organization=organization, user=user, role=Membership.Role.MEMBER)
    return user
