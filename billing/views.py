"""The front door: landing page, product landing links, the welcome step and the home page."""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRefresh

from accounts.exceptions import FlywheelError
from accounts.forms import OrganizationNameForm
from accounts.middleware import ORGANIZATION_KEY
from accounts.models import SignupIntent
from accounts.services import (
    organization_create_for_signup,
    organizations_joinable_by_domain,
    seats_in_use,
)
from accounts.session import UTM_KEYS, anonymous_id, signup_context_store
from catalog.exceptions import UnknownEdition
from catalog.models import Edition
from catalog.selectors import edition_default_for_trial, edition_get, products_for_sale
from common.exceptions import NotFound
from experiments import events
from experiments.services import event_record
from provisioning.selectors import environments_of

from . import gateway
from .exceptions import CheckoutInvalid, WebhookSignatureInvalid
from .models import Subscription
from .selectors import (
    get_payment_for_user,
    get_subscription_for_user,
    invoices_of,
    subscriptions_of,
)
from .services import (
    billing_account_of,
    card_setup_complete,
    card_setup_start,
    checkout_quote,
    payment_apply_intent,
    seats_quote,
    subscription_add_seats,
    subscription_checkout,
    webhook_receive,
)

logger = logging.getLogger(__name__)


def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "billing/landing.html", {"products": products_for_sale()})


def signup_entry(request: HttpRequest) -> HttpResponse:
    """/signup?product=tracker&edition=standard&utm_source=...: remember, then sign up."""
    product_code = request.GET.get("product", "").strip()
    edition_code = request.GET.get("edition", "").strip()
    edition = None
    if product_code:
        try:
            edition = (
                edition_get(product_code=product_code, edition_code=edition_code)
                if edition_code
                else edition_default_for_trial(product_code=product_code)
            )
            if not edition.is_free and edition.trial_days == 0:
                raise UnknownEdition(
                    f"{edition.product.name} {edition.name} has no free trial; choose an edition that has one."
                )
        except UnknownEdition as error:
            return render(
                request,
                "billing/landing.html",
                {"products": products_for_sale(), "error": error.message},
                status=404,
            )
    if request.user.is_authenticated:
        messages.info(request, "You are already signed in.")
        return redirect("home")
    signup_context_store(
        request,
        product_code=edition.product.code if edition else "",
        edition_code=edition.code if edition else "",
    )
    event_record(
        name=events.SIGNUP_STARTED,
        distinct_id=anonymous_id(request),
        properties={
            "product": edition.product.code if edition else "",
            "edition": edition.code if edition else "",
            **{key: request.GET[key][:200] for key in UTM_KEYS if request.GET.get(key)},
        },
    )
    return redirect("account_signup")


@login_required
def welcome(request: HttpRequest) -> HttpResponse:
    """Where a verified user lands: their workspace, or the choice of joining or starting."""
    if request.organization:  # type: ignore[attr-defined]
        return redirect("home")
    intent = SignupIntent.objects.filter(user=request.user).select_related("invite__organization").first()
    return render(
        request,
        "billing/welcome.html",
        {
            "joinable": organizations_joinable_by_domain(user=request.user),
            "intent": intent,
            "form": OrganizationNameForm(),
        },
    )


@login_required
@require_POST
def organization_start(request: HttpRequest) -> HttpResponse:
    """Start one's own organization (and the trial the landing link asked for)."""
    form = OrganizationNameForm(request.POST)
    name = form.cleaned_data["name"] if form.is_valid() else ""
    try:
        organization = organization_create_for_signup(user=request.user, name=name)
    except FlywheelError as error:
        messages.error(request, error.message)
        return redirect("welcome")
    request.session[ORGANIZATION_KEY] = str(organization.public_id)
    return redirect("home")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The current organization's products and workspaces. A single workspace still being
    prepared is shown as the "being prepared" page."""
    organization = request.organization  # type: ignore[attr-defined]
    if not organization:
        return redirect("welcome")
    environments = list(environments_of(organization=organization))
    if len(environments) == 1 and not environments[0].is_settled:
        return redirect("environment_status", environment_id=environments[0].public_id)
    return render(
        request,
        "billing/home.html",
        {
            "organization": organization,
            "subscriptions": subscriptions_of(organization=organization),
            "environments": {environment.product_id: environment for environment in environments},
        },
    )


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    """Stripe's webhook: verified, stored once by event id, answered at once; the worker
    applies it (billing.tasks.webhook_process)."""
    try:
        event, created = webhook_receive(payload=request.body, signature=request.headers.get("Stripe-Signature", ""))
    except WebhookSignatureInvalid as error:
        logger.warning("stripe webhook refused from %s: %s", request.META.get("REMOTE_ADDR"), error.message)
        return JsonResponse({"error": error.message}, status=400)
    return JsonResponse({"received": event.stripe_event_id, "duplicate": not created})


def _admin_organization(request: HttpRequest):
    membership = request.membership  # type: ignore[attr-defined]
    if not membership:
        raise Http404
    return membership.organization, membership.role == "admin"


@login_required
def billing_page(request: HttpRequest) -> HttpResponse:
    """The organization's products, card on file and invoices."""
    organization, is_admin = _admin_organization(request)
    return render(
        request,
        "billing/billing.html",
        {
            "organization": organization,
            "is_admin": is_admin,
            "subscriptions": subscriptions_of(organization=organization),
            "account": billing_account_of(organization),
            "invoices": invoices_of(organization=organization)[:50],
        },
    )


