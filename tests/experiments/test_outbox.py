"""Recording analytics events: known names only, stored in the caller's transaction."""

from __future__ import annotations

import pytest
from django.db import transaction

from accounts.models import SignupIntent
from accounts.services import user_signup_record
from experiments import events
from experiments.exceptions import UnknownEvent
from experiments.models import Event
from experiments.services import event_record, events_record, events_store

from ..factories import MembershipFactory, OrganizationFactory, UserFactory


class Refused(Exception):
    pass


@pytest.mark.django_db
def test_an_unknown_event_name_is_refused_and_nothing_is_stored():
    user = UserFactory()
    before = Event.objects.count()

    with pytest.raises(UnknownEvent) as refusal:
        event_record(name="signup_finished", user=user)

    assert refusal.value.message == "Unknown analytics event 'signup_finished'."
    assert Event.objects.count() == before


@pytest.mark.django_db
def test_an_event_without_anyone_to_attribute_it_to_is_refused():
    with pytest.raises(UnknownEvent) as refusal:
        event_record(name=events.SIGNUP_STARTED)

    assert (
        refusal.value.message
        == "Event 'signup_started' needs a user, an organization or a distinct id."
    )
    assert not Event.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_event_recorded_in_a_transaction_that_rolls_back_does_not_exist():
    user = UserFactory()

    with pytest.raises(Refused):
        with transaction.atomic():
            user_signup_record(user=user, product_code="tracker", anonymous_id="anonymous-1")
            assert Event.objects.filter(name=events.SIGNED_UP, user=user).count() == 1
            raise Refused

    # Neither the change nor the event describing it survived.
    assert not SignupIntent.objects.filter(user=user).exists()
    assert not Event.objects.filter(user=user).exists()

    with transaction.atomic():
        user_signup_record(user=user, product_code="tracker", anonymous_id="anonymous-1")

    assert SignupIntent.objects.filter(user=user).exists()
    event = Event.objects.get(user=user)
    assert event.name == events.SIGNED_UP
    assert event.properties["anonymous_id"] == "anonymous-1"
    assert event.sent_at is None


@pytest.mark.django_db(transaction=True)
def test_an_event_recorded_directly_is_rolled_back_with_its_transaction():
    with pytest.raises(Refused):
        with transaction.atomic():
            event_record(name=events.SIGNUP_STARTED, distinct_id="anonymous-2")
            raise Refused

    assert not Event.objects.filter(distinct_id="anonymous-2").exists()


@pytest.mark.django_db
def test_an_organization_event_carries_the_organization_and_its_group():
    membership = MembershipFactory()
    organization, user = membership.organization, membership.user

    event = event_record(
        name=events.INVITE_SENT, user=user, organization=organization, properties={"role": "member"}
    )

    event.refresh_from_db()
    assert event.organization_id == organization.pk
    assert event.user_id == user.pk
    assert event.distinct_id == str(user.public_id)
    assert event.properties == {
        "role": "member",
        "organization_id": str(organization.public_id),
        "$groups": {"organization": str(organization.public_id)},
    }


@pytest.mark.django_db
def test_an_event_of_an_organization_alone_is_attributed_to_the_organization():
    organization = OrganizationFactory()

    event = event_record(name=events.SEAT_LIMIT_REACHED, organization=organization)

    assert event.distinct_id == f"org:{organization.public_id}"
    assert event.user is None
    assert event.properties["organization_id"] == str(organization.public_id)
    assert event.properties["$groups"] == {"organization": str(organization.public_id)}


@pytest.mark.django_db
def test_a_personal_event_has_no_organization_group():
    user = UserFactory()

    event = event_record(
        name=events.EMAIL_VERIFIED, user=user, properties={"domain": "example.com"}
    )

    assert event.organization is None
    assert event.properties == {"domain": "example.com"}


@pytest.mark.django_db
def test_the_trial_a_service_starts_is_recorded_with_its_organization(trial_organization):
    organization, admin = trial_organization

    trial = Event.objects.get(name=events.TRIAL_STARTED, organization=organization)

    assert trial.user == admin
    assert trial.properties["organization_id"] == str(organization.public_id)
    assert trial.properties["$groups"] == {"organization": str(organization.public_id)}
    assert trial.properties["product"] == "tracker"
    assert trial.properties["edition"] == "standard"


@pytest.mark.django_db
def test_many_events_are_stored_as_event_record_stores_one():
    user, organization = UserFactory(), OrganizationFactory()
    arguments = [
        {"name": events.SIGNUP_STARTED, "user": user, "properties": {"utm": {"source": "ads"}, "step": 1, "note": "é \"q\""}},
        {"name": events.ENVIRONMENT_ACTIVE, "organization": organization},
        {"name": events.SIGNUP_STARTED, "distinct_id": "email:0badf00d", "properties": {}},
    ]

    many = events_record(events=arguments)
    one_by_one = [event_record(**argument) for argument in arguments]

    assert [event.pk for event in many] == [event.pk for event in Event.objects.filter(pk__in=[e.pk for e in many]).order_by("id")]
    assert all(not event._state.adding for event in many)
    columns = ["name", "distinct_id", "user_id", "organization_id", "properties", "sent_at", "attempts", "last_error"]
    stored = {row["public_id"]: row for row in Event.objects.values("public_id", "occurred_at", *columns)}
    for batch, single in zip(many, one_by_one, strict=True):
        assert stored[batch.public_id]["occurred_at"] == batch.occurred_at
        assert {column: stored[batch.public_id][column] for column in columns} == {
            column: stored[single.public_id][column] for column in columns
        }
    assert events_record(events=[]) == []

    Event.objects.all().delete()
    events_store(events=arguments)
    events_record(events=arguments)
    stored = list(Event.objects.order_by("id").values("public_id", *columns))
    assert [{column: row[column] for column in columns} for row in stored[:3]] == [
        {column: row[column] for column in columns} for row in stored[3:]
    ]
    assert len({row["public_id"] for row in stored}) == 6 and all(row["public_id"].version == 4 for row in stored)
