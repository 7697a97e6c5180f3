"""Stripe webhooks: verified, stored once, applied from Stripe's current state, in any order."""

import json
import random
import time

import pytest

from billing.models import Payment, Subscription, WebhookEvent
from billing.services import billing_account, webhooks

from ...conftest import wait_for
from ..helpers import (
    card_enter,
    charged_but_unrecorded,
    paid_payment,
    standard_checkout,
    webhook_event,
    webhook_post,
    webhook_signed,
    wsgi_call,
)


def test_the_intake_insert_is_prepared_once_per_connection(db):
    """Django turns psycopg's prepared statements off unless OPTIONS say otherwise; the
    webhook insert asks for one, and PostgreSQL must really hold it after the first event."""
    from django.db import connection

    for number in range(2):
        payload, signature = webhook_signed(webhook_event(f"evt_prepared_{number}", "customer.created", "pi_p"))
        webhooks.webhook_receive(payload=payload, signature=signature)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert len([sql for sql in prepared if "INSERT INTO billing_webhookevent" in sql]) == 1


def test_bad_signatures_are_refused_and_nothing_is_stored(client, db):
    payload, signature = webhook_signed(webhook_event("evt_1", "payment_intent.succeeded", "pi_1"), secret="whsec_wrong")
    response = webhook_post(client, payload, signature)
    assert response.status_code == 400 and "Webhook refused" in response.json()["error"]
    assert webhook_post(client, payload, "").status_code == 400
    assert webhook_post(client, b"not json", "t=1,v1=abc").status_code == 400
    assert not WebhookEvent.objects.exists()


def test_each_event_is_stored_once(client, db, django_capture_on_commit_callbacks):
    payload, signature = webhook_signed(webhook_event("evt_dup", "payment_intent.succeeded", "pi_x"))
    with django_capture_on_commit_callbacks() as callbacks:
        first = webhook_post(client, payload, signature)
        second = webhook_post(client, payload, signature)
    assert first.json() == {"received": "evt_dup", "duplicate": False}
    assert second.json() == {"received": "evt_dup", "duplicate": True}
    assert WebhookEvent.objects.count() == 1
    assert len(callbacks) == 1  # processed once


def test_a_stale_failure_never_undoes_a_success(client, localstripe, trial_organization):
    organization, admin = trial_organization
    payment, intent_id = charged_but_unrecorded(localstripe, organization, admin)
    for number, kind in enumerate(["payment_intent.payment_failed", "payment_intent.succeeded", "payment_intent.payment_failed"]):
        payload, signature = webhook_signed(webhook_event(f"evt_{number}", kind, intent_id))
        assert webhook_post(client, payload, signature).status_code == 200
        webhooks.webhook_process(event_id=WebhookEvent.objects.get(stripe_event_id=f"evt_{number}").pk)
        payment.refresh_from_db()
        assert payment.status == Payment.Status.SUCCEEDED  # Stripe's current state says so
    assert Subscription.objects.get(organization=organization).status == Subscription.Status.ACTIVE
    assert WebhookEvent.objects.filter(processed_at__isnull=False).count() == 3


@pytest.mark.django_db(transaction=True)
def test_localstripe_delivers_signed_webhooks_that_the_worker_applies(live_server, localstripe, catalog, celery_worker):
    from ...conftest import organization_on

    localstripe.register_webhook(f"{live_server.url}/stripe/webhook")
    organization, admin = organization_on("standard")
    payment = paid_payment(localstripe, organization, admin)
    # localstripe also delivers other tests' events to every endpoint still registered with
    # it, so this test waits for the event about its own payment's intent.
    event = wait_for(
        lambda: WebhookEvent.objects.filter(
            type="payment_intent.succeeded",
            payload__data__object__id=payment.stripe_payment_intent_id,
            processed_at__isnull=False,
        ).first(),
        what="localstripe's payment_intent.succeeded webhook about this payment, processed by the worker",
    )
    assert event.outcome == WebhookEvent.Outcome.APPLIED and event.attempts == 1


