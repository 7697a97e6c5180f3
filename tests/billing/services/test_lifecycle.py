"""Time travel through trials, renewals, dunning, edition changes, seat removals and purchase
orders, against localstripe. Celery runs tasks in-process here (task_always_eager), so a
charge scheduled on commit happens inside the tick that scheduled it; the real worker is
exercised by the webhook and journey tests."""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.utils import timezone

from billing import gateway, pricing, selectors
from billing.exceptions import CheckoutInvalid
from billing.models import BillingAccount, Invoice, Payment, Subscription
from billing.services import (
    billing_account,
    checkout,
    invoices,
    payments,
    subscriptions,
    webhooks,
)
from billing.services.seats import subscription_remove_seats
from catalog.selectors import edition_get
from experiments.models import Event

from ...conftest import organization_on
from ..helpers import DECLINED_AT_CHARGE, OK_CARD, card_set_up, paid_on_commit, tick_at

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_tasks")]


def _subjects():
    return [message.subject for message in mail.outbox]


def test_trial_reminders_go_out_once_at_seven_three_and_one_days(localstripe, catalog):
    organization, admin = organization_on("standard")
    subscription = organization.subscriptions.get()
    end = subscription.trial_ends_at
    assert tick_at(end - timedelta(days=8)).reminders == 0
    assert tick_at(end - timedelta(days=6, hours=12)).reminders == 1
    assert tick_at(end - timedelta(days=6)).reminders == 0  # not twice
    assert tick_at(end - timedelta(days=2, hours=12)).reminders == 1
    assert tick_at(end - timedelta(hours=12)).reminders == 1
    assert _subjects() == [
        "[Flywheel] Your Tracker trial ends in 7 days",
        "[Flywheel] Your Tracker trial ends in 3 days",
        "[Flywheel] Your Tracker trial ends in 1 day",
    ]
    assert mail.outbox[0].to == [admin.email]
    reminder = mail.outbox[0].body
    assert reminder.startswith("Hello,\n\nYour Tracker Standard trial ends on ")
    assert "The Flywheel team\n" in reminder
    assert f"because you are an admin of {organization.name}, or its billing contact" in reminder


def test_a_trial_without_a_card_falls_back_to_free_when_the_organization_fits(localstripe, catalog):
    organization, admin = organization_on("standard", members=3)
    subscription = organization.subscriptions.get()
    report = tick_at(subscription.trial_ends_at + timedelta(minutes=1))
    assert report.trials_to_free == 1
    subscription.refresh_from_db()
    assert (subscription.status, subscription.edition.code, subscription.seat_limit) == ("active", "free", 10)
    assert Event.objects.get(name="trial_ended").properties["outcome"] == "free"


def test_a_trial_of_an_organization_too_big_for_free_is_suspended_until_paid(localstripe, catalog):
    organization, admin = organization_on("standard", members=12)
    subscription = organization.subscriptions.get()
    assert tick_at(subscription.trial_ends_at + timedelta(minutes=1)).trials_suspended == 1
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.SUSPENDED
    assert "suspended until someone pays" in mail.outbox[-1].body
    card_set_up(localstripe, organization, admin, OK_CARD)
    checkout.subscription_checkout(
        subscription=subscription, actor=admin, edition=edition_get(product_code="tracker", edition_code="standard"),
        seats=12, interval="month",
    )
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.ACTIVE and subscription.suspended_at is None


def test_renewal_charges_the_next_period_once(localstripe, catalog):
    organization, admin, subscription = paid_on_commit(localstripe, seats=4)
    first_end = subscription.current_period_end
    report = tick_at(first_end + timedelta(minutes=5))
    assert report.renewals == 1
    assert tick_at(first_end + timedelta(minutes=20)).renewals == 0
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.ACTIVE
    assert subscription.current_period_start == first_end and subscription.current_period_end > first_end
    renewal = Invoice.objects.get(kind=Invoice.Kind.RENEWAL)
    assert renewal.status == Invoice.Status.PAID and renewal.total_minor == 4 * 815


