"""The kit (static/kit/v1/kit.js) in headless Chromium, as a customer's product embeds it: a
product page on a second origin (a small server on another port) with a strict
Content-Security-Policy and a stylesheet that tries to break everything, loading the script
from the live Flywheel and talking to its real endpoints.

The message each test expects comes from Flywheel's own rules (an organization at its seat
limit, a member due for the survey), so these tests need identity's and messages' endpoints.
axe-core checks the kit's shadow tree; nothing outside the kit (the hostile page itself) is
judged."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import jwt
import pytest
import requests
from playwright.sync_api import expect

from accounts.models import Membership
from billing.models import Subscription
from experiments.models import Event
from feedback.models import Response
from inproduct.models import KitSecret

from ..conftest import organization_on, wait_for
from ..factories import MembershipFactory
from ..journeys.conftest import FAILING_IMPACTS, TIMEOUT_MS
from .conftest import claims_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

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


@pytest.fixture
def product_site(live_server, tracker_secret, settings):
    """Tracker's pages on a second origin, registered as Tracker's (a builtin product's origin
    is the demo product's: DEMO_PRODUCT_URL). Flywheel's links point at the live server."""
    site = ProductSite(live_server.url, tracker_secret)
    settings.DEMO_PRODUCT_URL = site.url
    settings.SITE_URL = live_server.url
    yield site
    site.stop()


@pytest.fixture
def open_page(browser, viewport):
    """`open_page(url)`: a fresh window at this run's width, the page loaded and the kit's
    script run. Reduced motion, so the card is at its final colours when axe reads them."""
    contexts = []

    def open_(url: str):
        context = browser.new_context(viewport=viewport, reduced_motion="reduce")
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.goto(url)
        return page

    yield open_
    for context in contexts:
        context.close()


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


def test_the_kit_shows_the_message_under_a_strict_csp_and_a_hostile_stylesheet(product_site, open_page, viewport):
    organization, admin, _ = seat_limit_organization()
    product_site.person = (admin, organization)

    page = open_page(product_site.url + "/")
    kit = page.locator("flywheel-kit")
    card = kit.locator("section")
    expect(card).to_be_visible(timeout=TIMEOUT_MS)
    title = card.get_by_role("heading").inner_text()
    assert "seats" in title.lower(), title

    # Where a person sees it: inside the window, as wide as the phone allows at most.
    box = card.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], box
    assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"], box
    # The hostile stylesheet reaches nothing inside: the kit's text keeps its own colour and size.
    colour, size = card.get_by_role("heading").evaluate("h => [getComputedStyle(h).color, getComputedStyle(h).fontSize]")
    assert colour != "rgb(255, 255, 0)" and size == "17px", (colour, size)

    # The fix opens Flywheel's page in the same tab, with the way back.
    link = card.get_by_role("link").first
    href = link.get_attribute("href")
    assert href.startswith(product_site.flywheel + "/"), href
    assert parse_qs(urlparse(href).query)["return_to"] == [product_site.url + "/"]

    assert page.evaluate("window.cspViolations") == []
    assert [event["type"] for event in kit_events(page)] == ["flywheel:shown"]
    assert kit_problems(page) == []
    wait_for(lambda: Event.objects.filter(name="kit_message_shown", user=admin).exists(), what="the shown event")


def test_a_member_asks_the_admins_and_closes_the_message_by_keyboard(product_site, open_page):
    organization, _, member = seat_limit_organization()
    product_site.person = (member, organization)

    page = open_page(product_site.url + "/")
    card = page.locator("flywheel-kit section")
    expect(card).to_be_visible(timeout=TIMEOUT_MS)
    expect(card).to_contain_text("Admins of")

    tab_to(page, "kit button Ask an admin")
    page.keyboard.press("Enter")
    outcome = card.get_by_role("status")
    expect(outcome).to_contain_text("We asked")
    assert focused(page).startswith("kit p We asked"), focused(page)  # the focus follows the outcome
    assert card.get_by_role("button", name="Ask an admin").count() == 0

    page.keyboard.press("Escape")
    expect(card).to_have_count(0)
    closed = [event for event in kit_events(page) if event["type"] == "flywheel:closed"]
    assert [event["detail"]["reason"] for event in closed] == ["clicked"]
    assert page.evaluate("window.cspViolations") == []
    assert Event.objects.filter(name="kit_admins_asked", user=member).exists()


def test_escape_dismisses_the_message_for_the_rest_of_the_session(product_site, open_page):
    organization, admin, _ = seat_limit_organization()
    product_site.person = (admin, organization)

    page = open_page(product_site.url + "/")
    card = page.locator("flywheel-kit section")
    expect(card).to_be_visible(timeout=TIMEOUT_MS)
    tab_to(page, "kit button Dismiss")
    page.keyboard.press("Escape")
    expect(card).to_have_count(0)
    assert focused(page) == "button Create a card"  # back where the focus came from
    wait_for(lambda: Event.objects.filter(name="kit_message_dismissed", user=admin).exists(), what="the dismissal")

    with page.expect_response(
        lambda answer: answer.url.endswith("/kit/v1/message") and answer.request.method == "GET"
    ) as answer:
        page.reload()
    assert answer.value.json() == {"message": None}
    page.wait_for_timeout(200)
    expect(page.locator("flywheel-kit section")).to_have_count(0)


def test_a_member_answers_the_survey_by_keyboard(product_site, open_page, settings):
    settings.FEEDBACK_MIN_TENURE_DAYS = 0
    organization, _ = organization_on("standard")  # a 14-day trial: no billing prompt yet
    member = MembershipFactory(organization=organization, role=Membership.Role.MEMBER).user
    product_site.person = (member, organization)

    page = open_page(product_site.url + "/")
    card = page.locator("flywheel-kit section")
    expect(card.get_by_role("radio")).to_have_count(11, timeout=TIMEOUT_MS)
    assert kit_problems(page) == []

    tab_to(page, "kit input")  # the first score; the arrows move along the scale
    for _ in range(9):
        page.keyboard.press("ArrowRight")
    assert card.get_by_role("radio", name="9").is_checked()
    page.keyboard.press("Tab")
    assert focused(page).startswith("kit select"), focused(page)
    page.keyboard.press("ArrowDown")  # the first role
    page.keyboard.press("Tab")
    page.keyboard.type("The board keeps our releases on track.")
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # may contact me
    page.keyboard.press("Tab")
    assert focused(page) == "kit button Send", focused(page)
    assert kit_problems(page) == []
    page.keyboard.press("Enter")

    expect(card.get_by_role("status")).to_contain_text("Thank")
    response = wait_for(lambda: Response.objects.filter(user=member).first(), what="the answer")
    assert (response.score, response.role, response.comment, response.may_contact) == (
        9, "developer", "The board keeps our releases on track.", True
    )
    assert page.evaluate("window.cspViolations") == []


def test_a_used_token_is_replaced_through_token_url_and_track_reports_a_success(product_site, open_page):
    organization, admin, _ = seat_limit_organization()
    product_site.person = (admin, organization)
    used = product_site.token()
    exchange = requests.post(
        f"{product_site.flywheel}/kit/v1/session", json={"token": used}, headers={"Origin": product_site.url}, timeout=10
    )
    assert exchange.status_code == 200, exchange.text

    # A page restored from the browser's cache carries a token already exchanged.
    page = open_page(f"{product_site.url}/?refresh=1&token={used}")
    expect(page.locator("flywheel-kit section")).to_be_visible(timeout=TIMEOUT_MS)

    with page.expect_response(lambda answer: answer.url.endswith("/kit/v1/events")) as answer:
        page.get_by_role("button", name="Create a card").click()
    assert answer.value.status == 204
    assert page.evaluate("window.cspViolations") == []


def test_an_admin_starts_a_trial_of_another_product_in_one_click_in_the_products_colours(product_site, open_page):
    organization, admin = organization_on("standard")  # a new admin: not yet asked for the survey
    product_site.person = (admin, organization)

    page = open_page(product_site.url + "/?theme=1")
    card = page.locator("flywheel-kit section")
    offers = card.get_by_role("listitem")
    expect(offers.first).to_be_visible(timeout=TIMEOUT_MS)
    # The product's accent, through the hostile stylesheet: the card's top edge and its links.
    assert card.evaluate("c => getComputedStyle(c).borderTopColor") == "rgb(15, 118, 110)"
    assert kit_problems(page) == []

    name = offers.first.locator("strong").inner_text()
    offers.first.get_by_role("button").click()
    expect(card.get_by_role("status")).to_contain_text("trial has started")
    workspace = card.get_by_role("link", name=f"Open your {name} workspace")
    assert workspace.evaluate("a => getComputedStyle(a).color") == "rgb(15, 118, 110)"
    assert Subscription.objects.filter(organization=organization, product__name=name).exists()
    assert card.get_by_role("listitem").count() == 0
    assert page.evaluate("window.cspViolations") == []
