"""Products' kit secrets from the command line (docs/in-product.md, "Rotating a secret").

    manage.py kit_secret issue tracker        # a new secret; printed once
    manage.py kit_secret list [tracker]       # key ids, live or retired (never the secrets)
    manage.py kit_secret retire tracker_1a2b3c4d
    manage.py kit_secret --env-file var/demo-product.env
        # the demo product's configuration: for each builtin product, its newest live secret
        # (issued only when it has none) as FLYWHEEL_KIT_SECRET_<PRODUCT>= and
        # FLYWHEEL_KIT_KID_<PRODUCT>= lines; other lines of the file are kept.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.models import Product
from inproduct.identity import kit_secret_ensure, kit_secret_issue, kit_secret_retire
from inproduct.models import KitSecret

SECRET_VARIABLE = "FLYWHEEL_KIT_SECRET_"  # noqa: S105 - a variable name, not a secret
KEY_ID_VARIABLE = "FLYWHEEL_KIT_KID_"


def variable_suffix(product: Product) -> str:
    """`servicedesk` -> SERVICEDESK, `service-desk` -> SERVICE_DESK."""
    return product.code.upper().replace("-", "_")


def env_file_write(path: Path, lines: dict[str, str]) -> None:
    """Replace the kit's variables in the env file at `path`, keeping its other lines; the file
    is readable by its owner only and replaced whole (never half-written)."""
    kept: list[str] = []
    if path.exists():
        kept = [
            line
            for line in path.read_text(encoding="utf-8").splitlines()
            if not line.startswith((SECRET_VARIABLE, KEY_ID_VARIABLE))
        ]
    content = "\n".join([*kept, *(f"{name}={value}" for name, value in lines.items())]) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class Command(BaseCommand):
    help = "Issue, list and retire the products' kit secrets; write the demo product's env file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--env-file",
            metavar="PATH",
            help="write FLYWHEEL_KIT_SECRET_<PRODUCT> and FLYWHEEL_KIT_KID_<PRODUCT> for every builtin "
            "product to PATH, issuing a secret only to a product that has no live one",
        )
        actions = parser.add_subparsers(dest="action", metavar="{issue,list,retire}")
        issue = actions.add_parser("issue", help="issue a new secret to a product (printed once)")
        issue.add_argument("product", help="the product's code, as in catalog.toml")
        listing = actions.add_parser("list", help="list the secrets' key ids (never the secrets)")
        listing.add_argument("product", nargs="?", help="only this product's")
        retire = actions.add_parser("retire", help="retire a secret: its tokens are refused from now on")
        retire.add_argument("key_id", help="the key id (the tokens' kid), like tracker_1a2b3c4d")

    def handle(self, *args, action: str | None = None, env_file: str | None = None, **options) -> None:
        if action is None and not env_file:
            raise CommandError("Say what to do: issue PRODUCT, list [PRODUCT], retire KEY_ID, or --env-file PATH.")
        if action == "issue":
            kit_secret, value = kit_secret_issue(product=self._product(options["product"]))
            suffix = variable_suffix(kit_secret.product)
            self.stdout.write(
                f"Issued {kit_secret.key_id} to {kit_secret.product.name}. Put these in the product server's "
                "configuration now: the secret is not shown again.\n"
                f"{SECRET_VARIABLE}{suffix}={value}\n{KEY_ID_VARIABLE}{suffix}={kit_secret.key_id}"
            )
        elif action == "list":
            self._list(options.get("product"))
        elif action == "retire":
            kit_secret = KitSecret.objects.select_related("product").filter(key_id=options["key_id"]).first()
            if kit_secret is None:
                raise CommandError(f"There is no kit secret with the key id {options['key_id']!r} (see: kit_secret list).")
            if kit_secret.retired_at is not None:
                self.stdout.write(f"{kit_secret.key_id} was already retired on {kit_secret.retired_at:%Y-%m-%d %H:%M} UTC.")
                return
            kit_secret_retire(kit_secret=kit_secret)
            self.stdout.write(f"Retired {kit_secret.key_id}: tokens signed with it are refused from now on.")
        if env_file:
            self._env_file(Path(env_file))

    def _product(self, code: str) -> Product:
        product = Product.objects.filter(code=code, is_active=True).first()
        if product is None:
            codes = ", ".join(Product.objects.filter(is_active=True).values_list("code", flat=True))
            raise CommandError(f"There is no product {code!r} in the catalog; the products are: {codes}.")
        return product

    def _list(self, code: str | None) -> None:
        secrets = KitSecret.objects.select_related("product").order_by("product__position", "-created_at")
        if code:
            secrets = secrets.filter(product=self._product(code))
        if not secrets:
            self.stdout.write("No kit secrets yet (issue one: kit_secret issue PRODUCT).")
        for kit_secret in secrets:
            state = "live" if kit_secret.retired_at is None else f"retired {kit_secret.retired_at:%Y-%m-%d %H:%M} UTC"
            self.stdout.write(
                f"{kit_secret.key_id:<28} {kit_secret.product.code:<14} issued {kit_secret.created_at:%Y-%m-%d %H:%M} UTC  {state}"
            )

    def _env_file(self, path: Path) -> None:
        lines: dict[str, str] = {}
        products = Product.objects.filter(is_active=True, provisioner=Product.Provisioner.BUILTIN).order_by("position")
        for product in products:
            kit_secret, issued = kit_secret_ensure(product=product)
            suffix = variable_suffix(product)
            lines[f"{SECRET_VARIABLE}{suffix}"] = kit_secret.secret
            lines[f"{KEY_ID_VARIABLE}{suffix}"] = kit_secret.key_id
            self.stdout.write(f"{product.code}: {'issued' if issued else 'kept'} {kit_secret.key_id}")
        if not lines:
            raise CommandError("No builtin product in the catalog: run catalog_sync first.")
        env_file_write(path, lines)
        self.stdout.write(f"Wrote {len(lines) // 2} products' kit secrets to {path}.")
