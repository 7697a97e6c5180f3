"""POST /provisioning/callback: a product's signed word that its environment is ready (or not).

Every refusal answers JSON naming the problem and leaves the environment as it was.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from django.conf import settings

from experiments import events
from experiments.models import Event
from provisioning import signing
from provisioning.models import Environment

from .conftest import WIKI_SECRET_ENV, make_http_product
from .factories import EnvironmentFactory

CALLBACK = "/provisioning/callback"
WORKSPACE_URL = "https://wiki.example.test/acme"


@pytest.fixture
def environment(catalog) -> Environment:
    """A Wiki environment the product accepted (202) and is preparing."""
    wiki = make_http_product("wiki", "https://wiki.example.test/provision")
    return EnvironmentFactory(product=wiki, status=Environment.Status.PROVISIONING, attempts=1)


def _post(client, body: bytes, signature: str | None):
    headers = {signing.SIGNATURE_HEADER: signature} if signature is not None else {}
    return client.post(CALLBACK, data=body, content_type="application/json", headers=headers)


def _body(environment: Environment, **fields) -> bytes:
    return json.dumps({"environment_id": str(environment.public_id), **fields}).encode()


def _snapshot(environment: Environment) -> tuple:
    environment.refresh_from_db()
    events_count = Event.objects.filter(organization=environment.organization).count()
    return (
        environment.status,
        environment.url,
        environment.external_id,
        environment.failure_reason,
        environment.attempts,
        environment.updated_at,
        events_count,
    )


def _assert_refused(response, status: int, naming: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    assert naming in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "status", "naming"),
    [
        (b"environment ready", 400, "The body is not valid JSON."),
        (b'["active"]', 400, "The body must be a JSON object."),
        (
            json.dumps({"environment_id": str(uuid.uuid4()), "status": "active"}).encode(),
            404,
            "environment_id",
        ),
        (
            json.dumps({"environment_id": "not-a-uuid", "status": "active"}).encode(),
            404,
            "environment_id",
        ),
        (json.dumps({"status": "active", "url": WORKSPACE_URL}).encode(), 404, "environment_id"),
    ],
    ids=[
        "not-json",
        "not-an-object",
        "unknown-environment",
        "malformed-environment-id",
        "no-environment-id",
    ],
)
def test_unreadable_or_unknown_callbacks_are_refused(
    client, environment, wiki_secret, body, status, naming
):
    before = _snapshot(environment)

    response = _post(client, body, signing.sign(wiki_secret, body))

    _assert_refused(response, status, naming)
    assert _snapshot(environment) == before


@pytest.mark.parametrize(
    ("signature", "naming"),
    [
        (lambda body, secret: None, "the Flywheel-Signature header is missing"),
        (lambda body, secret: "", "the Flywheel-Signature header is missing"),
        (
            lambda body, secret: signing.sign("not-the-secret", body),
            "the signature does not match the body",
        ),
        (
            lambda body, secret: signing.sign(secret, body + b" "),
            "the signature does not match the body",
        ),
        (
            lambda body, secret: f"t={int(time.time())}",
            "the Flywheel-Signature header has no v1= signature",
        ),
        (lambda body, secret: "v1=abc", "the Flywheel-Signature header needs exactly one t= timestamp in unix seconds"),
        (
            lambda body, secret: signing.sign(
                secret,
                body,
                timestamp=int(time.time()) - settings.PROVISIONING_SIGNATURE_TOLERANCE_SECONDS - 60,
            ),
            "the signature timestamp is too old or in the future",
        ),
        (
            lambda body, secret: signing.sign(
                secret,
                body,
                timestamp=int(time.time()) + settings.PROVISIONING_SIGNATURE_TOLERANCE_SECONDS + 60,
            ),
            "the signature timestamp is too old or in the future",
        ),
    ],
    ids=[
        "missing",
        "empty",
        "wrong-secret",
        "other-body",
        "no-v1",
        "no-timestamp",
        "stale",
        "future",
    ],
)
def test_badly_signed_callbacks_are_refused(client, environment, wiki_secret, signature, naming):
    before = _snapshot(environment)
    body = _body(environment, status="active", url=WORKSPACE_URL)

    response = _post(client, body, signature(body, wiki_secret))

    _assert_refused(response, 401, "Signature refused: " + naming)
    assert _snapshot(environment) == before


@pytest.mark.parametrize(
    ("fields", "naming"),
    [
        ({"status": "active"}, "status active needs a url"),
        ({"status": "active", "url": ""}, "status active needs a url"),
        ({"status": "active", "url": "wiki.example.test/acme"}, "status active needs a url"),
        ({"status": "active", "url": "javascript:alert(1)"}, "status active needs a url"),
        (
            {"status": "active", "url": "https://" + "a" * 500 + ".test/"},
            "status active needs a url",
        ),
        (
            {"status": "ready", "url": WORKSPACE_URL},
            "status must be 'active' or 'failed', got 'ready'",
        ),
        ({"url": WORKSPACE_URL}, "status must be 'active' or 'failed', got None"),
        ({"status": "failed"}, "status failed needs a reason"),
        ({"status": "failed", "reason": "   "}, "status failed needs a reason"),
        ({"status": "failed", "reason": {"code": 7}}, "status failed needs a reason"),
    ],
    ids=[
        "active-no-url",
        "active-empty-url",
        "active-relative-url",
        "active-javascript-url",
        "active-long-url",
        "unknown-status",
        "no-status",
        "failed-no-reason",
        "failed-blank-reason",
        "failed-reason-not-text",
    ],
)
def test_signed_callbacks_with_bad_fields_are_refused(
    client, environment, wiki_secret, fields, naming
):
    before = _snapshot(environment)
    body = _body(environment, **fields)

    response = _post(client, body, signing.sign(wiki_secret, body))

    _assert_refused(response, 400, naming)
    assert _snapshot(environment) == before


def test_a_product_without_its_secret_configured_gets_503(
    client, environment, wiki_secret, monkeypatch
):
    monkeypatch.delenv(WIKI_SECRET_ENV)
    before = _snapshot(environment)
    body = _body(environment, status="active", url=WORKSPACE_URL)

    response = _post(client, body, signing.sign(wiki_secret, body))

    _assert_refused(response, 503, WIKI_SECRET_ENV)
    assert _snapshot(environment) == before


def test_only_post_is_accepted(client, environment):
    assert client.get(CALLBACK).status_code == 405
    assert _snapshot(environment)[0] == Environment.Status.PROVISIONING


def test_a_duplicate_callback_is_harmless(client, environment, wiki_secret):
    body = _body(environment, status="active", url=WORKSPACE_URL, external_id="wiki-1")

    first = _post(client, body, signing.sign(wiki_secret, body))
    second = _post(client, body, signing.sign(wiki_secret, body))

    for response in (first, second):
        assert response.status_code == 200
        assert response.json() == {"environment_id": str(environment.public_id), "status": "active"}
    environment.refresh_from_db()
    assert environment.status == Environment.Status.ACTIVE
    assert environment.url == WORKSPACE_URL
    assert environment.external_id == "wiki-1"
    assert (
        Event.objects.filter(
            name=events.ENVIRONMENT_ACTIVE, organization=environment.organization
        ).count()
        == 1
    )

    # A late "failed" does not undo an active environment.
    late = _body(environment, status="failed", reason="quota exceeded")
    response = _post(client, late, signing.sign(wiki_secret, late))
    assert response.status_code == 200
    assert response.json()["status"] == "active"
    environment.refresh_from_db()
    assert environment.status == Environment.Status.ACTIVE
    assert (
        Event.objects.filter(
            name=events.ENVIRONMENT_FAILED, organization=environment.organization
        ).count()
        == 0
    )


def test_a_failed_callback_records_the_products_reason(client, environment, wiki_secret):
    body = _body(environment, status="failed", reason="  region eu-3 is full  ")

    response = _post(client, body, signing.sign(wiki_secret, body))

    assert response.status_code == 200
    assert response.json() == {"environment_id": str(environment.public_id), "status": "failed"}
    environment.refresh_from_db()
    assert environment.status == Environment.Status.FAILED
    assert environment.failure_reason == "Wiki: region eu-3 is full"
    assert (
        Event.objects.filter(
            name=events.ENVIRONMENT_FAILED, organization=environment.organization
        ).count()
        == 1
    )


@pytest.mark.parametrize(
    "header",
    [
        "t=" + "9" * 400 + ",v1=abc",  # a timestamp too large to be a time
        "t=1,t=2,v1=abc",  # two timestamps
        "t=١٢٣,v1=abc",  # non-ASCII digits
    ],
)
def test_malformed_signature_headers_are_refused_not_crashing(header):
    from provisioning.signing import verify

    assert "exactly one t= timestamp" in verify("secret", b"{}", header, tolerance_seconds=300)


def test_non_ascii_signature_is_a_mismatch_not_a_crash():
    import time

    from provisioning.signing import verify

    header = f"t={int(time.time())},v1=é"
    assert verify("secret", b"{}", header, tolerance_seconds=300) == "the signature does not match the body"
