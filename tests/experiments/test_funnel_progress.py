"""The funnel's per-person progress (experiments/funnel.py): kept by the triggers' marks and the
refresh, it gives the answers of walking the events (funnel_report_from_events), whatever
order the events arrive in."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from experiments import events
from experiments.funnel import (
    FUNNEL_STEPS,
    ORGANIZATION_EVENTS,
    PERSON_EVENTS,
    funnel_progress_rebuild,
    funnel_progress_refresh,
)
from experiments.models import Event, FunnelChange, FunnelDay, FunnelProgress, FunnelVisit
from experiments.selectors import funnel_report, funnel_report_from_events

from ..factories import OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 5, 4, tzinfo=UTC)


def event(name: str, at: datetime, *, user=None, organization=None, **properties) -> Event:
    return Event.objects.create(
        name=name,
        user=user,
        organization=organization,
        distinct_id=str(user.public_id) if user else "org",
        occurred_at=at,
        properties=properties,
    )


def counts(report) -> dict[str, int]:
    return {step.key: step.count for step in report.steps}


def figures(report) -> tuple:
    """Everything a funnel report says, in one comparable value."""
    return (
        [
            (step.key, step.count, step.share_of_previous, step.share_of_first, step.from_previous)
            for step in report.steps
        ],
        report.time_to_value,
        report.signup_page_visitors,
    )


def test_every_step_has_a_column_and_its_events_leave_a_mark():
    assert [field.name for field in FunnelProgress._meta.get_fields()] == [
        "user_id",
        "organization",
        *[step.column for step in FUNNEL_STEPS],
        "last_step_at",
        "time_to_value",
        *[step.after_column for step in FUNNEL_STEPS[1:]],
    ]
    user, organization = UserFactory(), OrganizationFactory()
    FunnelChange.objects.all().delete()
    for name in PERSON_EVENTS:
        event(name, DAY, user=user, organization=organization)
    for name in ORGANIZATION_EVENTS:
        event(name, DAY, user=user, organization=organization)

    event(events.SIGNUP_STARTED, DAY, user=user)
    Event.objects.create(name=events.SIGNUP_STARTED, distinct_id="browser-1", occurred_at=DAY)

    marks = list(
        FunnelChange.objects.order_by("id").values_list("user_id", "organization_id", "distinct_id")
    )
    # Person events mark the person, organization events the organization, visits to the
    # signup page the browser (the migration's trigger names the same events as FUNNEL_STEPS).
    assert marks == [(user.pk, None, "")] * len(PERSON_EVENTS) + [
        (None, organization.pk, "")
    ] * len(ORGANIZATION_EVENTS) + [(None, None, str(user.public_id)), (None, None, "browser-1")]


def test_events_outside_the_funnel_and_forwarding_leave_no_mark_a_moved_event_does():
    user, organization = UserFactory(), OrganizationFactory()
    signup = event(events.SIGNED_UP, DAY, user=user)
    FunnelChange.objects.all().delete()

    event(events.SEAT_LIMIT_REACHED, DAY, user=user, organization=organization)
    event(events.INVITEE_JOINED, DAY, user=user, organization=organization)
    # What a forward run writes: every event, but nothing the funnel reads.
    Event.objects.update(sent_at=DAY, attempts=1, claimed_until=DAY)
    assert FunnelChange.objects.count() == 0

    Event.objects.filter(pk=signup.pk).update(occurred_at=DAY - timedelta(days=1))
    assert list(FunnelChange.objects.values_list("user_id", "organization_id")) == [(user.pk, None)]


def test_the_rows_hold_each_first_step_in_order_and_the_organization_created_first():
    ada = UserFactory()
    first, second = OrganizationFactory(), OrganizationFactory()
    event(
        events.EMAIL_VERIFIED, DAY - timedelta(hours=1), user=ada
    )  # before signing up: not a step
    event(events.SIGNED_UP, DAY, user=ada)
    event(events.EMAIL_VERIFIED, DAY + timedelta(minutes=2), user=ada)
    event(events.EMAIL_VERIFIED, DAY + timedelta(minutes=1), user=ada)
    event(events.ORGANIZATION_CREATED, DAY + timedelta(minutes=9), user=ada, organization=second)
    event(events.ORGANIZATION_CREATED, DAY + timedelta(minutes=5), user=ada, organization=first)
    # The second organization's trial is earlier, but steps 4-8 are the first organization's.
    event(events.TRIAL_STARTED, DAY + timedelta(minutes=6), organization=second)
    event(events.SUBSCRIPTION_STARTED, DAY + timedelta(minutes=8), organization=first)
    event(events.TRIAL_STARTED, DAY + timedelta(minutes=7), organization=first)
    # Ready before the product started: the next readiness after it counts.
    event(events.ENVIRONMENT_ACTIVE, DAY + timedelta(minutes=6), organization=first)
    event(events.ENVIRONMENT_ACTIVE, DAY + timedelta(minutes=20), organization=first)
    # A colleague joined by domain before anyone was invited: not step 7 (no invite yet).
    event(events.JOINED_BY_DOMAIN, DAY + timedelta(minutes=21), organization=first)

    assert funnel_progress_refresh() == 1
    row = FunnelProgress.objects.get(user_id=ada.pk)
    assert row.organization_id == first.pk
    assert (row.signed_up_at, row.email_verified_at, row.organization_created_at) == (
        DAY,
        DAY + timedelta(minutes=1),
        DAY + timedelta(minutes=5),
    )
    assert (row.product_started_at, row.workspace_ready_at) == (
        DAY + timedelta(minutes=7),
        DAY + timedelta(minutes=20),
    )
    assert (row.invite_sent_at, row.colleague_joined_at, row.paid_at) == (None, None, None)
    assert FunnelChange.objects.count() == 0
    assert funnel_progress_refresh() == 0


def test_a_late_event_stamped_earlier_moves_the_steps_after_a_report():
    """Out of order: the funnel is read, then events arrive that happened before ones already
    counted; the next report counts them where they belong."""
    ada = UserFactory()
    organization = OrganizationFactory()
    event(events.SIGNED_UP, DAY, user=ada)
    event(events.EMAIL_VERIFIED, DAY + timedelta(seconds=300), user=ada)
    event(
        events.ORGANIZATION_CREATED,
        DAY + timedelta(seconds=400),
        user=ada,
        organization=organization,
    )
    event(events.ENVIRONMENT_ACTIVE, DAY + timedelta(seconds=500), organization=organization)
    since, until = DAY - timedelta(days=1), DAY + timedelta(days=1)

    before = funnel_report(since=since, until=until)
    assert counts(before) == {
        "signed_up": 1,
        "email_verified": 1,
        "organization_created": 1,
        "product_started": 0,  # the workspace came first, no product yet
        "workspace_ready": 0,
        "invite_sent": 0,
        "colleague_joined": 0,
        "paid": 0,
    }
    assert before.steps[1].from_previous.median_seconds == 300.0

    # Arriving now, stamped earlier: a verification at 60 s, the trial at 450 s.
    event(events.EMAIL_VERIFIED, DAY + timedelta(seconds=60), user=ada)
    event(events.TRIAL_STARTED, DAY + timedelta(seconds=450), organization=organization)
    after = funnel_report(since=since, until=until)

    assert counts(after)["workspace_ready"] == 1
    durations = [
        step.from_previous.median_seconds if step.from_previous else None
        for step in after.steps[:5]
    ]
    # 60 s to verify, 340 s to the organization, 50 s to the trial, 50 s to the workspace.
    assert durations == [None, 60.0, 340.0, 50.0, 50.0]
    assert after.time_to_value.median_seconds == 440.0
    assert figures(after) == figures(funnel_report_from_events(since=since, until=until))


def test_invited_people_deleted_people_and_deleted_organizations_leave_the_funnel():
    ada, invited, gone = UserFactory(), UserFactory(), UserFactory()
    organization = OrganizationFactory()
    event(events.SIGNED_UP, DAY, user=ada)
    event(events.EMAIL_VERIFIED, DAY, user=ada)
    event(events.ORGANIZATION_CREATED, DAY, user=ada, organization=organization)
    event(events.TRIAL_STARTED, DAY, organization=organization)
    event(events.SIGNED_UP, DAY, user=invited, via_invite=True)
    event(events.SIGNED_UP, DAY, user=gone)
    since, until = DAY, DAY + timedelta(days=1)
    assert counts(funnel_report(since=since, until=until))["signed_up"] == 2
    assert not FunnelProgress.objects.filter(user_id=invited.pk).exists()

    gone.delete()
    organization.delete()  # its events go with it, its creation too
    report = funnel_report(since=since, until=until)

    assert [step.count for step in report.steps][:4] == [1, 1, 0, 0]
    assert FunnelProgress.objects.get(user_id=ada.pk).organization_id is None
    assert figures(report) == figures(funnel_report_from_events(since=since, until=until))


def test_a_refresh_in_small_batches_and_a_rebuild_give_the_same_rows():
    for index in range(7):
        person, organization = UserFactory(), OrganizationFactory()
        event(events.SIGNED_UP, DAY + timedelta(minutes=index), user=person)
        event(events.EMAIL_VERIFIED, DAY + timedelta(minutes=index + 1), user=person)
        event(
            events.ORGANIZATION_CREATED,
            DAY + timedelta(minutes=index + 2),
            user=person,
            organization=organization,
        )
        event(events.TRIAL_STARTED, DAY + timedelta(minutes=index + 3), organization=organization)
    # 28 marks, 3 per batch: a person marked in two batches is computed twice.
    assert funnel_progress_refresh(batch=3) >= 7
    assert FunnelProgress.objects.count() == 7 and not FunnelChange.objects.exists()

    def rows():
        return list(FunnelProgress.objects.order_by("user_id").values_list())

    refreshed = rows()
    FunnelProgress.objects.all().delete()
    assert funnel_progress_rebuild() == 7
    assert rows() == refreshed


# A person signs up once (accounts.services records signed_up once per user); everything else
# may repeat, come early or late.
def test_visitors_are_browsers_counted_once_in_the_period_whatever_order_their_visits_came():
    """A browser counts once in a period however many times it opened the signup page in it,
    including when a visit arrives after a later one was counted."""

    def visit(browser: str, at: datetime) -> None:
        Event.objects.create(name=events.SIGNUP_STARTED, distinct_id=browser, occurred_at=at)

    since, until = DAY, DAY + timedelta(days=1)
    visit("a", DAY + timedelta(hours=1))
    visit("a", DAY + timedelta(hours=2))  # again: once
    visit("b", DAY - timedelta(hours=1))  # before the period, and in it: once
    visit("b", DAY + timedelta(hours=3))
    visit("c", DAY - timedelta(hours=1))  # only before
    visit("d", until)  # at the end (excluded)
    assert funnel_report(since=since, until=until).signup_page_visitors == 2

    visit("c", DAY + timedelta(hours=5))
    visit("a", DAY)  # late, and earlier than a's other visits: still once
    visit("e", DAY + timedelta(hours=4))
    Event.objects.create(
        name=events.SIGNUP_STARTED, distinct_id="e", occurred_at=DAY + timedelta(hours=4)
    )
    report = funnel_report(since=since, until=until)

    assert report.signup_page_visitors == 4  # a, b, c, e
    assert (
        report.signup_page_visitors
        == funnel_report_from_events(since=since, until=until).signup_page_visitors
    )
    Event.objects.filter(distinct_id="e").delete()
    assert funnel_report(since=since, until=until).signup_page_visitors == 3


NAMES = [
    events.EMAIL_VERIFIED,
    events.ORGANIZATION_CREATED,
    events.TRIAL_STARTED,
    events.SUBSCRIPTION_STARTED,
    events.ENVIRONMENT_ACTIVE,
    events.INVITE_SENT,
    events.INVITE_ACCEPTED,
    events.JOINED_BY_DOMAIN,
    events.SUBSCRIPTION_PAID,
]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_journeys_in_random_order_answer_as_walking_the_events(seed):
    """Forty people whose journeys skip, repeat and go back in time, their events inserted in a
    shuffled order, some in one statement; every window answers as the events' walk does."""
    rng = random.Random(seed)
    people = [UserFactory() for _ in range(40)]
    organizations = [OrganizationFactory() for _ in range(30)]
    pending: list[Event] = []
    for person in people:
        start = DAY + timedelta(minutes=rng.randrange(0, 4 * 24 * 60))
        owned = rng.sample(organizations, k=rng.choice([0, 1, 1, 2]))
        for _ in range(rng.randrange(1, 12)):
            name = rng.choice(NAMES)
            at = start + timedelta(seconds=rng.randrange(-3600, 3 * 24 * 3600))
            if name in PERSON_EVENTS:
                organization = (
                    rng.choice(owned) if owned and name == events.ORGANIZATION_CREATED else None
                )
                pending.append(
                    Event(
                        name=name,
                        user=person,
                        organization=organization,
                        distinct_id="x",
                        occurred_at=at,
                    )
                )
            elif owned:
                pending.append(
                    Event(
                        name=name, organization=rng.choice(owned), distinct_id="x", occurred_at=at
                    )
                )
        if rng.random() < 0.9:  # some never signed up; some came through an invite
            properties = {"via_invite": True} if rng.random() < 0.15 else {"anonymous_id": ""}
            pending.append(
                Event(
                    name=events.SIGNED_UP,
                    user=person,
                    distinct_id="x",
                    occurred_at=start,
                    properties=properties,
                )
            )
        pending.append(
            Event(
                name=events.SIGNUP_STARTED,
                distinct_id=f"browser-{rng.randrange(30)}",
                occurred_at=start,
            )
        )
    rng.shuffle(pending)
    half = len(pending) // 2
    Event.objects.bulk_create(pending[:half])  # one statement
    for item in pending[half:]:
        item.save(force_insert=True)
    windows = [
        (DAY, DAY + timedelta(days=5)),
        (DAY + timedelta(days=1), DAY + timedelta(days=2)),
        (DAY + timedelta(hours=30), DAY + timedelta(hours=31)),
        (DAY - timedelta(days=1), DAY + timedelta(days=30)),
        # Partial days at both ends, and people with steps after the end.
        (DAY + timedelta(hours=5), DAY + timedelta(days=3, hours=7)),
        (DAY - timedelta(hours=2), DAY + timedelta(days=2, minutes=1)),
        (DAY + timedelta(hours=23, minutes=59), DAY + timedelta(days=2, hours=0, minutes=1)),
    ]
    for since, until in windows:
        assert figures(funnel_report(since=since, until=until)) == figures(
            funnel_report_from_events(since=since, until=until)
        ), (since, until)
    assert connection.vendor == "postgresql"
    assert FunnelProgress.objects.exists()

    # The day counts kept along the way equal those of a rebuild from scratch.
    def day_counts():
        return sorted(
            FunnelDay.objects.exclude(people=0).values_list("day", "step", "bucket", "people")
        )

    kept = day_counts()
    for model in (FunnelDay, FunnelProgress, FunnelVisit):
        model.objects.all().delete()
    funnel_progress_rebuild()
    assert day_counts() == kept


