"""What a security review of the partner pages found, each kept fixed: an audit entry per
customer whatever request key a partner reuses, a partner's price pages only for what it pays,
an invite that never says which organization an address runs, a log page past the end, and
every partner route with an id behind the tenant wall."""

import re
from datetime import timedelta

import pytest
from django.urls import get_resolver
from django.utils import timezone

from billing.models import BillingAccount, Invoice, Subscription
from billing.services.seats import seats_quote
from partners.models import AuditEntry, PartnerLink
from partners.services.on_behalf import on_behalf_add_seats
from partners.services.quotes import quote_accept

from ..factories import OrganizationFactory
from .conftest import TENANT_WALL_CASES, partner_make, sign_in
from .factories import admin_of
from .quote_helpers import item, linked_customer, partner_on, partner_quote, use_session_org

pytestmark = pytest.mark.django_db


def _managed(partner, admin, name):
    customer, _ = linked_customer(partner, members=3, name=name)
    quote = partner_quote(partner, admin, customer, item(seats=50))
    quote_accept(quote=quote, actor=admin, paid_with="purchase_order", po_number="NW-PO-1")
    return customer, Subscription.objects.get(organization=customer, status=Subscription.Status.ACTIVE)


def test_a_request_key_reused_for_another_customer_is_audited_and_told_there_too(catalog):
    partner, admin = partner_on("gold")
    BillingAccount.objects.update_or_create(
        organization=partner.organization, defaults={"collection_method": BillingAccount.Collection.INVOICE, "po_number": "NW-PO"}
    )
    first, first_subscription = _managed(partner, admin, "Acme Corp")
    quote = seats_quote(subscription=first_subscription, seats=5)
    on_behalf_add_seats(partner=partner, actor=admin, subscription=first_subscription, seats=5, request_key="K", quote_token=quote.token)
    second, second_subscription = _managed(partner, admin, "Hooli")
    quote = seats_quote(subscription=second_subscription, seats=7)
    outcome = on_behalf_add_seats(
        partner=partner, actor=admin, subscription=second_subscription, seats=7, request_key="K", quote_token=quote.token
    )

    assert isinstance(outcome, Invoice) and outcome.organization == second
    second_subscription.refresh_from_db()
    assert second_subscription.seat_limit == 57
    assert AuditEntry.objects.filter(action="seats_added", customer=first).count() == 1
    assert AuditEntry.objects.filter(action="seats_added", customer=second).count() == 1


def test_a_partner_never_sees_the_price_page_of_what_the_customer_pays_itself(catalog, client):
    partner, admin = partner_on("gold")
    customer, _ = linked_customer(partner, members=1, name="Acme Corp")
    BillingAccount.objects.update_or_create(
        organization=customer, defaults={"collection_method": BillingAccount.Collection.INVOICE, "po_number": "ACME-SECRET-PO-77"}
    )
    subscription = Subscription.objects.get(organization=customer)
    now = timezone.now()
    Subscription.objects.filter(pk=subscription.pk).update(
        status="active", interval="year", seat_limit=10, current_period_start=now - timedelta(days=10),
        current_period_end=now + timedelta(days=300),
    )
    client.force_login(admin)
    use_session_org(client, partner.organization)

    for path in (
        f"/partner/customers/{customer.public_id}/subscriptions/{subscription.public_id}/seats/?seats=2&quote=abc",
        f"/partner/customers/{customer.public_id}/subscriptions/{subscription.public_id}/edition/?edition=premium&quote=abc",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "ACME-SECRET-PO-77" not in response.content.decode()


def test_an_invite_never_says_which_organization_an_address_runs(client, catalog):
    snoop = partner_make(name="Snoop Partners")
    admin_of(OrganizationFactory(name="Secret Skunkworks Ltd"), "ceo@skunk.example")
    sign_in(client, snoop.admin, snoop.organization)

    response = client.post("/partner/invite/", {"email": "ceo@skunk.example", "message": ""}, follow=True)
    nobody = client.post("/partner/invite/", {"email": "nobody@nowhere.example", "message": ""}, follow=True)

    page = response.content.decode()
    assert "Secret Skunkworks Ltd" not in page
    assert "Invitation sent to ceo@skunk.example" in page
    # The same sentence for an address with no organization: nothing tells the two apart.
    assert "Invitation sent to nobody@nowhere.example" in nobody.content.decode()
    assert PartnerLink.objects.filter(partner=snoop.partner, status=PartnerLink.Status.INVITED).count() == 1


def test_the_activity_log_past_its_last_page_is_a_page_not_an_error(catalog, client):
    partner, _ = partner_on("gold")
    customer, customer_admin = linked_customer(partner, members=1, name="Acme Corp")
    client.force_login(customer_admin)
    use_session_org(client, customer)

    assert client.get("/app/partner/activity/?page=99999999999999999999").status_code == 200


# Routes with an id that the wall cannot take as it is (its five targets are customers), each
# with the test that holds it.
WALLED_ELSEWHERE = {
    # A link is answered by the side that did not ask; test_partner_pages checks another
    # partner's link and an answered one are a 404.
    "/partner/links/<id>/",
}


def test_every_partner_route_with_an_id_is_behind_the_wall():
    namespace = get_resolver().namespace_dict["partners"][1]
    covered = {re.sub(r"\{[a-z]+\}", "<id>", case.path.split("?")[0]) for case in TENANT_WALL_CASES}
    routes = set()
    for pattern in namespace.url_patterns:
        for sub in getattr(pattern, "url_patterns", [pattern]):
            route = re.sub(r"<uuid:[a-z_]+>", "<id>", "/" + str(sub.pattern))
            # Partner-side and quote routes; the customer's own pages (/app/...) act on the
            # organization the person works in, checked in test_customer_pages.
            if "<id>" in route and route.startswith(("/partner/", "/quotes/")):
                routes.add(route)
    assert routes - covered - WALLED_ELSEWHERE == set()
