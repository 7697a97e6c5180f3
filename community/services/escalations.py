"""Escalations: the beat tick that escalates due questions, the round robin that assigns them to
support engineers, resolving them, and flagging unanswered ones to the support lead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from common.tasks import enqueue_on_commit
from experiments.services import event_record, events_record

from .. import events, notifications
from ..exceptions import (
    PermissionDenied,
)
from ..models import (
    Escalation,
    Question,
    SupportEngineer,
)
from ..tasks import escalations_notify as escalations_notify_task
from .members import moderator_require


def questions_escalate(*, question_ids: list[int], now: datetime | None = None) -> list[Escalation]:
    """Escalate due questions: clock -> escalated, one escalation each, assigned round robin.

    Invariant: a question is escalated once. The caller holds the rows' locks (the tick's
    FOR UPDATE SKIP LOCKED); the state change is conditional (still running and due), and the
    escalation is unique per question, so a second tick, or a concurrent one, does nothing.
    One statement per step for the whole batch, whatever its size; the engineers are told by
    one task after the commit.
    """
    now = now or timezone.now()
    questions = list(
        Question.objects.select_related("author", "organization", "policy")
        .filter(pk__in=question_ids, clock=Question.Clock.RUNNING, deadline__lte=now)
        .order_by("deadline", "pk")
    )
    if not questions:
        return []
    Question.objects.filter(pk__in=[q.pk for q in questions], clock=Question.Clock.RUNNING).update(
        clock=Question.Clock.ESCALATED, deadline=None
    )
    engineers = _engineers_lock()
    taken: dict[int, int] = {}
    escalations = []
    for question in questions:
        escalation = Escalation(question=question, support_tier=question.support_tier, escalated_at=now)
        engineer = _engineer_next(engineers, now=now)
        if engineer is not None:
            taken[engineer.pk] = taken.get(engineer.pk, 0) + 1
            escalation.engineer = engineer
            escalation.state = Escalation.State.ASSIGNED
            escalation.assigned_at = now
            escalation.reminder_due_at = now + timedelta(seconds=int(question.policy.reminder_hours * 3600))
        escalations.append(escalation)
    Escalation.objects.bulk_create(escalations)
    by_pk = {engineer.pk: engineer for engineer in engineers}
    for engineer_id, count in sorted(taken.items()):
        SupportEngineer.objects.filter(pk=engineer_id).update(
            open_assignments=F("open_assignments") + count, last_assigned_at=by_pk[engineer_id].last_assigned_at
        )
    # One event per escalation, naming the engineer it went to (an escalation assigned later,
    # from the queue, records its own assignment event).
    events_record(
        events=[
            {
                "name": events.QUESTION_ESCALATED,
                "user": escalation.question.author,
                "organization": escalation.question.organization,
                "properties": {
                    "question": str(escalation.question.public_id),
                    "tier": escalation.question.support_tier,
                    "engineer": str(escalation.engineer.user.public_id) if escalation.engineer else "",
                },
            }
            for escalation in escalations
        ]
    )
    assigned = [escalation.pk for escalation in escalations if escalation.engineer is not None]
    if assigned:
        enqueue_on_commit(escalations_notify_task, assigned)
    return escalations


def escalations_notify(*, escalation_ids: list[int]) -> int:
    """Email each escalation's engineer that it is theirs (from the worker, after the tick)."""
    escalations = Escalation.objects.select_related("question", "engineer__user").filter(
        pk__in=escalation_ids, state=Escalation.State.ASSIGNED
    )
    sent = 0
    with transaction.atomic():
        for escalation in escalations:
            notifications.notify_engineer_assigned(escalation=escalation, engineer=escalation.engineer)
            sent += 1
    return sent


