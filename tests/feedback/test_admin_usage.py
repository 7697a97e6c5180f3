"""A customer's admins read how many of their people use each product against the seats they pay
for, and their people's NPS by use of the product, on the report page and in the monthly email,
from their own organization's activity and answers only. Figures worked out by hand."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from activity.models import ActivityDay
from billing.models import Subscription
from catalog.models import Product
from feedback import services
from feedback.models import Response

from ..conftest import organization_on
from .helpers import member, responses_insert

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)  # yesterday, the last whole day, is 5 December
YESTERDAY = date(2026, 12, 5)
NOVEMBER = date(2026, 11, 1)


def _active(organization, user, product_code, *days_ago):
    product = Product.objects.get(code=product_code)
    ActivityDay.objects.bulk_create(
        [
            ActivityDay(
                organization=organization,
                user=user,
                product=product,
                day=YESTERDAY - timedelta(days=ago),
                events=1,
                active_events=1,
            )
            for ago in days_ago
        ]
    )


def _answers(organization, scores, *, state):
    rows = responses_insert(organization, scores, month=NOVEMBER)
    Response.objects.filter(pk__in=[row.pk for row in rows]).update(
        usage_state=state, active_days=5
    )


@pytest.fixture
def acme(catalog, settings):
    settings.FEEDBACK_MIN_GROUP_RESPONSES = 3
    acme, admin = organization_on("standard")  # Tracker, 100 seats
    other, other_admin = organization_on("standard")
    ana, bob, cy = (member(acme).user for _ in range(3))
    _active(acme, ana, "tracker", 0, 3)  # active on 2 of the 30 days
    _active(acme, bob, "tracker", 29)  # the 30th day back: counts
    _active(acme, cy, "tracker", 30)  # the 31st day back: does not
    _active(other, other_admin, "tracker", 0, 1)  # another customer's people: never counted here
    Subscription.objects.filter(organization=acme).update(seat_limit=8)
    _answers(acme, [10, 10, 9, 3], state="returning")  # 3 promoters, 1 detractor of 4: +50
    _answers(acme, [2, 9], state="new")  # 2 answers: too few to score
    _answers(other, [0, 0, 0], state="dormant")
    return acme, admin


def test_the_admins_page_shows_active_people_against_seats(client, acme):
    organization, admin = acme
    client.force_login(admin)
    with time_machine.travel(NOW, tick=False):
        page = client.get("/app/feedback/").content.decode()

    usage = page[page.index('id="feedback-usage"') : page.index('id="feedback-nps"')]
    # ana and bob of 8 seats: 25 %.
    assert re.search(r'<th scope="row">Tracker</th><td>2</td><td>8</td><td>25 %</td>', usage)
    assert "used the product on at least one of the 30 days ending 5 Dec 2026" in usage
    states = page[page.index('id="feedback-usage-states"') :]
    states = states[: states.index("</section>")]
    assert '<tr data-group="new"><td>New</td><td><span class="feedback-suppressed"' in states
    assert (
        '<tr data-group="returning"><td>Returning</td><td><strong class="feedback-nps">+50</strong>'
        in states
    )
    assert "dormant" not in states.split("<dl")[0]  # the other customer's answers are not here
    assert ">Dormant</dt>" in states  # every state is defined, whether or not it has answers


def test_the_monthly_email_says_the_same(catalog, acme, monkeypatch, mailoutbox):
    organization, admin = acme
    monkeypatch.setattr(services, "mail_queue", lambda message: message.send())
    with time_machine.travel(NOW, tick=False):
        services.organization_report_send(organization_id=organization.pk, month=NOVEMBER)

    [message] = mailoutbox
    text = message.body
    assert (
        "Who uses your products (people active in the 30 days ending 5 Dec 2026, against your seats):\n"
        "  Tracker: 2 active of 8 seats (25 %)\n"
    ) in text
    assert (
        "By use of the product when answering:\n  New: too few answers (2)\n  Returning: +50 ±"
        in text
    )
    assert (
        "(Back after a break: active in the 30 days before answering, not in the 30 before those"
        in text
    )
    assert "Dormant: too few" not in text and "Dormant: +" not in text and "Dormant: -" not in text
    html = message.alternatives[0][0]
    for read in (text, html):  # words, never a stored value
        assert "returning" not in read and "usage_state" not in read and "active_days" not in read
    assert (
        '<td style="padding: 4px 16px 4px 0;">Tracker</td><td style="padding: 4px 16px 4px 0;">2</td>'
        in html
    )
    assert "25 %" in html and "By use of the product when answering" in html


def test_the_admins_see_their_own_mau_trend_and_retention(client, acme):
    """Acme by month: November bob and cy (2), December so far ana (1); none of November's came
    back yet (0 %). The other customer's people are never counted."""
    organization, admin = acme
    client.force_login(admin)
    with time_machine.travel(NOW, tick=False):
        page = client.get("/app/feedback/").content.decode()

    mau = page[page.index('id="feedback-mau"') : page.index('id="feedback-retention"')]
    assert (
        "Oct 2026 0 people; Nov 2026 2 people; Dec 2026 so far 1 person, kept 0 % of the month before"
        in mau
    )
    retention = page[page.index('id="feedback-retention"') :]
    retention = retention[: retention.index("</figure>")]
    # Cohorts from October (the last three months): November's 2 (small), December's 1 (small).
    assert (
        "month of Nov 2026, 2 people (small): 100 %, 0 %; month of Dec 2026, 1 person (small): 100 %"
        in retention
    )
    assert "Cohorts of fewer than 20 people are marked small" in retention


def test_the_monthly_email_draws_them_as_tables(catalog, acme, monkeypatch, mailoutbox):
    organization, admin = acme
    monkeypatch.setattr(services, "mail_queue", lambda message: message.send())
    with time_machine.travel(NOW, tick=False):
        services.organization_report_send(organization_id=organization.pk, month=NOVEMBER)

    [message] = mailoutbox
    assert not message.attachments  # no image: tables read in every mail client
    text = message.body
    assert (
        "Active people by month (all your products, a person once):\n"
        "  Sep 2026: 0\n  Oct 2026: 0\n  Nov 2026: 2\n"
    ) in text
    # A report of November counts up to 30 November: no December in it.
    assert "months later:\n  Nov 2026 (2 people, small): 100 %\n  (A person starts in the month of their first active day." in text
    assert "Dec 2026 (" not in text and "Dec 2026:" not in text
    html = message.alternatives[0][0]
    # November's bar is the longest (100 %); the small cohort's cells are grey with muted ink.
    assert '<td style="padding: 3px 12px 3px 0;">2</td>' in html and "width: 100%;" in html
    assert 'background: #eef0f5; color: #555e6e;">100 %</td>' in html
