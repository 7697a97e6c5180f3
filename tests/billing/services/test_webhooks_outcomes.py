"""Stripe webhooks as Stripe really sends them: every event stored once, then applied, stored
(nothing to do), not ours (never retried) or dead (given up, replayed by staff)."""

import importlib
import json
import logging
import time
from io import StringIO

import pytest
import stripe
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from billing.exceptions import WebhookNotOurs
from billing.models import Payment, WebhookEvent
from billing.services import refunds, webhooks

from ...factories import UserFactory
from ..helpers import charged_but_unrecorded, wsgi_call

Outcome = WebhookEvent.Outcome
# The longest event types stripe-python 16 knows (68 and 70 characters).
LONG_TYPES = (
    "financial_connections.account.supported_payment_method_types_updated",
    "financial_connections.authorization.expected_deactivation_date_updated",
)
UNREACHABLE = "http://127.0.0.1:9"  # nothing listens there: Stripe cannot be reached


def _signed(event: dict, *, at: float | None = None) -> tuple[bytes, str]:
    """The body as json.dumps writes it (a NUL or a lone surrogate becomes \\u0000 or \\ud83d),
    signed as Stripe signs, at `at` (now by default)."""
    payload = json.dumps(event).encode()
    timestamp = int(time.time() if at is None else at)
    signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{payload.decode()}", settings.STRIPE_WEBHOOK_SECRET)
    return payload, f"t={timestamp},v1={signature}"


def _event(event_id: str, kind: str, object_id: str, **extra) -> dict:
    obj = {"id": object_id, "object": kind.split(".")[0]}
    return {"id": event_id, "object": "event", "type": kind, "livemode": False, "data": {"object": obj}, **extra}


def _post(client, event: dict, *, at: float | None = None):
    payload, signature = _signed(event, at=at)
    return client.post(reverse("stripe_webhook"), data=payload, content_type="application/json", headers={"Stripe-Signature": signature})


def _deliver_twice(client, event: dict) -> WebhookEvent:
    first, second = _post(client, event), _post(client, event)
    assert first.status_code == second.status_code == 200
    assert first.json() == {"received": event["id"], "duplicate": False}
    assert second.json() == {"received": event["id"], "duplicate": True}
    assert WebhookEvent.objects.filter(stripe_event_id=event["id"]).count() == 1
    return WebhookEvent.objects.get(stripe_event_id=event["id"])


def _apply(how: str) -> None:
    if how == "by the drain":
        webhooks.webhooks_drain(linger=0)
    else:
        for event in WebhookEvent.objects.filter(outcome=Outcome.PENDING).order_by("pk"):
            webhooks.webhook_process(event_id=event.pk)


# Intake ------------------------------------------------------------------------------------


def test_the_longest_real_event_types_and_long_ids_are_stored_whole(client, db):
    long_id = "evt_" + "x" * 251  # Stripe: ids up to 255 characters
    events = [_event(f"evt_long_{number}", kind, "fca_1") for number, kind in enumerate(LONG_TYPES)]
    events.append(_event(long_id, "customer.created", "cus_1"))
    stored = [_deliver_twice(client, event) for event in events]
    assert [event.type for event in stored] == [*LONG_TYPES, "customer.created"]
    assert stored[-1].stripe_event_id == long_id
    report = webhooks.webhooks_drain(linger=0)
    assert (report.processed, report.failed) == (3, 0)
    assert set(WebhookEvent.objects.values_list("outcome", flat=True)) == {Outcome.STORED}
    assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()
    too_long = _post(client, _event("evt_" + "x" * 252, "customer.created", "cus_1"))
    assert too_long.status_code == 400 and "no usable id" in too_long.json()["error"]


@time_machine.travel("2026-12-01 09:00Z", tick=False)
def test_a_webhook_signed_in_the_future_is_refused_with_its_reason(client, db):
    refused = _post(client, _event("evt_future", "customer.created", "cus_1"), at=time.time() + 3600)
    assert refused.status_code == 400
    assert refused.json()["error"] == (
        "Webhook refused: it is signed 3600 seconds in the future, more than the 300 seconds allowed (check this server's clock)."
    )
    assert not WebhookEvent.objects.exists()
    # A clock a minute ahead is within the tolerance, as a minute behind is.
    assert _post(client, _event("evt_ahead", "customer.created", "cus_1"), at=time.time() + 60).status_code == 200
    assert _post(client, _event("evt_behind", "customer.created", "cus_1"), at=time.time() - 60).status_code == 200
    past = _post(client, _event("evt_past", "customer.created", "cus_1"), at=time.time() - 3600)
    assert past.status_code == 400 and "tolerance" in past.json()["error"]


