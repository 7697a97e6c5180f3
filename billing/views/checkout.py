"""The pages where money moves once its price is shown (checkout, added seats, an edition
change, the card on file), and the page a payment lands on."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django_htmx.http import HttpResponseClientRefresh

from accounts.exceptions import FlywheelError
from accounts.services import seats_in_use
from common.exceptions import NotFound

from ..exceptions import CheckoutInvalid
from ..formats import day
from ..models import Invoice, Payment, Subscription
from ..selectors import (
    edition_of_product,
    editions_to_buy,
    get_open_invoice_for_organization,
    get_payment_for_user,
    invoice_failed_payment,
    invoice_of_request,
    invoice_paid_last,
    invoice_payment_last,
)
from ..services.billing_account import billing_account_of, card_setup_complete, card_setup_start
from ..services.checkout import checkout_quote, subscription_checkout
from ..services.payments import invoice_pay_now, payment_refresh
from ..services.seats import seats_quote, subscription_add_seats
from ..services.subscriptions import edition_change_quote, subscription_change_edition
from .access import admin_organization, admin_subscription
from .managed import managed_page
from .return_to import ReturnTrip, return_trip_of, with_return_trip


def to_payment(payment: Payment, trip: ReturnTrip | None) -> HttpResponse:
    """The payment's page, carrying the way back to the product."""
    return redirect(with_return_trip(reverse("payment_status", args=[payment.public_id]), trip))


def _checkout_choice(request: HttpRequest, subscription):
    data = request.POST if request.method == "POST" else request.GET
    editions = editions_to_buy(subscription=subscription)
    edition = next((e for e in editions if e.code == data.get("edition")), None) or next(
        (e for e in editions if e.pk == subscription.edition_id), editions[0] if editions else None
    )
    try:
        seats = int(data.get("seats") or max(1, seats_in_use(organization=subscription.organization)))
    except ValueError:
        seats = -1
    interval = data.get("interval") or Subscription.Interval.MONTH
    return editions, edition, seats, interval


@never_cache
@login_required
def checkout(request: HttpRequest, subscription_id: uuid.UUID) -> HttpResponse:
    """Pick edition, seats and billing period, see the exact price, enter a card, pay."""
    subscription = admin_subscription(request, subscription_id)
    if subscription.billed_to_id:
        return managed_page(request, subscription, kind="product")
    organization = subscription.organization
    trip = return_trip_of(request, product=subscription.product)
    editions, edition, seats, interval = _checkout_choice(request, subscription)
    error = ""
    quote = None
    if subscription.status == Subscription.Status.ACTIVE and subscription.interval:
        # Already paid for (Back after paying, an old tab): say so, with no button to pay again.
        return render(
            request,
            "billing/checkout.html",
            {
                "subscription": subscription,
                "paid_invoice": invoice_paid_last(subscription=subscription),
                "return_trip": trip,
            },
            status=400 if request.method == "POST" else 200,
        )
    if edition is not None:
        try:
            quote = checkout_quote(subscription=subscription, edition=edition, seats=seats, interval=interval)
        except CheckoutInvalid as refusal:
            error = refusal.message
    if request.method == "POST" and quote is not None:
        try:
            setup_intent_id = request.POST.get("setup_intent", "")
            if setup_intent_id:
                card_setup_complete(organization=organization, actor=request.user, setup_intent_id=setup_intent_id)
            payment = subscription_checkout(
                subscription=subscription, actor=request.user, edition=edition, seats=seats, interval=interval
            )
        except FlywheelError as refusal:
            error = refusal.message
        else:
            return to_payment(payment, trip)
    account = billing_account_of(organization)
    setup = None
    if not request.htmx and (not account.has_card or request.GET.get("new_card") or request.POST.get("setup_intent")):
        try:
            setup = card_setup_start(organization=organization, actor=request.user)
        except FlywheelError as refusal:
            error = error or refusal.message
    template = "billing/_quote.html" if request.htmx and request.method == "GET" else "billing/checkout.html"
    return render(
        request,
        template,
        {
            "subscription": subscription,
            "editions": editions,
            "edition": edition,
            "seats": seats,
            "interval": interval,
            "quote": quote,
            "error": error,
            "account": account,
            "setup": setup,
            "stripe_js_url": settings.STRIPE_JS_URL,
            "stripe_publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
            "return_trip": trip,
        },
        status=400 if error and request.method == "POST" else 200,
    )


