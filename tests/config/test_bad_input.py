"""Input no page of Flywheel sends is a 4xx, never a 500.

A NUL byte anywhere in what a client sends is a 400 (or a 422 from the API) naming the field,
never a 500 from PostgreSQL ("A string literal cannot contain NUL (0x00) characters"), and
nothing is written. Ids that are not ids and values no form offers are refused too."""

from __future__ import annotations

import html
import json
import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from accounts import api_keys
from billing.models import Subscription
from community.models import Question

from ..factories import UserFactory

NUL_MESSAGE = "The field 'product' contains a NUL character"


def test_the_signup_link_with_a_nul_in_its_product_is_a_clear_400(client, catalog):
    response = client.get("/signup?product=%00")
    assert response.status_code == 400
    assert NUL_MESSAGE in html.unescape(response.content.decode())


def test_asking_a_question_with_a_nul_product_is_a_clear_400_and_stores_nothing(client, trial_organization):
    _, admin = trial_organization
    client.force_login(admin)
    response = client.post("/community/ask/", {"product": "\x00", "title": "How do I export?", "body": "x" * 40})
    assert response.status_code == 400
    assert NUL_MESSAGE in html.unescape(response.content.decode())
    assert not Question.objects.exists()


def test_trying_a_product_with_a_nul_is_a_clear_400_and_starts_nothing(client, trial_organization):
    organization, admin = trial_organization
    before = list(Subscription.objects.values_list("pk", "status"))
    client.force_login(admin)
    response = client.post("/billing/try/", {"product": "\x00"})
    assert response.status_code == 400
    assert NUL_MESSAGE in html.unescape(response.content.decode())
    assert list(Subscription.objects.values_list("pk", "status")) == before


def test_a_nul_in_a_field_name_or_elsewhere_in_the_query_is_refused_too(client, catalog):
    response = client.get("/signup?utm_source=ok&pro%00duct=x")
    assert response.status_code == 400
    assert "contains a NUL character" in html.unescape(response.content.decode())


