"""The staff signup funnel: counts per step, time between steps and time to value."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from experiments import events
from experiments.selectors import Duration, funnel_report, percentile
from experiments.services import event_record

from ..factories import MembershipFactory, UserFactory

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SINCE = datetime(2026, 3, 1, tzinfo=UTC)
UNTIL = datetime(2026, 3, 3, tzinfo=UTC)


def record_at(at: datetime, name: str, **kwargs) -> None:
    with time_machine.travel(at, tick=False):
        event_record(name=name, **kwargs)


def journey(start: datetime, user, organization, steps: list[tuple[int, str]]) -> None:
    """Record `steps` as (seconds after `start`, event name) for one user of one organization."""
    for seconds, name in steps:
        attached = organization if name not in (events.SIGNED_UP, events.EMAIL_VERIFIED) else None
        record_at(start + timedelta(seconds=seconds), name, user=user, organization=attached)


@pytest.fixture
def known_funnel(db):
    """Four people in the window, plus events the funnel must ignore.

    Ada:   anonymous start, signs up 60 s later, verifies 60 s after, workspace active 67 s after
           verifying, invites a colleague.
    Bert:  anonymous start, signs up 120 s later, verifies 300 s after, active 37 s after verifying.
    Cleo:  signed up without an anonymous start (no landing page), verified 45 s later, stopped.
    Dora:  an anonymous start that never became a signup.
    """
    ada_membership = MembershipFactory()
    ada, ada_organization = ada_membership.user, ada_membership.organization
    bert_membership = MembershipFactory()
    bert, bert_organization = bert_membership.user, bert_membership.organization
    cleo = UserFactory()

    # Ada
    record_at(
        START, events.SIGNUP_STARTED, distinct_id="anonymous-ada", properties={"product": "tracker"}
    )
    record_at(
        START + timedelta(seconds=60),
        events.SIGNED_UP,
        user=ada,
        properties={"anonymous_id": "anonymous-ada"},
    )
    journey(
        START,
        ada,
        ada_organization,
        [
            (120, events.EMAIL_VERIFIED),
            (125, events.ORGANIZATION_CREATED),
            (126, events.TRIAL_STARTED),
            (127, events.ENVIRONMENT_REQUESTED),
            (187, events.ENVIRONMENT_ACTIVE),
            (300, events.INVITE_SENT),
            # Later repeats count at the first time only.
            (900, events.EMAIL_VERIFIED),
            (950, events.INVITE_SENT),
            # Not a funnel step.
            (1000, events.SEAT_LIMIT_REACHED),
        ],
    )

    # Bert, whose anonymous start is 10 s after Ada's.
    bert_start = START + timedelta(seconds=10)
    record_at(bert_start, events.SIGNUP_STARTED, distinct_id="anonymous-bert")
    record_at(
        bert_start + timedelta(seconds=120),
        events.SIGNED_UP,
        user=bert,
        properties={"anonymous_id": "anonymous-bert"},
    )
    journey(
        bert_start + timedelta(seconds=120),
        bert,
        bert_organization,
        [
            (300, events.EMAIL_VERIFIED),
            (305, events.ORGANIZATION_CREATED),
            (306, events.TRIAL_STARTED),
            (307, events.ENVIRONMENT_REQUESTED),
            (337, events.ENVIRONMENT_ACTIVE),
        ],
    )

    # Ada's colleague signs up through her invite and joins: not a signup of the funnel, but
    # "A colleague joined" for Ada, after she invited.
    colleague = UserFactory()
    record_at(START + timedelta(seconds=350), events.SIGNED_UP, user=colleague, properties={"anonymous_id": "", "via_invite": True})
    record_at(START + timedelta(seconds=360), events.EMAIL_VERIFIED, user=colleague)
    record_at(START + timedelta(seconds=400), events.INVITE_ACCEPTED, user=colleague, organization=ada_organization)
    # Someone joins Bert's organization by email domain although Bert never invited anyone:
    # steps are in order, so Bert does not reach "A colleague joined".
    record_at(START + timedelta(seconds=900), events.JOINED_BY_DOMAIN, user=UserFactory(), organization=bert_organization)

    # Cleo
    cleo_start = START + timedelta(minutes=30)
    record_at(cleo_start, events.SIGNED_UP, user=cleo, properties={"anonymous_id": ""})
    record_at(cleo_start + timedelta(seconds=45), events.EMAIL_VERIFIED, user=cleo)

    # Dora
    record_at(START + timedelta(hours=1), events.SIGNUP_STARTED, distinct_id="anonymous-dora")

    # Outside the window: a whole journey the day before, and one right at `UNTIL` (exclusive).
    early = UserFactory()
    record_at(SINCE - timedelta(seconds=1), events.SIGNUP_STARTED, distinct_id="anonymous-early")
    record_at(
        SINCE - timedelta(seconds=1),
        events.SIGNED_UP,
        user=early,
        properties={"anonymous_id": "anonymous-early"},
    )
    record_at(UNTIL, events.SIGNUP_STARTED, distinct_id="anonymous-late")
    return {"ada": ada, "bert": bert, "cleo": cleo}


EXPECTED_STEPS = [
    # step, people, median and p95 seconds from the previous step (nearest rank)
    ("signed_up", 3, None, None),  # Ada, Bert, Cleo (not the colleague: she came by invite)
    ("email_verified", 3, 60.0, 300.0),  # Cleo 45, Ada 60, Bert 300
    ("organization_created", 2, 5.0, 5.0),
    ("product_started", 2, 1.0, 1.0),
    ("workspace_ready", 2, 31.0, 61.0),  # Bert 31, Ada 61 (from the trial's start)
    ("invite_sent", 1, 113.0, 113.0),  # Ada
    ("colleague_joined", 1, 100.0, 100.0),  # Ada's colleague; Bert never invited
    ("paid", 0, None, None),
]


def test_percentile_is_nearest_rank():
    assert percentile([], 0.5) is None
    assert percentile([10.0], 0.95) == 10.0
    assert percentile([60.0, 120.0], 0.5) == 60.0
    assert percentile([60.0, 120.0], 0.95) == 120.0
    assert percentile([300.0, 45.0, 60.0], 0.5) == 60.0
    assert percentile([float(value) for value in range(1, 21)], 0.95) == 19.0
    assert percentile([float(value) for value in range(1, 101)], 0.95) == 95.0


def test_funnel_report_counts_people_in_order_each_step_a_subset_of_the_previous(known_funnel):
    report = funnel_report(since=SINCE, until=UNTIL)

    assert report.since == SINCE
    assert report.until == UNTIL
    assert [
        (
            step.key,
            step.count,
            step.from_previous.median_seconds if step.from_previous else None,
            step.from_previous.p95_seconds if step.from_previous else None,
        )
        for step in report.steps
    ] == EXPECTED_STEPS
    assert [step.label for step in report.steps] == [
        "Signed up", "Verified email", "Created an organization", "Started a product (trial or Free)",
        "Workspace ready", "Invited a colleague", "A colleague joined", "Paid",
    ]
    counts = [step.count for step in report.steps]
    assert counts == sorted(counts, reverse=True)  # never rises
    assert [step.share_of_first for step in report.steps] == [1, 1, 2 / 3, 2 / 3, 2 / 3, 1 / 3, 1 / 3, 0]
    assert [step.share_of_previous for step in report.steps] == [None, 1, 2 / 3, 1, 1, 1 / 2, 1, 0]
    # Email verified -> workspace ready: Bert 37 s, Ada 67 s.
    assert report.time_to_value == Duration(count=2, median_seconds=37.0, p95_seconds=67.0)
    assert report.signup_page_visitors == 3  # Ada, Bert, Dora's browsers


def test_funnel_report_of_an_empty_window(known_funnel):
    report = funnel_report(since=UNTIL + timedelta(days=1), until=UNTIL + timedelta(days=2))

    assert [step.count for step in report.steps] == [0] * 8
    assert [step.share_of_first for step in report.steps] == [None] * 8
    assert report.time_to_value == Duration(count=0, median_seconds=None, p95_seconds=None)


def test_steps_after_the_end_of_the_period_do_not_count(known_funnel):
    # The period ends 200 s after Ada's start: she has verified (120 s) and her workspace is
    # ready (187 s) but has not invited yet (300 s); Bert has signed up only.
    report = funnel_report(since=SINCE, until=START + timedelta(seconds=200))

    by_key = {step.key: step.count for step in report.steps}
    assert by_key["signed_up"] == 2
    assert by_key["email_verified"] == 1
    assert by_key["workspace_ready"] == 1
    assert by_key["invite_sent"] == 0


# HTTP ----------------------------------------------------------------------------------------


def funnel_rows(html: str) -> dict[str, int]:
    return {
        key: int(count)
        for key, count in re.findall(r'<tr data-step="([a-z_]+)"><td>[^<]+</td><td class="count">(\d+)</td>', html)
    }


def visible_text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html[html.index("<main") :]))


def test_anonymous_visitors_are_sent_to_sign_in(client, db):
    response = client.get("/staff/funnel/")

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('account_login')}?next=/staff/funnel/"


def test_a_user_who_is_not_staff_is_refused(client, known_funnel):
    client.force_login(known_funnel["ada"])

    response = client.get("/staff/funnel/")

    assert response.status_code == 403
    assert "Staff only" in response.content.decode()
    assert "Signup funnel" not in response.content.decode()


def test_staff_see_the_funnel_drawn_in_words_with_its_numbers(client, known_funnel):
    client.force_login(UserFactory(is_staff=True))
    # The page's window ends one second after now (exclusive).
    now = UNTIL - timedelta(seconds=1)

    with time_machine.travel(now, tick=False):
        response = client.get("/staff/funnel/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Signup funnel</h1>" in html
    # The default period is the last 30 days: the early signup on 28 February is in it too.
    assert funnel_rows(html)["signed_up"] == 4

    with time_machine.travel(now, tick=False):
        response = client.get("/staff/funnel/", {"since": "2026-03-01", "until": "2026-03-02"})

    assert response.status_code == 200
    html = response.content.decode()
    assert funnel_rows(html) == {key: people for key, people, _, _ in EXPECTED_STEPS}
    text = visible_text(html)
    # Named in words, never as event names.
    for raw in ("signed_up", "email_verified", "environment_active", "invite_accepted"):
        assert raw not in text
    assert "Signed up" in text and "Verified email" in text and "A colleague joined" in text
    assert "People who signed up from 1 Mar 2026, 00:00 to 2 Mar 2026, 23:59 (UTC)." in text
    # Conversion from the previous step and from the first, durations in words.
    assert re.search(
        r'<tr data-step="organization_created"><td>Created an organization</td><td class="count">2</td>\s*'
        r'<td class="conversion">67%</td>\s*<td class="share">67%</td>\s*'
        r'<td class="duration">5 seconds</td>\s*<td class="duration">5 seconds</td>',
        html,
    )
    assert re.search(r'<tr data-step="invite_sent">.*?<td class="conversion">50%</td>\s*<td class="share">33%</td>', html, re.S)
    assert "Time to value (email verified → workspace ready): 2 people · median 37 seconds · 95th percentile 1 min 7 s" in text
    # Drawn: one bar per step, as wide as its share of the widest step, described for screen readers.
    bars = re.findall(r'<li data-step="([a-z_]+)".*?role="img" aria-label="([^"]+)".*?<div style="width:(\d+)%', html, re.S)
    assert [(key, int(width)) for key, _, width in bars] == [
        ("signed_up", 100), ("email_verified", 100), ("organization_created", 67), ("product_started", 67),
        ("workspace_ready", 67), ("invite_sent", 33), ("colleague_joined", 33), ("paid", 0)]
    assert bars[2][1] == "Created an organization: 2 people, 67% of the first step"
    # The definition is on the page, and the period can be chosen.
    assert "A person counts at a step only if they reached every step before it first" in text
    for days in ("7", "30", "90"):
        assert f'href="?days={days}"' in html
    assert 'type="date" id="funnel-since" name="since" value="2026-03-01"' in html


def test_a_period_of_the_last_7_days(client, known_funnel):
    client.force_login(UserFactory(is_staff=True))

    with time_machine.travel(START + timedelta(days=6), tick=False):
        html = client.get("/staff/funnel/", {"days": "7"}).content.decode()

    assert funnel_rows(html)["signed_up"] == 3  # not the early signup, 8 days before
    assert 'aria-current="true" href="?days=7"' in html


@pytest.mark.parametrize("since", ["last-week", "2026-13-01", "2026-02-30"])
def test_a_bad_since_is_a_400_naming_the_parameter(client, known_funnel, since):
    client.force_login(UserFactory(is_staff=True))

    response = client.get("/staff/funnel/", {"since": since})

    assert response.status_code == 400
    html = response.content.decode()
    assert (
        f'<p class="error">&#x27;since&#x27; must be a date like 2026-11-01, got &#x27;{since}&#x27;.</p>'
        in html
    )
