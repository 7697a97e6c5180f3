"""Training packs' clock, through lifecycle_tick with time travel: reminders to admins 30 and 7
days before a pack with credits left expires (once each), then expiry. And concurrent
assignments, which never spend more credits than the packs hold."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection

from accounts.models import Membership
from billing.exceptions import TrainingRefused
from billing.models import TrainingAssignment, TrainingPack
from billing.services.training import training_assign, training_balance
from catalog.models import AddOn, Course
from experiments.models import Event

from ...conftest import organization_on
from ..helpers import tick_at

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_tasks")]

START = datetime(2026, 3, 2, 10, tzinfo=UTC)


def _pack(organization, *, credits=10, days=365, **fields):
    return TrainingPack.objects.create(
        organization=organization,
        addon=AddOn.objects.get(product__code="tracker", code="training"),
        credits=credits,
        granted_at=START,
        expires_at=START + timedelta(days=days),
        **fields,
    )


def _training_mails():
    return [message for message in mail.outbox if "training" in message.subject]


def test_reminders_at_30_and_7_days_then_expiry(catalog):
    with time_machine.travel(START, tick=False):
        organization, admin = organization_on("standard", members=2)
    pack = _pack(organization, credits=10)
    spent = _pack(organization, credits=1, days=365)
    TrainingPack.objects.filter(pk=spent.pk).update(credits_used=1)  # nothing left: no reminder
    end = pack.expires_at

    assert tick_at(end - timedelta(days=31)).training_reminders == 0
    assert tick_at(end - timedelta(days=29, hours=12)).training_reminders == 1
    assert tick_at(end - timedelta(days=29)).training_reminders == 0  # not twice
    assert tick_at(end - timedelta(days=6, hours=12)).training_reminders == 1
    assert tick_at(end - timedelta(days=6)).training_reminders == 0
    pack.refresh_from_db()
    assert pack.expiry_reminders_sent == [30, 7] and pack.expired_at is None

    subjects = [message.subject for message in _training_mails()]
    assert subjects == [
        "[Flywheel] 10 credits of Tracker training expire in 30 days",
        "[Flywheel] 10 credits of Tracker training expire in 7 days",
    ]
    reminder = _training_mails()[0]
    assert reminder.to == [admin.email]  # admins only, not the colleague
    assert reminder.body.startswith(
        f"Hello,\n\n{organization.name} has 10 credits of Tracker training left that expire on 2 Mar 2027. "
        "Credits not spent by then are lost.\n\nAssign colleagues to Tracker courses before then: "
    )
    assert "/billing/training/" in reminder.body

    report = tick_at(end + timedelta(minutes=15))
    assert report.training_expired == 2  # the spent pack expires too, losing nothing
    assert tick_at(end + timedelta(minutes=30)).training_expired == 0
    pack.refresh_from_db()
    assert pack.expired_at == end + timedelta(minutes=15) and pack.credits_left == 0
    lost = sorted(event.properties["credits_lost"] for event in Event.objects.filter(name="training_pack_expired"))
    assert lost == [0, 10]
    # The admins are told what was lost (once: the spent pack lost nothing, and says nothing).
    expired = [message for message in _training_mails() if "expired" in message.subject]
    assert [message.subject for message in expired] == ["[Flywheel] 10 credits of Tracker training expired"]
    assert expired[0].to == [admin.email]
    assert "10 credits of Tracker training that" in expired[0].body and "expired on 2 Mar 2027" in expired[0].body
    with time_machine.travel(end + timedelta(hours=1), tick=False):
        assert training_balance(organization=organization).credits_left == 0


def test_a_late_first_tick_sends_only_the_nearest_reminder(catalog):
    organization, _ = organization_on("standard")
    pack = _pack(organization, credits=3, days=60)
    assert tick_at(pack.expires_at - timedelta(days=5)).training_reminders == 1
    pack.refresh_from_db()
    assert pack.expiry_reminders_sent == [30, 7]
    assert [message.subject for message in _training_mails()] == ["[Flywheel] 3 credits of Tracker training expire in 7 days"]
    assert tick_at(pack.expires_at - timedelta(days=4)).training_reminders == 0


@time_machine.travel(START, tick=False)
def test_concurrent_assignments_never_overspend(catalog):
    organization, admin = organization_on("standard", members=6)
    colleagues = [m.user for m in organization.memberships.filter(role=Membership.Role.MEMBER).order_by("pk")]
    packs = [_pack(organization, credits=3, days=100), _pack(organization, credits=2, days=200)]
    course = Course.objects.get(product__code="tracker", code="admin-essentials")  # 2 credits: 5 pay for 2 people
    barrier = threading.Barrier(len(colleagues))
    outcomes: list[str] = []

    def assign(user):
        try:
            barrier.wait()
            training_assign(organization=organization, actor=admin, course=course, user=user)
            outcomes.append("assigned")
        except TrainingRefused as refused:
            outcomes.append(refused.message)
        finally:
            connection.close()

    threads = [threading.Thread(target=assign, args=(user,)) for user in colleagues]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes.count("assigned") == 2
    refusals = [outcome for outcome in outcomes if outcome != "assigned"]
    assert len(refusals) == 3
    assert all(f"{organization.name} has 1 credit of Tracker training left" in refusal for refusal in refusals)
    assert TrainingAssignment.objects.count() == 2
    assert [TrainingPack.objects.get(pk=pack.pk).credits_left for pack in packs] == [0, 1]
