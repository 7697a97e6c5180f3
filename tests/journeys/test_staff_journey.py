"""Staff, at 1280 px and at 390 px, on the demo data: signing in lands on a staff page, then
the funnel, experiments, onboarding emails, NPS, follow-ups, the support queue, community
metrics, moderation and sales leads, each read as a person would. axe-core and the
sideways-scroll check run on every page (tests/journeys/conftest.py)."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from .conftest import main_text, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STAFF = "staff@flywheel.localhost"
DEMO_PASSWORD = "flywheel-demo"  # noqa: S105 - demo_data's documented password
RAW_EVENT_NAMES = ("signup_started", "signed_up", "email_verified", "organization_created", "trial_started")


@pytest.fixture
def demo(catalog):
    """`make run`'s demo data: Acme's signup, the onboarding experiment, community questions."""
    for command in ("demo_data", "onboarding_demo", "community_demo"):
        call_command(command, stdout=io.StringIO())  # the banner of demo accounts is not needed


def test_staff_reads_every_staff_page(demo, live_server, people, check_page, viewport):
    page = people.open()
    sign_in(page, STAFF, DEMO_PASSWORD, check_page)

    # 1. Staff land on a staff page, not on "Start your organization".
    check_page(page, "first page after signing in")
    check_page.soft("/staff/" in page.url and "Start your organization" not in main_text(page),
                    f"staff land on their staff home (landed on {page.url})")

    # 2. The funnel: steps in the customer's words, in order, never above 100%, drawn.
    page.goto("/staff/funnel/")
    check_page(page, "funnel")
    expect(page.locator("main h1")).to_contain_text("funnel", ignore_case=True)
    funnel = main_text(page)
    raw = [name for name in RAW_EVENT_NAMES if re.search(rf"\b{name}\b", funnel)]
    check_page.soft(not raw, f"the funnel names its steps in words, not {raw}")
    over = [number for number in re.findall(r"(\d+(?:\.\d+)?)\s*%", funnel) if float(number) > 100]
    check_page.soft(not over, f"no funnel step above 100% of the first ({over})")
    chart = "main svg, main img, main canvas, main meter, main progress, main [role=img], main [class*=bar], main [class*=chart]"
    check_page.soft(page.locator(chart).count(), "the funnel is drawn (a chart, or bars)")

    # 3. Experiments: one control, the holdout not called a control.
    page.goto("/staff/experiments/")
    check_page(page, "experiments")
    experiment = page.locator("main a[href^='/staff/experiments/']").first
    expect(experiment).to_be_visible()
    experiment.click()
    expect(page).to_have_url(re.compile(r"/staff/experiments/[\w-]+/$"))
    check_page(page, "an experiment")
    check_page.soft("(control)" not in main_text(page), "the holdout is not tagged '(control)' beside the control")

    # 4. Onboarding emails, NPS and its follow-ups.
    page.goto("/staff/onboarding/")
    check_page(page, "onboarding emails")
    page.goto("/staff/feedback/")
    check_page(page, "NPS")
    nps = main_text(page)
    assert "NPS" in nps or "Net Promoter" in nps, nps
    check_page.soft("recommend us" not in nps, "the NPS report quotes the question asked, not 'recommend us'")
    page.goto("/staff/feedback/follow-ups/")
    check_page(page, "NPS follow-ups")

    # 5. The community desk: the support queue, metrics (durations as durations), moderation.
    page.goto("/staff/community/queue/")
    check_page(page, "support queue")
    expect(page.locator("main h1")).to_be_visible()
    page.goto("/staff/community/metrics/")
    check_page(page, "community metrics")
    metrics = main_text(page)
    raw_durations = re.findall(r"\b\d+:\d\d:\d\d(?:\.\d+)?\b", metrics)
    check_page.soft(not raw_durations, f"community metrics show durations in words, not {raw_durations}")
    page.goto("/staff/community/moderation/")
    check_page(page, "moderation")
    page.goto("/staff/sales-leads/")
    check_page(page, "sales leads")

    check_page.assert_clean()
