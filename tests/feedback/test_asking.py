"""Whether to ask: tenure, the windows after a response, a dismissal or an unanswered ask,
sampling, the daily cap per organization, and no double ask under concurrent requests."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from experiments.models import Event
from feedback import events, services
from feedback.models import DailyAskCount, Survey

from ..conftest import organization_on
from .helpers import age, answer, member


@pytest.fixture
def organization(trial_organization):
    return trial_organization[0]


def _decide(membership):
    return services.survey_decide(membership=membership, product_code="tracker")


def test_a_new_member_is_first_asked_after_the_minimum_tenure(organization, settings):
    settings.FEEDBACK_MIN_TENURE_DAYS = 14
    membership = member(organization, joined_days_ago=0)
    first = _decide(membership)
    assert (first.ask, first.reason) == (False, "tenure")
    assert not Survey.objects.filter(user=membership.user).exists()

    with time_machine.travel(timezone.now() + timedelta(days=13, hours=23), tick=False):
        assert _decide(membership).reason == "tenure"
    with time_machine.travel(timezone.now() + timedelta(days=14, minutes=1), tick=False):
        decision = _decide(membership)
    assert decision.ask and decision.survey is not None
    assert decision.question == "How likely are you to recommend Tracker to a friend or colleague?"
    assert Event.objects.filter(name=events.FEEDBACK_SURVEY_ASKED, user=membership.user).count() == 1


def test_not_asked_again_within_90_days_of_a_response(organization, settings):
    settings.FEEDBACK_AFTER_RESPONSE_DAYS = 90
    membership = member(organization)
    answer(membership, score=8)
    start = timezone.now()
    with time_machine.travel(start + timedelta(days=89), tick=False):
        assert _decide(membership).reason == "responded_recently"
    with time_machine.travel(start + timedelta(days=90, minutes=1), tick=False):
        assert _decide(membership).ask


def test_not_asked_again_within_30_days_of_a_dismissal(organization, settings):
    settings.FEEDBACK_AFTER_DISMISSAL_DAYS = 30
    membership = member(organization)
    decision = _decide(membership)
    services.survey_dismiss(membership=membership, survey_public_id=decision.survey.public_id)
    assert Survey.objects.get(pk=decision.survey.pk).status == Survey.Status.DISMISSED
    start = timezone.now()
    with time_machine.travel(start + timedelta(days=29, hours=23), tick=False):
        assert _decide(membership).reason == "dismissed_recently"
    with time_machine.travel(start + timedelta(days=30, minutes=1), tick=False):
        assert _decide(membership).ask


def test_an_unanswered_ask_is_not_repeated_for_a_week(organization, settings):
    settings.FEEDBACK_UNANSWERED_DAYS = 7
    membership = member(organization)
    assert _decide(membership).ask
    assert _decide(membership).reason == "asked_recently"
    with time_machine.travel(timezone.now() + timedelta(days=7, minutes=1), tick=False):
        assert _decide(membership).ask
    assert Survey.objects.filter(user=membership.user).count() == 2


def test_sampling_is_deterministic_per_user_and_period(organization, settings):
    settings.FEEDBACK_SAMPLING_RATE = 0.3
    settings.FEEDBACK_SAMPLING_PERIOD_DAYS = 30
    memberships = [member(organization) for _ in range(60)]
    now = timezone.now()
    drawn = [services.sampled(user=m.user, moment=now) for m in memberships]
    # Retries within the period answer the same.
    assert drawn == [services.sampled(user=m.user, moment=now + timedelta(seconds=5)) for m in memberships]
    assert 5 <= sum(drawn) <= 35  # about 30% of 60
    # A user out of the sample is told so, and nothing is recorded.
    outside = next(m for m, chosen in zip(memberships, drawn, strict=True) if not chosen)
    assert _decide(outside).reason == "not_sampled"
    assert not Survey.objects.filter(user=outside.user).exists()
    # Another period draws again: over enough periods, everyone gets a chance. (48 periods:
    # a user left out of all of them at 30% has odds 0.7^48, about 4e-8; 12 periods would fail
    # this for one of 10 random users about one run in eight.)
    periods = [now + timedelta(days=30 * k) for k in range(48)]
    assert all(any(services.sampled(user=m.user, moment=when) for when in periods) for m in memberships[:10])
    settings.FEEDBACK_SAMPLING_RATE = 0.0
    assert not services.sampled(user=memberships[0].user, moment=now)


def test_the_daily_cap_per_organization(organization, settings, catalog):
    settings.FEEDBACK_DAILY_CAP_PER_ORGANIZATION = 3
    memberships = [member(organization) for _ in range(5)]
    decisions = [_decide(m) for m in memberships]
    assert [d.ask for d in decisions] == [True, True, True, False, False]
    assert decisions[3].reason == "daily_cap"
    assert DailyAskCount.objects.get(organization=organization).asks == 3
    # Another organization has its own cap.
    other, _ = organization_on("standard")
    assert _decide(member(other)).ask
    # The next UTC day, the capped members are asked.
    tomorrow = timezone.now().replace(hour=0, minute=5) + timedelta(days=1)
    with time_machine.travel(tomorrow, tick=False):
        assert _decide(memberships[3]).ask
        assert _decide(memberships[4]).ask


def test_an_unknown_product_is_refused(organization):
    membership = member(organization)
    with pytest.raises(services.NotFound):
        services.survey_decide(membership=membership, product_code="nope")


def _concurrently(count, target):
    barrier = threading.Barrier(count)
    results, errors = [], []

    def run():
        try:
            barrier.wait(5)
            results.append(target())
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_never_ask_one_user_twice(catalog, settings):
    settings.FEEDBACK_DAILY_CAP_PER_ORGANIZATION = 0
    organization, _ = organization_on("standard")
    membership = age(member(organization), days=60)
    decisions = _concurrently(8, lambda: _decide(membership))
    assert sum(decision.ask for decision in decisions) == 1
    assert {d.reason for d in decisions if not d.ask} == {"asked_recently"}
    assert Survey.objects.filter(user=membership.user).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_never_exceed_the_daily_cap(catalog, settings):
    settings.FEEDBACK_DAILY_CAP_PER_ORGANIZATION = 3
    organization, _ = organization_on("standard")
    memberships = [member(organization) for _ in range(8)]
    lock = threading.Lock()
    queue = list(memberships)

    def next_member():
        with lock:
            membership = queue.pop()
        return _decide(membership)

    decisions = _concurrently(8, next_member)
    assert sum(decision.ask for decision in decisions) == 3
    assert Survey.objects.filter(organization=organization).count() == 3
    assert DailyAskCount.objects.get(organization=organization).asks == 3