@pytest.mark.parametrize("bad", ["\x00", "\ud83d"], ids=["NUL", "lone surrogate"])
def test_a_payload_jsonb_refuses_is_stored_and_applied(client, localstripe, trial_organization, bad):
    """PostgreSQL's jsonb refuses \\u0000 and a lone surrogate escape: such an event used to
    answer 500 for ever. It is stored (the body as sent beside a payload with U+FFFD in place
    of the bad character, every other field kept) and applied like any other."""
    organization, admin = trial_organization
    payment, intent_id = charged_but_unrecorded(localstripe, organization, admin)
    event = _event("evt_bad_text", "payment_intent.succeeded", intent_id)
    event["data"]["object"].update(
        description=f"Tracker {bad} renewal", metadata={"flywheel_payment": str(payment.public_id), f"k{bad}": "v"}, amount=4075
    )
    stored = _deliver_twice(client, event)
    body = json.dumps(event)
    assert "\\u0000" in body or "\\ud83d" in body
    assert stored.raw_body == body  # exactly what Stripe sent
    obj = stored.payload["data"]["object"]
    assert obj["description"] == "Tracker \ufffd renewal" and obj["metadata"] == {"flywheel_payment": str(payment.public_id), "k\ufffd": "v"}
    assert (obj["id"], obj["amount"], stored.payload["type"]) == (intent_id, 4075, "payment_intent.succeeded")

    webhooks.webhooks_drain(linger=0)
    stored.refresh_from_db()
    assert stored.outcome == Outcome.APPLIED and stored.processed_at is not None
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_the_production_entry_point_stores_a_nul_payload_once(settings):
    """Production serves the webhook through config.wsgi's bare endpoint, without middleware:
    there a NUL payload used to reach the jsonb insert and answer 500."""
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    event = _event("evt_wsgi_nul", "customer.updated", "cus_1")
    event["data"]["object"]["name"] = "Ada\x00"
    payload, signature = _signed(event)
    answers = [wsgi_call("/stripe/webhook", body=payload, headers={"Stripe-Signature": signature}) for _ in range(2)]
    assert [answer["status"] for answer in answers] == [200, 200]
    assert [json.loads(answer["body"])["duplicate"] for answer in answers] == [False, True]
    stored = WebhookEvent.objects.get(stripe_event_id="evt_wsgi_nul")
    assert stored.payload["data"]["object"]["name"] == "Ada\ufffd" and stored.raw_body == payload.decode()


def test_an_ordinary_payload_keeps_no_raw_copy_and_a_valid_emoji_pair_is_kept(client, db):
    plain = _deliver_twice(client, _event("evt_plain", "customer.created", "cus_1"))
    emoji = _event("evt_emoji", "customer.updated", "cus_1")
    emoji["data"]["object"]["name"] = "Ada \U0001f600"  # json.dumps writes the pair \ud83d\ude00
    kept = _deliver_twice(client, emoji)
    assert plain.raw_body == kept.raw_body == ""
    assert kept.payload["data"]["object"]["name"] == "Ada \U0001f600"


# Not ours ----------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["by the drain", "one by one"])
def test_a_connect_event_is_not_ours_without_asking_stripe(client, db, settings, how):
    settings.STRIPE_API_BASE = UNREACHABLE  # asking Stripe would fail and be retried
    stored = [
        _deliver_twice(client, _event("evt_connect_pi", "payment_intent.succeeded", "pi_of_theirs", account="acct_1Connect")),
        _deliver_twice(client, _event("evt_connect_refund", "charge.refunded", "ch_of_theirs", account="acct_1Connect")),
    ]
    _apply(how)
    for event in stored:
        event.refresh_from_db()
        assert event.outcome == Outcome.NOT_OURS and event.processed_at is not None and event.attempts == 1
        assert event.outcome_reason == (
            "A Connect event from account acct_1Connect: Flywheel is not a Connect platform, "
            "and that account's objects cannot be read with Flywheel's key."
        )
    assert webhooks.webhooks_claim(limit=10) == []


def test_a_live_mode_event_is_not_ours_for_a_test_mode_key(client, db, settings):
    settings.STRIPE_API_BASE = UNREACHABLE
    event = _deliver_twice(client, _event("evt_live", "payment_intent.succeeded", "pi_live", livemode=True))
    report = webhooks.webhooks_drain(linger=0)
    assert (report.processed, report.not_ours, report.failed) == (1, 1, 0)
    event.refresh_from_db()
    assert event.outcome == Outcome.NOT_OURS
    assert event.outcome_reason == "A live-mode event, but Flywheel uses a test-mode key: its objects are not in this account."


