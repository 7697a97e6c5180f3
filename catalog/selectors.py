"""Reads of the catalog."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import Prefetch, QuerySet

from .exceptions import UnknownEdition
from .models import Edition, Product


def products_for_sale() -> QuerySet[Product]:
    return Product.objects.filter(is_active=True).prefetch_related(
        Prefetch("editions", queryset=Edition.objects.filter(is_active=True).order_by("rank"))
    )


def edition_get(*, product_code: str, edition_code: str) -> Edition:
    """The active edition with these codes, or UnknownEdition naming what was not found."""
    product = Product.objects.filter(code=product_code, is_active=True).first()
    if product is None:
        raise UnknownEdition(f"There is no product called {product_code!r}.")
    edition = (
        Edition.objects.select_related("product")
        .filter(product=product, code=edition_code, is_active=True)
        .first()
    )
    if edition is None:
        available = ", ".join(
            product.editions.filter(is_active=True).order_by("rank").values_list("code", flat=True)
        )
        raise UnknownEdition(
            f"{product.name} has no edition called {edition_code!r}; choose one of: {available}."
        )
    return edition


def edition_default_for_trial(*, product_code: str) -> Edition:
    """The smallest paid edition of a product: what a landing link without an edition trials."""
    edition = (
        Edition.objects.select_related("product")
        .filter(product__code=product_code, product__is_active=True, is_active=True, trial_days__gt=0)
        .order_by("rank")
        .first()
    )
    if edition is None:
        raise UnknownEdition(f"There is no product called {product_code!r} with a trial.")
    return edition


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, lower case; "" when it has no http(s) scheme or host, or
    is not a URL at all (`http://[`, a port that is not a number: what anyone may send)."""
    try:
        parts = urlsplit(url or "")
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    return f"{parts.scheme}://{parts.netloc.lower()}"


def product_kit_origins(product: Product) -> list[str]:
    """The origins `product`'s pages run on: those the catalog lists and, for a product the
    builtin provisioner serves, the demo product's (settings.DEMO_PRODUCT_URL)."""
    origins = [origin_of(origin) for origin in product.kit_origins or []]
    if product.provisioner == Product.Provisioner.BUILTIN:
        origins.append(origin_of(settings.DEMO_PRODUCT_URL))
    return sorted({origin for origin in origins if origin})


def origin_is_a_products(origin: str) -> bool:
    """Does any active product run its pages on `origin`? (Where Flywheel's pages may go back to.)"""
    wanted = origin_of(origin)
    return bool(wanted) and any(wanted in product_kit_origins(product) for product in Product.objects.filter(is_active=True))
