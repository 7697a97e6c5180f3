"""Reputation from votes and acceptance, privileges at thresholds, flags hiding a post, rate
limits for new accounts, and staff moderation."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from community import privileges
from community.exceptions import AlreadyFlagged, PrivilegeRequired, RateLimited
from community.models import Answer, Flag, Member, Question, Vote
from community.selectors import SearchFilters, questions_search
from community.services.moderation import post_flag, post_review, question_close, question_delete
from community.services.posts import answer_edit, answer_post, comment_post, question_edit
from community.services.votes import answer_accept, vote_cast

from ..factories import UserFactory
from .conftest import BODY, ask, member

pytestmark = pytest.mark.django_db


def reputation(user) -> int:
    return Member.objects.get(user=user).reputation


def test_votes_and_acceptance_move_reputation(policies, tracker):
    asker, helper = member(reputation=100), member(reputation=100)
    voter = member(reputation=200)
    question = ask(asker, tracker)
    answer = answer_post(question_id=question.pk, author=helper, body="Drag the card onto the other board.")
    assert vote_cast(user=voter, question_id=question.pk, value=1) == 1
    assert reputation(asker) == 100 + privileges.QUESTION_UPVOTED
    assert vote_cast(user=voter, answer_id=answer.pk, value=1) == 1
    assert reputation(helper) == 100 + privileges.ANSWER_UPVOTED
    # Changing the vote to down: the up is taken back, the down applied; the voter pays 1.
    assert vote_cast(user=voter, answer_id=answer.pk, value=-1) == -1
    assert reputation(helper) == 100 + privileges.POST_DOWNVOTED
    assert reputation(voter) == 200 + privileges.DOWNVOTER_ON_ANSWER
    # The same vote again withdraws it.
    assert vote_cast(user=voter, answer_id=answer.pk, value=-1) == 0
    assert (reputation(helper), reputation(voter)) == (100, 200)
    assert not Vote.objects.filter(answer=answer).exists()
    answer_accept(user=asker, answer_id=answer.pk)
    assert reputation(helper) == 100 + privileges.ANSWER_ACCEPTED
    assert reputation(asker) == 100 + privileges.QUESTION_UPVOTED + privileges.ACCEPTOR
    # Moving the acceptance to another answer moves the reputation with it.
    other = member(reputation=100)
    second = answer_post(question_id=question.pk, author=other, body="Or use the Move action in the card menu.")
    answer_accept(user=asker, answer_id=second.pk)
    assert (reputation(helper), reputation(other)) == (100, 100 + privileges.ANSWER_ACCEPTED)
    assert reputation(asker) == 100 + privileges.QUESTION_UPVOTED + privileges.ACCEPTOR


def test_privileges_unlock_at_thresholds(policies, tracker):
    asker = member(reputation=100)
    question = ask(asker, tracker)
    newcomer = member(reputation=privileges.THRESHOLDS[privileges.VOTE_UP] - 1)
    with pytest.raises(PrivilegeRequired, match="15 reputation to vote up"):
        vote_cast(user=newcomer, question_id=question.pk, value=1)
    voter = member(reputation=privileges.THRESHOLDS[privileges.VOTE_UP])
    vote_cast(user=voter, question_id=question.pk, value=1)
    with pytest.raises(PrivilegeRequired, match="125 reputation to vote down"):
        vote_cast(user=voter, question_id=question.pk, value=-1)
    with pytest.raises(PrivilegeRequired, match="edit other people's posts"):
        question_edit(question_id=question.pk, editor=voter, title="A better title for this one", body=BODY, tags="")
    editor = member(reputation=privileges.THRESHOLDS[privileges.EDIT_OTHERS])
    question_edit(question_id=question.pk, editor=editor, title="A better title for this one", body=BODY, tags="")
    with pytest.raises(PrivilegeRequired, match="close questions"):
        question_close(moderator=editor, question_id=question.pk)
    closer = member(reputation=privileges.THRESHOLDS[privileges.CLOSE])
    original = ask(member(reputation=100), tracker, title="The original question on moving cards")
    question_close(moderator=closer, question_id=question.pk, duplicate_of_id=original.pk)
    question.refresh_from_db()
    assert question.state == Question.State.CLOSED and question.duplicate_of == original
    assert question.clock == Question.Clock.STOPPED and question.stop_reason == "closed"
    with pytest.raises(Exception, match="closed"):
        answer_post(question_id=question.pk, author=voter, body="Too late to answer this one, it seems.")


def test_nobody_votes_on_their_own_post(policies, tracker):
    asker = member(reputation=1000)
    question = ask(asker, tracker)
    with pytest.raises(Exception, match="your own post"):
        vote_cast(user=asker, question_id=question.pk, value=1)
    assert Question.objects.get(pk=question.pk).score == 0


def test_enough_flags_hide_a_post_until_a_moderator_reviews_it(policies, tracker, settings):
    settings.COMMUNITY_FLAGS_TO_HIDE = 2
    asker, spammer = member(reputation=100), member(reputation=100)
    question = ask(asker, tracker)
    spam = answer_post(question_id=question.pk, author=spammer, body="Buy cheap watches at example dot com!!!")
    flaggers = [member(reputation=20) for _ in range(2)]
    assert post_flag(user=flaggers[0], answer_id=spam.pk, reason="spam") is False
    with pytest.raises(AlreadyFlagged):
        post_flag(user=flaggers[0], answer_id=spam.pk, reason="spam")
    with pytest.raises(PrivilegeRequired):
        post_flag(user=member(reputation=1), answer_id=spam.pk, reason="spam")
    assert post_flag(user=flaggers[1], answer_id=spam.pk, reason="rude") is True
    spam.refresh_from_db()
    assert spam.is_hidden and spam.flag_count == 2
    moderator = UserFactory(is_staff=True)
    with pytest.raises(Exception, match="Only moderators"):
        post_review(moderator=flaggers[0], keep=False, answer_id=spam.pk)
    post_review(moderator=moderator, keep=False, answer_id=spam.pk)
    spam.refresh_from_db()
    assert spam.is_deleted
    assert Flag.objects.filter(answer=spam, reviewed_by=moderator).count() == 2
    assert Question.objects.get(pk=question.pk).answer_count == 0


def test_a_kept_post_is_shown_again(policies, tracker, settings):
    settings.COMMUNITY_FLAGS_TO_HIDE = 1
    asker = member(reputation=100)
    question = ask(asker, tracker)
    post_flag(user=member(reputation=20), question_id=question.pk, reason="off_topic")
    assert list(questions_search(filters=SearchFilters())) == []
    post_review(moderator=UserFactory(is_staff=True), keep=True, question_id=question.pk)
    assert list(questions_search(filters=SearchFilters())) == [question]


def test_staff_delete_a_question(policies, tracker):
    question = ask(member(reputation=100), tracker)
    with pytest.raises(Exception, match="Only moderators"):
        question_delete(moderator=member(reputation=10_000), question_id=question.pk)
    question_delete(moderator=UserFactory(is_staff=True), question_id=question.pk)
    question.refresh_from_db()
    assert question.state == Question.State.DELETED and question.clock == Question.Clock.STOPPED


def test_new_accounts_are_rate_limited_more_strictly(policies, tracker, settings):
    settings.COMMUNITY_NEW_POSTS_PER_HOUR = 3
    settings.COMMUNITY_POSTS_PER_HOUR = 6
    newcomer = UserFactory()  # joined just now, reputation 1
    question = ask(member(reputation=100), tracker)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        answer_post(question_id=question.pk, author=newcomer, body="First answer of a new member here.")
        comment_post(author=newcomer, question_id=question.pk, body="And a comment.")
        ask(newcomer, tracker, title="A newcomer's question on boards")
        with pytest.raises(RateLimited, match="New members may post 3 times an hour"):
            comment_post(author=newcomer, question_id=question.pk, body="One more comment.")
        assert Answer.objects.filter(author=newcomer).count() == 1
        # An hour later the window has moved on.
        traveller.shift(timedelta(minutes=61))
        comment_post(author=newcomer, question_id=question.pk, body="One more comment.")
    regular = member(reputation=500)
    for n in range(6):
        comment_post(author=regular, question_id=question.pk, body=f"Comment {n}")
    with pytest.raises(RateLimited, match="6 times an hour"):
        comment_post(author=regular, question_id=question.pk, body="Comment 7")


def test_edits_keep_every_revision(policies, tracker):
    helper = member(reputation=100)
    question = ask(member(reputation=100), tracker)
    answer = answer_post(question_id=question.pk, author=helper, body="First version of the answer text.")
    answer_edit(answer_id=answer.pk, editor=helper, body="Second version of the answer text.")
    assert list(answer.revisions.values_list("number", "body")) == [
        (1, "First version of the answer text."),
        (2, "Second version of the answer text."),
    ]
