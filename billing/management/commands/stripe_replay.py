"""Run stored Stripe webhook events through their handler again.

    python manage.py stripe_replay --since 2026-11-01 --type payment_intent.succeeded
    python manage.py stripe_replay --event-id evt_123 --event-id evt_456

For when a handler was wrong or missing and is now fixed, or an event's processing failed.
The selected events are marked unprocessed, then applied one by one, in the order they
arrived, by billing.services.webhook_process: the same idempotent handler the worker runs, so
replaying an event that was already applied changes nothing.
"""

from __future__ import annotations

from datetime import datetime, time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from billing import services
from billing.models import WebhookEvent
from common.exceptions import FlywheelError


def parse_moment(value: str) -> datetime:
    """An ISO date (midnight, in the site's time zone) or date and time."""
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"Not a date or date and time: {value!r} (use e.g. 2026-11-01 or 2026-11-01T09:30Z).")
        moment = datetime.combine(day, time.min)
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


class Command(BaseCommand):
    help = "Re-run stored Stripe webhook events through their (idempotent) handler."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", help="Events received at or after this date or date and time (ISO).")
        parser.add_argument("--type", action="append", default=[], dest="types", help="Event type; may repeat.")
        parser.add_argument("--event-id", action="append", default=[], dest="event_ids", help="Stripe event id; may repeat.")
        parser.add_argument("--dry-run", action="store_true", help="List the events that would be replayed, and stop.")

    def handle(self, *args, since=None, types=(), event_ids=(), dry_run=False, **options):
        if not (since or types or event_ids):
            raise CommandError("Choose the events to replay: --since, --type and/or --event-id.")
        events = WebhookEvent.objects.order_by("received_at", "pk")
        if since:
            events = events.filter(received_at__gte=parse_moment(since))
        if types:
            events = events.filter(type__in=types)
        if event_ids:
            events = events.filter(stripe_event_id__in=event_ids)
            missing = sorted(set(event_ids) - set(events.values_list("stripe_event_id", flat=True)))
            if missing:
                self.stderr.write(f"Not stored (never received): {', '.join(missing)}")
        selected = list(events.values_list("pk", "stripe_event_id", "type"))
        if dry_run:
            for _, stripe_event_id, event_type in selected:
                self.stdout.write(f"would replay {stripe_event_id} {event_type}")
            self.stdout.write(f"{len(selected)} events would be replayed.")
            return
        WebhookEvent.objects.filter(pk__in=[pk for pk, _, _ in selected]).update(processed_at=None)
        failed = 0
        for pk, stripe_event_id, event_type in selected:
            try:
                services.webhook_process(event_id=pk)
            except FlywheelError as error:
                failed += 1
                WebhookEvent.objects.filter(pk=pk).update(last_error=error.message[:2000])
                self.stderr.write(f"failed {stripe_event_id} {event_type}: {error.message}")
            else:
                self.stdout.write(f"replayed {stripe_event_id} {event_type}")
        self.stdout.write(f"{len(selected) - failed} of {len(selected)} events replayed.")
        if failed:
            raise CommandError(f"{failed} events failed and stay unprocessed; run again once the cause is fixed.")