def test_overlapping_ticks_issue_one_renewal(localstripe, catalog):
    organization, admin, subscription = paid_on_commit(localstripe)
    at = subscription.current_period_end + timedelta(minutes=5)
    barrier = threading.Barrier(2)

    def tick():
        barrier.wait()
        try:
            tick_at(at)
        finally:
            connection.close()

    threads = [threading.Thread(target=tick) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert Invoice.objects.filter(kind=Invoice.Kind.RENEWAL).count() == 1
    assert Payment.objects.filter(invoice__kind=Invoice.Kind.RENEWAL).count() == 1


def test_dunning_retries_emails_then_suspends_and_a_payment_reactivates(localstripe, catalog):
    organization, admin, subscription = paid_on_commit(localstripe, seats=2)
    card_set_up(localstripe, organization, admin, DECLINED_AT_CHARGE)  # the card that fails later
    failed_at = subscription.current_period_end + timedelta(minutes=5)
    tick_at(failed_at)
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.PAST_DUE
    assert mail.outbox[-1].subject == "[Flywheel] Payment failed for Tracker"
    assert "/billing/" in mail.outbox[-1].body

    for day, retries in [(1, 1), (3, 2), (5, 3), (7, 4)]:
        assert tick_at(failed_at + timedelta(days=day, minutes=1)).dunning_retries == 1
        subscription.refresh_from_db()
        assert subscription.status == Subscription.Status.PAST_DUE and subscription.dunning_attempts == retries
    assert tick_at(failed_at + timedelta(days=9)).suspended == 0  # still in the grace period
    assert tick_at(failed_at + timedelta(days=10, minutes=1)).suspended == 1
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.SUSPENDED
    assert Payment.objects.filter(invoice__kind=Invoice.Kind.RENEWAL, status="failed").count() == 5
    assert _subjects().count("[Flywheel] Payment failed for Tracker") == 5  # one email each time

    card_set_up(localstripe, organization, admin, OK_CARD)
    subscriptions.subscription_pay_now(subscription=subscription, actor=admin)
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.ACTIVE and subscription.dunning_attempts == 0


def test_upgrade_is_prorated_and_applies_at_once(localstripe, catalog):
    organization, admin, subscription = paid_on_commit(localstripe, seats=4)
    middle = subscription.current_period_start + (subscription.current_period_end - subscription.current_period_start) / 2
    with time_machine.travel(middle, tick=False):
        payment = subscriptions.subscription_change_edition(
            subscription=subscription, actor=admin, edition=edition_get(product_code="tracker", edition_code="premium"),
            request_key="upgrade-1",
        )
    left = int((subscription.current_period_end - middle).total_seconds())
    period = int((subscription.current_period_end - subscription.current_period_start).total_seconds())
    charge = pricing.prorate(full_amount_minor=1600 * 4, seconds_left=left, seconds_in_period=period)
    credit = pricing.prorate(full_amount_minor=815 * 4, seconds_left=left, seconds_in_period=period)
    assert payment.amount_minor == charge - credit == 1570
    # The invoice shows both: the new edition for the rest of the period, and a credit line.
    lines = list(payment.invoice.lines.order_by("pk").values_list("description", "quantity", "unit_amount_minor", "amount_minor"))
    assert [line[1:] for line in lines] == [(4, 1600, 3200), (4, -815, -1630)]
    assert lines[1][0].startswith("Unused time on Tracker Standard, 4 seats")
    from billing.documents import invoice_document

    document = invoice_document(payment.invoice)
    assert [line.amount_minor for line in document.lines] == [3200, -1630] and document.total_minor == 1570
    subscription.refresh_from_db()
    assert subscription.edition.code == "premium"
    from experiments.models import Event

    changed = Event.objects.get(name="edition_changed", organization=organization)
    assert (changed.properties["to"], changed.properties["amount_minor"], changed.properties["currency"]) == ("premium", 1570, "USD")


def test_downgrade_waits_for_the_period_end_and_is_refused_when_over_the_limit(localstripe, catalog):
    organization, admin, subscription = paid_on_commit(localstripe, edition="premium", seats=12, members=12)
    with pytest.raises(CheckoutInvalid, match="Tracker Free allows 10 users and .* has 12"):
        subscriptions.subscription_change_edition(
            subscription=subscription, actor=admin, edition=edition_get(product_code="tracker", edition_code="free"),
            request_key="d1",
        )
    subscriptions.subscription_change_edition(
        subscription=subscription, actor=admin, edition=edition_get(product_code="tracker", edition_code="standard"),
        request_key="d2",
    )
    subscription.refresh_from_db()
    assert subscription.edition.code == "premium" and subscription.pending_edition.code == "standard"
    tick_at(subscription.current_period_end + timedelta(minutes=5))
    subscription.refresh_from_db()
    assert subscription.edition.code == "standard" and subscription.pending_edition is None
    assert Invoice.objects.get(kind=Invoice.Kind.RENEWAL).total_minor == 12 * 815


def test_seat_removals_take_effect_at_renewal(localstripe, catalog):
    organization, admin, subscription = paid_on_commit(localstripe, seats=5, members=2)
    with pytest.raises(CheckoutInvalid, match="uses 2 seats"):
        subscription_remove_seats(subscription=subscription, actor=admin, seats=4)
    subscription_remove_seats(subscription=subscription, actor=admin, seats=2)
    subscription.refresh_from_db()
    assert (subscription.seat_limit, subscription.pending_seat_limit) == (5, 3)
    tick_at(subscription.current_period_end + timedelta(minutes=5))
    subscription.refresh_from_db()
    assert (subscription.seat_limit, subscription.pending_seat_limit) == (3, None)
    assert Invoice.objects.get(kind=Invoice.Kind.RENEWAL).total_minor == 3 * 815


def test_purchase_order_invoices_have_terms_and_overdue_ones_suspend_only_their_subscription(localstripe, catalog):
    organization, admin, subscription = paid_on_commit(localstripe, seats=3, interval="year")
    BillingAccount.objects.filter(organization=organization).update(collection_method="invoice", po_number="PO-778", net_terms_days=30)
    renewal_at = subscription.current_period_end + timedelta(minutes=5)
    tick_at(renewal_at)
    invoice = Invoice.objects.get(kind=Invoice.Kind.RENEWAL)
    assert (invoice.po_number, invoice.collection_method, invoice.status) == ("PO-778", "invoice", "open")
    assert invoice.due_at == renewal_at + timedelta(days=30)
    assert not invoice.payments.exists()  # nobody charges a purchase order
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.ACTIVE  # net terms: the product goes on
    assert mail.outbox[-1].subject == f"[Flywheel] Invoice {invoice.number} for Tracker"

    assert tick_at(invoice.due_at + timedelta(days=1)).overdue_reminders == 1
    assert tick_at(invoice.due_at + timedelta(days=4)).suspended == 1
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.SUSPENDED
    invoices.invoice_mark_paid_by_transfer(invoice=invoice, actor=admin)
    subscription.refresh_from_db()
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and subscription.status == Subscription.Status.ACTIVE


def test_sales_threshold_lists_big_spenders(localstripe, catalog):
    organization, admin, subscription = paid_on_commit(localstripe, seats=50, interval="year")
    small, small_admin, _ = paid_on_commit(localstripe, seats=1)
    flagged = selectors.organizations_over_sales_threshold(minimum_minor=100_000, since=timezone.now() - timedelta(days=365))
    assert [(org.pk, total) for org, total in flagged] == [(organization.pk, 50 * 8150)]


def test_a_second_product_is_billed_on_the_organizations_billing_date(localstripe, catalog):
    organization, admin, tracker = paid_on_commit(localstripe, seats=2)
    ten_days_later = tracker.current_period_start + timedelta(days=10)
    with time_machine.travel(ten_days_later, tick=False):
        wiki = subscriptions.subscription_start_trial(
            organization=organization, edition=edition_get(product_code="wiki", edition_code="standard"), actor=admin
        )
        quote = checkout.checkout_quote(
            subscription=wiki, edition=edition_get(product_code="wiki", edition_code="standard"), seats=2, interval="month"
        )
        payment = checkout.subscription_checkout(
            subscription=wiki, actor=admin, edition=quote.edition, seats=2, interval="month"
        )
    full_month = pricing.add_months(ten_days_later, 1) - ten_days_later
    expected = pricing.prorate(
        full_amount_minor=2 * 611,
        seconds_left=int((tracker.current_period_end - ten_days_later).total_seconds()),
        seconds_in_period=int(full_month.total_seconds()),
    )
    assert payment.amount_minor == quote.amount_minor == expected < 2 * 611
    wiki.refresh_from_db()
    assert wiki.current_period_end == tracker.current_period_end  # one billing date
    tick_at(tracker.current_period_end + timedelta(minutes=5))
    renewals = Invoice.objects.filter(kind=Invoice.Kind.RENEWAL).order_by("subscription__product__code")
    assert [(i.subscription.product.code, i.total_minor, i.period_start) for i in renewals] == [
        ("tracker", 2 * 815, tracker.current_period_end),
        ("wiki", 2 * 611, tracker.current_period_end),
    ]


def test_purchase_order_requests_reach_staff_and_are_accepted_in_the_admin(client, localstripe, catalog):
    from django.urls import reverse

    from ...factories import UserFactory

    organization, admin, subscription = paid_on_commit(localstripe, seats=2, interval="year")
    staff = UserFactory(email="finance@flywheel.example", is_staff=True, is_superuser=True)
    billing_account.payment_terms_request(organization=organization, actor=admin, po_number="PO-9", billing_email="ap@acme.example")
    assert mail.outbox[-1].to == [staff.email] and "PO-9" in mail.outbox[-1].body
    client.force_login(staff)
    account = BillingAccount.objects.get(organization=organization)
    response = client.post(
        reverse("admin:billing_billingaccount_change", args=[account.pk]),
        {"collection_method": "invoice", "po_number": "PO-9", "net_terms_days": "45", "billing_email": "ap@acme.example"},
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.collection_method, account.net_terms_days) == ("invoice", 45)
    tick_at(subscription.current_period_end + timedelta(minutes=5))
    invoice = Invoice.objects.get(kind=Invoice.Kind.RENEWAL)
    response = client.post(
        reverse("admin:billing_invoice_changelist"), {"action": "mark_paid_by_transfer", "_selected_action": [invoice.pk]}
    )
    assert response.status_code == 302
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID


# A failed renewal charge is told once, whichever of its two paths comes second (issue 17): the
# worker's card error, then Stripe's payment_intent.payment_failed (delivered, or replayed), must
# not email the admins again, and the worker's more specific decline code is kept.


def _failed_intent(payment: Payment, *, code: str = "card_declined") -> gateway.PaymentIntent:
    """payment_intent.payment_failed as Stripe sends it for that charge."""
    return gateway.PaymentIntent(
        id=payment.stripe_payment_intent_id or "pi_declined_renewal",
        status="requires_payment_method",
        amount=payment.amount_minor,
        currency=payment.currency,
        customer_id="",
        client_secret="",
        metadata={"flywheel_payment": str(payment.public_id)},
        error_message="Your card was declined.",
        error_code=code,
    )


def _failure_emails() -> list:
    return [message for message in mail.outbox if message.subject == "[Flywheel] Payment failed for Tracker"]


def test_the_webhook_after_the_worker_recorded_a_decline_sends_no_second_email(localstripe, catalog):
    organization, admin, subscription = paid_on_commit(localstripe, seats=2)
    card_set_up(localstripe, organization, admin, DECLINED_AT_CHARGE)
    tick_at(subscription.current_period_end + timedelta(minutes=5))
    payment = Payment.objects.get(invoice__kind=Invoice.Kind.RENEWAL)
    assert payment.status == Payment.Status.FAILED
    assert len(_failure_emails()) == 1
    reason = payment.failure_code

    payments.payment_apply_intent(intent=_failed_intent(payment))  # the webhook
    payments.payment_apply_intent(intent=_failed_intent(payment))  # `stripe_replay` of it

    assert len(_failure_emails()) == 1
    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED
    assert payment.failure_code == reason  # the worker's decline code is not overwritten
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.PAST_DUE


# The whole race, through Stripe's real webhook (signed, posted to the view, applied by the
# drain's handler) and `manage.py stripe_replay`: whichever path records the declined renewal
# charge second, the admins get one email and analytics one payment_failed.


def _declined_renewal(localstripe):
    organization, admin, subscription = paid_on_commit(localstripe, seats=2)
    card_set_up(localstripe, organization, admin, DECLINED_AT_CHARGE)
    return organization, subscription


def _declined_intents(organization) -> list[gateway.PaymentIntent]:
    """The customer's intents that Stripe declined (the first period's charge succeeded)."""
    intents = gateway.payment_intents_of_customer(organization.billing_account.stripe_customer_id)
    return [intent for intent in intents if intent.status == "requires_payment_method"]


def _intent_as_stripe_has_it(localstripe, intent_id: str) -> dict:
    import requests
    from django.conf import settings

    response = requests.get(f"{localstripe.url}/v1/payment_intents/{intent_id}", auth=(settings.STRIPE_SECRET_KEY, ""), timeout=5)
    response.raise_for_status()
    return response.json()


def _payment_failed_webhook(client, localstripe, intent_id: str, event_id: str) -> None:
    """Stripe's payment_intent.payment_failed for that intent, signed and posted to the view,
    then applied by the handler the drain runs."""
    from billing.models import WebhookEvent

    from ..helpers import webhook_post, webhook_signed

    event = {
        "id": event_id,
        "object": "event",
        "type": "payment_intent.payment_failed",
        "created": int(timezone.now().timestamp()),
        "data": {"object": _intent_as_stripe_has_it(localstripe, intent_id)},
    }
    assert webhook_post(client, *webhook_signed(event)).status_code == 200
    webhooks.webhook_process(event_id=WebhookEvent.objects.get(stripe_event_id=event_id).pk)


def _stripe_replay(event_id: str) -> None:
    from io import StringIO

    from django.core.management import call_command

    call_command("stripe_replay", "--event-id", event_id, stdout=StringIO(), stderr=StringIO())


def _told_once(organization, payment) -> None:
    from experiments import events

    assert len(_failure_emails()) == 1
    assert Event.objects.filter(name=events.PAYMENT_FAILED, organization=organization).count() == 1
    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED
    assert payment.failure_code == "card_declined"  # all localstripe says; test_decline_reasons has real Stripe's
    assert Subscription.objects.get(pk=payment.invoice.subscription_id).status == Subscription.Status.PAST_DUE


def test_a_declined_renewal_recorded_by_the_worker_first_is_told_once_through_the_webhook_and_its_replay(
    client, localstripe, catalog
):
    organization, subscription = _declined_renewal(localstripe)
    tick_at(subscription.current_period_end + timedelta(minutes=5))  # the worker charges: declined
    payment = Payment.objects.get(invoice__kind=Invoice.Kind.RENEWAL)
    [declined] = _declined_intents(organization)
    # The worker stored the declined intent from its card error (localstripe's names the charge).
    assert payment.stripe_payment_intent_id == declined.id
    _told_once(organization, payment)

    _payment_failed_webhook(client, localstripe, declined.id, "evt_failed_after_worker")
    _told_once(organization, payment)
    _stripe_replay("evt_failed_after_worker")
    _told_once(organization, payment)


def test_a_declined_renewal_recorded_by_the_webhook_first_is_not_told_again_by_the_worker(
    client, localstripe, catalog, monkeypatch
):
    """Stripe's webhook is applied while the worker still waits for Stripe's answer (the
    decline): the worker's card error then finds the payment failed already."""
    from billing.exceptions import CardDeclined

    organization, subscription = _declined_renewal(localstripe)
    charge = gateway.payment_intent_charge
    seen: list[CardDeclined] = []

    def charge_while_the_webhook_lands_first(**kwargs):
        try:
            return charge(**kwargs)
        except CardDeclined as declined:
            seen.append(declined)
            _payment_failed_webhook(client, localstripe, declined.payment_intent_id, "evt_failed_before_worker")
            assert len(_failure_emails()) == 1  # the webhook told the admins
            raise

    monkeypatch.setattr(gateway, "payment_intent_charge", charge_while_the_webhook_lands_first)
    tick_at(subscription.current_period_end + timedelta(minutes=5))
    [declined] = seen
    [intent] = _declined_intents(organization)
    assert declined.payment_intent_id == intent.id and declined.code == "card_declined"
    payment = Payment.objects.get(invoice__kind=Invoice.Kind.RENEWAL)
    assert payment.stripe_payment_intent_id == intent.id
    _told_once(organization, payment)
    _stripe_replay("evt_failed_before_worker")
    _told_once(organization, payment)


def test_a_renewal_whose_intent_is_canceled_in_stripe_fails_once(client, localstripe, catalog):
    """payment_intent.canceled (an intent waiting for 3-D Secure, canceled in Stripe): the
    payment fails once, told once, however often the event comes."""
    import requests
    from django.conf import settings

    from billing.models import WebhookEvent

    from ..helpers import THREE_D_SECURE, webhook_post, webhook_signed

    organization, admin, subscription = paid_on_commit(localstripe, seats=2)
    card_set_up(localstripe, organization, admin, THREE_D_SECURE)
    tick_at(subscription.current_period_end + timedelta(minutes=5))
    payment = Payment.objects.get(invoice__kind=Invoice.Kind.RENEWAL)
    assert payment.status == Payment.Status.REQUIRES_ACTION
    requests.post(
        f"{localstripe.url}/v1/payment_intents/{payment.stripe_payment_intent_id}/cancel",
        auth=(settings.STRIPE_SECRET_KEY, ""), timeout=5,
    ).raise_for_status()
    for number in range(2):  # a delivery and a redelivery under another id
        event = {"id": f"evt_canceled_{number}", "object": "event", "type": "payment_intent.canceled",
                 "data": {"object": _intent_as_stripe_has_it(localstripe, payment.stripe_payment_intent_id)}}
        assert webhook_post(client, *webhook_signed(event)).status_code == 200
        webhooks.webhook_process(event_id=WebhookEvent.objects.get(stripe_event_id=event["id"]).pk)
    _stripe_replay("evt_canceled_0")

    from experiments import events

    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == (Payment.Status.FAILED, "canceled")
    assert payment.decline_reason == "The payment was canceled before anything was charged."
    assert len(_failure_emails()) == 1
    assert Event.objects.filter(name=events.PAYMENT_FAILED, organization=organization).count() == 1
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.PAST_DUE
