"""The due-tick: escalation once only (also under concurrent ticks), round robin under caps,
the queue when everyone is full, and the lead's flag when an assignment stays unanswered."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from community.models import Escalation, Question, SupportEngineer
from community.services.escalations import escalation_tick, escalations_due
from community.services.posts import answer_post
from community.services.votes import answer_accept
from experiments.models import Event

from ..conftest import body_text, mails_to, wait_for
from .conftest import ask, engineer, established, member

MONDAY_10 = datetime(2026, 3, 2, 10, tzinfo=UTC)


def _enterprise_questions(tracker, count):
    """Questions of the enterprise tier (4 calendar hours), asked now."""
    from ..conftest import organization_on

    organization, admin = organization_on("enterprise")
    established(admin)
    return [ask(admin, tracker, organization=organization, title=f"Question number {n} about boards") for n in range(count)]


@pytest.mark.django_db
def test_a_due_question_is_escalated_and_assigned_once(policies, tracker, django_capture_on_commit_callbacks):
    first = engineer(email="first@flywheel.example")
    with time_machine.travel(MONDAY_10, tick=False) as traveller:
        (question,) = _enterprise_questions(tracker, 1)
        assert escalation_tick().escalated == 0  # not due yet
        traveller.move_to(MONDAY_10 + timedelta(hours=4))
        with django_capture_on_commit_callbacks() as callbacks:
            report = escalation_tick()
        assert report.escalated == 1
        assert escalation_tick().escalated == 0  # a second tick finds nothing
    question.refresh_from_db()
    assert question.clock == Question.Clock.ESCALATED and question.deadline is None
    escalation = Escalation.objects.get(question=question)
    assert escalation.state == Escalation.State.ASSIGNED and escalation.engineer == first
    assert escalation.reminder_due_at == MONDAY_10 + timedelta(hours=5)  # enterprise: 1 hour
    first.refresh_from_db()
    assert first.open_assignments == 1
    assert Event.objects.filter(name="community_question_escalated").count() == 1
    assert len(callbacks) == 1  # the engineer's email, sent once the tick commits


@pytest.mark.django_db
def test_the_tick_reads_only_due_questions_through_the_deadline_index(policies, tracker):
    with time_machine.travel(MONDAY_10, tick=False):
        _enterprise_questions(tracker, 3)
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(
                "EXPLAIN SELECT id FROM community_question WHERE clock = 'running' AND deadline <= now() "
                "ORDER BY deadline LIMIT 25 FOR UPDATE SKIP LOCKED"
            )
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "question_due_idx" in plan
        with CaptureQueriesContext(connection) as queries:
            assert escalations_due(now=MONDAY_10, batch=25) == []
        assert len(queries) == 1


@pytest.mark.django_db
def test_round_robin_respects_caps_and_queues_the_rest(policies, tracker):
    a = engineer(cap=2, email="a@flywheel.example")
    b = engineer(cap=1, email="b@flywheel.example")
    engineer(cap=5, on_duty=False, email="off@flywheel.example")
    with time_machine.travel(MONDAY_10, tick=False) as traveller:
        questions = _enterprise_questions(tracker, 5)
        traveller.move_to(MONDAY_10 + timedelta(hours=5))
        report = escalation_tick()
    assert report.escalated == 5
    by_question = {e.question_id: e for e in Escalation.objects.select_related("engineer")}
    engineers = [by_question[q.pk].engineer_id for q in questions]
    # Round robin in deadline order: a, b, a; then both are at their caps and two wait.
    assert engineers == [a.pk, b.pk, a.pk, None, None]
    assert [by_question[q.pk].state for q in questions[3:]] == ["queued", "queued"]
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.open_assignments, b.open_assignments) == (2, 1)

    # b answers its question: the escalation is resolved, b has room and takes the oldest waiting.
    answer_post(question_id=questions[1].pk, author=b.user, body="Here is how to fix it: enable boards first.")
    with time_machine.travel(MONDAY_10 + timedelta(hours=5, minutes=1), tick=False):
        assert escalation_tick().assigned_from_queue == 1
    assert Escalation.objects.get(question=questions[1]).state == "resolved"
    assert Escalation.objects.get(question=questions[3]).engineer_id == b.pk
    assert Escalation.objects.get(question=questions[4]).state == "queued"


@pytest.mark.django_db
def test_the_lead_is_told_when_an_assignment_stays_unanswered(policies, tracker, django_capture_on_commit_callbacks):
    worker = engineer(email="worker@flywheel.example")
    engineer(is_lead=True, cap=0, email="lead@flywheel.example")
    with time_machine.travel(MONDAY_10, tick=False) as traveller:
        questions = _enterprise_questions(tracker, 2)
        traveller.move_to(MONDAY_10 + timedelta(hours=4))
        escalation_tick()
        # One is answered in time by its engineer; the other is not.
        answer_post(question_id=questions[0].pk, author=worker.user, body="Answered by support: enable boards first.")
        traveller.move_to(MONDAY_10 + timedelta(hours=4, minutes=59))
        assert escalation_tick().lead_flagged == 0
        traveller.move_to(MONDAY_10 + timedelta(hours=5))
        with django_capture_on_commit_callbacks() as callbacks:
            assert escalation_tick().lead_flagged == 1
        assert escalation_tick().lead_flagged == 0  # once
    flagged = Escalation.objects.get(question=questions[1])
    assert flagged.lead_flagged_at == MONDAY_10 + timedelta(hours=5)
    assert Escalation.objects.get(question=questions[0]).lead_flagged_at is None
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_acceptance_after_escalation_resolves_it_and_frees_the_engineer(policies, tracker):
    worker = engineer()
    helper = member()
    with time_machine.travel(MONDAY_10, tick=False) as traveller:
        (question,) = _enterprise_questions(tracker, 1)
        traveller.move_to(MONDAY_10 + timedelta(hours=6))
        escalation_tick()
        answer = answer_post(question_id=question.pk, author=helper, body="A community answer, after all, that works.")
        answer_accept(user=question.author, answer_id=answer.pk)
    assert Escalation.objects.get(question=question).state == "resolved"
    assert SupportEngineer.objects.get(pk=worker.pk).open_assignments == 0
    question.refresh_from_db()
    assert question.clock == Question.Clock.ESCALATED  # it was not solved before the deadline


@pytest.mark.django_db(transaction=True)
def test_concurrent_ticks_escalate_each_question_once(policies, tracker, settings):
    settings.COMMUNITY_TICK_BATCH = 3
    engineer(cap=100)
    with time_machine.travel(MONDAY_10, tick=False):
        _enterprise_questions(tracker, 12)
    due_at = MONDAY_10 + timedelta(hours=5)
    reports, errors = [], []
    start = threading.Barrier(4)

    def tick():
        try:
            start.wait()
            reports.append(escalation_tick(now=due_at))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert sum(report.escalated for report in reports) == 12
    assert Escalation.objects.count() == 12
    assert Event.objects.filter(name="community_question_escalated").count() == 12
    assert SupportEngineer.objects.get().open_assignments == 12
    # And once more, sequentially: nothing left.
    assert escalation_tick(now=due_at).escalated == 0


@pytest.mark.django_db(transaction=True)
def test_the_engineer_and_the_lead_are_emailed(celery_worker, policies, tracker):
    engineer(email="on-call@flywheel.example")
    engineer(is_lead=True, cap=0, email="lead@flywheel.example")
    with time_machine.travel(MONDAY_10, tick=False) as traveller:
        (question,) = _enterprise_questions(tracker, 1)
        traveller.move_to(MONDAY_10 + timedelta(hours=4))
        escalation_tick()
        assigned = wait_for(lambda: mails_to("on-call@flywheel.example"), what="the assignment email")[0]
        assert "Assigned to you" in assigned["Subject"] and question.title in assigned["Subject"]
        assert "/staff/community/queue/" in body_text(assigned)
        traveller.move_to(MONDAY_10 + timedelta(hours=5))
        escalation_tick()
        flagged = wait_for(lambda: mails_to("lead@flywheel.example"), what="the lead's email")[0]
        assert "Still unanswered" in flagged["Subject"] and "on-call@flywheel.example" in body_text(flagged)
