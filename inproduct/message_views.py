"""The kit's message endpoints under /kit/v1/ (the contract: docs/in-product.md): the message
due now, what the person did with it, the survey's answer and dismissal, asking the admins,
the one-click trial, the product's success moments and the person's activity. Parse, call a service, answer JSON;
every refusal is {"detail": "<a sentence>"} with its status."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, path, reverse
from django.views.decorators.csrf import csrf_exempt

from billing.exceptions import TrialSpent
from common.exceptions import FlywheelError, NotFound, PermissionDenied, ValidationError
from feedback.exceptions import SurveyClosed

from . import message_cache, services
from .activity import kit_activity_record
from .cors import cors_allow, request_origin
from .exceptions import DoneOnFlywheel, KitBadRequest, KitError
from .identity import bearer_credential, kit_endpoint, kit_json_body
from .messages import feature_request, message_due, message_seconds

# How each refusal is answered (a KitError carries its own status); anything else a service
# refuses conflicts with the state of things (a trial already had, a survey already closed).
_STATUS: list[tuple[type[FlywheelError], int]] = [
    (NotFound, 404),
    (PermissionDenied, 403),
    (ValidationError, 400),
    (SurveyClosed, 409),
]


def _refusal(error: FlywheelError) -> JsonResponse:
    status = error.status if isinstance(error, KitError) else next(
        (status for kind, status in _STATUS if isinstance(error, kind)), 409
    )
    body: dict[str, str] = {"detail": error.message}
    if isinstance(error, DoneOnFlywheel):
        body["url"] = error.url
    elif isinstance(error, TrialSpent):
        # Buying is on the billing page: the kit links there with the refusal.
        body["url"] = f"{settings.SITE_URL}{reverse('billing')}"
    return JsonResponse(body, status=status)


def _text(payload: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = payload.get(name, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise ValidationError(f"Send {name!r} as a string.")
    return value


def _answered(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Answer a service's refusal with its status here (kit_endpoint, around it, answers its
    own and adds the CORS headers)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except FlywheelError as error:
            return _refusal(error)

    return wrapped


@csrf_exempt
def message(request: HttpRequest) -> HttpResponse:
    """The one message due now, or null: the kept answer when message_cache has one for this
    credential (no query), else computed (and kept)."""
    lookup = None
    if request.method == "GET":
        origin = request_origin(request)
        body, lookup = message_cache.answer_cached(credential=bearer_credential(request), origin=origin)
        if body is not None:
            return cors_allow(HttpResponse(body, content_type="application/json"), origin)
    return _message_computed(request, lookup=lookup)


@kit_endpoint(methods=["GET"])
@_answered
def _message_computed(request: HttpRequest, *, lookup: message_cache.Lookup | None) -> HttpResponse:
    caller = request.kit  # type: ignore[attr-defined]
    due = message_due(caller=caller)
    body = message_cache.answer_json({"message": due.as_json() if due is not None else None})
    message_cache.answer_keep(lookup=lookup, caller=caller, body=body, seconds=lambda: message_seconds(caller=caller))
    return HttpResponse(body, content_type="application/json")


@kit_endpoint(methods=["POST"])
@_answered
def message_event(request: HttpRequest) -> HttpResponse:
    payload = kit_json_body(request)
    services.message_event_record(
        caller=request.kit,  # type: ignore[attr-defined]
        message_id=_text(payload, "message"),
        action=_text(payload, "action"),
    )
    return HttpResponse(status=204)


@kit_endpoint(methods=["POST"])
@_answered
def survey_answer(request: HttpRequest) -> HttpResponse:
    payload = kit_json_body(request)
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


@kit_endpoint(methods=["POST"])
@_answered
def survey_dismiss(request: HttpRequest) -> HttpResponse:
    services.survey_dismiss(caller=request.kit, survey_public_id=_survey_id(kit_json_body(request)))  # type: ignore[attr-defined]
    return HttpResponse(status=204)


@kit_endpoint(methods=["POST"])
@_answered
def ask_admins(request: HttpRequest) -> HttpResponse:
    caller = request.kit  # type: ignore[attr-defined]
    names = services.admins_ask(caller=caller, message_id=_text(kit_json_body(request), "message"))
    return JsonResponse(
        {"detail": services.admins_sentence(names=names, organization_name=caller.organization.name)}, status=202
    )


@kit_endpoint(methods=["POST"])
@_answered
def trials(request: HttpRequest) -> HttpResponse:
    started = services.trial_start(caller=request.kit, product_code=_text(kit_json_body(request), "product"))  # type: ignore[attr-defined]
    return JsonResponse({"detail": started.detail, "url": started.url}, status=201)


_FEATURE_NAME = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


def _feature(payload: dict[str, Any]) -> str:
    feature = _text(payload, "feature").strip()
    if not re.match(_FEATURE_NAME, feature):
        raise ValidationError("A feature is 1 to 64 lower-case letters, digits, dots, dashes or underscores, such as github-sync.")
    return feature


@kit_endpoint(methods=["POST"])
@_answered
def feature(request: HttpRequest) -> HttpResponse:
    """The product asks for a feature the person reached for: {"entitled": true}, or false with
    the message to show (what grants it, its price and how to get it; docs/in-product.md)."""
    entitled, shown = feature_request(caller=request.kit, feature=_feature(kit_json_body(request)))  # type: ignore[attr-defined]
    return JsonResponse({"entitled": entitled, "message": shown.as_json() if shown is not None else None})


@kit_endpoint(methods=["POST"])
@_answered
def feature_trial(request: HttpRequest) -> HttpResponse:
    payload = kit_json_body(request)
    started = services.feature_trial_start(
        caller=request.kit,  # type: ignore[attr-defined]
        feature=_feature(payload),
        addon_code=_text(payload, "addon").strip(),
    )
    return JsonResponse({"detail": started.detail}, status=201)


@kit_endpoint(methods=["POST"])
@_answered
def success_events(request: HttpRequest) -> HttpResponse:
    services.success_record(caller=request.kit, name=_text(kit_json_body(request), "name"))  # type: ignore[attr-defined]
    return HttpResponse(status=204)


@kit_endpoint(methods=["POST"])
@_answered
def activity(request: HttpRequest) -> HttpResponse:
    """A batch of what the person did (`element.track(name)`), for the person, organization and
    product the session credential names: {"accepted", "duplicates", "errors"} as the activity
    API answers, each error with the kit's own index and id."""
    payload = kit_json_body(request)
    unknown = sorted(set(payload) - {"events"})
    if unknown:
        # Who and where are the session credential's: a body that names anything else is refused whole.
        raise KitBadRequest(f"Unknown field{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)[:200]}. Send only the events.")
    report = kit_activity_record(caller=request.kit, events=payload.get("events"))  # type: ignore[attr-defined]
    return JsonResponse(
        {
            "accepted": report.accepted,
            "duplicates": report.duplicates,
            "errors": [{"index": error.index, "id": error.id, "error": error.error} for error in report.errors],
        }
    )


urlpatterns: list[URLPattern] = [
    path("message", message, name="kit_message"),
    path("message/events", message_event, name="kit_message_events"),
    path("survey/answer", survey_answer, name="kit_survey_answer"),
    path("survey/dismiss", survey_dismiss, name="kit_survey_dismiss"),
    path("ask-admins", ask_admins, name="kit_ask_admins"),
    path("trials", trials, name="kit_trials"),
    path("events", success_events, name="kit_events"),
    path("activity", activity, name="kit_activity"),
    path("feature", feature, name="kit_feature"),
    path("feature/trial", feature_trial, name="kit_feature_trial"),
]
