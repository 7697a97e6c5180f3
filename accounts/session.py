"""What a visitor's session carries into signup: landing link, UTM tags, anonymous id, invite."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.http import HttpRequest

from .exceptions import InviteInvalid
from .models import Invite
from .services import invite_assert_usable

SIGNUP_KEY = "flywheel_signup"
ANONYMOUS_KEY = "flywheel_anonymous_id"
# Where allauth keeps an address proven outside its own verification (stash_verified_email).
VERIFIED_EMAIL_KEY = "account_verified_email"
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


def anonymous_id(request: HttpRequest) -> str:
    value = request.session.get(ANONYMOUS_KEY)
    if not value:
        value = str(uuid.uuid4())
        request.session[ANONYMOUS_KEY] = value
    return value


def signup_context_store(
    request: HttpRequest,
    *,
    product_code: str = "",
    edition_code: str = "",
    edition_summary: dict | None = None,
    invite: Invite | None = None,
) -> None:
    """Remember what brought the visitor to signup. `edition_summary` is what the signup page
    says about the chosen edition (product and edition names, trial days, free or not): the
    front door, which knows the catalog, hands it over as plain values."""
    context = dict(request.session.get(SIGNUP_KEY) or {})
    if product_code:
        context["product_code"] = product_code
        context["edition_code"] = edition_code
        context["edition_summary"] = edition_summary or {}
    utm = {key: request.GET[key][:200] for key in UTM_KEYS if request.GET.get(key)}
    if utm:
        context["utm"] = utm
    if invite is not None:
        context["invite_id"] = str(invite.public_id)
    request.session[SIGNUP_KEY] = context


def signup_start_over(request: HttpRequest) -> None:
    """A visitor who starts from a product's landing link starts their own organization: an
    invite opened earlier in this browser no longer shapes the signup form."""
    from allauth.account.adapter import get_adapter

    context = dict(request.session.get(SIGNUP_KEY) or {})
    if context.pop("invite_id", None):
        request.session[SIGNUP_KEY] = context
    get_adapter(request).unstash_verified_email(request)


def signup_invite_store(request: HttpRequest, *, invite: Invite) -> None:
    """Remember the invite an anonymous visitor opened: the signup form then offers its
    address, locked, and stores it verified (the link was mailed to it)."""
    from allauth.account.adapter import get_adapter

    signup_context_store(request, invite=invite)
    get_adapter(request).stash_verified_email(request, invite.email)


@dataclass(frozen=True)
class EditionSummary:
    product: str
    edition: str
    trial_days: int
    free: bool


@dataclass(frozen=True)
class SignupChoice:
    """What the signup page says it is for: the edition a landing link chose, or the invite."""

    edition: EditionSummary | None
    invite: Invite | None


def signup_choice(request: HttpRequest) -> SignupChoice:
    """The edition and the still usable invite this visitor's session carries. An invite that
    can no longer be used (withdrawn, expired, used) is forgotten, and so is the address it
    proved."""
    context = request.session.get(SIGNUP_KEY) or {}
    summary = context.get("edition_summary") or {}
    edition = None
    if summary.get("product") and summary.get("edition"):
        edition = EditionSummary(
            product=str(summary["product"]),
            edition=str(summary["edition"]),
            trial_days=int(summary.get("trial_days") or 0),
            free=bool(summary.get("free")),
        )
    invite = None
    if context.get("invite_id"):
        invite = Invite.objects.select_related("organization").filter(public_id=context["invite_id"]).first()
    if invite is not None:
        try:
            invite_assert_usable(invite)
        except InviteInvalid:
            invite = None
    verified = request.session.get(VERIFIED_EMAIL_KEY) or ""
    if invite is not None and verified.lower() != invite.email.lower():
        invite = None  # an invite opened before its address was remembered: signup verifies it
    if invite is None and (verified or context.get("invite_id")):
        # Nothing may stay proven without a usable invite: allauth would store it verified.
        signup_start_over(request)
    return SignupChoice(edition=edition, invite=invite)


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
