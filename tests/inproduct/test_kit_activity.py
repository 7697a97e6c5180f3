"""POST /kit/v1/activity (inproduct/activity.py): the kit's batch of what the person did. The
person, the organization and the product are the session credential's, never the body's; each
event is stored once by the kit's id under the person's own prefix; a name the product does not
count as activity is also a success moment."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from accounts.models import Membership
from activity.models import ActivityDay, ActivityEvent
from activity.services import activity_record
from catalog.models import Product
from inproduct.identity import kit_session_credential
from inproduct.models import ProductSuccess

from ..conftest import organization_on
from .helpers import ORIGIN, admin_membership, caller_for, headers, member_of

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 6, 14, 0, tzinfo=UTC)


def send(client, caller, events, **extra):
    return client.post(
        reverse("kit_activity"),
        json.dumps({"events": events}),
        content_type="application/json",
        **{**headers(caller), **extra},
    )


def event(name="card_created", id_="evt-0001-abcd", age_ms=0, **more):
    return {"id": id_, "name": name, "age_ms": age_ms, **more}


@time_machine.travel(NOW, tick=False)
def test_a_batch_is_stored_for_the_sessions_person_and_product_once_and_counted(
    organization, client
):
    organization, admin = organization
    caller = caller_for(admin_membership(organization, admin))
    batch = [
        event("board_viewed", "evt-0001-abcd", 5_000),
        event("card_created", "evt-0002-abcd", 1_000),
    ]

    response = send(client, caller, batch)
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 2, "duplicates": 0, "errors": []}
    assert response["Access-Control-Allow-Origin"] == ORIGIN

    stored = ActivityEvent.objects.order_by("occurred_at")
    assert [(row.name, row.user_id, row.organization_id, row.product.code) for row in stored] == [
        ("board_viewed", admin.pk, organization.pk, "tracker"),
        ("card_created", admin.pk, organization.pk, "tracker"),
    ]
    # Flywheel's clock minus the age the kit measured.
    assert [row.occurred_at for row in stored] == [
        NOW - timedelta(seconds=5),
        NOW - timedelta(seconds=1),
    ]
    assert stored[0].event_id == f"kit:{admin.public_id.hex}:evt-0001-abcd"

    # The kit sends the batch again (its first answer was lost): nothing more is counted.
    again = send(client, caller, [*batch, event("card_created", "evt-0003-abcd")])
    assert again.json() == {"accepted": 1, "duplicates": 2, "errors": []}
    day = ActivityDay.objects.get()
    assert (day.user_id, day.day, day.events, day.active_events) == (admin.pk, NOW.date(), 3, 3)


@time_machine.travel(NOW, tick=False)
def test_the_body_cannot_name_another_person_organization_or_product(organization, client, catalog):
    organization, admin = organization
    membership = member_of(organization)
    caller = caller_for(membership)
    other_organization, stranger = organization_on("standard", "wiki")
    wiki = Product.objects.get(code="wiki")

    response = send(
        client,
        caller,
        [
            event(id_="evt-user-0001", user=str(admin.public_id)),
            event(id_="evt-orgn-0001", organization=str(other_organization.public_id)),
            event(id_="evt-prod-0001", product="wiki"),
            event(id_="evt-good-0001"),
        ],
    )

    body = response.json()
    assert response.status_code == 200
    assert (body["accepted"], body["duplicates"]) == (1, 0)
    assert [(error["index"], error["id"]) for error in body["errors"]] == [
        (0, "evt-user-0001"),
        (1, "evt-orgn-0001"),
        (2, "evt-prod-0001"),
    ]
    assert body["errors"][0]["error"].startswith(
        "Unknown field: user. The kit reports what the person its session names did"
    )
    # Only the session's own person, organization and product were written.
    assert list(
        ActivityEvent.objects.values_list("user_id", "organization_id", "product__code")
    ) == [(membership.user_id, organization.pk, "tracker")]
    assert not ActivityDay.objects.filter(user__in=[admin, stranger]).exists()
    assert not ActivityDay.objects.filter(product=wiki).exists()

    # Beside the events too: the whole batch is refused.
    beside = client.post(
        reverse("kit_activity"),
        json.dumps({"events": [event(id_="evt-side-0001")], "user": str(admin.public_id)}),
        content_type="application/json",
        **headers(caller),
    )
    assert beside.status_code == 400
    assert beside.json() == {"detail": "Unknown field: user. Send only the events."}
    assert not ActivityEvent.objects.filter(event_id__endswith="evt-side-0001").exists()


@time_machine.travel(NOW, tick=False)
def test_a_member_cannot_spend_a_colleagues_or_the_product_servers_event_ids(organization, client):
    organization, admin = organization
    membership = member_of(organization)
    # The product's server reports an event of the admin with an id a member could guess.
    activity_record(
        organization_id=organization.pk,
        rows=[
            {
                "id": "evt-0001-abcd",
                "user": str(admin.public_id),
                "product": "tracker",
                "name": "card_created",
                "occurred_at": NOW.isoformat(),
            }
        ],
    )
    # The admin's kit and the member's kit both use the same id of their own.
    assert (
        send(client, caller_for(admin_membership(organization, admin)), [event()]).json()[
            "accepted"
        ]
        == 1
    )
    assert send(client, caller_for(membership), [event()]).json()["accepted"] == 1
    assert send(client, caller_for(membership), [event()]).json() == {
        "accepted": 0,
        "duplicates": 1,
        "errors": [],
    }
    assert ActivityDay.objects.get(user=admin).events == 2
    assert ActivityDay.objects.get(user_id=membership.user_id).events == 1


@time_machine.travel(NOW, tick=False)
def test_a_session_of_another_product_reports_for_that_product(organization, client):
    organization, admin = organization
    caller = caller_for(admin_membership(organization, admin), product="wiki")
    assert send(client, caller, [event("page_viewed")]).json()["accepted"] == 1
    assert ActivityDay.objects.get().product.code == "wiki"


@time_machine.travel(NOW, tick=False)
def test_bad_rows_are_answered_each_with_why_and_the_good_ones_kept(organization, client, settings):
    organization, admin = organization
    caller = caller_for(admin_membership(organization, admin))
    too_old = settings.ACTIVITY_RAW_RETENTION_DAYS * 24 * 3600 * 1000 + 1
    response = send(
        client,
        caller,
        [
            "card_created",
            event(id_="short"),
            event("Card Created", "evt-name-0001"),
            event(id_="evt-ages-0001", age_ms=-1),
            event(id_="evt-ages-0002", age_ms=True),
            event(id_="evt-ages-0003", age_ms=too_old),
            event(id_="evt-good-0001"),
        ],
    )
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (1, 0)
    assert [(error["index"], error["id"], error["error"]) for error in body["errors"]] == [
        (0, "", "Each event is an object with id, name and age_ms."),
        (1, "short", "id must be 8 to 64 letters, digits, _ or -, the kit's own for the event."),
        (
            2,
            "evt-name-0001",
            "name must be 1 to 64 lowercase letters, digits or _, starting with a letter.",
        ),
        (
            3,
            "evt-ages-0001",
            "age_ms must be a whole number of milliseconds, 0 or more: how long ago it happened.",
        ),
        (
            4,
            "evt-ages-0002",
            "age_ms must be a whole number of milliseconds, 0 or more: how long ago it happened.",
        ),
        (
            5,
            "evt-ages-0003",
            f"The event is more than {settings.ACTIVITY_RAW_RETENTION_DAYS} days old: such events are no longer accepted.",
        ),
    ]
    assert ActivityEvent.objects.count() == 1


def test_a_batch_that_is_not_a_list_or_too_large_is_refused_whole(organization, client, settings):
    organization, admin = organization
    caller = caller_for(admin_membership(organization, admin))
    not_a_list = client.post(
        reverse("kit_activity"),
        json.dumps({"events": {"id": "x"}}),
        content_type="application/json",
        **headers(caller),
    )
    assert not_a_list.status_code == 400
    assert not_a_list.json() == {
        "detail": 'Send the events as a list: {"events": [{"id": ..., "name": ..., "age_ms": ...}]}.'
    }
    settings.KIT_ACTIVITY_BATCH_MAX = 2
    too_many = send(client, caller, [event(id_=f"evt-many-000{n}") for n in range(3)])
    assert too_many.status_code == 400
    assert too_many.json() == {"detail": "At most 2 events per request; this one has 3."}
    assert not ActivityEvent.objects.exists()


def test_without_a_valid_credential_or_from_another_origin_nothing_is_stored(organization, client):
    organization, admin = organization
    caller = caller_for(admin_membership(organization, admin))
    body = json.dumps({"events": [event()]})
    nobody = client.post(
        reverse("kit_activity"), body, content_type="application/json", HTTP_ORIGIN=ORIGIN
    )
    assert nobody.status_code == 401
    tampered = client.post(
        reverse("kit_activity"),
        body,
        content_type="application/json",
        HTTP_ORIGIN=ORIGIN,
        HTTP_AUTHORIZATION=f"Bearer {kit_session_credential(session=caller.session, origin=ORIGIN)}x",
    )
    assert tampered.status_code == 401
    elsewhere = send(client, caller, [event()], HTTP_ORIGIN="https://evil.example")
    assert elsewhere.status_code == 403
    # A person removed from the organization: their session's credential no longer works.
    Membership.objects.filter(user=admin, organization=organization).delete()
    assert send(client, caller, [event()]).status_code == 401
    assert not ActivityEvent.objects.exists()


@time_machine.travel(NOW, tick=False)
def test_a_name_the_product_does_not_count_is_stored_and_is_a_success_moment(organization, client):
    organization, admin = organization
    caller = caller_for(admin_membership(organization, admin))
    response = send(
        client,
        caller,
        [event("first_success", "evt-succ-0001"), event("board_viewed", "evt-view-0001")],
    )
    assert response.json()["accepted"] == 2
    # Stored and counted as an event; the person is active through board_viewed only.
    day = ActivityDay.objects.get()
    assert (day.events, day.active_events) == (2, 1)
    # first_success is a success moment (the invite nudge's); board_viewed, routine use, is not.
    assert list(ProductSuccess.objects.values_list("name", "count")) == [("first_success", 1)]

    # The kit sends the same batch again (its answer was lost): the moment is counted once.
    again = send(
        client,
        caller,
        [event("first_success", "evt-succ-0001"), event("board_viewed", "evt-view-0001")],
    )
    assert again.json() == {"accepted": 0, "duplicates": 2, "errors": []}
    assert list(ProductSuccess.objects.values_list("name", "count")) == [("first_success", 1)]
