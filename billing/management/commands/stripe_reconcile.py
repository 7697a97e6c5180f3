"""Compare Flywheel's payments with Stripe's PaymentIntents (billing/services/reconciliation.py).

    python manage.py stripe_reconcile            # PaymentIntents of the last 3 days
    python manage.py stripe_reconcile --days 30
    python manage.py stripe_reconcile --since 2026-11-01

Payments Stripe charged but Flywheel did not record are repaired; every other difference is
printed (and logged) for a person to look at. Beat runs it nightly.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from billing.services.reconciliation import payments_reconcile

from .stripe_replay import parse_moment


class Command(BaseCommand):
    help = "Compare payments with Stripe's PaymentIntents: repair missed successes, report the rest."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=3, help="Look at PaymentIntents of the last N days (default 3).")
        parser.add_argument("--since", help="Look at PaymentIntents created since this date or date and time (ISO).")

    def handle(self, *args, days=3, since=None, **options):
        report = payments_reconcile(since=parse_moment(since) if since else None, days=days)
        for finding in report.findings:
            self.stdout.write(str(finding))
        self.stdout.write(
            f"{report.intents_checked} PaymentIntents since {report.since:%Y-%m-%d %H:%M %Z}: "
            f"{len(report.repaired)} repaired, {len(report.problems)} to look at."
        )
