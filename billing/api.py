"""The server-to-server JSON API that products call: entitlements and in-product prompts.

Mounted at /api/ (config/urls.py): operations under /api/v1/, the OpenAPI schema at
/api/v1/openapi.json and its interactive docs at /api/docs. Every operation but `ping` needs an
organization API key, `Authorization: Bearer fw_live_...` (accounts/api_keys.py), and sees only
that organization. docs/api.md describes each operation.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Router, Schema, Status
from ninja.errors import AuthenticationError
from ninja.security import HttpBearer

from accounts.api_keys import ApiPrincipal, api_key_authenticate, api_key_resolve
from common.api_schemas import INVALID_INPUT, ErrorOut
from common.exceptions import FlywheelError, NotFound, PermissionDenied

from . import prompts as prompt_rules
from .entitlements import entitlements_answer


class ApiKeyAuth(HttpBearer):
    """`Authorization: Bearer fw_live_<prefix>_<secret>`; 401 for a missing, unknown or revoked key.

    With `marker_read_by_operation`, a key this process remembers is let through to the
    operation, which must read its revocation marker (in its own round trip to Redis) and
    answer 401 when the key turns out revoked; the entitlements operation does.
    """

    def __init__(self, *, marker_read_by_operation: bool = False) -> None:
        super().__init__()
        self.marker_read_by_operation = marker_read_by_operation

    def authenticate(self, request: HttpRequest, token: str) -> ApiPrincipal | None:
        if self.marker_read_by_operation:
            return api_key_resolve(token)
        return api_key_authenticate(token)


api = NinjaAPI(
    title="Flywheel API",
    version="1",
    description=(
        "Entitlements and in-product prompts for Flywheel's products. Authenticate with an "
        "organization API key: `Authorization: Bearer fw_live_...`. Every answer is about the "
        "key's organization only."
    ),
    urls_namespace="api",
    openapi_url="/v1/openapi.json",
    docs_url="/docs",
    auth=ApiKeyAuth(),
)
v1 = Router(tags=["v1"])


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


@api.exception_handler(FlywheelError)
def flywheel_error(request: HttpRequest, error: FlywheelError) -> HttpResponse:
    status = (
        404 if isinstance(error, NotFound) else 403 if isinstance(error, PermissionDenied) else 400
    )
    return api.create_response(request, {"detail": error.message}, status=status)


def _principal(request: HttpRequest) -> ApiPrincipal:
    return request.auth  # type: ignore[attr-defined,no-any-return]


@v1.get("/ping", auth=None, response={200: PingOut, **INVALID_INPUT}, summary="Liveness, without authentication")
def ping(request: HttpRequest) -> dict[str, bool]:
    return {"ok": True}


@v1.get(
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


@v1.get(
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


@v1.post(
    "/prompts/{prompt_id}/dismiss",
    response={204: None, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut, **INVALID_INPUT},
    summary="Dismiss a prompt for a user at its current stage",
)
def prompt_dismiss(request: HttpRequest, prompt_id: str, payload: PromptActionIn):
    prompt_rules.prompt_dismiss(membership=_member(request, payload), prompt=prompt_id)
    return Status(204, None)


@v1.post(
    "/prompts/{prompt_id}/shown",
    response={204: None, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut, **INVALID_INPUT},
    summary="Record that the product showed a prompt to a user",
)
def prompt_shown(request: HttpRequest, prompt_id: str, payload: PromptActionIn):
    prompt_rules.prompt_event_record(
        membership=_member(request, payload), prompt=prompt_id, action="shown"
    )
    return Status(204, None)


@v1.post(
    "/prompts/{prompt_id}/clicked",
    response={204: None, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut, **INVALID_INPUT},
    summary="Record that a user clicked a prompt's call to action",
)
def prompt_clicked(request: HttpRequest, prompt_id: str, payload: PromptActionIn):
    prompt_rules.prompt_event_record(
        membership=_member(request, payload), prompt=prompt_id, action="clicked"
    )
    return Status(204, None)


api.add_router("/v1/", v1)
api.add_router("/v1/feedback/", "feedback.api.router")
