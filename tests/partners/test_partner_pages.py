"""The partner's pages: the dashboard, a customer, inviting, answering a customer's request,
ending a link. What a partner reads of a customer is counts and subscriptions, never people."""

from __future__ import annotations

from datetime import timedelta
from html import unescape

import pytest
from django.utils import timezone

from billing.models import Subscription
from catalog.selectors import edition_get
from partners.models import PartnerLink
from partners.services.links import link_request
from partners.services.requests import request_create

from ..billing.factories import InvoiceFactory, SubscriptionFactory
from ..factories import OrganizationFactory
from .conftest import customer_link, sign_in
from .factories import admin_of, member_of


@pytest.fixture
def acme_tracker(acme, northwind, catalog):
    """Acme's Tracker Standard: 50 seats a year, bought by Northwind, renewing in 30 days."""
    start = timezone.now() - timedelta(days=335)
    return SubscriptionFactory(
        paid=True, organization=acme.customer, interval=Subscription.Interval.YEAR, seat_limit=50,
        current_period_start=start, current_period_end=start + timedelta(days=365),
        billed_to=northwind.organization, billed_to_discount_bp=1500,
    )


def test_the_dashboard_lists_customers_renewals_requests_and_invites(client, northwind, acme, acme_tracker, catalog):
    request_create(customer=acme.customer, actor=acme.member, kind="seats", product=acme_tracker.product, seats_wanted=5)
    customer_link(northwind.partner, name="Initech", status=PartnerLink.Status.INVITED)
    asking = OrganizationFactory(name="Globex")
    link_request(customer=asking, partner=northwind.partner, actor=admin_of(asking), message="Please manage our Wiki")
    other = customer_link(northwind.partner, name="Hooli", status=PartnerLink.Status.ENDED)

    sign_in(client, northwind.admin, northwind.organization)
    response = client.get("/partner/")
    assert response.status_code == 200
    html = unescape(response.content.decode())
    assert "Gold partner: you buy for your customers at 15 % off list prices" in html
    customers = html[html.index('id="partner-customers"') : html.index('id="partner-renewals"')]
    # Acme has an admin and a member: 2 seats used of the 50 Northwind bought.
    assert "Acme Robotics" in customers and "Tracker Standard · 2 of 50 seats used" in customers and "billed to you" in customers
    assert other.customer.name not in html  # an ended link is gone from the dashboard
    renewals = html[html.index('id="partner-renewals"') : html.index('id="partner-open-requests"')]
    assert f"{acme_tracker.current_period_end:%-d %b %Y}" in renewals and "Tracker Standard, 50 seats, annual" in renewals
    assert "5 more seats" in html or "More seats (Tracker)" in html
    requests = html[html.index('id="partner-link-requests"') : html.index('id="partner-customers"')]
    assert "Globex" in requests and "Please manage our Wiki" in requests and "Accept Globex" in requests
    invites = html[html.index('id="partner-pending-invites"') :]
    # An invitation names no organization before it is accepted (the partner typed an address).
    assert "Initech" not in invites and "Withdraw" in invites
    for person in (acme.admin, acme.member):
        assert person.email not in html


def test_a_member_of_the_partner_reads_but_does_not_act(client, northwind, acme, acme_tracker):
    sign_in(client, northwind.member, northwind.organization)
    html = unescape(client.get("/partner/").content.decode())
    assert "Acme Robotics" in html and "Invite a customer</a>" in html  # the nav link; the page says admins only
    assert "Only an admin of Northwind Partners can invite customers." in unescape(client.get("/partner/invite/").content.decode())
    page = unescape(client.get(f"/partner/customers/{acme.customer.public_id}/").content.decode())
    assert "End the link" not in page and 'id="new-quote"' not in page
    response = client.post(f"/partner/customers/{acme.customer.public_id}/end/", {"reason": "x"}, follow=True)
    assert "Only an admin of Northwind Partners can end this link." in unescape(response.content.decode())
    assert PartnerLink.objects.get(pk=acme.link.pk).status == PartnerLink.Status.ACTIVE


