"""The escalation clock follows what happens to answers; moderation keeps answer counts right; a
reassigned escalation can be flagged to the lead again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from community.models import Escalation, Question
from community.services.escalations import escalation_reassign, escalation_tick
from community.services.moderation import post_flag, post_review
from community.services.posts import answer_post
from community.services.votes import vote_cast

from ..factories import UserFactory
from .conftest import ask, engineer, established, member

MONDAY_10 = datetime(2026, 3, 2, 10, tzinfo=UTC)


def _enterprise_question(tracker):
    from ..conftest import organization_on

    organization, admin = organization_on("enterprise")
    established(admin)
    return ask(admin, tracker, organization=organization)


@pytest.mark.django_db
def test_a_withdrawn_upvote_restarts_the_clock_and_the_question_is_escalated(policies, tracker):
    engineer()
    outsider, voter = member(), member(reputation=20)
    with time_machine.travel(MONDAY_10, tick=False) as traveller:
        question = _enterprise_question(tracker)
        answer = answer_post(question_id=question.pk, author=outsider, body="Maybe try turning it off and on again.")
        vote_cast(user=voter, answer_id=answer.pk, value=1)  # double click: up ...
        vote_cast(user=voter, answer_id=answer.pk, value=1)  # ... and withdrawn
        answer.refresh_from_db()
        assert answer.score == 0
        traveller.move_to(MONDAY_10 + timedelta(hours=5))  # past the 4-hour deadline
        escalation_tick()
    question.refresh_from_db()
    # No upvoted answer, no accepted answer: the question should have been escalated.
    assert question.clock == Question.Clock.ESCALATED, (question.clock, question.stop_reason)


@pytest.mark.django_db
def test_an_upvoted_answer_deleted_by_a_moderator_restarts_the_clock(policies, tracker, settings):
    settings.COMMUNITY_FLAGS_TO_HIDE = 1
    engineer()
    spammer, voter, flagger = member(), member(reputation=20), member(reputation=20)
    with time_machine.travel(MONDAY_10, tick=False) as traveller:
        question = _enterprise_question(tracker)
        spam = answer_post(question_id=question.pk, author=spammer, body="Buy cheap watches at example dot com!!!")
        vote_cast(user=voter, answer_id=spam.pk, value=1)
        post_flag(user=flagger, answer_id=spam.pk, reason="spam")
        post_review(moderator=UserFactory(is_staff=True), keep=False, answer_id=spam.pk)
        traveller.move_to(MONDAY_10 + timedelta(hours=5))
        escalation_tick()
    question.refresh_from_db()
    assert question.answer_count == 0
    assert question.clock == Question.Clock.ESCALATED, (question.clock, question.stop_reason)


@pytest.mark.django_db
def test_deleting_an_answer_twice_counts_it_once(policies, tracker, settings):
    settings.COMMUNITY_FLAGS_TO_HIDE = 1
    asker, helper, spammer, flagger = member(reputation=100), member(), member(), member(reputation=20)
    question = ask(asker, tracker)
    answer_post(question_id=question.pk, author=helper, body="Settings > Boards > Move cards between boards.")
    spam = answer_post(question_id=question.pk, author=spammer, body="Buy cheap watches at example dot com!!!")
    post_flag(user=flagger, answer_id=spam.pk, reason="spam")
    moderator_a, moderator_b = UserFactory(is_staff=True), UserFactory(is_staff=True)
    post_review(moderator=moderator_a, keep=False, answer_id=spam.pk)
    post_review(moderator=moderator_b, keep=False, answer_id=spam.pk)  # second moderator, same queue page
    question.refresh_from_db()
    assert question.answer_count == 1  # one real answer is still there


@pytest.mark.django_db
def test_a_hidden_answer_does_not_count_until_a_moderator_keeps_it(policies, tracker, settings):
    from community.selectors import SearchFilters, questions_search

    settings.COMMUNITY_FLAGS_TO_HIDE = 1
    asker, spammer, flagger = member(reputation=100), member(), member(reputation=20)
    question = ask(asker, tracker)
    spam = answer_post(question_id=question.pk, author=spammer, body="Buy cheap watches at example dot com!!!")
    assert post_flag(user=flagger, answer_id=spam.pk, reason="spam") is True
    unanswered = questions_search(filters=SearchFilters(unanswered=True), viewer=asker)
    assert question.pk in [q.pk for q in unanswered]


@pytest.mark.django_db
def test_a_reassigned_escalation_is_flagged_to_the_lead_again(policies, tracker):
    first = engineer(email="first@flywheel.example")
    engineer(email="second@flywheel.example")
    engineer(is_lead=True, cap=0, email="lead@flywheel.example")
    with time_machine.travel(MONDAY_10, tick=False) as traveller:
        question = _enterprise_question(tracker)
        traveller.move_to(MONDAY_10 + timedelta(hours=4))
        escalation_tick()
        traveller.move_to(MONDAY_10 + timedelta(hours=5))
        assert escalation_tick().lead_flagged == 1  # first engineer sat on it
        escalation = Escalation.objects.get(question=question)
        assert escalation.engineer == first
        assert escalation_reassign(moderator=UserFactory(is_staff=True), escalation_id=escalation.pk)
        escalation.refresh_from_db()
        assert escalation.engineer != first
        assert escalation.lead_flagged_at is None
        traveller.move_to(MONDAY_10 + timedelta(hours=6, minutes=1))
        assert escalation_tick().lead_flagged == 1  # the new engineer sat on it too
