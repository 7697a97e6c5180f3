"""Add-ons through the life of their base subscription, with time travel against localstripe:
one renewal invoice for the base and its add-ons, added and removed seats, downgrades that
exclude an add-on, add-on trials ending, the base cancelled or suspended. Celery runs tasks
in-process here (task_always_eager): a charge scheduled on commit happens at once."""

import uuid
from datetime import timedelta

import pytest
import time_machine
from django.core import mail

from billing import selectors
from billing.exceptions import CheckoutInvalid
from billing.models import AddOnSubscription, BillingAccount, Invoice, Subscription
from billing.services import invoices, subscriptions
from billing.services.addons import addon_buy, addon_keep, addon_quote, addon_trial_start
from billing.services.seats import seats_quote, subscription_add_seats, subscription_remove_seats
from billing.signals import addon_grants_changed
from catalog.selectors import edition_get

from ...conftest import organization_on
from ..factories import tracker_addon
from ..helpers import paid_on_commit, tick_at

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_tasks")]


@pytest.fixture
def grant_signals():
    sent = []

    def receiver(sender, organization_id, product_id, **kwargs):
        sent.append((organization_id, product_id))

    addon_grants_changed.connect(receiver, dispatch_uid="test-addons-lifecycle-signals")
    yield sent
    addon_grants_changed.disconnect(dispatch_uid="test-addons-lifecycle-signals")


def _buy(subscription, admin, code):
    invoice = addon_buy(subscription=subscription, addon=tracker_addon(code), actor=admin, request_key=uuid.uuid4().hex)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID  # charged on commit (eager)
    return AddOnSubscription.objects.get(subscription=subscription, addon__code=code, status="active")


def test_the_renewal_bills_the_base_and_each_add_on_on_one_invoice(localstripe, catalog):
    organization, admin, subscription = paid_on_commit(localstripe, seats=4)
    _buy(subscription, admin, "github")
    _buy(subscription, admin, "premium-support")
    subscription_remove_seats(subscription=subscription, actor=admin, seats=1)  # 3 seats from the renewal
    assert addon_quote(subscription=subscription, addon=tracker_addon("training")).amount_minor == 50000
    tick_at(subscription.current_period_end + timedelta(minutes=5))
    renewal = Invoice.objects.get(kind=Invoice.Kind.RENEWAL)
    lines = list(renewal.lines.order_by("pk"))
    assert [(line.addon.code if line.addon else None, line.quantity, line.unit_amount_minor) for line in lines] == [
        (None, 3, 815), ("github", 3, 150), ("premium-support", 1, 9900),
    ]
    assert renewal.total_minor == 3 * 815 + 3 * 150 + 9900 == sum(line.amount_minor for line in lines)
    assert renewal.status == Invoice.Status.PAID and renewal.payments.get().amount_minor == renewal.total_minor
    assert "GitHub integration: 3 seats ×" in lines[1].description
    assert AddOnSubscription.objects.filter(status="active").count() == 2


def test_added_seats_carry_a_prorated_line_per_per_seat_add_on(localstripe, catalog):
    organization, admin, subscription = paid_on_commit(localstripe, seats=5)
    _buy(subscription, admin, "github")
    _buy(subscription, admin, "premium-support")  # flat: not on a seats invoice
    period = (subscription.current_period_end - subscription.current_period_start).total_seconds()
    with time_machine.travel(subscription.current_period_start + timedelta(seconds=period / 2), tick=False):
        quote = seats_quote(subscription=subscription, seats=2)
        assert quote.seats_amount_minor == 815  # half a month of two seats
        [line] = quote.addon_lines
        assert (line.addon.code, line.seats, line.unit_amount_minor, line.amount_minor) == ("github", 2, 150, 150)
        assert quote.amount_minor == 815 + 150
        payment = subscription_add_seats(
            subscription=subscription, actor=admin, seats=2, request_key=uuid.uuid4().hex, quote_token=quote.token
        )
    invoice = payment.invoice
    assert payment.amount_minor == invoice.total_minor == 965
    assert [(line.addon.code if line.addon else None, line.quantity) for line in invoice.lines.order_by("pk")] == [(None, 2), ("github", 2)]
    subscription.refresh_from_db()
    assert subscription.seat_limit == 7
    tick_at(subscription.current_period_end + timedelta(minutes=5))
    renewal = Invoice.objects.get(kind=Invoice.Kind.RENEWAL)
    assert renewal.lines.get(addon__code="github").quantity == 7


