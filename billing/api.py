"""Billing's operations in the products' API: entitlements, the feature check and in-product prompts.

config/api.py mounts this router at /api/v1/ (with ping); docs/api.md describes each operation.
"""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema, Status
from ninja.errors import AuthenticationError

from accounts.api_auth import ApiKeyAuth
from accounts.api_keys import ApiPrincipal
from accounts.models import Organization
from common.api_schemas import INVALID_INPUT, ErrorOut

from . import prompts as prompt_rules
from .entitlements import entitlements_answer
from .features import feature_check

router = Router(tags=["v1"])


class FeatureSourceOut(Schema):
    feature: str
    source: str = Field(description='"edition" or "addon"')
    code: str = Field(description="The edition's or the add-on's code")
    name: str


class AddOnStateOut(Schema):
    code: str
    name: str
    status: str = Field(description="trialing, active or suspended (a suspended base suspends its add-ons)")
    trial_ends_at: datetime | None
    granting: bool = Field(description="Whether it grants its features now")


class ActiveSeatsOut(Schema):
    active: int = Field(description="People of the organization active in the product in the 30 whole UTC days ending on as_of")
    seats: int = Field(description="The seats the subscription holds")
    ratio: float | None = Field(description="active / seats, 4 decimals (0.12: 12 of 100 seats used)")
    as_of: date = Field(description="The last day counted: yesterday (UTC); the figure changes once a day")


class ManagedByOut(Schema):
    name: str = Field(description="The partner that buys and manages the product for the organization, and pays for it")


class EntitlementOut(Schema):
    product: str
    product_name: str
    edition: str
    edition_name: str
    status: str
    entitled: bool
    seat_limit: int
    seats_used: int
    features: list[str] = Field(description="The edition's features, then those of the add-ons that grant now")
    feature_sources: list[FeatureSourceOut]
    addons: list[AddOnStateOut]
    trial_ends_at: datetime | None
    current_period_end: datetime | None
    interval: str | None
    active_seats: ActiveSeatsOut
    managed_by: ManagedByOut | None = Field(
        default=None,
        description="Who manages the product when a partner does (say \"ask <name>\" where an admin would buy or add seats); null otherwise",
    )


class FeatureGrantOut(Schema):
    source: str = Field(description='"edition" or "addon"')
    code: str
    name: str


class FeatureOfferOut(Schema):
    kind: str = Field(description='"addon" or "edition"')
    code: str
    name: str
    amount_minor: int = Field(description="What it costs now: for the rest of the current period, or a full month")
    currency: str
    price_text: str
    trial_days: int = Field(description="Days it can be tried free, 0 when it cannot")
    url: str = Field(description="Flywheel's page that buys it (an admin signs in)")


class FeatureCheckOut(Schema):
    product: str
    feature: str
    entitled: bool
    source: FeatureGrantOut | None = Field(description="What grants it, when entitled")
    reason: str | None = Field(default=None, description="Why not, in a sentence, when not entitled")
    offers: list[FeatureOfferOut] | None = Field(default=None, description="What would grant it, cheapest first")
    cheapest: FeatureOfferOut | None = None


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
    "/entitlements/check",
    response={200: FeatureCheckOut, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut, **INVALID_INPUT},
    summary="May the organization use a feature of a product, and if not, what would grant it",
)
def entitlements_check(request: HttpRequest, product: str, feature: str) -> dict:
    """`entitled` and what grants it (its edition or an add-on); else `reason`, and `offers`:
    the add-ons and editions of the product that include it and the organization could buy,
    cheapest first, each with its price now and the address of Flywheel's page that buys it.
    404 for an unknown product, 400 for a feature the product does not have."""
    organization = Organization.objects.get(pk=_principal(request).organization_id)
    return feature_check(organization=organization, product_code=product, feature=feature).as_json()


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
