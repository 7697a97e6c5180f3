"""The builtin provisioner through the real worker: one environment, one announcement."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from catalog.models import Product
from experiments import events
from experiments.models import Event
from provisioning import services, tasks
from provisioning.models import Environment

from ..conftest import organization_on, wait_for
from .conftest import environment_events

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _status(environment: Environment) -> str:
    environment.refresh_from_db()
    return environment.status


def _worker_finished(worker, task_id: str) -> bool:
    return f"[{task_id}] succeeded" in worker.log()


def _in_threads(count: int, work) -> list[str]:
    """Run `work` in `count` threads released together; returns the errors they raised."""
    barrier = threading.Barrier(count)
    errors: list[str] = []

    def run() -> None:
        try:
            barrier.wait()
            work()
        except Exception as error:  # noqa: BLE001 - reported by the caller's assertion
            errors.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


def test_a_trial_ends_with_its_environment_active_and_announced_once(catalog, celery_worker):
    organization, admin = organization_on("standard")
    environment = Environment.objects.get(organization=organization)
    assert environment.product.code == "tracker"
    assert environment.plan == {"edition": "standard", "seat_limit": 100}
    assert environment.requested_by == admin

    wait_for(
        lambda: _status(environment) == Environment.Status.ACTIVE,
        what="the environment to become active",
    )
    assert environment.url == f"/w/{environment.public_id}/"
    assert environment.external_id == f"builtin-{environment.public_id}"
    assert environment.attempts == 1
    assert environment.active_at is not None
    assert environment.failure_reason == ""
    active = Event.objects.get(name=events.ENVIRONMENT_ACTIVE, organization=organization)
    assert active.user == admin
    assert active.properties["product"] == "tracker"
    assert active.properties["attempts"] == 1
    assert environment_events(events.ENVIRONMENT_REQUESTED, environment) == 1

    # Asking again returns the same environment and records nothing.
    again = services.environment_request(
        organization=organization, product=environment.product, requested_by=admin
    )
    assert again.pk == environment.pk
    # Provisioning a settled environment again, here and through the worker, leaves it alone.
    assert services.environment_provision(environment_id=environment.pk) == services.Attempt(
        done=True
    )
    assert services.environment_provision(environment_id=environment.pk) == services.Attempt(
        done=True
    )
    task_ids = [tasks.environment_provision.delay(environment.pk).id for _ in range(2)]
    for task_id in task_ids:
        wait_for(
            lambda task_id=task_id: _worker_finished(celery_worker, task_id), what=f"task {task_id}"
        )

    assert Environment.objects.filter(organization=organization).count() == 1
    environment.refresh_from_db()
    assert environment.status == Environment.Status.ACTIVE
    assert environment.attempts == 1
    assert environment_events(events.ENVIRONMENT_REQUESTED, environment) == 1
    assert environment_events(events.ENVIRONMENT_ACTIVE, environment) == 1


def test_concurrent_requests_and_provisioning_make_one_environment_and_one_event(
    catalog, celery_worker
):
    organization, admin = organization_on("standard")
    wiki = Product.objects.get(code="wiki")
    assert wiki.provisioner == Product.Provisioner.BUILTIN

    requested: list[int] = []
    errors = _in_threads(
        8,
        lambda: requested.append(
            services.environment_request(
                organization=organization, product=wiki, requested_by=admin
            ).pk
        ),
    )
    assert errors == []
    assert len(requested) == 8
    assert len(set(requested)) == 1
    environment = Environment.objects.get(organization=organization, product=wiki)
    assert environment.pk == requested[0]

    # While the worker works on the task the request scheduled, provision the same
    # environment from more worker tasks and from threads here, all at once.
    task_ids = [tasks.environment_provision.delay(environment.pk).id for _ in range(3)]
    errors = _in_threads(4, lambda: services.environment_provision(environment_id=environment.pk))
    assert errors == []
    for task_id in task_ids:
        wait_for(
            lambda task_id=task_id: _worker_finished(celery_worker, task_id), what=f"task {task_id}"
        )
    wait_for(
        lambda: _status(environment) == Environment.Status.ACTIVE,
        what="the environment to become active",
    )

    assert Environment.objects.filter(organization=organization, product=wiki).count() == 1
    assert environment.url == f"/w/{environment.public_id}/"
    assert environment_events(events.ENVIRONMENT_REQUESTED, environment) == 1
    assert environment_events(events.ENVIRONMENT_ACTIVE, environment) == 1
    assert environment_events(events.ENVIRONMENT_FAILED, environment) == 0


@pytest.mark.django_db(transaction=True)
def test_provisioning_calls_while_an_attempt_runs_spend_no_attempt(catalog, monkeypatch):
    """A duplicate delivery of the provisioning task (a redelivered message, a double click,
    the stall sweep) that arrives while an attempt is still running leaves that attempt to
    finish: it never starts another one, so it can never use up the environment's attempts
    and fail an environment that is being made."""
    from provisioning import backends

    organization, admin = organization_on("standard")
    wiki = Product.objects.get(code="wiki")
    environment = services.environment_request(organization=organization, product=wiki, requested_by=admin)
    real_provision = backends.provision
    inside, release = threading.Event(), threading.Event()

    def slow_first(target):
        if not inside.is_set():
            inside.set()
            release.wait(timeout=30)
        return real_provision(target)

    monkeypatch.setattr(backends, "provision", slow_first)
    first: list = []

    def run_first() -> None:
        try:
            first.append(services.environment_provision(environment_id=environment.pk))
        finally:
            connection.close()  # this thread's own connection

    runner = threading.Thread(target=run_first)
    runner.start()
    try:
        assert inside.wait(timeout=30)
        duplicates = [services.environment_provision(environment_id=environment.pk) for _ in range(6)]
    finally:
        release.set()
        runner.join(timeout=30)
    assert all(duplicate.done for duplicate in duplicates)
    environment.refresh_from_db()
    assert environment.status == Environment.Status.ACTIVE and environment.attempts == 1
    assert first[0].done
    assert environment_events(events.ENVIRONMENT_FAILED, environment) == 0