def _declined_but_unrecorded(localstripe, organization, admin):
    """The bank declined the charge, but the worker died before recording it."""
    from billing import gateway
    from billing.exceptions import CardDeclined

    from ..helpers import DECLINED_AT_CHARGE

    intent, _ = card_enter(localstripe, organization, admin, DECLINED_AT_CHARGE)
    billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=intent.id)
    payment = standard_checkout(organization, admin)
    Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.PROCESSING, attempts=1)
    with pytest.raises(CardDeclined):
        gateway.payment_intent_charge(
            amount=payment.amount_minor,
            currency=payment.currency,
            customer_id=organization.billing_account.stripe_customer_id,
            payment_method_id=payment.payment_method_id,
            metadata={"flywheel_payment": str(payment.public_id)},
            idempotency_key=f"flywheel-payment-{payment.public_id}",
        )
    [declined] = gateway.payment_intents_of_customer(organization.billing_account.stripe_customer_id)
    payment.refresh_from_db()
    return payment, declined.id


@pytest.mark.parametrize("apply", ["one by one, in random order", "by the drain, in batches"])
def test_webhook_chaos_applies_each_payment_once(client, localstripe, catalog, apply):
    """1,000 events for payments Stripe charged or declined while Flywheel was not looking:
    20% delivered twice, all shuffled, 5% with forged signatures. Every payment, invoice and
    subscription ends in the state Stripe's objects imply, and nothing is applied twice."""
    from ...conftest import organization_on

    charged = [charged_but_unrecorded(localstripe, *organization_on("standard")) for _ in range(4)]
    declined = [_declined_but_unrecorded(localstripe, *organization_on("standard")) for _ in range(2)]
    everything = charged + declined
    assert all(payment.status == Payment.Status.PROCESSING for payment, _ in everything)
    rng = random.Random(7)
    deliveries = []
    for number in range(1000):
        payment, intent_id = rng.choice(everything)
        kind = rng.choice(["payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.requires_action"])
        deliveries.append(webhook_event(f"evt_chaos_{number}", kind, intent_id))
    deliveries += rng.sample(deliveries, 200)  # 20% duplicates
    rng.shuffle(deliveries)
    accepted: set[str] = set()
    for index, event in enumerate(deliveries):
        bad = index % 20 == 0  # 5% with a forged signature
        payload, signature = webhook_signed(event, secret="whsec_forged" if bad else None)
        response = webhook_post(client, payload, signature)
        assert response.status_code == (400 if bad else 200)
        if not bad:
            accepted.add(event["id"])
    assert WebhookEvent.objects.count() == len(accepted)
    if apply == "by the drain, in batches":
        report = webhooks.webhooks_drain(batch=50)
        assert (report.processed, report.failed) == (len(accepted), 0)
    else:
        for stored in WebhookEvent.objects.order_by("?"):
            webhooks.webhook_process(event_id=stored.pk)
    for stored in WebhookEvent.objects.order_by("?")[:100]:
        webhooks.webhook_process(event_id=stored.pk)  # a replay changes nothing
    assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()
    for payment, _ in charged:
        payment.refresh_from_db()
        assert payment.status == Payment.Status.SUCCEEDED
        assert payment.invoice.status == "paid"
        assert Subscription.objects.get(pk=payment.invoice.subscription_id).status == Subscription.Status.ACTIVE
    for payment, _ in declined:
        payment.refresh_from_db()
        assert payment.status == Payment.Status.FAILED and payment.failure_message
        assert payment.invoice.status == "open"
        assert Subscription.objects.get(pk=payment.invoice.subscription_id).status == Subscription.Status.TRIALING
    from experiments.models import Event

    assert Event.objects.filter(name="subscription_paid").count() == len(charged)


def test_events_whose_processing_was_lost_are_scheduled_again(client, db, django_capture_on_commit_callbacks):
    import time_machine
    from django.utils import timezone

    payload, signature = webhook_signed(webhook_event("evt_lost", "payment_intent.succeeded", "pi_lost"))
    with django_capture_on_commit_callbacks() as callbacks:
        assert webhook_post(client, payload, signature).status_code == 200
    assert len(callbacks) == 1  # the intake nudged a drain
    assert webhooks.webhooks_resume_unprocessed() == 0  # too fresh to call lost
    with time_machine.travel(timezone.now() + timezone.timedelta(minutes=10)):
        with django_capture_on_commit_callbacks() as callbacks:
            assert webhooks.webhooks_resume_unprocessed() == 1
    assert len(callbacks) == 1
    # A drain's lease hides an event from the sweep until the lease runs out.
    assert webhooks.webhooks_claim(limit=10) == [WebhookEvent.objects.get().pk]
    assert webhooks.webhooks_claim(limit=10) == []
    with time_machine.travel(timezone.now() + timezone.timedelta(seconds=30)):
        assert webhooks.webhooks_resume_unprocessed() == 0
    with time_machine.travel(timezone.now() + timezone.timedelta(minutes=10)):
        assert webhooks.webhooks_claim(limit=10) == [WebhookEvent.objects.get().pk]


