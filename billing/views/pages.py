"""/billing/ and the forms it posts (edition, seats, cancel, keep, pay now, a trial of
another product, payment terms, billing details), and the staff's sales leads."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.exceptions import FlywheelError
from accounts.services import seats_in_use
from activity.selectors import active_people
from common.staff import staff_required

from ..exceptions import CheckoutInvalid, TrialSpent
from ..formats import day
from ..models import Subscription
from ..selectors import (
    active_seats_of,
    addon_invoices_overdue,
    addon_offers_of,
    catalog_currencies,
    edition_of_product,
    editions_to_change_to,
    invoices_billed_to,
    invoices_of,
    organizations_over_sales_threshold,
    products_billed_to_others,
    products_to_try,
    subscriptions_of,
)
from ..services.billing_account import (
    billing_account_of,
    billing_details_update,
    payment_terms_request,
)
from ..services.seats import subscription_remove_seats
from ..services.subscriptions import (
    CANCELLATION_REASONS,
    product_try,
    subscription_cancel,
    subscription_change_edition,
    subscription_keep,
    subscription_pay_now,
)
from ..services.training import training_balance
from .access import admin_organization, admin_subscription, member_organization
from .managed import partner_ask_urls, partner_links
from .return_to import return_trip_of, with_return_trip


@login_required
def billing_page(request: HttpRequest) -> HttpResponse:
    """The organization's products, card on file and invoices."""
    organization, is_admin = member_organization(request)
    subscriptions = list(subscriptions_of(organization=organization))
    offers = addon_offers_of(organization=organization)
    overdue = addon_invoices_overdue(organization=organization)
    active = active_people(organization_ids=[organization.pk])
    for subscription in subscriptions:
        # Billed to a partner: the partner buys, adds seats and changes editions; the page says
        # who and links the request to them instead ("Ask Northwind Partners").
        subscription.managed_by = subscription.billed_to if subscription.billed_to_id else None
        subscription.ask_urls = partner_ask_urls(subscription.product.code) if subscription.managed_by else {}
        subscription.other_editions = editions_to_change_to(subscription=subscription)
        # Its people active in the last 30 days, beside the seats it pays for (docs/activity.md).
        subscription.active_people = active.get((organization.pk, subscription.product_id), 0)
        # Each add-on with the invoice that suspends it (when its own invoice is overdue), and a
        # training add-on with the product's training balance.
        subscription.addon_rows = [
            (
                offer,
                overdue.get(offer.addon.pk),
                training_balance(organization=organization, product=subscription.product)
                if offer.addon.training_credits
                else None,
            )
            for offer in offers
            if offer.subscription.pk == subscription.pk
        ]
    return render(
        request,
        "billing/billing.html",
        {
            "organization": organization,
            "is_admin": is_admin,
            "subscriptions": subscriptions,
            "seats_used": seats_in_use(organization=organization),
            "other_products": [edition.product for edition in products_to_try(organization=organization)],
            "account": billing_account_of(organization),
            "invoices": invoices_of(organization=organization)[:50],
            # Invoices this organization pays for others (a partner's for its customers), and
            # the products whose invoices go to someone else.
            "customer_invoices": invoices_billed_to(payer=organization)[:50] if is_admin else [],
            "billed_elsewhere": products_billed_to_others(organization=organization),
            "partner_links": partner_links(),
            "request_key": uuid.uuid4().hex,
            "cancellation_reasons": CANCELLATION_REASONS,
            "return_trip": return_trip_of(request, organization=organization),
        },
    )


@login_required
@require_POST
def subscription_manage(request: HttpRequest, subscription_id: uuid.UUID) -> HttpResponse:
    """Billing-page actions on one subscription: change edition, remove seats, pay now,
    cancel, keep (withdraw a cancellation)."""
    subscription = admin_subscription(request, subscription_id)
    trip = return_trip_of(request, product=subscription.product)
    action = request.POST.get("action", "")
    try:
        if action == "change_edition":
            edition = edition_of_product(
                product=subscription.product, code=request.POST.get("edition", ""), active_only=False
            )
            if edition is None:
                raise CheckoutInvalid("Choose an edition of this product.")
            if edition.rank > subscription.edition.rank:
                # Money moves: the price is shown first, on its own page.
                return redirect(
                    with_return_trip(
                        f"{reverse('change_edition', args=[subscription.public_id])}?edition={edition.code}", trip
                    )
                )
            outcome = subscription_change_edition(
                subscription=subscription, actor=request.user, edition=edition, request_key=""
            )
            messages.success(
                request,
                f"{subscription.product.name} moves to {outcome.pending_edition.name} at the end of the period."
                if outcome.pending_edition_id
                else "No edition change is waiting any more.",
            )
        elif action == "remove_seats":
            try:
                seats = int(request.POST.get("seats", ""))
            except ValueError:
                raise CheckoutInvalid("Enter how many seats to remove.") from None
            outcome = subscription_remove_seats(subscription=subscription, actor=request.user, seats=seats)
            messages.success(request, f"From the next renewal {subscription.product.name} has {outcome.pending_seat_limit} seats.")
        elif action == "cancel":
            outcome = subscription_cancel(
                subscription=subscription, actor=request.user, reason=request.POST.get("reason", "")
            )
            messages.success(
                request,
                f"{subscription.product.name} ends on {day(outcome.current_period_end)}, the end of the paid period."
                if outcome.cancel_at_period_end
                else f"{subscription.product.name} is cancelled.",
            )
        elif action == "keep":
            subscription_keep(subscription=subscription, actor=request.user)
            messages.success(request, f"{subscription.product.name} will renew as before.")
        elif action == "pay_now":
            payment = subscription_pay_now(subscription=subscription, actor=request.user)
            return redirect(with_return_trip(reverse("payment_status", args=[payment.public_id]), trip))
        else:
            raise CheckoutInvalid(f"Unknown action {action!r}.")
    except FlywheelError as refusal:
        messages.error(request, refusal.message)
    return redirect(with_return_trip(reverse("billing"), trip))