def _engineer_next(engineers: list[SupportEngineer], *, now: datetime) -> SupportEngineer | None:
    """Round robin: the on-duty engineer under their cap assigned least recently (then by pk).
    Moves the chosen one's in-memory count and time, so a batch keeps rotating."""
    available = [engineer for engineer in engineers if engineer.open_assignments < engineer.cap]
    if not available:
        return None
    epoch = datetime.min.replace(tzinfo=now.tzinfo)
    engineer = min(available, key=lambda e: (e.last_assigned_at or epoch, e.pk))
    engineer.open_assignments += 1
    # Strictly increasing within a batch, so the rotation goes on at one `now`.
    engineer.last_assigned_at = max(now, max((e.last_assigned_at or epoch) for e in engineers) + timedelta(microseconds=1))
    return engineer


def _engineers_lock() -> list[SupportEngineer]:
    return list(SupportEngineer.objects.select_for_update().filter(on_duty=True).select_related("user").order_by("pk"))


def _escalation_assign(escalation: Escalation, *, now: datetime, engineers: list[SupportEngineer] | None = None) -> bool:
    """Give a queued escalation to the on-duty engineer under their cap who was assigned least
    recently (round robin). Returns False, leaving it queued, when everyone is at their cap."""
    if engineers is None:
        engineers = _engineers_lock()
    engineer = _engineer_next(engineers, now=now)
    if engineer is None:
        return False
    SupportEngineer.objects.filter(pk=engineer.pk).update(
        open_assignments=F("open_assignments") + 1, last_assigned_at=engineer.last_assigned_at
    )
    policy = escalation.question.policy
    escalation.engineer = engineer
    escalation.state = Escalation.State.ASSIGNED
    escalation.assigned_at = now
    escalation.reminder_due_at = now + timedelta(seconds=int(policy.reminder_hours * 3600))
    escalation.save(update_fields=["engineer", "state", "assigned_at", "reminder_due_at", "lead_flagged_at"])
    event_record(
        name=events.ESCALATION_ASSIGNED,
        user=engineer.user,
        properties={"question": str(escalation.question.public_id), "tier": escalation.support_tier},
    )
    notifications.notify_engineer_assigned(escalation=escalation, engineer=engineer)
    return True


def escalation_resolve(question: Question, *, now: datetime, actor: User | None) -> None:
    """Close the question's open escalation, if any, and free its engineer's slot."""
    escalation = (
        Escalation.objects.select_for_update()
        .filter(question=question)
        .exclude(state=Escalation.State.RESOLVED)
        .first()
    )
    if escalation is None:
        return
    if escalation.engineer_id is not None:
        SupportEngineer.objects.filter(pk=escalation.engineer_id, open_assignments__gt=0).update(
            open_assignments=F("open_assignments") - 1
        )
    escalation.state = Escalation.State.RESOLVED
    escalation.resolved_at = now
    escalation.save(update_fields=["state", "resolved_at"])
    event_record(
        name=events.ESCALATION_RESOLVED,
        user=actor,
        organization=question.organization,
        distinct_id=None if actor or question.organization else f"question:{question.public_id}",
        properties={"question": str(question.public_id), "tier": escalation.support_tier},
    )


@transaction.atomic
def escalation_reassign(*, moderator: User, escalation_id: int) -> bool:
    """Staff put an escalation back through the round robin (an engineer went off duty)."""
    moderator_require(moderator)
    now = timezone.now()
    escalation = Escalation.objects.select_related("question__policy").select_for_update(of=("self",)).get(pk=escalation_id)
    if escalation.state == Escalation.State.RESOLVED:
        return False
    engineers = _engineers_lock()
    previous = escalation.engineer_id
    if previous is not None:
        SupportEngineer.objects.filter(pk=previous, open_assignments__gt=0).update(
            open_assignments=F("open_assignments") - 1
        )
        escalation.state, escalation.engineer, escalation.assigned_at = Escalation.State.QUEUED, None, None
        escalation.lead_flagged_at = None
    if not _escalation_assign(escalation, now=now, engineers=[e for e in engineers if e.pk != previous]):
        escalation.reminder_due_at = None
        escalation.save(update_fields=["state", "engineer", "assigned_at", "reminder_due_at", "lead_flagged_at"])
        return False
    return True


