"""Cancellation: paid subscriptions end at the period end (and can be kept until then),
everything else ends at once; open invoices are voided; a canceled product never gets a
second trial."""

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse

from billing import selectors
from billing.entitlements import entitlements_compute
from billing.exceptions import CheckoutInvalid
from billing.models import Invoice, Payment, Subscription
from billing.services import subscriptions
from experiments.models import Event

from ...conftest import organization_on
from ...factories import MembershipFactory
from ..helpers import DECLINED_AT_CHARGE, card_set_up, paid_on_commit, tick_at

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_tasks")]


def _manage(client, subscription, **data):
    return client.post(reverse("subscription_manage", args=[subscription.public_id]), data)


def test_a_paid_subscription_runs_to_its_period_end_then_ends_without_a_renewal(client, localstripe, catalog):
    organization, admin, subscription = paid_on_commit(localstripe, seats=3)
    client.force_login(admin)
    _manage(client, subscription, action="cancel", reason="too_expensive")
    subscription.refresh_from_db()
    assert subscription.cancel_at_period_end and subscription.status == Subscription.Status.ACTIVE
    page = client.get(reverse("billing")).content.decode()
    assert f"ends on {subscription.current_period_end:%-d %b %Y} and will not renew" in page
    assert entitlements_compute(organization_id=organization.pk)[0]["entitled"] is True  # paid until then

    # Kept after all, then canceled again: the second cancel is what counts.
    _manage(client, subscription, action="keep")
    subscription.refresh_from_db()
    assert not subscription.cancel_at_period_end and subscription.cancellation_reason == ""
    _manage(client, subscription, action="cancel", reason="switched")
    _manage(client, subscription, action="cancel", reason="other")  # a double click changes nothing
    subscription.refresh_from_db()
    assert subscription.cancellation_reason == "switched"

    invoices_before = Invoice.objects.count()
    report = tick_at(subscription.current_period_end + timedelta(minutes=1))
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.CANCELED
    assert subscription.canceled_at is not None and report.renewals == 0
    assert Invoice.objects.count() == invoices_before and Payment.objects.count() == 1  # the purchase only
    assert entitlements_compute(organization_id=organization.pk) == []
    assert list(selectors.subscriptions_of(organization=organization)) == []
    canceled = Event.objects.get(name="subscription_canceled")
    assert canceled.properties["scheduled"] is True and canceled.properties["reason"] == "switched"
    assert [e.name for e in Event.objects.filter(name__startswith="subscription_cancel").order_by("pk")] == [
        "subscription_cancel_scheduled", "subscription_cancel_withdrawn", "subscription_cancel_scheduled",
        "subscription_canceled",
    ]
    assert mail.outbox[-1].subject == "[Flywheel] Tracker is cancelled"

    # Starting Tracker again: no second trial. Asked for one, nothing is created; bought, it
    # waits, suspended, for the payment.
    client.post(reverse("product_trial_start"), {"product": "tracker"})
    assert not Subscription.objects.exclude(pk=subscription.pk).exists()
    response = client.post(reverse("product_trial_start"), {"product": "tracker", "buy": "1"})
    again = Subscription.objects.exclude(pk=subscription.pk).get()
    assert again.status == Subscription.Status.SUSPENDED and again.trial_ends_at is None
    assert response["Location"] == reverse("checkout", args=[again.public_id])
    assert entitlements_compute(organization_id=organization.pk)[0]["entitled"] is False


def test_a_trial_ends_at_once(client, localstripe, catalog):
    organization, admin = organization_on("standard")
    subscription = organization.subscriptions.get()
    client.force_login(admin)
    _manage(client, subscription, action="cancel")
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.CANCELED and not subscription.cancel_at_period_end
    assert entitlements_compute(organization_id=organization.pk) == []
    assert "Tracker is cancelled." in client.get(reverse("billing")).content.decode()


def test_a_past_due_subscription_ends_at_once_and_its_unpaid_invoice_is_voided(client, localstripe, catalog):
    organization, admin, subscription = paid_on_commit(localstripe, seats=2)
    card_set_up(localstripe, organization, admin, DECLINED_AT_CHARGE)
    tick_at(subscription.current_period_end + timedelta(minutes=5))
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.PAST_DUE
    renewal = Invoice.objects.get(kind=Invoice.Kind.RENEWAL)
    client.force_login(admin)
    _manage(client, subscription, action="cancel", reason="not_using")
    subscription.refresh_from_db()
    renewal.refresh_from_db()
    assert subscription.status == Subscription.Status.CANCELED and subscription.next_dunning_at is None
    assert renewal.status == Invoice.Status.VOID and renewal.number  # its number stays taken: no gap
    failed_payments = Payment.objects.filter(status="failed").count()
    assert tick_at(subscription.current_period_end + timedelta(days=3)).dunning_retries == 0
    assert Payment.objects.filter(status="failed").count() == failed_payments


def test_cancel_is_refused_while_a_payment_is_under_way_and_nothing_changes(localstripe, catalog):
    from config.celery import app as celery_app

    organization, admin, subscription = paid_on_commit(localstripe, seats=2)
    card_set_up(localstripe, organization, admin, DECLINED_AT_CHARGE)
    failed_at = subscription.current_period_end + timedelta(minutes=5)
    tick_at(failed_at)
    celery_app.conf.task_always_eager = False  # the dunning retry's charge waits for the worker
    assert tick_at(failed_at + timedelta(days=1, minutes=1)).dunning_retries == 1
    retry = Payment.objects.get(status=Payment.Status.PENDING)
    subscription.refresh_from_db()
    with pytest.raises(CheckoutInvalid, match="under way"):
        subscriptions.subscription_cancel(subscription=subscription, actor=admin)
    subscription.refresh_from_db()
    retry.invoice.refresh_from_db()
    assert subscription.status == Subscription.Status.PAST_DUE and retry.invoice.status == Invoice.Status.OPEN


def test_only_the_organizations_admins_can_cancel(client, localstripe, catalog):
    organization, admin = organization_on("standard")
    subscription = organization.subscriptions.get()
    member = MembershipFactory(organization=organization, role="member").user
    client.force_login(member)
    assert _manage(client, subscription, action="cancel").status_code == 404
    stranger, stranger_admin = organization_on("standard")
    client.force_login(stranger_admin)
    assert _manage(client, subscription, action="cancel").status_code == 404
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.TRIALING
    with pytest.raises(CheckoutInvalid, match="Unknown cancellation reason"):
        subscriptions.subscription_cancel(subscription=subscription, actor=admin, reason="<script>")
