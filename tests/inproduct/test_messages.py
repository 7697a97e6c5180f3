"""The one message due (inproduct/messages.py): priority and what each message says."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from billing.models import PromptDismissal, Subscription
from feedback.models import Survey
from inproduct.messages import message_due
from inproduct.models import OfferClosed

from .helpers import admin_membership, caller_for, long_standing, member_of, nudge_experiment

pytestmark = pytest.mark.django_db


def trial_ends_in(organization, days: float) -> None:
    Subscription.objects.filter(organization=organization).update(
        trial_ends_at=timezone.now() + timedelta(days=days)
    )


def test_an_admin_sees_the_trial_ending_prompt_with_the_action_that_fixes_it(organization, no_survey):
    organization, admin = organization
    trial_ends_in(organization, 2.5)
    message = message_due(caller=caller_for(admin_membership(organization, admin))).as_json()
    assert message["id"] == "prompt:trial_ends.tracker.3"
    assert message["type"] == "prompt" and message["severity"] == "warning"
    assert message["title"] == "Your Tracker trial ends in 3 days"
    assert message["dismissible"] is True
    [action] = message["actions"]
    assert action["kind"] == "link" and action["label"] == "Choose a plan"
    assert action["url"].startswith(f"{settings.SITE_URL}/") and "/checkout" in action["url"]
    assert message["admins"] == []


def test_a_member_is_told_who_the_admins_are_and_can_ask_them(organization, no_survey):
    organization, admin = organization
    admin.first_name, admin.last_name = "Ada", "Lovelace"
    admin.save()
    trial_ends_in(organization, 0.5)
    member = member_of(organization)
    message = message_due(caller=caller_for(member)).as_json()
    assert message["id"] == "prompt:trial_ends.tracker.1"
    assert message["severity"] == "critical"
    assert message["title"] == "The Tracker trial ends in 1 day"
    assert message["admins"] == ["Ada Lovelace"]
    assert message["actions"] == [{"kind": "ask_admins", "label": "Ask an admin"}]


def test_the_most_severe_prompt_comes_first_and_a_dismissed_stage_is_not_shown(organization, no_survey):
    organization, admin = organization
    membership = admin_membership(organization, admin)
    trial_ends_in(organization, 6)
    assert message_due(caller=caller_for(membership)).id == "prompt:trial_ends.tracker.7"
    PromptDismissal.objects.create(
        user=admin, organization=organization, kind="trial_ends", product_code="tracker", threshold="7"
    )
    # Nothing else is due; the admin has products to try, so that is next in line.
    assert message_due(caller=caller_for(membership)).type == "try_product"


def test_the_survey_comes_when_no_prompt_is_due_and_it_is_asked_once(organization, settings):
    organization, admin = organization
    member = member_of(organization)
    long_standing(member)
    message = message_due(caller=caller_for(member)).as_json()
    survey = Survey.objects.get(user=member.user)
    assert message["id"] == f"survey:{survey.public_id}"
    assert message["type"] == "survey"
    assert message["survey"]["id"] == str(survey.public_id)
    assert "Tracker" in message["survey"]["question"]
    assert {"value": "developer", "label": "Developer or engineer"} in message["survey"]["roles"]
    # A new session: feedback's own rule (asked recently) says no, and a member gets nothing else.
    assert message_due(caller=caller_for(member)) is None
    assert Survey.objects.filter(user=member.user).count() == 1


def test_a_prompt_wins_over_the_survey_and_the_survey_is_not_even_asked(organization):
    organization, admin = organization
    member = member_of(organization)
    long_standing(member)
    trial_ends_in(organization, 2)
    assert message_due(caller=caller_for(member)).type == "prompt"
    assert not Survey.objects.filter(user=member.user).exists()


def test_a_member_with_nothing_due_gets_nothing(organization, no_survey):
    organization, _ = organization
    assert message_due(caller=caller_for(member_of(organization))) is None


def test_an_admin_is_offered_the_billing_pages_products_to_try(organization, no_survey):
    organization, admin = organization
    message = message_due(caller=caller_for(admin_membership(organization, admin))).as_json()
    assert message["id"] == "try:wiki+servicedesk"
    assert message["type"] == "try_product"
    assert [product["code"] for product in message["products"]] == ["wiki", "servicedesk"]
    wiki = message["products"][0]
    assert wiki == {
        "code": "wiki",
        "name": "Wiki",
        "tagline": "Write, organize and find your team's knowledge.",
        "trial_days": 14,
        "edition": "Standard",
        "label": "Try Wiki free for 14 days",
    }


def test_the_invite_nudge_comes_last(organization, no_survey):
    organization, admin = organization
    nudge_experiment("in-product-3-days", days=1)
    membership = admin_membership(organization, admin)
    for code in ("wiki", "servicedesk"):
        OfferClosed.objects.create(user=admin, organization=organization, offer=f"try:{code}", action="dismissed")
    message = message_due(caller=caller_for(membership)).as_json()
    assert message["id"] == "nudge:invite" and message["type"] == "invite_nudge"
    assert message["title"] == "Invite your colleagues to Tracker"
    assert f"to {organization.name}" in message["body"]
    assert message["actions"] == [
        {
            "kind": "invite",
            "label": "Invite colleagues",
            "url": f"{settings.SITE_URL}/app/members/?organization={organization.public_id}#invite-form",
        }
    ]
