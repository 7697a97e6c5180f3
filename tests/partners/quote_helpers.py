"""Helpers of the quotes and on-behalf tests: a partner organization with its admin, a
customer linked to it, quotes made through the service, words as a person reads them."""

from __future__ import annotations

import os
import re
from html import unescape

from django.utils import timezone

from accounts.middleware import ORGANIZATION_KEY
from accounts.models import Membership
from catalog.models import AddOn
from catalog.selectors import edition_get
from partners.models import Partner, PartnerLink
from partners.services.quotes import QuoteItem, quote_create

from ..conftest import organization_on
from ..factories import MembershipFactory, OrganizationFactory, UserFactory


def partner_on(tier: str = "gold", *, name: str = "Northwind Partners"):
    """An approved, active partner organization and its admin."""
    admin = UserFactory(email=f"partner-{os.urandom(4).hex()}@northwind.example")
    organization = OrganizationFactory(name=name, created_by=admin)
    MembershipFactory(organization=organization, user=admin, role=Membership.Role.ADMIN, source="signup")
    partner = Partner.objects.create(
        organization=organization,
        tier=tier,
        country="GB",
        contact_email=f"contact-{os.urandom(3).hex()}@northwind.example",
        approved_at=timezone.now(),
    )
    return partner, admin


def partner_member(partner):
    """A person of the partner who is not its admin."""
    return MembershipFactory(organization=partner.organization, role=Membership.Role.MEMBER).user


def link(partner, customer, status=PartnerLink.Status.ACTIVE):
    return PartnerLink.objects.create(
        partner=partner, customer=customer, status=status, accepted_at=timezone.now() if status == "active" else None
    )


def linked_customer(partner, edition="standard", *, members=1, name="Acme Corp"):
    """A customer organization on a trial of Tracker `edition`, linked to the partner."""
    organization, admin = organization_on(edition, members=members)
    organization.name = name
    organization.save(update_fields=["name"])
    link(partner, organization)
    return organization, admin


def item(product="tracker", edition="standard", seats=50, addons=()):
    return QuoteItem(
        edition=edition_get(product_code=product, edition_code=edition),
        seats=seats,
        addons=tuple(AddOn.objects.get(product__code=product, code=code) for code in addons),
    )


def partner_quote(partner, admin, customer, *items, note=""):
    return quote_create(
        organization=customer, partner=partner, actor=admin, interval="year", items=list(items) or [item()], note=note
    )


def use_session_org(client, organization):
    """The client works in `organization` (the org switcher's session key)."""
    session = client.session
    session[ORGANIZATION_KEY] = str(organization.public_id)
    session.save()


def visible_text(html: str) -> str:
    text = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", text)).split())


def sent_to(address: str) -> list:
    """Messages sent in this process (pytest-django's outbox) to `address`, parsed as a mail
    program parses them, so tests read the subject and the text part as the recipient does."""
    import email
    import email.policy

    from django.core import mail

    return [
        email.message_from_bytes(message.message().as_bytes(), policy=email.policy.default)
        for message in mail.outbox
        if address.lower() in " ".join(message.to).lower()
    ]


def assert_reads_well(text: str) -> None:
    """No hole where a name or an amount should be."""
    for hole in (" !", " .", " ,", "  ", "None", "{{", "{%", "()", "_bp", "minor"):
        assert hole not in text, f"{hole!r} in:\n{text}"
