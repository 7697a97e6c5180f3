"""Recording analytics events, forwarding them to PostHog, and assigning experiment variations."""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, QuerySet, Value
from django.db.models.functions import Concat
from django.utils import timezone

from accounts.models import Organization, SignupIntent, User
from common.json_rows import json_rows, timestamp_text

from . import posthog_gateway
from .events import EXPERIMENT_EXPOSED, event_known
from .exceptions import AnalyticsRefused, AnalyticsUnavailable, UnknownEvent
from .flags import ExperimentDefinition, experiment_run
from .models import Event, Experiment, Exposure, Variation
from .selectors import events_claimable

logger = logging.getLogger(__name__)


def event_record(
    *,
    name: str,
    user: User | None = None,
    organization: Organization | None = None,
    distinct_id: str | None = None,
    properties: dict[str, Any] | None = None,
) -> Event:
    """Store one analytics event in the caller's transaction.

    Invariant: the event exists if and only if the change it describes was committed, because
    it is written in the same transaction (the outbox pattern); forwarding happens later.
    """
    return _event(
        name=name, user=user, organization=organization, distinct_id=distinct_id, properties=properties
    ).save_new()


def _event(**arguments: Any) -> _UnsavedEvent:
    """An unsaved Event from event_record's arguments."""
    distinct_id, properties = _event_fields(**arguments)
    return _UnsavedEvent(
        Event(
            name=arguments["name"], user=arguments.get("user"), organization=arguments.get("organization"),
            distinct_id=distinct_id, properties=properties,
        )
    )


