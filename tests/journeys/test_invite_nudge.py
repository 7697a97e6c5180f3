"""The invite-nudge experiment (inproduct/nudges.py; docs/in-product.md, "The invite-nudge
experiment") in headless Chromium across two origins, Flywheel (live_server) and the demo
product: the experiment loaded as shipped (`manage.py invite_nudge_load`, four arms of 25%),
each admin's arm decided by GrowthBook's hash of their user id, as in production.

- An admin in "In the product, after a first success" opens Tracker: exposed, nothing shown
  yet; they create a card (the product's success action, reported by the kit), and the next
  page shows their arm's nudge; reloads and a kit session days later keep the same arm, the
  same words. Its invite action opens Flywheel's members page with the way back to the
  product; the admin invites a colleague and goes back. The colleague, who has a Flywheel
  account, accepts from the invite email in their own window. The experiment's analysis, and
  the staff page that shows it, count 1 exposed admin in that arm who invited a colleague and
  whose colleague joined. A member of the same organization, who also creates a card, sees no
  nudge and is never exposed.
- An admin in "In the product, after 3 active days" meets the default copy on their third
  active day, and dismisses it: it does not come back.
- An admin in "By email, after 3 active days" gets, on their third active day, one email (read
  in the dev mailbox as they would read it: subject, link to the invite form), and no card.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Invite, Membership, User
from activity.models import ActivityEvent
from experiments.analysis import experiment_analyse
from experiments.flags import ExperimentDefinition, experiment_run
from experiments.models import Experiment, Exposure
from inproduct.models import InviteNudgeEmail, KitSession
from inproduct.nudges import EXPERIMENT_KEY
from onboarding.models import MarketingSend

from ..billing.helpers import workspace_ready
from ..conftest import organization_on, wait_for
from ..factories import KitSessionFactory, OfferClosedFactory, UserFactory
from .conftest import kit_card, open_newest_mail, open_workspace, signed_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FIRST_SUCCESS_ARM = "in-product-first-success"
DAYS_ARM = "in-product-3-days"
EMAIL_ARM = "email-3-days"
ANOTHER_DAY = timedelta(days=2)


@pytest.fixture
def invite_nudge(demo_product, settings):
    """The experiment as `make run` loads it, and no NPS survey drawn (the survey comes before
    the nudge; the journeys' admins are new anyway)."""
    settings.FEEDBACK_SAMPLING_RATE = 0.0
    call_command("invite_nudge_load", stdout=StringIO())
    return Experiment.objects.get(key=EXPERIMENT_KEY)


def admin_in_arm(experiment: Experiment, variation_key: str, *, members: int = 1):
    """An organization on a Tracker trial (no billing prompt due, free seats) whose admin's user
    id GrowthBook hashes into `variation_key`, and who closed the products to try (the nudge
    comes after them): (organization, admin)."""
    variations = list(experiment.variations.order_by("position"))
    definition = ExperimentDefinition(
        key=experiment.key,
        weights=[variation.weight for variation in variations],
        hash_attribute=experiment.hash_attribute,
        coverage=experiment.coverage,
    )
    while True:
        public_id = uuid.uuid4()
        result = experiment_run(definition, attributes={experiment.hash_attribute: str(public_id)})
        if result.in_experiment and variations[result.variation].key == variation_key:
            break
    organization, admin = organization_on("standard", members=members)
    User.objects.filter(pk=admin.pk).update(public_id=public_id)
    admin.refresh_from_db()
    for code in ("wiki", "servicedesk"):
        OfferClosedFactory(user=admin, organization=organization, offer=f"try:{code}")
    return organization, admin


@pytest.fixture
def shots(tmp_path):
    """Where the journey keeps its screenshots of the nudge and the members page, to look at."""
    print(f"screenshots: {tmp_path}")
    return tmp_path


def message_answer(page):
    return page.expect_response(lambda response: response.url.endswith("/kit/v1/message"))


def views_reported(user, count: int) -> None:
    """Wait until the demo product's pages reported `count` views of the person through the kit
    (each page's board_viewed leaves a second after it loads, and that call touches the kit
    session too, so it is waited for before a session is moved back in time)."""
    wait_for(lambda: ActivityEvent.objects.filter(user=user, name="board_viewed").count() >= count, what=f"{count} views reported")


def exposures_of(user) -> list[str]:
    return list(Exposure.objects.filter(experiment__key=EXPERIMENT_KEY, user=user).values_list("variation_key", flat=True))


def test_an_admin_keeps_their_arm_invites_from_the_nudge_and_the_joined_colleague_counts(
    invite_nudge, demo_product, celery_worker, mailbox_on, people, check_page, viewport, shots
):
    organization, admin = admin_in_arm(invite_nudge, FIRST_SUCCESS_ARM, members=2)
    member = Membership.objects.get(organization=organization, role=Membership.Role.MEMBER).user
    environment = workspace_ready(organization)
    nudge_title = "Nice work! Bring your team in"
    nudge_body = f"Invite colleagues to {organization.name} so they can see and build on what you do in Tracker."

    # 1. The nudge's turn comes (nothing else due): exposed, but no first success yet.
    page = signed_in(people, admin)
    with message_answer(page) as answer:
        open_workspace(page, demo_product, environment)
    product_page = page.url
    assert answer.value.json() == {"message": None}
    assert exposures_of(admin) == [FIRST_SUCCESS_ARM]

    # 2. The product's success action; the next page shows the nudge in the admin's words.
    page.get_by_label("Card title").fill("Weekly digest email")
    with page.expect_response(
        lambda response: response.url.endswith("/kit/v1/activity") and "first_success" in (response.request.post_data or "")
    ) as reported:
        page.get_by_role("button", name="Create a card").click()
    assert reported.value.status == 200
    page.goto(product_page)
    card = kit_card(page)
    expect(card).to_contain_text(nudge_title)
    expect(card).to_contain_text(nudge_body)
    invite = card.get_by_role("link", name="Invite colleagues")
    expect(invite).to_be_visible()
    check_page(page, "Tracker with the invite nudge")
    page.screenshot(path=str(shots / f"nudge-card-{viewport['width']}.png"), full_page=True)

    # 3. The same arm and words on a reload, and in a kit session two days later.
    # (The kit reports "shown" after the card appears; that call touches the session, so it is
    # waited for before the session is moved back in time.)
    with page.expect_response(lambda response: response.url.endswith("/kit/v1/message/events")):
        page.reload()
    expect(kit_card(page)).to_contain_text(nudge_title)
    views_reported(admin, 4)  # the first page, the one after the card, the product page, this reload
    KitSession.objects.filter(user=admin).update(
        started_at=timezone.now() - ANOTHER_DAY, last_seen_at=timezone.now() - ANOTHER_DAY
    )
    # The marketing cap's window (a day) has passed since the nudge took its slot too.
    MarketingSend.objects.filter(email=admin.email).update(sent_at=timezone.now() - ANOTHER_DAY)
    page.reload()
    expect(kit_card(page)).to_contain_text(nudge_title)
    assert KitSession.objects.filter(user=admin).count() == 2
    assert exposures_of(admin) == [FIRST_SUCCESS_ARM]

    # 4. The invite action: Flywheel's members page, the way back to the product kept.
    invite = kit_card(page).get_by_role("link", name="Invite colleagues")
    invite.click()
    page.wait_for_url(re.compile(r"/app/members/"))
    assert parse_qs(urlsplit(page.url).query)["return_to"] == [product_page]
    expect(page.locator("#invite-form")).to_be_in_viewport()
    check_page(page, "members, from the nudge")
    page.screenshot(path=str(shots / f"members-from-nudge-{viewport['width']}.png"), full_page=True)
    colleague_address = f"grace-{viewport['width']}@{organization.email_domain}"
    form = page.locator("#invite-form")
    form.get_by_label("Email address").fill(colleague_address)
    form.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text(f"Invitation sent to {colleague_address}.")).to_be_visible()
    back = page.get_by_role("link", name="Back to Tracker")
    expect(back).to_have_attribute("href", product_page)
    check_page(page, "invitation sent, the way back offered")
    pending = page.locator(f'#invites tr.invite[data-email="{colleague_address}"]')
    for action in ("Resend", "Withdraw"):  # whole on the screen (a card clips what sticks out)
        box = pending.get_by_role("button", name=action).bounding_box()
        assert box and 0 <= box["x"] and box["x"] + box["width"] <= viewport["width"], f"{action} is cut off: {box}"
    page.screenshot(path=str(shots / f"members-invited-{viewport['width']}.png"), full_page=True)
    with message_answer(page) as answer:
        back.click()
        page.wait_for_url(product_page)
    assert answer.value.json() == {"message": None}  # followed: the nudge is snoozed

    # 5. The colleague, who has a Flywheel account, accepts from the invite email.
    colleague = UserFactory(email=colleague_address)
    colleague_page = signed_in(people, colleague)
    open_newest_mail(colleague_page, colleague_address, f"You are invited to join {organization.name}")
    colleague_page.locator("#mail-text a[href*='/invites/']").first.click()
    colleague_page.get_by_role("button", name="Accept and join").click()
    expect(colleague_page.locator("header")).to_contain_text(organization.name)
    assert Invite.objects.get(email=colleague_address).status == Invite.Status.ACCEPTED

    # 6. A member of the organization, with a success of their own, is never nudged nor exposed.
    member_page = signed_in(people, member)
    open_workspace(member_page, demo_product, environment)
    member_page.get_by_label("Card title").fill("Dark mode")
    with member_page.expect_response(
        lambda response: response.url.endswith("/kit/v1/activity") and "first_success" in (response.request.post_data or "")
    ):
        member_page.get_by_role("button", name="Create a card").click()
    # The page after the card asks the kit for its message too: let that answer arrive first, so
    # the answer read below is the next page's (one read after navigating away has no body).
    member_page.wait_for_load_state("networkidle")
    with message_answer(member_page) as answer:
        member_page.goto(member_page.url.split("?")[0])
    assert answer.value.json() == {"message": None}
    expect(kit_card(member_page)).to_have_count(0)
    assert exposures_of(member) == []

    # 7. The analysis: 1 exposed admin in the arm, who invited, and whose colleague joined.
    analysis = experiment_analyse(experiment=invite_nudge)
    assert analysis.total_exposures == 1
    metrics = {metric.label: metric for metric in analysis.metrics}
    for label in ("Activation: Invited a colleague", "Activation: A colleague they invited joined"):
        arm = next(variant for variant in metrics[label].variants if variant.variation_key == FIRST_SUCCESS_ARM)
        assert (arm.units, arm.total) == (1, 1.0), label

    # ... and staff read the same on the experiment's page.
    staff_page = signed_in(people, UserFactory(is_staff=True))
    staff_page.goto(f"/staff/experiments/{EXPERIMENT_KEY}/")
    check_page(staff_page, "the invite-nudge experiment, for staff")
    staff_page.screenshot(path=str(shots / f"staff-experiment-{viewport['width']}.png"), full_page=True)
    exposed = staff_page.locator(f"#exposures tr[data-variation='{FIRST_SUCCESS_ARM}']")
    expect(exposed.locator("td.count")).to_have_text("1")
    for metric in ("Invited a colleague", "A colleague they invited joined"):
        row = staff_page.locator("section.metric", has=staff_page.get_by_role("heading", name=f"Activation: {metric}")).locator(
            f"tr[data-variation='{FIRST_SUCCESS_ARM}']"
        )
        expect(row.locator("td").nth(1)).to_have_text("1")  # units
        expect(row.locator("td.total")).to_have_text("1")  # converted
        expect(row.locator("td.mean")).to_have_text(re.compile(r"^100(\.0)?%$"))
    check_page.assert_clean()


