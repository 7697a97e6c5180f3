"""Load experiments and GrowthBook features from a JSON file into the admin's tables."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from experiments.exceptions import DefinitionInvalid
from experiments.services import definitions_load


class Command(BaseCommand):
    help = "Create or update experiments and features from a JSON file (docs/experiments.md)."

    def add_arguments(self, parser):
        parser.add_argument("path")

    def handle(self, *args, path, **options):
        try:
            data = json.loads(Path(path).read_text())
            experiments, features = definitions_load(data=data)
        except (OSError, ValueError) as error:
            raise CommandError(f"Cannot read {path}: {error}") from error
        except DefinitionInvalid as error:
            raise CommandError(error.message) from error
        self.stdout.write(f"Loaded {experiments} experiment(s) and {features} feature(s).")
