"""A member of Acme (the demo organization), at 1280 px and at 390 px: /app/, the community,
a question (vote buttons only when the member may vote, or saying why not), asking a
question, and a staff page refused plainly. axe-core and the sideways-scroll check run on
every page (tests/journeys/conftest.py)."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Membership, Organization
from community.models import Member, Question

from ..factories import PASSWORD, MembershipFactory, UserFactory
from .conftest import main_text, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def acme(catalog):
    """The demo organization with its community questions (`make run`'s demo commands)."""
    for command in ("demo_data", "community_demo"):
        call_command(command, stdout=io.StringIO())  # the banner of demo accounts is not needed
    return Organization.objects.get(name="Acme")


def test_member_sees_home_reads_the_community_and_asks(acme, live_server, people, check_page, viewport):
    newcomer = UserFactory(email=f"riley-{viewport['width']}@acme.example")
    newcomer.date_joined = timezone.now() - timedelta(days=30)  # not a brand-new account
    newcomer.save(update_fields=["date_joined"])
    MembershipFactory(organization=acme, user=newcomer, role=Membership.Role.MEMBER)
    Member.objects.update_or_create(user=newcomer, defaults={"reputation": 1})  # may not vote yet
    page = people.open()
    sign_in(page, newcomer.email, PASSWORD, check_page)

    # 1. /app/: the organization's product and its workspace, no admin-only links.
    page.goto("/app/")
    check_page(page, "home")
    home = main_text(page)
    assert "Acme" in (page.locator("header").text_content() or "")
    assert "Tracker" in home, home
    expect(page.locator("header a[href='/billing/']")).to_have_count(0)

    # 2. The community list and a question.
    page.goto("/community/")
    check_page(page, "community")
    title = "How do I move an issue to another project without losing its history?"
    expect(page.locator("main")).to_contain_text(title)
    page.locator("main a").filter(has_text=title).first.click()
    expect(page.locator("main h1")).to_contain_text(title)
    check_page(page, "question")
    votes = page.locator("main button[title='Useful'], main button[title='Not useful']")
    enabled_votes = page.locator("main button[title='Useful']:enabled, main button[title='Not useful']:enabled")
    check_page.soft(
        enabled_votes.count() == 0,
        f"a member who may not vote yet is shown no vote button that works ({enabled_votes.count()} shown)",
    )
    if votes.count():  # shown, disabled: the page says why
        check_page.soft(re.search(r"\b15\b.*reputation|reputation.*\b15\b", main_text(page), re.IGNORECASE | re.DOTALL),
                        "disabled vote buttons say that voting needs 15 reputation")

    # 3. Ask a question: it is posted and shown.
    page.goto("/community/ask/")
    check_page(page, "ask")
    form = page.locator("#ask-form")
    form.locator("select[name=product]").select_option("tracker")
    form.locator("input[name=title]").fill(f"Can a board show the cards of two projects at {viewport['width']} px?")
    form.locator("textarea[name=body]").fill("We run two projects side by side. **Is there a combined board?**")
    form.locator("input[name=tags]").fill("boards")
    form.locator("button[type=submit]").click()
    expect(page.locator("main h1")).to_contain_text("Can a board show the cards of two projects")
    expect(page.locator("main")).to_contain_text("Is there a combined board?")
    check_page(page, "the question asked")

    # 4. A staff page is refused plainly (not Django admin's sign-in form).
    response = page.goto("/staff/funnel/")
    check_page.soft(
        response is not None and response.status in (403, 404) and "/admin/" not in page.url,
        f"a member opening /staff/funnel/ gets a 404 or a plain staff-only page (got {page.url}, "
        f"HTTP {response.status if response else None})",
    )

    check_page.assert_clean()
    assert Question.objects.filter(author=newcomer).count() == 1
