"""What a partner's admin does for a linked customer: the manage page (its subscriptions, with
add seats, change edition, start a trial of another product, make a quote), and the price
pages where money moves, each showing the exact amount before its one button.

Every page goes through `link_for_partner` (subscription_for_partner): an unlinked customer,
another partner's, an ended link or a random id answer the partner pages' one 404."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from billing.exceptions import CheckoutInvalid
from billing.formats import day
from billing.models import Payment
from billing.selectors import (
    edition_of_product,
    invoice_of_request,
    invoice_payment_last,
    products_to_try,
)
from billing.services.billing_account import billing_account_of, payer_account_of
from billing.services.seats import seats_quote
from billing.services.subscriptions import edition_change_quote
from common.exceptions import FlywheelError

from ..documents import discount_label
from ..models import Partner
from ..quote_selectors import live_subscriptions_by_product, subscription_for_partner
from ..selectors import link_for_partner, tier_name
from ..services.on_behalf import (
    on_behalf_add_seats,
    on_behalf_change_edition,
    on_behalf_start_trial,
)
from . import partner_page


def _quote_key(request: HttpRequest) -> str:
    key = (request.POST.get("request_key") if request.method == "POST" else request.GET.get("quote")) or ""
    return key if 0 < len(key) <= 64 else ""


def _with_key(request: HttpRequest) -> HttpResponse:
    query = request.GET.copy()
    query["quote"] = uuid.uuid4().hex
    return redirect(f"{request.path}?{query.urlencode()}")


def _manage_url(customer) -> str:
    return reverse("partners:on_behalf_manage", args=[customer.public_id])


def _how_paid(subscription) -> dict:
    """How the partner pays a charge of this subscription, as its price page says it: on
    purchase-order terms (the subscription's own PO, or the partner's invoice terms), or by its
    card on file (or none yet)."""
    account = payer_account_of(subscription)
    on_terms = bool(subscription.purchase_order_number) or account.collection_method == account.Collection.INVOICE
    return {
        "on_terms": on_terms,
        "po_number": subscription.purchase_order_number or account.po_number,
        # A subscription bought against a PO is on the quote terms; otherwise the payer's own.
        "net_terms_days": settings.QUOTE_PO_NET_TERMS_DAYS if subscription.purchase_order_number else account.net_terms_days,
        "account": account,
        "payer": account.organization,
    }


def _to_payment(payment: Payment) -> HttpResponse:
    return redirect("payment_status", payment.public_id)


@never_cache
@partner_page()
def manage(request: HttpRequest, partner: Partner, customer_id: uuid.UUID) -> HttpResponse:
    """/partner/customers/<id>/manage/: the customer's subscriptions and what the partner may
    do for each (its admins: add seats, change edition; a trial of another product; a quote)."""
    link = link_for_partner(partner=partner, customer_id=customer_id)
    customer = link.customer
    subscriptions = sorted(live_subscriptions_by_product(organization=customer).values(), key=lambda s: s.product.position)
    is_admin = partner.organization.memberships.filter(user=request.user, role="admin").exists()
    return render(
        request,
        "partners/on_behalf/manage.html",
        {
            "partner": partner,
            "customer": customer,
            "subscriptions": subscriptions,
            "to_try": products_to_try(organization=customer),
            "is_admin": is_admin,
            "tier_name": tier_name(partner.tier),
            "account": billing_account_of(partner.organization),
        },
    )


@never_cache
@partner_page(admin=True)
def add_seats(request: HttpRequest, partner: Partner, customer_id: uuid.UUID, subscription_id: uuid.UUID) -> HttpResponse:
    """The exact prorated price of more seats at the partner's rate, then one click."""
    subscription = subscription_for_partner(partner=partner, customer_id=customer_id, subscription_id=subscription_id)
    key = _quote_key(request)
    if request.method == "GET" and not key:
        return _with_key(request)
    data = request.POST if request.method == "POST" else request.GET
    try:
        seats = int(data.get("seats") or 1)
    except ValueError:
        seats = 0
    done = invoice_of_request(organization=subscription.organization, request_key=key)
    if done is not None and done.bill_to_id != partner.organization_id:
        done = None  # only the partner's own purchases are shown as done
    error, quote = "", None
    if request.method == "POST":
        try:
            outcome = on_behalf_add_seats(
                partner=partner,
                actor=request.user,
                subscription=subscription,
                seats=seats,
                request_key=key,
                quote_token=request.POST.get("quote_token", ""),
            )
        except FlywheelError as refusal:
            error = refusal.message
        else:
            if isinstance(outcome, Payment):
                return _to_payment(outcome)
            messages.success(request, f"{seats} seat{'s' if seats != 1 else ''} added to {subscription.product.name} for {subscription.organization.name}.")
            return redirect(_manage_url(subscription.organization))
    if done is None:
        try:
            quote = seats_quote(subscription=subscription, seats=seats)
        except CheckoutInvalid as refusal:
            error = error or refusal.message
    return render(
        request,
        "partners/on_behalf/add_seats.html",
        {
            "partner": partner,
            "customer": subscription.organization,
            "subscription": subscription,
            "seats": seats,
            "quote": quote,
            "done": done,
            "done_payment": invoice_payment_last(invoice=done) if done else None,
            "error": error,
            "payment": _how_paid(subscription),
            "request_key": key,
            "tier_name": tier_name(partner.tier),
            "discount_label": discount_label(tier=partner.tier, discount_bp=quote.discount_bp) if quote else "",
        },
        status=400 if error and request.method == "POST" else 200,
    )