@pytest.mark.django_db(transaction=True)
def test_an_event_another_transaction_has_not_committed_counts_once_it_commits():
    """The report never waits for a writer: an event still in another transaction is not
    counted, and its mark, committed with it, makes the next report count it."""
    import threading

    from django.db import connections, transaction

    ada = UserFactory()
    event(events.SIGNED_UP, DAY, user=ada)
    since, until = DAY, DAY + timedelta(days=1)
    assert counts(funnel_report(since=since, until=until))["email_verified"] == 0
    recorded, release = threading.Event(), threading.Event()

    def writer() -> None:
        try:
            with transaction.atomic():
                event(events.EMAIL_VERIFIED, DAY + timedelta(minutes=1), user=ada)
                recorded.set()
                release.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=writer)
    thread.start()
    assert recorded.wait(10)
    during = counts(funnel_report(since=since, until=until))["email_verified"]
    release.set()
    thread.join(10)

    assert during == 0
    assert counts(funnel_report(since=since, until=until))["email_verified"] == 1
    assert FunnelChange.objects.count() == 0


def test_more_changes_than_a_request_should_compute_are_left_to_the_beat_and_said(monkeypatch, client):
    """After the migration marks every person ever, the first count takes minutes: a request
    leaves it to the beat and the page says how many are not counted yet."""
    monkeypatch.setattr("experiments.selectors.INLINE_REFRESH_MAX", 2)
    people = [UserFactory() for _ in range(3)]
    for person in people:
        event(events.SIGNED_UP, DAY, user=person)
    since, until = DAY - timedelta(days=1), DAY + timedelta(days=1)

    waiting = funnel_report(since=since, until=until)
    assert waiting.catching_up == 3 and counts(waiting)["signed_up"] == 0
    assert FunnelChange.objects.count() == 3  # nothing computed in the request

    staff = UserFactory(is_staff=True)
    client.force_login(staff)
    page = client.get("/staff/funnel/").content.decode()
    assert "The funnel is catching up: the events of more than 2 people and browsers are not counted yet" in page

    funnel_progress_refresh()  # the beat
    caught_up = funnel_report(since=since, until=until)
    assert caught_up.catching_up == 0 and counts(caught_up)["signed_up"] == 3
    assert figures(caught_up) == figures(funnel_report_from_events(since=since, until=until))
