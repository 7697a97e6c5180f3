"""The http provisioner against a product played by a local HTTP server.

Most scenarios run one attempt at a time in this process (services.environment_provision,
as the worker's task does); two run through the real worker, retries and all.
"""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from catalog.models import Product
from experiments import events
from provisioning import services, signing
from provisioning.models import Environment

from ..conftest import organization_on, wait_for
from .conftest import WIKI_SECRET_ENV, Reply, environment_events

WORKSPACE_URL = "https://wiki.example.test/acme"


def _wiki_trial() -> tuple[Environment, object]:
    """An organization on a Wiki Standard trial; its environment waits for a provisioning attempt."""
    organization, admin = organization_on("standard", product_code="wiki")
    return Environment.objects.get(organization=organization, product__code="wiki"), admin


def _assert_signed_for(environment: Environment, request, secret: str) -> None:
    """The request is what docs/provisioning.md promises: signed, keyed, JSON."""
    assert request.method == "POST"
    assert request.path == "/provision"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == str(environment.public_id)
    problem = signing.verify(
        secret,
        request.body,
        request.headers["flywheel-signature"],
        tolerance_seconds=settings.PROVISIONING_SIGNATURE_TOLERANCE_SECONDS,
    )
    assert problem is None
    assert signing.verify(
        "another-secret", request.body, request.headers["flywheel-signature"], tolerance_seconds=300
    )


def test_success_activates_with_the_products_url(wiki_over_http, product_server, wiki_secret):
    product_server.play(Reply(200, {"url": WORKSPACE_URL, "external_id": "wiki-42"}))
    environment, admin = _wiki_trial()

    assert services.environment_provision(environment_id=environment.pk) == services.Attempt(
        done=True
    )

    environment.refresh_from_db()
    assert environment.status == Environment.Status.ACTIVE
    assert environment.url == WORKSPACE_URL
    assert environment.external_id == "wiki-42"
    assert environment.attempts == 1
    assert environment_events(events.ENVIRONMENT_ACTIVE, environment) == 1
    [request] = product_server.requests
    _assert_signed_for(environment, request, wiki_secret)
    assert request.json() == {
        "environment_id": str(environment.public_id),
        "product": "wiki",
        "plan": {"edition": "standard", "seat_limit": 100},
        "organization": {
            "id": str(environment.organization.public_id),
            "name": environment.organization.name,
        },
        "admin": {"id": str(admin.public_id), "email": admin.email},
        "callback_url": f"{settings.SITE_URL}/provisioning/callback",
    }


def test_a_slow_product_is_retried_with_backoff_then_fails_with_the_reason(
    wiki_over_http, product_server, wiki_secret
):
    product_server.play(
        Reply(200, {"url": WORKSPACE_URL}, delay=settings.PROVISIONING_HTTP_TIMEOUT + 5)
    )
    environment, _ = _wiki_trial()

    retries = []
    for attempt in range(1, settings.PROVISIONING_MAX_ATTEMPTS):
        outcome = services.environment_provision(environment_id=environment.pk)
        assert outcome.done is False
        retries.append(outcome.retry_in)
        environment.refresh_from_db()
        assert environment.status == Environment.Status.PROVISIONING
        assert environment.attempts == attempt
        assert "Wiki did not answer within" in environment.last_error
    # Exponential: each wait doubles from PROVISIONING_BACKOFF_SECONDS, capped at the maximum.
    assert retries == [
        min(settings.PROVISIONING_BACKOFF_SECONDS * 2**n, settings.PROVISIONING_BACKOFF_MAX_SECONDS)
        for n in range(settings.PROVISIONING_MAX_ATTEMPTS - 1)
    ]
    assert retries == sorted(retries)

    assert services.environment_provision(environment_id=environment.pk) == services.Attempt(
        done=True
    )
    environment.refresh_from_db()
    assert environment.status == Environment.Status.FAILED
    assert environment.attempts == settings.PROVISIONING_MAX_ATTEMPTS
    assert environment.failure_reason == (
        f"Gave up after {settings.PROVISIONING_MAX_ATTEMPTS} attempts. "
        f"Last error: Wiki did not answer within {settings.PROVISIONING_HTTP_TIMEOUT:g} s."
    )
    assert environment.url == ""
    assert environment.failed_at is not None
    assert environment_events(events.ENVIRONMENT_FAILED, environment) == 1
    assert environment_events(events.ENVIRONMENT_ACTIVE, environment) == 0

    assert len(product_server.requests) == settings.PROVISIONING_MAX_ATTEMPTS
    for request in product_server.requests:
        _assert_signed_for(environment, request, wiki_secret)
    # A failed environment is settled: no more calls until staff retry it.
    assert services.environment_provision(environment_id=environment.pk) == services.Attempt(
        done=True
    )
    assert len(product_server.requests) == settings.PROVISIONING_MAX_ATTEMPTS


