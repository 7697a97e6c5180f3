"""Billing's operations in the products' API: entitlements and in-product prompts.

config/api.py mounts this router at /api/v1/ (with ping); docs/api.md describes each operation.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema, Status
from ninja.errors import AuthenticationError

from accounts.api_auth import ApiKeyAuth
from accounts.api_keys import ApiPrincipal
from common.api_schemas import INVALID_INPUT, ErrorOut

from . import prompts as prompt_rules
from .entitlements import entitlements_answer

router = Router(tags=["v1"])


class EntitlementOut(Schema):
    product: str
    product_name: str
    edition: str
    edition_name: str
    status: str
    entitled: bool
    seat_limit: int
    seats_used: int
    features: list[str]
    trial_ends_at: datetime | None
    current_period_end: datetime | None
    interval: str | None


class PromptOut(Schema):
    id: str
    kind: str
    product: str
    threshold: str
    severity: str
    title: str
    body: str
    cta_label: str
    cta_url: str
    dismissible: bool


class PromptActionIn(Schema):
    user: UUID


class PingOut(Schema):
    ok: bool


def _principal(request: HttpRequest) -> ApiPrincipal:
    return request.auth  # type: ignore[attr-defined,no-any-return]


@router.get("/ping", auth=None, response={200: PingOut, **INVALID_INPUT}, summary="Liveness, without authentication")
def ping(request: HttpRequest) -> dict[str, bool]:
    return {"ok": True}


@router.get(
    "/entitlements",
    auth=ApiKeyAuth(marker_read_by_operation=True),
    response={200: list[EntitlementOut], 401: ErrorOut, **INVALID_INPUT},
    summary="What the organization is entitled to, per product",
)
def entitlements(request: HttpRequest, product: str | None = None) -> HttpResponse:
    """The key's organization's subscriptions (all but canceled), or only `product`'s: an empty
    list when it has none. `entitled` is false for a suspended subscription."""
    body = entitlements_answer(principal=_principal(request), product_code=product)
    if body is None:
        raise AuthenticationError()
    return HttpResponse(body, content_type="application/json")


@router.get(
    "/prompts",
    response={200: list[PromptOut], 401: ErrorOut, 404: ErrorOut, **INVALID_INPUT},
    summary="What to prompt a user about now",
)
def prompts(request: HttpRequest, user: UUID, product: str | None = None) -> list[dict]:
    """Prompts for `user` (a member of the key's organization, else 404), most severe first,
    without the ones they dismissed at their current stage."""
    membership = prompt_rules.member_get(
        organization_id=_principal(request).organization_id, user_public_id=user
    )
    return [
        {
            "id": prompt.id,
            "kind": prompt.kind,
            "product": prompt.product,
            "threshold": prompt.threshold,
            "severity": prompt.severity,
            "title": prompt.title,
            "body": prompt.body,
            "cta_label": prompt.cta_label,
            "cta_url": prompt.cta_url,
            "dismissible": prompt.dismissible,
        }
        for prompt in prompt_rules.prompts_for(membership=membership, product_code=product)
    ]


def _member(request: HttpRequest, payload: PromptActionIn):
    return prompt_rules.member_get(
        organization_id=_principal(request).organization_id, user_public_id=payload.user
    )


@router.post(
    "/prompts/{prompt_id}/dismiss",
    response={204: None, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut, **INVALID_INPUT},
    summary="Dismiss a prompt for a user at its current stage",
)
def prompt_dismiss(request: HttpRequest, prompt_id: str, payload: PromptActionIn):
    prompt_rules.prompt_dismiss(membership=_member(request, payload), prompt=prompt_id)
    return Status(204, None)


@router.post(
    "/prompts/{prompt_id}/shown",
    response={204: None, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut, **INVALID_INPUT},
    summary="Record that the product showed a prompt to a user",
)
def prompt_shown(request: HttpRequest, prompt_id: str, payload: PromptActionIn):
    prompt_rules.prompt_event_record(
        membership=_member(request, payload), prompt=prompt_id, action="shown"
    )
    return Status(204, None)


@router.post(
    "/prompts/{prompt_id}/clicked",
    response={204: None, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut, **INVALID_INPUT},
    summary="Record that a user clicked a prompt's call to action",
)
def prompt_clicked(request: HttpRequest, prompt_id: str, payload: PromptActionIn):
    prompt_rules.prompt_event_record(
        membership=_member(request, payload), prompt=prompt_id, action="clicked"
    )
    return Status(204, None)
