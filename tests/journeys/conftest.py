"""Headless Chromium (Debian's package) driven by Playwright, for the browser journeys."""

from __future__ import annotations

import os

import pytest
from django.db import connections
from playwright.sync_api import expect, sync_playwright

from ..conftest import DemoProductProcess, kit_secret_for
from ..factories import PASSWORD

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API runs an asyncio loop in this thread; the test's own ORM calls are
    # still plain synchronous code, so tell Django not to refuse them.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            # Inside sync_playwright() the code runs in another context, so Django's ORM opened
            # its own connection there: close it, or it outlives the test database.
            connections.close_all()


# The two widths every journey runs at: a laptop and a phone (an iPhone 12-15's CSS viewport).
VIEWPORTS = {"1280": {"width": 1280, "height": 800}, "390": {"width": 390, "height": 844}}
PHONE_WIDTH = 390
TIMEOUT_MS = 20_000
# axe-core's impacts that fail a journey (WCAG 2.1 AA: issue 16); "moderate" and "minor" do not.
FAILING_IMPACTS = ("serious", "critical")


@pytest.fixture(params=list(VIEWPORTS), ids=lambda name: f"{name}px")
def viewport(request) -> dict[str, int]:
    """The journey runs once per width: each run is one browser, its pages shared."""
    return VIEWPORTS[request.param]


def _selector(target) -> str:
    """axe's target of a node: a selector, a list of them, or (inside a shadow root) a list of
    lists, the host's selector first."""
    if isinstance(target, list):
        return " >>> ".join(_selector(part) for part in target)
    return str(target)


class PageChecks:
    """What every page a journey visits must pass, whatever its content: axe-core finds no
    serious or critical violation, and on a phone the page does not scroll sideways.

    Problems are collected rather than raised at once (with the expectations given to
    `soft()`), so that one run lists every page's problems and the journey still runs to the end;
    `assert_clean()` (called by the journey at its end, and by the fixture if it did not)
    fails with the whole list."""

    def __init__(self) -> None:
        from axe_playwright_python.sync_playwright import Axe

        self.axe = Axe()  # axe-core's script ships inside the wheel: nothing is fetched
        self.problems: list[str] = []
        self.checked: list[str] = []
        self.asserted = False

    def __call__(self, page, what: str = "") -> None:
        """Check the page the browser shows now (after its own scripts have settled)."""
        page.wait_for_load_state("load")
        width = page.viewport_size["width"] if page.viewport_size else 0
        where = f"{page.url} at {width}px" + (f" ({what})" if what else "")
        self.checked.append(where)
        results = self.axe.run(page)  # every rule axe-core runs by default (WCAG 2.x A/AA, best practices)
        for violation in results.response["violations"]:
            if violation.get("impact") not in FAILING_IMPACTS:
                continue
            targets = "; ".join(_selector(node["target"]) for node in violation["nodes"][:8])
            more = f" (+{len(violation['nodes']) - 8} more)" if len(violation["nodes"]) > 8 else ""
            self.problems.append(
                f"{where}: axe {violation['id']} [{violation['impact']}] {violation['help']}: {targets}{more}"
            )
        if width <= PHONE_WIDTH:
            scroll_width, inner_width = page.evaluate(
                "[document.documentElement.scrollWidth, window.innerWidth]"
            )
            if scroll_width > inner_width:
                self.problems.append(
                    f"{where}: scrolls sideways (document {scroll_width}px wide in a {inner_width}px window)"
                )

    def soft(self, condition: object, message: str) -> bool:
        """An expectation of what a person sees that does not stop the journey: a failure is
        listed with the pages' problems, and the journey goes on to show the rest."""
        if not condition:
            self.problems.append(f"expected: {message[:600]}")
        return bool(condition)

    def assert_clean(self) -> None:
        self.asserted = True
        if self.problems:
            pytest.fail(
                f"{len(self.problems)} problem(s) on the {len(self.checked)} page(s) checked:\n  "
                + "\n  ".join(self.problems),
                pytrace=False,
            )


@pytest.fixture
def check_page(request):
    """`check_page(page)` after each page a journey opens; the journey ends with
    `check_page.assert_clean()`."""
    checks = PageChecks()
    yield checks
    report = getattr(request.node, "report_call", None)
    if not checks.asserted and checks.problems and report is not None and report.passed:
        checks.assert_clean()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures know at teardown if it failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)
    checks = getattr(item, "funcargs", {}).get("check_page")
    if report.when == "call" and report.failed and isinstance(checks, PageChecks) and checks.problems:
        report.sections.append(("problems found before the failure", "\n".join(checks.problems)))