@never_cache
@login_required
def payment_status(request: HttpRequest, payment_id: uuid.UUID) -> HttpResponse:
    """Where a payment lands: polls until Stripe's answer is recorded."""
    try:
        payment = get_payment_for_user(user=request.user, payment_public_id=payment_id)
    except NotFound:
        raise Http404 from None
    trip = return_trip_of(request, product=payment.invoice.subscription.product if payment.invoice.subscription_id else None)
    if request.method == "POST" and payment.stripe_payment_intent_id:
        # After 3-D Secure in the browser: read the intent back from Stripe.
        try:
            payment_refresh(payment=payment)
        except FlywheelError as error:
            messages.error(request, error.message)
        return to_payment(payment, trip)
    if request.htmx and payment.status == payment.Status.REQUIRES_ACTION:
        # The bank wants the customer: reload the whole page, which brings Stripe.js.
        return HttpResponseClientRefresh()
    template = "billing/_payment.html" if request.htmx else "billing/payment.html"
    return render(
        request,
        template,
        {
            "payment": payment,
            "stripe_js_url": settings.STRIPE_JS_URL,
            "stripe_publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
            "return_trip": trip,
        },
    )


def with_quote_key(request: HttpRequest) -> HttpResponse:
    """The same price page, with a key of its own in the address. Confirming uses it as the
    request key, so the page (Back, a reload, another tab) can tell before its button whether
    this price was already confirmed, and a second confirmation finds the first one's payment."""
    query = request.GET.copy()
    query["quote"] = uuid.uuid4().hex
    return redirect(f"{request.path}?{query.urlencode()}")


def quote_key_of(request: HttpRequest) -> str:
    key = (request.POST.get("request_key") if request.method == "POST" else request.GET.get("quote")) or ""
    return key if 0 < len(key) <= 64 else ""


@never_cache
@login_required
def add_seats(request: HttpRequest, subscription_id: uuid.UUID) -> HttpResponse:
    """Add seats: the exact prorated charge is shown, one click confirms it. A price already
    confirmed says so (and links its invoice) instead of offering to pay again."""
    subscription = admin_subscription(request, subscription_id)
    if subscription.billed_to_id:
        return managed_page(request, subscription, kind="seats")
    organization = subscription.organization
    key = quote_key_of(request)
    if request.method == "GET" and not key:
        return with_quote_key(request)
    trip = return_trip_of(request, product=subscription.product)
    data = request.POST if request.method == "POST" else request.GET
    try:
        seats = int(data.get("seats") or 1)
    except ValueError:
        seats = 0
    done = invoice_of_request(organization=organization, request_key=key)
    error = ""
    quote = None
    if done is None:
        try:
            quote = seats_quote(subscription=subscription, seats=seats)
        except CheckoutInvalid as refusal:
            error = refusal.message
    if request.method == "POST" and (quote is not None or done is not None):
        try:
            payment = subscription_add_seats(
                subscription=subscription,
                actor=request.user,
                seats=seats,
                request_key=key,
                quote_token=request.POST.get("quote_token", ""),
            )
        except FlywheelError as refusal:
            error = refusal.message
        else:
            if isinstance(payment, Invoice):  # on purchase-order terms: granted now, invoiced
                messages.success(request, f"{seats} seat{'s' if seats != 1 else ''} added; invoice {payment.number} is on its way.")
                return redirect(with_return_trip(reverse("invoice", args=[payment.public_id]), trip))
            return to_payment(payment, trip)
    return render(
        request,
        "billing/add_seats.html",
        {
            "subscription": subscription,
            "seats": seats,
            "quote": quote,
            "done": done,
            "done_payment": invoice_payment_last(invoice=done) if done else None,
            "error": error,
            "account": billing_account_of(organization),
            "request_key": key or uuid.uuid4().hex,
            "return_trip": trip,
        },
        status=400 if error and request.method == "POST" else 200,
    )


