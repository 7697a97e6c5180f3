"""A subscription billed to a partner, as the customer's admins meet it on billing's pages:
who manages it, and the way to ask them (the partners app's pages, linked by URL name: billing
never imports the partners app)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse

from ..models import Subscription
from ..services.billing_account import managed_by_sentence


def partner_url(name: str, query: str = "") -> str | None:
    """The address of a partners page (billing links to it by URL name and never imports the
    partners app); None when this installation has no such page."""
    try:
        return reverse(f"partners:{name}") + (f"?{query}" if query else "")
    except NoReverseMatch:
        return None


def partner_ask_urls(product_code: str) -> dict[str, str | None]:
    """Where "Ask <partner>" leads for each thing an admin would otherwise do: the partners
    app's ask page, told the product and what is wanted."""
    return {
        kind: partner_url("ask", urlencode({"product": product_code, "kind": kind}))
        for kind in ("seats", "edition", "product", "addon", "other")
    }


def partner_links() -> dict[str, str | None]:
    """The billing page's links to the partners pages: the organization's partner, its quotes,
    a new quote (a direct quote to pay against a purchase order)."""
    return {
        "partner": partner_url("customer_partner"),
        "quotes": partner_url("customer_quotes"),
        "quote_new": partner_url("direct_quote_new"),
    }


def managed_page(request: HttpRequest, subscription: Subscription, *, kind: str) -> HttpResponse:
    """Instead of a price page (buy, seats, edition, add-on) for a subscription billed to a
    partner: who manages it and "Ask <partner>" for what was wanted (`kind`)."""
    return render(
        request,
        "billing/managed.html",
        {
            "subscription": subscription,
            "partner": subscription.billed_to,
            "sentence": managed_by_sentence(subscription),
            "ask_url": partner_ask_urls(subscription.product.code).get(kind),
        },
    )
