from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from catalog.exceptions import CatalogError
from catalog.services import catalog_sync


class Command(BaseCommand):
    help = "Load the catalog file (products, editions, prices, trials) into the database."

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", help="Catalog file (default: settings.CATALOG_FILE)")

    def handle(self, *args, path=None, **options):
        try:
            report = catalog_sync(path=Path(path) if path else None)
        except CatalogError as error:
            raise CommandError(error.message) from None
        self.stdout.write(str(report))
