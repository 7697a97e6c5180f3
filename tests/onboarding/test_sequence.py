"""A whole 14-day sequence, by time travel: timing, skips, exits, quiet hours, exactly once."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from accounts.models import Membership
from experiments import events as analytics
from experiments.models import Event
from experiments.services import event_record
from onboarding import events
from onboarding.models import Enrolment, MarketingSend, Send
from onboarding.services.enrolments import enrolment_create
from onboarding.services.sending import send_deliver, sends_deliver
from onboarding.services.suppression import marketing_email_claim, unsubscribe, unsubscribe_token
from onboarding.services.tick import onboarding_tick

from ..conftest import organization_on
from ..factories import InviteFactory, UserFactory
from .factories import fourteen_day_sequence

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday; US daylight saving starts 8 March


def day(days: float, hour: int = 10) -> datetime:
    return START.replace(hour=hour) + timedelta(days=days)


def newcomer(email: str, *, time_zone: str = ""):
    organization, admin = organization_on("standard")
    admin.email = email
    admin.time_zone = time_zone
    admin.save(update_fields=["email", "time_zone"])
    return admin, organization


def run_clock(traveller, *, hours: int, actions: dict[datetime, callable] | None = None) -> Counter:
    """Hour by hour: act, tick, and deliver what the tick enqueued, as one chunk (as the worker
    would)."""
    outcomes = Counter()
    for hour in range(hours + 1):
        now = START + timedelta(hours=hour)
        traveller.move_to(now)
        for at, action in (actions or {}).items():
            if at == now:
                action()
        report = onboarding_tick()
        outcomes.update(sends_deliver(send_ids=report.send_ids))
    return outcomes


def mails_to(address: str) -> list:
    """Messages sent in this process (pytest-django's in-memory outbox) to `address`."""
    from django.core import mail

    return [message for message in mail.outbox if address in message.to]


def sent_steps(user) -> list[tuple[str, datetime]]:
    return [
        (send.step.name, send.sent_at)
        for send in Send.objects.filter(enrolment__user=user, status=Send.Status.SENT)
        .select_related("step")
        .order_by("step__position")
    ]


@pytest.mark.django_db
def test_fourteen_days_of_onboarding_for_five_people(catalog, settings):
    settings.ONBOARDING_DEFAULT_SEQUENCE = "trial-welcome"
    settings.ONBOARDING_EXPERIMENT_KEY = "no-such-experiment"
    fourteen_day_sequence("trial-welcome")

    with time_machine.travel(START, tick=False) as traveller:
        ada, _ = newcomer("ada-seq@example.com")  # UTC, does nothing special
        bert, bert_organization = newcomer("bert-seq@example.com")  # invites a colleague
        cleo, _ = newcomer("cleo-seq@example.com", time_zone="America/Los_Angeles")
        dan, dan_organization = newcomer("dan-seq@example.com")  # pays on day 5
        eve, _ = newcomer("eve-seq@example.com")  # unsubscribes on day 2
        people = [ada, bert, cleo, dan, eve]
        organizations = {user.pk: Membership.objects.get(user=user).organization for user in people}
        for user in people:
            assert enrolment_create(user=user, organization=organizations[user.pk]) is not None

        def invite():
            InviteFactory(organization=bert_organization, email="colleague@bert.example", invited_by=bert)

        def pay():
            event_record(name=analytics.SUBSCRIPTION_PAID, organization=dan_organization, properties={"amount_minor": 12000})

        def leave():
            unsubscribe(token=unsubscribe_token(eve.email))

        outcomes = run_clock(
            traveller,
            hours=15 * 24,
            actions={day(0, 15): invite, day(5): pay, day(2): leave},
        )

    names = ["welcome", "invite", "tips", "case-study", "trial-ending"]
    # Ada: every step at its time (the case study 4 days after the tips went out).
    assert sent_steps(ada) == list(zip(names, [day(0), day(1), day(3), day(7), day(13)], strict=True))
    # Bert invited a colleague: the invite step is skipped, the rest on time.
    assert [name for name, _ in sent_steps(bert)] == ["welcome", "tips", "case-study", "trial-ending"]
    assert Send.objects.get(enrolment__user=bert, step__name="invite").status == Send.Status.SKIPPED
    # Cleo lives in Los Angeles: 10:00 UTC is 02:00 or 03:00 there, so each step waits for
    # 08:00 local, before and after daylight saving time started on 8 March.
    cleo_times = [sent_at for _, sent_at in sent_steps(cleo)]
    assert cleo_times == [day(0, 16), day(1, 16), day(3, 16), day(7, 16), day(13, 15)]
    assert all(8 <= moment.astimezone(ZoneInfo("America/Los_Angeles")).hour < 21 for moment in cleo_times)
    # Dan paid on day 5: he exits as converted before the case study.
    assert [name for name, _ in sent_steps(dan)] == ["welcome", "invite", "tips"]
    dan_enrolment = Enrolment.objects.get(user=dan)
    assert (dan_enrolment.status, dan_enrolment.exit_reason) == ("exited", "converted")
    assert dan_enrolment.converted_at == day(7)
    # Eve unsubscribed on day 2: nothing after the invite step.
    assert [name for name, _ in sent_steps(eve)] == ["welcome", "invite"]
    assert Enrolment.objects.get(user=eve).exit_reason == "unsubscribed"

    # The mailbox agrees with the send rows, and every one of them went out once.
    for user, count in [(ada, 5), (bert, 4), (cleo, 5), (dan, 3), (eve, 2)]:
        assert len(mails_to(user.email)) == count, user.email
    assert outcomes["sent"] == 19 and outcomes["skipped"] == 1 and outcomes["converted"] == 1
    assert Event.objects.filter(name=events.ONBOARDING_EMAIL_SENT).count() == 19
    assert Event.objects.filter(name=events.ONBOARDING_EMAIL_SKIPPED).count() == 1
    assert Enrolment.objects.filter(status=Enrolment.Status.COMPLETED).count() == 3

    # A retried task (every one of them, again) sends nothing, and a late tick finds nothing due.
    with time_machine.travel(day(16), tick=False):
        again = [send_deliver(send_id=send_id) for send_id in Send.objects.values_list("id", flat=True)]
        assert set(again) == {"done"}
        assert onboarding_tick().enqueued == 0
    for user, count in [(ada, 5), (bert, 4), (cleo, 5), (dan, 3), (eve, 2)]:
        assert len(mails_to(user.email)) == count


@pytest.mark.django_db
def test_a_task_delivered_twice_or_while_sending_sends_once(catalog, settings):
    settings.ONBOARDING_DEFAULT_SEQUENCE = "retry-seq"
    settings.ONBOARDING_EXPERIMENT_KEY = "no-such-experiment"
    fourteen_day_sequence("retry-seq")
    with time_machine.travel(START, tick=False):
        user, organization = newcomer("retry-twice@example.com")
        enrolment_create(user=user, organization=organization)
        report = onboarding_tick()
        assert report.enqueued == 1
        [send_id] = report.send_ids
        # The worker died mid-send: the row is claimed; a redelivered task must not send.
        Send.objects.filter(pk=send_id).update(status=Send.Status.SENDING, claimed_at=START)
        assert send_deliver(send_id=send_id) == "done"
        assert mails_to(user.email) == []
        Send.objects.filter(pk=send_id).update(status=Send.Status.PENDING, claimed_at=None)
        assert send_deliver(send_id=send_id) == "sent"
        assert send_deliver(send_id=send_id) == "done"
    assert len(mails_to(user.email)) == 1


@pytest.mark.django_db
def test_a_failed_smtp_call_is_tried_again_later_and_sent_once(catalog, settings):
    settings.ONBOARDING_DEFAULT_SEQUENCE = "smtp-down"
    settings.ONBOARDING_EXPERIMENT_KEY = "no-such-experiment"
    fourteen_day_sequence("smtp-down")
    with time_machine.travel(START, tick=False) as traveller:
        user, organization = newcomer("smtp-down@example.com")
        enrolment_create(user=user, organization=organization)
        [send_id] = onboarding_tick().send_ids
        # Nothing listens on port 9 of loopback: a real connection refusal.
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, False, 2
        assert send_deliver(send_id=send_id) == "failed"
        send = Send.objects.get(pk=send_id)
        assert send.status == Send.Status.PENDING and "Connection" in send.last_error
        assert MarketingSend.objects.filter(email=user.email).count() == 0  # the cap slot given back
        assert Enrolment.objects.get(user=user).next_send_at == START + timedelta(minutes=10)
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        traveller.move_to(START + timedelta(minutes=5))
        assert onboarding_tick().enqueued == 0
        traveller.move_to(START + timedelta(minutes=10))
        assert onboarding_tick().send_ids == [send_id]
        assert send_deliver(send_id=send_id) == "sent"
    assert len(mails_to(user.email)) == 1


@pytest.mark.django_db
def test_the_frequency_cap_is_shared_with_other_marketing_email(catalog, settings):
    settings.ONBOARDING_DEFAULT_SEQUENCE = "capped"
    settings.ONBOARDING_EXPERIMENT_KEY = "no-such-experiment"
    fourteen_day_sequence("capped")
    with time_machine.travel(START - timedelta(hours=2), tick=False) as traveller:
        user, organization = newcomer("capped@example.com")
        # Another app (a newsletter) sent this address a marketing email two hours ago.
        assert marketing_email_claim(email="Capped@Example.com", source="newsletter").allowed
        traveller.move_to(START)
        enrolment_create(user=user, organization=organization)
        [send_id] = onboarding_tick().send_ids
        assert send_deliver(send_id=send_id) == "capped"
        # The slot frees 20 hours after the newsletter, at 04:00: quiet hours, so 08:00.
        assert Enrolment.objects.get(user=user).next_send_at == day(1, 8)
        traveller.move_to(day(1, 7))
        assert onboarding_tick().enqueued == 0
        traveller.move_to(day(1, 8))
        assert onboarding_tick().send_ids == [send_id]
        assert send_deliver(send_id=send_id) == "sent"
        assert not marketing_email_claim(email=user.email, source="newsletter").allowed
    assert len(mails_to(user.email)) == 1


@pytest.mark.django_db
def test_a_holdout_enrolment_never_gets_email(catalog, settings):
    from ..experiments.factories import experiment_with

    settings.ONBOARDING_EXPERIMENT_KEY = "holdout-only"
    fourteen_day_sequence("held")
    experiment = experiment_with(("holdout", 1.0), ("sequence", 0.0), key="holdout-only")
    experiment.variations.filter(key="holdout").update(holdout=True, value=None)
    experiment.variations.filter(key="sequence").update(value="held")
    with time_machine.travel(START, tick=False):
        user = UserFactory(email="held-out@example.com")
        enrolment = enrolment_create(user=user)
        assert (enrolment.status, enrolment.variation_key, enrolment.sequence) == ("holdout", "holdout", None)
        assert onboarding_tick().enqueued == 0
    assert Event.objects.get(name=events.ONBOARDING_ENROLLED, user=user).properties["holdout"] is True


@pytest.mark.django_db
@pytest.mark.parametrize("deleted", ["invite", "welcome", "trial-ending"])
def test_a_step_deleted_while_people_wait_for_it_is_stepped_over(catalog, settings, deleted):
    """Staff delete a step nobody has been sent yet: those waiting for it move on to the step
    after it (or complete), instead of staying enrolled with no next send time."""
    settings.ONBOARDING_DEFAULT_SEQUENCE = "pruned"
    settings.ONBOARDING_EXPERIMENT_KEY = "no-such-experiment"
    settings.ONBOARDING_QUIET_HOURS_START = settings.ONBOARDING_QUIET_HOURS_END = 0
    sequence = fourteen_day_sequence("pruned")
    if deleted == "trial-ending":  # the last step: the rest are gone too, but not sent
        sequence.steps.filter(position__in=[1, 2, 3]).delete()
    with time_machine.travel(START, tick=False) as traveller:
        user, organization = newcomer(f"pruned-{deleted}@example.com")
        enrolment = enrolment_create(user=user, organization=organization)
        if deleted != "welcome":
            sends_deliver(send_ids=onboarding_tick().send_ids)  # day 0: the welcome goes out
        sequence.steps.get(name=deleted).delete()
        for days in range(1, 21):  # a tick a day for three weeks
            traveller.move_to(day(days))
            for _ in range(2):  # a replanned enrolment may be due at once
                sends_deliver(send_ids=onboarding_tick().send_ids)
        enrolment.refresh_from_db()
        sent = [send.step.name for send in Send.objects.filter(enrolment=enrolment).order_by("id")]

    if deleted == "trial-ending":
        assert sent == ["welcome"] and enrolment.status == Enrolment.Status.COMPLETED
    else:
        expected = {"invite": ["welcome", "tips", "case-study", "trial-ending"], "welcome": ["invite", "tips", "case-study", "trial-ending"]}
        assert sent == expected[deleted]
        assert enrolment.status == Enrolment.Status.COMPLETED
    assert enrolment.next_send_at is None
