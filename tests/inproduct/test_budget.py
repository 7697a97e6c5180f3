"""The contact budget (inproduct/messages.py): one kit message per kit session, the session's
message again until it is closed, a suspended product whatever the budget, and the shared
marketing frequency cap for products to try and the invite nudge."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.models import Subscription
from feedback.models import Survey, SurveyState
from inproduct.messages import message_due
from inproduct.models import KitSession
from inproduct.services import message_event_record, survey_answer
from onboarding.models import MarketingSend
from onboarding.services.suppression import marketing_email_allowed, marketing_email_claim

from .helpers import admin_membership, caller_for, headers, long_standing, member_of

pytestmark = pytest.mark.django_db


def trial_ends_in(organization, days: float) -> None:
    Subscription.objects.filter(organization=organization).update(trial_ends_at=timezone.now() + timedelta(days=days))


def test_the_first_message_of_a_session_is_recorded_on_it_and_shown_again_until_closed(organization, no_survey):
    organization, admin = organization
    trial_ends_in(organization, 2)
    caller = caller_for(admin_membership(organization, admin))
    first = message_due(caller=caller)
    session = KitSession.objects.get(pk=caller.session.pk)
    assert session.message_id == first.id == "prompt:trial_ends.tracker.3"
    assert session.message_shown_at is not None and session.message_closed_at is None
    # A page load later, the same message.
    assert message_due(caller=caller_for(caller.membership, session=session)).id == first.id
    message_event_record(caller=caller_for(caller.membership, session=session), message_id=first.id, action="clicked")
    # Followed: nothing more in this session, though the prompt still applies and products wait to be tried.
    assert message_due(caller=caller_for(caller.membership, session=session)) is None
    # The next session shows it again (billing's rule: a prompt stays until dismissed or resolved).
    assert message_due(caller=caller_for(caller.membership)).id == first.id


def test_after_a_dismissal_the_session_shows_nothing_more_and_the_next_one_shows_the_next_message(organization, no_survey):
    organization, admin = organization
    trial_ends_in(organization, 2)
    membership = admin_membership(organization, admin)
    caller = caller_for(membership)
    shown = message_due(caller=caller)
    message_event_record(caller=caller, message_id=shown.id, action="dismissed")
    assert message_due(caller=caller_for(membership, session=caller.session)) is None
    # A new session: the dismissed stage is gone; the next message in line (products to try).
    assert message_due(caller=caller_for(membership)).type == "try_product"


def test_one_survey_per_session_even_if_more_is_due(organization):
    organization, admin = organization
    member = member_of(organization)
    long_standing(member)
    caller = caller_for(member)
    survey = message_due(caller=caller)
    assert survey.type == "survey"
    trial_ends_in(organization, 2)  # a prompt becomes due in the middle of the session
    again = message_due(caller=caller_for(member, session=caller.session))
    assert again.id == survey.id
    survey_answer(
        caller=caller_for(member, session=caller.session), survey_public_id=survey.survey["id"], score=9, role="developer"
    )
    assert message_due(caller=caller_for(member, session=caller.session)) is None
    assert message_due(caller=caller_for(member)).type == "prompt"


def test_a_suspended_product_shows_even_after_the_budget_is_spent(organization, no_survey):
    organization, admin = organization
    member = member_of(organization)
    trial_ends_in(organization, 2)
    caller = caller_for(member)
    shown = message_due(caller=caller)
    message_event_record(caller=caller, message_id=shown.id, action="dismissed")
    Subscription.objects.filter(organization=organization).update(
        status=Subscription.Status.SUSPENDED, suspended_at=timezone.now()
    )
    suspended = message_due(caller=caller_for(member, session=caller.session))
    assert suspended.id == "prompt:suspended.tracker.suspended"
    assert suspended.dismissible is False and suspended.severity == "critical"
    assert KitSession.objects.get(pk=caller.session.pk).message_id == shown.id  # the budget's record is unchanged


def test_two_requests_racing_for_a_session_both_answer_with_the_winners_message(organization, no_survey):
    """The claim is a conditional UPDATE: a request that finds the session claimed since it was
    read answers with the session's message, and what it decided is rolled back."""
    organization, admin = organization
    member = member_of(organization)
    long_standing(member)
    caller = caller_for(member)
    trial_ends_in(organization, 2)
    # Another request claimed the session after this one read it.
    KitSession.objects.filter(pk=caller.session.pk).update(
        message_id="prompt:trial_ends.tracker.3", message_shown_at=timezone.now()
    )
    assert caller.session.message_id == ""
    assert message_due(caller=caller).id == "prompt:trial_ends.tracker.3"