def test_the_api_answers_422_naming_the_field_for_a_nul_in_json(client, trial_organization):
    organization, admin = trial_organization
    _, raw = api_keys.api_key_create(organization=organization, actor=admin, name="servers")
    response = client.post(
        "/api/v1/feedback/ask",
        json.dumps({"user": str(admin.public_id), "product": "a\u0000b"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert response.status_code == 422, response.content
    body = response.json()
    assert "product" in json.dumps(body)
    assert "NUL" in json.dumps(body)


def test_the_api_answers_422_for_a_nul_in_a_query_parameter(client, trial_organization):
    organization, admin = trial_organization
    _, raw = api_keys.api_key_create(organization=organization, actor=admin, name="servers")
    response = client.get(
        "/api/v1/prompts", {"user": str(admin.public_id), "product": "a\x00b"}, headers={"Authorization": f"Bearer {raw}"}
    )
    assert response.status_code == 422, response.content
    assert "product" in json.dumps(response.json())


def test_a_session_cookie_holding_a_nul_is_a_clear_400_not_a_query(client, catalog):
    client.cookies["sessionid"] = "abcdefgh\x00ijklmnop"
    response = client.get("/community/")
    assert response.status_code == 400
    assert "The cookie 'sessionid' contains a NUL character" in html.unescape(response.content.decode())


def test_a_nul_in_a_cookie_that_is_not_ours_does_not_lock_anyone_out(client, catalog):
    client.cookies["some_analytics"] = "a\x00b"  # another app on the domain; never read here
    assert client.get("/signup?product=tracker").status_code == 302


def test_a_nul_in_a_url_parameter_names_it(client, catalog):
    response = client.get("/invites/abc%00def/")
    assert response.status_code == 400
    assert "The field 'token' contains a NUL character" in html.unescape(response.content.decode())


def test_an_ordinary_request_is_untouched(client, catalog):
    assert client.get("/signup?product=tracker").status_code == 302


def _patterns(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def _sample_path(pattern: str) -> str:
    """A concrete path for a pattern: uuids and ints get harmless values, text a NUL."""
    path = re.sub(r"\(\?P<\w+>[^)]*\)", "x%00y", pattern)  # regex groups (allauth, admin)
    path = re.sub(r"<uuid:\w+>", "00000000-0000-0000-0000-000000000000", path)
    path = re.sub(r"<int:\w+>", "1", path)
    path = re.sub(r"<(str:|slug:|path:)?\w+>", "x%00y", path)
    return "/" + re.sub(r"[\^$\\]", "", path)


@pytest.mark.parametrize("who", ["anonymous", "member", "staff"])
def test_no_page_answers_500_to_a_nul_in_any_parameter(catalog, trial_organization, who):
    organization, admin = trial_organization
    client = Client(raise_request_exception=False)
    if who == "member":
        client.force_login(admin)
    elif who == "staff":
        client.force_login(UserFactory(is_staff=True, is_superuser=True))
    _, raw = api_keys.api_key_create(organization=organization, actor=admin, name="sweep")
    headers = {"Authorization": f"Bearer {raw}"}
    nul = {"product": "a\x00b", "q": "\x00", "answer": "\x00", "next": "\x00", "user": "\x00", "email": "\x00"}
    failures = []
    for pattern in sorted(set(_patterns())):
        if "stripe/webhook" in pattern or (pattern.startswith("admin/") and who != "staff"):
            continue
        path = _sample_path(pattern)
        for method in ("get",) if pattern.startswith("admin/") else ("get", "post"):
            response = getattr(client, method)(path, nul, headers=headers)
            if response.status_code >= 500:
                failures.append(f"{method.upper()} {path}: {response.status_code}")
        if path.startswith("/api/"):
            response = client.post(path, json.dumps(nul), content_type="application/json", headers=headers)
            if response.status_code >= 500:
                failures.append(f"POST json {path}: {response.status_code}")
    assert not failures, "\n".join(failures)


GARBAGE_FIELDS = (
    "product", "edition", "answer", "user", "seats", "quantity", "interval", "email", "role", "duplicate_of",
    "value", "reason", "decision", "q", "page", "tag", "next", "category", "name", "title", "body", "score",
    "comment", "mine", "action", "period", "since", "until", "experiment", "variation", "status", "kind",
)


def _garbage_path(pattern: str) -> str:
    path = re.sub(r"\(\?P<\w+>[^)]*\)", "zz", pattern)
    path = re.sub(r"<uuid:\w+>", "00000000-0000-0000-0000-000000000000", path)
    path = re.sub(r"<int:\w+>", "1", path)
    path = re.sub(r"<(str:|slug:|path:)?\w+>", "zz", path)
    return "/" + re.sub(r"[\^$\\]", "", path)


@pytest.mark.parametrize("who", ["anonymous", "member", "staff"])
def test_no_page_answers_500_to_values_no_form_sends(catalog, trial_organization, who):
    """Every field a form or link of Flywheel's uses, set to a word that is no id, no number, no
    choice, on every page (the admin is Django's, the API is checked through its schema)."""
    organization, admin = trial_organization
    client = Client(raise_request_exception=False)
    if who == "member":
        client.force_login(admin)
    elif who == "staff":
        client.force_login(UserFactory(is_staff=True, is_superuser=True))
    garbage = dict.fromkeys(GARBAGE_FIELDS, "not-a-uuid")
    failures = []
    for pattern in sorted(set(_patterns())):
        if pattern.startswith(("stripe/webhook", "admin/", "api/")):
            continue
        path = _garbage_path(pattern)
        for method in ("get", "post"):
            response = getattr(client, method)(path, garbage)
            if response.status_code >= 500:
                failures.append(f"{method.upper()} {path}: {response.status_code}")
    assert not failures, "\n".join(failures)


def test_a_signed_callback_form_posted_as_multipart_still_reaches_its_view(client, catalog):
    """The NUL check reads form fields; a csrf-exempt view that reads the raw body (the
    provisioning callback) must still be able to, and answer with its own refusal."""
    response = client.post("/provisioning/callback", {"environment": "x"})  # multipart
    assert 400 <= response.status_code < 500
    assert "error" in response.json()
