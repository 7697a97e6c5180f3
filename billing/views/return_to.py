"""`return_to`: the product page a person came from (the kit's link actions pass it, docs/in-product.md).

Billing's pages carry it from page to page (links, forms, the redirects between them) and,
once what the person came for is done, offer "Back to <product>" (a button where the page
shows the outcome, a redirect where the page already redirected somewhere). Only an address
on a product's origin counts (catalog.selectors.origin_is_a_products): anything else is
ignored, so the parameter cannot send anyone to another site.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.http import HttpRequest

from accounts.models import Organization
from catalog.models import Product
from catalog.selectors import origin_is_a_products, origin_of, product_kit_origins

from ..selectors import subscriptions_of

RETURN_TO = "return_to"
MAX_LENGTH = 2000


@dataclass(frozen=True)
class ReturnTrip:
    """Where "Back to <product>" goes, and the product's name when the page knows it."""

    url: str
    product_name: str

    @property
    def label(self) -> str:
        return f"Back to {self.product_name}" if self.product_name else "Back to your product"

    @property
    def query(self) -> str:
        """`return_to=<url>`, to add to an address on Flywheel."""
        return urlencode({RETURN_TO: self.url})


def return_trip_of(
    request: HttpRequest, *, product: Product | None = None, organization: Organization | None = None
) -> ReturnTrip | None:
    """The request's `return_to` (form field, else query) when it is a product's page, else
    None. Named after `product` when the page is about one; else after the one product of
    `organization` that runs on that origin, if only one does."""
    url = (request.POST.get(RETURN_TO) if request.method == "POST" else "") or request.GET.get(RETURN_TO) or ""
    if not url or len(url) > MAX_LENGTH or any(character in url for character in "\r\n\\"):
        return None
    origin = origin_of(url)
    if not origin or not origin_is_a_products(origin):
        return None
    if product is None and organization is not None:
        products = {
            subscription.product.pk: subscription.product
            for subscription in subscriptions_of(organization=organization)
            if origin in product_kit_origins(subscription.product)
        }
        product = next(iter(products.values())) if len(products) == 1 else None
    return ReturnTrip(url=url, product_name=product.name if product else "")


def with_return_trip(path: str, trip: ReturnTrip | None) -> str:
    """`path` (an address on Flywheel, perhaps with a #fragment) carrying the trip back, if
    there is one."""
    if trip is None or not path:
        return path
    address, hash_mark, fragment = path.partition("#")
    return f"{address}{'&' if '?' in address else '?'}{trip.query}{hash_mark}{fragment}"
