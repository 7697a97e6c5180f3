"""Add-ons: the page that shows an add-on's exact price before its one button (built like
checkout.add_seats: a quote key in the address, a double click buys once, Back after paying
says so), and the billing page's forms to try, remove and keep one."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.exceptions import FlywheelError
from catalog.models import AddOn
from common.exceptions import NotFound

from ..exceptions import CheckoutInvalid, NoCardOnFile
from ..formats import day
from ..models import AddOnSubscription, Subscription
from ..selectors import (
    addon_of_product,
    addon_subscription_for_user,
    addon_subscription_live,
    invoice_of_request,
    invoice_payment_last,
)
from ..services.addons import addon_buy, addon_keep, addon_quote, addon_remove, addon_trial_start
from ..services.billing_account import billing_account_of
from .access import admin_organization, admin_subscription
from .checkout import quote_key_of, to_payment, with_quote_key
from .managed import managed_page
from .return_to import return_trip_of, with_return_trip


def _addon_of(subscription: Subscription, addon_code: str) -> AddOn:
    addon = addon_of_product(product=subscription.product, code=addon_code)
    if addon is None:
        raise Http404
    return addon


def _billing_anchor(subscription: Subscription) -> str:
    return f"{reverse('billing')}#addons-{subscription.product.code}"


@never_cache
@login_required
def addon_buy_page(request: HttpRequest, subscription_id: uuid.UUID, addon_code: str) -> HttpResponse:
    """Add an add-on: the exact price (prorated to the renewal date for a per-seat or flat
    add-on; the whole price for a one-off pack) is shown first, one click confirms it. A price
    already confirmed says so (and links its invoice or payment) instead of a second button;
    an add-on already added says so too."""
    subscription = admin_subscription(request, subscription_id)
    if subscription.billed_to_id:
        return managed_page(request, subscription, kind="addon")
    organization = subscription.organization
    addon = _addon_of(subscription, addon_code)
    key = quote_key_of(request)
    if request.method == "GET" and not key:
        return with_quote_key(request)
    trip = return_trip_of(request, product=subscription.product)
    done = invoice_of_request(organization=organization, request_key=key)
    live = None if addon.pricing == AddOn.Pricing.ONE_OFF else addon_subscription_live(subscription=subscription, addon=addon)
    already = live is not None and live.status != AddOnSubscription.Status.TRIALING
    error = ""
    no_card = False
    quote = None
    if done is None and not already:
        try:
            quote = addon_quote(subscription=subscription, addon=addon)
        except CheckoutInvalid as refusal:
            error = refusal.message
    if request.method == "POST":
        if done is not None:
            payment = invoice_payment_last(invoice=done)
            if payment is not None:
                return to_payment(payment, trip)
        elif quote is not None:
            try:
                invoice = addon_buy(
                    subscription=subscription,
                    addon=addon,
                    actor=request.user,
                    request_key=key,
                    quote_token=request.POST.get("quote_token", ""),
                )
            except NoCardOnFile as refusal:
                error, no_card = refusal.message, True
            except FlywheelError as refusal:
                error = refusal.message
            else:
                payment = invoice_payment_last(invoice=invoice)
                if payment is not None:
                    return to_payment(payment, trip)
                # Purchase-order terms: invoiced and granted at once, nothing to charge.
                if trip is not None:
                    return redirect(trip.url)
                messages.success(
                    request,
                    f"{addon.name} is added: invoice {invoice.number} goes to PO {invoice.po_number}, due on {day(invoice.due_at)}.",
                )
                return redirect(_training_or_billing(addon, subscription))
        elif not error:
            error = f"{addon.name} is already on {subscription.product.name}."
    return render(
        request,
        "billing/addon_buy.html",
        {
            "subscription": subscription,
            "addon": addon,
            "live": live,
            "already": already,
            "quote": quote,
            "done": done,
            "done_payment": invoice_payment_last(invoice=done) if done else None,
            "error": error,
            "no_card": no_card,
            "account": billing_account_of(organization),
            "credits_until": timezone.now() + timedelta(days=addon.training_valid_days) if addon.training_credits else None,
            "request_key": key or uuid.uuid4().hex,
            "return_trip": trip,
        },
        status=400 if error and request.method == "POST" else 200,
    )


def _training_or_billing(addon: AddOn, subscription: Subscription) -> str:
    return reverse("training") if addon.pricing == AddOn.Pricing.ONE_OFF else _billing_anchor(subscription)


@login_required
@require_POST
def addon_trial(request: HttpRequest, subscription_id: uuid.UUID, addon_code: str) -> HttpResponse:
    """Try an add-on free for its trial days (once per organization), no card asked."""
    subscription = admin_subscription(request, subscription_id)
    if subscription.billed_to_id:
        return managed_page(request, subscription, kind="addon")
    addon = _addon_of(subscription, addon_code)
    trip = return_trip_of(request, product=subscription.product)
    try:
        state = addon_trial_start(subscription=subscription, addon=addon, actor=request.user)
    except FlywheelError as refusal:
        messages.error(request, refusal.message)
    else:
        if trip is not None:
            return redirect(trip.url)
        messages.success(
            request,
            f"Your {addon.name} trial has started: it ends on {day(state.trial_ends_at)} and nothing is charged. "
            "Add it before then to keep it.",
        )
    return redirect(with_return_trip(_billing_anchor(subscription), trip))


def _addon_subscription_of(request: HttpRequest, addon_subscription_id: uuid.UUID) -> AddOnSubscription:
    organization = admin_organization(request)
    try:
        state = addon_subscription_for_user(user=request.user, public_id=addon_subscription_id)
    except NotFound:
        raise Http404 from None
    if state.organization_id != organization.pk:
        raise Http404
    return state


@login_required
@require_POST
def addon_manage(request: HttpRequest, addon_subscription_id: uuid.UUID) -> HttpResponse:
    """Remove an add-on (at the base's period end; a trial ends at once), or keep one whose
    removal is scheduled."""
    state = _addon_subscription_of(request, addon_subscription_id)
    subscription = state.subscription
    trip = return_trip_of(request, product=subscription.product)
    action = request.POST.get("action", "")
    name = state.addon.name
    try:
        if action == "remove":
            outcome = addon_remove(addon_subscription=state, actor=request.user)
            if outcome.status == AddOnSubscription.Status.CANCELED:
                messages.success(request, f"{name} is removed from {subscription.product.name}.")
            else:
                messages.success(
                    request,
                    f"{name} stays until {day(subscription.current_period_end)}, the end of the period already paid, "
                    "and is not renewed.",
                )
        elif action == "keep":
            addon_keep(addon_subscription=state, actor=request.user)
            messages.success(request, f"{name} will renew with {subscription.product.name} as before.")
        else:
            raise CheckoutInvalid("Choose to remove the add-on or to keep it.")
    except FlywheelError as refusal:
        messages.error(request, refusal.message)
    return redirect(with_return_trip(_billing_anchor(subscription), trip))
