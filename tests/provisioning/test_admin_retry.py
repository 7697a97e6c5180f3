"""What staff do about environments that failed or stalled: the admin retry, the stall sweep."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from catalog.models import Product
from experiments import events
from experiments.models import Event
from provisioning import services
from provisioning.models import Environment

from ..conftest import wait_for
from ..factories import UserFactory
from .factories import EnvironmentFactory

CHANGELIST = "/admin/provisioning/environment/"
REASON = "Gave up after 4 attempts. Last error: Wiki did not answer within 1 s."


@pytest.fixture
def staff_client(client, db):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def _failed(**fields) -> Environment:
    return EnvironmentFactory(
        status=Environment.Status.FAILED,
        attempts=4,
        failure_reason=REASON,
        last_error=REASON,
        failed_at=timezone.now(),
        **fields,
    )


def _retry(staff_client, *environments: Environment):
    return staff_client.post(
        CHANGELIST,
        {
            "action": "retry_provisioning",
            "_selected_action": [environment.pk for environment in environments],
        },
        follow=True,
    )


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_staff_find_failed_environments_with_the_status_filter(staff_client, catalog):
    failed = _failed()
    active = EnvironmentFactory(status=Environment.Status.ACTIVE, url="https://wiki.example.test/a")

    response = staff_client.get(CHANGELIST, {"status__exact": "failed"})

    assert response.status_code == 200
    page = response.content.decode()
    assert str(failed.public_id) in page
    assert str(active.public_id) not in page
    assert "retry_provisioning" in page


def test_retry_puts_a_failed_environment_back_to_requested(
    staff_client, catalog, django_capture_on_commit_callbacks
):
    failed = _failed()
    active = EnvironmentFactory(status=Environment.Status.ACTIVE, url="https://wiki.example.test/a")

    with django_capture_on_commit_callbacks() as scheduled:
        response = _retry(staff_client, failed, active)

    assert response.status_code == 200
    assert _messages(response) == [
        "1 environment(s) scheduled again; 1 skipped because they had not failed."
    ]
    failed.refresh_from_db()
    assert failed.status == Environment.Status.REQUESTED
    assert failed.attempts == 0
    assert failed.failure_reason == ""
    assert failed.failed_at is None
    assert len(scheduled) == 1
    active.refresh_from_db()
    assert active.status == Environment.Status.ACTIVE
    assert active.url == "https://wiki.example.test/a"


def test_retry_of_nothing_failed_says_so(staff_client, catalog):
    requested = EnvironmentFactory()

    response = _retry(staff_client, requested)

    assert _messages(response) == [
        "0 environment(s) scheduled again; 1 skipped because they had not failed."
    ]
    requested.refresh_from_db()
    assert requested.status == Environment.Status.REQUESTED


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_after_a_retry_the_worker_activates_a_builtin_environment(
    staff_client, catalog, celery_worker
):
    failed = _failed()
    assert failed.product.provisioner == Product.Provisioner.BUILTIN

    response = _retry(staff_client, failed)

    assert _messages(response) == ["1 environment(s) scheduled again."]
    wait_for(
        lambda: Environment.objects.filter(pk=failed.pk, status=Environment.Status.ACTIVE).exists(),
        what="the retried environment to become active",
    )
    failed.refresh_from_db()
    assert failed.attempts == 1
    assert failed.url == f"/w/{failed.public_id}/"
    assert failed.failure_reason == ""
    assert (
        Event.objects.filter(
            name=events.ENVIRONMENT_ACTIVE, organization=failed.organization
        ).count()
        == 1
    )


def test_the_stall_sweep_picks_up_only_environments_waiting_too_long(
    catalog, django_capture_on_commit_callbacks
):
    stall = timedelta(seconds=settings.PROVISIONING_STALL_SECONDS)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        stuck_requested = EnvironmentFactory()
        stuck_provisioning = EnvironmentFactory(status=Environment.Status.PROVISIONING, attempts=1)
        active = EnvironmentFactory(
            status=Environment.Status.ACTIVE, url="https://wiki.example.test/a"
        )
        failed = _failed()
    with time_machine.travel(start + stall / 2, tick=False):
        recent = EnvironmentFactory()

    with time_machine.travel(start + stall - timedelta(seconds=1), tick=False):
        with django_capture_on_commit_callbacks() as scheduled:
            assert services.environments_resume_stalled() == 0
        assert scheduled == []

    swept_at = start + stall + timedelta(seconds=1)
    with time_machine.travel(swept_at, tick=False):
        with django_capture_on_commit_callbacks() as scheduled:
            assert services.environments_resume_stalled() == 2
        assert len(scheduled) == 2
        # Touched, so the next sweep leaves them to the tasks just scheduled.
        with django_capture_on_commit_callbacks() as scheduled_again:
            assert services.environments_resume_stalled() == 0
        assert scheduled_again == []

    for environment in (stuck_requested, stuck_provisioning):
        before = environment.status
        environment.refresh_from_db()
        assert environment.status == before
        assert environment.updated_at == swept_at
    for environment in (active, failed, recent):
        before = environment.updated_at
        environment.refresh_from_db()
        assert environment.updated_at == before


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_finishes_what_the_stall_sweep_schedules(catalog, celery_worker):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        # Rows whose tasks were lost: nothing scheduled them.
        lost = EnvironmentFactory()
        interrupted = EnvironmentFactory(
            status=Environment.Status.PROVISIONING, attempts=1, started_at=start
        )
        failed = _failed()

    with time_machine.travel(start + timedelta(seconds=settings.PROVISIONING_STALL_SECONDS + 60)):
        assert services.environments_resume_stalled() == 2

    for environment, attempts in ((lost, 1), (interrupted, 2)):
        wait_for(
            lambda environment=environment: Environment.objects.filter(
                pk=environment.pk, status=Environment.Status.ACTIVE
            ).exists(),
            what="a stalled environment to become active",
        )
        environment.refresh_from_db()
        assert environment.attempts == attempts
        assert environment.url == f"/w/{environment.public_id}/"
        assert (
            Event.objects.filter(
                name=events.ENVIRONMENT_ACTIVE, organization=environment.organization
            ).count()
            == 1
        )
    failed.refresh_from_db()
    assert failed.status == Environment.Status.FAILED
    assert failed.attempts == 4
