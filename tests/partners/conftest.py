"""Fixtures of the partners tests: a partner with its people, a linked customer, and the tenant
wall every partner page and action is checked against (test_tenant_wall.py).

THE TENANT WALL. Every partner page and action that names a customer (or a row of one: a
quote, a request) is listed in TENANT_WALL_CASES below. test_tenant_wall.py signs in as an
admin of partner "Wall Partners" and asks each one for five customers it may not reach: one
with no link to anybody, another partner's customer, a customer whose link with it ended, one
it only invited (pending), and an id that exists nowhere. Each must answer 404 with the same
page (the same <main>, word for word), never the customer's name, and write nothing. The same
case for its own linked customer must not answer 404 (so the wall is not a page that is
always missing).

To add your pages (helpers C and D): append WallCase(...) entries to TENANT_WALL_CASES, with
placeholders in the path: {customer} (the customer's public id) and any name of
WALL_PLACEHOLDERS (register a maker there for a row of yours: it gets the target customer and
the partner whose link it has, or None, and returns the row's public id as text)."""

from __future__ import annotations

import email
import email.policy
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.core import mail as django_mail

from accounts.middleware import ORGANIZATION_KEY
from accounts.models import Organization
from partners.exceptions import CustomerNotLinked
from partners.models import Partner, PartnerLink

from ..factories import OrganizationFactory
from .factories import (
    PartnerFactory,
    PartnerLinkFactory,
    PartnerRequestFactory,
    admin_of,
    member_of,
)


@dataclass
class PartnerPeople:
    """A partner, its admin and a member who is not an admin."""

    partner: Partner
    admin: object
    member: object

    @property
    def organization(self) -> Organization:
        return self.partner.organization


@dataclass
class LinkedCustomer:
    """A customer organization linked (active) to a partner, with its admin and a member."""

    customer: Organization
    admin: object
    member: object
    link: PartnerLink


def partner_make(*, name: str = "Northwind Partners", tier: str = "gold", admin_email: str | None = None) -> PartnerPeople:
    """An approved, active partner organization named `name`, with an admin and a member."""
    organization = OrganizationFactory(name=name)
    partner = PartnerFactory(organization=organization, tier=tier)
    return PartnerPeople(partner=partner, admin=admin_of(organization, admin_email), member=member_of(organization))


def customer_link(partner: Partner, *, name: str = "Acme Robotics", status: str = PartnerLink.Status.ACTIVE) -> LinkedCustomer:
    """A customer organization named `name` with an admin and a member, linked to `partner`
    (active, or the status given)."""
    customer = OrganizationFactory(name=name)
    admin = admin_of(customer)
    member = member_of(customer)
    link = PartnerLinkFactory(partner=partner, customer=customer, status=status)
    return LinkedCustomer(customer=customer, admin=admin, member=member, link=link)


def sign_in(client, user, organization: Organization) -> None:
    """Sign `user` in with `organization` as the organization they work in."""
    client.force_login(user)
    session = client.session
    session[ORGANIZATION_KEY] = str(organization.public_id)
    session.save()


class Mailbox:
    """Partner emails sent in this process, read as their recipients read them."""

    def to(self, address: str) -> list:
        """Messages to `address`, parsed as a mail program parses them."""
        return [
            email.message_from_bytes(message.message().as_bytes(), policy=email.policy.default)
            for message in django_mail.outbox
            if address.lower() in " ".join(message.to).lower()
        ]

    def one(self, address: str, subject_part: str = ""):
        """The one message to `address` (whose subject contains `subject_part`)."""
        found = [message for message in self.to(address) if subject_part in str(message["Subject"])]
        assert len(found) == 1, f"{len(found)} messages to {address} about {subject_part!r}: {[str(m['Subject']) for m in self.to(address)]}"
        return found[0]

    @staticmethod
    def text(message) -> str:
        return message.get_body(preferencelist=("plain",)).get_content()

    def subjects(self) -> list[tuple[str, str]]:
        return [(", ".join(message.to), message.subject) for message in django_mail.outbox]

    def clear(self) -> None:
        django_mail.outbox.clear()


