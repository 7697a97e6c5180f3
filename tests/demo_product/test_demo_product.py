"""The demo product as an outside product, over HTTP in its own process: Flywheel's launch
ticket signs a person in (once, for one workspace, for a minute), its page embeds the kit
under a strict CSP with a token minted per the contract, /flywheel-token refreshes it, and the
pages name what the kit's track() reports from an external script: each view, and after the
success action what was created and `first_success`."""

from __future__ import annotations

import re
import secrets
import time
import uuid
from types import SimpleNamespace

import jwt
import pytest
import requests

from ..conftest import DemoProductProcess

FLYWHEEL = "http://127.0.0.1:8765"  # not called: the kit's URL as the page names it
TRACKER = SimpleNamespace(
    product=SimpleNamespace(code="tracker"), key_id="tracker_0a1b2c3d", secret=f"fwk_{secrets.token_urlsafe(32)}"
)
WIKI = SimpleNamespace(product=SimpleNamespace(code="wiki"), key_id="wiki_4e5f6a7b", secret=f"fwk_{secrets.token_urlsafe(32)}")
SERVICE_DESK = SimpleNamespace(
    product=SimpleNamespace(code="servicedesk"), key_id="servicedesk_8c9d0e1f", secret=f"fwk_{secrets.token_urlsafe(32)}"
)


@pytest.fixture(scope="module")
def product():
    process = DemoProductProcess(flywheel_url=FLYWHEEL, kit_secrets=[TRACKER, WIKI, SERVICE_DESK])
    yield process
    process.stop()


def _ticket(environment: str, *, secret=TRACKER, product="tracker", lifetime=60, age=0, **changes) -> str:
    now = int(time.time()) - age
    claims = {
        "iss": "flywheel", "aud": "flywheel-demo-launch", "sub": str(uuid.uuid4()), "name": "Ada Lovelace",
        "email": "ada@acme.example", "org": str(uuid.uuid4()), "org_name": "Acme", "product": product,
        "product_name": product.title(), "environment": environment, "admin": True, "iat": now,
        "exp": now + lifetime, "jti": secrets.token_urlsafe(24),
    }
    claims.update(changes)
    return jwt.encode(claims, secret.secret, algorithm="HS256", headers={"kid": secret.key_id})


def _launch(product, environment: str, ticket: str) -> tuple[requests.Session, requests.Response]:
    browser = requests.Session()
    return browser, browser.get(f"{product.url}/w/{environment}/", params={"ticket": ticket}, allow_redirects=False)


def _kit_token(html: str) -> str:
    match = re.search(r'<flywheel-kit token="([^"]+)" token-url="([^"]+)"></flywheel-kit>', html)
    assert match, "no <flywheel-kit> element with a token"
    return match.group(1)


def test_a_launch_signs_the_person_in_and_the_page_embeds_the_kit_with_a_token_per_the_contract(product):
    environment = str(uuid.uuid4())
    ticket = _ticket(environment)
    claims = jwt.decode(ticket, options={"verify_signature": False})
    browser, landed = _launch(product, environment, ticket)

    assert landed.status_code == 302 and landed.headers["Location"] == f"/w/{environment}/"  # the ticket leaves the address
    assert landed.cookies.get("demo_product_session") and not landed.cookies.get("sessionid")  # its own cookie
    page = browser.get(f"{product.url}/w/{environment}/")
    assert page.status_code == 200
    html = page.text
    assert f'<script type="module" src="{FLYWHEEL}/kit/v1/kit.js"></script>' in html
    assert "Board" in html and "FLY-142" in html and "Ada Lovelace" in html and "Acme" in html
    assert f'href="{FLYWHEEL}/app/"' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "an inline script (the CSP forbids them)"
    assert " style=" not in html

    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and f"script-src 'self' {FLYWHEEL}" in csp
    assert f"connect-src 'self' {FLYWHEEL}" in csp and "style-src 'self'" in csp and "unsafe" not in csp

    token = _kit_token(html)
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT", "kid": TRACKER.key_id}
    minted = jwt.decode(token, TRACKER.secret, algorithms=["HS256"], audience="flywheel-kit", issuer="tracker")
    assert (minted["sub"], minted["org"]) == (claims["sub"], claims["org"])
    assert 0 < minted["exp"] - minted["iat"] <= 600 and 16 <= len(minted["jti"]) <= 128

    refreshed = browser.get(f"{product.url}/w/{environment}/flywheel-token")
    assert refreshed.status_code == 200 and refreshed.headers["Cache-Control"].startswith("max-age=0")
    fresh = jwt.decode(refreshed.json()["token"], TRACKER.secret, algorithms=["HS256"], audience="flywheel-kit")
    assert fresh["sub"] == claims["sub"] and fresh["jti"] != minted["jti"]


