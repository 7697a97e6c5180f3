"""A denied feature offers what grants it (POST /kit/v1/feature, inproduct.messages.feature_request):
to an admin the cheapest offer with its exact price, a button to Flywheel's page that buys it and
the add-on's trial; to a member, asking the admins. Outside the contact budget; shown and
clicked are analytics events."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone

from billing.models import AddOnSubscription, Subscription
from experiments.models import Event
from inproduct.models import AdminAsk, KitSession

from ..billing.helpers import addon_on
from .helpers import admin_membership, caller_for, headers, member_of

pytestmark = pytest.mark.django_db


def _post(client, caller, path, body):
    return client.post(f"/kit/v1/{path}", json.dumps(body), content_type="application/json", **headers(caller))


def _feature(client, caller, feature="github-sync", status=200):
    response = _post(client, caller, "feature", {"feature": feature})
    assert response.status_code == status, response.content
    return response.json()


@pytest.fixture
def trial(organization, no_survey):
    """Acme on a Tracker Standard trial: its admin and a member (Carol)."""
    organization_, admin = organization
    organization_.name = "Acme"
    organization_.save()
    admin.first_name, admin.last_name = "Ada", "Lovelace"
    admin.save()
    carol = member_of(organization_, email="carol@acme.example", name=("Carol", "Jones"))
    return organization_, admin_membership(organization_, admin), carol


def test_an_admin_is_offered_the_addon_with_its_price_and_trial(client, trial):
    organization, admin, _ = trial
    subscription = organization.subscriptions.get()
    answer = _feature(client, caller_for(admin))
    seats = subscription.seat_limit
    url = (
        f"{settings.SITE_URL}/billing/addons/{subscription.public_id}/github/?organization={organization.public_id}"
    )
    assert answer == {
        "entitled": False,
        "message": {
            "id": "feature:github-sync:addon:github",
            "type": "feature_offer",
            "severity": "info",
            "title": "Add GitHub integration to Tracker",
            "body": "Link commits, branches and pull requests to Tracker cards. Tracker Standard does not include it.",
            "dismissible": True,
            "actions": [
                {"kind": "link", "label": "Add GitHub integration", "url": url},
                {"kind": "trial", "label": "Try free for 14 days", "addon": "github"},
            ],
            "admins": [],
            "offer": {
                "kind": "addon",
                "code": "github",
                "name": "GitHub integration",
                "amount_minor": 150 * seats,
                "currency": "USD",
                "price_text": f"USD {150 * seats / 100:.2f} per month ({seats} seats at USD 1.50 per seat per month): "
                "the full monthly price, as Tracker has no paid period yet",
                "trial_days": 14,
            },
        },
    }


def test_an_entitled_feature_needs_no_message(client, trial):
    organization, admin, _ = trial
    assert _feature(client, caller_for(admin), "permissions") == {"entitled": True, "message": None}
    addon_on(organization.subscriptions.get(), "github", status=AddOnSubscription.Status.TRIALING)
    assert _feature(client, caller_for(admin)) == {"entitled": True, "message": None}


def test_an_edition_offer_moves_to_it(client, trial):
    organization, admin, _ = trial
    message = _feature(client, caller_for(admin), "sso")["message"]
    assert message["id"] == "feature:sso:edition:premium"
    assert message["title"] == "Move to Tracker Premium"
    assert message["body"] == "Tracker Standard does not include sso; Tracker Premium does."
    [action] = message["actions"]
    assert action["label"] == "Move to Tracker Premium"
    assert action["url"].startswith(f"{settings.SITE_URL}/billing/checkout/{organization.subscriptions.get().public_id}/")


def test_a_member_is_told_to_ask_the_admins_without_the_price(client, trial):
    _, _, carol = trial
    message = _feature(client, caller_for(carol))["message"]
    assert message["actions"] == [{"kind": "ask_admins", "label": "Ask an admin"}]
    assert message["admins"] == ["Ada Lovelace"]
    assert "offer" not in message
    assert message["body"].endswith("Tracker Standard does not include it. Ask an admin of Acme to add it.")


def test_without_an_offer_the_admin_is_told_why_and_sent_to_the_plan(client, free_organization, no_survey):
    organization, admin = free_organization
    message = _feature(client, caller_for(admin_membership(organization, admin)))["message"]
    assert message["id"] == "feature:github-sync"
    assert message["body"] == (
        "Tracker Free does not include github-sync. GitHub integration needs Tracker Standard or above; you are on Free."
    )
    assert message["actions"] == [
        {"kind": "link", "label": "See your plan", "url": f"{settings.SITE_URL}/billing/?organization={organization.public_id}"}
    ]


def test_unknown_and_malformed_features_are_refused_with_a_sentence(client, trial):
    _, admin, _ = trial
    caller = caller_for(admin)
    assert _feature(client, caller, "teleport", 400)["detail"].startswith("Tracker has no feature 'teleport'")
    assert _feature(client, caller, "Not A Feature!", 400)["detail"].startswith("A feature is 1 to 64")
    response = _post(client, caller, "feature", {})
    assert response.status_code == 400 and response.json()["detail"] == "Send 'feature' as a string."
    response = client.post("/kit/v1/feature", "{}", content_type="application/json", HTTP_ORIGIN=caller.origin)
    assert response.status_code == 401


def test_the_offer_is_outside_the_budget_and_its_events_are_recorded(client, trial):
    _, admin, _ = trial
    caller = caller_for(admin)
    message = _feature(client, caller)["message"]
    for action in ("shown", "clicked"):
        response = _post(client, caller, "message/events", {"message": message["id"], "action": action})
        assert response.status_code == 204, response.content
    events = {event.name: event.properties for event in Event.objects.filter(user=admin.user)}
    assert events["kit_message_shown"]["type"] == "feature_offer"
    assert events["kit_message_clicked"]["feature"] == "github-sync"
    assert events["kit_message_clicked"]["offer"] == "addon:github"
    session = KitSession.objects.get(pk=caller.session.pk)
    # Never the session's message, and following it closes nothing.
    assert (session.message_id, session.message_closed_at) == ("", None)


def test_a_member_asks_the_admins_who_get_the_offer_with_its_price(client, trial, eager_tasks, django_capture_on_commit_callbacks):
    organization, _, carol = trial
    caller = caller_for(carol)
    message = _feature(client, caller)["message"]
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, caller, "ask-admins", {"message": message["id"]})
    assert response.status_code == 202, response.content
    assert response.json() == {"detail": "We asked Ada Lovelace (admin of Acme)."}
    [email] = mail.outbox
    assert email.subject == "[Flywheel] Carol Jones asks: Add GitHub integration to Tracker"
    assert "per seat per month" in email.body
    assert f"/billing/addons/{organization.subscriptions.get().public_id}/github/" in email.body
    assert AdminAsk.objects.get().kind == "feature:github-sync"
    assert Event.objects.get(name="kit_admins_asked").properties["feature"] == "github-sync"
    again = _post(client, caller, "ask-admins", {"message": message["id"]})
    assert again.status_code == 429


def test_asking_for_a_feature_the_organization_got_meanwhile_asks_nobody(client, trial):
    organization, _, carol = trial
    caller = caller_for(carol)
    message = _feature(client, caller)["message"]
    addon_on(organization.subscriptions.get(), "github")
    response = _post(client, caller, "ask-admins", {"message": message["id"]})
    assert response.status_code == 404
    assert "has github-sync now" in response.json()["detail"]


def test_a_suspended_product_says_so(client, trial):
    organization, admin, _ = trial
    subscription = organization.subscriptions.get()
    subscription.status = Subscription.Status.SUSPENDED
    subscription.suspended_at = timezone.now()
    subscription.save()
    message = _feature(client, caller_for(admin), "permissions")["message"]
    assert message["body"].startswith("Tracker is suspended for Acme")
    assert message["actions"][0]["label"] == "See your plan"


# The add-on's trial from the kit ----------------------------------------------------------------


def test_only_an_admin_starts_the_trial(client, trial):
    _, _, carol = trial
    response = _post(client, caller_for(carol), "feature/trial", {"feature": "github-sync", "addon": "github"})
    assert response.status_code == 403
    assert response.json()["detail"] == "Only an admin of Acme can start a trial: ask Ada Lovelace."


def test_a_trial_already_had_sends_the_admin_to_buy_it(client, trial):
    organization, admin, _ = trial
    tried = addon_on(organization.subscriptions.get(), "github", status=AddOnSubscription.Status.TRIALING)
    tried.status, tried.canceled_at = AddOnSubscription.Status.CANCELED, timezone.now()
    tried.save()
    response = _post(client, caller_for(admin), "feature/trial", {"feature": "github-sync", "addon": "github"})
    assert response.status_code == 409
    assert response.json()["detail"] == "Acme has tried GitHub integration already: buy it on Flywheel."
    assert "/billing/addons/" in response.json()["url"]


def test_an_addon_that_does_not_add_the_feature_is_refused(client, trial):
    _, admin, _ = trial
    response = _post(client, caller_for(admin), "feature/trial", {"feature": "github-sync", "addon": "premium-support"})
    assert response.status_code == 400
    assert response.json()["detail"] == "Tracker has no add-on 'premium-support' that adds github-sync."


def test_an_admin_starts_the_addons_trial_in_one_click(client, trial):
    organization, admin, _ = trial
    caller = caller_for(admin)
    response = _post(client, caller, "feature/trial", {"feature": "github-sync", "addon": "github"})
    assert response.status_code == 201, response.content
    assert response.json()["detail"].startswith("Your GitHub integration trial has started: 14 days, free, until ")
    assert _feature(client, caller) == {"entitled": True, "message": None}
    row = AddOnSubscription.objects.get(organization=organization)
    assert row.status == AddOnSubscription.Status.TRIALING
    assert row.trial_ends_at - timezone.now() > timedelta(days=13)
    assert Event.objects.get(name="kit_trial_started").properties["addon"] == "github"