def test_a_lost_race_rolls_back_the_survey_ask(organization, settings):
    organization, admin = organization
    member = member_of(organization)
    long_standing(member)
    caller = caller_for(member)
    KitSession.objects.filter(pk=caller.session.pk).update(message_id="nudge:invite", message_shown_at=timezone.now())
    assert message_due(caller=caller) is None  # the winner's message no longer applies to this member
    assert not Survey.objects.filter(user=member.user).exists()
    assert not SurveyState.objects.filter(user=member.user, last_asked_at__isnull=False).exists()


def test_a_marketing_email_in_the_cap_window_means_no_product_to_try(organization, no_survey):
    organization, admin = organization
    assert marketing_email_claim(email=admin.email, source="onboarding").allowed
    caller = caller_for(admin_membership(organization, admin))
    assert message_due(caller=caller) is None
    assert KitSession.objects.get(pk=caller.session.pk).message_id == ""


def test_a_product_to_try_takes_the_cap_slot_so_no_onboarding_email_follows(organization, no_survey):
    organization, admin = organization
    caller = caller_for(admin_membership(organization, admin))
    assert message_due(caller=caller).type == "try_product"
    assert MarketingSend.objects.get(email=admin.email).source == "kit:try_product"
    assert not marketing_email_allowed(email=admin.email)
    # Shown again in the session without taking another slot.
    assert message_due(caller=caller_for(caller.membership, session=caller.session)).type == "try_product"
    assert MarketingSend.objects.filter(email=admin.email).count() == 1


def test_prompts_and_the_survey_do_not_use_the_marketing_cap(organization):
    organization, admin = organization
    member = member_of(organization)
    long_standing(member)
    assert marketing_email_claim(email=member.user.email, source="onboarding").allowed
    assert message_due(caller=caller_for(member)).type == "survey"
    trial_ends_in(organization, 2)
    assert message_due(caller=caller_for(member)).type == "prompt"


@pytest.mark.django_db(transaction=True)
def test_two_page_loads_at_once_show_one_survey_asked_once(organization):
    """Two tabs of one session load at the same moment: feedback's row lock lets one ask, the
    session's conditional UPDATE records it, and both show that survey."""
    organization, _ = organization
    member = member_of(organization)
    long_standing(member)
    session = caller_for(member).session
    start = threading.Barrier(2)
    results = []

    def load():
        try:
            start.wait()
            results.append(message_due(caller=caller_for(member, session=session)))
        finally:
            connection.close()

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Survey.objects.filter(user=member.user).count() == 1
    survey = Survey.objects.get(user=member.user)
    assert [message.id if message else None for message in results] == [f"survey:{survey.public_id}"] * 2
    assert KitSession.objects.get(pk=session.pk).message_id == f"survey:{survey.public_id}"


def test_a_spent_budget_costs_one_query_beyond_the_credential(organization, no_survey, client):
    organization, admin = organization
    caller = caller_for(admin_membership(organization, admin))
    shown = message_due(caller=caller)
    message_event_record(caller=caller, message_id=shown.id, action="dismissed")
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("kit_message"), **headers(caller)).json() == {"message": None}
    assert len(queries) <= 3, [query["sql"][:120] for query in queries]
