"""The signup journey in a real browser: landing link -> signup -> verification mail ->
workspace ready -> invite a colleague -> the colleague signs up through the invite -> both
see each other on the members page.

Headless Chromium (Debian's, at /usr/bin/chromium) drives the live server; the real Celery
worker sends the mail and provisions the workspace. If Chromium is missing the test fails.
"""

from __future__ import annotations

import re
import time
from urllib.parse import quote

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from accounts.models import Invite, Membership, Organization
from experiments.models import Event
from provisioning.models import Environment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STRONG = "plum-Orchard-47-kettle"
ADMIN_EMAIL = "pat@patterns.example"
COLLEAGUE_EMAIL = "quinn@patterns.example"
ORGANIZATION_NAME = "Patterns Inc"
TIMEOUT_MS = 20_000


@pytest.fixture
def journey_settings(settings, live_server):
    """/dev/mailbox is served only with DEBUG and the maildir backend (pytest-django swaps in
    locmem for this process; the worker, which sends all mail, still writes to MAIL_DIR).
    Links the web process puts in mail (invites) point at the live server."""
    settings.DEBUG = True
    settings.EMAIL_BACKEND = "accounts.mail.MaildirBackend"
    settings.SITE_URL = live_server.url


def new_context(browser, live_url: str) -> BrowserContext:
    """A browser context: one person, with their own cookies."""
    context = browser.new_context(base_url=live_url)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    return context


