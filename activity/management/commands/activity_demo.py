"""Demo data for `make run`: 12 weeks of product activity for the demo organizations' people, sent
through the same service as POST /api/v1/activity (activity.services.activity_record), so the
staff usage page (/staff/usage/) has figures to show (docs/activity.md).

Each person has a habit drawn once from a seeded generator (how many days a week they come,
which products they use, the day they started, whether and when they stopped coming), so the
retention heat map has cohorts of different weeks that thin out as real ones do; their events get ids made of the person, product, day and number, so
running it again stores nothing twice. Never in production. Run `demo_data` first.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import Membership
from activity.services import activity_record
from catalog.models import Product

# Under ACTIVITY_RAW_RETENTION_DAYS (90): older events are refused.
DAYS = 84
# The chance that a person stops coming in a given week after their first.
WEEKLY_STOP = 0.07
SEED = 21


class Command(BaseCommand):
    help = "Send 12 weeks of demo product activity for the demo organizations' people (never in production)."

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("activity_demo never runs in production.")
        products = {product.code: product for product in Product.objects.filter(is_active=True) if product.activity_events}
        if not products:
            self.stderr.write("The catalog has no activity events: run `python manage.py catalog_sync` first. Nothing sent.")
            return
        generator = random.Random(SEED)  # noqa: S311 - demo data, the same at every run
        today = timezone.now().date()
        accepted = duplicates = 0
        batches: dict[int, list[dict]] = {}
        for membership in Membership.objects.select_related("user", "organization").order_by("pk"):
            days_a_week = generator.choice((1, 2, 3, 5, 5, 6))
            used = [code for code in sorted(products) if generator.random() < (0.8 if code == "tracker" else 0.45)]
            # Most started at the beginning, the others over the weeks since (newer people).
            started = today - timedelta(days=DAYS if generator.random() < 0.4 else generator.randint(7, DAYS))
            weeks_kept = next((week for week in range(1, DAYS // 7 + 1) if generator.random() < WEEKLY_STOP), None)
            last = started + timedelta(weeks=weeks_kept) if weeks_kept else today
            for code in used:
                names = products[code].activity_events
                day = started
                while day <= min(last, today):
                    if generator.random() < days_a_week / 7:
                        for number in range(generator.randint(1, 4)):
                            moment = datetime.combine(day, time(generator.randint(7, 18), generator.randint(0, 59)), tzinfo=UTC)
                            if moment > timezone.now():
                                continue
                            batches.setdefault(membership.organization_id, []).append({
                                "id": f"demo-{membership.user.public_id}-{code}-{day:%Y%m%d}-{number}",
                                "user": str(membership.user.public_id),
                                "product": code,
                                "name": generator.choice(names),
                                "occurred_at": moment.isoformat(),
                            })
                    day += timedelta(days=1)
        for organization_id, rows in batches.items():
            for start in range(0, len(rows), 1000):
                report = activity_record(organization_id=organization_id, rows=rows[start : start + 1000])
                accepted += report.accepted
                duplicates += report.duplicates
        self.stdout.write(
            f"Product activity demo: {accepted:,} events stored ({duplicates:,} already there) over {DAYS // 7} weeks; "
            "staff@ reads them at /staff/usage/"
        )
