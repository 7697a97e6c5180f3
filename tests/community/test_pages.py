"""The forum over HTTP: asking, sanitized Markdown on the page, the tenant wall around private
data, search with filters, staff pages, and email notifications with unsubscribe."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from community.models import Member, Question
from community.notifications import unsubscribe_user_public_id
from community.selectors import SearchFilters, questions_search
from community.services.escalations import escalation_tick
from community.services.moderation import post_flag, question_close
from community.services.posts import answer_post
from community.services.votes import answer_accept

from ..conftest import body_text, mails_to, organization_on, wait_for
from ..factories import UserFactory
from .conftest import BODY, ask, engineer, established, member

pytestmark = pytest.mark.django_db

HOSTILE = """Look at this:

<script>alert("x")</script>
<img src=x onerror="alert(1)">
[click me](javascript:alert(document.cookie))
[or me](JAVASCRIPT:alert(1)) <a href="javascript:alert(2)" onclick="steal()">raw</a>
[docs](https://example.com/docs) and **bold**
"""


def test_the_forum_needs_a_sign_in(client):
    response = client.get(reverse("community"))
    assert response.status_code == 302 and "/accounts/login" in response["Location"]


def test_ask_through_the_page_and_see_it(client, policies, tracker, trial_organization):
    organization, admin = trial_organization
    established(admin)
    client.force_login(admin)
    response = client.post(
        reverse("community_ask"),
        {"product": "tracker", "title": "How do I archive a board?", "body": BODY, "tags": "boards archive"},
    )
    question = Question.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("community_question", args=[question.public_id])
    assert (question.organization, question.support_tier) == (organization, "standard")
    page = client.get(response["Location"]).content.decode()
    assert "How do I archive a board?" in page and "archive" in page


def test_a_refused_question_says_why_and_creates_nothing(client, policies, tracker):
    client.force_login(member())
    response = client.post(reverse("community_ask"), {"product": "tracker", "title": "Help", "body": BODY})
    assert response.status_code == 400
    assert "A title takes 10 to 200 characters" in response.content.decode()
    assert not Question.objects.exists()


def test_script_event_handlers_and_javascript_links_never_reach_the_page(client, policies, tracker):
    asker = member(reputation=100)
    question = ask(asker, tracker, body=HOSTILE)
    answer_post(question_id=question.pk, author=member(reputation=100), body=HOSTILE)
    client.force_login(member())
    page = client.get(reverse("community_question", args=[question.public_id])).content.decode()
    body = page[page.index('id="question"') :]
    assert "<script" not in body.lower()
    tags = re.findall(r"<[a-zA-Z][^>]*>", body)
    assert not [tag for tag in tags if re.search(r"\son\w+\s*=", tag)]  # no event handler on any element
    assert not [tag for tag in tags if "javascript:" in tag.lower()]  # no javascript: link
    assert '<a href="https://example.com/docs" rel="nofollow noopener">docs</a>' in body
    assert "<strong>bold</strong>" in body
    assert "&lt;script&gt;" in body  # shown as text, harmless


def test_private_data_is_shown_to_staff_only(client, policies, tracker):
    organization, admin = organization_on("premium")
    established(admin)
    question = ask(admin, tracker, organization=organization)
    url = reverse("community_question", args=[question.public_id])
    client.force_login(member())
    page = client.get(url).content.decode()
    assert question.title in page
    assert organization.name not in page and "staff-panel" not in page and "premium" not in page.lower()
    assert client.get(reverse("community_support_queue")).status_code == 403  # "staff only"
    assert client.get(reverse("community_metrics")).status_code == 403
    client.force_login(UserFactory(is_staff=True))
    page = client.get(url).content.decode()
    assert "staff-panel" in page and organization.name in page and "premium" in page


def test_search_ranks_title_matches_first_and_filters(policies, tracker, catalog):
    author = member(reputation=1000)
    from catalog.models import Product

    wiki = Product.objects.get(code="wiki")
    in_body = ask(author, tracker, title="Cards do not move at all", body="I think the webhook integration is broken here.")
    in_title = ask(author, tracker, title="Webhook integration retries", body=BODY, tags=["integrations"])
    other_product = ask(author, wiki, title="Webhook for page edits", body=BODY)
    unrelated = ask(author, tracker, title="Exporting a board to CSV", body=BODY)
    answer = answer_post(question_id=unrelated.pk, author=member(reputation=100), body="Use the webhook export endpoint instead.")

    found = list(questions_search(filters=SearchFilters(text="webhook integration")))
    assert found[:2] == [in_title, in_body]
    assert other_product not in found  # "integration" is not in it: websearch means AND
    assert set(questions_search(filters=SearchFilters(text="webhook"))) == {in_body, in_title, other_product, unrelated}
    assert list(questions_search(filters=SearchFilters(text="webhook", product="wiki"))) == [other_product]
    assert list(questions_search(filters=SearchFilters(text="webhook", tag="integrations"))) == [in_title]
    assert unrelated not in questions_search(filters=SearchFilters(text="webhook", unanswered=True))
    answer_accept(user=author, answer_id=answer.pk)
    assert list(questions_search(filters=SearchFilters(solved=True))) == [unrelated]
    assert list(questions_search(filters=SearchFilters(text='"webhook export" -csv'))) == []
    assert list(questions_search(filters=SearchFilters(text="webhook -integration", product="tracker"))) == [unrelated]


def test_the_search_page(client, policies, tracker):
    author = member(reputation=1000)
    ask(author, tracker, title="Webhook integration retries", body=BODY)
    ask(author, tracker, title="Exporting a board to CSV", body=BODY)
    client.force_login(member())
    page = client.get(reverse("community"), {"q": "webhooks", "product": "tracker"}).content.decode()
    assert "Webhook integration retries" in page and "Exporting a board" not in page


def test_a_hidden_question_is_gone_for_others_but_in_the_moderation_queue(client, policies, tracker, settings):
    settings.COMMUNITY_FLAGS_TO_HIDE = 1
    asker = member(reputation=100)
    question = ask(asker, tracker, title="Cheap watches for sale here")
    post_flag(user=member(reputation=20), question_id=question.pk, reason="spam")
    client.force_login(member())
    assert client.get(reverse("community_question", args=[question.public_id])).status_code == 404
    client.force_login(asker)
    assert "hidden pending review" in client.get(reverse("community_question", args=[question.public_id])).content.decode()
    client.force_login(UserFactory(is_staff=True))
    assert "Cheap watches" in client.get(reverse("community_moderation")).content.decode()
    response = client.post(reverse("community_review", args=[question.public_id]), {"decision": "delete"})
    assert response.status_code == 302
    assert Question.objects.get(pk=question.pk).state == Question.State.DELETED


def test_refusals_are_shown_on_the_question_page(client, policies, tracker):
    question = ask(member(reputation=100), tracker)
    client.force_login(member(reputation=1))
    response = client.post(reverse("community_vote", args=[question.public_id]), {"value": "up"}, follow=True)
    assert "You need 15 reputation to vote up" in response.content.decode()
    assert Question.objects.get(pk=question.pk).score == 0


def test_the_queue_and_the_metrics_for_staff(client, policies, tracker):
    support = engineer(email="support@flywheel.example")
    organization, admin = organization_on("enterprise")
    established(admin)
    now = timezone.now()
    with time_machine.travel(now, tick=False) as traveller:
        escalated = ask(admin, tracker, organization=organization, title="Nobody answers this one")
        solved = ask(admin, tracker, organization=organization, title="The community answers this one")
        answer = answer_post(question_id=solved.pk, author=member(reputation=100), body="Here is the fix for your problem.")
        answer_accept(user=admin, answer_id=answer.pk)
        traveller.shift(timedelta(hours=4))
        escalation_tick()
        traveller.shift(timedelta(hours=2))
        escalation_tick()  # the lead is told: a breach
    client.force_login(support.user)
    queue = client.get(reverse("community_support_queue")).content.decode()
    assert "Nobody answers this one" in queue and "support@flywheel.example" in queue and organization.name in queue
    assert "The community answers this one" not in queue
    metrics = client.get(reverse("community_metrics")).content.decode()
    row = metrics[metrics.index("<tbody>") :]
    assert "<td>Enterprise</td>" in row
    assert "<td>2</td><td>1</td>" in row  # asked, answered
    assert "1 (50%)" in row  # solved by the community
    assert row.count("<td>1</td>") >= 2  # one escalation, one breach
    question_close(moderator=support.user, question_id=escalated.pk)
    assert "Nobody answers this one" not in client.get(reverse("community_support_queue")).content.decode()


@pytest.mark.django_db(transaction=True)
def test_answers_comments_and_acceptance_are_emailed_until_unsubscribed(celery_worker, client, policies, tracker, catalog):
    asker = member(reputation=100, email="asker@example.com")
    helper = member(reputation=100, email="helper@example.com")
    question = ask(asker, tracker)
    answer = answer_post(question_id=question.pk, author=helper, body="Drag the card onto the other board.")
    mail = wait_for(lambda: mails_to("asker@example.com"), what="the answer notification")[0]
    assert "New answer to your question" in mail["Subject"]
    text = body_text(mail)
    assert reverse("community_question", args=[question.public_id]) in text
    # Framed as every Flywheel email is: a greeting, the team's signature, why it came.
    assert text.startswith("Hello,\n\nSomeone answered your question")
    assert "The Flywheel team\nhttp" in text
    assert "because you take part in the Flywheel community" in text
    assert mail["List-Unsubscribe"]
    answer_accept(user=asker, answer_id=answer.pk)
    accepted = wait_for(lambda: mails_to("helper@example.com"), what="the acceptance notification")[0]
    assert "Your answer was accepted" in accepted["Subject"]

    # The email's own unsubscribe link (its token carries the second it was signed, so one made
    # here need not be the same string) names the asker.
    prefix = reverse("community_unsubscribe", args=["TOKEN"]).split("TOKEN")[0]
    token = re.search(re.escape(prefix) + r"([^/\s]+)/", text).group(1)
    assert unsubscribe_user_public_id(token) == str(asker.public_id)
    assert client.get(reverse("community_unsubscribe", args=["forged"])).status_code == 404
    assert client.post(reverse("community_unsubscribe", args=[token])).status_code == 200
    assert Member.objects.get(user=asker).notify_by_email is False
    answer_post(question_id=question.pk, author=member(reputation=100), body="Another way: use the Move action.")
    helper_answer_comment = "Thanks, that worked!"
    from community.services.posts import comment_post

    comment_post(author=asker, answer_id=answer.pk, body=helper_answer_comment)
    wait_for(lambda: len(mails_to("helper@example.com")) == 2, what="the comment notification")
    assert len(mails_to("asker@example.com")) == 1  # nothing since unsubscribing