@dataclass
class TickReport:
    escalated: int = 0
    assigned_from_queue: int = 0
    lead_flagged: int = 0


def escalations_due(*, now: datetime, batch: int) -> list[int]:
    """Ids of due questions, oldest deadline first, locked; rows another tick holds are skipped.
    Reads the partial index on deadline (running questions only)."""
    return list(
        Question.objects.select_for_update(skip_locked=True)
        .filter(clock=Question.Clock.RUNNING, deadline__lte=now)
        .order_by("deadline")
        .values_list("pk", flat=True)[:batch]
    )


def escalation_tick(*, now: datetime | None = None) -> TickReport:
    """Beat: escalate every due question, give queued escalations to engineers with room, and
    flag to the support lead the assigned ones still unanswered after the policy's time.

    Cost grows with what is due, not with all questions: each small batch of due rows is claimed
    through the partial deadline index with FOR UPDATE SKIP LOCKED and escalated in its own
    transaction, so two ticks at once share the work and never escalate a question twice.
    """
    now = now or timezone.now()
    report = TickReport()
    batch = settings.COMMUNITY_TICK_BATCH
    while report.escalated < settings.COMMUNITY_TICK_MAX:
        with transaction.atomic():
            ids = escalations_due(now=now, batch=batch)
            escalated = len(questions_escalate(question_ids=ids, now=now)) if ids else 0
        report.escalated += escalated
        if len(ids) < batch or not escalated:
            break
    report.assigned_from_queue = escalations_assign_queued(now=now)
    report.lead_flagged = escalations_flag_to_lead(now=now)
    return report


@transaction.atomic
def escalations_assign_queued(*, now: datetime | None = None) -> int:
    """Assign escalations left queued (everyone was at their cap), oldest first."""
    now = now or timezone.now()
    queued = list(
        Escalation.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("question__policy")
        .filter(state=Escalation.State.QUEUED)
        .order_by("escalated_at", "pk")[:100]
    )
    if not queued:
        return 0
    engineers = _engineers_lock()
    assigned = 0
    for escalation in queued:
        if not _escalation_assign(escalation, now=now, engineers=engineers):
            break
        assigned += 1
    return assigned


@transaction.atomic
def escalations_flag_to_lead(*, now: datetime | None = None) -> int:
    """Tell the support lead about assigned escalations still unanswered after the policy's
    reminder time. Each is flagged once (the row is locked and marked in one transaction)."""
    now = now or timezone.now()
    due = list(
        Escalation.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("question", "engineer__user")
        .filter(state=Escalation.State.ASSIGNED, lead_flagged_at__isnull=True, reminder_due_at__lte=now)
        .order_by("reminder_due_at")[:200]
    )
    if not due:
        return 0
    leads = list(
        SupportEngineer.objects.filter(is_lead=True).select_related("user").values_list("user__email", flat=True)
    ) or [settings.COMMUNITY_SUPPORT_LEAD_EMAIL]
    for escalation in due:
        escalation.lead_flagged_at = now
        escalation.save(update_fields=["lead_flagged_at"])
        event_record(
            name=events.ESCALATION_LEAD_FLAGGED,
            user=escalation.engineer.user if escalation.engineer else None,
            distinct_id=None if escalation.engineer else f"question:{escalation.question.public_id}",
            properties={"question": str(escalation.question.public_id), "tier": escalation.support_tier},
        )
        notifications.notify_lead_unanswered(escalation=escalation, lead_emails=leads)
    return len(due)


def support_engineer_set(*, user: User, on_duty: bool = True, cap: int = 10, is_lead: bool = False) -> SupportEngineer:
    """Mark a staff user as a support engineer (or update their duty, cap and lead role)."""
    if not user.is_staff:
        raise PermissionDenied("Support engineers are staff users.")
    engineer, _ = SupportEngineer.objects.update_or_create(
        user=user, defaults={"on_duty": on_duty, "cap": cap, "is_lead": is_lead}
    )
    return engineer