def test_the_customer_page_shows_subscriptions_invoices_requests_and_nothing_personal(client, northwind, acme, acme_tracker, catalog):
    invoice = InvoiceFactory(
        subscription=acme_tracker, organization=acme.customer, bill_to=northwind.organization, paid=True,
        target_interval=Subscription.Interval.YEAR, target_seats=50,
    )
    own_invoice = InvoiceFactory(subscription=SubscriptionFactory(paid=True, organization=acme.customer, edition=edition_get(product_code="wiki", edition_code="standard")))
    request_create(customer=acme.customer, actor=acme.admin, kind="other", message="Can you call our CFO?")

    sign_in(client, northwind.admin, northwind.organization)
    html = unescape(client.get(f"/partner/customers/{acme.customer.public_id}/").content.decode())
    subscriptions = html[html.index('id="customer-subscriptions"') : html.index('id="customer-invoices"')]
    assert "Tracker Standard" in subscriptions and "2 of 50" in subscriptions and "Annual, renews" in subscriptions
    assert "Wiki Standard" in subscriptions
    invoices = html[html.index('id="customer-invoices"') : html.index('id="customer-quotes"')]
    assert invoice.number in invoices and own_invoice.number not in invoices  # only what the partner pays
    assert client.get(f"/billing/invoices/{invoice.public_id}/").status_code == 200  # and the partner may open it
    assert "Can you call our CFO?" in html and "Mark done" in html
    # what ending the link does, in the partner's words
    assert f"Tracker Standard: you have paid until {acme_tracker.current_period_end:%-d %b %Y}; the renewal on that day is invoiced to Acme Robotics at list price." in html
    for person in (acme.admin, acme.member):
        assert person.email not in html and (person.first_name or "@@") not in html


def test_inviting_from_the_page(client, northwind, mailbox):
    customer = OrganizationFactory(name="Umbrella")
    admin = admin_of(customer, "boss@umbrella.example")
    sign_in(client, northwind.admin, northwind.organization)
    assert client.get("/partner/invite/").status_code == 200
    bad = client.post("/partner/invite/", {"email": "not-an-address"})
    assert bad.status_code == 400 and "Enter a valid email address." in unescape(bad.content.decode())
    response = client.post("/partner/invite/", {"email": admin.email, "message": "Hi"}, follow=True)
    assert "Invitation sent to boss@umbrella.example." in unescape(response.content.decode())
    assert "Umbrella" not in unescape(response.content.decode()).replace("boss@umbrella.example", "")
    assert PartnerLink.objects.get(customer=customer).status == PartnerLink.Status.INVITED
    again = client.post("/partner/invite/", {"email": admin.email})
    assert again.status_code == 400 and "You already invited boss@umbrella.example" in unescape(again.content.decode())
    unknown = client.post("/partner/invite/", {"email": "someone@nowhere.example"}, follow=True)
    assert "Invitation sent to someone@nowhere.example." in unescape(unknown.content.decode())
    assert "someone@nowhere.example" in unescape(client.get("/partner/").content.decode())


def test_accepting_a_customers_request_and_withdrawing_an_invite(client, northwind, mailbox):
    asking = OrganizationFactory(name="Globex")
    asker = admin_of(asking)
    link = link_request(customer=asking, partner=northwind.partner, actor=asker)
    invited = customer_link(northwind.partner, name="Initech", status=PartnerLink.Status.INVITED).link

    sign_in(client, northwind.admin, northwind.organization)
    response = client.post(f"/partner/links/{link.public_id}/", {"action": "accept"}, follow=True)
    assert response.redirect_chain[-1][0] == f"/partner/customers/{asking.public_id}/"
    assert "Globex is now your customer." in unescape(response.content.decode())
    client.post(f"/partner/links/{invited.public_id}/", {"action": "withdraw"})
    assert PartnerLink.objects.get(pk=invited.pk).status == PartnerLink.Status.WITHDRAWN
    # a link of another partner, or one already answered, is not found
    assert client.post(f"/partner/links/{invited.public_id}/", {"action": "withdraw"}).status_code == 404


def test_ending_the_link_from_the_page(client, northwind, acme, acme_tracker, mailbox):
    sign_in(client, northwind.admin, northwind.organization)
    response = client.post(f"/partner/customers/{acme.customer.public_id}/end/", {"reason": "Contract over"}, follow=True)
    assert "Acme Robotics is no longer your customer." in unescape(response.content.decode())
    assert PartnerLink.objects.get(pk=acme.link.pk).status == PartnerLink.Status.ENDED
    acme_tracker.refresh_from_db()
    assert acme_tracker.billed_to_ends_at_renewal
    assert client.get(f"/partner/customers/{acme.customer.public_id}/").status_code == 404


def test_someone_who_is_not_a_partner_sees_the_partner_404(client, acme):
    sign_in(client, acme.admin, acme.customer)
    response = client.get("/partner/")
    assert response.status_code == 404
    assert "This page is for approved partners." in unescape(response.content.decode())
    assert client.get("/partner/requests/").status_code == 404
    outsider = member_of(OrganizationFactory(name="Nobody"))
    client.force_login(outsider)
    assert client.get("/partner/invite/").status_code == 404
    client.logout()
    assert client.get("/partner/").status_code == 302  # to sign in


def test_the_account_menu_links_the_dashboard_for_a_partners_people_only(client, northwind, acme):
    sign_in(client, northwind.member, northwind.organization)
    assert '<a class="nav-link" href="/partner/">Partner dashboard</a>' in client.get("/app/members/").content.decode()
    sign_in(client, acme.admin, acme.customer)
    assert "Partner dashboard" not in client.get("/app/members/").content.decode()
