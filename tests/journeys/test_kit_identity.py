"""The kit's identity in a real browser, cross-origin as on a customer's page: Chromium's own
CORS decides what a product page may read. A registered origin exchanges a good token (through
the preflight) and calls an endpoint with the credential; a forged, expired or foreign token is
refused in words the page can read; a page on an unregistered origin cannot read anything."""

from __future__ import annotations

import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest

from accounts.models import Membership
from catalog.models import Product
from inproduct.identity import kit_secret_issue
from inproduct.models import KitSession

from ..conftest import organization_on
from ..factories import MembershipFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.inproduct.probe_urls"),  # the kit's URLs and /probe/whoami behind kit_endpoint
]
TIMEOUT_MS = 20_000

EXCHANGE = """async ({flywheel, token}) => {
  try {
    const response = await fetch(`${flywheel}/kit/v1/session`, {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({token}),
    });
    return {status: response.status, body: await response.json()};
  } catch (error) {
    return {error: String(error)};
  }
}"""

WHOAMI = """async ({flywheel, credential}) => {
  try {
    const response = await fetch(`${flywheel}/probe/whoami`, {headers: {"Authorization": `Bearer ${credential}`}});
    return {status: response.status, body: await response.json()};
  } catch (error) {
    return {error: String(error)};
  }
}"""


class ProductPage(BaseHTTPRequestHandler):
    """A product's page: nothing but a title (the test drives fetch() from it)."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b"<!doctype html><html lang=en><title>A product</title><h1>A product</h1></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def page_server():
    """page_server() -> the origin of a new product page server on a free port."""
    servers: list[ThreadingHTTPServer] = []

    def _start() -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), ProductPage)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield _start
    for server in servers:
        server.shutdown()
        server.server_close()


def mint(kit_secret, value, user, organization, **overrides) -> str:
    now = int(time.time())
    claims = {
        "iss": "tracker", "aud": "flywheel-kit", "sub": str(user.public_id), "org": str(organization.public_id),
        "iat": now, "exp": now + 300, "jti": secrets.token_urlsafe(24), **overrides,
    }
    return jwt.encode(claims, value, algorithm="HS256", headers={"kid": kit_secret.key_id})


def test_a_product_page_exchanges_its_token_and_nothing_else_gets_through(
    catalog, live_server, browser, page_server, settings, tmp_path
):
    product_origin, evil_origin = page_server(), page_server()
    settings.DEMO_PRODUCT_URL = product_origin  # Tracker (builtin) runs its pages there
    kit_secret, value = kit_secret_issue(product=Product.objects.get(code="tracker"))
    organization, admin = organization_on("standard")
    elsewhere = MembershipFactory(role=Membership.Role.ADMIN)
    flywheel = live_server.url

    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto(product_origin + "/")

        good = page.evaluate(EXCHANGE, {"flywheel": flywheel, "token": mint(kit_secret, value, admin, organization)})
        assert good.get("status") == 200, good
        assert good["body"]["product"] == {"code": "tracker", "name": "Tracker"}
        whoami = page.evaluate(WHOAMI, {"flywheel": flywheel, "credential": good["body"]["session"]})
        assert whoami.get("status") == 200, whoami
        assert whoami["body"]["user"] == str(admin.public_id)

        forged = page.evaluate(
            EXCHANGE, {"flywheel": flywheel, "token": mint(kit_secret, "fwk_" + "f" * 43, admin, organization)}
        )
        assert forged.get("status") == 401, forged
        assert "signature does not match" in forged["body"]["detail"]

        now = int(time.time())
        expired = page.evaluate(
            EXCHANGE,
            {"flywheel": flywheel, "token": mint(kit_secret, value, admin, organization, iat=now - 900, exp=now - 600)},
        )
        assert expired.get("status") == 401, expired
        assert "expired" in expired["body"]["detail"]

        foreign = page.evaluate(
            EXCHANGE, {"flywheel": flywheel, "token": mint(kit_secret, value, elsewhere.user, organization)}
        )
        assert foreign.get("status") == 403, foreign
        assert "not a member of its organization" in foreign["body"]["detail"]

        page.goto(evil_origin + "/")
        stolen = page.evaluate(EXCHANGE, {"flywheel": flywheel, "token": mint(kit_secret, value, admin, organization)})
        assert "error" in stolen, stolen  # the browser hides the answer: a network error
        replayed_credential = page.evaluate(WHOAMI, {"flywheel": flywheel, "credential": good["body"]["session"]})
        assert "error" in replayed_credential, replayed_credential
    except Exception:
        page.screenshot(path=str(tmp_path / "kit-identity.png"), full_page=True)
        raise
    finally:
        context.close()
    assert KitSession.objects.count() == 1
