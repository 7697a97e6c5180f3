"""Hostile input to the token exchange: whatever is sent, the answer is a 4xx JSON
`{"detail": ...}` naming what was wrong, never a 500, and nothing is written."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from .conftest import DROP


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def raw_mint(tracker_secret):
    """Sign any header and payload bytes with Tracker's secret: hostile content that still
    carries a good signature, so every check after the signature is reached."""
    kit_secret, value = tracker_secret

    def _raw(header: bytes | None = None, payload: bytes = b"{}") -> str:
        header = header or json.dumps({"alg": "HS256", "typ": "JWT", "kid": kit_secret.key_id}).encode()
        signing_input = f"{b64(header)}.{b64(payload)}"
        signature = hmac.new(value.encode(), signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64(signature)}"

    return _raw


BAD_BODIES = [
    ("", "The body must be a JSON object."),
    ("not json", "The body must be a JSON object."),
    ("[]", "The body must be a JSON object."),
    ('"token"', "The body must be a JSON object."),
    ("{}", 'The body must hold the token as text: {"token": "<jwt>"}.'),
    ('{"token": 12}', 'The body must hold the token as text: {"token": "<jwt>"}.'),
    ('{"token": ["a.b.c"]}', 'The body must hold the token as text: {"token": "<jwt>"}.'),
    ('{"token": null}', 'The body must hold the token as text: {"token": "<jwt>"}.'),
    ("[" * 5000 + "]" * 5000, "The body must be a JSON object."),
    ('{"token": ' + "9" * 5000 + "}", "The body must be a JSON object."),
]


@pytest.mark.parametrize(("body", "detail"), BAD_BODIES)
def test_a_body_that_is_not_a_token_is_a_400(exchange, catalog, nothing_written, body, detail):
    response = exchange(None, body=body)
    assert response.status_code == 400
    assert response.json() == {"detail": detail}
    nothing_written()


def test_a_huge_body_is_refused(exchange, catalog, nothing_written):
    response = exchange("a." * 20_000 + "a")
    assert response.status_code == 400
    assert response.json() == {"detail": "The body is too large: at most 16 KB."}
    nothing_written()


def test_a_nul_anywhere_in_the_body_is_a_400_json(exchange, catalog, nothing_written):
    for body in ('{"token": "a\\u0000.b.c"}', '{"tok\\u0000en": "x"}', "[" * 5000 + '"\\u0000"' + "]" * 5000):
        response = exchange(None, body=body)
        assert response.status_code == 400, body[:40]
        assert "detail" in response.json()
    nothing_written()


def test_a_get_is_refused(client, catalog, demo_origin):
    response = client.get("/kit/v1/session", HTTP_ORIGIN=demo_origin)
    assert response.status_code == 405
    assert response.json() == {"detail": 'Exchange a token with POST {"token": "<jwt>"}.'}
    assert response["Access-Control-Allow-Origin"] == demo_origin


NOT_JWTS = ["", "abc", "a.b", "a.b.c.d", "a b.c.d", "é.é.é", "a.b.c" + "\n", "..", "a." * 3000]


@pytest.mark.parametrize("token", NOT_JWTS)
def test_a_token_that_is_not_a_jwt_is_a_401(exchange, catalog, nothing_written, token):
    response = exchange(token)
    assert response.status_code in (400, 401), response.json()
    assert response.json()["detail"]
    nothing_written()


HOSTILE_HEADERS = [
    b"not json",
    b"[]",
    b'"HS256"',
    b'{"alg": "HS256"}',
    b'{"alg": "HS256", "kid": 7}',
    b'{"alg": "HS256", "kid": ""}',
    b'{"alg": "HS256", "kid": "tracker_\\u0000"}',
    b'{"alg": "HS256", "kid": "' + b"k" * 5000 + b'"}',
    b'{"alg": "HS256", "kid": "TRACKER_ABC\'; DROP TABLE"}',
    b'{"alg": ["HS256"], "kid": "x"}',
    b'{"alg": null}',
    b'{"alg": "none", "kid": "x"}',
    b'{"alg": "RS256", "kid": "x"}',
    b"[" * 3000 + b"]" * 3000,
    b"\xff\xfe",
]


@pytest.mark.parametrize("header", HOSTILE_HEADERS)
def test_a_hostile_header_is_a_401(exchange, raw_mint, nothing_written, header):
    response = exchange(raw_mint(header=header, payload=b'{"iss": "tracker"}'))
    assert response.status_code == 401, response.content
    assert response.json()["detail"].startswith("The token")
    nothing_written()


def _claims(acme, **overrides):
    organization, admin, _member = acme
    now = int(time.time())
    claims = {
        "iss": "tracker", "aud": "flywheel-kit", "sub": str(admin.public_id), "org": str(organization.public_id),
        "iat": now, "exp": now + 300, "jti": "j" * 32,
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not DROP}


HOSTILE_CLAIMS = [
    {"exp": True},
    {"iat": False},
    {"exp": "soon"},
    {"exp": None},
    {"exp": [1]},
    {"exp": 1e308},
    {"exp": 10**400},
    {"iat": -(10**400)},
    {"exp": float("nan")},
    {"exp": float("inf")},
    {"iat": float("-inf")},
    {"iss": ["tracker"]},
    {"iss": {"tracker": 1}},
    {"iss": 7},
    {"aud": ["flywheel-kit", "other"]},
    {"aud": 5},
    {"aud": {"x": 1}},
    {"sub": 12},
    {"sub": "not-a-uuid"},
    {"sub": "\u0000" * 36},
    {"sub": "0" * 5000},
    {"sub": ["a"]},
    {"org": "'; DROP TABLE accounts_organization; --"},
    {"org": None},
    {"jti": "short"},
    {"jti": "x" * 129},
    {"jti": "\u0000" * 20},
    {"jti": "with spaces in the jti ok?"},
    {"jti": 1234567890123456789},
    {"jti": "é" * 20},
    {"nbf": "tomorrow"},
    {"nbf": 10**12},
]


@pytest.mark.parametrize("overrides", HOSTILE_CLAIMS, ids=lambda value: repr(value)[:50])
def test_a_hostile_claim_is_a_401(exchange, raw_mint, acme, nothing_written, overrides):
    payload = json.dumps(_claims(acme, **overrides)).encode()
    response = exchange(raw_mint(payload=payload))
    assert response.status_code == 401, response.content
    assert response.json()["detail"].startswith("The token")
    nothing_written()


@pytest.mark.parametrize("payload", [b"[]", b"null", b"not json", b'"claims"', b"\xff", b"[" * 5000 + b"]" * 5000])
def test_a_payload_that_is_not_claims_is_a_401(exchange, raw_mint, nothing_written, payload):
    response = exchange(raw_mint(payload=payload))
    assert response.status_code == 401, response.content
    nothing_written()


def test_the_signed_control_token_is_accepted(exchange, raw_mint, acme):
    """The hostile tokens above differ from this one by one claim each."""
    response = exchange(raw_mint(payload=json.dumps(_claims(acme)).encode()))
    assert response.status_code == 200, response.json()


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "null", "http://[", "http://[::1", "http://127.0.0.1:99999", "http://127.0.0.1:abc", "http://127.0.0.1:8001\u0000", "x" * 5000, "http://127.0.0.1:8001, https://evil.example"]
)
def test_a_hostile_origin_is_a_403(mint, exchange, nothing_written, origin):
    response = exchange(mint(), origin=origin)
    assert response.status_code in (400, 403), response.content
    assert "Access-Control-Allow-Origin" not in response
    nothing_written()
