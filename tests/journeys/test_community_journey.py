"""The community journey in headless Chromium: one member asks, another answers, the asker
accepts; and a question nobody answers, after time travel past its deadline, lands in the
support engineer's queue at the next escalation tick."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from playwright.sync_api import expect

from community.defaults import community_defaults_ensure
from community.models import Escalation, Question
from community.services.escalations import escalation_tick, support_engineer_set

from ..community.conftest import established
from ..conftest import organization_on
from ..factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
TIMEOUT_MS = 20_000


def _page(browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    return context, context.new_page()


def _log_in(page, email):
    page.goto("/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login" not in url)


def _ask(page, title):
    page.goto("/community/ask/")
    page.select_option("#ask-form select[name=product]", "tracker")
    page.fill("#ask-form input[name=title]", title)
    page.fill("#ask-form textarea[name=body]", "I tried dragging it, but the card snaps back. **What am I missing?**")
    page.fill("#ask-form input[name=tags]", "boards cards")
    page.click("#ask-form button[type=submit]")
    expect(page.locator("#question h1")).to_contain_text(title)


def test_ask_answer_accept_and_an_unanswered_question_reaches_the_support_queue(catalog, live_server, browser):
    community_defaults_ensure()
    organization, asker = organization_on("free")
    established(asker)
    helper = established(UserFactory(email="helper@elsewhere.example"))
    support = support_engineer_set(user=UserFactory(email="support@flywheel.example", is_staff=True))

    asker_context, asker_page = _page(browser, live_server)
    helper_context, helper_page = _page(browser, live_server)
    support_context, support_page = _page(browser, live_server)
    try:
        # 1. The asker asks; Markdown is rendered.
        _log_in(asker_page, asker.email)
        _ask(asker_page, "How do I move a card to another board?")
        expect(asker_page.locator("#question .community-body strong")).to_have_text("What am I missing?")
        question_url = asker_page.url

        # 2. Someone from another organization finds it by search and answers.
        _log_in(helper_page, helper.email)
        helper_page.goto("/community/?q=move+card+board")
        helper_page.click("#questions a.community-title")
        helper_page.fill("#answer-form textarea[name=body]", "Open the card, choose **Move**, then pick the board.")
        helper_page.click("#answer-form button[type=submit]")
        expect(helper_page.locator("article.answer")).to_have_count(1)

        # 3. The asker accepts it; the clock stops.
        asker_page.goto(question_url)
        asker_page.click("article.answer button.accept")
        expect(asker_page.locator("article.answer .accepted-mark")).to_be_visible()
        expect(asker_page.locator("#question h1 .status")).to_have_text("solved")
        answered = Question.objects.get(title="How do I move a card to another board?")
        assert answered.clock == Question.Clock.STOPPED and answered.stop_reason == "accepted"

        # 4. Another question nobody answers: 48 business hours of the Free tier go by.
        _ask(asker_page, "Why does the roadmap export time out?")
        unanswered = Question.objects.get(title="Why does the roadmap export time out?")
        assert unanswered.support_tier == "community"
        with time_machine.travel(timezone.now() + timedelta(days=10), tick=True):
            report = escalation_tick()  # what the beat runs every minute
            assert report.escalated == 1
            _log_in(support_page, support.user.email)
            support_page.goto("/staff/community/queue/")
            row = support_page.locator("#queue tr.escalation")
            expect(row).to_have_count(1)
            expect(row).to_contain_text("Why does the roadmap export time out?")
            expect(row).to_contain_text("support@flywheel.example")
            expect(row).to_contain_text(organization.name)
            # The engineer answers from the question page; the escalation is resolved.
            row.locator("a").first.click()
            expect(support_page.locator("#staff-panel")).to_contain_text("Escalated")
            support_page.fill("#answer-form textarea[name=body]", "The export times out above 5,000 items; filter first.")
            support_page.click("#answer-form button[type=submit]")
            expect(support_page.locator("article.answer")).to_have_count(1)
        assert Escalation.objects.get(question=unanswered).state == Escalation.State.RESOLVED
    finally:
        for context in (asker_context, helper_context, support_context):
            context.close()
