"""Create the invite-nudge experiment (docs/in-product.md, "The invite-nudge experiment")."""

from django.core.management.base import BaseCommand

from inproduct.nudges import EXPERIMENT_KEY, experiment_ensure


class Command(BaseCommand):
    help = "Create the invite-nudge experiment (a holdout and three nudges); an existing one is kept as staff set it."

    def add_arguments(self, parser):
        parser.add_argument("--replace", action="store_true", help="Overwrite the experiment's definition as shipped.")

    def handle(self, *args, replace: bool = False, **options):
        if experiment_ensure(replace=replace):
            self.stdout.write(f"Experiment {EXPERIMENT_KEY} loaded: /admin/experiments/, /staff/experiments/{EXPERIMENT_KEY}/")
        else:
            self.stdout.write(f"Experiment {EXPERIMENT_KEY} exists; kept as it is (--replace to overwrite).")
