"""Run stored Stripe webhook events through their handler again.

    python manage.py stripe_replay --since 2026-11-01 --type payment_intent.succeeded
    python manage.py stripe_replay --event-id evt_123 --event-id evt_456
    python manage.py stripe_replay --outcome dead --outcome not_ours

For when a handler was wrong or missing and is now fixed, or an event's processing failed
(it is dead) or was refused as not ours. The selected events are put back to pending with
their attempts reset (billing.services.webhooks.webhooks_replay), then applied one by one, in the order
they arrived, by billing.services.webhooks.webhook_process: the same idempotent handler the worker
runs, so replaying an event that was already applied changes nothing. Each event's new
outcome is printed. An event a drain holds right now (pending and leased, or backing off) is
left to the drain.
"""

from __future__ import annotations

from datetime import datetime, time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from billing.models import WebhookEvent
from billing.services.webhooks import webhook_process, webhooks_replay


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
        parser.add_argument(
            "--outcome",
            action="append",
            default=[],
            dest="outcomes",
            choices=WebhookEvent.Outcome.values,
            help="Events with this outcome (dead, not_ours, ...); may repeat.",
        )
        parser.add_argument("--dry-run", action="store_true", help="List the events that would be replayed, and stop.")

    def handle(self, *args, since=None, types=(), event_ids=(), outcomes=(), dry_run=False, **options):
        if not (since or types or event_ids or outcomes):
            raise CommandError("Choose the events to replay: --since, --type, --event-id and/or --outcome.")
        events = WebhookEvent.objects.order_by("received_at", "pk")
        if since:
            events = events.filter(received_at__gte=parse_moment(since))
        if types:
            events = events.filter(type__in=types)
        if outcomes:
            events = events.filter(outcome__in=outcomes)
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
        replayed = set(webhooks_replay(event_ids=[pk for pk, _, _ in selected], nudge=False))
        failed = 0
        for pk, stripe_event_id, event_type in selected:
            if pk not in replayed:
                self.stdout.write(f"left to the drain {stripe_event_id} {event_type}: it is waiting for a retry")
                continue
            outcome = webhook_process(event_id=pk)
            event = WebhookEvent.objects.get(pk=pk)
            if outcome in (WebhookEvent.Outcome.PENDING, WebhookEvent.Outcome.DEAD):
                failed += 1
                self.stderr.write(f"failed {stripe_event_id} {event_type}: {event.last_error}")
            elif event.outcome_reason:
                self.stdout.write(f"replayed {stripe_event_id} {event_type}: {event.get_outcome_display().lower()} ({event.outcome_reason})")
            else:
                self.stdout.write(f"replayed {stripe_event_id} {event_type}: {event.get_outcome_display().lower()}")
        done = len(replayed) - failed
        self.stdout.write(f"{done} of {len(replayed)} events replayed.")
        if failed:
            raise CommandError(f"{failed} events failed and stay pending (the worker retries them); see their last error.")
