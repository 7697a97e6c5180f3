"""A product suspended for an unpaid renewal says so on every page, names the invoice and its
amount, and points the admin at paying it; its workspace does not open."""

from datetime import timedelta

import pytest
from django.urls import reverse

from billing.models import Invoice, Subscription
from common.money import money
from provisioning.models import Environment

from ...factories import MembershipFactory
from ..helpers import DECLINED_AT_CHARGE, card_set_up, paid_on_commit, tick_at

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_tasks")]


def test_suspended_for_an_unpaid_invoice(client, localstripe, catalog):
    organization, admin, subscription = paid_on_commit(localstripe, seats=2)
    member = MembershipFactory(organization=organization).user
    Environment.objects.filter(organization=organization).update(
        status=Environment.Status.ACTIVE, url="http://testserver/w/x/"
    )
    environment = Environment.objects.get(organization=organization)
    card_set_up(localstripe, organization, admin, DECLINED_AT_CHARGE)
    failed_at = subscription.current_period_end + timedelta(minutes=5)
    tick_at(failed_at)
    for day in (1, 3, 5, 7):
        tick_at(failed_at + timedelta(days=day, minutes=1))
    tick_at(failed_at + timedelta(days=10, minutes=1))
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.SUSPENDED
    invoice = Invoice.objects.get(subscription=subscription, kind=Invoice.Kind.RENEWAL, status=Invoice.Status.OPEN)
    because = f"because invoice {invoice.number} ({money(invoice.total_minor, invoice.currency)}) is unpaid."

    client.force_login(admin)
    for name, args in (("home", []), ("billing", []), ("builtin_workspace", [environment.public_id])):
        page = client.get(reverse(name, args=args)).content.decode()
        assert "Tracker has been suspended since" in page and because in page, name
        assert f"Pay invoice {invoice.number}" in page, name
        assert 'id="open-workspace"' not in page, name

    client.force_login(member)
    page = client.get(reverse("home")).content.decode()
    assert because in page and f"Ask your admin ({admin.email}) to pay invoice {invoice.number}." in page
    assert f"Pay invoice {invoice.number}</a>" not in page
