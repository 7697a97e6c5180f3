"""The kit (static/kit/v1/kit.js) in headless Chromium, as a customer's product embeds it: a
product page on a second origin (a small server on another port) with a strict
Content-Security-Policy and a stylesheet that tries to break everything, loading the script
from the live Flywheel and talking to its real endpoints.

The message each test expects comes from Flywheel's own rules (an organization at its seat
limit, a member due for the survey), so these tests need identity's and messages' endpoints.
axe-core checks the kit's shadow tree; nothing outside the kit (the hostile page itself) is
judged."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
import requests
from playwright.sync_api import expect

from accounts.models import Membership
from activity.models import ActivityDay, ActivityEvent
from billing.models import Subscription
from experiments.models import Event
from feedback.models import Response
from inproduct.models import ProductSuccess

from ..conftest import organization_on, wait_for
from ..factories import MembershipFactory
from ..journeys.conftest import TIMEOUT_MS
from .kit_site import focused, kit_events, kit_problems, seat_limit_organization, tab_to

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]



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


def test_a_used_token_is_replaced_through_token_url_and_track_reports_a_success_moment(product_site, open_page):
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

    with page.expect_response(lambda answer: answer.url.endswith("/kit/v1/activity")) as answer:
        page.get_by_role("button", name="Create a card").click()
    assert answer.value.status == 200 and answer.value.json() == {"accepted": 1, "duplicates": 0, "errors": []}
    expect(page.get_by_role("button", name="Card created")).to_be_visible()
    assert ProductSuccess.objects.get(user=admin).name == "first_success"
    assert page.evaluate("window.cspViolations") == []


def test_track_sends_what_the_person_did_in_one_batch_and_the_rest_leaves_with_the_page(product_site, open_page):
    organization, admin = organization_on("standard")
    product_site.person = (admin, organization)
    page = open_page(product_site.url + "/")
    page.wait_for_function("customElements.get('flywheel-kit') !== undefined")

    with page.expect_request(lambda request: request.url.endswith("/kit/v1/activity")) as sent:
        page.evaluate(
            """() => { const kit = document.querySelector("flywheel-kit");
                       window.tracked = Promise.all([kit.track("board_viewed"), kit.track("card_created")]); }"""
        )
    events = sent.value.post_data_json["events"]
    assert [event["name"] for event in events] == ["board_viewed", "card_created"]
    assert len({event["id"] for event in events}) == 2 and all(0 <= event["age_ms"] < 60_000 for event in events)
    page.evaluate("window.tracked")  # both resolved: Flywheel has them
    stored = ActivityEvent.objects.filter(user=admin).order_by("name")
    assert [(event.name, event.organization_id, event.product.code) for event in stored] == [
        ("board_viewed", organization.pk, "tracker"),
        ("card_created", organization.pk, "tracker"),
    ]

    # A refused name rejects its own promise with Flywheel's sentence.
    refused = page.evaluate(
        """() => document.querySelector("flywheel-kit").track("9lives").then(() => "resolved", (error) => error.message)"""
    )
    assert refused.startswith("track(name): the name is 1 to 64 of a-z, 0-9 and _")

    # Tracked, then the person leaves before the batch's second is up: it leaves with the page.
    page.evaluate("""() => { document.querySelector("flywheel-kit").track("card_moved"); }""")
    page.goto("about:blank")
    wait_for(lambda: ActivityEvent.objects.filter(user=admin, name="card_moved").exists(), what="the batch sent on pagehide")
    assert ActivityDay.objects.get(user=admin).active_events == 3


def test_what_one_person_did_is_sent_as_theirs_when_the_page_signs_in_someone_else(product_site, open_page):
    """A single-page product signs a colleague in on the same page (a new token): what the first
    person tracked leaves on the first person's session, never on the newcomer's."""
    organization, admin = organization_on("standard")
    colleague = MembershipFactory(organization=organization).user
    product_site.person = (admin, organization)
    page = open_page(product_site.url + "/")
    expect(page.locator("flywheel-kit")).to_have_count(1)
    page.wait_for_function("customElements.get('flywheel-kit') !== undefined")
    page.evaluate("""() => document.querySelector("flywheel-kit").track("board_viewed")""")  # resolved: their session is open

    product_site.person = (colleague, organization)
    page.evaluate(
        """(token) => { const kit = document.querySelector("flywheel-kit");
                        kit.track("card_moved"); kit.setAttribute("token", token); }""",
        product_site.token(),
    )
    wait_for(lambda: ActivityEvent.objects.filter(name="card_moved").exists(), what="the batch sent on the token change")
    assert list(ActivityEvent.objects.filter(name="card_moved").values_list("user_id", flat=True)) == [admin.pk]


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
