"""Where activity comes from (docs/activity.md): the products' API, the kit's track() and
Flywheel's own launch of a product all land in the same rollups, so the figures count a person
once whichever way they were seen; signing in to Flywheel itself counts for no product."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import OperationalError
from django.urls import reverse

from activity.models import ActivityDay, ActivityEvent
from activity.selectors import active_people, usage_figures
from activity.services import activity_record
from catalog.models import Product
from provisioning.models import Environment

from ..billing.helpers import workspace_ready
from ..conftest import kit_secret_for, organization_on
from ..factories import PASSWORD, MembershipFactory
from ..inproduct.helpers import admin_membership, caller_for, headers

pytestmark = pytest.mark.django_db

# 23:59:59 UTC on 5 December: 18:59:59 in New York, already 6 December in Tokyo.
LATE = datetime(2026, 12, 5, 23, 59, 59, tzinfo=UTC)


def _launch(client, environment):
    return client.get(reverse("builtin_workspace", args=[environment.public_id]))


def _kit(client, caller, *events):
    response = client.post(
        reverse("kit_activity"),
        json.dumps({"events": list(events)}),
        content_type="application/json",
        **headers(caller),
    )
    assert response.status_code == 200, response.content
    return response.json()


def _figures(product_code: str, as_of, organization_id=None):
    return next(
        row
        for row in usage_figures(as_of=as_of, organization_id=organization_id)
        if row.product.code == product_code
    )


def test_opening_a_product_from_flywheel_is_a_sign_in_to_it_each_launch_once(client, catalog):
    organization, admin = organization_on("standard")
    environment = workspace_ready(organization)
    kit_secret_for("tracker")
    client.force_login(admin)

    with time_machine.travel(LATE, tick=False):
        assert _launch(client, environment).status_code == 302
        assert _launch(client, environment).status_code == 302

    launches = ActivityEvent.objects.filter(name="signed_in")
    assert launches.count() == 2 and len({event.event_id for event in launches}) == 2
    assert {(event.user_id, event.organization_id, event.product.code) for event in launches} == {
        (admin.pk, organization.pk, "tracker")
    }
    day = ActivityDay.objects.get()
    assert (day.day, day.events, day.active_events) == (LATE.date(), 2, 2)
    # signed_in is one of the product's activity events: the person is active that day.
    assert "signed_in" in Product.objects.get(code="tracker").activity_events
    figures = _figures("tracker", LATE.date(), organization.pk)
    assert (figures.dau, figures.wau, figures.mau) == (1, 1, 1)


def test_a_sign_in_that_cannot_be_recorded_still_opens_the_product(client, catalog, monkeypatch):
    """The database refusing the activity row (a fault injected here: the one thing mocked)
    never stands between the person and their product, and leaves nothing half-written."""
    organization, admin = organization_on("standard")
    environment = workspace_ready(organization)
    kit_secret_for("tracker")
    client.force_login(admin)

    def refuse(**_):
        ActivityEvent.objects.create(  # half a write, then the failure: rolled back with it
            organization=organization, user=admin, product=environment.product, event_id="half",
            name="signed_in", occurred_at=LATE,
        )
        raise OperationalError("the database went away")

    monkeypatch.setattr("inproduct.launch_views.signed_in_record", refuse)
    response = _launch(client, environment)
    assert response.status_code == 302 and "ticket=" in response["Location"]
    assert not ActivityEvent.objects.exists() and not ActivityDay.objects.exists()


def test_a_workspace_that_does_not_open_in_the_product_is_no_sign_in(client, catalog):
    organization, admin = organization_on("standard")
    environment = workspace_ready(organization)
    client.force_login(admin)
    # No kit secret yet: Flywheel's own page, the product is not opened.
    assert _launch(client, environment).status_code == 200
    kit_secret_for("tracker")
    Environment.objects.filter(pk=environment.pk).update(status=Environment.Status.PROVISIONING)
    assert _launch(client, environment).status_code == 200
    assert not ActivityEvent.objects.exists() and not ActivityDay.objects.exists()


def test_signing_in_to_flywheel_itself_counts_for_no_product(client, catalog):
    organization, admin = organization_on("standard")
    response = client.post(reverse("account_login"), {"login": admin.email, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/app/", follow=True).status_code == 200
    assert not ActivityEvent.objects.exists() and not ActivityDay.objects.exists()


def test_the_kit_the_api_and_the_launch_count_a_person_once_a_day(client, catalog):
    """One person seen three ways on 5 December, and a colleague through the kit only; each
    source dates by Flywheel's clock in UTC."""
    organization, admin = organization_on("standard")
    colleague = MembershipFactory(organization=organization)
    environment = workspace_ready(organization)
    kit_secret_for("tracker")
    client.force_login(admin)
    with time_machine.travel(LATE, tick=False):
        _launch(client, environment)
        activity_record(
            organization_id=organization.pk,
            rows=[
                {
                    "id": "srv-1",
                    "user": str(admin.public_id),
                    "product": "tracker",
                    "name": "card_moved",
                    "occurred_at": "2026-12-05T18:59:00-05:00",
                }
            ],
        )
        _kit(
            client,
            caller_for(admin_membership(organization, admin)),
            {"id": "kit-admin-001", "name": "board_viewed", "age_ms": 0},
        )
    # The colleague's kit sends a batch two seconds after midnight; the event happened 4 s
    # before it was sent, by the page's clock: 5 December, whatever the page's clock says.
    with time_machine.travel(LATE + timedelta(seconds=3), tick=False):
        _kit(
            client,
            caller_for(colleague),
            {"id": "kit-colleague-1", "name": "card_created", "age_ms": 4_000},
        )

    days = {row.user_id: row for row in ActivityDay.objects.all()}
    assert (days[admin.pk].day, days[admin.pk].events, days[admin.pk].active_events) == (
        LATE.date(),
        3,
        3,
    )
    assert days[colleague.user_id].day == LATE.date()
    figures = _figures("tracker", LATE.date())
    assert (figures.dau, figures.mau) == (2, 2)
    tracker = Product.objects.get(code="tracker")
    with time_machine.travel(LATE + timedelta(days=1), tick=False):
        assert active_people(organization_ids=[organization.pk]) == {
            (organization.pk, tracker.pk): 2
        }


def test_a_person_in_two_organizations_is_counted_in_each_by_the_session_they_use(client, catalog):
    first, person = organization_on("standard")
    second, _ = organization_on("standard")
    in_second = MembershipFactory(organization=second, user=person)
    with time_machine.travel(LATE, tick=False):
        _kit(
            client,
            caller_for(admin_membership(first, person)),
            {"id": "kit-first-0001", "name": "board_viewed", "age_ms": 0},
        )
        _kit(
            client,
            caller_for(in_second),
            {"id": "kit-first-0001", "name": "board_viewed", "age_ms": 0},
        )
    assert sorted(ActivityDay.objects.values_list("organization_id", flat=True)) == sorted(
        [first.pk, second.pk]
    )
    # Across organizations the person counts once; each organization counts its own.
    assert _figures("tracker", LATE.date()).dau == 1
    assert _figures("tracker", LATE.date(), first.pk).dau == 1
    assert _figures("tracker", LATE.date(), second.pk).dau == 1
