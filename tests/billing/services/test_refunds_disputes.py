"""Disputes through every status Stripe documents (stripe-python 16.1's Dispute.status, from
Stripe's API spec): `prevented` is final and costs nothing; a lost dispute is reopened by its
appeal, and a won appeal gives back to revenue what the loss took. Events are signed, posted to
the webhook view and applied from what was stored; refund and dispute events about a charge
nobody at Flywheel knows are "not ours"."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing import gateway
from billing.exceptions import WebhookNotOurs
from billing.models import Dispute, WebhookEvent
from billing.services import refunds
from experiments import events
from experiments.analysis import experiment_analyse
from experiments.models import Event, Exposure

from ...experiments.factories import experiment_with
from ...factories import OrganizationFactory, UserFactory
from ..helpers import paid_payment, webhook_post, webhook_signed


def _deliver(client, event):
    assert webhook_post(client, *webhook_signed(event)).status_code == 200
    stored = WebhookEvent.objects.get(stripe_event_id=event["id"])
    refunds.webhook_apply(event_type=stored.type, payload=stored.payload)


def _charge_of(localstripe, intent_id: str) -> str:
    """The id of the charge of a PaymentIntent, as Stripe (localstripe) has it."""
    import requests
    from django.conf import settings

    intent = requests.get(
        f"{localstripe.url}/v1/payment_intents/{intent_id}", auth=(settings.STRIPE_SECRET_KEY, ""), timeout=5
    ).json()
    charge = intent["latest_charge"]
    return charge["id"] if isinstance(charge, dict) else charge


class Disputes:
    """Stripe's dispute events about one charge, numbered as they are delivered."""

    def __init__(self, client, charge_id: str, dispute_id: str) -> None:
        self.client, self.charge_id, self.dispute_id, self.sent = client, charge_id, dispute_id, 0

    def deliver(self, kind: str, status: str, created: int) -> Dispute:
        self.sent += 1
        dispute = {
            "id": self.dispute_id, "object": "dispute", "charge": self.charge_id, "amount": 4075, "currency": "usd",
            "reason": "fraudulent", "status": status, "evidence_details": {"due_by": 1798761600}, "payment_intent": None,
        }
        _deliver(self.client, {"id": f"evt_{self.dispute_id}_{self.sent}", "object": "event", "type": kind,
                               "created": created, "data": {"object": dispute}})
        return Dispute.objects.get(stripe_dispute_id=self.dispute_id)


def _given_back(dispute_id: str) -> list[int]:
    return [
        event.properties["amount_minor"]
        for event in Event.objects.filter(name=events.PAYMENT_REFUNDED, properties__reference=dispute_id).order_by("pk")
    ]


def test_a_prevented_dispute_is_closed_for_good_and_costs_nothing(client, localstripe, trial_organization):
    organization, admin = trial_organization
    payment = paid_payment(localstripe, organization, admin)
    disputes = Disputes(client, _charge_of(localstripe, payment.stripe_payment_intent_id), "dp_prevented")

    record = disputes.deliver("charge.dispute.created", "prevented", 1_000)
    assert record.status == "prevented" and record.closed_at is not None
    record = disputes.deliver("charge.dispute.updated", "needs_response", 1_100)  # even a newer event
    assert record.status == "prevented" and record.closed_at is not None
    assert _given_back("dp_prevented") == [] and record.refund_recorded_minor == 0
    assert Event.objects.get(name="dispute_closed").properties["outcome"] == "prevented"
    assert not Dispute.objects.filter(closed_at__isnull=True).exists()  # off the staff's open list