@pytest.mark.parametrize(
    ("what", "ticket", "reason"),
    [
        ("forged", lambda env: _ticket(env, secret=SimpleNamespace(key_id=TRACKER.key_id, secret="fwk_" + "x" * 43)),
         "not valid"),
        ("expired", lambda env: _ticket(env, age=600), "expired"),
        ("too long-lived", lambda env: _ticket(env, lifetime=3600), "too long"),
        ("for another workspace", lambda env: _ticket(str(uuid.uuid4())), "another workspace"),
        ("for another product's key", lambda env: _ticket(env, product="wiki"), "another workspace"),
        ("unknown key", lambda env: _ticket(env, secret=SimpleNamespace(key_id="tracker_ffffffff", secret=TRACKER.secret)),
         "does not know the key"),
        ("not a ticket", lambda env: "not-a-jwt", "damaged"),
    ],
)
def test_a_ticket_that_cannot_be_trusted_signs_nobody_in(product, what, ticket, reason):
    environment = str(uuid.uuid4())
    browser, refused = _launch(product, environment, ticket(environment))
    assert refused.status_code == 403, what
    assert reason in refused.text and "Could not sign you in" in refused.text
    assert "demo_product_session" not in refused.cookies
    assert browser.get(f"{product.url}/w/{environment}/flywheel-token").status_code == 401


def test_a_ticket_opens_one_session_only(product):
    environment = str(uuid.uuid4())
    ticket = _ticket(environment)
    _, first = _launch(product, environment, ticket)
    assert first.status_code == 302
    _, again = _launch(product, environment, ticket)
    assert again.status_code == 403 and "already used" in again.text


def test_without_a_session_the_workspace_sends_the_person_to_flywheel_to_launch_again(product):
    environment = str(uuid.uuid4())
    answer = requests.get(f"{product.url}/w/{environment}/", allow_redirects=False, timeout=10)
    assert answer.status_code == 302 and answer.headers["Location"] == f"{FLYWHEEL}/w/{environment}/"
    token = requests.get(f"{product.url}/w/{environment}/flywheel-token", timeout=10)
    assert token.status_code == 401 and "signed out" in token.json()["detail"]


def test_the_view_and_the_success_action_are_reported_to_the_kit_by_the_next_page_once(product):
    environment = str(uuid.uuid4())
    browser, _ = _launch(product, environment, _ticket(environment))
    page = browser.get(f"{product.url}/w/{environment}/")
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    created = browser.post(
        f"{product.url}/w/{environment}/create",
        data={"title": "Export invoices as PDF", "csrfmiddlewaretoken": csrf},
        headers={"Referer": f"{product.url}/w/{environment}/"},
    )
    assert created.status_code == 200
    assert 'data-track="board_viewed card_created first_success"' in created.text and "Card created" in created.text
    assert "Export invoices as PDF" in created.text and "FLY-143" in created.text
    script = browser.get(f"{product.url}/static/demo_product/product.js").text
    assert "kit.track(name)" in script and 'querySelector("flywheel-kit")' in script

    # The next view reports the view only.
    again = browser.get(f"{product.url}/w/{environment}/")
    assert 'data-track="board_viewed"' in again.text and "Export invoices as PDF" in again.text


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        (TRACKER, ['class="board"', "In progress", "Create a card"]),
        (WIKI, ['class="page-tree"', "Architecture overview", "Create a page"]),
        (SERVICE_DESK, ['class="queue"', "SD-2041", "Log a request"]),
    ],
    ids=["tracker", "wiki", "servicedesk"],
)
def test_each_builtin_product_has_a_page_of_its_own(product, secret, expected):
    environment = str(uuid.uuid4())
    browser, _ = _launch(product, environment, _ticket(environment, secret=secret, product=secret.product.code))
    html = browser.get(f"{product.url}/w/{environment}/").text
    for words in expected:
        assert words in html
    token = jwt.decode(_kit_token(html), secret.secret, algorithms=["HS256"], audience="flywheel-kit")
    assert token["iss"] == secret.product.code


def test_another_person_signing_in_in_the_same_browser_keeps_nothing_of_the_first_ones(product):
    first_workspace, second_workspace = str(uuid.uuid4()), str(uuid.uuid4())
    browser, _ = _launch(product, first_workspace, _ticket(first_workspace))
    assert browser.get(f"{product.url}/w/{first_workspace}/flywheel-token").status_code == 200
    browser.get(f"{product.url}/w/{second_workspace}/", params={"ticket": _ticket(second_workspace, name="Bob Smith")})
    assert browser.get(f"{product.url}/w/{second_workspace}/flywheel-token").status_code == 200
    assert browser.get(f"{product.url}/w/{first_workspace}/flywheel-token").status_code == 401


def test_trackers_board_asks_the_kit_for_github_sync_from_its_external_script(product):
    """The demo product reads no entitlements: its "Sync with GitHub" button asks the kit
    (element.requestFeature), which answers whether the organization has the feature."""
    environment = str(uuid.uuid4())
    browser, _ = _launch(product, environment, _ticket(environment))
    html = browser.get(f"{product.url}/w/{environment}/").text
    assert re.search(r'<button type="button" class="feature-button" data-feature="github-sync"[^>]*>Sync with GitHub</button>', html)
    assert "data-feature-status" in html and "<script>" not in html
    script = browser.get(f"{product.url}/static/demo_product/product.js").text
    assert 'kit.requestFeature(button.getAttribute("data-feature"))' in script
    environment = str(uuid.uuid4())
    browser, _ = _launch(product, environment, _ticket(environment, secret=WIKI, product="wiki"))
    assert "data-feature=" not in browser.get(f"{product.url}/w/{environment}/").text
