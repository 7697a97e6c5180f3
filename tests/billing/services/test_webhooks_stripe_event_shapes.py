"""Every event Stripe can send, in Stripe's own shapes (tests/fixtures/stripe/), through the
real webhook URL: answered 2xx, stored once, and settled by the drain, never left retrying.

None of the events' ids exists in Stripe (localstripe here): an event Flywheel acts on ends
"not ours" (Stripe's 404 is permanent), any other type is stored and nothing more. Either way
the ledger is left as it was.
"""

import json
import time
import typing

import pytest
import stripe
from django.conf import settings
from django.urls import reverse

from billing.models import CreditNote, Dispute, Invoice, Payment, Subscription, WebhookEvent
from billing.services import webhooks
from experiments.models import Event

from ...conftest import mails_to
from ...fixtures.stripe import DISPUTE_STATUSES, TYPES, VARIANTS, every_event
from ..helpers import paid_organization

# The types Flywheel acts on (docs/stripe.md); every other type is stored only.
ACTED_ON = {
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.requires_action",
    "payment_intent.processing",
    "payment_intent.canceled",
    "setup_intent.succeeded",
    "charge.refunded",
    "charge.refund.updated",
    "refund.created",
    "refund.updated",
    "refund.failed",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
}
SETTLED = {"applied", "stored", "not_ours"}


def _signed(event: dict) -> tuple[bytes, str]:
    """The body and Stripe-Signature header Stripe sends: v1 is the HMAC-SHA256 of
    "<timestamp>.<body>" under the endpoint's signing secret."""
    payload = json.dumps(event).encode()
    timestamp = int(time.time())
    signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{payload.decode()}", settings.STRIPE_WEBHOOK_SECRET)
    return payload, f"t={timestamp},v1={signature}"


def _ledger() -> dict[str, list[dict]]:
    """Every row of the ledger and the analytics events, as they stand."""
    return {
        model.__name__: list(model.objects.order_by("pk").values())
        for model in (Subscription, Invoice, Payment, CreditNote, Dispute, Event)
    }


def test_the_fixture_set_holds_every_event_type_stripe_python_knows():
    """The committed set follows the installed SDK: after an upgrade, run
    scripts/stripe_fixtures.py again."""
    (literal,) = typing.get_args(stripe.params.WebhookEndpointCreateParams.__annotations__["enabled_events"])
    known = set(typing.get_args(literal)) - {"*"}
    statuses = {value for arm in typing.get_args(stripe.Dispute.__annotations__["status"]) for value in typing.get_args(arm)}
    assert set(TYPES) == known and len(known) == 275
    assert set(DISPUTE_STATUSES) == statuses
    assert {VARIANTS[f"dispute_{status}"]["object"]["status"] for status in statuses} == statuses
    assert ACTED_ON <= known
    assert max(len(kind) for kind in known) == 70  # longer than the 64 characters once kept


@pytest.mark.django_db(transaction=True)  # each delivery commits or fails alone, as in production
def test_every_event_type_is_answered_stored_once_and_settled_without_changing_the_ledger(client, localstripe, catalog):
    organization, admin, _ = paid_organization(localstripe)
    ledger, mails = _ledger(), len(mails_to(admin.email))
    events = every_event(created=int(time.time()))
    client.raise_request_exception = False  # a 500 is an answer to list, as Stripe would see it
    refused, not_duplicates = [], []
    for event in events:
        payload, signature = _signed(event)
        for delivery in ("first", "again"):
            answer = client.post(reverse("stripe_webhook"), data=payload, content_type="application/json", headers={"Stripe-Signature": signature})
            if not 200 <= answer.status_code < 300:
                refused.append((event["type"], delivery, answer.status_code, answer.content[:200]))
            elif delivery == "again" and answer.json().get("duplicate") is not True:
                not_duplicates.append((event["type"], answer.json()))
    assert refused == []
    assert not_duplicates == []
    # (Only these events: localstripe may still deliver an earlier test's webhooks meanwhile.)
    ids = [event["id"] for event in events]
    stored = {row.stripe_event_id: row for row in WebhookEvent.objects.filter(stripe_event_id__in=ids)}
    assert sorted(stored) == sorted(ids)  # each once
    assert [(event["type"], stored[event["id"]].type) for event in events if stored[event["id"]].type != event["type"]] == []

    webhooks.webhooks_drain(linger=0)

    unsettled = []
    for event in events:
        row = WebhookEvent.objects.get(stripe_event_id=event["id"])
        expected = "not_ours" if event["type"] in ACTED_ON else "stored"
        if row.outcome != expected or row.processed_at is None or (expected == "not_ours" and not row.outcome_reason):
            unsettled.append((event["type"], row.outcome, row.outcome_reason, row.attempts, row.last_error[:300]))
    assert unsettled == []
    assert _ledger() == ledger
    assert len(mails_to(admin.email)) == mails
