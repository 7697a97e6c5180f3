"""The front door: landing page, product landing links, the welcome step and the home page.

A top-layer app: it reads and writes through accounts, catalog, provisioning, experiments and
billing (their selectors and services); nothing below imports it.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.exceptions import FlywheelError
from accounts.forms import OrganizationNameForm
from accounts.middleware import ORGANIZATION_KEY
from accounts.models import Organization
from accounts.selectors import (
    invite_meant_for_another_address,
    membership_is_admin,
    signup_intent_of,
)
from accounts.services import (
    organization_create_for_signup,
    organization_name_suggest,
    organizations_joinable_by_domain,
    seats_in_use,
)
from accounts.session import UTM_KEYS, anonymous_id, signup_context_store, signup_start_over
from billing.selectors import admin_name_of, product_states_of
from catalog.exceptions import UnknownEdition
from catalog.selectors import edition_default_for_trial, edition_get, products_for_sale
from experiments import events
from experiments.services import event_record
from partners.models import PartnerLink
from partners.selectors_customer import managed_by_of, pending_links_of_customer
from provisioning.selectors import environments_of


def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "frontdoor/landing.html", {"products": products_for_sale()})


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
                "frontdoor/landing.html",
                {"products": products_for_sale(), "error": error.message},
                status=404,
            )
    if request.user.is_authenticated:
        messages.info(request, "You are already signed in.")
        return redirect("home")
    signup_start_over(request)
    signup_context_store(
        request,
        product_code=edition.product.code if edition else "",
        edition_code=edition.code if edition else "",
        edition_summary={
            "product": edition.product.name,
            "edition": edition.name,
            "trial_days": edition.trial_days,
            "free": edition.is_free,
        }
        if edition
        else None,
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
    intent = signup_intent_of(user=request.user)
    trial_label = ""
    if intent is not None and intent.product_code and intent.edition_code:
        try:
            edition = edition_get(product_code=intent.product_code, edition_code=intent.edition_code)
        except UnknownEdition:
            edition = None
        if edition is not None and not edition.is_free:
            trial_label = f"{edition.trial_days}-day {edition.product.name} {edition.name}"
    return render(
        request,
        "frontdoor/welcome.html",
        {
            "joinable": organizations_joinable_by_domain(user=request.user),
            "intent": intent,
            "trial_label": trial_label,
            "suggested_name": organization_name_suggest(request.user.email),
            "invite_for_another_address": intent is not None and intent.invite is not None
            and invite_meant_for_another_address(invite=intent.invite, user=request.user),
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
    """The current organization's products, each in the state it is in (a cancelled or
    suspended one looks it, with what happened and what to do), their workspaces, and the
    other products to try or buy. A single workspace still being prepared is shown as the
    "being prepared" page."""
    organization = request.organization  # type: ignore[attr-defined]
    if not organization:
        return redirect("welcome")
    membership = request.membership  # type: ignore[attr-defined]
    environments = {environment.product_id: environment for environment in environments_of(organization=organization)}
    states = product_states_of(organization=organization)
    if len(environments) == 1:
        [(product_id, environment)] = environments.items()
        state = states.get(product_id)
        if not environment.is_settled and (state is None or state.usable):
            return redirect("environment_status", environment_id=environment.public_id)
    is_admin = membership_is_admin(membership)
    managed = managed_by_of(organization=organization)
    return render(
        request,
        "frontdoor/home.html",
        {
            "organization": organization,
            "is_admin": is_admin,
            "admin_name": "" if is_admin else admin_name_of(organization=organization),
            # A product a partner manages says so, with "Ask <partner>" (docs/partners.md).
            "products": [
                (state, environments.get(product_id), managed.get(product_id)) for product_id, state in states.items()
            ],
            "in_use": any(state.usable for state in states.values()),
            "seats_used": seats_in_use(organization=organization),
            "other_products": _other_products(organization, exclude=set(states)) if is_admin else [],
            "partner_invitations": [
                link
                for link in pending_links_of_customer(organization=organization)
                if link.status == PartnerLink.Status.INVITED
            ]
            if is_admin
            else [],
        },
    )


def _other_products(organization: Organization, *, exclude: set[int]) -> list[dict]:
    """Products the organization never had, each with its trial. A product it had is on its
    own card, which says what can be done (a cancelled trial is bought, not tried again)."""
    offers = []
    for product in products_for_sale():
        if product.pk in exclude:
            continue
        editions = [edition for edition in product.editions.all() if not edition.is_free]
        trial = next((edition for edition in editions if edition.trial_days > 0), None)
        if trial is not None:
            offers.append({"product": product, "trial": trial})
    return offers