@login_required
@require_POST
def product_trial_start(request: HttpRequest) -> HttpResponse:
    """Try another product with one click: a trial inside the same organization.

    A product whose one trial the organization already used is bought instead: asked for a
    trial, nothing is created and the admin is told what buying costs; asked to buy (`buy`),
    its checkout opens (the subscription waits, unusable, until paid)."""
    organization = admin_organization(request)
    try:
        subscription = product_try(
            organization=organization, actor=request.user, product_code=request.POST.get("product", ""),
            buy=request.POST.get("buy") == "1",
        )
    except TrialSpent as refusal:
        messages.error(request, refusal.message)
        return redirect(_back(request))
    except FlywheelError as refusal:
        messages.error(request, refusal.message)
        return redirect("billing")
    edition = subscription.edition
    if subscription.status == Subscription.Status.SUSPENDED:
        messages.info(request, f"Choose the seats and the billing period of {edition.product.name}; nothing is charged until you pay.")
        return redirect("checkout", subscription_id=subscription.public_id)
    messages.success(request, f"Your {edition} trial has started; its workspace is being prepared.")
    return redirect("home")


def _back(request: HttpRequest) -> str:
    """Where a refused form goes back to: the page it came from when that is /app/ or /billing/."""
    referer = request.headers.get("referer", "")
    home_path = reverse("home")
    return "home" if referer.split("?")[0].endswith(home_path) else "billing"


@login_required
@require_POST
def payment_terms(request: HttpRequest) -> HttpResponse:
    """An admin asks to pay by invoice with a purchase order (staff approve it in the admin),
    or goes back to card payments."""
    organization = admin_organization(request)
    try:
        payment_terms_request(
            organization=organization, actor=request.user, po_number=request.POST.get("po_number", ""),
            billing_email=request.POST.get("billing_email", ""),
        )
    except FlywheelError as refusal:
        messages.error(request, refusal.message)
    else:
        messages.success(request, "Your request to pay by invoice was sent; we will answer by email.")
    return redirect("billing")


@login_required
@require_POST
def billing_details(request: HttpRequest) -> HttpResponse:
    """An admin sets who invoices are made out to (legal name, address, tax ID)."""
    organization = admin_organization(request)
    try:
        billing_details_update(
            organization=organization,
            actor=request.user,
            legal_name=request.POST.get("legal_name", ""),
            billing_address=request.POST.get("billing_address", ""),
            tax_id=request.POST.get("tax_id", ""),
        )
    except FlywheelError as refusal:
        messages.error(request, refusal.message)
    else:
        messages.success(request, "Billing details saved. New invoices carry them; issued ones keep what they say.")
    return redirect("billing")


@staff_required
def sales_leads(request: HttpRequest) -> HttpResponse:
    """Staff: organizations whose yearly spend passed the sales threshold."""
    since = timezone.now() - timedelta(days=365)
    # The threshold and the totals are in the catalog's currency (it prices every edition in one).
    currencies = catalog_currencies()
    leads = organizations_over_sales_threshold(minimum_minor=settings.SALES_THRESHOLD_MINOR, since=since)
    # Beside each: its people active in the last 30 days per product, against the seats it pays
    # for (12 of 100 is a risk; 98 of 100, an expansion).
    seats = active_seats_of(organization_ids=[organization.pk for organization, _ in leads])
    rows = [(organization, total, seats[organization.pk]) for organization, total in leads]
    return render(
        request,
        "billing/sales_leads.html",
        {
            "currency": currencies.pop().upper() if len(currencies) == 1 else "",
            "since": since,
            "threshold_minor": settings.SALES_THRESHOLD_MINOR,
            "leads": rows,
        },
    )