@pytest.fixture
def people(browser, live_server, viewport, request, tmp_path):
    """`people.open()` gives one person's browser window at this run's width (own cookies, the
    journeys' timeouts). When the test fails, each window's last page is kept as a full-page
    PNG and its HTML in the test's tmp_path, printed in the report."""

    class People:
        def __init__(self) -> None:
            self.pages = []

        def open(self):
            context = browser.new_context(base_url=live_server.url, viewport=viewport)
            context.set_default_timeout(TIMEOUT_MS)
            context.set_default_navigation_timeout(TIMEOUT_MS)
            page = context.new_page()
            self.pages.append(page)
            return page

    crowd = People()
    yield crowd
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for number, page in enumerate(crowd.pages, start=1):
            try:
                page.screenshot(path=str(tmp_path / f"person-{number}.png"), full_page=True)
                (tmp_path / f"person-{number}.html").write_text(page.content())
            except Exception:  # noqa: BLE001, S110 - the test's own failure matters more
                pass
        print(f"last pages of the failed journey: {tmp_path}")
    for page in crowd.pages:
        page.context.close()


def sign_in(page, email: str, password: str, check_page: PageChecks | None = None) -> None:
    page.goto("/accounts/login/")
    if check_page is not None:
        check_page(page, "sign-in form")
    form = page.locator("form").filter(has=page.locator("input[name=login]")).first
    form.locator("input[name=login]").fill(email)
    form.locator("input[name=password]").fill(password)
    form.locator("button[type=submit]").first.click()
    page.wait_for_url(lambda url: "/accounts/login" not in url)


def main_text(page) -> str:
    """What the page says in its main column, as a person reads it."""
    return page.locator("main").inner_text()


@pytest.fixture
def mailbox_on(settings, live_server):
    """/dev/mailbox is served only with DEBUG and the maildir backend (pytest-django swaps in
    locmem for this process; the worker, which sends the mail, writes to MAIL_DIR). Links the
    web process puts in mail point at the live server."""
    settings.DEBUG = True
    settings.EMAIL_BACKEND = "accounts.mail.MaildirBackend"
    settings.SITE_URL = live_server.url


def open_newest_mail(page, address: str, subject: str, *, timeout_s: float = 30) -> str:
    """Open, in the dev mailbox, the newest mail to `address` whose subject has `subject`,
    reloading until the worker has written it; returns the mail's text."""
    for _ in range(int(timeout_s * 4)):
        page.goto(f"/dev/mailbox/?to={address}")
        links = page.locator("#mailbox tr.mail a").filter(has_text=subject)
        if links.count():
            links.first.click()
            expect(page.locator("#mail-text")).to_be_visible()
            return page.locator("#mail-text").inner_text()
        page.wait_for_timeout(250)
    raise AssertionError(f"no mail {subject!r} to {address} within {timeout_s:.0f}s")


# The in-product journeys: the demo product as a second origin ------------------------------------


@pytest.fixture
def demo_product(live_server, settings, catalog):
    """The demo product beside Flywheel: each builtin product has a live kit secret, which the
    demo product gets in its environment (as `make run` gives it var/demo-product.env)."""
    settings.SITE_URL = live_server.url  # the links in the kit's messages point at the live server
    secrets = [kit_secret_for(code) for code in ("tracker", "wiki", "servicedesk")]
    product = DemoProductProcess(flywheel_url=live_server.url, kit_secrets=secrets)
    settings.DEMO_PRODUCT_URL = product.url  # its origin is the builtin products' kit origin
    yield product
    product.stop()


def open_workspace(page, demo_product, environment) -> None:
    """From Flywheel's workspace address to the product, signed in by the launch."""
    page.goto(f"/w/{environment.public_id}/")
    page.wait_for_url(f"{demo_product.url}/w/{environment.public_id}/")


def signed_in(people, user):
    """A window of `user`'s (a factory's user, PASSWORD), signed in to Flywheel."""
    page = people.open()
    sign_in(page, user.email, PASSWORD)
    return page


def kit_card(page):
    """The kit's message card, inside its shadow root."""
    return page.locator("flywheel-kit section.card")
