"""Sending: deliver chunks of sends, each exactly once, and move their enrolments on.

Lock order: the enrolment row, then its send row; the frequency cap's advisory lock after both.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from common.json_rows import json_rows, timestamp_text
from experiments.services import event_record, events_store

from .. import events, selectors
from ..mail import OutcomeUnknown, Sender
from ..models import Enrolment, Send, Step
from .enrolments import (
    PLANNED_FIELDS,
    enrolment_completed_record,
    enrolment_exit,
    enrolment_plan_next,
    enrolment_variant_properties,
    sequence_steps,
)
from .messages import Links, email_of
from .quiet_hours import quiet_hours_end, user_zone
from .suppression import MarketingClaim, marketing_email_claim_many, marketing_email_release
from .tick import enrolment_waits_for, send_record_unknown

logger = logging.getLogger(__name__)


def _transition(send: Send, *, source: str, target: str, **fields) -> bool:
    """Move the send from `source` to `target`; False if it was no longer in `source`."""
    return Send.objects.filter(pk=send.pk, status=source).update(status=target, **fields) == 1


def _decide(send: Send, *, now: datetime, paid: set[int], skip: bool, steps: dict[int, list[Step]]) -> str:
    """With the enrolment locked: act on every reason not to send now and say which, or
    "send". The rare outcomes here write row by row; the usual one is batched by the caller."""
    enrolment = send.enrolment
    if send.status != Send.Status.PENDING:
        return "done"  # sent, skipped or claimed by an earlier run of the task
    if enrolment.next_send_at is not None and enrolment.next_send_at > now:
        return "not due"  # a stale copy of the task: the step was postponed since
    if enrolment.status != Enrolment.Status.ACTIVE:
        _transition(send, source=Send.Status.PENDING, target=Send.Status.EXITED)
        return "exited"
    user, organization = enrolment.user, enrolment.organization
    if enrolment.sequence.exit_on_conversion and organization is not None and organization.pk in paid:
        if not _transition(send, source=Send.Status.PENDING, target=Send.Status.EXITED):
            return "done"
        enrolment_exit(enrolment, reason=Enrolment.ExitReason.CONVERTED)
        return "converted"
    if skip:
        if not _transition(send, source=Send.Status.PENDING, target=Send.Status.SKIPPED):
            return "done"
        event_record(
            name=events.ONBOARDING_EMAIL_SKIPPED,
            user=user,
            organization=organization,
            properties={**enrolment_variant_properties(enrolment), "step": send.step.position, "condition": send.step.skip_condition},
        )
        enrolment.last_step_at = now
        if enrolment_plan_next(enrolment, after_position=send.step.position, base=now, steps=sequence_steps(enrolment.sequence_id, steps)):
            enrolment_completed_record(enrolment)
        enrolment.save(update_fields=PLANNED_FIELDS)
        return "skipped"
    later = quiet_hours_end(now, user_zone(user))
    if later > now:
        enrolment.next_send_at = later
        enrolment.save(update_fields=["next_send_at"])
        return "quiet"
    return "send"


def _claim_sends(sends: list[Send], *, now: datetime) -> set[int]:
    """pending -> sending for these sends, in one statement; the ids that moved."""
    if not sends:
        return set()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE onboarding_send AS send SET status = 'sending', claimed_at = %s, to_email = claim.email "
                "FROM jsonb_to_recordset(%s::jsonb) AS claim(id bigint, email text) "
                "WHERE send.id = claim.id AND send.status = 'pending' RETURNING send.id",
                [now, json_rows(["id", "email"], ((send.pk, send.enrolment.user.email) for send in sends))],
            )
            return {row[0] for row in cursor.fetchall()}
    return {
        send.pk
        for send in sends
        if _transition(send, source=Send.Status.PENDING, target=Send.Status.SENDING, claimed_at=now, to_email=send.enrolment.user.email)
    }


# What sending reads of a send, its enrolment, user and organization: reading and converting
# every column of the four rows (the password hash, a dozen timestamps) cost more than the rest
# of the chunk's statements. A field left out is read with a query of its own when used, so
# tests/onboarding/test_chunk_queries.py checks that a chunk's queries do not grow with it.
_SEND_FIELDS = (
    "public_id", "enrolment_id", "step_id", "status",
    *(f"enrolment__{name}" for name in (
        "user_id", "organization_id", "sequence_id", "experiment_key", "variation_key", "status", "exit_reason",
        "next_position", "next_send_at", "enrolled_at", "last_step_at", "converted_at", "finished_at",
    )),
    "enrolment__user__email", "enrolment__user__first_name", "enrolment__user__time_zone", "enrolment__user__public_id",
    "enrolment__organization__name", "enrolment__organization__public_id",
)


def _prepare_many(send_ids: list[int], steps: dict[int, list[Step]]) -> dict[int, str | tuple[Send, MarketingClaim]]:
    """Decide for every send of a chunk, with their enrolments locked (in id order), and claim
    those that go out now (pending -> sending, plus a frequency cap slot each), in one
    transaction committed before any SMTP call.

    Every writer of a send locks its enrolment first, so the enrolment locks order them. The
    send's own columns come from the same statement and may predate the lock, so every change
    of a send's status is a conditional update from the status it must have (_transition)."""
    results: dict[int, str | tuple[Send, MarketingClaim]] = {send_id: "missing" for send_id in send_ids}
    with transaction.atomic():
        sends = list(
            Send.objects.select_related("enrolment__user", "enrolment__organization")
            .only(*_SEND_FIELDS)
            .select_for_update(of=("enrolment",))
            .filter(pk__in=send_ids)
            .order_by("enrolment_id", "id")
        )
        _attach_steps(sends, steps)
        now = timezone.now()
        paid = selectors.organizations_paid(
            organization_ids={send.enrolment.organization_id for send in sends if send.enrolment.organization_id}
        )
        skip = _skip_conditions_met(sends)
        ready: list[Send] = []
        for send in sends:
            outcome = _decide(send, now=now, paid=paid, skip=send.pk in skip, steps=steps)
            if outcome == "send":
                ready.append(send)
            else:
                results[send.pk] = outcome
        claimed_ids = _claim_sends(ready, now=now)
        ready = [send for send in ready if send.pk in claimed_ids]
        for send in sends:
            if send.pk not in claimed_ids and results[send.pk] == "missing":
                results[send.pk] = "done"
        claims = marketing_email_claim_many(
            requests=[(send.enrolment.user.email, f"onboarding:{send.enrolment.sequence.key}") for send in ready]
        )
        for send, claim in zip(ready, claims, strict=True):
            enrolment = send.enrolment
            if claim.suppressed:
                Send.objects.filter(pk=send.pk).update(status=Send.Status.SUPPRESSED, claimed_at=None)
                enrolment_exit(enrolment, reason=Enrolment.ExitReason.UNSUBSCRIBED)
                results[send.pk] = "suppressed"
            elif not claim.allowed:
                Send.objects.filter(pk=send.pk).update(status=Send.Status.PENDING, claimed_at=None)
                enrolment.next_send_at = quiet_hours_end(claim.retry_at or now + timedelta(hours=1), user_zone(enrolment.user))
                enrolment.save(update_fields=["next_send_at"])
                results[send.pk] = "capped"
            else:
                send.status, send.claimed_at, send.to_email = Send.Status.SENDING, now, enrolment.user.email
                results[send.pk] = (send, claim)
    return results


