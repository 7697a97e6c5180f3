"""The partner's own pages: apply, the dashboard (/partner/), a customer (/partner/customers/<id>/),
invite a customer, answer a customer's link request, withdraw an invite, end a link, and the
requests inbox. Every page with a customer id goes through link_for_partner: anything but the
partner's own active customer answers the same 404 page."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.selectors import membership_is_admin
from common.exceptions import FlywheelError

from ..exceptions import CustomerNotLinked
from ..forms import ApplicationForm, EndLinkForm, InviteForm, RequestAnswerForm
from ..models import Partner, PartnerApplication, PartnerLink, PartnerRequest
from ..portfolio import (
    RENEWALS_WITHIN_DAYS,
    activity_for_partner,
    invites_emailed,
    invoices_for_partner,
    partner_portfolio,
    pending_links,
    quotes_for_partner,
    request_counts,
    request_for_partner,
    requests_of,
    subscription_rows,
)
from ..selectors import link_for_partner, partner_of, tier_discount_bp, tier_name
from ..services.applications import ApplicationInput, application_submit
from ..services.links import (
    handover_lines,
    link_accept,
    link_decline,
    link_end,
    link_invite,
    link_withdraw,
    subscriptions_billed_to,
)
from ..services.notify import possessive
from ..services.requests import request_answer, request_describe
from . import partner_page


def _is_admin(request: HttpRequest) -> bool:
    return membership_is_admin(getattr(request, "membership", None))


def _tier(partner: Partner) -> dict:
    return {"name": tier_name(partner.tier), "discount": f"{tier_discount_bp(partner.tier) / 100:g} %"}


@login_required
def partner_apply(request: HttpRequest) -> HttpResponse:
    """/partner/apply/: an admin of the current organization applies for it to become a partner."""
    organization = getattr(request, "organization", None)
    if organization is None:
        return render(request, "partners/partner/apply.html", {"no_organization": True}, status=404)
    if partner_of(organization) is not None:
        return redirect("partners:partner_home")
    is_admin = _is_admin(request)
    pending = PartnerApplication.objects.filter(organization=organization, status=PartnerApplication.Status.PENDING).first()
    declined = (
        PartnerApplication.objects.filter(organization=organization, status=PartnerApplication.Status.DECLINED)
        .order_by("-decided_at")
        .first()
    )
    form = ApplicationForm(request.POST or None, initial={"company_name": organization.name, "contact_email": request.user.email})
    status = 200
    if request.method == "POST":
        if not is_admin:
            messages.error(request, f"Only an admin of {organization.name} can apply for it to become a partner.")
            status = 403
        elif form.is_valid():
            data = ApplicationInput(**{name: str(form.cleaned_data[name] or "") for name in ApplicationForm.Meta.fields})
            try:
                application_submit(organization=organization, actor=request.user, data=data)
            except FlywheelError as refusal:
                messages.error(request, refusal.message)
                status = 400
            else:
                messages.success(request, "Thank you: your application is with our staff. We answer by email.")
                return redirect("partners:partner_apply")
        else:
            status = 400
    return render(
        request,
        "partners/partner/apply.html",
        {"organization": organization, "form": form, "is_admin": is_admin, "pending": pending, "declined": declined},
        status=status,
    )


@partner_page()
def partner_home(request: HttpRequest, partner: Partner) -> HttpResponse:
    """/partner/: the partner's customers with their subscriptions, renewals due in 90 days,
    open requests, and links waiting for an answer."""
    now = timezone.now()
    customers = partner_portfolio(partner=partner, now=now)
    invited, requested = pending_links(partner=partner)
    renewals = sorted(
        ((row.customer, sub) for row in customers for sub in row.renewals),
        key=lambda pair: pair[1].subscription.current_period_end,
    )
    return render(
        request,
        "partners/partner/home.html",
        {
            "partner": partner,
            "tier": _tier(partner),
            "customers": customers,
            "renewals": renewals,
            "renewal_days": RENEWALS_WITHIN_DAYS,
            "invited": invited,
            "requested": requested,
            "emailed": invites_emailed(partner=partner),
            "open_requests": list(requests_of(partner=partner, status=PartnerRequest.Status.OPEN)[:10]),
            "counts": request_counts(partner=partner),
            "is_admin": _is_admin(request),
        },
    )


@partner_page()
def partner_customer(request: HttpRequest, partner: Partner, customer_id: uuid.UUID) -> HttpResponse:
    """/partner/customers/<id>/: one linked customer."""
    link = link_for_partner(partner=partner, customer_id=customer_id)
    customer = link.customer
    now = timezone.now()
    billed = subscriptions_billed_to(link=link)
    return render(
        request,
        "partners/partner/customer.html",
        {
            "partner": partner,
            "tier": _tier(partner),
            "link": link,
            "customer": customer,
            "subscriptions": subscription_rows(partner=partner, customer=customer, now=now),
            "invoices": invoices_for_partner(partner=partner, customer=customer),
            "quotes": quotes_for_partner(partner=partner, customer=customer),
            "requests": [(item, request_describe(item)) for item in requests_of(partner=partner, customer=customer)[:50]],
            "activity": activity_for_partner(partner=partner, customer=customer),
            "handover": handover_lines(
                billed, partner_name=partner.organization.name, customer_name=customer.name, reader=PartnerLink.Side.PARTNER
            ),
            "is_admin": _is_admin(request),
        },
    )


@partner_page()
@require_POST
def partner_link_end(request: HttpRequest, partner: Partner, customer_id: uuid.UUID) -> HttpResponse:
    """POST /partner/customers/<id>/end/: a partner admin ends the link (the service checks the role)."""
    link = link_for_partner(partner=partner, customer_id=customer_id)
    form = EndLinkForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        link_end(link=link, actor=request.user, side=PartnerLink.Side.PARTNER, reason=reason)
    except FlywheelError as refusal:
        messages.error(request, refusal.message)
        return redirect("partners:partner_customer", customer_id=link.customer.public_id)
    messages.success(
        request, f"{link.customer.name} is no longer your customer. What you paid for runs to its renewal date."
    )
    return redirect("partners:partner_home")


@partner_page()
def partner_invite(request: HttpRequest, partner: Partner) -> HttpResponse:
    """/partner/invite/: a partner admin invites a customer by its admin's address."""
    form = InviteForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                outcome = link_invite(
                    partner=partner, actor=request.user, email=form.cleaned_data["email"], message=form.cleaned_data["message"]
                )
            except FlywheelError as refusal:
                messages.error(request, refusal.message)
                status = 400
            else:
                # One answer whatever the address is: a partner never learns from an invite which
                # organization (if any) an address administers; it learns the name when the
                # customer's admin accepts.
                messages.success(
                    request,
                    f"Invitation sent to {outcome.email}. If they run an organization on Flywheel, its admins can "
                    "accept or decline it; otherwise we invited them to sign up, and it waits for the organization "
                    "they create. It is listed under pending invitations.",
                )
                return redirect("partners:partner_home")
        else:
            status = 400
    return render(
        request,
        "partners/partner/invite.html",
        {"partner": partner, "form": form, "is_admin": _is_admin(request)},
        status=status,
    )