def open_mail(page: Page, address: str, subject: str, *, timeout: float = 30) -> None:
    """Open the newest mail to `address` whose subject contains `subject` in the dev mailbox,
    reloading until the worker has written it."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto(f"/dev/mailbox/?to={quote(address)}")
        links = page.locator("#mailbox tr.mail a").filter(has_text=subject)
        if links.count():
            links.first.click()
            expect(page.locator("#mail-text")).to_be_visible()
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"no mail {subject!r} to {address} within {timeout}s")
        page.wait_for_timeout(250)


def follow_mail_link(page: Page, path_part: str) -> None:
    link = page.locator("#mail-text a").filter(has_text=path_part)
    expect(link).to_have_count(1)
    link.click()


def sign_up(page: Page, email: str, *, button: str = "Start my free trial") -> None:
    """One password, no organization name: the organization is named later."""
    expect(page).to_have_url(re.compile(r"/accounts/signup/$"))
    email_field = page.locator("input[name=email]")
    if email_field.is_editable():
        email_field.fill(email)
    else:  # from an invite: the invited address, prefilled and locked
        expect(email_field).to_have_value(email)
    expect(page.locator("input[name=password2]")).to_have_count(0)
    expect(page.locator("input[name=organization_name]")).to_have_count(0)
    page.locator("input[name=password1]").fill(STRONG)
    page.get_by_role("button", name=button).click()
    expect(page).not_to_have_url(re.compile(r"/accounts/signup/$"))


def verify_email(page: Page, email: str) -> None:
    open_mail(page, email, "Confirm your email address to finish signing up")
    follow_mail_link(page, "/accounts/confirm-email/")
    expect(page.get_by_role("heading", name="Confirm your email address")).to_be_visible()
    page.get_by_role("button", name="Confirm my address").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/confirm-email/"))


def rename_organization(page: Page, name: str) -> None:
    page.goto("/app/organization/")
    page.locator("input[name=name]").fill(name)
    page.locator("main form button[type=submit]").first.click()
    expect(page.locator("header.top")).to_contain_text(name)


def expect_members(page: Page, *emails: str) -> None:
    page.goto("/app/members/")
    rows = page.locator("#members tr.member")
    expect(rows).to_have_count(len(emails))
    for address in emails:
        expect(page.locator(f'#members tr.member[data-email="{address}"]')).to_be_visible()


def test_signup_verify_workspace_invite_and_join(
    celery_worker, catalog, live_server, journey_settings, browser, tmp_path
):
    live_url = live_server.url
    pages: dict[str, Page] = {}
    try:
        admin = new_context(browser, live_url).new_page()
        pages["admin"] = admin

        # 1. The landing link leads to the signup form.
        admin.goto("/signup?product=tracker&edition=standard&utm_source=browser")
        sign_up(admin, ADMIN_EMAIL)

        # 2. Verify through the mailbox (allauth's confirm page is a POST form).
        verify_email(admin, ADMIN_EMAIL)

        # 3. "Being prepared" (htmx polling then redirect), or ready at once.
        workspace = admin.locator("#workspace")
        expect(admin.locator("#open-workspace").or_(workspace)).to_be_visible(timeout=30_000)
        if not workspace.is_visible():
            admin.locator("#open-workspace").click()
        expect(admin).to_have_url(re.compile(r"/w/[0-9a-f-]{36}/$"))
        expect(workspace).to_contain_text("Tracker")

        # 4. Name the organization (signup asked for no name), then invite a colleague.
        rename_organization(admin, ORGANIZATION_NAME)
        admin.goto("/app/members/")
        form = admin.locator("#invite-form")
        form.locator("input[name=email]").fill(COLLEAGUE_EMAIL)
        form.get_by_role("button", name="Send invitation").click()
        expect(admin.locator(".messages")).to_contain_text(f"Invitation sent to {COLLEAGUE_EMAIL}.")
        expect(admin.locator(f'#invites tr.invite[data-email="{COLLEAGUE_EMAIL}"]')).to_be_visible()

        # 5. The colleague, in another browser: invite mail -> signup -> in, with no second
        # verification (the invite link proved the address).
        colleague = new_context(browser, live_url).new_page()
        pages["colleague"] = colleague
        open_mail(colleague, COLLEAGUE_EMAIL, f"You are invited to join {ORGANIZATION_NAME}")
        follow_mail_link(colleague, "/invites/")
        expect(colleague.get_by_role("heading", name=f"Join {ORGANIZATION_NAME}")).to_be_visible()
        colleague.get_by_role("link", name=f"Create an account with {COLLEAGUE_EMAIL}").click()
        sign_up(colleague, COLLEAGUE_EMAIL, button=f"Join {ORGANIZATION_NAME}")
        expect(colleague.locator("header.top")).to_contain_text(ORGANIZATION_NAME)
        expect(colleague.locator("header.top")).to_contain_text(COLLEAGUE_EMAIL)

        # 6. Both see both.
        expect_members(colleague, ADMIN_EMAIL, COLLEAGUE_EMAIL)
        expect_members(admin, ADMIN_EMAIL, COLLEAGUE_EMAIL)
    except BaseException:
        for name, page in pages.items():
            try:
                page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
                (tmp_path / f"{name}.html").write_text(page.content())
            except Exception:  # noqa: BLE001, S110 - the original failure matters more
                pass
        print(f"screenshots in {tmp_path}")
        raise

    organization = Organization.objects.get()
    assert organization.name == ORGANIZATION_NAME
    memberships = Membership.objects.filter(organization=organization)
    assert sorted(memberships.values_list("user__email", "role")) == [
        (ADMIN_EMAIL, Membership.Role.ADMIN),
        (COLLEAGUE_EMAIL, Membership.Role.MEMBER),
    ]
    assert Membership.objects.count() == 2
    assert Environment.objects.get(organization=organization).status == Environment.Status.ACTIVE
    assert Invite.objects.get(email=COLLEAGUE_EMAIL).status == Invite.Status.ACCEPTED
    names = set(Event.objects.values_list("name", flat=True))
    expected = {
        "signup_started",
        "signed_up",
        "email_verified",
        "organization_created",
        "trial_started",
        "environment_requested",
        "environment_active",
        "invite_sent",
        "invite_accepted",
    }
    assert expected <= names, f"missing events: {sorted(expected - names)}"
    signup_started = Event.objects.get(name="signup_started")
    assert signup_started.properties["utm_source"] == "browser"
    assert signup_started.properties["product"] == "tracker"