def _attach_steps(sends: list[Send], steps: dict[int, list[Step]]) -> None:
    """Give each send its step and each enrolment its sequence from one query for the whole
    chunk (a few sequences, their steps' long template texts read once, not once per send),
    and keep the steps for planning the next ones."""
    wanted = {send.enrolment.sequence_id for send in sends if send.enrolment.sequence_id} - steps.keys()
    if wanted:
        for sequence_id in wanted:
            steps[sequence_id] = []
        for step in Step.objects.select_related("sequence").filter(sequence_id__in=wanted).order_by("sequence_id", "position"):
            steps[step.sequence_id].append(step)
    by_id = {step.pk: step for sequence_steps in steps.values() for step in sequence_steps}
    for send in sends:
        step = by_id.get(send.step_id)
        if step is None:  # not a step of the enrolment's sequence: never made so, read it anyway
            continue
        send.step = step
        if send.enrolment.sequence_id == step.sequence_id:
            send.enrolment.sequence = step.sequence


def _skip_conditions_met(sends: list[Send]) -> set[int]:
    """The sends whose step's skip condition holds for their recipient, a query or two per
    condition for the whole chunk."""
    by_condition: dict[str, list[Send]] = {}
    for send in sends:
        if send.step.skip_condition and send.status == Send.Status.PENDING:
            by_condition.setdefault(send.step.skip_condition, []).append(send)
    met: set[int] = set()
    for condition, conditioned in by_condition.items():
        users = selectors.skip_conditions_met(
            condition, recipients=[(send.enrolment.user_id, send.enrolment.organization_id) for send in conditioned]
        )
        met.update(send.pk for send in conditioned if send.enrolment.user_id in users)
    return met