def test_a_failing_event_keeps_its_error_and_is_retried_after_a_backoff(db, settings):
    import time_machine
    from django.utils import timezone

    payload, signature = webhook_signed(webhook_event("evt_broken", "payment_intent.succeeded", "pi_broken"))
    received = webhooks.webhook_receive(payload=payload, signature=signature)
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # Stripe cannot be reached
    report = webhooks.webhooks_drain()
    assert (report.processed, report.failed) == (0, 1)
    event = WebhookEvent.objects.get(pk=received.pk)
    assert event.processed_at is None and "did not answer" in event.last_error and event.attempts == 1
    # It backs off rather than being retried in a loop, and is tried again afterwards.
    assert event.claimed_until > timezone.now()
    assert webhooks.webhooks_drain().failed == 0
    first_wait = event.claimed_until - timezone.now()
    with time_machine.travel(event.claimed_until + timezone.timedelta(seconds=1)):
        retry_started = timezone.now()
        assert webhooks.webhooks_drain().failed == 1
    event.refresh_from_db()
    assert event.attempts == 2 and event.processed_at is None
    assert event.claimed_until - retry_started > first_wait  # the wait doubles


def test_a_running_drain_holds_its_flag_for_every_batch_it_applies(db, monkeypatch):
    """While a drain applies events its flag is set, even when it had cleared the flag and
    then found more, so the intake's nudges publish no second drain meanwhile; it is cleared
    when the drain stops."""
    from common import shared_redis

    flag = shared_redis.key(webhooks._DRAIN_FLAG)
    seen: list[bool] = []
    real_apply = webhooks._webhooks_apply

    def apply_and_look(event_ids, report):
        seen.append(bool(shared_redis.client().exists(flag)))
        real_apply(event_ids, report)

    monkeypatch.setattr(webhooks, "_webhooks_apply", apply_and_look)
    for number in range(3):
        WebhookEvent.objects.create(stripe_event_id=f"evt_flag_{number}", type="customer.created", payload={})
    webhooks.webhooks_drain_flag_clear()  # as after a drain's last empty claim
    report = webhooks.webhooks_drain(batch=2, linger=0)
    assert report.processed == 3 and seen == [True, True]
    assert not shared_redis.client().exists(flag)


def test_a_batch_hands_back_what_it_has_not_started_once_half_its_lease_is_gone(db, settings, monkeypatch):
    """A slow Stripe must never let a lease run out under an event still being applied (another
    drain would take it and apply it too): past half the lease, the rest of the batch goes
    back, unleased, to the next claim."""
    settings.WEBHOOK_LEASE_SECONDS = 2
    real_process = webhooks.webhook_process

    def slow_process(*, event_id):
        time.sleep(0.6)  # a Stripe read that takes its time
        real_process(event_id=event_id)

    monkeypatch.setattr(webhooks, "webhook_process", slow_process)
    for number in range(3):
        WebhookEvent.objects.create(stripe_event_id=f"evt_slow_{number}", type="customer.created", payload={})
    claimed = webhooks.webhooks_claim(limit=10)
    report = webhooks.DrainReport()
    webhooks._webhooks_apply(claimed, report)
    assert (report.processed, report.failed) == (2, 0)
    last = WebhookEvent.objects.get(stripe_event_id="evt_slow_2")
    assert last.processed_at is None and last.claimed_until is None and last.attempts == 0
    assert webhooks.webhooks_claim(limit=10) == [last.pk]


@pytest.mark.django_db(transaction=True)
def test_a_drain_out_of_time_hands_over_to_a_successor_that_finishes(celery_worker):
    # Stored without the intake's nudge, so only the drain below and its successor apply them.
    for number in range(5):
        WebhookEvent.objects.create(
            stripe_event_id=f"evt_handover_{number}", type="customer.created", payload={"id": f"evt_handover_{number}"}
        )
    report = webhooks.webhooks_drain(batch=1, max_seconds=0)
    assert (report.processed, report.failed) == (1, 0)
    # Only this test's events: a webhook that localstripe still delivers from an earlier test
    # (the live server outlives tests) may be stored and applied meanwhile.
    ours = WebhookEvent.objects.filter(stripe_event_id__startswith="evt_handover_")
    wait_for(
        lambda: not ours.filter(processed_at__isnull=True).exists(),
        what="the successor drain, on the worker, applying the other four",
    )
    assert ours.filter(attempts=1).count() == 5  # each applied once


