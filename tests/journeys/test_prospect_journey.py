"""A prospect, at 1280 px and at 390 px: the landing page, the signup form that names the
product picked, the verification mail, and the workspace ready, with axe-core and the
sideways-scroll check on every page (tests/journeys/conftest.py)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Membership
from common.money import money
from provisioning.models import Environment

from .conftest import main_text, open_newest_mail

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STRONG = "plum-Orchard-47-kettle"
SIGNUP_URL = "/signup?product=tracker&edition=standard&utm_source=journey"


def test_prospect_signs_up_verifies_and_reaches_the_workspace(
    celery_worker, catalog, mailbox_on, people, check_page, viewport
):
    email = f"robin-{viewport['width']}@studio.example"
    page = people.open()

    # 1. The landing page sells the products, with their prices.
    page.goto("/")
    check_page(page, "landing")
    landing = main_text(page)
    assert "Tracker" in landing and "Wiki" in landing, landing
    assert money(815, "USD") in landing, landing  # Tracker Standard per seat per month

    # 2. The signup form says what the prospect picked and asks for little: one password field.
    page.goto(SIGNUP_URL)
    check_page(page, "signup")
    expect(page).to_have_url(re.compile(r"/accounts/signup/"))
    signup = main_text(page)
    check_page.soft("Tracker" in signup and "Standard" in signup, f"the signup page names Tracker Standard:\n{signup}")
    check_page.soft(re.search(r"14[- ]day", signup), f"the signup page names the 14-day trial:\n{signup}")
    form = page.locator("form").filter(has=page.locator("input[name=email]"))
    passwords = form.locator("input[type=password]")
    check_page.soft(passwords.count() == 1, f"one password field on signup, not {passwords.count()}")
    form.locator("input[name=email]").fill(email)
    for number in range(passwords.count()):
        passwords.nth(number).fill(STRONG)
    form.locator("button[type=submit]").last.click()
    expect(page).not_to_have_url(re.compile(r"/accounts/signup/"))

    # 3. "Check your email".
    check_page(page, "verification sent")
    expect(page.locator("main")).to_contain_text(re.compile(r"\bemail\b", re.IGNORECASE))

    # 4. The verification mail names the site (no "Hello from !").
    text = open_newest_mail(page, email, "Confirm")
    check_page(page, "the verification mail in the dev mailbox")
    check_page.soft("Flywheel" in text, f"the verification mail names Flywheel:\n{text}")
    for broken in ("from !", " on .", "using !"):
        check_page.soft(broken not in text, f"no {broken!r} in the verification mail:\n{text}")

    # 5. The link confirms the address and the workspace is prepared, then ready.
    page.locator("#mail-text a[href*='/accounts/confirm-email/']").first.click()
    confirm = page.get_by_role("button", name=re.compile("Confirm", re.IGNORECASE))
    if confirm.count():  # allauth's confirm page is a POST form
        check_page(page, "confirm email")
        confirm.first.click()
    expect(page).not_to_have_url(re.compile(r"/accounts/confirm-email/"))
    workspace = page.locator("#workspace")
    expect(page.locator("#open-workspace").or_(workspace).first).to_be_visible(timeout=30_000)
    check_page(page, "workspace being prepared or ready")
    if not workspace.is_visible():
        page.locator("#open-workspace").click()
    expect(page).to_have_url(re.compile(r"/w/[0-9a-f-]{36}/$"))
    expect(workspace).to_contain_text("Tracker")
    check_page(page, "workspace")

    # 6. /app/: the trial with its days left and a way to buy.
    page.goto("/app/")
    check_page(page, "home")
    home = main_text(page)
    assert "Tracker" in home and "Standard" in home, home
    check_page.soft(re.search(r"\b1[34] days\b", home), f"/app/ says the trial's days left:\n{home}")
    check_page.soft(page.locator("main a", has_text=re.compile(r"^\s*Buy\b")).count(), "/app/ has a Buy link")

    check_page.assert_clean()
    membership = Membership.objects.get(user__email=email)
    assert membership.role == Membership.Role.ADMIN
    assert Environment.objects.get(organization=membership.organization).status == Environment.Status.ACTIVE
