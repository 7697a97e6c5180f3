"""Recording analytics events, forwarding them to PostHog, and assigning experiment variations."""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone

from accounts.models import Organization, SignupIntent, User
from common.json_rows import json_rows, timestamp_text

from . import posthog_gateway
from .events import EXPERIMENT_EXPOSED, event_known
from .exceptions import AnalyticsUnavailable, UnknownEvent
from .flags import ExperimentDefinition, experiment_run
from .models import Event, Experiment, Exposure, Variation

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


def events_forward(*, batch_size: int = 500, max_batches: int = 100) -> ForwardReport:
    """Send unsent events to PostHog, oldest first, in batches; mark each batch sent.

    Invariant: an event is marked sent only after PostHog accepted the batch holding it; when
    PostHog is down the events stay unsent, with the error, and the next run tries again.
    Two runs at once never send the same batch: each claims its rows with SKIP LOCKED. The rows
    stay locked during the HTTP call; nothing else ever writes an outbox row, so no one waits.
    """
    report = ForwardReport()
    if not posthog_gateway.is_configured():
        return report
    for _ in range(max_batches):
        with transaction.atomic():
            batch = list(
                Event.objects.select_for_update(skip_locked=True)
                .filter(sent_at__isnull=True)
                .order_by("id")[:batch_size]
            )
            if not batch:
                break
            ids = [event.pk for event in batch]
            try:
                posthog_gateway.send_batch([_message(event) for event in batch])
            except AnalyticsUnavailable as error:
                report.error = error.message
                Event.objects.filter(pk__in=ids).update(
                    attempts=F("attempts") + 1, last_error=error.message[:2000]
                )
                logger.warning("analytics forward failed, %d events kept: %s", len(ids), error.message)
                break
            Event.objects.filter(pk__in=ids).update(sent_at=timezone.now(), last_error="")
            report.sent += len(ids)
            report.batches += 1
    return report



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
