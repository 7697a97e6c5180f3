"""The kit's message endpoints under /kit/v1/ (the contract: docs/in-product.md): the message
due now, what the person did with it, the survey's answer and dismissal, asking the admins,
the one-click trial, and the product's success moments. Parse, call a service, answer JSON;
every refusal is {"detail": "<a sentence>"} with its status."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, path, reverse
from django.views.decorators.csrf import csrf_exempt

from accounts.models import Membership
from billing.exceptions import TrialSpent
from common.exceptions import FlywheelError, NotFound, PermissionDenied, ValidationError
from feedback.exceptions import SurveyClosed

from . import services
from .caller import KitCaller
from .exceptions import AskedToday
from .messages import message_due
from .models import KitSession


def _detail(message: str, status: int) -> JsonResponse:
    return JsonResponse({"detail": message}, status=status)


# A STAND-IN for identity's `kit_endpoint` (inproduct/identity.py), so these views run before
# identity's delivery lands; replaced by it then. It reads a signed (session, origin) bearer
# credential and answers the preflight, nothing more: CORS against the product's origins, the
# credential's expiry rules and last_seen_at are identity's.
_STANDIN_SALT = "inproduct.message_views.standin"


def kit_session_credential(*, session: KitSession, origin: str) -> str:
    return signing.dumps({"session": str(session.public_id), "origin": origin}, salt=_STANDIN_SALT)


def kit_endpoint(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @csrf_exempt
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        origin = request.headers.get("Origin", "")
        if request.method == "OPTIONS":
            response = HttpResponse(status=204)
        else:
            bearer = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            try:
                claims = signing.loads(bearer, salt=_STANDIN_SALT, max_age=settings.KIT_SESSION_SECONDS)
            except signing.BadSignature:
                return _detail("Your Flywheel session has expired: reload the page.", 401)
            if claims["origin"] != origin:
                return _detail("This session belongs to another origin.", 403)
            session = KitSession.objects.select_related("product").get(public_id=claims["session"])
            membership = (
                Membership.objects.select_related("user", "organization")
                .filter(organization_id=session.organization_id, user_id=session.user_id)
                .first()
            )
            if membership is None:
                return _detail("Your Flywheel session has expired: reload the page.", 401)
            request.kit = KitCaller(membership=membership, session=session, origin=origin)  # type: ignore[attr-defined]
            response = view(request, *args, **kwargs)
        response["Access-Control-Allow-Origin"] = origin
        response["Vary"] = "Origin"
        return response

    return wrapped


# How each refusal is answered; anything else a service refuses is a conflict with the state.
_STATUS: list[tuple[type[FlywheelError], int]] = [
    (NotFound, 404),
    (PermissionDenied, 403),
    (ValidationError, 400),
    (AskedToday, 429),
    (SurveyClosed, 409),
]


def _refusal(error: FlywheelError) -> JsonResponse:
    status = next((status for kind, status in _STATUS if isinstance(error, kind)), 409)
    body: dict[str, str] = {"detail": error.message}
    if isinstance(error, TrialSpent):
        # Buying is on the billing page: the kit links there with the refusal.
        body["url"] = f"{settings.SITE_URL}{reverse('billing')}"
    return JsonResponse(body, status=status)


def _payload(request: HttpRequest) -> dict[str, Any]:
    try:
        payload = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("The request body must be a JSON object.") from None
    if not isinstance(payload, dict):
        raise ValidationError("The request body must be a JSON object.")
    return payload


def _text(payload: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = payload.get(name, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise ValidationError(f"Send {name!r} as a string.")
    return value


def _method(method: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Answer only `method` (the preflight is the decorator's), and turn refusals into JSON."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method != method:
                response = _detail(f"Use {method} here.", 405)
                response["Allow"] = f"{method}, OPTIONS"
                return response
            try:
                return view(request, *args, **kwargs)
            except FlywheelError as error:
                return _refusal(error)

        return wraps(view)(wrapped)

    return decorate


@kit_endpoint
@_method("GET")
def message(request: HttpRequest) -> HttpResponse:
    """The one message due now, or null."""
    due = message_due(caller=request.kit)  # type: ignore[attr-defined]
    return JsonResponse({"message": due.as_json() if due is not None else None})


@kit_endpoint
@_method("POST")
def message_event(request: HttpRequest) -> HttpResponse:
    payload = _payload(request)
    services.message_event_record(
        caller=request.kit,  # type: ignore[attr-defined]
        message_id=_text(payload, "message"),
        action=_text(payload, "action"),
    )
    return HttpResponse(status=204)


@kit_endpoint
@_method("POST")
def survey_answer(request: HttpRequest) -> HttpResponse:
    payload = _payload(request)
    may_contact = payload.get("may_contact", False)
    if not isinstance(may_contact, bool):
        raise ValidationError("Send 'may_contact' as true or false.")
    response, created = services.survey_answer(
        caller=request.kit,  # type: ignore[attr-defined]
        survey_public_id=_survey_id(payload),
        score=payload.get("score"),
        role=_text(payload, "role"),
        comment=_text(payload, "comment", required=False),
        may_contact=may_contact,
    )
    detail = (
        "Thank you. We read every answer, and we may write to you about yours."
        if response.may_contact
        else "Thank you. We read every answer."
    )
    return JsonResponse({"detail": detail}, status=201 if created else 200)


def _survey_id(payload: dict[str, Any]) -> str:
    value = _text(payload, "survey")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise NotFound("Survey not found.") from None


@kit_endpoint
@_method("POST")
def survey_dismiss(request: HttpRequest) -> HttpResponse:
    services.survey_dismiss(caller=request.kit, survey_public_id=_survey_id(_payload(request)))  # type: ignore[attr-defined]
    return HttpResponse(status=204)


@kit_endpoint
@_method("POST")
def ask_admins(request: HttpRequest) -> HttpResponse:
    caller = request.kit  # type: ignore[attr-defined]
    names = services.admins_ask(caller=caller, message_id=_text(_payload(request), "message"))
    return JsonResponse(
        {"detail": services.admins_sentence(names=names, organization_name=caller.organization.name)}, status=202
    )


@kit_endpoint
@_method("POST")
def trials(request: HttpRequest) -> HttpResponse:
    started = services.trial_start(caller=request.kit, product_code=_text(_payload(request), "product"))  # type: ignore[attr-defined]
    return JsonResponse({"detail": started.detail, "url": started.url}, status=201)


@kit_endpoint
@_method("POST")
def success_events(request: HttpRequest) -> HttpResponse:
    services.success_record(caller=request.kit, name=_text(_payload(request), "name"))  # type: ignore[attr-defined]
    return HttpResponse(status=204)


urlpatterns: list[URLPattern] = [
    path("message", message, name="kit_message"),
    path("message/events", message_event, name="kit_message_events"),
    path("survey/answer", survey_answer, name="kit_survey_answer"),
    path("survey/dismiss", survey_dismiss, name="kit_survey_dismiss"),
    path("ask-admins", ask_admins, name="kit_ask_admins"),
    path("trials", trials, name="kit_trials"),
    path("events", success_events, name="kit_events"),
]