def _record_sent(sent: list[Send], steps: dict[int, list[Step]]) -> None:
    """Sent: each enrolment still active moves to its next step, each send is marked sent, and
    the events are stored, in one transaction of a few statements for the whole chunk."""
    if not sent:
        return
    now = timezone.now()
    with transaction.atomic():
        # Enrolments first (in id order), then the sends: the one lock order. An enrolment
        # moves on only if it is still active (an unsubscribe during the SMTP call wins) and
        # still waiting for this step: a chunk slower than ONBOARDING_STALE_MINUTES may find the
        # sweep moved it on already, and another worker sent the next step since. One deleted
        # meanwhile (its user or organization) is left out of the events.
        locked = {
            enrolment_id: (status, next_send_at, next_position)
            for enrolment_id, status, next_send_at, next_position in Enrolment.objects.select_for_update()
            .filter(pk__in=[send.enrolment_id for send in sent])
            .order_by("id")
            .values_list("id", "status", "next_send_at", "next_position")
        }
        sent = [send for send in sent if send.enrolment_id in locked]
        moved, completed = [], []
        for send in sent:
            enrolment = send.enrolment
            if not enrolment_waits_for(*locked[enrolment.pk], send.step.position):
                continue
            enrolment.last_step_at = now
            if enrolment_plan_next(enrolment, after_position=send.step.position, base=now, steps=sequence_steps(enrolment.sequence_id, steps)):
                completed.append(enrolment)
            moved.append(enrolment)
        _enrolments_save_planned(moved)
        # A send the sweep gave up on as unknown meanwhile did go out after all.
        Send.objects.filter(pk__in=[send.pk for send in sent], status__in=(Send.Status.SENDING, Send.Status.UNKNOWN)).update(
            status=Send.Status.SENT, sent_at=now, last_error="", attempts=F("attempts") + 1
        )
        events_store(
            events=[
                {
                    "name": events.ONBOARDING_EMAIL_SENT,
                    "user": send.enrolment.user,
                    "organization": send.enrolment.organization,
                    "properties": {**enrolment_variant_properties(send.enrolment), "step": send.step.position},
                }
                for send in sent
            ]
            + [
                {
                    "name": events.ONBOARDING_COMPLETED,
                    "user": enrolment.user,
                    "organization": enrolment.organization,
                    "properties": enrolment_variant_properties(enrolment),
                }
                for enrolment in completed
            ]
        )


def _enrolments_save_planned(enrolments: list[Enrolment]) -> None:
    """Write the planned fields of many enrolments in one statement (Django's bulk_update
    builds a CASE per field and row, which costs more than the sending on PostgreSQL)."""
    if not enrolments:
        return
    if connection.vendor != "postgresql":
        Enrolment.objects.bulk_update(enrolments, PLANNED_FIELDS)
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE onboarding_enrolment AS enrolment SET status = planned.status, "
            "next_position = planned.next_position, next_send_at = planned.next_send_at, "
            "finished_at = planned.finished_at, last_step_at = planned.last_step_at "
            "FROM jsonb_to_recordset(%s::jsonb) AS planned(id bigint, status text, next_position int, "
            "next_send_at timestamptz, finished_at timestamptz, last_step_at timestamptz) "
            "WHERE enrolment.id = planned.id",
            [
                json_rows(
                    ["id", *PLANNED_FIELDS],
                    (
                        (e.pk, e.status, e.next_position, *(timestamp_text(moment) for moment in (e.next_send_at, e.finished_at, e.last_step_at)))
                        for e in enrolments
                    ),
                )
            ],
        )


