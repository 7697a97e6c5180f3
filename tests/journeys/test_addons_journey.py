"""The add-ons journey in headless Chromium, at a laptop's and a phone's width: an admin on
Tracker Standard (paid by card) adds Premium support from the billing page at the exact price
shown, asks a question in the community and its thread promises the Premium tier's shorter
reply time; then buys a training pack and assigns a colleague to a course.

localstripe stands in for Stripe; the real Celery worker charges the card. Every page passes
axe-core and does not scroll sideways on a phone (conftest.PageChecks)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from billing.models import AddOnSubscription, Invoice, Payment, TrainingAssignment, TrainingPack
from common.money import money
from community.defaults import community_defaults_ensure
from community.models import Question

from ..billing.helpers import paid_organization
from ..community.conftest import established
from ..factories import PASSWORD, MembershipFactory, UserFactory
from .conftest import main_text, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _charged(page, check_page, what: str) -> str:
    """Confirm the price page's one button; the payment page, once the worker charged it."""
    total = page.locator("#addon-total").inner_text()
    page.locator("#confirm-addon").click()
    payment = page.locator("#payment")
    expect(payment).to_have_attribute("data-status", "succeeded")
    expect(payment).to_contain_text(total)
    check_page(page, f"{what} paid")
    return total


def _ask(page, title: str) -> str:
    """Ask a Tracker question; the address of its thread."""
    page.goto("/community/ask/")
    page.select_option("#ask-form select[name=product]", "tracker")
    page.fill("#ask-form input[name=title]", title)
    page.fill("#ask-form textarea[name=body]", "We split work across two projects and want one board for both.")
    page.fill("#ask-form input[name=tags]", "boards")
    page.click("#ask-form button[type=submit]")
    expect(page.locator("#question h1")).to_contain_text(title)
    return page.url


def test_admin_adds_premium_support_asks_and_buys_training(
    celery_worker, catalog, localstripe, live_server, people, check_page, viewport
):
    community_defaults_ensure()
    organization, admin, subscription = paid_organization(localstripe, seats=5, members=1)
    established(admin)
    colleague = MembershipFactory(
        organization=organization, user=UserFactory(first_name="Rosa", last_name="Diaz", email=f"rosa@{organization.email_domain}")
    ).user

    page = people.open()
    sign_in(page, admin.email, PASSWORD, check_page)

    # 1. A question asked on Standard is promised Standard's reply time.
    first_title = "Can a board show cards from two projects?"
    question_url = _ask(page, first_title)
    promise = page.locator("#support-promise")
    expect(promise).to_contain_text("Standard support: a support engineer replies by")
    check_page(page, "question on Standard")
    standard_deadline = Question.objects.get(title=first_title).deadline

    # 2. Billing shows Tracker's add-ons, each with its price and what to do.
    page.goto("/billing/")
    addons = page.locator("#addons-tracker")
    expect(addons.locator("#addon-tracker-premium-support")).to_contain_text("USD 99.00 per month")
    expect(addons.locator("#addon-tracker-github")).to_contain_text("USD 1.50 per seat per month")
    expect(addons.locator("#addon-tracker-training")).to_contain_text("USD 500.00 once")
    check_page(page, "billing with add-ons")

    # 3. Add Premium support: the exact prorated price first, then one click.
    addons.locator("#add-tracker-premium-support").click()
    expect(page.get_by_role("heading", name="Add Premium support to Tracker Standard")).to_be_visible()
    expect(page.locator("#addon-explained")).to_contain_text("USD 99.00 per month, prorated for the")
    expect(page.locator("#confirm-addon")).to_contain_text("and add Premium support")
    check_page(page, "Premium support price")
    total = _charged(page, check_page, "Premium support")
    expect(page.locator("#payment")).to_contain_text("Premium support is added to Tracker.")
    payment = Payment.objects.get(invoice__kind=Invoice.Kind.ADDON, invoice__addon__code="premium-support")
    assert money(payment.amount_minor, payment.currency) == total  # what was shown is what was charged
    assert AddOnSubscription.objects.get(subscription=subscription).status == AddOnSubscription.Status.ACTIVE

    # 4. The open question's clock moved to the Premium tier: a shorter promise on its thread;
    # a new question gets it from the start.
    # (The worker moves the clock right after the payment's commit: reload until it has.)
    for _ in range(40):
        page.goto(question_url)
        if "Premium support:" in promise.inner_text():
            break
        page.wait_for_timeout(250)
    expect(promise).to_contain_text("Premium support: a support engineer replies by")
    check_page(page, "question after Premium support")
    assert Question.objects.get(title=first_title).deadline < standard_deadline
    second_title = "How do I archive a finished board?"
    _ask(page, second_title)
    expect(promise).to_contain_text("Premium support: a support engineer replies by")
    assert Question.objects.get(title=second_title).support_tier == "premium"

    # 5. Buy a training pack from billing: the whole price and what it gives, one click.
    page.goto("/billing/")
    page.locator("#add-tracker-training").click()
    expect(page.locator("#addon-explained")).to_contain_text("USD 500.00, once: 10 course credits, to use by")
    check_page(page, "training pack price")
    _charged(page, check_page, "training pack")
    page.locator("#to-training").click()
    expect(page.locator("#balance")).to_contain_text("10 credits")
    check_page(page, "training page")
    assert TrainingPack.objects.get(organization=organization).credits == 10

    # 6. Assign Rosa to the fundamentals course: one credit comes off the balance.
    row = page.locator("#course-tracker-fundamentals")
    row.locator("select[name=user]").select_option(label="Rosa Diaz")
    row.get_by_role("button", name="Assign").click()
    expect(page.locator("main")).to_contain_text("Rosa Diaz is assigned to Tracker fundamentals: 1 credit used.")
    expect(page.locator("#balance")).to_contain_text("9 credits")
    expect(page.locator("#assignments")).to_contain_text("Rosa Diaz")
    check_page(page, "training page after assigning")
    assert TrainingAssignment.objects.get().user == colleague
    assert "Tracker fundamentals" in main_text(page)
    check_page.assert_clean()
