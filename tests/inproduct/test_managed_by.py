"""A product a partner manages (Subscription.billed_to): where the kit would have someone buy
(a seat-limit prompt, a trial ending, a denied feature's offer), everyone is offered "Ask
<partner>" instead, a link to Flywheel's ask page; other products are unchanged
(docs/partners.md, "The kit's managed message")."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.utils import timezone

from billing.models import Subscription
from inproduct.messages import feature_request, message_due

from ..factories import OrganizationFactory
from .helpers import admin_membership, caller_for, headers, member_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def managed(organization, no_survey):
    """Acme's Tracker Standard, a year bought by Northwind Partners, all 2 seats taken (its
    admin and Carol)."""
    organization_, admin = organization
    organization_.name = "Acme"
    organization_.save()
    northwind = OrganizationFactory(name="Northwind Partners")
    now = timezone.now()
    subscription = organization_.subscriptions.get()
    subscription.status = Subscription.Status.ACTIVE
    subscription.interval = Subscription.Interval.YEAR
    subscription.trial_ends_at = None
    subscription.current_period_start = now - timedelta(days=10)
    subscription.current_period_end = now + timedelta(days=355)
    subscription.seat_limit = 2
    subscription.billed_to = northwind
    subscription.billed_to_discount_bp = 1500
    subscription.save()
    carol = member_of(organization_, email="carol@acme.example", name=("Carol", "Jones"))
    return organization_, admin_membership(organization_, admin), carol, northwind


def _ask_link(action: dict, organization) -> dict:
    assert action["kind"] == "link"
    assert action["label"] == "Ask Northwind Partners"
    parts = urlsplit(action["url"])
    assert action["url"].startswith(f"{settings.SITE_URL}/app/partner/ask/")
    return {key: values[0] for key, values in parse_qs(parts.query).items()} | {"_path": parts.path}


def test_a_member_at_the_seat_limit_is_offered_to_ask_the_partner_not_the_admins(managed):
    organization, _admin, carol, northwind = managed
    message = message_due(caller=caller_for(carol)).as_json()
    assert message["id"] == "prompt:seat_limit_reached.tracker.2"
    assert "Tracker is managed by Northwind Partners" in message["body"]
    assert "ask them for more seats" in message["body"]
    assert "Ask an admin" not in json.dumps(message)
    assert message["admins"] == []
    [action] = message["actions"]
    query = _ask_link(action, organization)
    assert query == {"_path": "/app/partner/ask/", "product": "tracker", "kind": "seats", "organization": str(organization.public_id)}


def test_an_admin_at_the_seat_limit_asks_the_partner_instead_of_adding_seats(managed):
    organization, admin, _carol, _northwind = managed
    message = message_due(caller=caller_for(admin)).as_json()
    assert message["id"] == "prompt:seat_limit_reached.tracker.2"
    [action] = message["actions"]
    _ask_link(action, organization)
    assert "Add seats" not in json.dumps(message)
    assert "USD" not in message["body"]  # no list price: the partner sets its own


def test_a_denied_feature_of_a_managed_product_asks_the_partner_without_a_price(managed):
    organization, admin, carol, _northwind = managed
    for caller in (caller_for(admin), caller_for(carol)):
        entitled, message = feature_request(caller=caller, feature="github-sync")
        assert entitled is False
        body = message.as_json()
        assert "Tracker is managed by Northwind Partners: ask them to add it for Acme." in body["body"]
        assert body.get("offer") is None
        [action] = body["actions"]
        query = _ask_link(action, organization)
        assert query["kind"] == "addon" and query["product"] == "tracker"


def test_the_kits_http_answer_carries_the_ask_link(client, managed):
    _organization, _admin, carol, _northwind = managed
    caller = caller_for(carol)
    response = client.get("/kit/v1/message", **headers(caller))
    assert response.status_code == 200, response.content
    message = response.json()["message"]
    assert message["actions"][0]["label"] == "Ask Northwind Partners"


def test_once_the_customer_pays_itself_the_prompt_is_billings_own_again(managed):
    organization, admin, carol, _northwind = managed
    Subscription.objects.filter(organization=organization).update(billed_to=None, billed_to_discount_bp=0)
    member_message = message_due(caller=caller_for(carol)).as_json()
    assert member_message["actions"] == [{"kind": "ask_admins", "label": "Ask an admin"}]
    admin_message = message_due(caller=caller_for(admin)).as_json()
    assert "Northwind" not in json.dumps(admin_message)
    assert admin_message["actions"][0]["label"] == "Add seats"