def _checkout_choice(request: HttpRequest, subscription):
    data = request.POST if request.method == "POST" else request.GET
    editions = list(
        Edition.objects.filter(product=subscription.product, is_active=True, monthly_price_minor__gt=0).order_by("rank")
    )
    edition = next((e for e in editions if e.code == data.get("edition")), None) or next(
        (e for e in editions if e.pk == subscription.edition_id), editions[0] if editions else None
    )
    try:
        seats = int(data.get("seats") or max(1, seats_in_use(organization=subscription.organization)))
    except ValueError:
        seats = -1
    interval = data.get("interval") or Subscription.Interval.MONTH
    return editions, edition, seats, interval


@login_required
def checkout(request: HttpRequest, subscription_id: uuid.UUID) -> HttpResponse:
    """Pick edition, seats and billing period, see the exact price, enter a card, pay."""
    organization, is_admin = _admin_organization(request)
    try:
        subscription = get_subscription_for_user(user=request.user, subscription_public_id=subscription_id)
    except NotFound:
        raise Http404 from None
    if subscription.organization_id != organization.pk or not is_admin:
        raise Http404
    editions, edition, seats, interval = _checkout_choice(request, subscription)
    error = ""
    quote = None
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
            return redirect("payment_status", payment_id=payment.public_id)
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
        },
        status=400 if error and request.method == "POST" else 200,
    )


@login_required
def payment_status(request: HttpRequest, payment_id: uuid.UUID) -> HttpResponse:
    """Where a payment lands: polls until Stripe's answer is recorded."""
    try:
        payment = get_payment_for_user(user=request.user, payment_public_id=payment_id)
    except NotFound:
        raise Http404 from None
    if request.method == "POST" and payment.stripe_payment_intent_id:
        # After 3-D Secure in the browser: read the intent back from Stripe.
        try:
            payment_apply_intent(intent=gateway.payment_intent_retrieve(payment.stripe_payment_intent_id))
        except FlywheelError as error:
            messages.error(request, error.message)
        return redirect("payment_status", payment_id=payment.public_id)
    if request.htmx and payment.status == payment.Status.REQUIRES_ACTION:
        # The bank wants the customer: reload the whole page, which brings Stripe.js.
        return HttpResponseClientRefresh()
    template = "billing/_payment.html" if request.htmx else "billing/payment.html"
    return render(
        request,
        template,
        {"payment": payment, "stripe_js_url": settings.STRIPE_JS_URL, "stripe_publishable_key": settings.STRIPE_PUBLISHABLE_KEY},
    )


@login_required
def add_seats(request: HttpRequest, subscription_id: uuid.UUID) -> HttpResponse:
    """Add seats: the exact prorated charge is shown, one click confirms it."""
    organization, is_admin = _admin_organization(request)
    try:
        subscription = get_subscription_for_user(user=request.user, subscription_public_id=subscription_id)
    except NotFound:
        raise Http404 from None
    if subscription.organization_id != organization.pk or not is_admin:
        raise Http404
    data = request.POST if request.method == "POST" else request.GET
    try:
        seats = int(data.get("seats") or 1)
    except ValueError:
        seats = 0
    error = ""
    quote = None
    try:
        quote = seats_quote(subscription=subscription, seats=seats)
    except CheckoutInvalid as refusal:
        error = refusal.message
    if request.method == "POST" and quote is not None:
        try:
            payment = subscription_add_seats(
                subscription=subscription, actor=request.user, seats=seats, request_key=request.POST.get("request_key", "")
            )
        except FlywheelError as refusal:
            error = refusal.message
        else:
            return redirect("payment_status", payment_id=payment.public_id)
    return render(
        request,
        "billing/add_seats.html",
        {
            "subscription": subscription,
            "seats": seats,
            "quote": quote,
            "error": error,
            "account": billing_account_of(organization),
            "request_key": uuid.uuid4().hex,
        },
        status=400 if error and request.method == "POST" else 200,
    )
