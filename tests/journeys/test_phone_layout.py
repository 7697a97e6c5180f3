"""At 390 px (a phone) no page scrolls sideways, and the header folds into a Menu button.

Before the design system, a signed-in page was about 760 px wide because the header did not
wrap. An organization with a long name and an admin with a long address make it harder.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ..conftest import organization_on
from ..factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
TIMEOUT_MS = 20_000
PHONE = {"width": 390, "height": 844}
LONG_NAME = "Acme Intergalactic Widgets and Extraordinarily Long Names Holding Company Limited"


def _context(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport=PHONE)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    return context


def _log_in(page, email):
    page.goto("/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login" not in url)


def _page_width(page, path) -> int:
    page.goto(path)
    page.wait_for_load_state("load")
    return page.evaluate("document.documentElement.scrollWidth")


def test_no_page_scrolls_sideways_at_390_px(catalog, live_server, browser):
    organization, admin = organization_on("standard", members=3)
    organization.name = LONG_NAME
    organization.save(update_fields=["name"])
    admin.email = "dana.with.a.very.long.address.for.testing@" + organization.email_domain
    admin.save(update_fields=["email"])
    admin.emailaddress_set.update(email=admin.email)
    staff = UserFactory(is_staff=True)

    widths = {}
    visitor = _context(browser, live_server)
    try:
        page = visitor.new_page()
        for path in ("/", "/accounts/login/", "/accounts/signup/", "/api/"):
            widths[f"visitor {path}"] = _page_width(page, path)
    finally:
        visitor.close()

    signed_in = _context(browser, live_server)
    try:
        page = signed_in.new_page()
        _log_in(page, admin.email)
        # The header folds behind the Menu button, which opens and closes it.
        toggle = page.locator("button.menu-toggle")
        expect(toggle).to_be_visible()
        expect(toggle).to_have_attribute("aria-expanded", "false")
        expect(page.locator("#site-nav")).to_be_hidden()
        toggle.click()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        expect(page.locator("#site-nav").get_by_role("link", name="Members")).to_be_visible()
        expect(page.locator("#site-nav .nav-org .truncate")).to_have_attribute("title", LONG_NAME)
        widths["admin, menu open"] = page.evaluate("document.documentElement.scrollWidth")
        for path in ("/", "/app/", "/app/members/", "/billing/", "/community/", "/app/api-keys/", "/api/"):
            widths[f"admin {path}"] = _page_width(page, path)
    finally:
        signed_in.close()

    staff_context = _context(browser, live_server)
    try:
        page = staff_context.new_page()
        _log_in(page, staff.email)
        for path in ("/community/", "/staff/funnel/"):
            widths[f"staff {path}"] = _page_width(page, path)
    finally:
        staff_context.close()

    too_wide = {page: width for page, width in widths.items() if width > PHONE["width"]}
    assert too_wide == {}


def test_the_desktop_header_shows_every_link_and_opens_the_staff_panel(catalog, live_server, browser):
    staff = UserFactory(is_staff=True)
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        _log_in(page, staff.email)
        page.goto("/community/")
        expect(page.locator("button.menu-toggle")).to_be_hidden()
        panel = page.locator("#staff-menu")
        expect(panel).to_be_hidden()
        page.locator(".staff-menu summary").click()
        expect(panel.get_by_role("link", name="Support queue")).to_be_visible()
        # The panel floats over the page instead of pushing the header open.
        header_height = page.locator("header.site-header").bounding_box()["height"]
        assert header_height < 80
        assert panel.bounding_box()["height"] > 200
        page.keyboard.press("Escape")
        expect(panel).to_be_hidden()
    finally:
        context.close()


def _rgb_luminance(css_colour: str) -> float:
    red, green, blue = (int(part) / 255 for part in re.findall(r"\d+", css_colour)[:3])
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (red, green, blue)]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_the_start_free_trial_button_is_readable(live_server, browser):
    """It was dark text on blue, about 2:1; WCAG AA asks 4.5:1 for its 16 px bold text."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.goto("/accounts/login/")
        button = page.locator("header a.button", has_text="Start free trial")
        expect(button).to_be_visible()
        colour, background = button.evaluate("el => [getComputedStyle(el).color, getComputedStyle(el).backgroundColor]")
        lighter, darker = sorted((_rgb_luminance(colour), _rgb_luminance(background)), reverse=True)
        assert (lighter + 0.05) / (darker + 0.05) >= 4.5, (colour, background)
    finally:
        context.close()
