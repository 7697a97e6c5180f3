"""The staff NPS page puts the same month's active people (MAU) and monthly retention beside the
NPS, with a MAU trend and the retention heat map, each with its definition. Worked out by hand."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.core.cache import cache

from activity.services import REBUILD_PENDING_KEY, staff_figures_build
from catalog.models import Product
from feedback.models import Response

from ..conftest import active_on, organization_on
from ..factories import MembershipFactory, UserFactory
from .helpers import responses_insert

NOW = datetime(2026, 12, 15, 12, 0, tzinfo=UTC)  # yesterday, the last whole day, is 14 December
NOVEMBER = date(2026, 11, 1)


def _text(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}"')
    block = html[start : html.index("</div>", start)]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", block[block.index(">") + 1 :])).strip()


@pytest.fixture
def activity(catalog, settings):
    settings.FEEDBACK_MIN_GROUP_RESPONSES = 3
    acme, ana = organization_on("standard")
    globex, gil = organization_on("standard")
    bob, cy, dee, eve = (UserFactory() for _ in range(4))
    for user in (bob, cy, dee, eve):
        MembershipFactory(organization=acme, user=user)
    MembershipFactory(organization=globex, user=bob)
    # October: ana, bob, cy, gil (4). November: ana, bob (in both organizations: once), eve (3);
    # 2 of October's 4 came back: 50 %. December so far: ana (1), 1 of November's 3: 33 %.
    active_on(acme, ana, "tracker", date(2026, 10, 1), date(2026, 11, 20), date(2026, 12, 14))
    active_on(acme, bob, "tracker", date(2026, 10, 31), date(2026, 11, 1))
    active_on(globex, bob, "wiki", date(2026, 11, 2))
    active_on(acme, cy, "wiki", date(2026, 10, 15))
    active_on(globex, gil, "tracker", date(2026, 10, 20))
    active_on(acme, eve, "tracker", date(2026, 11, 30))
    active_on(acme, dee, "tracker", date(2026, 12, 15))  # today: not a whole day yet
    rows = responses_insert(acme, [10, 9, 9, 3], month=NOVEMBER)
    Response.objects.filter(pk__in=[row.pk for row in rows]).update(
        product=Product.objects.get(code="tracker")
    )
    return UserFactory(is_staff=True)


def _page(client, staff, **params) -> str:
    client.force_login(staff)
    with time_machine.travel(NOW, tick=False):
        response = client.get("/staff/feedback/", params)
    assert response.status_code == 200
    return response.content.decode()


def test_the_months_active_people_and_retention_beside_its_nps(client, activity):
    page = _page(client, activity, month="2026-11")

    assert _text(page, "nps-month").startswith("November 2026 +50")
    assert (
        _text(page, "usage-month")
        == "Active people 3 in November 2026 50 % of October 2026's 4 came back"
    )
    definitions = page[
        page.index('id="usage-definitions"') : page.index(
            "</dl>", page.index('id="usage-definitions"')
        )
    ]
    assert "People active on at least one day of the calendar month (UTC)" in definitions
    assert (
        "Of the people active in the month before, the share active in this month." in definitions
    )
    assert "a person once across products, up to 14 Dec 2026." in definitions

    table = page[
        page.index('id="nps-usage-months"') : page.index(
            "</table>", page.index('id="nps-usage-months"')
        )
    ]
    rows = [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in table.split("<tr>")[2:]
    ]
    # 10, 9, 9, 3: NPS +50, margin 1.96 * sqrt((0.75 + 0.25 - 0.5^2) / 4) = ±85.
    assert rows == ["Oct 2026 no answers 4 –", "Nov 2026 +50 ±85 · 4 answers 3 50 %"]
    # The chart starts at the first month with anyone active, showing at least three months.
    assert (
        "People active each month: Sep 2026 0 people; Oct 2026 4 people; Nov 2026 3 people, kept 50 % of the month before"
        in page
    )


def test_the_running_month_says_so_far(client, activity):
    page = _page(client, activity)

    assert (
        _text(page, "usage-month")
        == "Active people 1 in December 2026 so far 33 % of November 2026's 3 came back"
    )
    assert "Dec 2026 so far 1 person, kept 33 % of the month before" in page
    retention = page[page.index('id="feedback-retention"') :]
    retention = retention[: retention.index("</section>")]
    # Cohorts by month of first activity: October's 4 (ana, bob, cy, gil), November's 1 (eve);
    # of October's, 2 were active in November (50 %), 1 in December so far (25 %).
    assert (
        "month of Oct 2026, 4 people (small): 100 %, 50 %, 25 %; month of Nov 2026, 1 person (small): 100 %, 0 %"
        in retention
    )
    assert "A cohort is the people who started in any product in the same month" in retention


@pytest.mark.django_db
def test_until_yesterdays_staff_figures_are_stored_the_newest_stored_day_is_shown(
    client, activity, django_capture_on_commit_callbacks
):
    """Just after midnight the staff figures of yesterday are still being built: the page reads
    the newest stored day instead of every rollup, says so, and asks for the build once."""
    cache.delete(REBUILD_PENDING_KEY)
    with time_machine.travel(datetime(2026, 11, 21, 0, 20, tzinfo=UTC), tick=False):
        staff_figures_build()  # up to 20 November: ana, bob in November so far; ana, bob, cy, gil in October
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        page = _page(client, activity, month="2026-11")

    assert len(callbacks) == 1 and cache.get(REBUILD_PENDING_KEY) is not None
    assert (
        "The usage figures count up to 20 Nov 2026: those up to yesterday are being built" in page
    )
    assert _text(page, "usage-month") == (
        "Active people 2 in November 2026 so far 50 % of October 2026's 4 came back"
    )
    cache.delete(REBUILD_PENDING_KEY)