def test_on_the_third_active_day_the_default_nudge_shows_and_a_dismissal_holds(
    invite_nudge, demo_product, people, check_page, viewport, shots
):
    organization, admin = admin_in_arm(invite_nudge, DAYS_ARM)
    environment = workspace_ready(organization)
    for days_ago in (1, 2):  # kit sessions on two earlier days; today is the third
        KitSessionFactory(user=admin, organization=organization, days_ago=days_ago)

    page = signed_in(people, admin)
    open_workspace(page, demo_product, environment)
    product_page = page.url
    card = kit_card(page)
    expect(card).to_contain_text("Invite your colleagues to Tracker")
    expect(card).to_contain_text(
        f"Tracker works better with your team. Invite colleagues to {organization.name}: they get an email "
        "and join in one click, on a free seat of your plan."
    )
    expect(card.get_by_role("link", name="Invite colleagues")).to_have_attribute(
        "href", re.compile(rf"/app/members/\?organization={organization.public_id}&return_to=.+#invite-form$")
    )
    check_page(page, "Tracker with the default invite nudge")
    page.screenshot(path=str(shots / f"nudge-card-default-{viewport['width']}.png"), full_page=True)

    with page.expect_response(lambda response: response.url.endswith("/kit/v1/message/events")) as reported:
        card.get_by_role("button", name="Dismiss").click()
    assert reported.value.status == 204
    expect(kit_card(page)).to_have_count(0)
    views_reported(admin, 1)
    # Not in this visit, nor in a kit session the next day (snoozed for 30 days).
    KitSession.objects.filter(user=admin).update(last_seen_at=timezone.now() - ANOTHER_DAY)
    MarketingSend.objects.filter(email=admin.email).update(sent_at=timezone.now() - ANOTHER_DAY)
    with message_answer(page) as answer:
        page.goto(product_page)
    assert answer.value.json() == {"message": None}
    assert KitSession.objects.filter(user=admin).count() == 4  # the two earlier days, today's, the next
    assert exposures_of(admin) == [DAYS_ARM]
    check_page.assert_clean()


