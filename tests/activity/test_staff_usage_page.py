"""/staff/usage/: the product picker, the MAU trend, the DAU/WAU/MAU table, the retention heat
map (by week or month, on or on-or-after) and the lifecycle, each with its definition; bad
parameters answered with a sentence and 400, never a 500; staff only; and, once the day's
figures are stored, a page that reads no rollup at all."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import redis
import time_machine
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from activity.models import ActivityDay
from activity.services import REBUILD_PENDING_KEY, staff_figures_build

from ..conftest import active_on, organization_on
from ..factories import MembershipFactory, UserFactory

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)  # as_of: Saturday 5 December


@pytest.fixture
def staff_client(client, catalog):
    """Tracker: ana 2 Nov, 24 Nov, 1 Dec; bo 25 Nov, 5 Dec; Wiki: cy 3 Oct, 4 Dec."""
    acme, ana = organization_on("standard")
    bo = MembershipFactory(organization=acme).user
    cy = MembershipFactory(organization=acme).user
    active_on(acme, ana, "tracker", date(2026, 11, 2), date(2026, 11, 24), date(2026, 12, 1))
    active_on(acme, bo, "tracker", date(2026, 11, 25), date(2026, 12, 5))
    active_on(acme, cy, "wiki", date(2026, 10, 3), date(2026, 12, 4))
    client.force_login(UserFactory(is_staff=True))
    return client


def _get(client, **params):
    with time_machine.travel(NOW, tick=False):
        return client.get(reverse("staff_usage"), params)


@pytest.mark.django_db
def test_all_products_by_week_with_every_definition(staff_client):
    page = _get(staff_client)
    assert page.status_code == 200
    html = page.content.decode()
    assert "up to the end of Saturday 5 December 2026 (UTC)" in html
    assert (
        "Figures computed now: none are stored yet. They are being built for the next visits"
        in html
    )
    assert (
        '<a href="?product=all&amp;period=week&amp;mode=n_day" class="button" aria-current="page">All products</a>'
        in html
    )
    assert (
        '<a href="?product=tracker&amp;period=week&amp;mode=n_day" class="button secondary">Tracker</a>'
        in html
    )
    # DAU/WAU/MAU (Tracker: bo on 5 Dec; ana and bo in the week; both in 30 days).
    assert '<th scope="row">Tracker</th><td>1</td><td>2</td><td>2</td>' in html
    # The MAU trend over all products: October cy; November ana, bo; December so far ana, bo, cy.
    assert "People active each month: All products" in html
    assert (
        "Oct 2026 1 person; Nov 2026 2 people, kept 0 % of the month before; Dec 2026 so far 3 people, kept 100 % of the month before"
        in html
    )
    assert "Of the people active in the month before, the share active in this month." in html
    # Retention by week, on week n: ana started 2 Nov (back on 24 Nov: week 3, and 1 Dec: week 4),
    # bo on 23 Nov's week (back 5 Dec: week 1).
    assert "week of 2 Nov, 1 person (small): 100 %, 0 %, 0 %, 100 %, 100 %" in html
    assert "week of 23 Nov, 1 person (small): 100 %, 100 %" in html
    assert "A cohort is the people who started in any product in the same week" in html
    assert "Cohorts of fewer than 20 people are marked small and left out of the average" in html
    assert (
        '<a href="?product=all&amp;period=month&amp;mode=n_day" class="button small secondary">By month</a>'
        in html
    )
    assert (
        '<a href="?product=all&amp;period=week&amp;mode=unbounded" class="button small secondary">On or after week n</a>'
        in html
    )
    # Lifecycle: week of 30 Nov (so far): ana and bo returning (24, 25 Nov); cy resurrecting.
    assert (
        '<th scope="row">30 Nov<br><span class="muted">so far</span></th><td>0</td><td>2</td><td>1</td><td>0</td><td>3</td>'
        in html
    )
    assert '<th scope="row">23 Nov</th><td>1</td><td>0</td><td>1</td><td>0</td><td>2</td>' in html
    assert (
        '<dt><span class="usage-swatch usage-swatch-resurrecting" aria-hidden="true"></span>Resurrecting</dt>'
        "<dd>Active in the week, not in the week before, but active some time earlier.</dd>"
    ) in html
    assert html.count('role="img"') == 3


@pytest.mark.django_db
def test_one_product_by_month_counting_on_or_after(staff_client):
    html = _get(staff_client, product="wiki", period="month", mode="unbounded").content.decode()
    assert "Retention: Wiki" in html and "Lifecycle by month: Wiki" in html
    # cy started in Wiki in October and came back in December: on or after month 1 and 2.
    assert "month of Oct 2026, 1 person (small): 100 %, 100 %, 100 %" in html
    assert "Counting:</span>" in html and 'aria-current="page">On or after month n</a>' in html
    assert (
        '<th scope="row">Nov 2026</th><td>0</td><td>0</td><td>0</td><td>−1</td><td>0</td>' in html
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "sentence"),
    [
        (
            {"period": "day"},
            "“day” is not a period this page shows: it shows weeks (period=week) or months (period=month).",
        ),
        (
            {"mode": "bracket"},
            "“bracket” is not a way of counting retention this page knows: "
            "“on period n” (mode=n_day) or “on or after period n” (mode=unbounded).",
        ),
        (
            {"product": "<b>nope</b>"},
            "“&lt;b&gt;nope&lt;/b&gt;” is not one of Flywheel&#x27;s products: choose All products (product=all), "
            "Tracker (product=tracker), Wiki (product=wiki), Service Desk (product=servicedesk).",
        ),
    ],
)
def test_a_bad_parameter_is_answered_with_a_sentence(staff_client, params, sentence):
    page = _get(staff_client, **params)
    assert page.status_code == 400
    html = page.content.decode()
    assert sentence in html
    assert 'href="/staff/usage/"' in html


@pytest.mark.django_db
def test_once_the_day_is_stored_the_page_reads_no_rollup(staff_client):
    computed = "Figures computed now: none are stored yet. They are being built for the next visits (and then every night at 00:20 UTC)."
    stored = (
        "Figures over all organizations as stored at 09:00 UTC on 6 Dec; "
        "events that arrive late for earlier days are added within 10 minutes."
    )
    before = _get(staff_client, product="tracker").content.decode()
    assert computed in before
    with time_machine.travel(NOW, tick=False):
        staff_figures_build()
    with CaptureQueriesContext(connection) as queries:
        page = _get(staff_client, product="tracker")
    assert page.status_code == 200
    assert not [
        query["sql"] for query in queries.captured_queries if "activity_activityday" in query["sql"]
    ]
    html = page.content.decode()
    # The same page as computed live, but for the sentence saying where the figures come from
    # (and the per-request CSRF token in the header).
    assert html.split("<h1>", 1)[1] == before.split("<h1>", 1)[1].replace(computed, stored)


def _parked_queue_length() -> int:
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    return broker.llen(django_settings.CELERY_TASK_DEFAULT_QUEUE)


@pytest.mark.django_db
def test_until_yesterday_is_stored_the_page_shows_the_newest_stored_day_and_asks_for_a_build(
    staff_client, django_capture_on_commit_callbacks
):
    cache.delete(REBUILD_PENDING_KEY)
    with time_machine.travel(datetime(2026, 12, 5, 0, 20, tzinfo=UTC), tick=False):
        staff_figures_build()  # the figures up to 4 December
    queued = _parked_queue_length()
    with django_capture_on_commit_callbacks(execute=True):
        html = _get(staff_client).content.decode()  # 6 December: yesterday's are not built yet
    assert (
        "These are the figures up to 4 Dec: those up to 5 Dec are being built and show here within a few minutes."
        in html
    )
    assert "up to the end of Friday 4 December 2026 (UTC)" in html
    # Tracker on 4 Dec: nobody that day; ana in the 7 days (1 Dec); ana and bo in the 30 days.
    assert '<th scope="row">Tracker</th><td>0</td><td>1</td><td>2</td>' in html
    assert cache.get(REBUILD_PENDING_KEY) is not None and _parked_queue_length() == queued + 1
    # A second visit while the build is pending asks for nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        _get(staff_client)
    assert _parked_queue_length() == queued + 1
    cache.delete(REBUILD_PENDING_KEY)


@pytest.mark.django_db
def test_only_staff_see_it(client, catalog):
    _, ana = organization_on("standard")
    client.force_login(ana)
    assert _get(client).status_code in (302, 403, 404)


@pytest.mark.django_db
def test_one_organizations_figures_count_only_its_own_activity(staff_client):
    """?customer=<its id>: the same figures from that organization's rows only; a person
    active in two organizations counts in each by what they did there. Unknown ids: a sentence."""
    globex, gil = organization_on("standard")
    active_on(globex, gil, "tracker", date(2026, 12, 5))
    ana = ActivityDay.objects.filter(day=date(2026, 11, 2)).get().user
    active_on(globex, ana, "tracker", date(2026, 12, 3))  # ana also works for Globex
    acme = ActivityDay.objects.filter(day=date(2026, 11, 2)).get().organization

    everyone = _get(staff_client).content.decode()
    # All organizations: Tracker DAU bo and gil, WAU ana, bo, gil, MAU the same three.
    assert '<th scope="row">Tracker</th><td>2</td><td>3</td><td>3</td>' in everyone

    page = _get(staff_client, customer=str(globex.public_id))
    assert page.status_code == 200
    html = page.content.decode()
    assert f"<h1>Product usage: {globex.name}</h1>" in html
    # Globex: gil on 5 Dec, ana on 3 Dec (her Acme days are not Globex's).
    assert '<th scope="row">Tracker</th><td>1</td><td>2</td><td>2</td>' in html
    assert f"customer={globex.public_id}" in html  # the pickers keep the organization

    own = _get(staff_client, customer=str(acme.public_id)).content.decode()
    assert '<th scope="row">Tracker</th><td>1</td><td>2</td><td>2</td>' in own  # bo; ana, bo

    for wrong in ("not-an-id", "00000000-0000-0000-0000-000000000000"):
        refused = _get(staff_client, customer=wrong)
        assert refused.status_code == 400
        assert "is not an organization&#x27;s id" in refused.content.decode()