def _event_fields(
    *,
    name: str,
    user: User | None = None,
    organization: Organization | None = None,
    distinct_id: str | None = None,
    properties: dict[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The event's distinct id and properties, or UnknownEvent."""
    if not event_known(name):
        raise UnknownEvent(f"Unknown analytics event {name!r}.")
    if distinct_id is None:
        if user is not None:
            distinct_id = str(user.public_id)
        elif organization is not None:
            distinct_id = f"org:{organization.public_id}"
        else:
            raise UnknownEvent(f"Event {name!r} needs a user, an organization or a distinct id.")
    props = dict(properties or {})
    if organization is not None:
        props.setdefault("organization_id", str(organization.public_id))
        # PostHog group analytics: the organization is the "company" of the event.
        props.setdefault("$groups", {"organization": str(organization.public_id)})
    return distinct_id, props


@dataclass
class _UnsavedEvent:
    event: Event

    def save_new(self) -> Event:
        self.event.save(force_insert=True)
        return self.event


# Every column of Event, from unsaved Event objects (so each default is the model's own).
_EVENTS_INSERT_SQL = """
INSERT INTO experiments_event (public_id, name, distinct_id, user_id, organization_id, properties,
                               occurred_at, sent_at, attempts, last_error)
SELECT event.public_id, event.name, event.distinct_id, event.user_id, event.organization_id,
       event.properties, event.occurred_at, event.sent_at, event.attempts, event.last_error
FROM jsonb_to_recordset(%s::jsonb)
     AS event(public_id uuid, name text, distinct_id text, user_id bigint, organization_id bigint,
              properties jsonb, occurred_at timestamptz, sent_at timestamptz, attempts int, last_error text)
"""
_EVENT_COLUMNS = ["public_id", "name", "distinct_id", "user_id", "organization_id", "properties", "occurred_at",
                  "sent_at", "attempts", "last_error"]


def _events_rows(rows) -> str:
    return json_rows(_EVENT_COLUMNS, rows, encoder=Event._meta.get_field("properties").encoder)


def events_record(*, events: list[dict[str, Any]]) -> list[Event]:
    """Store many analytics events in the caller's transaction with one INSERT; each dict holds
    event_record's arguments. Same invariant as event_record (the outbox pattern).

    On PostgreSQL the rows go in as one JSON document (INSERT ... SELECT FROM
    jsonb_to_recordset), written by the json module's C encoder: bulk_create prepares every
    field of every object through the ORM, which cost the onboarding worker about a third
    more CPU per event than the email's own SQL did, and Django's cursors quote an array
    parameter element by element in Python, which cost 40 us per event for these ten."""
    unsaved = [_event(**arguments).event for arguments in events]
    if not unsaved or connection.vendor != "postgresql":
        return Event.objects.bulk_create(unsaved)
    rows = _events_rows(
        (str(event.public_id), event.name, event.distinct_id, event.user_id, event.organization_id, event.properties,
         timestamp_text(event.occurred_at), timestamp_text(event.sent_at), event.attempts, event.last_error)
        for event in unsaved
    )
    with connection.cursor() as cursor:
        cursor.execute(f"{_EVENTS_INSERT_SQL} RETURNING public_id, id", [rows])
        ids = dict(cursor.fetchall())
    for event in unsaved:
        event.pk = ids[event.public_id]
        event._state.adding = False
        event._state.db = connection.alias
    return unsaved


def events_store(*, events: list[dict[str, Any]]) -> None:
    """events_record for a caller that does not use the Event objects: on PostgreSQL the rows
    are written straight from the arguments, with Event's defaults (a new uuid4 each, the
    transaction's time, not sent, no attempt), without an Event object per row, which cost the
    onboarding worker as much as writing the row did. Same invariant (the outbox pattern)."""
    if not events or connection.vendor != "postgresql":
        events_record(events=events)
        return
    now = timestamp_text(timezone.now())
    randomness = os.urandom(16 * len(events))  # uuid4()'s bytes, for every row in one call
    rows = []
    for index, arguments in enumerate(events):
        distinct_id, properties = _event_fields(**arguments)
        user, organization = arguments.get("user"), arguments.get("organization")
        public_id = uuid.UUID(bytes=randomness[16 * index : 16 * index + 16], version=4)
        rows.append((
            str(public_id), arguments["name"], distinct_id, user.pk if user is not None else None,
            organization.pk if organization is not None else None, properties, now, None, 0, "",
        ))
    with connection.cursor() as cursor:
        cursor.execute(_EVENTS_INSERT_SQL, [_events_rows(rows)])


@dataclass
class ForwardReport:
    sent: int = 0
    batches: int = 0
    dead: int = 0
    error: str = ""


def _message(event: Event) -> dict[str, Any]:
    return {
        "type": "capture",
        "event": event.name,
        "distinct_id": event.distinct_id,
        "uuid": str(event.public_id),
        "timestamp": event.occurred_at.isoformat(),
        "properties": {**event.properties, "$lib": "flywheel"},
    }


def forward_lease_seconds() -> float:
    """How long a forward run holds the events it claimed before another run may take them:
    longer than one PostHog call can last (the lease is renewed before each call)."""
    return max(60.0, 6 * float(settings.POSTHOG_TIMEOUT))


def events_claim(*, limit: int, lease_seconds: float) -> list[Event]:
    """Lease up to `limit` unsent, live events, oldest first, to the caller, and commit.

    Invariant: two callers never hold the same event: the rows are read with SKIP LOCKED and
    their lease set in one short transaction, and an event whose lease runs is skipped by
    every other claim until the lease ends (a crashed run's events come back then).
    """
    now = timezone.now()
    with transaction.atomic():
        events = list(events_claimable(now=now).select_for_update(skip_locked=True)[:limit])
        if events:
            Event.objects.filter(pk__in=[event.pk for event in events]).update(
                claimed_until=now + timedelta(seconds=lease_seconds)
            )
    return events


@dataclass
class _Outgoing:
    event: Event
    message: dict[str, Any]
    size: int


# PostHog refusing this many events one by one, and taking none in between, is not about the
# events: something (a proxy, a broken encoder) refuses every request. The run stops there as
# for an outage rather than condemn the whole outbox event by event.
REFUSED_IN_A_ROW_MAX = 20


@dataclass
class _ForwardRun:
    report: ForwardReport
    lease_seconds: float
    refused_in_a_row: int = 0


class _ClaimedBatch:
    """One claim's events on their way to PostHog; each write is its own statement, made with
    no transaction open and no row locked (the lease keeps other runs away)."""

    def __init__(self, events: list[Event], *, run: _ForwardRun) -> None:
        self.pending = {event.pk for event in events}
        self.run = run
        self.report = run.report
        self.lease_seconds = run.lease_seconds

    def _unfinished(self, ids) -> QuerySet[Event]:
        return Event.objects.filter(pk__in=list(ids), sent_at__isnull=True, dead_at__isnull=True)

    def renew(self) -> None:
        self._unfinished(self.pending).update(
            claimed_until=timezone.now() + timedelta(seconds=self.lease_seconds)
        )

    def sent(self, batch: list[_Outgoing]) -> None:
        ids = [outgoing.event.pk for outgoing in batch]
        self._unfinished(ids).update(sent_at=timezone.now(), last_error="", claimed_until=None)
        self.pending.difference_update(ids)
        self.report.sent += len(ids)
        self.report.batches += 1
        self.run.refused_in_a_row = 0

    def dead(self, event: Event, *, reason: str) -> None:
        self._unfinished([event.pk]).update(dead_at=timezone.now(), last_error=reason[:2000], claimed_until=None)
        self.pending.discard(event.pk)
        self.report.dead += 1
        logger.warning("analytics event %s (%s) will not be sent: %s", event.public_id, event.name, reason)

    def failed(self, *, error: str) -> None:
        """An outage: every event not yet sent keeps its place, counts the attempt and the
        error, and its lease ends so the next run takes it at once."""
        self._unfinished(self.pending).update(
            attempts=F("attempts") + 1, last_error=error[:2000], claimed_until=None
        )

    def deliver(self, batch: list[_Outgoing]) -> None:
        """Send `batch`; where PostHog refuses it, send each half on its own, down to the
        single events it refuses, which die with its reason. An outage propagates."""
        self.renew()
        try:
            posthog_gateway.send_batch([outgoing.message for outgoing in batch])
        except AnalyticsRefused as refusal:
            if len(batch) == 1:
                if self.run.refused_in_a_row >= REFUSED_IN_A_ROW_MAX:
                    raise AnalyticsUnavailable(
                        f"PostHog refused {self.run.refused_in_a_row} events in a row and took none, "
                        f"so the rest wait as for an outage: {refusal.message}"
                    ) from refusal
                self.run.refused_in_a_row += 1
                self.dead(batch[0].event, reason=refusal.message)
                return
            middle = len(batch) // 2
            self.deliver(batch[:middle])
            self.deliver(batch[middle:])
            return
        self.sent(batch)


def _batches_by_size(outgoing: list[_Outgoing], *, max_bytes: int) -> list[list[_Outgoing]]:
    """Consecutive batches whose messages add up to at most `max_bytes` each."""
    batches: list[list[_Outgoing]] = []
    total = 0
    for item in outgoing:
        if not batches or total + item.size > max_bytes:
            batches.append([])
            total = 0
        batches[-1].append(item)
        total += item.size
    return batches


def events_forward(
    *, batch_size: int = 500, max_batches: int = 100, lease_seconds: float | None = None
) -> ForwardReport:
    """Send unsent events to PostHog, oldest first, in batches: claim, commit, call, record.

    Invariants:
    - no transaction is open and no row is locked while PostHog is called: a run first leases
      its batch (events_claim, committed), then calls, then records each outcome;
    - an event is marked sent only after PostHog accepted a batch holding it, and once;
    - PostHog's refusal (AnalyticsRefused: a 4xx such as 400 or 413) is about some events of
      the batch: the batch is halved until the refused events stand alone; each of those dies
      (`dead_at`, PostHog's reason in `last_error`) and is never sent again unless staff
      retry it; the others are sent. An event whose message is over PostHog's per-event
      limit dies without being sent ("too large: N bytes ..."). A dead event never holds
      back the events behind it. After REFUSED_IN_A_ROW_MAX events refused one by one with
      none taken, the next refusal is handled as an outage (PostHog, or something in front of
      it, refuses everything): at most that many events die for it in a run;
    - an outage (AnalyticsUnavailable: 5xx, 408, 429, a timeout, no connection, a refused
      key) keeps the batch's unsent events, with the error and one more attempt, and stops
      the run; the next run tries them again;
    - two runs never hold the same event (the lease); a run that dies mid-way leaves its
      events leased until the lease ends, then another run sends them. An event sent twice
      that way (a lease outlived) is counted once by PostHog, which deduplicates on its uuid,
      our `public_id`.
    """
    report = ForwardReport()
    if not posthog_gateway.is_configured():
        return report
    run = _ForwardRun(report, forward_lease_seconds() if lease_seconds is None else lease_seconds)
    for _ in range(max_batches):
        claimed = events_claim(limit=batch_size, lease_seconds=run.lease_seconds)
        if not claimed:
            break
        batch = _ClaimedBatch(claimed, run=run)
        outgoing = []
        for event in claimed:
            message = _message(event)
            size = posthog_gateway.message_size(message)
            if size > posthog_gateway.MAX_EVENT_BYTES:
                batch.dead(
                    event,
                    reason=f"too large: {size} bytes, PostHog's limit is {posthog_gateway.MAX_EVENT_BYTES}",
                )
            else:
                outgoing.append(_Outgoing(event, message, size))
        try:
            for part in _batches_by_size(outgoing, max_bytes=posthog_gateway.MAX_BATCH_BYTES):
                batch.deliver(part)
        except AnalyticsUnavailable as error:
            report.error = error.message
            batch.failed(error=error.message)
            logger.warning("analytics forward failed, %d events kept: %s", len(batch.pending), error.message)
            break
    return report


def events_retry(*, event_ids: list[int]) -> int:
    """Put dead events back in the outbox (staff, from the admin); returns how many.

    Invariant: only dead events change; a sent event is never sent again. `last_error` keeps
    the reason it died until it is sent (an event still refused dies again, with the new one).
    """
    return Event.objects.filter(pk__in=event_ids, dead_at__isnull=False, sent_at__isnull=True).update(
        dead_at=None, claimed_until=None
    )


# Experiments -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assignment:
    """The variation a unit got. `first_exposure` is True only on the call that stored it."""

    experiment_key: str
    variation_key: str
    position: int
    value: Any
    holdout: bool
    first_exposure: bool


def experiment_attributes(
    *, user: User | None, organization: Organization | None = None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """GrowthBook attributes of a user in an organization: id, organization_id, country,
    product, edition and signup_source (the landing link's utm_source, "invite" or "direct").
    `extra` overrides (a caller that knows the current edition passes it)."""
    attributes: dict[str, Any] = {
        "id": str(user.public_id) if user is not None else "",
        "organization_id": str(organization.public_id) if organization is not None else "",
        "country": (user.country if user is not None else "") or "",
        "product": "",
        "edition": "",
        "signup_source": "",
    }
    intent = SignupIntent.objects.filter(user=user).first() if user is not None else None
    if intent is not None:
        attributes["product"] = intent.product_code
        attributes["edition"] = intent.edition_code
        attributes["signup_source"] = (intent.utm or {}).get("utm_source") or (
            "invite" if intent.invite_id else "direct"
        )
    attributes.update(extra or {})
    return attributes


def _assignment(exposure: Exposure, variation: Variation | None, *, first: bool) -> Assignment:
    return Assignment(
        experiment_key=exposure.experiment.key,
        variation_key=exposure.variation_key,
        position=exposure.variation_position,
        value=variation.value if variation is not None else None,
        holdout=variation.holdout if variation is not None else False,
        first_exposure=first,
    )


@transaction.atomic
def experiment_assign(
    *,
    experiment_key: str,
    user: User | None = None,
    organization: Organization | None = None,
    attributes: dict[str, Any] | None = None,
) -> Assignment | None:
    """The variation of `experiment_key` for this user (or organization), exposing them once.

    Invariants: a unit (the value of the experiment's hash attribute) has at most one Exposure
    per experiment, enforced by a unique constraint; the `experiment_exposed` event is recorded
    in the same transaction as that row, so exactly once; once exposed, a unit keeps its
    variation even if staff later change the weights. None when the experiment is unknown, a
    draft, stopped (for units not yet exposed), or the unit is not in it (coverage, condition).
    """
    experiment = Experiment.objects.filter(key=experiment_key).first()
    if experiment is None or experiment.status == Experiment.Status.DRAFT:
        return None
    attributes = attributes or experiment_attributes(user=user, organization=organization)
    unit_id = str(attributes.get(experiment.hash_attribute) or "")
    if not unit_id:
        return None
    variations = list(experiment.variations.order_by("position"))
    existing = Exposure.objects.filter(experiment=experiment, unit_id=unit_id).select_related("experiment").first()
    if existing is not None:
        return _assignment(existing, _variation_at(variations, existing.variation_position), first=False)
    if experiment.status != Experiment.Status.RUNNING or not variations:
        return None
    result = experiment_run(
        ExperimentDefinition(
            key=experiment.key,
            weights=[variation.weight for variation in variations],
            hash_attribute=experiment.hash_attribute,
            coverage=experiment.coverage,
            condition=experiment.condition or None,
        ),
        attributes=attributes,
    )
    if not result.in_experiment:
        return None
    variation = variations[result.variation]
    try:
        with transaction.atomic():
            exposure = Exposure.objects.create(
                experiment=experiment,
                unit_id=unit_id,
                variation_position=variation.position,
                variation_key=variation.key,
                user=user,
                organization=organization,
            )
    except IntegrityError:
        # Another request exposed the same unit a moment ago: theirs is the exposure.
        exposure = Exposure.objects.select_related("experiment").get(experiment=experiment, unit_id=unit_id)
        return _assignment(exposure, _variation_at(variations, exposure.variation_position), first=False)
    event_record(
        name=EXPERIMENT_EXPOSED,
        user=user,
        organization=organization,
        distinct_id=None if user is not None or organization is not None else unit_id,
        properties={
            "experiment": experiment.key,
            "variation": variation.key,
            "variation_position": variation.position,
            "holdout": variation.holdout,
            # PostHog's own names, so its experiment views can read the exposure too.
            "$feature_flag": experiment.key,
            "$feature_flag_response": variation.key,
        },
    )
    return _assignment(exposure, variation, first=True)


def _variation_at(variations: list[Variation], position: int) -> Variation | None:
    return next((variation for variation in variations if variation.position == position), None)


@transaction.atomic
def definitions_load(*, data: dict[str, Any]) -> tuple[int, int]:
    """Create or update experiments (with their variations) and admin features from a dict, as
    `manage.py experiments_load FILE` reads it (docs/experiments.md shows the format).

    Invariants: keyed by experiment and feature key, so loading the same file twice changes
    nothing; a variation is matched by position; variations past the file's last position are
    deleted (exposures keep their variation key). Returns (experiments, features) loaded.
    """
    from .exceptions import DefinitionInvalid
    from .flags import admin_features_forget
    from .models import Feature

    experiments = data.get("experiments", [])
    features = data.get("features", {})
    if not isinstance(experiments, list) or not isinstance(features, dict):
        raise DefinitionInvalid('Expected {"experiments": [...], "features": {...}}.')
    for entry in experiments:
        try:
            key, variations = entry["key"], entry["variations"]
        except (KeyError, TypeError):
            raise DefinitionInvalid("Every experiment needs a key and its variations.") from None
        if not variations or sum(float(v.get("weight", 1.0)) for v in variations) <= 0:
            raise DefinitionInvalid(f"Experiment {key!r} needs variations with a positive total weight.")
        experiment, _ = Experiment.objects.update_or_create(
            key=key,
            defaults={
                "name": entry.get("name", key),
                "description": entry.get("description", ""),
                "status": entry.get("status", Experiment.Status.DRAFT),
                "hash_attribute": entry.get("hash_attribute", Experiment.HashAttribute.USER),
                "coverage": float(entry.get("coverage", 1.0)),
                "condition": entry.get("condition", {}),
                "activation_events": entry.get("activation_events", []),
                "minimum_sample": int(entry.get("minimum_sample", 100)),
            },
        )
        # Keys move between positions: clear them first so the unique constraints hold.
        experiment.variations.update(key=Concat(Value("_old_"), F("key")), holdout=False)
        for position, variation in enumerate(variations):
            Variation.objects.update_or_create(
                experiment=experiment,
                position=position,
                defaults={
                    "key": variation["key"],
                    "name": variation.get("name", variation["key"]),
                    "weight": float(variation.get("weight", 1.0)),
                    "value": variation.get("value"),
                    "holdout": bool(variation.get("holdout", False)),
                },
            )
        experiment.variations.filter(position__gte=len(variations)).delete()
    for key, definition in features.items():
        Feature.objects.update_or_create(key=key, defaults={"definition": definition, "enabled": True})
    admin_features_forget()
    return len(experiments), len(features)
