"""Premium support bought as an add-on: new questions take the premium tier, and the clocks of the
organization's open questions on that product are recomputed at once (what the premium policy
allows minus the time already consumed), through billing's addon_grants_changed signal. The
asker's organization sees the promised reply time; staff see where the tier came from.

The default calendar is UTC, Monday to Friday 09:00-17:00; Standard allows 24 business hours,
Premium 8."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import transaction
from django.urls import reverse

from accounts.models import Membership
from billing.models import AddOnSubscription, Subscription
from billing.services.grants import addon_grants_changed_send
from billing.services.subscriptions import subscription_start_trial
from catalog.models import AddOn, Product
from catalog.selectors import edition_get
from community.models import Escalation, EscalationPolicy, Question
from community.services.escalations import escalation_tick
from community.services.posts import comment_post
from community.services.question_clock import question_clocks_follow_support_tier, support_tier_for
from experiments.models import Event

from ..conftest import organization_on
from ..factories import UserFactory
from .conftest import ask, engineer, established, member

MONDAY_10 = datetime(2026, 3, 2, 10, tzinfo=UTC)


@pytest.fixture
def monday(policies):
    with time_machine.travel(MONDAY_10, tick=False) as traveller:
        yield traveller


def _standard_customer():
    organization, admin = organization_on("standard", members=2)
    established(admin)
    return organization, admin


def _premium_support(organization, capture, *, status=AddOnSubscription.Status.ACTIVE, product="tracker"):
    """Premium support granted to the organization's subscription of the product, as billing
    grants it: the add-on row written, then addon_grants_changed sent once the write commits."""
    subscription = organization.subscriptions.get(product__code=product)
    with capture(execute=True), transaction.atomic():
        row = AddOnSubscription.objects.create(
            organization=organization,
            subscription=subscription,
            addon=AddOn.objects.get(product__code=product, code="premium-support"),
            status=status,
            trial_ends_at=MONDAY_10 + timedelta(days=14) if status == AddOnSubscription.Status.TRIALING else None,
        )
        addon_grants_changed_send(organization_id=organization.pk, product_id=subscription.product_id)
    return row


def test_buying_premium_support_moves_a_running_clock_keeping_the_time_consumed(
    monday, tracker, django_capture_on_commit_callbacks
):
    organization, admin = _standard_customer()
    question = ask(admin, tracker, organization=organization)
    assert question.support_tier == "standard"
    assert question.deadline == datetime(2026, 3, 5, 10, tzinfo=UTC)  # 24 business hours: Thursday 10:00

    monday.move_to(MONDAY_10 + timedelta(hours=3))  # 3 business hours consumed
    _premium_support(organization, django_capture_on_commit_callbacks)
    question.refresh_from_db()
    # Premium allows 8: 5 are left from Monday 13:00, 4 on Monday and 1 on Tuesday morning.
    assert (question.support_tier, question.policy.support_tier) == ("premium", "premium")
    assert question.clock == Question.Clock.RUNNING
    assert question.deadline == datetime(2026, 3, 3, 10, tzinfo=UTC)
    assert question.edition.code == "standard"  # the edition it was asked on stays

    event = Event.objects.get(name="community_clock_upgraded")
    assert event.organization == organization
    assert (event.properties["from_tier"], event.properties["tier"], event.properties["addon"]) == (
        "standard",
        "premium",
        "premium-support",
    )
    assert event.properties["consumed_seconds"] == 3 * 3600
    assert event.properties["deadline"] == "2026-03-03T10:00:00+00:00"

    # Escalated at the new deadline, not at Thursday's.
    monday.move_to(datetime(2026, 3, 3, 9, 59, tzinfo=UTC))
    assert escalation_tick().escalated == 0
    monday.move_to(datetime(2026, 3, 3, 10, tzinfo=UTC))
    assert escalation_tick().escalated == 1
    assert Escalation.objects.get(question=question).support_tier == "premium"


def test_a_clock_that_already_used_more_than_premium_allows_escalates_at_the_next_tick(
    monday, tracker, django_capture_on_commit_callbacks
):
    organization, admin = _standard_customer()
    question = ask(admin, tracker, organization=organization)
    bought_at = datetime(2026, 3, 3, 11, tzinfo=UTC)  # 7 business hours on Monday, 2 on Tuesday: 9 > 8
    monday.move_to(bought_at)
    _premium_support(organization, django_capture_on_commit_callbacks)
    question.refresh_from_db()
    assert question.deadline == bought_at and question.support_tier == "premium"
    assert escalation_tick().escalated == 1
    question.refresh_from_db()
    assert question.clock == Question.Clock.ESCALATED


def test_a_paused_clock_gets_its_remaining_time_recomputed(monday, tracker, django_capture_on_commit_callbacks):
    organization, admin = _standard_customer()
    question = ask(admin, tracker, organization=organization)
    monday.move_to(MONDAY_10 + timedelta(hours=2))  # 2 business hours consumed
    comment_post(author=member(reputation=100), question_id=question.pk, body="Which browser?", asks_for_information=True)
    question.refresh_from_db()
    assert (question.clock, question.clock_remaining_seconds) == (Question.Clock.PAUSED, 22 * 3600)

    monday.move_to(MONDAY_10 + timedelta(hours=5))  # paused: nothing counts meanwhile
    _premium_support(organization, django_capture_on_commit_callbacks)
    question.refresh_from_db()
    assert (question.clock, question.clock_remaining_seconds, question.deadline) == (Question.Clock.PAUSED, 6 * 3600, None)
    assert question.support_tier == "premium"

    monday.move_to(datetime(2026, 3, 3, 9, tzinfo=UTC))
    comment_post(author=admin, question_id=question.pk, body="Firefox 130 on Linux.")
    question.refresh_from_db()
    assert question.deadline == datetime(2026, 3, 3, 15, tzinfo=UTC)  # 6 business hours from Tuesday 09:00


def test_a_tier_going_down_never_worsens_a_clock(monday, tracker, django_capture_on_commit_callbacks):
    organization, admin = _standard_customer()
    question = ask(admin, tracker, organization=organization)
    row = _premium_support(organization, django_capture_on_commit_callbacks)
    question.refresh_from_db()
    deadline = question.deadline
    assert deadline == datetime(2026, 3, 3, 10, tzinfo=UTC)  # 8 business hours: 7 on Monday, 1 on Tuesday

    monday.move_to(MONDAY_10 + timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        AddOnSubscription.objects.filter(pk=row.pk).update(status=AddOnSubscription.Status.CANCELED)
        addon_grants_changed_send(organization_id=organization.pk, product_id=tracker.pk)
    question.refresh_from_db()
    assert (question.support_tier, question.deadline) == ("premium", deadline)
    assert Event.objects.filter(name="community_clock_upgraded").count() == 1
    # New questions are back on Standard.
    assert ask(admin, tracker, organization=organization, title="Another question about boards").support_tier == "standard"


def test_only_that_organizations_open_questions_on_that_product_move(monday, tracker, django_capture_on_commit_callbacks):
    organization, admin = _standard_customer()
    wiki = Product.objects.get(code="wiki")
    subscription_start_trial(organization=organization, edition=edition_get(product_code="wiki", edition_code="standard"), actor=admin)
    ours = ask(admin, tracker, organization=organization)
    wiki_question = ask(admin, wiki, organization=organization, title="How do I move a page between spaces?")
    closed = ask(admin, tracker, organization=organization, title="A question that staff closed")
    Question.objects.filter(pk=closed.pk).update(state=Question.State.CLOSED)
    other, other_admin = _standard_customer()
    theirs = ask(other_admin, tracker, organization=other)
    lone = ask(member(), tracker)  # no organization
    _premium_support(organization, django_capture_on_commit_callbacks)
    tiers = dict(Question.objects.values_list("pk", "support_tier"))
    assert tiers == {
        ours.pk: "premium",
        wiki_question.pk: "standard",
        closed.pk: "standard",
        theirs.pk: "standard",
        lone.pk: "community",
    }


def test_support_tier_for_counts_granting_add_ons_and_the_best_tier_wins(monday, tracker, django_capture_on_commit_callbacks):
    organization, admin = _standard_customer()
    row = _premium_support(organization, django_capture_on_commit_callbacks, status=AddOnSubscription.Status.TRIALING)
    support = support_tier_for(organization=organization, product=tracker)
    assert (support.policy.support_tier, support.edition.code, support.addon.code) == ("premium", "standard", "premium-support")
    # A suspended base suspends its add-ons: the community tier then, as for the edition.
    Subscription.objects.filter(pk=row.subscription_id).update(status=Subscription.Status.SUSPENDED)
    support = support_tier_for(organization=organization, product=tracker)
    assert (support.policy.support_tier, support.addon) == ("community", None)
    # An edition as good as the add-on: the edition's tier, the add-on adds nothing.
    premium, premium_admin = organization_on("premium")
    _premium_support(premium, django_capture_on_commit_callbacks)
    support = support_tier_for(organization=premium, product=tracker)
    assert (support.policy.support_tier, support.addon) == ("premium", None)
    # Enterprise is better than Premium support: its questions never move.
    enterprise, enterprise_admin = organization_on("enterprise")
    established(enterprise_admin)
    question = ask(enterprise_admin, tracker, organization=enterprise)
    _premium_support(enterprise, django_capture_on_commit_callbacks)
    question.refresh_from_db()
    assert question.support_tier == "enterprise"
    assert question_clocks_follow_support_tier(organization_id=enterprise.pk, product_id=tracker.pk) == 0


def test_the_asker_and_their_colleagues_see_the_promised_reply_time_and_nobody_else(
    client, monday, tracker, django_capture_on_commit_callbacks
):
    organization, admin = _standard_customer()
    colleague = organization.memberships.filter(role=Membership.Role.MEMBER).get().user
    question = ask(admin, tracker, organization=organization)
    url = reverse("community_question", args=[question.public_id])

    client.force_login(admin)
    assert "Standard support: a support engineer replies by Thursday 5 March at 10:00 (UTC)." in client.get(url).content.decode()
    monday.move_to(MONDAY_10 + timedelta(hours=3))
    _premium_support(organization, django_capture_on_commit_callbacks)
    promise = "Premium support: a support engineer replies by Tuesday 3 March at 10:00 (UTC)."
    assert promise in client.get(url).content.decode()
    admin.time_zone = "Europe/Paris"
    admin.save(update_fields=["time_zone"])
    assert "replies by Tuesday 3 March at 11:00 (Europe/Paris)." in client.get(url).content.decode()

    client.force_login(colleague)
    assert promise in client.get(url).content.decode()
    client.force_login(member())  # another organization's user: the tier is private
    page = client.get(url).content.decode()
    assert "support-promise" not in page and "Premium" not in page

    # Once the clock stops (an accepted answer, or escalated), nothing is promised any more.
    monday.move_to(datetime(2026, 3, 3, 10, tzinfo=UTC))
    escalation_tick()
    client.force_login(admin)
    assert "support-promise" not in client.get(url).content.decode()


def test_community_tier_askers_are_told_when_support_steps_in(client, monday, tracker):
    asker = member()
    question = ask(asker, tracker)  # 48 business hours: Tuesday of the next week
    client.force_login(asker)
    page = client.get(reverse("community_question", args=[question.public_id])).content.decode()
    assert "If the community has not answered by Tuesday 10 March at 10:00 (UTC), a support engineer takes your question." in page


def test_staff_see_the_tier_came_from_the_add_on(client, monday, tracker, django_capture_on_commit_callbacks):
    engineer(email="support@flywheel.example")
    organization, admin = _standard_customer()
    question = ask(admin, tracker, organization=organization, title="Nobody answers this premium one")
    plain_organization, plain_admin = organization_on("premium")
    established(plain_admin)
    ask(plain_admin, tracker, organization=plain_organization, title="Nobody answers this premium edition one")
    _premium_support(organization, django_capture_on_commit_callbacks)
    monday.move_to(datetime(2026, 3, 3, 10, tzinfo=UTC))
    assert escalation_tick().escalated == 2

    client.force_login(UserFactory(is_staff=True))
    queue = client.get(reverse("community_support_queue")).content.decode()
    rows = {title: queue[queue.index(title) : queue.index("</tr>", queue.index(title))] for title in (
        "Nobody answers this premium one", "Nobody answers this premium edition one")}
    assert "Premium" in rows["Nobody answers this premium one"]
    assert "via Premium support add-on" in rows["Nobody answers this premium one"]
    assert "via Premium support add-on" not in rows["Nobody answers this premium edition one"]
    page = client.get(reverse("community_question", args=[question.public_id])).content.decode()
    assert "via Premium support add-on" in page


def test_a_grant_without_open_questions_needs_no_community_setup(db, catalog, django_capture_on_commit_callbacks):
    """Billing grants add-ons whether or not the community is set up (no escalation policy yet)."""
    EscalationPolicy.objects.all().delete()
    organization, _ = organization_on("standard")
    _premium_support(organization, django_capture_on_commit_callbacks)
    assert question_clocks_follow_support_tier(organization_id=organization.pk, product_id=Product.objects.get(code="tracker").pk) == 0
