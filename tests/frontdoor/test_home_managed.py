"""The app home says which products a partner manages, with "Ask <partner>" (docs/partners.md)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership
from billing.models import Subscription

from ..billing.helpers import visible_text, workspace_ready
from ..factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def _billed_to(organization, payer) -> Subscription:
    now = timezone.now()
    subscription = organization.subscriptions.get()
    subscription.status = Subscription.Status.ACTIVE
    subscription.interval = Subscription.Interval.YEAR
    subscription.trial_ends_at = None
    subscription.current_period_start = now
    subscription.current_period_end = now + timedelta(days=365)
    subscription.seat_limit = 50
    subscription.billed_to = payer
    subscription.save()
    return subscription


def test_a_managed_product_says_who_manages_it_to_admins_and_members(client, trial_organization):
    organization, admin = trial_organization
    _billed_to(organization, OrganizationFactory(name="Northwind Partners"))
    workspace_ready(organization)
    member = MembershipFactory(organization=organization, role=Membership.Role.MEMBER).user
    for user in (admin, member):
        client.force_login(user)
        page = client.get(reverse("home"))
        assert page.status_code == 200
        text = visible_text(page.content.decode())
        assert "Managed by Northwind Partners · Ask Northwind Partners" in text
        assert f'href="{reverse("partners:ask")}?product=tracker&amp;kind=seats"' in page.content.decode()


def test_a_product_the_organization_pays_for_itself_names_no_partner(client, trial_organization):
    organization, admin = trial_organization
    workspace_ready(organization)
    client.force_login(admin)
    page = client.get(reverse("home"))
    assert page.status_code == 200
    assert "Managed by" not in visible_text(page.content.decode())