def test_a_server_error_is_retried_and_the_second_attempt_activates(
    wiki_over_http, product_server, wiki_secret
):
    product_server.play(Reply(500, "database is restarting"), Reply(201, {"url": WORKSPACE_URL}))
    environment, _ = _wiki_trial()

    first = services.environment_provision(environment_id=environment.pk)
    assert first == services.Attempt(done=False, retry_in=settings.PROVISIONING_BACKOFF_SECONDS)
    environment.refresh_from_db()
    assert environment.status == Environment.Status.PROVISIONING
    assert environment.last_error == "Wiki answered 500: database is restarting"

    assert services.environment_provision(environment_id=environment.pk) == services.Attempt(
        done=True
    )
    environment.refresh_from_db()
    assert environment.status == Environment.Status.ACTIVE
    assert environment.url == WORKSPACE_URL
    assert environment.external_id == ""
    assert environment.attempts == 2
    assert environment_events(events.ENVIRONMENT_ACTIVE, environment) == 1
    first_request, second_request = product_server.requests
    _assert_signed_for(environment, first_request, wiki_secret)
    _assert_signed_for(environment, second_request, wiki_secret)
    assert first_request.json() == second_request.json()


def test_too_many_requests_is_retried(wiki_over_http, product_server):
    product_server.play(Reply(429, "slow down"), Reply(200, {"url": WORKSPACE_URL}))
    environment, _ = _wiki_trial()

    assert services.environment_provision(environment_id=environment.pk).done is False
    assert services.environment_provision(environment_id=environment.pk).done is True
    environment.refresh_from_db()
    assert environment.status == Environment.Status.ACTIVE
    assert environment.attempts == 2


def test_a_refusal_fails_at_once_with_the_products_answer(wiki_over_http, product_server):
    product_server.play(Reply(400, {"error": "edition 'standard' is not sold in this region"}))
    environment, _ = _wiki_trial()

    assert services.environment_provision(environment_id=environment.pk) == services.Attempt(
        done=True
    )

    environment.refresh_from_db()
    assert environment.status == Environment.Status.FAILED
    assert environment.attempts == 1
    assert environment.failure_reason.startswith("Wiki refused the request (400): ")
    assert "edition 'standard' is not sold in this region" in environment.failure_reason
    assert environment.url == ""
    assert len(product_server.requests) == 1
    assert environment_events(events.ENVIRONMENT_FAILED, environment) == 1
    assert environment_events(events.ENVIRONMENT_ACTIVE, environment) == 0


def test_a_success_without_a_valid_url_fails(wiki_over_http, product_server):
    product_server.play(Reply(200, {"url": "ftp://wiki.example.test/acme"}))
    environment, _ = _wiki_trial()

    assert services.environment_provision(environment_id=environment.pk) == services.Attempt(
        done=True
    )

    environment.refresh_from_db()
    assert environment.status == Environment.Status.FAILED
    assert environment.failure_reason.startswith("Wiki answered without a valid http(s) url")
    assert environment.url == ""


def test_a_missing_secret_fails_without_calling_the_product(
    wiki_over_http, product_server, monkeypatch
):
    monkeypatch.delenv(WIKI_SECRET_ENV)
    environment, _ = _wiki_trial()

    assert services.environment_provision(environment_id=environment.pk) == services.Attempt(
        done=True
    )

    environment.refresh_from_db()
    assert environment.status == Environment.Status.FAILED
    assert f"set the environment variable {WIKI_SECRET_ENV}" in environment.failure_reason
    assert product_server.requests == []


