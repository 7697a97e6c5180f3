"""CORS for the kit's endpoints (docs/in-product.md, "Origins and CORS").

A product's pages call Flywheel from their own origin, so every /kit/v1/ endpoint but the
script answers only the origins the product registered (catalog `kit_origins`, read through
`catalog.selectors.product_kit_origins`). The allowed origin is echoed, never `*`, with
`Vary: Origin`; no cookies are involved (the kit sends its session credential as a bearer
token), so `Access-Control-Allow-Credentials` is never sent. A refused origin gets a 403 with
no `Access-Control-Allow-Origin`: the browser then hides the answer from the page.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import patch_vary_headers

from catalog.models import Product
from catalog.selectors import origin_is_a_products, origin_of, product_kit_origins

ALLOWED_METHODS = "GET, POST"
ALLOWED_HEADERS = "Authorization, Content-Type"
PREFLIGHT_MAX_AGE_SECONDS = 600
# An Origin header longer than this is nobody's origin; it is cut short when quoted back.
ORIGIN_QUOTE_LIMIT = 200


def request_origin(request: HttpRequest) -> str:
    """The request's Origin header as sent ("" when absent)."""
    return request.headers.get("Origin", "").strip()


def origin_allowed_for(origin: str, product: Product) -> bool:
    """Is `origin` (as the browser sent it: scheme://host[:port]) one of `product`'s origins?"""
    return bool(origin) and origin_of(origin) == origin and origin in product_kit_origins(product)


def origin_allowed_for_any(origin: str) -> bool:
    """Is `origin` one of any active product's origins? (A preflight, or a refusal before the
    product is known, can only ask this.)"""
    return bool(origin) and origin_of(origin) == origin and origin_is_a_products(origin)


def _quoted(origin: str) -> str:
    return origin if len(origin) <= ORIGIN_QUOTE_LIMIT else origin[:ORIGIN_QUOTE_LIMIT] + "…"


def origin_refusal(origin: str, product: Product | None = None) -> str:
    """The sentence a refused origin is answered with."""
    if not origin:
        return (
            "Requests without an Origin header are not allowed: the kit calls Flywheel from a "
            "product's page in a browser."
        )
    if product is not None:
        return (
            f"Requests from {_quoted(origin)} are not allowed for {product.name}: "
            "register the origin in the catalog (kit_origins)."
        )
    return (
        f"Requests from {_quoted(origin)} are not allowed: no product registers this origin "
        "in the catalog (kit_origins)."
    )


def cors_allow(response: HttpResponse, origin: str) -> HttpResponse:
    """Let `origin`'s pages read `response` (the caller checked the origin is allowed)."""
    if origin:
        response["Access-Control-Allow-Origin"] = origin
    patch_vary_headers(response, ("Origin",))
    return response


def kit_json_error(detail: str, *, status: int, origin: str = "") -> JsonResponse:
    """A refusal: `{"detail": ...}`; readable by `origin`'s pages when one is given."""
    response = JsonResponse({"detail": detail}, status=status)
    return cors_allow(response, origin)  # type: ignore[return-value]


def cors_preflight(origin: str) -> HttpResponse:
    """The answer to an OPTIONS preflight. The preflight carries neither the token nor the
    credential, so it can only ask whether the origin is any product's; the request that
    follows is checked against its own product."""
    if not origin_allowed_for_any(origin):
        return kit_json_error(origin_refusal(origin), status=403)
    response = HttpResponse(status=204)
    response["Access-Control-Allow-Methods"] = ALLOWED_METHODS
    response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    response["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_SECONDS)
    return cors_allow(response, origin)