@pytest.mark.parametrize("how", ["by the drain", "one by one"])
def test_events_about_objects_stripe_cannot_find_are_not_ours_at_once(client, localstripe, db, how):
    """A 404 from Stripe (deleted test data, a dashboard test event) is permanent: the event is
    not ours after one attempt, never retried."""
    intent = _deliver_twice(client, _event("evt_404_pi", "payment_intent.succeeded", "pi_doesnotexist"))
    charge = _deliver_twice(client, _event("evt_404_ch", "charge.refunded", "ch_doesnotexist"))
    _apply(how)
    for event in (intent, charge):
        event.refresh_from_db()
        assert event.outcome == Outcome.NOT_OURS and event.attempts == 1 and event.processed_at is not None
    assert intent.outcome_reason == "payment event for PaymentIntent pi_doesnotexist, which Stripe does not have in this account"
    assert charge.outcome_reason == "refund event for charge ch_doesnotexist, which Stripe does not have in this account"
    assert webhooks.webhooks_claim(limit=10) == []
    with time_machine.travel(timezone.now() + timezone.timedelta(days=1)):
        assert webhooks.webhooks_claim(limit=10) == [] and webhooks.webhooks_resume_unprocessed() == 0


def test_a_handler_that_says_not_ours_ends_the_event_with_its_reason(client, db, monkeypatch):
    """WebhookNotOurs raised anywhere under webhook_process (the refund and dispute handlers'
    "no Flywheel payment knows this") makes the event not ours at once. The handler is replaced
    here because the refund path's own raise belongs to another change."""

    def not_ours(*, event_type, payload):
        raise WebhookNotOurs("A refund of charge ch_x, which no Flywheel payment knows.")

    monkeypatch.setattr(refunds, "webhook_apply", not_ours)
    event = _deliver_twice(client, _event("evt_not_ours", "charge.refunded", "ch_x"))
    report = webhooks.webhooks_drain(linger=0)
    assert (report.processed, report.not_ours, report.failed) == (1, 1, 0)
    event.refresh_from_db()
    assert event.outcome == Outcome.NOT_OURS and event.outcome_reason == "A refund of charge ch_x, which no Flywheel payment knows."


# Dead, and replayed by staff -------------------------------------------------------------


def _drain_through_backoffs(times: int) -> list[webhooks.DrainReport]:
    """Drain `times` times, each just after the previous failure's backoff."""
    reports = []
    moment = timezone.now()
    for _ in range(times):
        with time_machine.travel(moment, tick=False):
            reports.append(webhooks.webhooks_drain(linger=0))
        waiting = WebhookEvent.objects.filter(outcome=Outcome.PENDING).exclude(claimed_until=None)
        moment = max([event.claimed_until for event in waiting] + [moment]) + timezone.timedelta(seconds=1)
    return reports


def test_an_outage_ends_dead_after_the_last_attempt_and_staff_replay_it_from_the_admin(
    client, localstripe, trial_organization, settings, caplog, django_capture_on_commit_callbacks
):
    organization, admin = trial_organization
    payment, intent_id = charged_but_unrecorded(localstripe, organization, admin)
    intent = _deliver_twice(client, _event("evt_outage_pi", "payment_intent.succeeded", intent_id))
    charge = _deliver_twice(client, _event("evt_outage_ch", "charge.refunded", "ch_outage"))
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    settings.STRIPE_API_BASE = UNREACHABLE

    with caplog.at_level(logging.ERROR, logger="billing.services"):
        reports = _drain_through_backoffs(4)
    assert [(report.failed, report.dead) for report in reports] == [(2, 0), (2, 0), (2, 2), (0, 0)]
    for event in (intent, charge):
        event.refresh_from_db()
        assert event.outcome == Outcome.DEAD and event.attempts == 3 and event.processed_at is None
        assert event.outcome_reason.startswith("Gave up after 3 attempts: Our payment processor did not answer.")
    alerts = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert sorted(alerts) == [
        f"stripe webhook {stripe_id} dead after 3 attempts: Our payment processor did not answer. "
        "Nothing was charged twice: try again in a minute."
        for stripe_id in ("evt_outage_ch", "evt_outage_pi")
    ]
    # Dead is never claimed again, however long it waits.
    with time_machine.travel(timezone.now() + timezone.timedelta(days=2)):
        assert webhooks.webhooks_claim(limit=10) == [] and webhooks.webhooks_resume_unprocessed() == 0
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PROCESSING

    # Staff see it on the staff home and in the admin, filtered and searched.
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    home = client.get("/staff/").content.decode()
    assert "?outcome__exact=dead" in home and "dead events" in home
    changelist = reverse("admin:billing_webhookevent_changelist")
    dead = client.get(changelist, {"outcome__exact": "dead"}).content.decode()
    assert "evt_outage_pi" in dead and "evt_outage_ch" in dead and "Gave up after 3 attempts" in dead
    assert "evt_outage_pi" not in client.get(changelist, {"outcome__exact": "applied"}).content.decode()
    found = client.get(changelist, {"q": intent_id}).content.decode()
    assert "evt_outage_pi" in found and "evt_outage_ch" not in found
    detail = client.get(reverse("admin:billing_webhookevent_change", args=[intent.pk])).content.decode()
    assert "Gave up after 3 attempts" in detail and "Received at" in detail

    # Stripe is back: staff replay the dead events.
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{settings.LOCALSTRIPE_PORT}"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        answer = client.post(changelist, {"action": "replay", "_selected_action": [intent.pk, charge.pk]}, follow=True)
    assert "2 events put back to be applied; the worker applies them now." in answer.content.decode()
    assert [callback.__name__ for callback in callbacks] == ["webhooks_drain_nudge"]
    for event in (intent, charge):
        event.refresh_from_db()
        assert (event.outcome, event.attempts, event.outcome_reason, event.processed_at) == (Outcome.PENDING, 0, "", None)
    webhooks.webhooks_drain(linger=0)
    intent.refresh_from_db()
    charge.refresh_from_db()
    assert intent.outcome == Outcome.APPLIED
    assert charge.outcome == Outcome.NOT_OURS  # localstripe has no charge ch_outage: a 404
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED


def test_staff_without_the_permission_cannot_replay(client, db):
    event = _deliver_twice(client, _event("evt_no_permission", "customer.created", "cus_1"))
    client.force_login(UserFactory(is_staff=True))
    answer = client.post(reverse("admin:billing_webhookevent_changelist"), {"action": "replay", "_selected_action": [event.pk]})
    assert answer.status_code == 403
    event.refresh_from_db()
    assert event.outcome == Outcome.PENDING and event.attempts == 0


def test_stripe_replay_takes_events_by_outcome_and_prints_each_new_outcome(client, localstripe, db, settings):
    dead = _deliver_twice(client, _event("evt_replay_dead", "customer.created", "cus_1"))
    not_ours = _deliver_twice(client, _event("evt_replay_404", "payment_intent.succeeded", "pi_doesnotexist"))
    applied = _deliver_twice(client, _event("evt_replay_other", "customer.updated", "cus_1"))
    WebhookEvent.objects.filter(pk=dead.pk).update(outcome=Outcome.DEAD, attempts=12, outcome_reason="Gave up after 12 attempts: x")
    webhooks.webhooks_drain(linger=0)
    not_ours.refresh_from_db()
    assert not_ours.outcome == Outcome.NOT_OURS

    out, err = StringIO(), StringIO()
    call_command("stripe_replay", "--outcome", "dead", "--outcome", "not_ours", stdout=out, stderr=err)
    lines = out.getvalue().splitlines()
    assert lines[0] == "replayed evt_replay_dead customer.created: stored"
    assert lines[1].startswith("replayed evt_replay_404 payment_intent.succeeded: not ours (payment event for PaymentIntent pi_")
    assert lines[2] == "2 of 2 events replayed."
    dead.refresh_from_db()
    assert (dead.outcome, dead.attempts, dead.outcome_reason) == (Outcome.STORED, 1, "")
    applied.refresh_from_db()
    assert applied.attempts == 1  # not selected, not replayed


def test_existing_events_get_their_outcome_from_the_migration(db):
    """Rows stored before outcomes existed: processed ones become applied (a type the release
    before handled) or stored; unprocessed ones stay pending."""
    from django.apps import apps

    migration = importlib.import_module("billing.migrations.0014_webhook_outcomes")
    now = timezone.now()
    for stripe_id, kind, processed_at in (
        ("evt_old_pi", "payment_intent.succeeded", now),
        ("evt_old_dispute", "charge.dispute.closed", now),
        ("evt_old_customer", "customer.created", now),
        ("evt_old_waiting", "payment_intent.succeeded", None),
    ):
        WebhookEvent.objects.create(stripe_event_id=stripe_id, type=kind, payload={}, processed_at=processed_at)
    migration.outcomes_from_processed_at(apps, None)
    assert dict(WebhookEvent.objects.values_list("stripe_event_id", "outcome")) == {
        "evt_old_pi": Outcome.APPLIED,
        "evt_old_dispute": Outcome.APPLIED,
        "evt_old_customer": Outcome.STORED,
        "evt_old_waiting": Outcome.PENDING,
    }
