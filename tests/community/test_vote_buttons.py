"""A member sees the vote buttons they may use, and for the others why not, before clicking
(docs/community.md: voting up needs 15 reputation, voting down 125)."""

import pytest
from django.urls import reverse

from community.services.posts import answer_post

from ..factories import UserFactory
from .conftest import ask, member

pytestmark = pytest.mark.django_db

UP = 'title="Useful"'
DOWN = 'title="Not useful"'


def _page(client, question) -> str:
    response = client.get(reverse("community_question", args=[question.public_id]))
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def question(policies, tracker):
    question = ask(member(reputation=100), tracker)
    answer_post(author=member(reputation=100), question_id=question.pk, body="Drag it onto the other board's column.")
    return question


def test_a_new_member_is_told_why_they_cannot_vote_and_sees_no_buttons(client, question):
    client.force_login(member(reputation=3))
    page = _page(client, question)
    assert UP not in page and DOWN not in page
    assert "Voting up needs 15 reputation; you have 3." in page


def test_a_member_who_may_vote_up_but_not_down_sees_only_the_up_buttons(client, question):
    client.force_login(member(reputation=40))
    page = _page(client, question)
    assert page.count(UP) == 2 and DOWN not in page  # the question and its answer
    assert "Voting down needs 125 reputation; you have 40." in page


def test_members_with_the_reputation_and_staff_see_every_vote_button_and_no_reason(client, question):
    for user in (member(reputation=125), UserFactory(is_staff=True)):
        client.force_login(user)
        page = _page(client, question)
        assert page.count(UP) == 2 and page.count(DOWN) == 2
        assert "needs 15 reputation" not in page and "needs 125 reputation" not in page
