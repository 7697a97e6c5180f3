"""Asking, the asker's tier and deadline, pause and resume, and what stops the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from billing.models import Subscription
from community.models import Question, Revision
from community.services.posts import answer_post, comment_post, question_edit
from community.services.votes import answer_accept, vote_cast
from experiments.models import Event

from ..conftest import organization_on
from ..factories import MembershipFactory
from .conftest import BODY, ask, member

pytestmark = pytest.mark.django_db

MONDAY_10 = datetime(2026, 3, 2, 10, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _monday_morning():
    with time_machine.travel(MONDAY_10, tick=False) as traveller:
        yield traveller


def test_a_free_asker_gets_the_community_tier_and_48_business_hours(policies, tracker, free_organization):
    organization, admin = free_organization
    question = ask(admin, tracker, organization=organization, tags=["boards", "Cards"])
    assert question.support_tier == "community"
    assert question.edition.code == "free"
    assert question.organization == organization
    assert question.clock == Question.Clock.RUNNING
    # 48 business hours of 8-hour weekdays from Monday 10:00: the next Tuesday 10:00.
    assert question.deadline == datetime(2026, 3, 10, 10, tzinfo=UTC)
    assert sorted(question.tags.values_list("name", flat=True)) == ["boards", "cards"]
    assert Revision.objects.filter(question=question, number=1).exists()
    assert Event.objects.filter(name="community_question_asked", user=admin).exists()


def test_the_tier_comes_from_the_organizations_subscription_to_the_product(policies, tracker):
    organization, admin = organization_on("premium")
    question = ask(admin, tracker, organization=organization)
    assert (question.support_tier, question.edition.code) == ("premium", "premium")
    assert question.deadline == datetime(2026, 3, 3, 10, tzinfo=UTC)  # 8 business hours: Tuesday 10:00
    enterprise_org, enterprise_admin = organization_on("enterprise")
    question = ask(enterprise_admin, tracker, organization=enterprise_org)
    assert question.deadline == MONDAY_10 + timedelta(hours=4)  # calendar hours


def test_no_subscription_to_the_product_or_a_suspended_one_is_the_community_tier(policies, tracker, catalog):
    organization, admin = organization_on("enterprise", product_code="wiki")
    assert ask(admin, tracker, organization=organization).support_tier == "community"
    assert ask(member(), tracker).support_tier == "community"
    organization, admin = organization_on("premium")
    Subscription.objects.filter(organization=organization).update(status=Subscription.Status.SUSPENDED)
    assert ask(admin, tracker, organization=organization).support_tier == "community"


def test_asking_for_an_organization_one_is_not_in_is_refused(policies, tracker, trial_organization):
    organization, _ = trial_organization
    stranger = member()
    with pytest.raises(Exception, match="not a member"):
        ask(stranger, tracker, organization=organization)
    assert not Question.objects.exists()


def test_a_request_for_information_pauses_and_the_askers_reply_resumes(policies, tracker, _monday_morning):
    asker, helper = member(), member()
    question = ask(asker, tracker)
    first_deadline = question.deadline
    _monday_morning.move_to(MONDAY_10 + timedelta(hours=2))  # 2 business hours used
    comment_post(author=helper, question_id=question.pk, body="Which browser do you use?", asks_for_information=True)
    question.refresh_from_db()
    assert question.clock == Question.Clock.PAUSED and question.deadline is None
    assert question.clock_remaining_seconds == 46 * 3600
    # The asker answers on Saturday: nothing counted meanwhile, the 46 hours start on Monday.
    _monday_morning.move_to(datetime(2026, 3, 7, 12, tzinfo=UTC))
    comment_post(author=asker, question_id=question.pk, body="Firefox 130 on Linux.")
    question.refresh_from_db()
    assert question.clock == Question.Clock.RUNNING
    # 46 hours from Monday 09:00: five full days (40h), then 6h on the next Monday.
    assert question.deadline == datetime(2026, 3, 16, 15, tzinfo=UTC)
    assert question.deadline > first_deadline


def test_editing_the_question_also_resumes(policies, tracker, _monday_morning):
    asker, helper = member(), member()
    question = ask(asker, tracker)
    comment_post(author=helper, question_id=question.pk, body="Please share the error text.", asks_for_information=True)
    _monday_morning.move_to(MONDAY_10 + timedelta(days=1))
    question_edit(question_id=question.pk, editor=asker, title=question.title, body=BODY + " Error: 502.", tags="boards")
    question.refresh_from_db()
    assert question.clock == Question.Clock.RUNNING
    assert question.deadline == datetime(2026, 3, 11, 10, tzinfo=UTC)  # 48 business hours from Tuesday 10:00
    assert list(question.revisions.values_list("number", flat=True)) == [1, 2]


def test_the_asker_cannot_pause_their_own_clock(policies, tracker):
    asker = member()
    question = ask(asker, tracker)
    comment_post(author=asker, question_id=question.pk, body="Any idea, anyone?", asks_for_information=True)
    question.refresh_from_db()
    assert question.clock == Question.Clock.RUNNING


def test_acceptance_stops_the_clock(policies, tracker):
    asker, helper = member(), member()
    question = ask(asker, tracker)
    answer = answer_post(question_id=question.pk, author=helper, body="Drag the card onto the other board's tab.")
    question.refresh_from_db()
    assert question.first_answer_at == MONDAY_10 and question.clock == Question.Clock.RUNNING
    answer_accept(user=asker, answer_id=answer.pk)
    question.refresh_from_db()
    assert question.clock == Question.Clock.STOPPED and question.deadline is None
    assert question.stop_reason == "accepted" and question.accepted_answer == answer


def test_only_the_asker_accepts(policies, tracker):
    asker, helper, other = member(), member(), member()
    question = ask(asker, tracker)
    answer = answer_post(question_id=question.pk, author=helper, body="Drag the card onto the other board's tab.")
    with pytest.raises(Exception, match="Only the asker"):
        answer_accept(user=other, answer_id=answer.pk)
    question.refresh_from_db()
    assert question.accepted_answer is None and question.clock == Question.Clock.RUNNING


def test_an_upvoted_answer_from_outside_the_askers_organization_stops_the_clock(policies, tracker):
    organization, asker = organization_on("standard")
    colleague = member()
    MembershipFactory(organization=organization, user=colleague)
    outsider, voter = member(), member(reputation=20)
    question = ask(asker, tracker, organization=organization)
    inside = answer_post(question_id=question.pk, author=colleague, body="Ask our admin to enable boards.")
    vote_cast(user=voter, answer_id=inside.pk, value=1)
    question.refresh_from_db()
    assert question.clock == Question.Clock.RUNNING  # a colleague's answer does not count
    outside = answer_post(question_id=question.pk, author=outsider, body="Settings > Boards > Move cards between boards.")
    vote_cast(user=voter, answer_id=outside.pk, value=1)
    question.refresh_from_db()
    assert question.clock == Question.Clock.STOPPED and question.stop_reason == "upvoted"