def test_a_downgrade_says_and_schedules_the_add_ons_it_excludes_and_withdrawing_it_keeps_them(localstripe, catalog):
    organization, admin, subscription = paid_on_commit(localstripe, seats=3)
    support = _buy(subscription, admin, "premium-support")
    free = edition_get(product_code="tracker", edition_code="free")
    quote = subscriptions.edition_change_quote(subscription=subscription, edition=free)
    assert [addon.code for addon in quote.addons_removed] == ["premium-support"]
    subscriptions.subscription_change_edition(subscription=subscription, actor=admin, edition=free, request_key="")
    support.refresh_from_db()
    assert support.cancel_at_period_end
    assert support.cancel_reason == "Tracker Free does not include Premium support (it needs Standard or above)."
    with pytest.raises(CheckoutInvalid, match="moves to Free on .*, which does not include Premium support: keep Standard first"):
        addon_keep(addon_subscription=support, actor=admin)
    standard = edition_get(product_code="tracker", edition_code="standard")
    subscriptions.subscription_change_edition(subscription=subscription, actor=admin, edition=standard, request_key="")
    support.refresh_from_db()
    assert (support.cancel_at_period_end, support.cancel_reason) == (False, "")
    # Downgrading again, and letting the period end: moved to Free, the add-on ended, nothing billed.
    subscriptions.subscription_change_edition(subscription=subscription, actor=admin, edition=free, request_key="")
    tick_at(subscription.current_period_end + timedelta(minutes=5))
    support.refresh_from_db()
    subscription.refresh_from_db()
    assert subscription.edition == free and support.status == AddOnSubscription.Status.CANCELED
    assert not Invoice.objects.filter(kind=Invoice.Kind.RENEWAL).exists()


def test_a_downgrade_that_still_meets_the_add_ons_edition_keeps_it(localstripe, catalog):
    organization, admin, subscription = paid_on_commit(localstripe, edition="premium", seats=3)
    github = _buy(subscription, admin, "github")
    standard = edition_get(product_code="tracker", edition_code="standard")
    assert subscriptions.edition_change_quote(subscription=subscription, edition=standard).addons_removed == []
    subscriptions.subscription_change_edition(subscription=subscription, actor=admin, edition=standard, request_key="")
    tick_at(subscription.current_period_end + timedelta(minutes=5))
    github.refresh_from_db()
    assert github.status == AddOnSubscription.Status.ACTIVE
    renewal = Invoice.objects.get(kind=Invoice.Kind.RENEWAL)
    assert renewal.total_minor == 3 * 815 + 3 * 150


def test_an_add_on_trial_ends_by_the_clock_without_a_charge_and_says_how_to_buy(localstripe, catalog, grant_signals):
    organization, admin, subscription = paid_on_commit(localstripe)
    trial = addon_trial_start(subscription=subscription, addon=tracker_addon("github"), actor=admin)
    assert grant_signals == [(organization.pk, subscription.product_id)]
    assert tick_at(trial.trial_ends_at - timedelta(hours=1)).addon_trials_ended == 0
    report = tick_at(trial.trial_ends_at + timedelta(minutes=1))
    assert report.addon_trials_ended == 1
    trial.refresh_from_db()
    assert trial.status == AddOnSubscription.Status.CANCELED and trial.trial_ends_at is None
    assert not Invoice.objects.filter(kind=Invoice.Kind.ADDON).exists()
    assert grant_signals[-1] == (organization.pk, subscription.product_id)
    message = mail.outbox[-1]
    assert message.subject == "[Flywheel] Your GitHub integration trial has ended"
    assert "Nothing was charged" in message.body and "per seat per month" in message.body
    assert f"/billing/addons/{subscription.public_id}/github/" in message.body


