"""What a visitor's session carries into signup: landing link, UTM tags, anonymous id, invite."""

from __future__ import annotations

import uuid

from django.http import HttpRequest

from .models import Invite

SIGNUP_KEY = "flywheel_signup"
ANONYMOUS_KEY = "flywheel_anonymous_id"
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


def anonymous_id(request: HttpRequest) -> str:
    value = request.session.get(ANONYMOUS_KEY)
    if not value:
        value = str(uuid.uuid4())
        request.session[ANONYMOUS_KEY] = value
    return value


def signup_context_store(
    request: HttpRequest, *, product_code: str = "", edition_code: str = "", invite: Invite | None = None
) -> None:
    context = dict(request.session.get(SIGNUP_KEY) or {})
    if product_code:
        context["product_code"] = product_code
        context["edition_code"] = edition_code
    utm = {key: request.GET[key][:200] for key in UTM_KEYS if request.GET.get(key)}
    if utm:
        context["utm"] = utm
    if invite is not None:
        context["invite_id"] = str(invite.public_id)
    request.session[SIGNUP_KEY] = context


def signup_context_pop(request: HttpRequest) -> dict:
    context = request.session.pop(SIGNUP_KEY, None) or {}
    invite = None
    if context.get("invite_id"):
        invite = Invite.objects.filter(public_id=context["invite_id"]).first()
    return {
        "product_code": str(context.get("product_code", ""))[:64],
        "edition_code": str(context.get("edition_code", ""))[:64],
        "utm": context.get("utm") or {},
        "invite": invite,
        "anonymous_id": request.session.get(ANONYMOUS_KEY, ""),
    }
