"""Pages for members, invites, switching organization and joining by domain."""

from __future__ import annotations

import email
import email.policy
import uuid
from pathlib import Path
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from . import selectors, services
from .exceptions import FlywheelError, InviteInvalid, NotFound, SeatLimitReached
from .forms import InviteForm, OrganizationNameForm
from .middleware import ORGANIZATION_KEY
from .models import Invite, Membership, Organization
from .session import signup_invite_store


def _organization_or_welcome(request: HttpRequest) -> Organization | None:
    return request.organization if request.organization else None  # type: ignore[attr-defined]


# The product page an admin came from (the kit's invite nudge passes it). This page only carries
# it from the form to the page after sending; the template offers the way back only when billing's
# return_trip tag finds it on a product's origin (billing/views/return_to.py), accounts being
# below catalog.
RETURN_TO = "return_to"


def _members_again(request: HttpRequest) -> str:
    return_to = request.POST.get(RETURN_TO, "")
    if not return_to or len(return_to) > 2000:
        return reverse("members")
    return f"{reverse('members')}?{urlencode({RETURN_TO: return_to})}"


@login_required
def members(request: HttpRequest) -> HttpResponse:
    organization = _organization_or_welcome(request)
    if organization is None:
        return redirect("welcome")
    membership = request.membership  # type: ignore[attr-defined]
    form = InviteForm()
    seat_limit_product = ""
    if request.method == "POST":
        form = InviteForm(request.POST)
        if form.is_valid():
            try:
                invite = services.invite_create(
                    organization=organization,
                    actor=request.user,
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                )
            except SeatLimitReached as error:
                # Said to the admin, who is the one who can act (not "an admin can ..."): the
                # template puts the way to more seats, with its price, right under it.
                seat_limit_product = error.product
                form.add_error("email", f"No invitation was sent. {error.to_admin}")
            except FlywheelError as error:
                form.add_error("email", error.message)
            else:
                messages.success(request, f"Invitation sent to {invite.email}.")
                return redirect(_members_again(request))
    return render(
        request,
        "accounts/members.html",
        {
            "organization": organization,
            "is_admin": selectors.membership_is_admin(membership),
            "members": selectors.members_of(organization=organization),
            "invites": selectors.pending_invites_of(organization=organization),
            "seats_in_use": services.seats_in_use(organization=organization),
            "seat_prompt_key": f"seats-{seat_limit_product}" if seat_limit_product else "",
            "form": form,
        },
        status=400 if request.method == "POST" else 200,
    )


@login_required
def organization_settings(request: HttpRequest) -> HttpResponse:
    """The organization's name (set from the email domain at signup): admins rename it here."""
    organization = _organization_or_welcome(request)
    if organization is None:
        return redirect("welcome")
    is_admin = selectors.membership_is_admin(request.membership)  # type: ignore[attr-defined]
    form = OrganizationNameForm(initial={"name": organization.name})
    if request.method == "POST":
        form = OrganizationNameForm(request.POST)
        if form.is_valid():
            try:
                renamed = services.organization_rename(
                    organization=organization, actor=request.user, name=form.cleaned_data["name"]
                )
            except FlywheelError as error:
                form.add_error("name", error.message)
            else:
                messages.success(request, f"Your organization is now called {renamed.name}.")
                return redirect("organization_settings")
    return render(
        request,
        "accounts/organization_settings.html",
        {"organization": organization, "is_admin": is_admin, "form": form},
        status=400 if request.method == "POST" else 200,
    )


def _run(request: HttpRequest, action, success: str) -> HttpResponse:
    try:
        action()
    except FlywheelError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, success)
    return redirect("members")


def _current_member(request: HttpRequest, membership_id: int) -> Membership:
    """A membership of the organization the user works in; 404 for any other."""
    organization = _organization_or_welcome(request)
    if organization is None:
        raise Http404
    try:
        return selectors.get_member_for_user(user=request.user, organization=organization, membership_id=membership_id)
    except NotFound:
        raise Http404 from None


def _current_invite(request: HttpRequest, invite_id: uuid.UUID) -> Invite:
    """An invite of the organization the user works in; 404 for any other."""
    organization = _organization_or_welcome(request)
    if organization is None:
        raise Http404
    try:
        return selectors.get_invite_for_user(user=request.user, organization=organization, invite_public_id=invite_id)
    except NotFound:
        raise Http404 from None


@login_required
@require_POST
def member_remove(request: HttpRequest, membership_id: int) -> HttpResponse:
    membership = _current_member(request, membership_id)
    leaving = membership.user_id == request.user.pk
    response = _run(
        request,
        lambda: services.membership_remove(membership=membership, actor=request.user),
        "You left the organization." if leaving else f"{membership.user.email} was removed.",
    )
    if leaving and not Membership.objects.filter(pk=membership.pk).exists():
        request.session.pop(ORGANIZATION_KEY, None)
        return redirect("welcome")
    return response


