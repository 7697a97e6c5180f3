"""setup_intent.succeeded: a card the customer confirmed (3-D Secure included) is on file even
when the browser closed before the card page heard back; the page and the webhook agree in
either order, and a card confirmed earlier never replaces a newer one. Events are signed,
posted to the webhook view and applied by the drain's handler; the SetupIntent is read back
from localstripe."""

import time

import pytest
import requests
from django.conf import settings

from billing.exceptions import WebhookNotOurs
from billing.models import BillingAccount, WebhookEvent
from billing.services import billing_account, webhooks

from ..helpers import OK_CARD, THREE_D_SECURE, webhook_post, webhook_signed


def _confirmed_in_the_browser(localstripe, organization, admin, number):
    """The admin enters the card (and passes 3-D Secure); the page never hears back."""
    intent = billing_account.card_setup_start(organization=organization, actor=admin)
    assert localstripe.enter_card(intent.client_secret, number)["status"] == "succeeded"
    return intent


def _as_stripe_has_it(localstripe, setup_intent_id: str) -> dict:
    response = requests.get(
        f"{localstripe.url}/v1/setup_intents/{setup_intent_id}", auth=(settings.STRIPE_SECRET_KEY, ""), timeout=5
    )
    response.raise_for_status()
    return response.json()


def _event(event_id: str, setup_intent: dict) -> dict:
    return {"id": event_id, "object": "event", "type": "setup_intent.succeeded", "created": int(time.time()),
            "data": {"object": setup_intent}}


def _webhook(client, event: dict) -> None:
    """Stripe's event, signed, through the view, then applied by the drain's handler."""
    assert webhook_post(client, *webhook_signed(event)).status_code == 200
    webhooks.webhook_process(event_id=WebhookEvent.objects.get(stripe_event_id=event["id"]).pk)


def _card_on_file(organization) -> tuple[str, str]:
    account = BillingAccount.objects.get(organization=organization)
    return account.card_last4, account.card_setup_intent_id


def test_a_card_confirmed_with_3d_secure_is_on_file_though_the_browser_closed(client, localstripe, trial_organization):
    organization, admin = trial_organization
    intent = _confirmed_in_the_browser(localstripe, organization, admin, THREE_D_SECURE)
    assert not BillingAccount.objects.get(organization=organization).has_card  # the page never heard back

    # Real Stripe may send the customer expanded; the handler reads the intent back anyway.
    shape = _as_stripe_has_it(localstripe, intent.id)
    shape["customer"] = {"id": shape["customer"], "object": "customer"}
    _webhook(client, _event("evt_seti_closed", shape))
    assert _card_on_file(organization) == ("3155", intent.id)
    updated_at = BillingAccount.objects.get(organization=organization).updated_at

    billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=intent.id)  # the page, late
    webhooks.webhook_process(event_id=WebhookEvent.objects.get(stripe_event_id="evt_seti_closed").pk)
    WebhookEvent.objects.update(processed_at=None)
    webhooks.webhook_process(event_id=WebhookEvent.objects.get(stripe_event_id="evt_seti_closed").pk)  # a replay
    assert _card_on_file(organization) == ("3155", intent.id)
    assert BillingAccount.objects.get(organization=organization).updated_at == updated_at  # nothing written again


def test_the_webhook_after_the_card_page_changes_nothing(client, localstripe, trial_organization):
    organization, admin = trial_organization
    intent = _confirmed_in_the_browser(localstripe, organization, admin, OK_CARD)
    billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=intent.id)
    updated_at = BillingAccount.objects.get(organization=organization).updated_at
    _webhook(client, _event("evt_seti_after_page", _as_stripe_has_it(localstripe, intent.id)))
    assert _card_on_file(organization) == ("4242", intent.id)
    assert BillingAccount.objects.get(organization=organization).updated_at == updated_at


def test_a_card_confirmed_earlier_never_replaces_a_newer_one(client, localstripe, trial_organization):
    organization, admin = trial_organization
    older = billing_account.card_setup_start(organization=organization, actor=admin)
    time.sleep(1.05)  # Stripe's `created` counts seconds: the second intent is created a second later
    newer = _confirmed_in_the_browser(localstripe, organization, admin, THREE_D_SECURE)
    billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=newer.id)
    assert localstripe.enter_card(older.client_secret, OK_CARD)["status"] == "succeeded"

    _webhook(client, _event("evt_seti_older", _as_stripe_has_it(localstripe, older.id)))  # late
    assert _card_on_file(organization) == ("3155", newer.id)
    billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=older.id)  # a stale tab
    assert _card_on_file(organization) == ("3155", newer.id)


def test_a_setup_intent_of_a_customer_nobody_knows_is_not_ours(client, localstripe, trial_organization):
    organization, admin = trial_organization
    intent = _confirmed_in_the_browser(localstripe, organization, admin, OK_CARD)
    shape = _as_stripe_has_it(localstripe, intent.id)
    for event_id, customer, message in (
        ("evt_seti_stranger", "cus_nobody", "customer cus_nobody, which no Flywheel organization has"),
        ("evt_seti_no_customer", None, r"customer \(none\), which no Flywheel organization has"),
    ):
        event = _event(event_id, {**shape, "customer": customer})
        assert webhook_post(client, *webhook_signed(event)).status_code == 200
        stored = WebhookEvent.objects.get(stripe_event_id=event_id)
        with pytest.raises(WebhookNotOurs, match=message):
            billing_account.setup_intent_webhook_apply(event_type=stored.type, payload=stored.payload)
    # Our customer, but a SetupIntent Stripe does not have (deleted test data, another account).
    event = _event("evt_seti_gone", {**shape, "id": "seti_gone"})
    assert webhook_post(client, *webhook_signed(event)).status_code == 200
    stored = WebhookEvent.objects.get(stripe_event_id="evt_seti_gone")
    with pytest.raises(WebhookNotOurs, match="seti_gone, which Stripe does not have"):
        billing_account.setup_intent_webhook_apply(event_type=stored.type, payload=stored.payload)
    assert not BillingAccount.objects.get(organization=organization).has_card