def test_the_base_trial_moving_to_free_ends_add_ons_that_need_a_paid_edition(localstripe, catalog):
    organization, admin = organization_on("standard")
    subscription = organization.subscriptions.get()
    trial = addon_trial_start(subscription=subscription, addon=tracker_addon("github"), actor=admin)
    tick_at(subscription.trial_ends_at + timedelta(minutes=1))
    subscription.refresh_from_db()
    trial.refresh_from_db()
    assert subscription.edition.code == "free"
    assert trial.status == AddOnSubscription.Status.CANCELED
    assert trial.cancel_reason == "Tracker Free does not include GitHub integration (it needs Standard or above)."


def test_cancelling_the_base_ends_its_add_ons_at_its_end(localstripe, catalog, grant_signals):
    organization, admin, subscription = paid_on_commit(localstripe)
    github = _buy(subscription, admin, "github")
    subscriptions.subscription_cancel(subscription=subscription, actor=admin, reason="too_expensive")
    github.refresh_from_db()
    assert github.status == AddOnSubscription.Status.ACTIVE  # paid until the period end
    grant_signals.clear()
    tick_at(subscription.current_period_end + timedelta(minutes=5))
    github.refresh_from_db()
    assert github.status == AddOnSubscription.Status.CANCELED and github.cancel_reason.startswith("Tracker ended on")
    assert grant_signals == [(organization.pk, subscription.product_id)]
    assert not Invoice.objects.filter(kind=Invoice.Kind.RENEWAL).exists()
    # A trial base cancelled ends its add-on trial at once.
    other, other_admin = organization_on("standard")
    base = other.subscriptions.get()
    trial = addon_trial_start(subscription=base, addon=tracker_addon("github"), actor=other_admin)
    subscriptions.subscription_cancel(subscription=base, actor=other_admin)
    trial.refresh_from_db()
    assert trial.status == AddOnSubscription.Status.CANCELED


def test_a_removed_add_on_is_not_billed_at_the_renewal(localstripe, catalog):
    from billing.services.addons import addon_remove

    organization, admin, subscription = paid_on_commit(localstripe, seats=2)
    github = _buy(subscription, admin, "github")
    addon_remove(addon_subscription=github, actor=admin)
    tick_at(subscription.current_period_end + timedelta(minutes=5))
    github.refresh_from_db()
    assert github.status == AddOnSubscription.Status.CANCELED
    renewal = Invoice.objects.get(kind=Invoice.Kind.RENEWAL)
    assert renewal.total_minor == 2 * 815 and not renewal.lines.filter(addon__isnull=False).exists()


def test_a_suspended_base_stops_its_add_ons_granting_and_paying_brings_them_back(localstripe, catalog, grant_signals):
    organization, admin, subscription = paid_on_commit(localstripe, seats=2, interval="year")
    _buy(subscription, admin, "premium-support")
    BillingAccount.objects.filter(organization=organization).update(collection_method="invoice", po_number="PO-1")
    tick_at(subscription.current_period_end + timedelta(minutes=5))
    renewal = Invoice.objects.get(kind=Invoice.Kind.RENEWAL)
    assert renewal.total_minor == 2 * 8150 + 99000 and renewal.lines.filter(addon__code="premium-support").exists()
    assert selectors.addons_granting(organization_id=organization.pk).count() == 1
    grant_signals.clear()
    tick_at(renewal.due_at + timedelta(days=5))
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.SUSPENDED
    assert AddOnSubscription.objects.get().status == AddOnSubscription.Status.ACTIVE  # no write: the base's status rules
    assert not selectors.addons_granting(organization_id=organization.pk).exists()
    assert grant_signals == [(organization.pk, subscription.product_id)]
    invoices.invoice_mark_paid_by_transfer(invoice=renewal, actor=admin)
    assert selectors.addons_granting(organization_id=organization.pk).count() == 1
    assert len(grant_signals) == 2


def test_a_base_trial_ending_suspended_tells_that_its_add_ons_stop_granting(localstripe, catalog, grant_signals):
    organization, admin = organization_on("standard", members=11)  # too many for Free
    subscription = organization.subscriptions.get()
    addon_trial_start(subscription=subscription, addon=tracker_addon("github"), actor=admin)
    grant_signals.clear()
    tick_at(subscription.trial_ends_at + timedelta(minutes=1))
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.SUSPENDED
    assert grant_signals[0] == (organization.pk, subscription.product_id)
    assert not selectors.addons_granting(organization_id=organization.pk).exists()
