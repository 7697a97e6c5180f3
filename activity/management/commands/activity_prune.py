"""Delete raw activity events older than ACTIVITY_RAW_RETENTION_DAYS (the day rollups stay)."""

from django.core.management.base import BaseCommand

from activity.services import activity_prune, retention_days


class Command(BaseCommand):
    help = "Delete raw activity events older than ACTIVITY_RAW_RETENTION_DAYS; the daily rollups every figure reads stay."

    def handle(self, *args, **options):
        deleted = activity_prune()
        self.stdout.write(f"Deleted {deleted:,} raw activity events older than {retention_days()} days.")
