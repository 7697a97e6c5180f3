"""Support answers, answers accepted by their own author, and what the search takes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from community.models import Escalation, Member, Question
from community.services.escalations import escalation_tick
from community.services.posts import answer_post
from community.services.votes import answer_accept

from ..conftest import organization_on
from .conftest import ask, engineer, established, member

MONDAY_10 = datetime(2026, 3, 2, 10, tzinfo=UTC)
pytestmark = pytest.mark.django_db


def test_accepting_your_own_answer_earns_nothing_and_is_not_the_communitys(policies, tracker):
    engineer()
    with time_machine.travel(MONDAY_10, tick=False) as traveller:
        organization, admin = organization_on("enterprise")
        established(admin, reputation=1)
        question = ask(admin, tracker, organization=organization)
        own = answer_post(question_id=question.pk, author=admin, body="bump bump bump, anyone here at all?")
        answer_accept(user=admin, answer_id=own.pk)
        traveller.move_to(MONDAY_10 + timedelta(hours=5))
        escalation_tick()
    question.refresh_from_db()
    rep = Member.objects.get(user=admin).reputation
    # The asker says it is solved: nothing to escalate, but no reputation for it, and it is
    # not counted as solved by the community.
    assert (question.clock, question.stop_reason, rep) == (Question.Clock.STOPPED, Question.StopReason.SELF_SOLVED, 1)
    assert not Escalation.objects.filter(question=question).exists()


def test_a_support_answer_before_the_deadline_stops_the_clock(policies, tracker):
    worker = engineer()
    with time_machine.travel(MONDAY_10, tick=False) as traveller:
        organization, admin = organization_on("enterprise")
        established(admin)
        question = ask(admin, tracker, organization=organization)
        answer_post(question_id=question.pk, author=worker.user, body="Support here: enable boards in settings first.")
        traveller.move_to(MONDAY_10 + timedelta(hours=5))
        escalation_tick()
    question.refresh_from_db()
    assert (question.clock, question.stop_reason) == (Question.Clock.STOPPED, Question.StopReason.SUPPORT)
    assert not Escalation.objects.filter(question=question).exists()


def test_a_nul_byte_in_a_search_is_refused_naming_the_field(client, policies, tracker):
    """common/middleware.py refuses a NUL in any field, the search's included (it was a 500)."""
    client.force_login(member(reputation=100))
    for query, field in (("?q=%00", "q"), ("?q=boards%00", "q"), ("?tag=a%00b", "tag"), ("?product=tr%00acker", "product")):
        response = client.get(f"/community/{query}")
        assert response.status_code == 400
        assert f"The field &#x27;{field}&#x27; contains a NUL character." in response.content.decode()