def _record_failed(send: Send, claim: MarketingClaim, error: Exception) -> None:
    with transaction.atomic():
        # Enrolment first, then the send: the one lock order. Only a send still claimed goes
        # back to pending (the sweep may have settled it): then its step is tried again later.
        enrolment = Enrolment.objects.select_for_update().filter(pk=send.enrolment_id).first()
        moved_back = _transition(
            send, source=Send.Status.SENDING, target=Send.Status.PENDING, claimed_at=None,
            attempts=F("attempts") + 1, last_error=f"{type(error).__name__}: {error}"[:2000],
        )
        if not moved_back:
            return
        if enrolment is not None and enrolment.status == Enrolment.Status.ACTIVE and enrolment.next_send_at is None:
            Enrolment.objects.filter(pk=enrolment.pk).update(
                next_send_at=timezone.now() + timedelta(minutes=settings.ONBOARDING_RETRY_MINUTES)
            )
        marketing_email_release(claim=claim)
    logger.warning("onboarding send %s failed, tried again later: %s", send.pk, error)


def sends_deliver(*, send_ids: list[int], mail_connection=None) -> dict[str, int]:
    """Deliver a chunk of onboarding sends, each exactly once, and move their enrolments on.

    Invariants: a send row (unique per enrolment and step) is claimed (pending -> sending) in a
    committed transaction before its SMTP call, so a retried or duplicated task finds it claimed
    or sent and does nothing; exits (unsubscribed, converted), skip conditions, quiet hours and
    the shared frequency cap are checked with the enrolments locked. A failed SMTP call puts
    its send back to pending and the step is tried again ONBOARDING_RETRY_MINUTES later; one
    send's failure never stops the others. The chunk shares its SMTP connections
    (ONBOARDING_SMTP_CONNECTIONS) and a few statements per transaction, so the cost per email
    is the SMTP call, not the bookkeeping.
    Returns how many sends ended how, by word.
    """
    return _deliver(send_ids, mail_connection)[1]


def send_deliver(*, send_id: int, mail_connection=None) -> str:
    """One send (see sends_deliver); returns what happened to it, as a word."""
    return _deliver([send_id], mail_connection)[0][send_id]


def _deliver(send_ids: list[int], mail_connection) -> tuple[dict[int, str], dict[str, int]]:
    outcomes: dict[int, str] = {}
    if not send_ids:
        return outcomes, {}
    steps: dict[int, list[Step]] = {}
    prepared = _prepare_many(list(dict.fromkeys(send_ids)), steps)
    to_send = [value for value in prepared.values() if not isinstance(value, str)]
    outcomes.update({send_id: value for send_id, value in prepared.items() if isinstance(value, str)})
    sent: list[Send] = []
    if to_send:
        links = Links.resolve()
        trials = selectors.organization_trials(
            organization_ids={send.enrolment.organization_id for send, _ in to_send if send.enrolment.organization_id}
        )

        def failed(item: tuple[Send, MarketingClaim], error: Exception) -> None:
            send, claim = item
            if isinstance(error, OutcomeUnknown):  # it may have gone out: never again
                send_record_unknown(send, error)
                outcomes[send.pk] = "unknown"
                return
            _record_failed(send, claim, error)
            outcomes[send.pk] = "failed"

        def delivered(item: tuple[Send, MarketingClaim]) -> None:
            send, _ = item
            sent.append(send)
            outcomes[send.pk] = "sent"

        sender = Sender(
            mail_connection, connections=settings.ONBOARDING_SMTP_CONNECTIONS, keep_seconds=settings.ONBOARDING_SMTP_KEEP_SECONDS
        )
        try:
            sender.open()
        except OSError as error:  # the connection could not be opened: none of them went out
            for send, claim in to_send:
                failed((send, claim), error)
        else:
            try:
                sender.send_all(
                    to_send, compose=lambda item: email_of(item[0], links=links, trials=trials), sent=delivered, failed=failed
                )
            finally:
                try:
                    sender.close()
                finally:
                    # Recorded even if recording a failure or closing raised: what the server accepted is sent.
                    _record_sent(sent, steps)
    counts: dict[str, int] = {}
    for outcome in outcomes.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    return outcomes, counts
