"""Quotes' pages: the partner's quote builder for a linked customer, the customer admin's direct
quote builder, a quote's page and PDF (accept, withdraw), and the lists of quotes.

Every page reaches a customer through `link_for_partner` (partner side) or the current
organization's admin membership (customer side); anything else is the same 404 with one
sentence."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.models import Membership, Organization
from accounts.services import seats_in_use
from billing.models import Subscription
from billing.selectors import invoice_payment_last
from billing.services.billing_account import billing_account_of
from catalog.models import AddOn, Edition, Product
from catalog.selectors import products_for_sale
from common.exceptions import FlywheelError, NotFound

from ..documents import quote_document, quote_pdf
from ..exceptions import QuoteInvalid
from ..models import Partner, Quote
from ..quote_selectors import (
    get_quote_for_viewer,
    live_subscriptions_by_product,
    quotes_of_customer,
    quotes_of_partner,
)
from ..selectors import link_for_partner, partner_for_member, tier_discount_bp, tier_name
from ..services.quotes import (
    QuoteItem,
    invoices_of_quote,
    quote_accept,
    quote_create,
    quote_price,
    quote_withdraw,
)
from . import not_found


def _current_partner(request: HttpRequest, *, admin: bool = False) -> Partner:
    return partner_for_member(user=request.user, organization=request.organization, admin=admin)  # type: ignore[attr-defined]


def _customer_admin_organization(request: HttpRequest) -> Organization:
    membership = getattr(request, "membership", None)
    if membership is None or membership.role != Membership.Role.ADMIN:
        raise NotFound("This page is for your organization's admins.")
    return membership.organization


# The builder -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductChoice:
    """One product on the builder: its paid editions and add-ons, what is chosen, what the
    customer has now."""

    product: Product
    editions: list[Edition]
    addons: list[AddOn]
    edition_code: str
    seats: int
    addon_codes: list[str]
    current: Subscription | None
    quoting_for: int | None = None  # the partner organization's id making the quote (None: direct)

    @property
    def managed_elsewhere(self) -> bool:
        """Billed to a payer other than the one quoting: only that payer may quote it."""
        return bool(self.current and self.current.billed_to_id and self.current.billed_to_id != self.quoting_for)

    @property
    def already_paid(self) -> bool:
        return bool(
            self.current
            and self.current.interval
            and self.current.status in (Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE)
        )


def _builder_choices(
    request: HttpRequest, organization: Organization, partner: Partner | None
) -> tuple[list[ProductChoice], list[QuoteItem], str]:
    """The products as the form chose them, and the items to price; a sentence when the form
    is not readable (an edition or add-on that is not the product's, seats not a number)."""
    data = request.POST if request.method == "POST" else request.GET
    current = live_subscriptions_by_product(organization=organization)
    in_use = max(1, seats_in_use(organization=organization))
    choices, items, error = [], [], ""
    for product in products_for_sale().order_by("position", "code"):
        editions = [edition for edition in product.editions.all() if not edition.is_free]
        addons = list(
            AddOn.objects.filter(product=product, is_active=True)
            .exclude(pricing=AddOn.Pricing.ONE_OFF)
            .select_related("min_edition")
            .order_by("position")
        )
        edition_code = data.get(f"edition_{product.code}", "")
        seats_raw = (data.get(f"seats_{product.code}") or "").strip()
        addon_codes = data.getlist(f"addon_{product.code}")
        try:
            seats = int(seats_raw) if seats_raw else in_use
        except ValueError:
            seats = in_use
            if edition_code and not error:
                error = f"Enter the seats of {product.name} as a whole number."
        choices.append(
            ProductChoice(
                product,
                editions,
                addons,
                edition_code,
                seats,
                addon_codes,
                current.get(product.pk),
                partner.organization_id if partner else None,
            )
        )
        if not edition_code:
            continue
        edition = next((option for option in editions if option.code == edition_code), None)
        if edition is None:
            error = error or f"{product.name} has no paid edition called {edition_code!r}."
            continue
        chosen = [addon for addon in addons if addon.code in addon_codes]
        if len(chosen) != len(set(addon_codes)):
            error = error or f"That add-on is not one of {product.name}'s."
            continue
        items.append(QuoteItem(edition=edition, seats=seats, addons=tuple(chosen)))
    return choices, items, error


def _builder(
    request: HttpRequest, *, organization: Organization, partner: Partner | None, cancel_url: str
) -> HttpResponse:
    choices, items, error = _builder_choices(request, organization, partner)
    data = request.POST if request.method == "POST" else request.GET
    annual_only = partner is not None and settings.PARTNER_ANNUAL_ONLY
    interval = Subscription.Interval.YEAR if annual_only else (data.get("interval") or Subscription.Interval.YEAR)
    note = data.get("note", "")
    price = None
    if items and not error:
        try:
            price = quote_price(
                organization=organization,
                partner_tier=partner.tier if partner else None,
                interval=interval,
                items=items,
                partner_organization=partner.organization if partner else None,
            )
        except QuoteInvalid as refusal:
            error = refusal.message
    elif not items and request.method == "POST" and not error:
        error = "Choose at least one product to quote."
    if request.method == "POST" and price is not None:
        try:
            quote = quote_create(
                organization=organization, partner=partner, actor=request.user, interval=interval, items=items, note=note
            )
        except FlywheelError as refusal:
            error = refusal.message
        else:
            messages.success(request, f"Quote {quote.number} is ready: valid until {quote.valid_until:%-d %b %Y}.")
            return redirect("partners:quote", quote.public_id)
    context = {
        "organization": organization,
        "partner": partner,
        "choices": choices,
        "interval": interval,
        "annual_only": annual_only,
        "note": note,
        "price": price,
        "error": error,
        "tier_name": tier_name(partner.tier) if partner else "",
        "discount_bp": tier_discount_bp(partner.tier) if partner else 0,
        "valid_days": settings.QUOTE_VALID_DAYS,
        "cancel_url": cancel_url,
    }
    if request.headers.get("HX-Request"):
        return render(request, "partners/quotes/_price.html", context, status=400 if error and request.method == "POST" else 200)
    return render(request, "partners/quotes/new.html", context, status=400 if error and request.method == "POST" else 200)


@never_cache
@login_required
def partner_quote_new(request: HttpRequest, customer_id: uuid.UUID) -> HttpResponse:
    """/partner/customers/<id>/quotes/new/: a partner builds a quote for a linked customer,
    prices (with its discount) shown live as it chooses."""
    try:
        partner = _current_partner(request)
        link = link_for_partner(partner=partner, customer_id=customer_id)
    except NotFound as missing:
        return not_found(request, missing)
    return _builder(
        request,
        organization=link.customer,
        partner=partner,
        cancel_url=reverse("partners:on_behalf_manage", args=[link.customer.public_id]),
    )


@never_cache
@login_required
def direct_quote_new(request: HttpRequest) -> HttpResponse:
    """/app/quotes/new/: a customer admin builds a quote at list prices (for procurement)."""
    try:
        organization = _customer_admin_organization(request)
    except NotFound as missing:
        return not_found(request, missing)
    return _builder(request, organization=organization, partner=None, cancel_url=reverse("partners:customer_quotes"))


# A quote ---------------------------------------------------------------------------------------


def _quote_context(request: HttpRequest, access, *, error: str = "") -> dict:
    quote = access.quote
    invoices = invoices_of_quote(quote) if quote.status == Quote.Status.ACCEPTED else []
    payer = quote.partner.organization if quote.partner_id else quote.organization
    account = billing_account_of(payer) if access.can_accept else None
    return {
        "quote": quote,
        "document": quote_document(quote),
        "access": access,
        "invoices": [(invoice, invoice_payment_last(invoice=invoice)) for invoice in invoices],
        "account": account,
        "po_allowed": account is not None
        and (not quote.partner_id or account.collection_method == account.Collection.INVOICE),
        "net_terms_days": settings.QUOTE_PO_NET_TERMS_DAYS,
        "payer": payer,
        "error": error,
    }


@never_cache
@login_required
def quote_page(request: HttpRequest, quote_id: uuid.UUID) -> HttpResponse:
    """/quotes/<id>/: the quote (status, valid until, lines, subtotal, discount, total, bill-to,
    licensee), with Accept (card / purchase order) and Withdraw for whoever may."""
    try:
        access = get_quote_for_viewer(user=request.user, organization=request.organization, quote_id=quote_id)  # type: ignore[attr-defined]
    except NotFound as missing:
        return not_found(request, missing)
    return render(request, "partners/quotes/quote.html", _quote_context(request, access))


@never_cache
@login_required
def quote_pdf_view(request: HttpRequest, quote_id: uuid.UUID) -> HttpResponse:
    """/quotes/<id>.pdf: the quote as a PDF, for whoever may see its page."""
    try:
        access = get_quote_for_viewer(user=request.user, organization=request.organization, quote_id=quote_id)  # type: ignore[attr-defined]
    except NotFound as missing:
        return not_found(request, missing)
    document = quote_document(access.quote)
    return HttpResponse(
        quote_pdf(document),
        content_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{document.filename}"'},
    )


@login_required
@require_POST
def quote_accept_view(request: HttpRequest, quote_id: uuid.UUID) -> HttpResponse:
    """Accept a quote: by card (the payer's card on file) or against a purchase order. A second
    accept finds it accepted and goes to what the first one bought."""
    try:
        access = get_quote_for_viewer(user=request.user, organization=request.organization, quote_id=quote_id)  # type: ignore[attr-defined]
    except NotFound as missing:
        return not_found(request, missing)
    if not access.can_accept:
        return not_found(request, NotFound("Only an admin of the organization that pays can accept this quote."))
    paid_with = request.POST.get("paid_with", "")
    try:
        invoices = quote_accept(
            quote=access.quote, actor=request.user, paid_with=paid_with, po_number=request.POST.get("po_number", "")
        )
    except FlywheelError as refusal:
        access.quote.refresh_from_db()
        return render(request, "partners/quotes/quote.html", _quote_context(request, access, error=refusal.message), status=400)
    payments = [invoice_payment_last(invoice=invoice) for invoice in invoices]
    live = [payment for payment in payments if payment is not None]
    if len(live) == 1 and paid_with == Quote.PaidWith.CARD:
        return redirect("payment_status", live[0].public_id)
    messages.success(request, f"Quote {access.quote.number} is accepted.")
    return redirect("partners:quote", access.quote.public_id)


@login_required
@require_POST
def quote_withdraw_view(request: HttpRequest, quote_id: uuid.UUID) -> HttpResponse:
    try:
        access = get_quote_for_viewer(user=request.user, organization=request.organization, quote_id=quote_id)  # type: ignore[attr-defined]
    except NotFound as missing:
        return not_found(request, missing)
    if not access.can_withdraw:
        return not_found(request, NotFound("Only the quote's maker can withdraw it."))
    try:
        quote = quote_withdraw(quote=access.quote, actor=request.user)
    except FlywheelError as refusal:
        return render(request, "partners/quotes/quote.html", _quote_context(request, access, error=refusal.message), status=400)
    messages.success(request, f"Quote {quote.number} is withdrawn: it can no longer be accepted.")
    return redirect("partners:quote", quote.public_id)


# Lists -----------------------------------------------------------------------------------------


@login_required
def customer_quotes(request: HttpRequest) -> HttpResponse:
    """/app/quotes/: the organization's quotes, partner and direct (its admins)."""
    try:
        organization = _customer_admin_organization(request)
    except NotFound as missing:
        return not_found(request, missing)
    quotes = list(quotes_of_customer(organization=organization))
    return render(
        request,
        "partners/quotes/customer_list.html",
        {"organization": organization, "rows": [(quote, quote_document(quote)) for quote in quotes]},
    )


@login_required
def partner_quotes(request: HttpRequest) -> HttpResponse:
    """/partner/quotes/: the partner's quotes for all its customers."""
    try:
        partner = _current_partner(request)
    except NotFound as missing:
        return not_found(request, missing)
    quotes = list(quotes_of_partner(partner=partner))
    return render(
        request,
        "partners/quotes/partner_list.html",
        {"partner": partner, "rows": [(quote, quote_document(quote)) for quote in quotes]},
    )