def test_accepted_waits_for_the_signed_callback(
    wiki_over_http, product_server, wiki_secret, client
):
    product_server.play(Reply(202, {"status": "queued"}))
    environment, _ = _wiki_trial()

    assert services.environment_provision(environment_id=environment.pk) == services.Attempt(
        done=True
    )
    environment.refresh_from_db()
    assert environment.status == Environment.Status.PROVISIONING
    assert environment.url == ""
    # Asked again before the callback (the stall sweep does this), the product sees the same key.
    assert services.environment_provision(environment_id=environment.pk) == services.Attempt(
        done=True
    )
    first_request, second_request = product_server.requests
    assert first_request.headers["idempotency-key"] == second_request.headers["idempotency-key"]
    assert first_request.json()["callback_url"] == f"{settings.SITE_URL}/provisioning/callback"

    body = json.dumps(
        {
            "environment_id": str(environment.public_id),
            "status": "active",
            "url": WORKSPACE_URL,
            "external_id": "w-9",
        }
    ).encode()
    response = client.post(
        "/provisioning/callback",
        data=body,
        content_type="application/json",
        headers={signing.SIGNATURE_HEADER: signing.sign(wiki_secret, body)},
    )

    assert response.status_code == 200
    assert response.json() == {"environment_id": str(environment.public_id), "status": "active"}
    environment.refresh_from_db()
    assert environment.status == Environment.Status.ACTIVE
    assert environment.url == WORKSPACE_URL
    assert environment.external_id == "w-9"
    assert environment_events(events.ENVIRONMENT_ACTIVE, environment) == 1
    assert services.environment_provision(environment_id=environment.pk) == services.Attempt(
        done=True
    )
    assert len(product_server.requests) == 2


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_through_the_worker_a_wiki_trial_is_provisioned_by_the_product(
    wiki_over_http, product_server, wiki_secret, celery_worker
):
    product_server.play(Reply(200, {"url": WORKSPACE_URL, "external_id": "wiki-7"}))
    environment, admin = _wiki_trial()
    assert environment.product.provisioner == Product.Provisioner.HTTP

    wait_for(
        lambda: Environment.objects.filter(
            pk=environment.pk, status=Environment.Status.ACTIVE
        ).exists(),
        what="the wiki environment to become active",
    )
    environment.refresh_from_db()
    assert environment.url == WORKSPACE_URL
    assert environment.external_id == "wiki-7"
    assert environment.attempts == 1
    [request] = product_server.requests
    _assert_signed_for(environment, request, wiki_secret)
    assert request.json()["admin"] == {"id": str(admin.public_id), "email": admin.email}
    assert environment_events(events.ENVIRONMENT_ACTIVE, environment) == 1


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_through_the_worker_a_server_error_is_retried_until_active(
    wiki_over_http, product_server, wiki_secret, celery_worker
):
    product_server.play(Reply(503, "try later"), Reply(200, {"url": WORKSPACE_URL}))
    environment, _ = _wiki_trial()

    wait_for(
        lambda: Environment.objects.filter(
            pk=environment.pk, status=Environment.Status.ACTIVE
        ).exists(),
        what="the wiki environment to become active after a retry",
    )
    environment.refresh_from_db()
    assert environment.attempts == 2
    assert environment.last_error == "Wiki answered 503: try later"
    assert len(product_server.requests) == 2
    for request in product_server.requests:
        _assert_signed_for(environment, request, wiki_secret)
    assert environment_events(events.ENVIRONMENT_ACTIVE, environment) == 1


def test_accepted_without_a_callback_fails_after_the_last_attempt(
    wiki_over_http, product_server, wiki_secret, settings
):
    product_server.play(Reply(202, {"status": "queued"}))
    environment, _ = _wiki_trial()
    for _ in range(settings.PROVISIONING_MAX_ATTEMPTS):  # the stall sweep asks again each time
        services.environment_provision(environment_id=environment.pk)
        environment.refresh_from_db()
        # Even the last 202 gets its time to call back.
        assert environment.status == Environment.Status.PROVISIONING
    services.environment_provision(environment_id=environment.pk)  # the sweep's next: no attempt is left
    environment.refresh_from_db()
    assert environment.status == Environment.Status.FAILED
    assert environment.failure_reason == (
        f"Gave up after {settings.PROVISIONING_MAX_ATTEMPTS} attempts. Last error: Wiki accepted the request; no callback came."
    )
    assert len(product_server.requests) == settings.PROVISIONING_MAX_ATTEMPTS
