"""The kit's message endpoints over HTTP (inproduct/message_views.py): the contract's shapes,
statuses and refusals, and that answers land where the API's do."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.models import PromptDismissal, Subscription
from experiments.models import Event
from feedback.models import Response, Survey
from inproduct.models import KitSession, ProductSuccess

from .helpers import admin_membership, caller_for, headers, long_standing, member_of

pytestmark = pytest.mark.django_db


def get_message(client, caller):
    response = client.get(reverse("kit_message"), **headers(caller))
    assert response.status_code == 200, response.content
    return response.json()["message"]


def post(client, name: str, caller, body) -> object:
    return client.post(reverse(name), json.dumps(body), content_type="application/json", **headers(caller))


def test_nothing_due_is_null(organization, no_survey, client):
    organization, _ = organization
    assert client.get(reverse("kit_message"), **headers(caller_for(member_of(organization)))).json() == {"message": None}


def test_a_prompt_shown_clicked_then_gone_for_the_session(organization, no_survey, client):
    organization, admin = organization
    Subscription.objects.filter(organization=organization).update(trial_ends_at=timezone.now() + timedelta(days=2))
    caller = caller_for(admin_membership(organization, admin))
    message = get_message(client, caller)
    assert message["id"] == "prompt:trial_ends.tracker.3"
    assert post(client, "kit_message_events", caller, {"message": message["id"], "action": "shown"}).status_code == 204
    assert post(client, "kit_message_events", caller, {"message": message["id"], "action": "clicked"}).status_code == 204
    assert get_message(client, caller) is None
    shown = Event.objects.get(name="kit_message_shown")
    assert shown.properties | {"session_id": ""} == shown.properties | {
        "message_id": "prompt:trial_ends.tracker.3", "type": "prompt", "kind": "trial_ends", "product": "tracker",
        "channel": "kit", "in_product": "tracker", "session_id": "",
    }
    # Billing's own prompt events too, so its copy experiments count the kit's prompts.
    assert Event.objects.filter(name__in=["prompt_shown", "prompt_clicked"]).count() == 2


def test_dismissing_a_prompt_is_billings_dismissal(organization, no_survey, client):
    organization, admin = organization
    Subscription.objects.filter(organization=organization).update(trial_ends_at=timezone.now() + timedelta(days=2))
    caller = caller_for(admin_membership(organization, admin))
    message = get_message(client, caller)
    assert post(client, "kit_message_events", caller, {"message": message["id"], "action": "dismissed"}).status_code == 204
    assert PromptDismissal.objects.filter(user=admin, kind="trial_ends", threshold="3").exists()
    assert Event.objects.filter(name="kit_message_dismissed").count() == 1


def test_a_suspended_product_cannot_be_dismissed(organization, no_survey, client):
    organization, admin = organization
    Subscription.objects.filter(organization=organization).update(status=Subscription.Status.SUSPENDED)
    caller = caller_for(member_of(organization))
    message = get_message(client, caller)
    assert message["dismissible"] is False
    response = post(client, "kit_message_events", caller, {"message": message["id"], "action": "dismissed"})
    assert response.status_code == 400
    assert response.json() == {"detail": "This prompt cannot be dismissed: it stays until the product is restored."}
    assert not PromptDismissal.objects.exists() and not Event.objects.filter(name="kit_message_dismissed").exists()


def test_the_survey_answered_in_the_kit_lands_where_the_apis_answers_do(organization, client):
    organization, _ = organization
    member = member_of(organization)
    long_standing(member)
    caller = caller_for(member)
    message = get_message(client, caller)
    answer = {"survey": message["survey"]["id"], "score": 4, "role": "developer", "comment": "Too slow on Mondays.", "may_contact": True}
    response = post(client, "kit_survey_answer", caller, answer)
    assert response.status_code == 201
    assert response.json() == {"detail": "Thank you. We read every answer, and we may write to you about yours."}
    stored = Response.objects.get(user=member.user)
    assert (stored.score, stored.role, stored.comment, stored.may_contact) == (4, "developer", "Too slow on Mondays.", True)
    assert stored.product.code == "tracker" and stored.organization == organization
    assert stored.survey.status == Survey.Status.ANSWERED
    assert hasattr(stored, "follow_up")  # a detractor with a comment: feedback's follow-up, as for the API
    retry = post(client, "kit_survey_answer", caller, answer)
    assert retry.status_code == 200 and Response.objects.count() == 1
    assert Event.objects.filter(name="kit_survey_answered").count() == 1
    assert Event.objects.filter(name="feedback_response_submitted").count() == 1
    assert get_message(client, caller) is None


def test_a_survey_answer_that_is_not_valid_is_refused_and_nothing_is_stored(organization, client):
    organization, _ = organization
    member = member_of(organization)
    long_standing(member)
    caller = caller_for(member)
    survey = get_message(client, caller)["survey"]["id"]
    response = post(client, "kit_survey_answer", caller, {"survey": survey, "score": 11, "role": "developer"})
    assert response.status_code == 400
    assert response.json() == {"detail": "The score must be a whole number from 0 to 10."}
    response = post(client, "kit_survey_answer", caller, {"survey": survey, "score": 9, "role": "astronaut"})
    assert response.status_code == 400 and response.json()["detail"].startswith("Choose a role among: developer")
    assert not Response.objects.exists()
    other = caller_for(member_of(organization))
    assert post(client, "kit_survey_answer", other, {"survey": survey, "score": 9, "role": "developer"}).status_code == 404


def test_the_survey_dismissed_in_the_kit(organization, client):
    organization, _ = organization
    member = member_of(organization)
    long_standing(member)
    caller = caller_for(member)
    survey = get_message(client, caller)["survey"]["id"]
    assert post(client, "kit_survey_dismiss", caller, {"survey": survey}).status_code == 204
    assert post(client, "kit_survey_dismiss", caller, {"survey": survey}).status_code == 204
    assert Survey.objects.get(public_id=survey).status == Survey.Status.DISMISSED
    assert Event.objects.filter(name="kit_survey_dismissed").count() == 1
    assert KitSession.objects.get(pk=caller.session.pk).message_closed_at is not None
    response = post(client, "kit_survey_answer", caller, {"survey": survey, "score": 9, "role": "developer"})
    assert response.status_code == 409
    assert response.json() == {"detail": "This survey was dismissed; it takes no answer any more."}


def test_success_events(organization, no_survey, client):
    organization, admin = organization
    caller = caller_for(admin_membership(organization, admin))
    assert post(client, "kit_events", caller, {"name": "first_success"}).status_code == 204
    assert post(client, "kit_events", caller, {"name": "first_success"}).status_code == 204
    assert ProductSuccess.objects.get().count == 2
    response = post(client, "kit_events", caller, {"name": "First Success!"})
    assert response.status_code == 400
    assert "lower-case letters, digits or underscores" in response.json()["detail"]


def test_refusals_say_what_is_wrong(organization, no_survey, client):
    organization, admin = organization
    caller = caller_for(admin_membership(organization, admin))
    unknown = post(client, "kit_message_events", caller, {"message": "banner:42", "action": "shown"})
    assert unknown.status_code == 404 and unknown.json() == {"detail": "There is no such message: reload the page."}
    action = post(client, "kit_message_events", caller, {"message": "nudge:invite", "action": "liked"})
    assert action.status_code == 400
    assert action.json() == {"detail": "Unknown action 'liked': use shown, clicked or dismissed."}
    malformed = client.post(reverse("kit_message_events"), "{", content_type="application/json", **headers(caller))
    assert malformed.status_code == 400 and malformed.json() == {"detail": "The body must be a JSON object."}
    wrong_method = client.post(reverse("kit_message"), "{}", content_type="application/json", **headers(caller))
    assert wrong_method.status_code == 405
    missing = post(client, "kit_message_events", caller, {"action": "shown"})
    assert missing.status_code == 400 and missing.json() == {"detail": "Send 'message' as a string."}
    assert not Event.objects.filter(name__startswith="kit_").exists()


def test_the_message_endpoints_answer_only_the_products_origins(organization, no_survey, client):
    organization, admin = organization
    caller = caller_for(admin_membership(organization, admin))
    preflight = client.options(reverse("kit_message"), HTTP_ORIGIN=caller.origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET")
    assert preflight.status_code == 204 and preflight["Access-Control-Allow-Origin"] == caller.origin
    foreign = client.get(reverse("kit_message"), **{**headers(caller), "HTTP_ORIGIN": "https://evil.example"})
    assert foreign.status_code == 403 and "Access-Control-Allow-Origin" not in foreign
    assert KitSession.objects.get(pk=caller.session.pk).message_id == ""
    answered = client.get(reverse("kit_message"), **headers(caller))
    assert answered["Access-Control-Allow-Origin"] == caller.origin
