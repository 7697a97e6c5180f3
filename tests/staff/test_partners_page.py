"""/staff/partners/: partners by tier, customers per partner, revenue through partners against
direct per month (paid invoices, per currency), applications waiting with links to the admin."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from partners.models import Partner, PartnerLink

from ..billing.factories import InvoiceFactory, SubscriptionFactory
from ..factories import OrganizationFactory, UserFactory
from ..partners.conftest import customer_link, partner_make
from ..partners.factories import PartnerApplicationFactory

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


def visible(html: str) -> str:
    html = html[html.index("<main") :] if "<main" in html else html
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


@pytest.fixture
def channel(catalog):
    """Northwind (Gold, 2 customers), Contoso (Silver, 1 customer, 1 invite), Fabrikam
    (Platinum, suspended); invoices: November 300.00 through Northwind and 100.00 direct,
    December 50.00 direct so far, an open one and one from last year (not counted)."""
    with time_machine.travel(NOW, tick=False):
        northwind = partner_make()
        contoso = partner_make(name="Contoso Channel", tier="silver")
        fabrikam = partner_make(name="Fabrikam Resellers", tier="platinum")
        Partner.objects.filter(pk=fabrikam.partner.pk).update(status=Partner.Status.SUSPENDED)
        acme = customer_link(northwind.partner, name="Acme Robotics")
        customer_link(northwind.partner, name="Initech")
        customer_link(contoso.partner, name="Globex")
        customer_link(contoso.partner, name="Hooli", status=PartnerLink.Status.INVITED)
        customer_link(northwind.partner, name="Umbrella", status=PartnerLink.Status.ENDED)
        subscription = SubscriptionFactory(paid=True, organization=acme.customer, billed_to=northwind.organization)
        direct = SubscriptionFactory(paid=True, organization=OrganizationFactory(name="Direct Co"))

        def paid(sub, total, when, **kwargs):
            return InvoiceFactory(subscription=sub, organization=sub.organization, total_minor=total, issued_at=when, paid=True, **kwargs)

        paid(subscription, 30000, NOW - timedelta(days=20), bill_to=northwind.organization)
        paid(direct, 10000, NOW - timedelta(days=25))
        paid(direct, 5000, NOW - timedelta(days=2))
        paid(direct, 99900, NOW - timedelta(days=400))
        InvoiceFactory(subscription=direct, organization=direct.organization, total_minor=7700, issued_at=NOW)
        PartnerApplicationFactory(company_name="Tailspin Toys", country="DE")
    return northwind


def test_the_page_shows_tiers_customers_revenue_and_applications(client, channel):
    client.force_login(UserFactory(is_staff=True))
    with time_machine.travel(NOW, tick=False):
        response = client.get("/staff/partners/")
    assert response.status_code == 200
    html = response.content.decode()
    text = visible(html)
    tiers = visible(html[html.index('id="staff-partner-tiers"') : html.index('id="staff-partner-customers"')])
    assert "Silver (10 %) 1 0" in tiers and "Gold (15 %) 1 0" in tiers and "Platinum (20 %) 0 1" in tiers
    customers = visible(html[html.index('id="staff-partner-customers"') : html.index('id="staff-partner-revenue"')])
    assert "Northwind Partners Gold 2 0 Active" in customers and "Contoso Channel Silver 1 1 Active" in customers
    assert "Fabrikam Resellers Platinum 0 0 Suspended" in customers
    revenue = visible(html[html.index('id="staff-partner-revenue"') :])
    assert "Nov ’26 300.00 100.00 75 %" in revenue and "Dec ’26 0.00 50.00 0 %" in revenue and "Jan ’26 0.00 0.00 –" in revenue
    assert "Dec ’25" not in revenue  # twelve months: January to December 2026
    assert "USD 300.00 through partners, USD 150.00 direct (67 % through partners)" in revenue
    assert 'role="img"' in html and "Nov 2026: through partners USD 300.00, direct USD 100.00" in html
    applications = html[html.index('id="staff-partner-applications"') : html.index('id="staff-partner-tiers"')]
    assert "Tailspin Toys" in applications and "Germany" in applications and "/admin/partners/partnerapplication/" in applications
    assert "Acme Robotics" not in text  # customers are counted here, not named


def test_the_staff_home_links_it_with_its_figures(client, channel):
    client.force_login(UserFactory(is_staff=True))
    text = visible(client.get("/staff/").content.decode())
    assert "Partners" in text and "2 active partners" in text and "1 application waiting" in text