@never_cache
@partner_page(admin=True)
def change_edition(request: HttpRequest, partner: Partner, customer_id: uuid.UUID, subscription_id: uuid.UUID) -> HttpResponse:
    """The exact price of another edition at the partner's rate (an upgrade now, prorated; a
    downgrade at renewal), then one click."""
    subscription = subscription_for_partner(partner=partner, customer_id=customer_id, subscription_id=subscription_id)
    key = _quote_key(request)
    if request.method == "GET" and not key:
        return _with_key(request)
    data = request.POST if request.method == "POST" else request.GET
    edition = edition_of_product(product=subscription.product, code=data.get("edition", ""), active_only=True)
    error, quote = "", None
    if edition is None:
        error = f"Choose an edition of {subscription.product.name}."
    done = invoice_of_request(organization=subscription.organization, request_key=key)
    if done is not None and done.bill_to_id != partner.organization_id:
        done = None  # only the partner's own purchases are shown as done
    if request.method == "POST" and edition is not None:
        try:
            outcome = on_behalf_change_edition(
                partner=partner,
                actor=request.user,
                subscription=subscription,
                edition=edition,
                request_key=key,
                quote_token=request.POST.get("quote_token", ""),
            )
        except FlywheelError as refusal:
            error = refusal.message
        else:
            if isinstance(outcome, Payment):
                return _to_payment(outcome)
            messages.success(
                request,
                f"{subscription.product.name} moves to {edition.name} on {day(outcome.current_period_end)}."
                if outcome.pending_edition_id
                else f"{subscription.product.name} is now on {outcome.edition.name}.",
            )
            return redirect(_manage_url(subscription.organization))
    subscription.refresh_from_db()
    if done is None and edition is not None:
        try:
            quote = edition_change_quote(subscription=subscription, edition=edition)
        except CheckoutInvalid as refusal:
            error = error or refusal.message
    return render(
        request,
        "partners/on_behalf/change_edition.html",
        {
            "partner": partner,
            "customer": subscription.organization,
            "subscription": subscription,
            "edition": edition,
            "quote": quote,
            "done": done,
            "done_payment": invoice_payment_last(invoice=done) if done else None,
            "error": error,
            "payment": _how_paid(subscription),
            "request_key": key,
            "tier_name": tier_name(partner.tier),
            "discount_label": discount_label(tier=partner.tier, discount_bp=quote.discount_bp) if quote else "",
        },
        status=400 if error and request.method == "POST" else 200,
    )


@require_POST
@partner_page(admin=True)
def start_trial(request: HttpRequest, partner: Partner, customer_id: uuid.UUID) -> HttpResponse:
    """Start a trial of another product for the customer (no money moves)."""
    customer = link_for_partner(partner=partner, customer_id=customer_id).customer
    try:
        subscription = on_behalf_start_trial(
            partner=partner, actor=request.user, customer=customer, product_code=request.POST.get("product", "")
        )
    except FlywheelError as refusal:
        messages.error(request, refusal.message)
        return redirect(_manage_url(customer))
    messages.success(request, f"{customer.name} is trying {subscription.edition}.")
    return redirect(_manage_url(customer))