def test_an_admin_in_the_email_arm_gets_one_email_and_no_card(
    invite_nudge, demo_product, live_server, celery_worker, mailbox_on, people, check_page, viewport, shots
):
    organization, admin = admin_in_arm(invite_nudge, EMAIL_ARM)
    environment = workspace_ready(organization)
    for days_ago in (1, 2):  # kit sessions on two earlier days; today is the third
        KitSessionFactory(user=admin, organization=organization, days_ago=days_ago)

    page = signed_in(people, admin)
    with message_answer(page) as answer:
        open_workspace(page, demo_product, environment)
    assert answer.value.json() == {"message": None}
    expect(kit_card(page)).to_have_count(0)
    assert exposures_of(admin) == [EMAIL_ARM]
    product_page = page.url

    # As the admin reads it: the subject, and the link to the members page's invite form.
    text = open_newest_mail(page, admin.email, "Invite your colleagues to Tracker")
    check_page(page, "the invite-nudge email in the dev mailbox")
    page.screenshot(path=str(shots / f"nudge-email-{viewport['width']}.png"), full_page=True)
    subject = page.locator(".mail-headers tr", has=page.locator("th", has_text="Subject")).locator("td")
    expect(subject).to_have_text("[Flywheel] Invite your colleagues to Tracker")
    assert f"Invite colleagues to {organization.name}" in text, text
    members = f"{live_server.url}/app/members/?organization={organization.public_id}#invite-form"
    link = page.locator("#mail-text a[href*='/app/members/']").first
    expect(link).to_have_attribute("href", members)
    html_link = page.frame_locator("iframe.mail-html").get_by_role("link", name="Invite colleagues")
    expect(html_link).to_have_attribute("href", members)
    link.click()
    expect(page.get_by_role("heading", name=f"Members of {organization.name}")).to_be_visible()
    expect(page.locator("#invite-form")).to_be_in_viewport()

    # A visit in a later kit session sends no second email, and shows no card.
    KitSession.objects.filter(user=admin).update(last_seen_at=timezone.now() - timedelta(hours=2))
    with message_answer(page) as answer:
        page.goto(product_page)
    assert answer.value.json() == {"message": None}
    assert KitSession.objects.filter(user=admin).count() == 4
    assert InviteNudgeEmail.objects.filter(user=admin).count() == 1
    check_page.assert_clean()

