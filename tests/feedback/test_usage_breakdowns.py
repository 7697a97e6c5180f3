"""NPS beside use of the product: each answer keeps the respondent's days active and lifecycle
state in the 30 days before it (taken at submit, backfilled for older answers), and the reports
break the NPS down by them, with small groups not scored. Answers worked out by hand."""

from __future__ import annotations

import importlib
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.apps import apps as django_apps
from django.utils import timezone

from catalog.models import Product
from feedback import selectors
from feedback.models import Response
from feedback.reports import Score

from ..conftest import active_on, organization_on
from ..factories import UserFactory
from .helpers import answer, member, responses_insert

MONTH = date(2026, 10, 1)


def _answers(organization, scores, *, state, active_days, month=MONTH):
    """Stored answers with their usage set as the service would have set it."""
    rows = responses_insert(organization, scores, month=month)
    for row, days in zip(rows, active_days, strict=True):
        Response.objects.filter(pk=row.pk).update(usage_state=state, active_days=days)
    return rows


@pytest.mark.django_db
def test_an_answer_keeps_the_usage_of_the_30_days_before_it(catalog):
    organization, _ = organization_on("standard")
    ana = member(organization, joined_days_ago=100)
    today = timezone.now().date()
    # Tracker on 4 days of the last 30 (today does not count: it is not over), and 45 days ago.
    active_on(
        organization,
        ana.user,
        "tracker",
        *(today - timedelta(days=ago) for ago in (0, 1, 2, 10, 30, 45)),
    )
    active_on(
        organization, ana.user, "wiki", *(today - timedelta(days=ago) for ago in (3, 4, 5, 6, 7))
    )

    response = answer(ana, score=9)

    assert (response.product.code, response.active_days, response.usage_state) == (
        "tracker",
        4,
        "returning",
    )
    response.refresh_from_db()
    assert (response.active_days, response.usage_state) == (4, "returning")

    bob = member(organization, joined_days_ago=100)
    assert (answer(bob, score=3).active_days, Response.objects.get(user=bob.user).usage_state) == (
        0,
        "none",
    )


@pytest.fixture
def october(catalog, settings):
    settings.FEEDBACK_MIN_GROUP_RESPONSES = 3
    organization, _ = organization_on("standard")
    _answers(organization, [10, 6, 5, 8], state="new", active_days=[1, 2, 3, 25])
    _answers(
        organization, [10, 10, 9, 8, 7, 3], state="returning", active_days=[30, 20, 10, 19, 4, 9]
    )
    _answers(organization, [9, 2], state="resurrecting", active_days=[1, 1])
    _answers(organization, [0, 0, 10], state="dormant", active_days=[0, 0, 0])
    _answers(organization, [9, 9, 9], state="none", active_days=[0, 0, 0])
    responses_insert(organization, [5], month=MONTH)  # stored without its usage: not known
    _answers(
        organization, [0, 0, 0], state="new", active_days=[2, 2, 2], month=date(2026, 9, 1)
    )  # September
    return organization


def test_the_monthly_report_by_usage_state_and_by_daysactive_on(october):
    report = selectors.monthly_report(month=MONTH)

    usage = {group.key: group for group in report.breakdowns["usage"]}
    assert [group.key for group in report.breakdowns["usage"]] == [
        "new",
        "returning",
        "resurrecting",
        "dormant",
        "none",
        "unknown",
    ]
    assert [group.label for group in report.breakdowns["usage"]] == [
        "New",
        "Returning",
        "Back after a break",
        "Dormant",
        "No activity reported",
        "Not known",
    ]
    # New: 10, 6, 5, 8 -> 1 promoter, 2 detractors of 4: -25.
    assert usage["new"].score == Score(responses=4, promoters=1, detractors=2)
    assert usage["new"].nps == pytest.approx(-25)
    # Returning: 10, 10, 9, 8, 7, 3 -> 3 promoters, 1 detractor of 6: +33.
    assert usage["returning"].nps == pytest.approx(100 * 2 / 6)
    assert usage["dormant"].nps == pytest.approx(100 * -1 / 3)
    assert usage["none"].nps == 100
    # Two answers and one: fewer than 3, not scored.
    assert usage["resurrecting"].suppressed and usage["resurrecting"].nps is None
    assert usage["unknown"].suppressed and usage["unknown"].score.responses == 1

    bands = {group.key: group for group in report.breakdowns["active_days"]}
    assert [group.label for group in report.breakdowns["active_days"]] == [
        "0 days",
        "1-3 days",
        "4-9 days",
        "10-19 days",
        "20-30 days",
        "Not known",
    ]
    # 0 days: dormant 0, 0, 10 and none 9, 9, 9 -> 4 promoters, 2 detractors of 6: +33.
    assert bands["0"].score == Score(responses=6, promoters=4, detractors=2)
    # 1-3 days: new 10, 6, 5 (1, 2, 3 days) and back 9, 2 (1 day each) -> 2 promoters, 3 detractors of 5: -20.
    assert bands["1-3"].score == Score(responses=5, promoters=2, detractors=3)
    assert bands["1-3"].nps == pytest.approx(-20)
    # 4-9 days: 7 (4 days) and 3 (9 days): too few.
    assert bands["4-9"].suppressed and bands["4-9"].score.responses == 2
    assert bands["10-19"].score == Score(responses=2, promoters=1, detractors=0)
    # 20-30 days: returning 10 (30), 10 (20), and new 8 (25) -> 2 promoters of 3: +67.
    assert bands["20-30"].score == Score(responses=3, promoters=2, detractors=0)
    assert bands["20-30"].nps == pytest.approx(100 * 2 / 3)
    # The overall figure is unchanged by the new breakdowns.
    assert report.overall.score.responses == 19


