"""Reads of the catalog."""

from __future__ import annotations

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
