"""What a customer organization sees of its partner, under /app/partner/: the partner that
manages its products (or none), invitations to accept or decline, the directory to ask one
from, "ask <partner>", the move to direct billing, and the partner audit log.

Everything is about the current organization (request.organization). Members see who their
partner is and may ask it for something; what changes the relation or moves money needs an
admin (a member who tries gets a 404, as on billing's pages)."""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.models import Organization
from accounts.selectors import membership_is_admin
from billing.services.billing_account import billing_account_of
from billing.views.return_to import return_trip_of, with_return_trip
from catalog.models import Product
from catalog.selectors import products_for_sale
from common.exceptions import FlywheelError, NotFound

from ..models import PartnerLink, PartnerRequest
from ..selectors import active_link_of_customer, tier_name
from ..selectors_customer import (
    audit_of_customer,
    directory_partners,
    get_directory_partner,
    get_link_of_customer,
    get_request_of_customer,
    links_of_customer,
    managed_subscriptions_of,
    pending_links_of_customer,
    requests_of_customer,
)
from ..services import direct, links, requests


def _member(request: HttpRequest) -> tuple[Organization, bool]:
    """The current organization and whether the user is its admin; 404 for a non-member."""
    membership = request.membership  # type: ignore[attr-defined]
    if not membership:
        raise Http404
    return membership.organization, membership_is_admin(membership)


def _admin(request: HttpRequest) -> Organization:
    organization, is_admin = _member(request)
    if not is_admin:
        raise Http404
    return organization


def _not_found(request: HttpRequest, sentence: str) -> HttpResponse:
    return render(request, "partners/customer/not_found.html", {"sentence": sentence}, status=404)


# /app/partner/ ---------------------------------------------------------------------------------


@login_required
def partner_page(request: HttpRequest) -> HttpResponse:
    """The organization's partner: who it is, what it manages and what that means, invitations
    waiting for an answer, and what the admin can do (ask, end, move to direct billing)."""
    organization, is_admin = _member(request)
    link = active_link_of_customer(organization)
    managed = managed_subscriptions_of(organization=organization)
    history = [
        past for past in links_of_customer(organization=organization)[:20]
        if past.status in (PartnerLink.Status.ENDED, PartnerLink.Status.DECLINED, PartnerLink.Status.WITHDRAWN)
    ]
    return render(
        request,
        "partners/customer/partner.html",
        {
            "organization": organization,
            "is_admin": is_admin,
            "link": link,
            "tier": tier_name(link.partner.tier) if link else "",
            "managed": managed,
            "pending": pending_links_of_customer(organization=organization),
            "requests": requests_of_customer(organization=organization, limit=10),
            "history": history[:5],
        },
    )


@login_required
@require_POST
def link_answer(request: HttpRequest, link_id: uuid.UUID) -> HttpResponse:
    """An admin accepts or declines a partner's invitation, or withdraws its own request."""
    organization = _admin(request)
    try:
        link = get_link_of_customer(organization=organization, link_id=link_id)
    except NotFound as missing:
        return _not_found(request, missing.message)
    action = request.POST.get("action", "")
    name = link.partner.organization.name
    try:
        if action == "accept" and link.status == PartnerLink.Status.INVITED:
            links.link_accept(link=link, actor=request.user)
            messages.success(request, f"{name} is now your partner: they can buy and manage your subscriptions.")
        elif action == "decline" and link.status == PartnerLink.Status.INVITED:
            links.link_decline(link=link, actor=request.user)
            messages.success(request, f"You declined {name}'s invitation; they have been told.")
        elif action == "withdraw" and link.status == PartnerLink.Status.REQUESTED:
            links.link_withdraw(link=link, actor=request.user)
            messages.success(request, f"Your request to {name} is withdrawn.")
        elif action in ("accept", "decline", "withdraw"):
            messages.error(request, f"This invitation from {name} was already answered: it is {link.get_status_display().lower()}.")
        else:
            return render(
                request,
                "partners/customer/not_found.html",
                {"heading": "Nothing was answered", "sentence": "Choose to accept or decline the invitation."},
                status=400,
            )
    except FlywheelError as refusal:
        messages.error(request, refusal.message)
    return redirect("partners:customer_partner")


class EndLinkForm(forms.Form):
    reason = forms.CharField(max_length=240, required=False, label="Why (optional, your partner reads it)")


