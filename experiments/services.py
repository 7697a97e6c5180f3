"""Recording analytics events and forwarding them to PostHog."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Organization, User

from . import posthog_gateway
from .events import event_known
from .exceptions import AnalyticsUnavailable, UnknownEvent
from .models import Event

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
    return Event.objects.create(
        name=name, user=user, organization=organization, distinct_id=distinct_id, properties=props
    )


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

