"""The staff home at /staff/: every staff page with live headline figures, and where staff land
after signing in."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from experiments import events
from experiments.models import Event

from ..factories import PASSWORD, MembershipFactory, UserFactory
from .factories import ExperimentFactory


def visible_text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html[html.index("<main") :]))


@pytest.fixture
def this_week(db):
    """Two people signed up this week (one verified), a colleague through an invite, one
    person last month; one experiment running, one stopped."""
    now = timezone.now()
    ada, bert, colleague, old = UserFactory(), UserFactory(), UserFactory(), UserFactory()
    for user, days, properties in ((ada, 1, {}), (bert, 2, {}), (colleague, 1, {"via_invite": True}), (old, 20, {})):
        Event.objects.create(name=events.SIGNED_UP, user=user, distinct_id=str(user.public_id),
                             occurred_at=now - timedelta(days=days), properties=properties)
    Event.objects.create(name=events.EMAIL_VERIFIED, user=ada, distinct_id=str(ada.public_id), occurred_at=now - timedelta(hours=20))
    ExperimentFactory(name="Pricing page copy")
    ExperimentFactory(name="Old test", status="stopped")


def test_staff_home_lists_every_staff_page_with_live_figures(client, catalog, this_week):
    client.force_login(UserFactory(is_staff=True))

    response = client.get("/staff/")

    assert reverse("staff_home") == "/staff/"
    assert response.status_code == 200
    html = response.content.decode()
    text = visible_text(html)
    assert "<h1>Staff home</h1>" in html
    for title, name in (
        ("Signup funnel", "staff_funnel"), ("Support queue", "community_support_queue"), ("NPS", "feedback_staff_report"),
        ("Follow-ups", "feedback_follow_ups"), ("Experiments", "staff_experiments"), ("Onboarding emails", "staff_onboarding"),
        ("Community metrics", "community_metrics"), ("Moderation", "community_moderation"), ("Sales leads", "sales_leads"),
    ):
        assert f'<h2><a href="{reverse(name)}">{title}</a></h2>' in html
    assert "2 people signed up in the last 7 days" in text
    assert "1 of them verified their email" in text
    assert "1 experiment running" in text
    assert "0 open escalations" in text
    assert "answers in" in text and "too few to score" in text  # no NPS answers this month
    assert "0 analytics events refused by PostHog" in text


def test_staff_home_counts_the_analytics_events_posthog_refused(client, catalog):
    client.force_login(UserFactory(is_staff=True))
    Event.objects.create(name=events.SIGNUP_STARTED, distinct_id="", dead_at=timezone.now(),
                         last_error="PostHog refused the event (400): event submitted without a distinct_id")
    Event.objects.create(name=events.SIGNUP_STARTED, distinct_id="anonymous-1")  # waiting: not counted

    html = client.get("/staff/").content.decode()

    assert f'<h2><a href="{reverse("admin:experiments_event_changelist")}?state=dead">Analytics events</a></h2>' in html
    assert "1 analytics event refused by PostHog" in visible_text(html)


def test_staff_who_sign_in_land_on_the_staff_home(client, db):
    staff = UserFactory(is_staff=True)

    response = client.post(reverse("account_login"), {"login": staff.email, "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/staff/"


def test_a_next_page_still_wins_for_staff(client, db):
    staff = UserFactory(is_staff=True)

    response = client.post(f"{reverse('account_login')}?next=/staff/funnel/", {"login": staff.email, "password": PASSWORD})

    assert response["Location"] == "/staff/funnel/"


def test_customers_who_sign_in_land_on_their_home_not_the_staff_home(client, db):
    member = MembershipFactory().user

    response = client.post(reverse("account_login"), {"login": member.email, "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] != "/staff/"
