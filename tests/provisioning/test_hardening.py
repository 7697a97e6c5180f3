"""Provisioning holds its promises under odd answers, replays, races and a slow product."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from django.conf import settings

from provisioning import backends, services, signing
from provisioning.exceptions import TransientProvisioningError
from provisioning.models import Environment

from ..conftest import organization_on
from .conftest import Reply, make_http_product

WORKSPACE_URL = "https://wiki.example.test/acme"
HTMX = {"HX-Request": "true"}


def _wiki_trial():
    organization, admin = organization_on("standard", product_code="wiki")
    return Environment.objects.get(organization=organization, product__code="wiki"), admin


def test_an_attempt_that_fails_unexpectedly_is_retried_within_the_attempts_then_fails(wiki_over_http, product_server):
    """A 2xx whose url cannot be stored (a NUL character) is refused as no valid url; any attempt
    that fails unexpectedly counts as one, and none is made past PROVISIONING_MAX_ATTEMPTS."""
    product_server.play(Reply(200, {"url": "https://wiki.example.test/a\u0000b"}))
    environment, _ = _wiki_trial()

    for _sweep in range(settings.PROVISIONING_MAX_ATTEMPTS + 2):
        services.environment_provision(environment_id=environment.pk)
    environment.refresh_from_db()
    assert len(product_server.requests) == 1  # no valid url: refused for good
    assert environment.status == Environment.Status.FAILED and "without a valid http(s) url" in environment.failure_reason


def test_an_unforeseen_error_in_an_attempt_is_retried_then_fails(catalog, monkeypatch):
    environment, _ = _wiki_trial()
    calls = []

    def broken(env):
        calls.append(env.attempts)
        raise RuntimeError("the database went away")

    monkeypatch.setattr(backends, "provision", broken)
    outcomes = [services.environment_provision(environment_id=environment.pk) for _ in range(settings.PROVISIONING_MAX_ATTEMPTS + 2)]
    environment.refresh_from_db()
    assert calls == list(range(1, settings.PROVISIONING_MAX_ATTEMPTS + 1))
    assert [outcome.done for outcome in outcomes[: settings.PROVISIONING_MAX_ATTEMPTS]] == [False] * (settings.PROVISIONING_MAX_ATTEMPTS - 1) + [True]
    assert environment.status == Environment.Status.FAILED
    assert environment.failure_reason == (
        f"Gave up after {settings.PROVISIONING_MAX_ATTEMPTS} attempts. Last error: Unexpected error: RuntimeError: the database went away"
    )


def test_a_202_on_the_last_attempt_still_gets_its_callback_window(wiki_over_http, product_server):
    """Transient 503s, then the product accepts (202) on the last attempt: the environment waits
    for its callback like any other, and fails only when the sweep finds no attempt left."""
    max_attempts = settings.PROVISIONING_MAX_ATTEMPTS
    product_server.play(*([Reply(503, "busy")] * (max_attempts - 1)), Reply(202, ""))
    environment, _ = _wiki_trial()

    for _ in range(max_attempts):
        services.environment_provision(environment_id=environment.pk)

    environment.refresh_from_db()
    assert environment.status == Environment.Status.PROVISIONING, environment.failure_reason


def test_a_replayed_failed_callback_does_not_undo_a_staff_retry(client, catalog, wiki_secret):
    """The product retries its 'failed' callback (the docs tell it to on a network error) after
    staff started the environment again: the old callback changes nothing."""
    wiki = make_http_product("wiki", "https://wiki.example.test/provision")
    environment, _ = _wiki_trial()
    Environment.objects.filter(pk=environment.pk).update(status=Environment.Status.PROVISIONING, attempts=1)
    body = json.dumps(
        {"environment_id": str(environment.public_id), "status": "failed", "reason": "region full"}
    ).encode()
    signature = signing.sign(wiki_secret, body)
    headers = {signing.SIGNATURE_HEADER: signature}
    assert client.post("/provisioning/callback", data=body, content_type="application/json", headers=headers).status_code == 200
    environment.refresh_from_db()
    assert environment.status == Environment.Status.FAILED

    services.environment_retry(environment=environment)  # staff fixed the region
    response = client.post("/provisioning/callback", data=body, content_type="application/json", headers=headers)

    environment.refresh_from_db()
    assert wiki.pk == environment.product_id
    assert environment.status == Environment.Status.REQUESTED, (response.status_code, response.content)


def test_a_stale_attempt_does_not_undo_a_staff_retry(catalog, monkeypatch):
    """An attempt still under way when staff retried the environment ends: its outcome belongs to
    an earlier attempt and changes nothing."""
    environment, _ = _wiki_trial()
    Environment.objects.filter(pk=environment.pk).update(attempts=settings.PROVISIONING_MAX_ATTEMPTS - 1)

    def slow_then_timeout(env):
        services.environment_fail(environment_id=env.pk, reason="Wiki: region full")  # callback
        services.environment_retry(environment=Environment.objects.get(pk=env.pk))  # staff
        raise TransientProvisioningError("Wiki did not answer within 10 s.")

    monkeypatch.setitem(backends.BACKENDS, environment.product.provisioner, slow_then_timeout)
    services.environment_provision(environment_id=environment.pk)

    environment.refresh_from_db()
    assert environment.status == Environment.Status.REQUESTED, environment.failure_reason
    assert environment.attempts == 0


def test_the_home_page_poll_does_not_follow_the_workspace_link(client, catalog):
    """home.html includes the status fragment with follow=False (stay on the home page): its polls
    keep that, and only the status page goes to the workspace when it is active."""
    environment, admin = _wiki_trial()
    client.force_login(admin)

    fragment = client.get(f"/environments/{environment.public_id}/", headers=HTMX).content.decode()

    assert "?follow=1" not in fragment


def test_a_null_external_id_is_stored_as_empty(wiki_over_http, product_server):
    product_server.play(Reply(200, {"url": WORKSPACE_URL, "external_id": None}))
    environment, _ = _wiki_trial()

    services.environment_provision(environment_id=environment.pk)

    environment.refresh_from_db()
    assert environment.status == Environment.Status.ACTIVE
    assert environment.external_id == ""


@pytest.fixture
def drip_server():
    """Answers 200 headers at once, then one body byte every 0.5 s for 8 s."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.recv(65536)
                body = b" " * 16 + b'{"url":"https://wiki.example.test/x"}'
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                    + str(len(body)).encode() + b"\r\n\r\n"
                )
                for byte in body:
                    if stop.is_set():
                        break
                    conn.sendall(bytes([byte]))
                    time.sleep(0.5)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/provision"
    stop.set()
    thread.join(5)
    listener.close()


def test_a_dripping_product_is_cut_off_at_the_timeout(catalog, drip_server):
    make_http_product("wiki", drip_server)
    environment, _ = _wiki_trial()

    started = time.monotonic()
    services.environment_provision(environment_id=environment.pk)
    elapsed = time.monotonic() - started

    assert elapsed < 3 * settings.PROVISIONING_HTTP_TIMEOUT, f"one attempt took {elapsed:.1f} s"