@login_required
@require_POST
def member_role(request: HttpRequest, membership_id: int) -> HttpResponse:
    membership = _current_member(request, membership_id)
    role = request.POST.get("role", "")
    return _run(
        request,
        lambda: services.membership_set_role(membership=membership, actor=request.user, role=role),
        f"{membership.user.email} is now {role}.",
    )


@login_required
@require_POST
def invite_revoke(request: HttpRequest, invite_id: uuid.UUID) -> HttpResponse:
    invite = _current_invite(request, invite_id)
    return _run(
        request,
        lambda: services.invite_revoke(invite=invite, actor=request.user),
        f"The invitation to {invite.email} was withdrawn.",
    )


@login_required
@require_POST
def invite_resend(request: HttpRequest, invite_id: uuid.UUID) -> HttpResponse:
    invite = _current_invite(request, invite_id)
    return _run(
        request,
        lambda: services.invite_resend(invite=invite, actor=request.user),
        f"The invitation to {invite.email} was sent again.",
    )


@login_required
@require_POST
def join_by_domain_toggle(request: HttpRequest) -> HttpResponse:
    organization = _organization_or_welcome(request)
    if organization is None:
        raise Http404
    enabled = request.POST.get("enabled") == "1"
    return _run(
        request,
        lambda: services.organization_set_join_by_domain(
            organization=organization, actor=request.user, enabled=enabled
        ),
        "Join by domain is on." if enabled else "Join by domain is off.",
    )


def invite_landing(request: HttpRequest, token: str) -> HttpResponse:
    """Where an invite link lands: accept at once, or sign up / sign in first."""
    try:
        invite = services.invite_from_token(token)
        services.invite_assert_usable(invite)
    except InviteInvalid as error:
        return render(request, "accounts/invite_invalid.html", {"message": error.message}, status=410)
    if not request.user.is_authenticated:
        signup_invite_store(request, invite=invite)
        return render(request, "accounts/invite_landing.html", {"invite": invite, "token": token})
    if request.method == "POST":
        try:
            membership = services.invite_accept(invite=invite, user=request.user)
        except FlywheelError as error:
            return render(
                request, "accounts/invite_landing.html", {"invite": invite, "token": token, "error": error.message}, status=403
            )
        request.session[ORGANIZATION_KEY] = str(membership.organization.public_id)
        messages.success(request, f"Welcome to {membership.organization.name}.")
        return redirect("home")
    return render(request, "accounts/invite_landing.html", {"invite": invite, "token": token})


@login_required
@require_POST
def organization_switch(request: HttpRequest, organization_id: uuid.UUID) -> HttpResponse:
    try:
        membership = selectors.get_membership_for_user(user=request.user, organization_public_id=organization_id)
    except NotFound:
        raise Http404 from None
    request.session[ORGANIZATION_KEY] = str(membership.organization.public_id)
    return redirect("home")


@login_required
@require_POST
def join_by_domain(request: HttpRequest, organization_id: uuid.UUID) -> HttpResponse:
    organization = next(
        (o for o in services.organizations_joinable_by_domain(user=request.user) if o.public_id == organization_id),
        None,
    )
    if organization is None:
        raise Http404
    try:
        membership = services.membership_join_by_domain(organization=organization, user=request.user)
    except FlywheelError as error:
        messages.error(request, error.message)
        return redirect("welcome")
    request.session[ORGANIZATION_KEY] = str(membership.organization.public_id)
    messages.success(request, f"You joined {organization.name}.")
    return redirect("home")


def dev_mailbox(request: HttpRequest, name: str | None = None) -> HttpResponse:
    """The development mailbox: every message written under MAIL_DIR. Only when DEBUG, and
    only from this machine or for staff."""
    if not settings.DEBUG or settings.EMAIL_BACKEND != "accounts.mail.MaildirBackend":
        raise Http404
    # The mailbox holds every verification and password-reset link: only this machine, or
    # staff, may read it, even on a development server someone exposed.
    # A request a proxy or tunnel on this machine passed on (ngrok, cloudflared, nginx) comes
    # from loopback too, but says whom it came from: only a direct one counts as this machine.
    proxied = any(request.META.get(header) for header in ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP"))
    loopback = request.META.get("REMOTE_ADDR", "") in ("127.0.0.1", "::1") and not proxied
    if not (loopback or (request.user.is_authenticated and request.user.is_staff)):
        raise Http404
    directory = Path(settings.MAIL_DIR)
    files = sorted(directory.glob("*.eml"), reverse=True) if directory.exists() else []
    if name is not None:
        path = directory / name
        if path not in files:
            raise Http404
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        return render(
            request,
            "accounts/mailbox_message.html",
            {
                "name": name,
                "message": message,
                "headers": list(message.items()),
                "text": text.get_content() if text else "",
                "html": html.get_content() if html else "",
            },
        )
    inbox = []
    recipient = request.GET.get("to", "").lower()
    for path in files[:200]:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if recipient and recipient not in str(message["To"]).lower():
            continue
        inbox.append({"name": path.name, "subject": message["Subject"], "to": message["To"], "date": message["Date"]})
    return render(request, "accounts/mailbox.html", {"inbox": inbox, "to": recipient, "mailbox_url": reverse("dev_mailbox")})