def test_the_staff_page_shows_them_with_their_definitions(client, october):
    client.force_login(UserFactory(is_staff=True))
    with time_machine.travel(datetime(2026, 10, 20, 12, 0, tzinfo=UTC), tick=False):
        page = client.get("/staff/feedback/").content.decode()

    usage = page[page.index('id="breakdown-usage"') :]
    usage = usage[: usage.index("</section>")]
    assert "<h2>By use of the product when answering</h2>" in usage
    assert '<tr data-group="new"><td>New</td><td><strong class="feedback-nps">-25</strong>' in usage
    assert (
        '<tr data-group="resurrecting"><td>Back after a break</td><td><span class="feedback-suppressed"'
        in usage
    )
    assert (
        '<dt style="font-weight:600">Returning</dt><dd style="margin:0 0 .5rem">Active in the 30 days before answering and in the 30 before those.</dd>'
        in usage
    )
    assert ">No activity reported</dt>" in usage
    days = page[page.index('id="breakdown-active_days"') :]
    days = days[: days.index("</section>")]
    assert "<h2>By days active in the 30 days before answering</h2>" in days
    assert (
        '<tr data-group="1-3"><td>1-3 days</td><td><strong class="feedback-nps">-20</strong>'
        in days
    )
    assert "30 whole days before the day they answered" in days


def test_a_customer_report_by_usage_state_counts_only_its_own_answers(catalog, settings):
    settings.FEEDBACK_MIN_GROUP_RESPONSES = 3
    ours, _ = organization_on("standard")
    theirs, _ = organization_on("standard")
    _answers(ours, [10, 10, 4], state="returning", active_days=[12, 13, 14])
    _answers(ours, [3], state="new", active_days=[1])
    _answers(theirs, [0, 0, 0, 0], state="returning", active_days=[5, 5, 5, 5])

    report = selectors.organization_report(organization=ours, until=MONTH)

    assert [(group.key, group.score.responses) for group in report.by_usage] == [
        ("new", 1),
        ("returning", 3),
    ]
    returning = report.by_usage[1]
    assert returning.nps == pytest.approx(100 / 3) and not returning.suppressed
    assert report.by_usage[0].suppressed
    assert report.organization.score.responses == 4


@pytest.mark.django_db
def test_older_answers_are_backfilled_from_the_rollups(catalog):
    migration = importlib.import_module("feedback.migrations.0006_response_usage_backfill")
    organization, admin = organization_on("standard")
    other, _ = organization_on("standard")
    ana, gone = member(organization).user, member(organization).user
    # responses_insert answers on the 10th at 12:00 UTC: W0 = 10 Sep .. 9 Oct, W1 = 11 Aug .. 9 Sep.
    [tracker_answer] = responses_insert(organization, [9], month=MONTH, user=ana)
    Response.objects.filter(pk=tracker_answer.pk).update(
        product=Product.objects.get(code="tracker")
    )
    [any_product] = responses_insert(organization, [7], month=MONTH, user=ana)
    [deleted] = responses_insert(organization, [7], month=MONTH, user=gone)
    [admins] = responses_insert(organization, [7], month=MONTH, user=admin)
    active_on(organization, ana, "tracker", date(2026, 10, 9), date(2026, 9, 10), date(2026, 10, 10))
    active_on(organization, ana, "wiki", date(2026, 9, 1), date(2026, 10, 9))
    active_on(other, ana, "tracker", date(2026, 9, 20))  # another organization: not this answer's
    active_on(organization, admin, "tracker", date(2026, 7, 1))
    Response.objects.filter(pk=deleted.pk).update(user=None)

    migration.backfill(django_apps, None)

    def usage(response):
        response.refresh_from_db()
        return response.active_days, response.usage_state

    # Tracker: 9 Oct and 10 Sep in W0 (10 Oct is the answer's day), first ever in W0: new.
    assert usage(tracker_answer) == (2, "new")
    # Every product: 9 Oct (twice, one day), 10 Sep in W0, and wiki on 1 Sep in W1: returning.
    assert usage(any_product) == (2, "returning")
    assert usage(admins) == (0, "dormant")
    assert usage(deleted) == (None, "")  # nobody to ask about: not known

    migration.forget(django_apps, None)
    assert usage(tracker_answer) == (None, "")


@pytest.mark.django_db
def test_the_demo_answers_carry_their_authors_use_of_tracker(catalog):
    from django.core.management import call_command

    call_command("demo_data")

    states = set(Response.objects.values_list("usage_state", flat=True))
    assert Response.objects.count() == 40
    assert Response.objects.filter(active_days__isnull=True).count() == 0
    # 60 days of demo activity against answers over three months: some came often, some had none yet.
    assert "returning" in states and "none" in states
