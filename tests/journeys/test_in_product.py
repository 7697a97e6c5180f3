"""The in-product journeys in headless Chromium, across two origins: Flywheel (live_server) and
the demo product (its own process and port, tests/conftest.py DemoProductProcess), as a
customer's product would run the kit.

A member opens their workspace on Flywheel (/w/<id>/), is launched into the demo product, whose
server minted the kit's token; the kit shows the one message due: the seat-limit prompt, the
trial's end at 3 days, a failed payment, or nothing at all. The admin fixes the seat limit from
the prompt on Flywheel's page and comes back to the product without it; a member answers the
survey in the product and the admin reads it on /app/feedback/.

They need the whole kit (identity, messages, kit.js) merged: until then they fail at the kit.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Membership
from billing.models import Subscription
from billing.services import payments

from ..billing.helpers import (
    DECLINED_AT_CHARGE,
    card_set_up,
    paid_organization,
    standard_checkout,
    workspace_ready,
)
from ..conftest import organization_on
from .conftest import kit_card, main_text, open_workspace, signed_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _message_answer(page):
    return page.expect_response(lambda response: response.url.endswith("/kit/v1/message"))


def test_at_the_seat_limit_the_product_shows_the_seat_limit_prompt(demo_product, people, check_page):
    organization, admin = organization_on("free", members=10)
    environment = workspace_ready(organization)
    page = signed_in(people, admin)
    open_workspace(page, demo_product, environment)

    card = kit_card(page)
    expect(card).to_contain_text("All 10 seats of Tracker Free are taken")
    expect(card.get_by_role("link", name="Move to Standard")).to_be_visible()
    assert "Board" in main_text(page)  # the product's own page, the prompt beside it
    check_page(page, "Tracker with the seat-limit prompt")
    check_page.assert_clean()


def test_three_days_before_the_trial_ends_the_product_says_so(demo_product, people, check_page):
    organization, admin = organization_on("standard")
    Subscription.objects.filter(organization=organization).update(
        trial_ends_at=timezone.now() + timedelta(days=3, hours=-1)
    )
    environment = workspace_ready(organization)
    page = signed_in(people, admin)
    open_workspace(page, demo_product, environment)

    card = kit_card(page)
    expect(card).to_contain_text("Your Tracker trial ends in 3 days")
    expect(card.get_by_role("link", name="Choose a plan")).to_have_attribute("href", re.compile(r"return_to="))
    check_page(page, "Tracker three days before the trial's end")
    check_page.assert_clean()


def test_after_a_failed_payment_the_admin_is_told_in_the_product(demo_product, localstripe, people, check_page):
    organization, admin = organization_on("standard")
    environment = workspace_ready(organization)
    card_set_up(localstripe, organization, admin, DECLINED_AT_CHARGE)
    payment = standard_checkout(organization, admin)
    payments.payment_charge(payment_id=payment.pk)
    payment.refresh_from_db()
    assert payment.status == payment.Status.FAILED

    page = signed_in(people, admin)
    open_workspace(page, demo_product, environment)
    card = kit_card(page)
    expect(card).to_contain_text("A payment for Tracker failed")
    expect(card.get_by_role("link", name="Update payment")).to_be_visible()
    check_page(page, "Tracker after a failed payment")
    check_page.assert_clean()


def test_when_nothing_applies_the_product_shows_no_message_and_its_success_reaches_flywheel(
    demo_product, people, check_page
):
    organization, _ = organization_on("standard", members=2)
    member = Membership.objects.filter(organization=organization, role=Membership.Role.MEMBER).get().user
    environment = workspace_ready(organization)
    page = signed_in(people, member)
    with _message_answer(page) as answer:
        open_workspace(page, demo_product, environment)
    assert answer.value.status == 200 and answer.value.json() == {"message": None}
    expect(kit_card(page)).to_have_count(0)
    check_page(page, "Tracker with nothing to say")

    # The product's success action: its next page reports it through the kit.
    page.get_by_label("Card title").fill("Export invoices as CSV")
    with page.expect_response(
        lambda response: response.url.endswith("/kit/v1/activity") and "first_success" in (response.request.post_data or "")
    ) as reported:
        page.get_by_role("button", name="Create a card").click()
    assert reported.value.status == 200
    expect(page.get_by_role("status").filter(has_text="Card created")).to_be_visible()
    check_page.assert_clean()


def test_the_admin_fixes_the_seat_limit_from_the_prompt_and_comes_back_without_it(
    demo_product, localstripe, celery_worker, people, check_page
):
    organization, admin, subscription = paid_organization(localstripe, seats=5, members=5)
    environment = workspace_ready(organization)
    page = signed_in(people, admin)
    open_workspace(page, demo_product, environment)
    product_page = page.url

    card = kit_card(page)
    expect(card).to_contain_text("All 5 seats of Tracker Standard are taken")
    card.get_by_role("link", name="Add seats").click()

    # Flywheel's own page, which knows the way back.
    page.wait_for_url(re.compile(r"/billing/seats/"))
    assert page.url.startswith(demo_product.url) is False
    check_page(page, "add seats, from the product")
    page.locator("#confirm-seats").click()
    payment = page.locator("#payment")
    expect(payment).to_have_attribute("data-status", "succeeded", timeout=30_000)
    back = page.get_by_role("link", name="Back to Tracker")
    expect(back).to_have_attribute("href", product_page)
    check_page(page, "seats paid, back to the product offered")
    subscription.refresh_from_db()
    assert subscription.seat_limit == 6

    with _message_answer(page) as answer:
        back.click()
        page.wait_for_url(product_page)
    assert (answer.value.json()["message"] or {}).get("id", "").startswith("prompt:seat_limit") is False
    expect(page.locator("flywheel-kit section.card", has_text="seats")).to_have_count(0)
    check_page.assert_clean()


def test_a_member_answers_the_survey_in_the_product_and_the_admin_reads_it(demo_product, people, check_page):
    organization, admin = organization_on("standard", members=2)
    membership = Membership.objects.filter(organization=organization, role=Membership.Role.MEMBER).get()
    Membership.objects.filter(pk=membership.pk).update(created_at=timezone.now() - timedelta(days=30))
    environment = workspace_ready(organization)

    page = signed_in(people, membership.user)
    open_workspace(page, demo_product, environment)
    card = kit_card(page)
    expect(card).to_contain_text("How likely are you to recommend")
    check_page(page, "Tracker with the survey")
    card.locator("label[for=fw-score-9]").click()
    card.get_by_label("Your role").select_option(value="developer")
    card.get_by_label("What is the main reason for your score?").fill("The board made our sprints calm again.")
    card.get_by_role("button", name="Send").click()
    expect(card).to_contain_text("Thank you")

    admin_page = signed_in(people, admin)
    admin_page.goto("/app/feedback/")
    comments = admin_page.locator("#feedback-comments")
    expect(comments).to_contain_text("The board made our sprints calm again.")
    expect(comments).to_contain_text("9/10")
    check_page(admin_page, "the admin's feedback report")
    check_page.assert_clean()
