"""Durations on staff pages read as durations ("10 seconds", "3 h 20 min"), never "0:00:09.959477"."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from community.services.posts import answer_post
from experiments.templatetags.staff_tags import duration_text

from ..factories import UserFactory
from .conftest import ask, member


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "–"),
        (0.4, "under a second"),
        (1, "1 second"),
        (9.959477, "10 seconds"),
        (timedelta(seconds=9.959477), "10 seconds"),
        (59.6, "1 min"),
        (245, "4 min 5 s"),
        (300, "5 min"),
        (42 * 60 + 10, "42 min"),
        (3 * 3600 + 20 * 60, "3 h 20 min"),
        (timedelta(hours=5), "5 h"),
        (timedelta(days=2), "2 days"),
        (timedelta(days=1, hours=4), "1 day 4 h"),
        (timedelta(days=12, hours=4), "12 days"),
    ],
)
def test_a_duration_in_words(value, text):
    assert duration_text(value) == text


def test_community_metrics_show_the_time_to_first_answer_in_words(client, policies, tracker):
    asker = member(reputation=100)
    now = timezone.now()
    with time_machine.travel(now, tick=False) as traveller:
        question = ask(asker, tracker, title="How do I archive a board?")
        traveller.shift(timedelta(seconds=9.959477))
        answer_post(question_id=question.pk, author=member(reputation=100), body="Open the board menu and choose Archive.")
    client.force_login(UserFactory(is_staff=True))

    page = client.get(reverse("community_metrics")).content.decode()

    assert '<td class="duration">10 seconds</td>' in page
    assert "0:00:09" not in page
    assert "<td>Free (community)</td>" in page  # the tier by its name, not "community"
