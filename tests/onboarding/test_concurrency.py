"""Overlapping beat ticks and sends on real PostgreSQL connections: nothing is claimed twice."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from onboarding.models import Enrolment, Send
from onboarding.services.enrolments import enrolment_create
from onboarding.services.sending import sends_deliver
from onboarding.services.tick import onboarding_tick

from ..factories import UserFactory
from .factories import fourteen_day_sequence


@pytest.fixture
def twenty_due(transactional_db, settings):
    settings.ONBOARDING_DEFAULT_SEQUENCE = "overlap"
    settings.ONBOARDING_EXPERIMENT_KEY = "no-such-experiment"
    settings.ONBOARDING_QUIET_HOURS_START = settings.ONBOARDING_QUIET_HOURS_END = 0  # no quiet hours here
    fourteen_day_sequence("overlap")
    for index in range(20):
        enrolment_create(user=UserFactory(email=f"overlap-{index}@example.com"))
    Enrolment.objects.update(next_send_at=timezone.now() - timedelta(minutes=1))
    return list(Enrolment.objects.order_by("id").values_list("id", flat=True))


def test_a_tick_skips_rows_another_tick_holds_then_takes_them_next_time(twenty_due):
    held, free = twenty_due[:10], twenty_due[10:]
    locked, release, done = threading.Event(), threading.Event(), threading.Event()

    def other_tick_in_progress():
        try:
            with transaction.atomic():
                list(Enrolment.objects.select_for_update().filter(pk__in=held))
                locked.set()
                release.wait(20)
        finally:
            connection.close()
            done.set()

    thread = threading.Thread(target=other_tick_in_progress)
    thread.start()
    assert locked.wait(20)
    first = onboarding_tick()
    assert first.claimed == 10
    assert set(Send.objects.values_list("enrolment_id", flat=True)) == set(free)
    release.set()
    assert done.wait(20)
    thread.join()

    second = onboarding_tick()
    assert second.claimed == 10
    assert onboarding_tick().claimed == 0
    assert Send.objects.count() == 20
    assert sorted(first.send_ids + second.send_ids) == sorted(Send.objects.values_list("id", flat=True))


def test_two_ticks_and_two_workers_at_once_send_each_step_once(twenty_due, mailoutbox):
    barrier = threading.Barrier(2)
    reports, outcomes, errors = [], [], []

    def tick():
        try:
            barrier.wait(10)
            reports.append(onboarding_tick())
        except Exception as error:  # noqa: BLE001 - surfaced below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=tick) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert sum(report.claimed for report in reports) == 20
    send_ids = [send_id for report in reports for send_id in report.send_ids]
    assert len(send_ids) == len(set(send_ids)) == 20

    # Each chunk is handed to two workers at once (a redelivered task), in opposite orders:
    # every send goes out once, and the enrolment locks (taken in id order) never deadlock.
    def deliver(ids):
        try:
            barrier.wait(10)
            counts = sends_deliver(send_ids=ids)
            outcomes.extend(outcome for outcome, count in counts.items() for _ in range(count))
        except Exception as error:  # noqa: BLE001 - surfaced below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(ids,)) for ids in (send_ids, send_ids[::-1])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert outcomes.count("sent") == 20
    assert outcomes.count("done") == 20
    assert len(mailoutbox) == 20
    assert len({tuple(message.to) for message in mailoutbox}) == 20
