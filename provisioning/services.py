"""Every write to product environments.

No provisioner is ever called while a row is locked: the attempt is written and committed,
the backend is called, and the outcome is written in a new transaction. Every step is safe to
run twice: one environment per (organization, product) is a database constraint, backends are
idempotent (the http backend sends the environment id as its idempotency key), and a
settled environment is never moved again except by an explicit staff retry.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Organization, User
from catalog.models import Product
from common.tasks import enqueue_on_commit
from experiments import events
from experiments.services import event_record

from . import backends, signing, tasks
from .backends import attempt_time_limit
from .exceptions import CallbackRejected, PermanentProvisioningError, TransientProvisioningError
from .models import Environment
from .signals import environment_activated

logger = logging.getLogger(__name__)


def _schedule(environment: Environment, countdown: float = 0) -> None:
    enqueue_on_commit(tasks.environment_provision, environment.pk, countdown=countdown)


def environment_request(
    *, organization: Organization, product: Product, requested_by: User | None, plan: dict | None = None
) -> Environment:
    """Ask for the organization's environment of `product`; the worker provisions it.

    Invariant: at most one environment per organization and product, however often or
    concurrently this is called; an existing one is returned as it is.
    """
    with transaction.atomic():
        existing = Environment.objects.filter(organization=organization, product=product).first()
        if existing is not None:
            return existing
        try:
            with transaction.atomic():
                environment = Environment.objects.create(
                    organization=organization, product=product, requested_by=requested_by, plan=plan or {}
                )
        except IntegrityError:
            return Environment.objects.get(organization=organization, product=product)
        event_record(
            name=events.ENVIRONMENT_REQUESTED,
            user=requested_by,
            organization=organization,
            properties={"product": product.code, "provisioner": product.provisioner},
        )
        _schedule(environment)
        return environment


@dataclass(frozen=True)
class Attempt:
    """What the task should do next: nothing (done or settled), or retry after `retry_in`."""

    done: bool
    retry_in: float | None = None


def backoff_seconds(attempt: int) -> float:
    return min(settings.PROVISIONING_BACKOFF_SECONDS * (2 ** max(0, attempt - 1)), settings.PROVISIONING_BACKOFF_MAX_SECONDS)


def environment_provision(*, environment_id: int) -> Attempt:
    """Run one provisioning attempt for an environment (the worker's job).

    Invariant: an active or failed environment is left alone; a transient error is retried
    with exponential backoff until PROVISIONING_MAX_ATTEMPTS, then the environment fails with
    the last reason; a permanent error fails it at once. One attempt runs at a time: a call
    while an attempt holds the environment (`attempt_until`, a lease longer than the
    provisioner may take) spends no attempt and leaves the follow-up to that attempt, so
    duplicate deliveries can never use up the attempts of an environment being made. A
    worker that died mid-attempt leaves the lease to run out; the stall sweep comes later.
    """
    now = timezone.now()
    with transaction.atomic():
        environment = (
            Environment.objects.select_for_update(of=("self",)).select_related("product", "organization", "requested_by")
            .filter(pk=environment_id)
            .first()
        )
        if environment is None or environment.is_settled:
            return Attempt(done=True)
        if environment.attempt_until is not None and environment.attempt_until > now:
            return Attempt(done=True)  # an attempt is running: it records the outcome or retries
        if environment.attempts >= settings.PROVISIONING_MAX_ATTEMPTS:
            # Every attempt was used: the last one was lost (a worker killed, an error nobody
            # caught) or is waiting on a callback that never came. Never a further attempt.
            reason = _gave_up(environment.attempts, environment.last_error or "the last attempt did not finish.")
            environment_fail(environment_id=environment_id, reason=reason, attempt=environment.attempts)
            return Attempt(done=True)
        environment.status = Environment.Status.PROVISIONING
        environment.attempts += 1
        environment.started_at = environment.started_at or now
        environment.attempt_until = now + timedelta(seconds=attempt_lease_seconds())
        environment.save(update_fields=["status", "attempts", "started_at", "attempt_until", "updated_at"])

    attempt = environment.attempts
    # This attempt's outcome is written only while it is still the environment's current one
    # (staff may have started it again meanwhile).
    current = Environment.objects.filter(pk=environment_id, status=Environment.Status.PROVISIONING, attempts=attempt)
    try:
        outcome = backends.provision(environment)
    except PermanentProvisioningError as error:
        environment_fail(environment_id=environment_id, reason=error.message, attempt=attempt)
        return Attempt(done=True)
    except Exception as error:  # noqa: BLE001 - transient, or unforeseen: retried, within the attempts
        message = error.message if isinstance(error, TransientProvisioningError) else f"Unexpected error: {type(error).__name__}: {error}"
        if not isinstance(error, TransientProvisioningError):
            logger.exception("provisioning attempt %s of environment %s failed unexpectedly", attempt, environment.public_id)
        if attempt >= settings.PROVISIONING_MAX_ATTEMPTS:
            environment_fail(environment_id=environment_id, reason=_gave_up(attempt, message), attempt=attempt)
            return Attempt(done=True)
        current.update(last_error=message[:2000], attempt_until=None, updated_at=timezone.now())
        return Attempt(done=False, retry_in=backoff_seconds(attempt))
    if isinstance(outcome, backends.Accepted):
        # The product calls back; if it never does, the stall sweep asks again, and once every
        # attempt was used the environment fails (at the start of the next attempt).
        current.update(
            last_error=f"{environment.product.name} accepted the request; no callback came.",
            attempt_until=None,
            updated_at=timezone.now(),
        )
        return Attempt(done=True)
    environment_activate(environment_id=environment_id, url=outcome.url, external_id=outcome.external_id)
    return Attempt(done=True)


def attempt_lease_seconds() -> float:
    """How long one attempt holds its environment: a little longer than the worker lets an
    attempt run (backends.attempt_time_limit), so a lease never ends under a running attempt
    and a killed attempt's environment is free again before the stall sweep comes."""
    return attempt_time_limit() + 5.0


def _gave_up(attempts: int, last_error: str) -> str:
    return f"Gave up after {attempts} attempts. Last error: {last_error}"


@transaction.atomic
def environment_activate(*, environment_id: int, url: str, external_id: str = "") -> Environment:
    """Mark an environment active with its URL; recorded and announced exactly once."""
    environment = Environment.objects.select_for_update(of=("self",)).select_related("organization", "product").get(pk=environment_id)
    if environment.status == Environment.Status.ACTIVE:
        return environment
    if environment.status == Environment.Status.FAILED:
        # A late success after staff saw a failure still wins: the environment exists.
        logger.warning("environment %s became active after it had failed", environment.public_id)
    environment.status = Environment.Status.ACTIVE
    environment.url = url
    environment.external_id = external_id
    environment.active_at = timezone.now()
    environment.failure_reason = ""
    environment.attempt_until = None
    environment.save(update_fields=["status", "url", "external_id", "active_at", "failure_reason", "attempt_until", "updated_at"])
    event_record(
        name=events.ENVIRONMENT_ACTIVE,
        user=environment.requested_by,
        organization=environment.organization,
        properties={
            "product": environment.product.code,
            "attempts": environment.attempts,
            "seconds_to_active": round((environment.active_at - environment.requested_at).total_seconds(), 3),
        },
    )
    environment_activated.send(sender=Environment, environment=environment)
    return environment


@transaction.atomic
def environment_fail(*, environment_id: int, reason: str, attempt: int | None = None, provisioning_only: bool = False) -> Environment:
    """Mark an environment failed with a reason staff can act on. Once only; with `attempt`,
    only while that attempt is still the current one, and with `provisioning_only` (a product's
    callback) only while an attempt is under way: an outcome of an attempt staff have since
    started again changes nothing."""
    environment = Environment.objects.select_for_update(of=("self",)).select_related("organization", "product").get(pk=environment_id)
    if environment.is_settled:
        return environment
    if attempt is not None and environment.attempts != attempt:
        return environment
    if provisioning_only and environment.status != Environment.Status.PROVISIONING:
        return environment
    environment.status = Environment.Status.FAILED
    environment.failure_reason = reason[:2000]
    environment.last_error = reason[:2000]
    environment.failed_at = timezone.now()
    environment.attempt_until = None
    environment.save(update_fields=["status", "failure_reason", "last_error", "failed_at", "attempt_until", "updated_at"])
    event_record(
        name=events.ENVIRONMENT_FAILED,
        user=environment.requested_by,
        organization=environment.organization,
        properties={"product": environment.product.code, "attempts": environment.attempts},
    )
    # An error, so that operators' alerting on the logs hears of it: staff retry it from the admin.
    logger.error(
        "environment %s of %s (%s) failed: %s",
        environment.public_id, environment.organization, environment.product.code, environment.failure_reason,
    )
    return environment


@transaction.atomic
def environment_retry(*, environment: Environment) -> Environment:
    """Staff: try a failed environment again from the start."""
    environment = Environment.objects.select_for_update().get(pk=environment.pk)
    if environment.status != Environment.Status.FAILED:
        return environment
    environment.status = Environment.Status.REQUESTED
    environment.attempts = 0
    environment.failure_reason = ""
    environment.failed_at = None
    environment.save(update_fields=["status", "attempts", "failure_reason", "failed_at", "updated_at"])
    _schedule(environment)
    return environment


def environments_resume_stalled() -> int:
    """Schedule again every environment that has waited too long (a lost task, a crashed
    worker, a product that never called back). Safe because provisioning is idempotent."""
    cutoff = timezone.now() - timedelta(seconds=settings.PROVISIONING_STALL_SECONDS)
    stalled = list(
        Environment.objects.filter(
            status__in=[Environment.Status.REQUESTED, Environment.Status.PROVISIONING], updated_at__lt=cutoff
        ).values_list("pk", flat=True)[:500]
    )
    with transaction.atomic():
        for environment_id in stalled:
            Environment.objects.filter(pk=environment_id).update(updated_at=timezone.now())
            _schedule(Environment(pk=environment_id))
    return len(stalled)


def environment_callback(*, body: bytes, signature: str) -> Environment:
    """Apply a product's signed callback (docs/provisioning.md). CallbackRejected says why not."""
    try:
        data = json.loads(body)
    except ValueError:
        raise CallbackRejected("The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise CallbackRejected("The body must be a JSON object.")
    environment_id = data.get("environment_id")
    environment = None
    if isinstance(environment_id, str):
        try:
            environment = Environment.objects.select_related("product").filter(public_id=environment_id).first()
        except Exception:  # noqa: BLE001 - a malformed UUID is bad input, reported below
            environment = None
    if environment is None:
        raise CallbackRejected("environment_id does not name a known environment.", status=404)
    try:
        secret = backends.product_secret(environment.product)
    except PermanentProvisioningError as error:
        raise CallbackRejected(error.message, status=503) from None
    problem = signing.verify(
        secret, body, signature, tolerance_seconds=settings.PROVISIONING_SIGNATURE_TOLERANCE_SECONDS
    )
    if problem:
        raise CallbackRejected(f"Signature refused: {problem}.", status=401)
    status = data.get("status")
    if status == "active":
        if not backends.valid_workspace_url(data.get("url")):
            raise CallbackRejected("status active needs a url, an absolute http(s) URL.")
        return environment_activate(
            environment_id=environment.pk, url=data["url"], external_id=str(data.get("external_id") or "")[:200]
        )
    if status == "failed":
        reason = data.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise CallbackRejected("status failed needs a reason, a non-empty string.")
        return environment_fail(
            environment_id=environment.pk, reason=f"{environment.product.name}: {reason.strip()}", provisioning_only=True
        )
    raise CallbackRejected(f"status must be 'active' or 'failed', got {status!r}.")