@pytest.fixture
def mailbox(monkeypatch) -> Mailbox:
    """Partner emails (partners.services.notify) sent in-process at once, into Django's test
    outbox, instead of through the worker on commit."""
    from partners.services import notify

    monkeypatch.setattr(notify, "mail_queue", lambda message: message.send())
    django_mail.outbox.clear()
    return Mailbox()


def assert_reads_well(text: str) -> None:
    """No hole where a name should be, no stored value, no template left over."""
    for hole in (" !", " .", " ,", "None", "{{", "{%", "()", "_bp", "billed_to", "status="):
        assert hole not in text, f"{hole!r} in:\n{text}"


@pytest.fixture
def northwind(db) -> PartnerPeople:
    """Northwind Partners, a Gold partner, with its admin and a member."""
    return partner_make()


@pytest.fixture
def acme(northwind) -> LinkedCustomer:
    """Acme Robotics, Northwind's linked customer, with its admin and a member."""
    return customer_link(northwind.partner)


@pytest.fixture
def contoso(db) -> PartnerPeople:
    """Contoso Channel, another Gold partner."""
    return partner_make(name="Contoso Channel")


# --- the tenant wall -------------------------------------------------------------------------

@dataclass(frozen=True)
class WallCase:
    """One partner page or action: `path` with placeholders, GET or POST (`data` posted)."""

    name: str
    path: str
    method: str = "get"
    data: dict = field(default_factory=dict)
    # What the refused answer says (the one sentence of the 404 page).
    sentence: str = CustomerNotLinked.default_message


def _request_for(customer: Organization, partner: Partner | None) -> str:
    """A request of `customer` to `partner` (to a third partner, through an ended link, when none)."""
    if partner is None:
        link = PartnerLinkFactory(customer=customer, status=PartnerLink.Status.ENDED)
    else:
        link = PartnerLink.objects.filter(customer=customer, partner=partner).first() or PartnerLinkFactory(
            partner=partner, customer=customer
        )
    return str(PartnerRequestFactory(link=link).public_id)


def _quote_for(customer: Organization, partner: Partner | None) -> str:
    """An open quote for `customer` by `partner` (by a third partner when None), written as
    quote_create leaves it."""
    from datetime import timedelta

    from django.utils import timezone

    from catalog.models import Edition
    from partners.models import Quote, QuoteLine

    edition = Edition.objects.get(product__code="tracker", code="standard")
    quote = Quote.objects.create(
        number=f"Q-2026-{uuid.uuid4().int % 10**6:06d}",
        organization=customer,
        partner=partner or PartnerFactory(),
        interval="year",
        currency="USD",
        subtotal_minor=40750,
        discount_bp=1500,
        discount_minor=6113,
        total_minor=34637,
        valid_until=timezone.now() + timedelta(days=30),
        bill_to_details="Partner",
        licensee_details=customer.name,
    )
    QuoteLine.objects.create(
        quote=quote, product=edition.product, edition=edition, description="Tracker Standard, 5 seats, annual",
        quantity=5, unit_amount_minor=8150, amount_minor=40750,
    )
    return str(quote.public_id)


def _subscription_for(customer: Organization, partner: Partner | None) -> str:
    """Tracker Standard paid annually by `customer`, billed to `partner` (to nobody when None)."""
    from ..billing.factories import SubscriptionFactory

    subscription = SubscriptionFactory(
        organization=customer, paid=True, interval="year", billed_to=partner.organization if partner else None
    )
    return str(subscription.public_id)


# name -> maker(target customer, the partner of its link or None) -> a public id, as text.
WALL_PLACEHOLDERS: dict[str, Callable[[Organization, Partner | None], str]] = {
    "customer": lambda customer, partner: str(customer.public_id),
    "request": _request_for,
    "quote": _quote_for,
    "subscription": _subscription_for,
}

