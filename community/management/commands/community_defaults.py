from django.core.management.base import BaseCommand

from community.defaults import community_defaults_ensure


class Command(BaseCommand):
    help = "Create the default business calendar and escalation policies that are missing."

    def handle(self, *args, **options):
        created = community_defaults_ensure()
        self.stdout.write(f"{created} created; existing calendars and policies left as they are.")