@partner_page()
@require_POST
def partner_link_answer(request: HttpRequest, partner: Partner, link_id: uuid.UUID) -> HttpResponse:
    """POST /partner/links/<id>/: accept or decline a customer's request, withdraw an invite."""
    link = (
        PartnerLink.objects.select_related("customer", "partner__organization")
        .filter(partner=partner, public_id=link_id, status__in=PartnerLink.PENDING_STATUSES)
        .first()
    )
    if link is None:
        raise CustomerNotLinked()
    action = request.POST.get("action", "")
    try:
        if action == "accept" and link.status == PartnerLink.Status.REQUESTED:
            link_accept(link=link, actor=request.user)
            messages.success(request, f"{link.customer.name} is now your customer.")
            return redirect("partners:partner_customer", customer_id=link.customer.public_id)
        if action == "decline" and link.status == PartnerLink.Status.REQUESTED:
            link_decline(link=link, actor=request.user, reason=request.POST.get("reason", ""))
            messages.success(request, f"You declined {possessive(link.customer.name)} request; they were told.")
        elif action == "withdraw" and link.status == PartnerLink.Status.INVITED:
            link_withdraw(link=link, actor=request.user)
            messages.success(request, f"Your invitation to {link.invited_email or link.customer.name} is withdrawn.")
        else:
            messages.error(request, "That link cannot be answered that way.")
    except FlywheelError as refusal:
        messages.error(request, refusal.message)
    return redirect("partners:partner_home")


@partner_page()
def partner_requests(request: HttpRequest, partner: Partner) -> HttpResponse:
    """/partner/requests/: customers' requests, open first (?status=done|declined|all)."""
    shown = request.GET.get("status", "open")
    if shown not in ("open", "done", "declined", "all"):
        shown = "open"
    items = requests_of(partner=partner, status=None if shown == "all" else shown)[:200]
    return render(
        request,
        "partners/partner/requests.html",
        {
            "partner": partner,
            "requests": [(item, request_describe(item)) for item in items],
            "shown": shown,
            "counts": request_counts(partner=partner),
        },
    )


@partner_page()
@require_POST
def partner_request_answer(request: HttpRequest, partner: Partner, request_id: uuid.UUID) -> HttpResponse:
    """POST /partner/requests/<id>/answer/: mark a request done or declined, with a note."""
    item = request_for_partner(partner=partner, request_id=request_id)
    if item is None:
        raise CustomerNotLinked()
    form = RequestAnswerForm(request.POST)
    back = request.POST.get("back") == "customer"
    target = (
        reverse("partners:partner_customer", args=[item.customer.public_id]) if back else reverse("partners:partner_requests")
    )
    if not form.is_valid():
        messages.error(request, next(iter(form.errors.values()))[0])
        return redirect(target)
    try:
        request_answer(
            request=item, partner=partner, actor=request.user, status=form.cleaned_data["status"], note=form.cleaned_data["note"]
        )
    except FlywheelError as refusal:
        messages.error(request, refusal.message)
    else:
        messages.success(request, f"Marked {form.cleaned_data['status']}; {item.customer.name} was told.")
    return redirect(target)
