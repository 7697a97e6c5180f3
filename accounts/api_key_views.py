"""The API keys page of an organization's admins: list, create (the key is shown once), rotate, revoke."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from . import api_keys
from .exceptions import FlywheelError, NotFound
from .models import Membership
from .selectors import membership_is_admin


def _admin_membership(request: HttpRequest) -> Membership:
    """The membership of the organization the user works in, if they are its admin; 404 otherwise."""
    membership = request.membership  # type: ignore[attr-defined]
    if not membership_is_admin(membership):
        raise Http404
    return membership


def _page(
    request: HttpRequest,
    membership: Membership,
    *,
    created=None,
    raw_key: str = "",
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    # The new key's secret is rendered into this one response and kept nowhere else: not in
    # the session, not in a message, and the page is not cached.
    return render(
        request,
        "accounts/api_keys.html",
        {
            "organization": membership.organization,
            "keys": api_keys.api_keys_of(organization=membership.organization),
            "created": created,
            "raw_key": raw_key,
            "error": error,
        },
        status=status,
    )


@never_cache
@login_required
def api_keys_page(request: HttpRequest) -> HttpResponse:
    membership = _admin_membership(request)
    if request.method == "POST":
        try:
            api_key, raw = api_keys.api_key_create(
                organization=membership.organization,
                actor=request.user,
                name=request.POST.get("name", ""),
            )
        except FlywheelError as error:
            return _page(request, membership, error=error.message, status=400)
        return _page(request, membership, created=api_key, raw_key=raw)
    return _page(request, membership)


def _key(request: HttpRequest, membership: Membership, key_id: uuid.UUID):
    try:
        return api_keys.get_api_key_for_admin(
            organization=membership.organization, actor=request.user, api_key_public_id=key_id
        )
    except NotFound:
        raise Http404 from None


@never_cache
@login_required
@require_POST
def api_key_rotate(request: HttpRequest, key_id: uuid.UUID) -> HttpResponse:
    membership = _admin_membership(request)
    old = _key(request, membership, key_id)
    try:
        api_key, raw = api_keys.api_key_rotate(api_key=old, actor=request.user)
    except FlywheelError as error:
        return _page(request, membership, error=error.message, status=400)
    return _page(request, membership, created=api_key, raw_key=raw)


@login_required
@require_POST
def api_key_revoke(request: HttpRequest, key_id: uuid.UUID) -> HttpResponse:
    membership = _admin_membership(request)
    api_key = _key(request, membership, key_id)
    try:
        api_keys.api_key_revoke(api_key=api_key, actor=request.user)
    except FlywheelError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request, f"The key {api_key.name} (fw_live_{api_key.prefix}_…) is revoked."
        )
    return redirect("api_keys")
