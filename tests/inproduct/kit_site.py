"""The product site the kit's browser tests embed it in: a page on a second origin (a small
server on another port) with a strict Content-Security-Policy and a hostile stylesheet, the
fixtures that open it, and what the tests read from the kit (shared by test_kit_browser.py
and test_feature_offer_browser.py)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import jwt

from accounts.models import Membership
from inproduct.models import KitSecret

from ..conftest import organization_on
from ..journeys.conftest import FAILING_IMPACTS

# Everything a careless or hostile product stylesheet could do to an embedded widget.
HOSTILE_CSS = """
* { all: unset !important; }
div, section, aside, form, dialog { display: none !important; }
flywheel-kit { display: none !important; visibility: hidden !important; position: absolute !important;
  left: -9999px !important; font-size: 48px !important; color: #ff0 !important; }
button, a, p, h1, h2, label, input, select { color: #ff0 !important; background: #ff0 !important;
  font-size: 4px !important; }
"""

# The product's theme: custom properties cross into the shadow root, and nothing else does.
THEME_CSS = "flywheel-kit { --flywheel-accent: #0f766e; --flywheel-radius: 4px; }"

# The product's own script (an external file: the CSP allows no inline script). It records
# what the kit dispatches and every CSP violation, for the test to read.
PAGE_JS = """
window.kitEvents = [];
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
for (const name of ["flywheel:shown", "flywheel:closed", "flywheel:error"]) {
  document.addEventListener(name, (e) => kitEvents.push({ type: e.type, detail: e.detail }));
}
document.getElementById("create-card").addEventListener("click", async () => {
  await customElements.whenDefined("flywheel-kit");
  await document.querySelector("flywheel-kit").track("first_success");
  document.getElementById("create-card").textContent = "Card created";
});
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Board - Tracker</title>
<link rel="stylesheet" href="/hostile.css">{theme}
<script type="module" src="/page.js"></script>
</head><body>
<header><a href="/">Board</a> <a href="/backlog">Backlog</a></header>
<main><h1>Board</h1><div class="card">Fix the login redirect</div>
<button id="create-card" type="button">Create a card</button></main>
<flywheel-kit token="{token}"{token_url}></flywheel-kit>
<script type="module" src="{flywheel}/kit/v1/kit.js"></script>
</body></html>"""


def token_mint(key_id: str, secret: str, *, user, organization) -> str:
    """A kit token as the product's server mints it (docs/in-product.md, "The token")."""
    from .conftest import claims_for  # here: conftest.py's fixtures use this module

    return jwt.encode(claims_for(user, organization), secret, algorithm="HS256", headers={"kid": key_id})


class ProductSite:
    """The customer's product: its pages on their own origin (127.0.0.1 on a free port, while
    the live Flywheel is on localhost), each page minting a fresh token for `self.person`."""

    def __init__(self, flywheel: str, kit_secret: tuple[KitSecret, str]) -> None:
        self.flywheel = flywheel
        self.key_id, self.secret = kit_secret[0].key_id, kit_secret[1]
        self.person: tuple | None = None  # (user, organization)
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                url = urlparse(self.path)
                query = parse_qs(url.query)
                if url.path == "/":
                    site.page(self, query)
                elif url.path == "/flywheel-token":
                    site.answer(self, 200, "application/json", json.dumps({"token": site.token()}))
                elif url.path == "/page.js":
                    site.answer(self, 200, "text/javascript", PAGE_JS)
                elif url.path == "/hostile.css":
                    site.answer(self, 200, "text/css", HOSTILE_CSS)
                elif url.path == "/theme.css":
                    site.answer(self, 200, "text/css", THEME_CSS)
                else:
                    site.answer(self, 404, "text/plain", "not here")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self) -> str:
        user, organization = self.person
        return token_mint(self.key_id, self.secret, user=user, organization=organization)

    def page(self, handler, query) -> None:
        token = query.get("token", [None])[0] or self.token()
        refresh = "refresh" in query
        # The strict policy of the brief; the page that uses token-url also needs 'self' to
        # fetch it (docs/in-product.md, "Content-Security-Policy").
        connect = f"'self' {self.flywheel}" if refresh else self.flywheel
        policy = f"default-src 'self'; script-src 'self' {self.flywheel}; connect-src {connect}; style-src 'self'"
        html = PAGE.format(
            theme='\n<link rel="stylesheet" href="/theme.css">' if "theme" in query else "",
            token=token, token_url=' token-url="/flywheel-token"' if refresh else "", flywheel=self.flywheel
        )
        self.answer(handler, 200, "text/html; charset=utf-8", html, {"Content-Security-Policy": policy})

    @staticmethod
    def answer(handler, status: int, content_type: str, body: str, headers: dict | None = None) -> None:
        data = body.encode()
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def seat_limit_organization():
    """An organization on Tracker Free with all 10 seats taken: every member sees the
    seat-limit prompt, the admin with its fix, a member with "ask an admin"."""
    organization, admin = organization_on("free", members=10)
    member = Membership.objects.filter(organization=organization, role=Membership.Role.MEMBER).first().user
    return organization, admin, member


def kit_problems(page) -> list[str]:
    """axe-core's serious and critical violations inside the kit (its shadow tree)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, context="flywheel-kit")
    return [
        f"{violation['id']} [{violation['impact']}] {violation['help']}: "
        + "; ".join(json.dumps(node["target"]) for node in violation["nodes"][:5])
        for violation in results.response["violations"]
        if violation.get("impact") in FAILING_IMPACTS
    ]


def focused(page) -> str:
    """What has the keyboard focus, seen through the kit's shadow root: its tag, accessible
    label or text."""
    return page.evaluate(
        """() => {
          const kit = document.querySelector("flywheel-kit");
          const inside = kit && kit.shadowRoot.activeElement;
          const element = inside || document.activeElement;
          const name = element.getAttribute("aria-label") || element.textContent.trim() || element.value || "";
          return `${inside ? "kit " : ""}${element.tagName.toLowerCase()} ${name}`.trim();
        }"""
    )


def tab_to(page, wanted: str, *, limit: int = 20) -> None:
    """Press Tab until the focus is on `wanted` (a prefix of `focused()`)."""
    seen = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        seen.append(focused(page))
        if seen[-1].startswith(wanted):
            return
    raise AssertionError(f"Tab never reached {wanted!r}; it went through {seen}")


def kit_events(page) -> list[dict]:
    return page.evaluate("window.kitEvents")
