"""Enrolment: who gets which sequence (the onboarding experiment), the plan of each enrolment's
next step, and its exit.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Organization, User
from experiments.services import event_record, experiment_assign

from .. import events
from ..models import Enrolment, Sequence, Step
from .quiet_hours import quiet_hours_end, user_zone

logger = logging.getLogger(__name__)


def sequence_steps(sequence_id: int, cache: dict[int, list[Step]] | None = None) -> list[Step]:
    if cache is not None and sequence_id in cache:
        return cache[sequence_id]
    steps = list(Step.objects.filter(sequence_id=sequence_id).order_by("position"))
    if cache is not None:
        cache[sequence_id] = steps
    return steps


PLANNED_FIELDS = ["status", "next_position", "next_send_at", "finished_at", "last_step_at"]


def enrolment_plan_next(
    enrolment: Enrolment, *, after_position: int | None, base: datetime, steps: list[Step] | None = None
) -> bool:
    """Point the enrolment (in memory) at the step after `after_position` (or the first) and set
    its time, out of the recipient's quiet hours; or complete it when there is none (True).
    `base` is when the previous step went out (or was skipped)."""
    steps = steps if steps is not None else sequence_steps(enrolment.sequence_id)
    step = next((step for step in steps if after_position is None or step.position > after_position), None)
    if step is None:
        enrolment.status = Enrolment.Status.COMPLETED
        enrolment.next_send_at = None
        enrolment.finished_at = timezone.now()
        return True
    start = enrolment.enrolled_at if step.delay_from == Step.DelayFrom.ENROLMENT or after_position is None else base
    enrolment.next_position = step.position
    enrolment.next_send_at = quiet_hours_end(start + step.delay, user_zone(enrolment.user))
    return False


def enrolment_completed_record(enrolment: Enrolment) -> None:
    event_record(
        name=events.ONBOARDING_COMPLETED,
        user=enrolment.user,
        organization=enrolment.organization,
        properties=enrolment_variant_properties(enrolment),
    )


def enrolment_variant_properties(enrolment: Enrolment) -> dict[str, str]:
    return {
        "sequence": enrolment.sequence.key if enrolment.sequence_id else "",
        "experiment": enrolment.experiment_key,
        "variation": enrolment.variation_key,
    }


def enrolment_create(*, user: User, organization: Organization | None = None) -> Enrolment | None:
    """Enrol a new user: the onboarding experiment chooses their sequence, or none (holdout).

    Invariants: at most one enrolment per user (a unique constraint; enrolling twice returns the
    first); the experiment exposure is stored once with it; while the experiment is absent or
    not running everyone gets ONBOARDING_DEFAULT_SEQUENCE, or nobody is enrolled if that is
    empty. Never raises into the signup that calls it: a failure is logged and the user simply
    gets no onboarding emails.
    """
    try:
        with transaction.atomic():
            return _enrolment_create(user=user, organization=organization)
    except Exception:  # noqa: BLE001 - onboarding must never break a signup
        logger.exception("could not enrol user %s in onboarding", user.public_id)
        return None


def _enrolment_create(*, user: User, organization: Organization | None) -> Enrolment | None:
    existing = Enrolment.objects.filter(user=user).first()
    if existing is not None:
        return existing
    experiment_key, variation_key, sequence_key = "", "", settings.ONBOARDING_DEFAULT_SEQUENCE or ""
    assignment = experiment_assign(
        experiment_key=settings.ONBOARDING_EXPERIMENT_KEY, user=user, organization=organization
    )
    if assignment is not None:
        experiment_key, variation_key = assignment.experiment_key, assignment.variation_key
        value = assignment.value
        if isinstance(value, dict):
            value = value.get("sequence")
        sequence_key = "" if assignment.holdout or not value else str(value)
    elif not sequence_key:
        return None
    sequence = Sequence.objects.filter(key=sequence_key).first() if sequence_key else None
    if sequence_key and sequence is None:
        # A misconfigured experiment: this user is exposed to the variation but gets no emails.
        # An error, so that operators' alerting hears of it before the analysis is read.
        logger.error(
            "onboarding experiment %s: variation %s names unknown sequence %r; %s gets no onboarding emails",
            experiment_key, variation_key, sequence_key, user.public_id,
        )
    try:
        with transaction.atomic():
            enrolment = Enrolment.objects.create(
                user=user,
                organization=organization,
                sequence=sequence,
                experiment_key=experiment_key,
                variation_key=variation_key,
                status=Enrolment.Status.ACTIVE if sequence is not None else Enrolment.Status.HOLDOUT,
            )
    except IntegrityError:
        return Enrolment.objects.get(user=user)
    if sequence is not None:
        if enrolment_plan_next(enrolment, after_position=None, base=enrolment.enrolled_at):
            enrolment_completed_record(enrolment)
        enrolment.save(update_fields=PLANNED_FIELDS)
    event_record(
        name=events.ONBOARDING_ENROLLED,
        user=user,
        organization=organization,
        properties={**enrolment_variant_properties(enrolment), "holdout": sequence is None},
    )
    return enrolment


def enrolment_exit(enrolment: Enrolment, *, reason: str) -> None:
    """Stop a (locked) enrolment for good, recording why."""
    enrolment.status = Enrolment.Status.EXITED
    enrolment.exit_reason = reason
    enrolment.next_send_at = None
    enrolment.finished_at = timezone.now()
    if reason == Enrolment.ExitReason.CONVERTED and enrolment.converted_at is None:
        enrolment.converted_at = timezone.now()
    enrolment.save(update_fields=["status", "exit_reason", "next_send_at", "finished_at", "converted_at"])
    event_record(
        name=events.ONBOARDING_EXITED,
        user=enrolment.user,
        organization=enrolment.organization,
        properties={**enrolment_variant_properties(enrolment), "reason": reason},
    )