TENANT_WALL_CASES: list[WallCase] = [
    # Helper B: the partner's own pages and actions.
    WallCase("customer page", "/partner/customers/{customer}/"),
    WallCase("end link", "/partner/customers/{customer}/end/", "post", {"reason": "Moving on"}),
    WallCase("answer request", "/partner/requests/{request}/answer/", "post", {"status": "done", "note": "Done"}),
    # Helper C (quotes, on behalf): append here.
    WallCase("new quote", "/partner/customers/{customer}/quotes/new/"),
    WallCase("make quote", "/partner/customers/{customer}/quotes/new/", "post", {"edition_tracker": "standard", "seats_tracker": "5", "interval": "year"}),
    WallCase("quote page", "/quotes/{quote}/", sentence="No quote of yours has that number."),
    WallCase("quote pdf", "/quotes/{quote}.pdf", sentence="No quote of yours has that number."),
    WallCase("accept quote", "/quotes/{quote}/accept/", "post", {"paid_with": "card"}, sentence="No quote of yours has that number."),
    WallCase("withdraw quote", "/quotes/{quote}/withdraw/", "post", sentence="No quote of yours has that number."),
    WallCase("manage for customer", "/partner/customers/{customer}/manage/"),
    WallCase("seats price on behalf", "/partner/customers/{customer}/subscriptions/{subscription}/seats/?seats=2"),
    WallCase("add seats on behalf", "/partner/customers/{customer}/subscriptions/{subscription}/seats/", "post", {"seats": "2", "request_key": "k1"}),
    WallCase("edition price on behalf", "/partner/customers/{customer}/subscriptions/{subscription}/edition/?edition=premium"),
    WallCase("change edition on behalf", "/partner/customers/{customer}/subscriptions/{subscription}/edition/", "post", {"edition": "premium", "request_key": "k2"}),
    WallCase("start trial on behalf", "/partner/customers/{customer}/try/", "post", {"product": "wiki"}),
    # Helper D (customer side): append here.
]


@dataclass
class WallWorld:
    """The partner that knocks at the wall, its linked customer (the control), and the five
    customers it may not reach (None: an id that exists nowhere)."""

    partner: PartnerPeople
    linked: LinkedCustomer
    targets: dict[str, tuple[Organization | None, Partner | None]]

    def path(self, case: WallCase, target: str) -> str:
        """The case's path for a target ("linked" for the control)."""
        if target == "linked":
            customer, partner = self.linked.customer, self.partner.partner
        else:
            customer, partner = self.targets[target]
        values = {}
        for name, maker in WALL_PLACEHOLDERS.items():
            if "{" + name + "}" in case.path:
                values[name] = str(uuid.uuid4()) if customer is None else maker(customer, partner)
        return case.path.format(**values)


@pytest.fixture
def wall_world(catalog) -> WallWorld:
    knocking = partner_make(name="Wall Partners")
    linked = customer_link(knocking.partner, name="Linked Customer Ltd")
    other = partner_make(name="Other Partner Co")
    other_customer = customer_link(other.partner, name="Other Partners Customer Inc").customer
    ended = customer_link(knocking.partner, name="Former Customer GmbH", status=PartnerLink.Status.ENDED).customer
    pending = customer_link(knocking.partner, name="Invited Customer SA", status=PartnerLink.Status.INVITED).customer
    unlinked = OrganizationFactory(name="Unlinked Customer BV")
    admin_of(unlinked)
    return WallWorld(
        partner=knocking,
        linked=linked,
        targets={
            "unlinked": (unlinked, None),
            "another partner's customer": (other_customer, other.partner),
            "ended link": (ended, knocking.partner),
            "pending invite": (pending, knocking.partner),
            "random id": (None, None),
        },
    )


def pytest_generate_tests(metafunc):
    if "wall_case" in metafunc.fixturenames:
        metafunc.parametrize("wall_case", TENANT_WALL_CASES, ids=[case.name for case in TENANT_WALL_CASES])
