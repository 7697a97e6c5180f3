"""What `make run` does before it starts the Procfile: `migrate`, `catalog_sync`, `demo_data`
(with the other apps' demo data) and the demo product's env file (`kit_secret --env-file
var/demo-product.env`), in one process, saying how long each took.

One process instead of six: each `manage.py` paid Django's start-up again, 2 to 4 s of CPU on
a small machine (bench/make_run.py). Every step stays a command of its own that can be run
alone. Refuses to run when FLYWHEEL_ENV=production (demo_data does).
"""

import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "migrate, catalog_sync, demo_data and the demo product's secrets in one process, for `make run` (never in production)."

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("dev_setup never runs in production.")
        took = {}
        for step, command, arguments in (
            ("migrate", "migrate", {"interactive": False, "verbosity": 0}),
            ("catalog_sync", "catalog_sync", {}),
            ("demo data", "demo_data", {}),
            # The demo product's secrets (FLYWHEEL_KIT_SECRET_<PRODUCT>, ..._KID_<PRODUCT>), which
            # it reads from this file: issued once, then the same at every run.
            ("demo product", "kit_secret", {"env_file": str(settings.VAR_DIR / "demo-product.env")}),
        ):
            self.stdout.write(f"==> {step}")
            self.stdout.flush()
            start, cpu = time.monotonic(), time.process_time()
            call_command(command, stdout=self.stdout, stderr=self.stderr, **arguments)
            took[step] = (time.monotonic() - start, time.process_time() - cpu)
        # The CPU time says what the step costs; the wall time also how busy the machine was.
        self.stdout.write(
            "==> setup took "
            + ", ".join(f"{step} {seconds:.1f} s (CPU {cpu:.1f} s)" for step, (seconds, cpu) in took.items())
        )