@login_required
def link_end_page(request: HttpRequest) -> HttpResponse:
    """End the partnership: what happens to each product and when, then one button."""
    organization = _admin(request)
    link = active_link_of_customer(organization)
    if link is None:
        return _not_found(request, f"{organization.name} has no partner to end the partnership with.")
    form = EndLinkForm(request.POST or None)
    if request.method == "POST":
        if not form.is_valid():
            return render(request, "partners/customer/end.html", _end_context(organization, link, form), status=400)
        try:
            links.link_end(
                link=link, actor=request.user, side=PartnerLink.Side.CUSTOMER, reason=form.cleaned_data["reason"]
            )
        except FlywheelError as refusal:
            form.add_error(None, refusal.message)
            return render(request, "partners/customer/end.html", _end_context(organization, link, form), status=400)
        messages.success(
            request,
            f"{link.partner.organization.name} is no longer your partner. What they pay for stays theirs until its "
            "renewal; from then it is billed to you.",
        )
        return redirect("partners:customer_partner")
    return render(request, "partners/customer/end.html", _end_context(organization, link, form))


def _end_context(organization: Organization, link: PartnerLink, form: EndLinkForm) -> dict:
    return {
        "organization": organization,
        "link": link,
        "form": form,
        "managed": [
            sub for sub in managed_subscriptions_of(organization=organization) if sub.billed_to_id == link.partner.organization_id
        ],
    }


# /app/partner/directory/ ----------------------------------------------------------------------


class RequestPartnerForm(forms.Form):
    message = forms.CharField(
        max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 3}),
        label="A note for the partner (optional)",
    )


@login_required
def directory(request: HttpRequest) -> HttpResponse:
    """The listed partners, and (for an admin without a partner) a button to ask each."""
    organization, is_admin = _member(request)
    link = active_link_of_customer(organization)
    waiting = {
        pending.partner_id: pending for pending in pending_links_of_customer(organization=organization)
    }
    partners = [
        {"partner": partner, "tier": tier_name(partner.tier), "pending": waiting.get(partner.pk)}
        for partner in directory_partners()
        if partner.organization_id != organization.pk
    ]
    return render(
        request,
        "partners/customer/directory.html",
        {"organization": organization, "is_admin": is_admin, "link": link, "partners": partners, "form": RequestPartnerForm()},
    )


@login_required
@require_POST
def directory_request(request: HttpRequest, partner_id: uuid.UUID) -> HttpResponse:
    """An admin asks a listed partner to become the organization's partner."""
    organization = _admin(request)
    try:
        partner = get_directory_partner(partner_id=partner_id)
    except NotFound as missing:
        return _not_found(request, missing.message)
    form = RequestPartnerForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "partners/customer/not_found.html",
            {"heading": "Your request was not sent", "sentence": "Keep the note to 1,000 characters: nothing was sent."},
            status=400,
        )
    try:
        links.link_request(partner=partner, customer=organization, actor=request.user, message=form.cleaned_data["message"])
    except FlywheelError as refusal:
        messages.error(request, refusal.message)
        return redirect("partners:customer_directory")
    messages.success(
        request, f"{partner.organization.name} has your request; you will hear by email when they accept it."
    )
    return redirect("partners:customer_partner")


# /app/partner/ask/ ----------------------------------------------------------------------------