@pytest.mark.django_db(transaction=True)
def test_the_production_entry_point_serves_the_webhook_without_browser_middleware(settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    payload, signature = webhook_signed(webhook_event("evt_wsgi", "customer.created", "pi_wsgi"))
    stored = wsgi_call("/stripe/webhook", body=payload, headers={"Stripe-Signature": signature})
    assert stored["status"] == 200 and json.loads(stored["body"]) == {"received": "evt_wsgi", "duplicate": False}
    again = wsgi_call("/stripe/webhook", body=payload, headers={"Stripe-Signature": signature})
    assert json.loads(again["body"])["duplicate"] is True
    forged, forged_signature = webhook_signed(webhook_event("evt_wsgi_forged", "customer.created", "pi_x"), secret="whsec_forged")
    refused = wsgi_call("/stripe/webhook", body=forged, headers={"Stripe-Signature": forged_signature})
    assert refused["status"] == 400 and b"signature" in refused["body"].lower()
    assert wsgi_call("/stripe/webhook", method="GET")["status"] == 405
    too_large = wsgi_call("/stripe/webhook", body=b"{" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1))
    assert too_large["status"] == 413 and b"too large" in too_large["body"]
    # (filtered: localstripe may still deliver an earlier test's webhook to the live server)
    assert list(WebhookEvent.objects.filter(stripe_event_id__startswith="evt_wsgi").values_list("stripe_event_id", flat=True)) == ["evt_wsgi"]
    # No session cookie or browser headers on the webhook; every other page keeps them.
    assert "Set-Cookie" not in stored["headers"] and "X-Frame-Options" not in stored["headers"]
    assert wsgi_call("/", method="GET")["headers"].get("X-Frame-Options") == "DENY"


@pytest.mark.django_db(transaction=True)
def test_the_production_entry_point_answers_500_when_the_database_fails_and_recovers(settings, monkeypatch):
    from django.db import OperationalError, connection

    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    real_insert = webhooks._webhook_insert_prepared

    def insert_on_a_dead_connection(db_connection, params):
        db_connection.errors_occurred = True  # what wrap_database_errors records for a dead socket
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(webhooks, "_webhook_insert_prepared", insert_on_a_dead_connection)
    payload, signature = webhook_signed(webhook_event("evt_db_down", "customer.created", "pi_db"))
    failed = wsgi_call("/stripe/webhook", body=payload, headers={"Stripe-Signature": signature})
    assert failed["status"] == 500 and "again later" in json.loads(failed["body"])["error"]
    assert not WebhookEvent.objects.filter(stripe_event_id="evt_db_down").exists()
    # Stripe's next delivery of the same event is stored, once.
    monkeypatch.setattr(webhooks, "_webhook_insert_prepared", real_insert)
    stored = wsgi_call("/stripe/webhook", body=payload, headers={"Stripe-Signature": signature})
    assert stored["status"] == 200 and json.loads(stored["body"])["duplicate"] is False
    assert connection.errors_occurred is False
    assert WebhookEvent.objects.filter(stripe_event_id="evt_db_down").count() == 1


@pytest.mark.parametrize("apply", ["one by one", "by the drain"])
def test_events_about_a_settled_payment_need_no_read_from_stripe(client, localstripe, trial_organization, apply):
    """A late or duplicate event about an intent whose payment already succeeded changes
    nothing, so it is done without asking Stripe: here Stripe no longer even knows the intent
    (localstripe flushed), and the events are still processed, the payment untouched."""
    organization, admin = trial_organization
    payment = paid_payment(localstripe, organization, admin)
    assert payment.status == Payment.Status.SUCCEEDED
    localstripe.flush()
    kinds = ["payment_intent.payment_failed", "payment_intent.requires_action", "payment_intent.succeeded"]
    for number, kind in enumerate(kinds):
        payload, signature = webhook_signed(webhook_event(f"evt_settled_{number}", kind, payment.stripe_payment_intent_id))
        assert webhook_post(client, payload, signature).status_code == 200
    if apply == "one by one":
        for event in WebhookEvent.objects.order_by("pk"):
            webhooks.webhook_process(event_id=event.pk)
    else:
        report = webhooks.webhooks_drain(batch=50)
        assert (report.processed, report.failed) == (3, 0)
    assert WebhookEvent.objects.filter(processed_at__isnull=True).count() == 0
    assert set(WebhookEvent.objects.values_list("last_error", flat=True)) == {""}
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED
