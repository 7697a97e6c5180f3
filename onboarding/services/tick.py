"""The beat tick: claim due steps, create their sends, hand them to the worker; and the sweep
that repairs what a lost worker left behind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from common.tasks import enqueue_on_commit

from ..models import Enrolment, Send, Step
from ..tasks import sends_deliver
from .enrolments import PLANNED_FIELDS, enrolment_completed_record, enrolment_plan_next

logger = logging.getLogger(__name__)


@dataclass
class TickReport:
    claimed: int = 0
    enqueued: int = 0
    swept: int = 0
    send_ids: list[int] = field(default_factory=list)


def onboarding_tick(*, limit: int | None = None) -> TickReport:
    """Claim every due step (up to `limit`), create its send row, and hand the sends to the
    worker in chunks.

    Cost grows with what is due, not with who is enrolled: due enrolments are read through the
    partial index on next_send_at. Two ticks at once never claim the same enrolment: rows are
    locked with SKIP LOCKED and their next_send_at is cleared in the same transaction, and a
    send row is unique per (enrolment, step) anyway.
    """
    limit = limit or settings.ONBOARDING_TICK_LIMIT
    report = TickReport()
    now = timezone.now()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            claimed, send_ids, stepless = _claim_due_postgresql(now=now, limit=limit)
        else:
            claimed, send_ids, stepless = _claim_due(now=now, limit=limit)
        _replan_stepless(stepless)
        report.claimed = claimed
        report.enqueued = len(send_ids)
        report.send_ids = send_ids
        _enqueue_sends(send_ids)
    report.swept = sends_sweep()
    return report


# One round trip: lock the due rows (SKIP LOCKED, through the partial index), clear their
# next_send_at, insert their sends (a conflict means the send exists: postponed earlier), and
# return every pending send of the claimed enrolments, and those whose step is gone (deleted
# by staff while they waited for it) or was settled already (staff reordered the steps, so
# the position they wait for names one they were sent).
_CLAIM_DUE_SQL = """
WITH due AS (
    SELECT id, sequence_id, next_position FROM onboarding_enrolment
    WHERE status = 'active' AND next_send_at <= %(now)s
    ORDER BY next_send_at LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE onboarding_enrolment AS enrolment SET next_send_at = NULL
    FROM due WHERE enrolment.id = due.id
    RETURNING enrolment.id, due.sequence_id, due.next_position
), inserted AS (
    INSERT INTO onboarding_send (public_id, enrolment_id, step_id, status, to_email, attempts, last_error,
                                 created_at, open_count, click_count)
    SELECT gen_random_uuid(), claimed.id, step.id, 'pending', '', 0, '', %(now)s, 0, 0
    FROM claimed JOIN onboarding_step AS step
         ON step.sequence_id = claimed.sequence_id AND step.position = claimed.next_position
    ON CONFLICT ON CONSTRAINT send_once_per_step DO NOTHING
    RETURNING id
)
SELECT 'send', id FROM inserted
UNION ALL
SELECT 'send', send.id FROM onboarding_send AS send JOIN claimed ON send.enrolment_id = claimed.id
WHERE send.status = 'pending'
UNION ALL
SELECT 'stepless', claimed.id FROM claimed
WHERE NOT EXISTS (SELECT 1 FROM onboarding_step AS step
                  WHERE step.sequence_id = claimed.sequence_id AND step.position = claimed.next_position)
UNION ALL
SELECT 'stepless', claimed.id FROM claimed
JOIN onboarding_step AS step ON step.sequence_id = claimed.sequence_id AND step.position = claimed.next_position
WHERE EXISTS (SELECT 1 FROM onboarding_send AS send
              WHERE send.enrolment_id = claimed.id AND send.step_id = step.id AND send.status <> 'pending')
UNION ALL
SELECT 'claimed', count(*) FROM claimed
"""


def _claim_due_postgresql(*, now: datetime, limit: int) -> tuple[int, list[int], list[int]]:
    """(how many were claimed, their pending send ids, the claimed enrolments whose step is gone)."""
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_DUE_SQL, {"now": now, "limit": limit})
        rows = cursor.fetchall()
    claimed = next(value for kind, value in rows if kind == "claimed")
    return (
        claimed,
        sorted(value for kind, value in rows if kind == "send"),
        sorted(value for kind, value in rows if kind == "stepless"),
    )


def _claim_due(*, now: datetime, limit: int) -> tuple[int, list[int], list[int]]:
    """The same claim with the ORM, for databases other than PostgreSQL (the SQLite default)."""
    due = list(
        Enrolment.objects.select_for_update(skip_locked=True)
        .filter(status=Enrolment.Status.ACTIVE, next_send_at__lte=now)
        .order_by("next_send_at")
        .values_list("id", "sequence_id", "next_position")[:limit]
    )
    if not due:
        return 0, [], []
    ids = [row[0] for row in due]
    Enrolment.objects.filter(pk__in=ids).update(next_send_at=None)
    step_ids = {
        (sequence_id, position): step_id
        for step_id, sequence_id, position in Step.objects.filter(
            sequence_id__in={row[1] for row in due}
        ).values_list("id", "sequence_id", "position")
    }
    Send.objects.bulk_create(
        [
            Send(enrolment_id=enrolment_id, step_id=step_ids[(sequence_id, position)], created_at=now)
            for enrolment_id, sequence_id, position in due
            if (sequence_id, position) in step_ids
        ],
        ignore_conflicts=True,
    )
    send_ids = list(
        Send.objects.filter(enrolment_id__in=ids, status=Send.Status.PENDING).order_by("id").values_list("id", flat=True)
    )
    settled = set(
        Send.objects.filter(enrolment_id__in=ids, step_id__in=step_ids.values()).exclude(status=Send.Status.PENDING)
        .values_list("enrolment_id", "step_id")
    )
    stepless = sorted(
        enrolment_id for enrolment_id, sequence_id, position in due
        if (sequence_id, position) not in step_ids or (enrolment_id, step_ids[(sequence_id, position)]) in settled
    )
    return len(due), send_ids, stepless


def _replan_stepless(enrolment_ids: list[int]) -> None:
    """Enrolments claimed for a step that no longer exists (staff deleted it while they waited;
    a step that was sent to anyone cannot be deleted), or that they were sent already (staff
    reordered the steps), move on to the step after it, timed from their last email as if it
    had never been there, or complete when none is left. Without this they would stay active
    with no next send time, never to be picked up again."""
    if not enrolment_ids:
        return
    enrolments = Enrolment.objects.select_related("user", "sequence", "organization").filter(
        pk__in=enrolment_ids, status=Enrolment.Status.ACTIVE
    )
    for enrolment in enrolments:
        base = enrolment.last_step_at or enrolment.enrolled_at
        if enrolment_plan_next(enrolment, after_position=enrolment.next_position, base=base):
            enrolment_completed_record(enrolment)
        enrolment.save(update_fields=PLANNED_FIELDS)


def _enqueue_sends(send_ids: list[int]) -> None:
    chunk = max(settings.ONBOARDING_SEND_CHUNK, 1)
    for start in range(0, len(send_ids), chunk):
        enqueue_on_commit(sends_deliver, send_ids[start : start + chunk])


@transaction.atomic
def sends_sweep() -> int:
    """Repair what a lost worker left behind. A send claimed (sending) longer than
    ONBOARDING_STALE_MINUTES ago may or may not have gone out: it is marked unknown, never sent
    again, and its sequence moves on. A pending send whose enrolment is not scheduled (its task
    was lost) is scheduled again for the next tick."""
    stale = timezone.now() - timedelta(minutes=settings.ONBOARDING_STALE_MINUTES)
    repaired = 0
    lost = list(
        Send.objects.filter(status=Send.Status.SENDING, claimed_at__lt=stale).values_list("enrolment_id", "id")[:500]
    )
    for enrolment_id, send_id in lost:
        enrolment = Enrolment.objects.select_for_update(skip_locked=True).filter(pk=enrolment_id).first()
        if enrolment is not None and _settle_unknown(enrolment, send_id=send_id):
            repaired += 1
    repaired += Enrolment.objects.filter(
        status=Enrolment.Status.ACTIVE,
        next_send_at__isnull=True,
        pk__in=Send.objects.filter(status=Send.Status.PENDING, created_at__lt=stale).values("enrolment_id"),
    ).update(next_send_at=timezone.now())
    return repaired


def enrolment_waits_for(status: str, next_send_at: datetime | None, next_position: int | None, position: int) -> bool:
    """An enrolment (its status, next send time and next position) is still waiting for the send
    of the step at `position`: active, claimed for it (no next send time), and at it. One the
    sweep or another worker moved on since must not be moved again from that step."""
    return status == Enrolment.Status.ACTIVE and next_send_at is None and next_position == position


def _settle_unknown(enrolment: Enrolment, *, send_id: int, error: str = "") -> bool:
    """With the enrolment locked: a send that may or may not have gone out (a lost worker, a
    connection lost after the message was written) is marked unknown, never sent again, keeps
    its frequency-cap slot, and its sequence moves on. False when it was no longer sending."""
    send = Send.objects.select_for_update().filter(pk=send_id, status=Send.Status.SENDING).select_related("step").first()
    if send is None:
        return False
    send.status = Send.Status.UNKNOWN
    send.last_error = error[:2000]
    send.save(update_fields=["status", "last_error"])
    if enrolment_waits_for(enrolment.status, enrolment.next_send_at, enrolment.next_position, send.step.position):
        enrolment.last_step_at = send.claimed_at
        if enrolment_plan_next(enrolment, after_position=send.step.position, base=send.claimed_at or timezone.now()):
            enrolment_completed_record(enrolment)
        enrolment.save(update_fields=PLANNED_FIELDS)
    return True


def send_record_unknown(send: Send, error: Exception) -> None:
    with transaction.atomic():
        enrolment = Enrolment.objects.select_for_update().filter(pk=send.enrolment_id).first()
        if enrolment is not None:
            _settle_unknown(enrolment, send_id=send.pk, error=f"{type(error).__name__}: {error}")
    logger.warning("onboarding send %s may or may not have gone out, not sent again: %s", send.pk, error)
