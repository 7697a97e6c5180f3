"""Answers and dismissals through the products' API: the stored context, the category, the
follow-up of a detractor's comment, retries, validation and the tenant wall."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import api_keys
from billing.models import Subscription
from experiments.models import Event
from feedback import events
from feedback.models import FollowUp, Response, Survey

from ..conftest import organization_on
from .helpers import member


def _bearer(raw):
    return {"Authorization": f"Bearer {raw}"}


@pytest.fixture
def tenant(trial_organization):
    organization, admin = trial_organization
    _, raw = api_keys.api_key_create(organization=organization, actor=admin, name="Tracker servers")
    return organization, admin, raw


def _post(client, raw, path, body):
    return client.post(f"/api/v1/feedback/{path}", body, content_type="application/json", headers=_bearer(raw))


def _ask(client, raw, user, product="tracker"):
    return _post(client, raw, "ask", {"user": str(user.public_id), "product": product})


def test_ask_then_answer_stores_the_product_context(client, tenant):
    organization, _, raw = tenant
    membership = member(organization, joined_days_ago=45)
    Subscription.objects.filter(organization=organization).update(seat_limit=25)

    asked = _ask(client, raw, membership.user)
    assert asked.status_code == 200, asked.content
    body = asked.json()
    assert body["ask"] is True and body["reason"] == ""
    assert {"value": "developer", "label": "Developer or engineer"} in body["roles"]
    assert _ask(client, raw, membership.user).json() == {
        "ask": False, "reason": "asked_recently", "survey": None, "question": "", "roles": []
    }

    answered = _post(client, raw, f"surveys/{body['survey']}/response", {
        "user": str(membership.user.public_id), "score": 4, "role": "designer",
        "comment": "Every board takes ages to load and it crashed twice this week", "may_contact": True,
    })
    assert answered.status_code == 201, answered.content
    assert answered.json()["category"] == "reliability"
    response = Response.objects.select_related("product", "edition").get(public_id=answered.json()["id"])
    assert (response.score, response.role, response.may_contact) == (4, "designer", True)
    assert response.product.code == "tracker" and response.edition.code == "standard"
    assert response.seats == 25
    assert response.paying is False  # a trial
    assert response.tenure_days == 45
    assert response.organization_age_days == 0
    assert response.month == timezone.now().date().replace(day=1)
    assert response.category == response.suggested_category == "reliability"
    assert Survey.objects.get(public_id=body["survey"]).status == Survey.Status.ANSWERED
    # A detractor with a comment opens a follow-up for staff.
    assert FollowUp.objects.get(response=response).status == FollowUp.Status.OPEN
    names = list(Event.objects.filter(user=membership.user).values_list("name", flat=True))
    assert events.FEEDBACK_RESPONSE_SUBMITTED in names and events.FEEDBACK_FOLLOW_UP_OPENED in names

    # A retried submission gets the same answer back and stores nothing more.
    again = _post(client, raw, f"surveys/{body['survey']}/response", {
        "user": str(membership.user.public_id), "score": 9, "role": "designer",
    })
    assert again.status_code == 200 and again.json()["id"] == answered.json()["id"]
    assert Response.objects.filter(organization=organization).count() == 1
    assert Response.objects.get(pk=response.pk).score == 4


def test_paying_customers_are_marked_as_such(client, tenant):
    organization, _, raw = tenant
    Subscription.objects.filter(organization=organization).update(status="active", interval="month")
    membership = member(organization)
    survey = _ask(client, raw, membership.user).json()["survey"]
    answered = _post(client, raw, f"surveys/{survey}/response", {
        "user": str(membership.user.public_id), "score": 10, "role": "executive"})
    response = Response.objects.get(public_id=answered.json()["id"])
    assert response.paying is True
    assert response.category == "" and not FollowUp.objects.filter(response=response).exists()


def test_a_passive_or_a_detractor_without_comment_opens_no_follow_up(client, tenant):
    organization, _, raw = tenant
    for score, comment in ((3, ""), (7, "Slow sometimes")):
        membership = member(organization)
        survey = _ask(client, raw, membership.user).json()["survey"]
        _post(client, raw, f"surveys/{survey}/response", {
            "user": str(membership.user.public_id), "score": score, "role": "other", "comment": comment})
    assert Response.objects.filter(organization=organization).count() == 2
    assert not FollowUp.objects.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"score": 11}, "The score must be a whole number from 0 to 10."),
        ({"score": -1}, "The score must be a whole number from 0 to 10."),
        ({"role": "astronaut"}, "Choose a role among"),
        ({"comment": "x" * 5001}, "The comment is too long"),
    ],
)
def test_an_invalid_answer_is_refused_and_nothing_is_stored(client, tenant, change, message):
    organization, _, raw = tenant
    membership = member(organization)
    survey = _ask(client, raw, membership.user).json()["survey"]
    body = {"user": str(membership.user.public_id), "score": 5, "role": "developer", **change}
    refused = _post(client, raw, f"surveys/{survey}/response", body)
    assert refused.status_code == 400
    assert message in refused.json()["detail"]
    assert not Response.objects.exists()
    assert Survey.objects.get(public_id=survey).status == Survey.Status.OPEN


def test_a_dismissed_survey_takes_no_answer(client, tenant):
    organization, _, raw = tenant
    membership = member(organization)
    survey = _ask(client, raw, membership.user).json()["survey"]
    user = {"user": str(membership.user.public_id)}
    assert _post(client, raw, f"surveys/{survey}/dismiss", user).status_code == 204
    assert _post(client, raw, f"surveys/{survey}/dismiss", user).status_code == 204  # a retry
    refused = _post(client, raw, f"surveys/{survey}/response", {**user, "score": 9, "role": "developer"})
    assert refused.status_code == 400
    assert refused.json()["detail"] == "This survey was dismissed; it takes no answer any more."
    assert not Response.objects.exists()
    assert Event.objects.filter(name=events.FEEDBACK_SURVEY_DISMISSED, user=membership.user).count() == 1


def test_the_tenant_wall(client, tenant, catalog):
    organization, _, raw = tenant
    other, other_admin = organization_on("standard")
    stranger = member(other)
    _, other_raw = api_keys.api_key_create(organization=other, actor=other_admin, name="other")

    # Our key cannot ask about another organization's user.
    refused = _ask(client, raw, stranger.user)
    assert refused.status_code == 404 and refused.json() == {"detail": "User not found."}
    assert not Survey.objects.filter(user=stranger.user).exists()

    # Nor answer or dismiss another organization's survey, even naming its user.
    survey = _ask(client, other_raw, stranger.user).json()["survey"]
    ours = member(organization)
    for path, body in (
        (f"surveys/{survey}/response", {"user": str(stranger.user.public_id), "score": 0, "role": "other"}),
        (f"surveys/{survey}/response", {"user": str(ours.user.public_id), "score": 0, "role": "other"}),
        (f"surveys/{survey}/dismiss", {"user": str(ours.user.public_id)}),
    ):
        assert _post(client, raw, path, body).status_code == 404
    assert Survey.objects.get(public_id=survey).status == Survey.Status.OPEN
    # An unknown survey id, and no key at all.
    assert _post(client, raw, f"surveys/{uuid.uuid4()}/dismiss", {"user": str(ours.user.public_id)}).status_code == 404
    assert client.post("/api/v1/feedback/ask", {"user": str(ours.user.public_id)},
                       content_type="application/json").status_code == 401


def test_tenure_is_counted_from_joining_the_organization(client, tenant, settings):
    organization, _, raw = tenant
    settings.FEEDBACK_MIN_TENURE_DAYS = 14
    newcomer = member(organization, joined_days_ago=3)
    assert _ask(client, raw, newcomer.user).json()["reason"] == "tenure"
    assert newcomer.created_at < timezone.now() - timedelta(days=2)


def test_the_operations_are_in_the_openapi_schema(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert {"/api/v1/feedback/ask", "/api/v1/feedback/surveys/{survey_id}/response",
            "/api/v1/feedback/surveys/{survey_id}/dismiss"} <= set(paths)
