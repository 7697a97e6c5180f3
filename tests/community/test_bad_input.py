"""Asking and commenting with input the forms never send: a user with no organization, an
answer id that is not an id. Each is a clear answer, never a 500, and nothing half-written."""

from __future__ import annotations

import html

from django.urls import reverse

from community.models import Comment, Question

from .conftest import BODY, ask, established, member


def _text(response) -> str:
    return html.unescape(response.content.decode())


def test_staff_without_an_organization_can_ask_at_the_community_tier(client, policies, tracker):
    staff = established(member(is_staff=True))  # staff belong to no organization
    client.force_login(staff)
    response = client.post(
        reverse("community_ask"), {"product": "tracker", "title": "How do I archive a board?", "body": BODY}
    )
    question = Question.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("community_question", args=[question.public_id])
    assert (question.author, question.organization, question.edition) == (staff, None, None)
    assert "Your question is posted." in _text(client.get(response["Location"]))


def test_a_comment_on_an_answer_id_that_is_not_an_id_is_a_clear_400(client, policies, tracker):
    asker = member(reputation=100)
    question = ask(asker, tracker)
    client.force_login(asker)
    response = client.post(
        reverse("community_comment", args=[question.public_id]), {"answer": "not-a-uuid", "body": "Which board was it?"}
    )
    assert response.status_code == 400
    assert "That answer does not exist" in _text(response)
    assert not Comment.objects.exists()


def test_a_comment_on_an_answer_that_does_not_exist_is_a_404(client, policies, tracker):
    asker = member(reputation=100)
    question = ask(asker, tracker)
    client.force_login(asker)
    response = client.post(
        reverse("community_comment", args=[question.public_id]),
        {"answer": "00000000-0000-0000-0000-000000000000", "body": "Which board was it?"},
    )
    assert response.status_code == 404
    assert not Comment.objects.exists()
