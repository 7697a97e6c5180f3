"""`kit_endpoint` and CORS: every kit endpoint but the script answers only the product's
origins, reads the session credential into `request.kit`, and refuses a missing, expired or
tampered credential (401), one from another origin (403) or of a removed member (401)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.models import Membership
from inproduct.models import KitSession

pytestmark = pytest.mark.urls("tests.inproduct.probe_urls")

EVIL = "https://evil.example"
EXPIRED = {"detail": "Your Flywheel session has expired: reload the page."}


@pytest.fixture
def credential(mint, exchange):
    """exchange a token for the admin (or `user=`) -> the session credential."""

    def _credential(**mint_options):
        response = exchange(mint(**mint_options))
        assert response.status_code == 200, response.json()
        return response.json()["session"]

    return _credential


@pytest.fixture
def call(client, demo_origin):
    def _call(credential, *, path="/probe/whoami", origin=None, method="get"):
        headers = {} if origin == "" else {"HTTP_ORIGIN": origin or demo_origin}
        if credential is not None:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {credential}"
        return getattr(client, method)(path, **headers)

    return _call


def test_the_credential_names_the_caller(credential, call, acme, demo_origin):
    organization, admin, _member = acme
    response = call(credential())
    assert response.status_code == 200
    assert response.json() == {
        "user": str(admin.public_id),
        "organization": str(organization.public_id),
        "product": "tracker",
        "origin": demo_origin,
        "session": str(KitSession.objects.get().public_id),
        "is_admin": True,
    }
    assert response["Access-Control-Allow-Origin"] == demo_origin
    assert "Origin" in response["Vary"]


def test_a_call_without_a_credential_is_refused_readably(call, catalog, demo_origin):
    response = call(None)
    assert response.status_code == 401
    assert response.json() == EXPIRED
    # The kit must be able to read the 401 to exchange a fresh token.
    assert response["Access-Control-Allow-Origin"] == demo_origin


def test_a_tampered_credential_is_refused(credential, call):
    good = credential()
    for tampered in (good[:-2] + ("AA" if not good.endswith("AA") else "BB"), "x" + good, "garbage", "a:b:c", "é" * 30):
        response = call(tampered)
        assert response.status_code == 401, tampered
        assert response.json() == EXPIRED


def test_a_credential_from_the_token_of_another_scheme_is_refused(call, catalog, client):
    response = client.get("/probe/whoami", HTTP_ORIGIN="http://127.0.0.1:8001", HTTP_AUTHORIZATION="Basic abc")
    assert response.status_code == 401


def test_an_expired_credential_is_refused(credential, call):
    good = credential()
    with time_machine.travel(timezone.now() + timedelta(seconds=3601), tick=False):
        response = call(good)
    assert response.status_code == 401
    assert response.json() == EXPIRED


def test_a_credential_is_bound_to_its_origin(credential, call, tracker):
    good = credential()
    tracker.kit_origins = ["https://tracker.example"]
    tracker.save(update_fields=["kit_origins"])

    response = call(good, origin="https://tracker.example")

    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response
    assert "was issued to a page on http://127.0.0.1:8001" in response.json()["detail"]


def test_a_removed_member_is_refused(credential, call, acme):
    organization, _admin, member = acme
    good = credential(user=member)
    Membership.objects.filter(organization=organization, user=member).delete()
    response = call(good)
    assert response.status_code == 401
    assert response.json() == EXPIRED


def test_a_foreign_origin_is_refused_without_cors(credential, call):
    good = credential()
    response = call(good, origin=EVIL)
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response
    # The session was issued on the demo origin: that is what is wrong.
    assert response.json()["detail"].startswith("This Flywheel session was issued to a page on")


def test_a_foreign_origin_without_a_credential_is_refused(call, catalog):
    response = call(None, origin=EVIL)
    assert response.status_code == 403
    assert response.json() == {
        "detail": "Requests from https://evil.example are not allowed: no product registers this origin in the catalog (kit_origins)."
    }
    assert "Access-Control-Allow-Origin" not in response


def test_a_call_without_an_origin_is_refused(credential, call):
    response = call(credential(), origin="")
    assert response.status_code == 403
    assert response.json()["detail"].startswith("Requests without an Origin header are not allowed")


def test_an_origin_the_product_no_longer_registers_is_refused(credential, call, tracker, settings):
    good = credential()
    settings.DEMO_PRODUCT_URL = "http://127.0.0.1:9999"
    response = call(good)
    assert response.status_code == 403
    assert response.json() == {
        "detail": "Requests from http://127.0.0.1:8001 are not allowed for Tracker: register the origin in the catalog (kit_origins)."
    }


def test_the_exchange_refuses_a_foreign_origin_naming_the_product(mint, exchange, nothing_written):
    response = exchange(mint(), origin=EVIL)
    assert response.status_code == 403
    assert response.json() == {
        "detail": "Requests from https://evil.example are not allowed for Tracker: register the origin in the catalog (kit_origins)."
    }
    assert "Access-Control-Allow-Origin" not in response
    nothing_written()


def test_the_exchange_refuses_a_missing_origin(mint, exchange, nothing_written):
    response = exchange(mint(), origin="")
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response
    nothing_written()


def test_the_exchange_refuses_an_origin_that_is_not_one(mint, exchange, nothing_written, demo_origin):
    for origin in (demo_origin + "/", demo_origin + "/page", "null", demo_origin.upper()):
        response = exchange(mint(), origin=origin)
        assert response.status_code == 403, origin
    nothing_written()


def test_another_products_origin_is_refused_for_this_product(mint, exchange, nothing_written, tracker):
    from catalog.models import Product

    wiki = Product.objects.get(code="wiki")
    wiki.kit_origins = ["https://wiki.example"]
    wiki.save(update_fields=["kit_origins"])
    response = exchange(mint(), origin="https://wiki.example")
    assert response.status_code == 403
    assert "not allowed for Tracker" in response.json()["detail"]
    nothing_written()


def test_a_forged_token_from_a_foreign_origin_is_refused_as_the_origin(mint, exchange, nothing_written):
    response = exchange(mint(secret="fwk_" + "y" * 43), origin=EVIL)
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response
    nothing_written()


def test_a_refused_token_from_a_products_origin_is_readable(mint, exchange, demo_origin):
    response = exchange(mint(secret="fwk_" + "y" * 43))
    assert response.status_code == 401
    assert response["Access-Control-Allow-Origin"] == demo_origin


@pytest.mark.parametrize("path", ["/kit/v1/session", "/probe/whoami"])
def test_the_preflight_allows_the_products_origins(client, catalog, demo_origin, path):
    response = client.options(
        path,
        HTTP_ORIGIN=demo_origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == demo_origin
    assert response["Access-Control-Allow-Methods"] == "GET, POST"
    assert response["Access-Control-Allow-Headers"] == "Authorization, Content-Type"
    assert response["Access-Control-Max-Age"] == "600"
    assert "Origin" in response["Vary"]
    assert "Access-Control-Allow-Credentials" not in response


@pytest.mark.parametrize("path", ["/kit/v1/session", "/probe/whoami"])
def test_the_preflight_refuses_other_origins(client, catalog, path):
    response = client.options(path, HTTP_ORIGIN=EVIL, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response
    assert response.json()["detail"].startswith("Requests from https://evil.example are not allowed")


def test_a_view_refusal_is_json_with_cors(credential, client, demo_origin):
    response = client.post("/probe/refuse", HTTP_ORIGIN=demo_origin, HTTP_AUTHORIZATION=f"Bearer {credential()}")
    assert response.status_code == 404
    assert response.json() == {"detail": "There is no such message."}
    assert response["Access-Control-Allow-Origin"] == demo_origin


def test_a_method_the_view_does_not_answer_is_refused(credential, call):
    response = call(credential(), path="/probe/refuse", method="get")
    assert response.status_code == 405
    assert response.json() == {"detail": "This address answers POST only."}


def test_posting_needs_no_csrf_token(credential, client, demo_origin, settings):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/probe/refuse", HTTP_ORIGIN=demo_origin, HTTP_AUTHORIZATION=f"Bearer {credential()}")
    assert response.status_code == 404


def test_a_call_touches_the_session_at_most_once_a_minute(credential, call, django_assert_num_queries):
    good = credential()
    seen = KitSession.objects.get().last_seen_at
    with django_assert_num_queries(1):  # the session with its membership: no write
        assert call(good).status_code == 200
    assert KitSession.objects.get().last_seen_at == seen

    later = timezone.now() + timedelta(minutes=5)
    with time_machine.travel(later, tick=False):
        with django_assert_num_queries(2):
            assert call(good).status_code == 200
    assert KitSession.objects.get().last_seen_at == later


def test_a_deactivated_person_is_refused(credential, call, acme):
    _organization, _admin, member = acme
    good = credential(user=member)
    member.is_active = False
    member.save(update_fields=["is_active"])
    response = call(good)
    assert response.status_code == 401
    assert response.json() == EXPIRED


def test_the_caller_is_read_in_one_query_with_its_membership(credential, call, acme, django_assert_num_queries):
    """The view may use the caller's organization, person and membership without more queries."""
    _organization, _admin, member = acme
    good = credential(user=member)
    with django_assert_num_queries(1):
        body = call(good).json()
    assert body["is_admin"] is False


@pytest.mark.parametrize("origin", ["http://[", "http://127.0.0.1:99999", "http://127.0.0.1:port"])
def test_an_origin_that_is_not_a_url_is_refused(credential, call, client, origin):
    assert call(credential(), origin=origin).status_code == 403
    assert call(None, origin=origin).status_code == 403
    assert client.options("/probe/whoami", HTTP_ORIGIN=origin).status_code == 403
