"""People active beside the seats paid for: on the organization's billing page, and on the
sales-leads page for each organization above the threshold (12 of 100 is a risk, 98 of 100
an expansion). Counted from the rollups of the last 30 whole days."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from activity.models import ActivityDay
from activity.selectors import active_people
from billing.models import Subscription
from catalog.models import Product

from ..billing.factories import InvoiceFactory
from ..conftest import organization_on
from ..factories import MembershipFactory, UserFactory


def _active(organization, user, product_code="tracker", days_ago=1):
    ActivityDay.objects.create(
        organization=organization, user=user, product=Product.objects.get(code=product_code),
        day=timezone.now().date() - timedelta(days=days_ago), events=1, active_events=1,
    )


@pytest.mark.django_db
def test_the_billing_page_says_how_many_people_used_each_product(client, catalog):
    organization, admin = organization_on("standard", members=3)
    colleague = MembershipFactory(organization=organization).user
    _active(organization, admin, days_ago=1)
    _active(organization, admin, days_ago=2)          # the same person: once
    _active(organization, colleague, days_ago=30)     # the 30th whole day back: counts
    _active(organization, UserFactory(), days_ago=31)  # outside the window
    _active(organization, colleague, "wiki")          # Wiki: not a product of this organization
    assert active_people(organization_ids=[organization.pk])[(organization.pk, Product.objects.get(code="tracker").pk)] == 2
    client.force_login(admin)
    html = client.get(reverse("billing")).content.decode()
    assert "· 2 active in the last 30 days" in html


@pytest.mark.django_db
def test_sales_leads_show_active_people_against_seats_paid_for(client, catalog, settings):
    settings.SALES_THRESHOLD_MINOR = 1
    organization, admin = organization_on("standard")
    subscription = Subscription.objects.get(organization=organization)
    Subscription.objects.filter(pk=subscription.pk).update(status=Subscription.Status.ACTIVE, seat_limit=8, trial_ends_at=None)
    InvoiceFactory(subscription=subscription, paid=True)
    _active(organization, admin)
    client.force_login(UserFactory(is_staff=True))
    html = client.get(reverse("sales_leads")).content.decode()
    assert f'<td>{organization.name}<br><a href="/staff/usage/?customer={organization.public_id}">Its usage</a></td>' in html
    assert "Tracker: 1 of 8 (12 %)" in html