class AskForm(forms.Form):
    product = forms.ChoiceField(label="Product")
    kind = forms.ChoiceField(label="What you need", choices=PartnerRequest.Kind.choices)
    seats_wanted = forms.IntegerField(
        label="How many more seats", required=False, min_value=1, max_value=100_000,
        help_text="For more seats: how many to add to what you have.",
    )
    message = forms.CharField(
        label="Message", max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Anything your partner should know: who needs it, by when.",
    )

    def __init__(self, *args, products: list[Product], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.products = {product.code: product for product in products}
        self.fields["product"].choices = [(product.code, product.name) for product in products]

    def clean(self):
        data = super().clean()
        if data.get("kind") == PartnerRequest.Kind.SEATS and not data.get("seats_wanted") and "seats_wanted" not in self.errors:
            self.add_error("seats_wanted", "Enter how many more seats you need.")
        return data


def _ask_products(organization: Organization) -> list[Product]:
    """The products one can ask about: the organization's, then the others for sale."""
    own = [subscription.product for subscription in managed_subscriptions_of(organization=organization)]
    codes = {product.code for product in own}
    return own + [product for product in products_for_sale() if product.code not in codes]


@login_required
def ask(request: HttpRequest) -> HttpResponse:
    """"Ask <partner>": more seats, another edition, another product, an add-on. Any member may
    ask; the partner's admins and contact are emailed, and the partner answers in its inbox."""
    organization, is_admin = _member(request)
    link = active_link_of_customer(organization)
    trip = return_trip_of(request, organization=organization)
    if link is None:
        return render(
            request, "partners/customer/ask.html", {"organization": organization, "link": None, "return_trip": trip}
        )
    products = _ask_products(organization)
    initial = {
        "product": request.GET.get("product", ""),
        "kind": request.GET.get("kind", "") or PartnerRequest.Kind.SEATS,
        "seats_wanted": request.GET.get("seats", "") or None,
    }
    form = AskForm(request.POST or None, products=products, initial=initial)
    if request.method == "POST":
        if form.is_valid():
            try:
                created = requests.request_create(
                    customer=organization,
                    actor=request.user,
                    product=form.products[form.cleaned_data["product"]],
                    kind=form.cleaned_data["kind"],
                    seats_wanted=form.cleaned_data["seats_wanted"],
                    message=form.cleaned_data["message"],
                )
            except FlywheelError as refusal:
                form.add_error(None, refusal.message)
            else:
                return redirect(with_return_trip(reverse("partners:customer_ask_sent", args=[created.public_id]), trip))
        return render(
            request,
            "partners/customer/ask.html",
            {"organization": organization, "link": link, "form": form, "return_trip": trip},
            status=400,
        )
    return render(request, "partners/customer/ask.html", {"organization": organization, "link": link, "form": form, "return_trip": trip})


@login_required
def ask_sent(request: HttpRequest, request_id: uuid.UUID) -> HttpResponse:
    organization, _is_admin = _member(request)
    try:
        sent = get_request_of_customer(organization=organization, request_id=request_id)
    except NotFound as missing:
        return _not_found(request, missing.message)
    return render(
        request,
        "partners/customer/ask_sent.html",
        {
            "organization": organization,
            "sent": sent,
            "described": requests.request_describe(sent),
            "return_trip": return_trip_of(request, product=sent.product),
        },
    )


# /app/partner/direct/ -------------------------------------------------------------------------


@login_required
def direct_page(request: HttpRequest) -> HttpResponse:
    """Move to direct billing: at renewal (free; the link ends) or now, per product, at the
    exact prorated price of the rest of the term."""
    organization = _admin(request)
    if request.method == "POST":
        try:
            if request.POST.get("when") == "renewal":
                moved = direct.direct_at_renewal(organization=organization, actor=request.user)
                messages.success(request, direct.at_renewal_sentence(moved))
                return redirect("partners:customer_partner")
            if request.POST.get("when") == "now":
                started = direct.direct_now(
                    organization=organization,
                    actor=request.user,
                    subscription_id=request.POST.get("subscription", ""),
                    request_key=request.POST.get("request_key", ""),
                    quote_token=request.POST.get("quote_token", ""),
                    po_number=request.POST.get("po_number", ""),
                )
                return redirect(direct.direct_now_next(started))
            return render(
                request,
                "partners/customer/not_found.html",
                {"heading": "Nothing was moved", "sentence": "Choose when to move: at renewal or now."},
                status=400,
            )
        except FlywheelError as refusal:
            return render(
                request, "partners/customer/direct.html", _direct_context(organization, error=refusal.message), status=400
            )
    return render(request, "partners/customer/direct.html", _direct_context(organization))


def _direct_context(organization: Organization, *, error: str = "") -> dict:
    return {
        "organization": organization,
        "link": active_link_of_customer(organization),
        "options": direct.direct_options(organization=organization),
        "account": billing_account_of(organization),
        "request_key": uuid.uuid4().hex,
        "error": error,
    }


# /app/partner/activity/ -----------------------------------------------------------------------


@login_required
def activity(request: HttpRequest) -> HttpResponse:
    """Everything partners did for the organization (and its admins did about partners)."""
    organization = _admin(request)
    try:
        page = int(request.GET.get("page", "1"))
    except ValueError:
        page = 1
    # A page past any log there can be reads as the last one would: empty, never a 500.
    page = min(max(page, 1), 1_000_000)
    entries, older = audit_of_customer(organization=organization, page=page)
    return render(
        request,
        "partners/customer/activity.html",
        {"organization": organization, "entries": entries, "page": max(page, 1), "older": older},
    )
