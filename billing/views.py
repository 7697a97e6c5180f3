"""The front door: landing page, product landing links, the welcome step and the home page."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.exceptions import FlywheelError
from accounts.forms import OrganizationNameForm
from accounts.middleware import ORGANIZATION_KEY
from accounts.models import SignupIntent
from accounts.services import organization_create_for_signup, organizations_joinable_by_domain
from accounts.session import UTM_KEYS, anonymous_id, signup_context_store
from catalog.exceptions import UnknownEdition
from catalog.selectors import edition_default_for_trial, edition_get, products_for_sale
from experiments import events
from experiments.services import event_record
from provisioning.selectors import environments_of

from .exceptions import WebhookSignatureInvalid
from .selectors import subscriptions_of
from .services import webhook_receive

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