@never_cache
@login_required
def change_edition(request: HttpRequest, subscription_id: uuid.UUID) -> HttpResponse:
    """Change edition: the exact price (the new edition for the rest of the period, the credit
    for the unused old one, the total) is shown first, one click confirms it. A stale price is
    refused with the new one shown; a price already confirmed says so instead of a button."""
    subscription = admin_subscription(request, subscription_id)
    if subscription.billed_to_id:
        return managed_page(request, subscription, kind="edition")
    organization = subscription.organization
    key = quote_key_of(request)
    if request.method == "GET" and not key:
        return with_quote_key(request)
    trip = return_trip_of(request, product=subscription.product)
    data = request.POST if request.method == "POST" else request.GET
    edition = edition_of_product(product=subscription.product, code=data.get("edition", ""), active_only=True)
    if edition is None:
        messages.error(request, "Choose an edition of this product.")
        return redirect("billing")
    done = invoice_of_request(organization=organization, request_key=key)
    error = ""
    if request.method == "POST" and done is None:
        try:
            outcome = subscription_change_edition(
                subscription=subscription,
                actor=request.user,
                edition=edition,
                request_key=key,
                quote_token=request.POST.get("quote_token", ""),
            )
        except FlywheelError as refusal:
            error = refusal.message
        else:
            if isinstance(outcome, Payment):
                return to_payment(outcome, trip)
            if trip is not None:
                return redirect(trip.url)  # nothing to pay: straight back to the product
            messages.success(
                request,
                f"{subscription.product.name} moves to {outcome.pending_edition.name} on {day(outcome.current_period_end)}."
                if outcome.pending_edition_id
                else f"{subscription.product.name} is now on {outcome.edition.name}.",
            )
            return redirect("billing")
    elif request.method == "POST" and done is not None:
        payment = invoice_payment_last(invoice=done)
        if payment is not None:
            return to_payment(payment, trip)
    subscription.refresh_from_db()
    quote = None
    if done is None:
        try:
            quote = edition_change_quote(subscription=subscription, edition=edition)
        except CheckoutInvalid as refusal:
            error = error or refusal.message
    return render(
        request,
        "billing/change_edition.html",
        {
            "subscription": subscription,
            "edition": edition,
            "quote": quote,
            "done": done,
            "done_payment": invoice_payment_last(invoice=done) if done else None,
            "error": error,
            "account": billing_account_of(organization),
            "request_key": key,
            "return_trip": trip,
        },
        status=400 if error and request.method == "POST" else 200,
    )


@never_cache
@login_required
def card_update(request: HttpRequest) -> HttpResponse:
    """Replace the card on file (Stripe.js card element, SetupIntent, 3-D Secure if asked).

    With `invoice` (after a declined payment: "Try another card"), the new card then pays that
    same open invoice, at the price already shown, instead of starting over.
    """
    organization = admin_organization(request)
    trip = return_trip_of(request, organization=organization)
    retry_invoice = None
    retry_invoice_id = request.POST.get("invoice") or request.GET.get("invoice")
    if retry_invoice_id:
        try:
            retry_invoice = get_open_invoice_for_organization(
                organization=organization, invoice_public_id=uuid.UUID(str(retry_invoice_id))
            )
        except (NotFound, ValueError):
            raise Http404 from None
    error = ""
    if request.method == "POST":
        try:
            card_setup_complete(
                organization=organization, actor=request.user, setup_intent_id=request.POST.get("setup_intent", "")
            )
        except NotFound:
            error = "The card form expired; enter the card again."
        except FlywheelError as refusal:
            error = refusal.message
        else:
            account = billing_account_of(organization)
            if retry_invoice is None:
                if trip is not None:
                    return redirect(trip.url)  # the card was what the product asked for
                messages.success(request, f"{account.card_brand.capitalize()} ending {account.card_last4} is now the card on file.")
                return redirect("billing")
            messages.success(request, f"{account.card_brand.capitalize()} ending {account.card_last4} is now the card on file.")
            try:
                payment = invoice_pay_now(invoice=retry_invoice, actor=request.user)
            except FlywheelError as refusal:
                messages.error(request, refusal.message)
                return redirect(with_return_trip(reverse("billing"), trip))
            return to_payment(payment, trip)
    try:
        setup = card_setup_start(organization=organization, actor=request.user)
    except FlywheelError as refusal:
        setup, error = None, error or refusal.message
    return render(
        request,
        "billing/card.html",
        {
            "setup": setup,
            "error": error,
            "retry_invoice": retry_invoice,
            "retry_failed_payment": invoice_failed_payment(invoice=retry_invoice) if retry_invoice else None,
            "account": billing_account_of(organization),
            "stripe_js_url": settings.STRIPE_JS_URL,
            "stripe_publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
            "return_trip": trip,
        },
        status=400 if error and request.method == "POST" else 200,
    )