def test_a_lost_dispute_won_on_appeal_gives_its_amount_back_to_revenue(client, localstripe, trial_organization, caplog):
    organization, admin = trial_organization
    payment = paid_payment(localstripe, organization, admin)
    experiment = experiment_with(("control", 1.0), ("treatment", 1.0), key="appeal", hash_attribute="organization_id")
    exposed_at = timezone.now() - timedelta(days=1)
    for key, exposed in (("control", organization), ("treatment", OrganizationFactory())):
        Exposure.objects.create(experiment=experiment, unit_id=str(exposed.public_id), variation_position=0 if key == "control" else 1,
                                variation_key=key, user=UserFactory(), organization=exposed, exposed_at=exposed_at)
    Event.objects.filter(organization=organization).update(occurred_at=exposed_at + timedelta(hours=1))

    def revenue() -> int:
        metrics = {metric.key: {v.variation_key: v.total for v in metric.variants} for metric in experiment_analyse(experiment=experiment).metrics}
        return metrics["revenue"]["control"]

    assert revenue() == 4075
    disputes = Disputes(client, _charge_of(localstripe, payment.stripe_payment_intent_id), "dp_appeal")
    disputes.deliver("charge.dispute.created", "needs_response", 1_000)
    lost = disputes.deliver("charge.dispute.closed", "lost", 1_100)
    assert lost.closed_at is not None and _given_back("dp_appeal") == [4075] and revenue() == 0

    appealed = disputes.deliver("charge.dispute.updated", "appeal_needs_response", 1_200)
    assert (appealed.status, appealed.closed_at) == ("appeal_needs_response", None)  # open again: staff answer it
    assert "was lost and is appealed" in caplog.text
    disputes.deliver("charge.dispute.updated", "appeal_under_review", 1_300)
    disputes.deliver("charge.dispute.updated", "lost", 1_150)  # stale: older than the appeal
    assert Dispute.objects.get().status == "appeal_under_review"

    won = disputes.deliver("charge.dispute.closed", "won", 1_400)
    assert won.status == "won" and won.closed_at is not None and won.refund_recorded_minor == 0
    assert _given_back("dp_appeal") == [4075, -4075] and revenue() == 4075
    assert "won on appeal, the 4075 USD lost is back" in caplog.text
    assert [e.properties["outcome"] for e in Event.objects.filter(name="dispute_closed").order_by("pk")] == ["lost", "won"]

    disputes.deliver("charge.dispute.closed", "won", 1_400)  # a redelivery
    disputes.deliver("charge.dispute.updated", "appeal_under_review", 1_500)  # a won dispute never reopens
    assert Dispute.objects.get().status == "won"
    assert _given_back("dp_appeal") == [4075, -4075] and revenue() == 4075


def test_an_appeal_lost_again_takes_the_money_once(client, localstripe, trial_organization):
    organization, admin = trial_organization
    payment = paid_payment(localstripe, organization, admin)
    disputes = Disputes(client, _charge_of(localstripe, payment.stripe_payment_intent_id), "dp_lost_twice")
    disputes.deliver("charge.dispute.closed", "lost", 1_000)
    disputes.deliver("charge.dispute.updated", "appeal_under_review", 1_100)
    record = disputes.deliver("charge.dispute.closed", "lost", 1_200)
    assert record.status == "lost" and record.closed_at is not None
    assert _given_back("dp_lost_twice") == [4075]


def _dispute_event(event_id: str, charge_id: str) -> dict:
    return {"id": event_id, "object": "event", "type": "charge.dispute.created", "created": 1_000, "data": {"object": {
        "id": f"dp_{event_id}", "object": "dispute", "charge": charge_id, "amount": 100, "currency": "usd",
        "status": "needs_response", "reason": "general"}}}


def test_refund_and_dispute_events_about_a_charge_nobody_knows_are_not_ours(client, localstripe, trial_organization):
    organization, admin = trial_organization
    payment = paid_payment(localstripe, organization, admin)
    # A charge Stripe does not have in this account (a Connect account's, deleted test data).
    for event in (
        {"id": "evt_refund_gone", "object": "event", "type": "charge.refunded", "data": {"object": {"id": "ch_gone", "object": "charge"}}},
        _dispute_event("evt_dispute_gone", "ch_gone"),
    ):
        assert webhook_post(client, *webhook_signed(event)).status_code == 200
        stored = WebhookEvent.objects.get(stripe_event_id=event["id"])
        with pytest.raises(WebhookNotOurs, match="ch_gone, which Stripe does not have in this account"):
            refunds.webhook_apply(event_type=stored.type, payload=stored.payload)
    # A charge Stripe has, whose PaymentIntent is no payment of Flywheel's.
    stranger = gateway.payment_intent_charge(
        amount=100, currency="usd", customer_id=organization.billing_account.stripe_customer_id,
        payment_method_id=payment.payment_method_id, metadata={}, idempotency_key="not-flywheel",
    )
    stranger_charge = _charge_of(localstripe, stranger.id)
    for event in (
        {"id": "evt_refund_stranger", "object": "event", "type": "charge.refunded",
         "data": {"object": {"id": stranger_charge, "object": "charge"}}},
        _dispute_event("evt_dispute_stranger", stranger_charge),
    ):
        assert webhook_post(client, *webhook_signed(event)).status_code == 200
        stored = WebhookEvent.objects.get(stripe_event_id=event["id"])
        with pytest.raises(WebhookNotOurs, match=f"{stranger_charge}, which no Flywheel payment knows"):
            refunds.webhook_apply(event_type=stored.type, payload=stored.payload)
    assert not Dispute.objects.exists()
