"""Activity that reaches Flywheel through the kit and through Flywheel's own launch, recorded by
activity.services.activity_record like the products' API batches (docs/activity.md, "Where
activity comes from").

- The kit: `element.track(name)` queues the event with an id of its own and sends the queue as
  one batch (POST /kit/v1/activity). The person, the organization and the product are the
  session credential's, never the body's: an event naming anyone or anything is refused, and a
  kit's event ids are stored under the person's own prefix ("kit:<person>:<id>"), so no member
  can spend the ids of a colleague's events or of the product server's. The time is Flywheel's
  clock minus the event's age as the kit measured it, so a person's wrong clock moves no event
  to another day. A name the product does not count as activity (catalog `activity_events`) is
  a success moment too (services.success_record: the invite nudge's `first_success`).
- The launch: a person opening a product's workspace from Flywheel (launch_views) has signed in
  to it: a `signed_in` event for that product, one per launch (each launch carries its own id).
  Signing in to Flywheel itself is not the use of any product and records nothing.

Import order inside the app: services -> activity -> message_views, launch_views.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Membership
from activity.services import ActivityReport, RowError, activity_record, retention_days
from catalog.models import Product

from .caller import KitCaller
from .exceptions import KitBadRequest
from .services import success_record

SIGNED_IN = "signed_in"
# A kit's event: a name the activity API and the success moments both accept, an id of the kit's
# own making (random, base64url) and the milliseconds between the event and this request.
KIT_EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
KIT_EVENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
KIT_FIELDS = frozenset({"id", "name", "age_ms"})


def kit_batch_max() -> int:
    return int(settings.KIT_ACTIVITY_BATCH_MAX)


@dataclass(frozen=True)
class _KitRow:
    index: int
    id: str
    name: str


def _kit_row(index: int, raw: Any, *, oldest_ms: int) -> tuple[_KitRow, int] | RowError:
    """The row and its age in milliseconds, or why it is refused."""
    if not isinstance(raw, dict):
        return RowError(index, "", "Each event is an object with id, name and age_ms.")
    event_id = raw.get("id")
    if not isinstance(event_id, str) or not KIT_EVENT_ID.fullmatch(event_id):
        shown = event_id[:64] if isinstance(event_id, str) else ""
        return RowError(
            index, shown, "id must be 8 to 64 letters, digits, _ or -, the kit's own for the event."
        )
    unknown = sorted(set(raw) - KIT_FIELDS)
    if unknown:
        return RowError(
            index,
            event_id,
            f"Unknown field{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)[:200]}. The kit reports what the "
            "person its session names did, in the product the session is for: send id, name and age_ms only.",
        )
    name = raw.get("name")
    if not isinstance(name, str) or not KIT_EVENT_NAME.fullmatch(name):
        return RowError(
            index,
            event_id,
            "name must be 1 to 64 lowercase letters, digits or _, starting with a letter.",
        )
    age = raw.get("age_ms")
    if isinstance(age, bool) or not isinstance(age, int) or age < 0:
        return RowError(
            index,
            event_id,
            "age_ms must be a whole number of milliseconds, 0 or more: how long ago it happened.",
        )
    if age > oldest_ms:
        return RowError(
            index,
            event_id,
            f"The event is more than {retention_days()} days old: such events are no longer accepted.",
        )
    return _KitRow(index=index, id=event_id, name=name), age


def kit_event_id(*, caller: KitCaller, event_id: str) -> str:
    """How a kit's event id is stored: under the person's prefix (at most 101 characters)."""
    return f"kit:{caller.user.public_id.hex}:{event_id}"


def kit_activity_record(
    *, caller: KitCaller, events: Any, now: datetime | None = None
) -> ActivityReport:
    """Record a kit's batch for the caller's person, organization and product, each event once
    (by its id, under the person's prefix), and each name the product does not count as
    activity as a success moment. Errors name the kit's own index and id."""
    if not isinstance(events, list):
        raise KitBadRequest(
            'Send the events as a list: {"events": [{"id": ..., "name": ..., "age_ms": ...}]}.'
        )
    if len(events) > kit_batch_max():
        raise KitBadRequest(
            f"At most {kit_batch_max()} events per request; this one has {len(events)}."
        )
    now = now or timezone.now()
    oldest_ms = retention_days() * 24 * 3600 * 1000
    report = ActivityReport()
    rows: list[dict[str, str]] = []
    sent: list[_KitRow] = []
    for index, raw in enumerate(events):
        checked = _kit_row(index, raw, oldest_ms=oldest_ms)
        if isinstance(checked, RowError):
            report.errors.append(checked)
            continue
        row, age = checked
        sent.append(row)
        rows.append(
            {
                "id": kit_event_id(caller=caller, event_id=row.id),
                "user": str(caller.user.public_id),
                "product": caller.product.code,
                "name": row.name,
                "occurred_at": (now - timedelta(milliseconds=age)).isoformat(),
            }
        )
    with transaction.atomic():
        recorded = activity_record(organization_id=caller.organization.pk, rows=rows, now=now)
        report.accepted, report.duplicates = recorded.accepted, recorded.duplicates
        report.errors += [
            RowError(sent[error.index].index, sent[error.index].id, error.error)
            for error in recorded.errors
        ]
        counted = set(caller.product.activity_events or []) | {SIGNED_IN}
        # Only the events stored now: a retried batch counts its success moments once.
        moments = {sent[position].name for position in recorded.stored} - counted
        for name in sorted(moments):
            success_record(caller=caller, name=name)
    report.errors.sort(key=lambda error: error.index)
    return report


def signed_in_record(
    *, membership: Membership, product: Product, now: datetime | None = None
) -> ActivityReport:
    """The person opened `product` from Flywheel (the launch): one `signed_in` event, with an id
    of its own, so every launch counts once."""
    now = now or timezone.now()
    return activity_record(
        organization_id=membership.organization_id,
        rows=[
            {
                "id": f"launch:{secrets.token_urlsafe(18)}",
                "user": str(membership.user.public_id),
                "product": product.code,
                "name": SIGNED_IN,
                "occurred_at": now.isoformat(),
            }
        ],
        now=now,
    )
