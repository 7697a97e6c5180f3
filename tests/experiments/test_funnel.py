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
    (events.SIGNUP_STARTED, 3, None, None),
    (events.SIGNED_UP, 3, 60.0, 120.0),  # Ada 60, Bert 120 (Cleo has no start)
    (events.EMAIL_VERIFIED, 3, 60.0, 300.0),  # Cleo 45, Ada 60, Bert 300
    (events.ORGANIZATION_CREATED, 2, 5.0, 5.0),
    (events.TRIAL_STARTED, 2, 1.0, 1.0),
    (events.ENVIRONMENT_REQUESTED, 2, 1.0, 1.0),
    (events.ENVIRONMENT_ACTIVE, 2, 30.0, 60.0),  # Bert 30, Ada 60
    (events.INVITE_SENT, 1, 113.0, 113.0),  # Ada
    (events.INVITE_ACCEPTED, 0, None, None),
]


def test_percentile_is_nearest_rank():
    assert percentile([], 0.5) is None
    assert percentile([10.0], 0.95) == 10.0
    assert percentile([60.0, 120.0], 0.5) == 60.0
    assert percentile([60.0, 120.0], 0.95) == 120.0
    assert percentile([300.0, 45.0, 60.0], 0.5) == 60.0
    assert percentile([float(value) for value in range(1, 21)], 0.95) == 19.0
    assert percentile([float(value) for value in range(1, 101)], 0.95) == 95.0


def test_funnel_report_counts_each_person_once_per_step_with_times_between_steps(known_funnel):
    report = funnel_report(since=SINCE, until=UNTIL)

    assert report.since == SINCE
    assert report.until == UNTIL
    assert [step.name for step in report.steps] == events.SIGNUP_FUNNEL
    assert [
        (
            step.name,
            step.count,
            step.from_previous.median_seconds if step.from_previous else None,
            step.from_previous.p95_seconds if step.from_previous else None,
        )
        for step in report.steps
    ] == EXPECTED_STEPS
    assert report.steps[0].from_previous is None
    assert [step.from_previous.count for step in report.steps[1:]] == [2, 3, 2, 2, 2, 2, 1, 0]
    assert [step.share_of_first for step in report.steps] == [
        1,
        1,
        1,
        2 / 3,
        2 / 3,
        2 / 3,
        2 / 3,
        1 / 3,
        0,
    ]
    # Email verified -> workspace active: Bert 37 s, Ada 67 s.
    assert report.time_to_value == Duration(count=2, median_seconds=37.0, p95_seconds=67.0)


def test_funnel_report_of_an_empty_window(known_funnel):
    report = funnel_report(since=UNTIL + timedelta(days=1), until=UNTIL + timedelta(days=2))

    assert [step.count for step in report.steps] == [0] * len(events.SIGNUP_FUNNEL)
    assert [step.share_of_first for step in report.steps] == [None] * len(events.SIGNUP_FUNNEL)
    assert report.time_to_value == Duration(count=0, median_seconds=None, p95_seconds=None)


def test_a_signup_whose_anonymous_start_is_before_the_window_has_no_start(known_funnel):
    # The window opens 5 s after Ada's anonymous start: her signup counts, her start does not.
    report = funnel_report(since=START + timedelta(seconds=5), until=UNTIL)

    by_name = {step.name: step for step in report.steps}
    assert by_name[events.SIGNUP_STARTED].count == 2  # Bert, Dora
    assert by_name[events.SIGNED_UP].count == 3
    assert by_name[events.SIGNED_UP].from_previous == Duration(
        count=1, median_seconds=120.0, p95_seconds=120.0
    )


# HTTP ----------------------------------------------------------------------------------------


def funnel_rows(html: str) -> dict[str, int]:
    return {
        name: int(count)
        for name, count in re.findall(
            r'<tr data-step="([a-z_]+)"><td>[a-z_]+</td><td class="count">(\d+)</td>', html
        )
    }


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


def test_staff_see_the_funnel_with_its_numbers(client, known_funnel):
    client.force_login(UserFactory(is_staff=True))
    # The page's window ends one second after now (exclusive): at UNTIL, after the last event
    # of the window, so the anonymous start at UNTIL itself is left out.
    now = UNTIL - timedelta(seconds=1)

    with time_machine.travel(now, tick=False):
        response = client.get("/staff/funnel/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Signup funnel</h1>" in html
    # The default window is the last 30 days: the early journey on 28 February is in it too.
    rows = funnel_rows(html)
    assert rows[events.SIGNUP_STARTED] == 4
    assert rows[events.SIGNED_UP] == 4

    with time_machine.travel(now, tick=False):
        response = client.get("/staff/funnel/", {"since": "2026-03-01"})

    assert response.status_code == 200
    html = response.content.decode()
    assert funnel_rows(html) == {name: people for name, people, _, _ in EXPECTED_STEPS}
    assert re.search(
        r'<tr data-step="email_verified">.*?<td>100%</td>\s*<td>60\.00 s</td>\s*<td>300\.00 s</td>',
        html,
        re.S,
    )
    assert re.search(
        r'<tr data-step="environment_active">.*?<td>67%</td>\s*<td>30\.00 s</td>\s*<td>60\.00 s</td>',
        html,
        re.S,
    )
    assert '<p id="time-to-value">2 people · median 37.00 s · p95 67.00 s</p>' in html


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
