"""The activity API the products' servers call (mounted at /api/v1/): POST /activity, a batch
of what people did in the product (docs/activity.md). The organization is the API key's; every
user named must be one of its members."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema

from common.api_schemas import INVALID_INPUT, ErrorOut
from common.exceptions import FlywheelError

from .services import activity_record, batch_max

router = Router(tags=["activity"])


class ActivityIn(Schema):
    events: list[Any] = Field(
        description="Up to 1,000 events, each {id, user, product, name, occurred_at}: id your own and unique per "
        "product (a retried batch counts once), user a member's id, product a product code, name the "
        "product's event name, occurred_at ISO 8601 with its offset"
    )


class RowErrorOut(Schema):
    index: int = Field(description="The event's position in the batch, from 0")
    id: str
    error: str


class ActivityOut(Schema):
    accepted: int = Field(description="Events stored now")
    duplicates: int = Field(description="Events already stored (sent before, or twice in this batch): not counted again")
    errors: list[RowErrorOut] = Field(description="Events refused, each with why; the others are stored")


class BatchTooLarge(FlywheelError):
    pass


@router.post(
    "/activity",
    response={200: ActivityOut, 400: ErrorOut, 401: ErrorOut, **INVALID_INPUT},
    summary="Report what people did in a product",
)
def activity(request: HttpRequest, payload: ActivityIn) -> dict:
    """Each event is checked on its own: a bad one is listed in `errors` and never stops the
    good ones. Sending a batch again is safe: events already stored are counted as duplicates."""
    if len(payload.events) > batch_max():
        raise BatchTooLarge(f"At most {batch_max():,} events per request; this one has {len(payload.events):,}. Split the batch.")
    report = activity_record(organization_id=request.auth.organization_id, rows=payload.events)  # type: ignore[attr-defined]
    return {
        "accepted": report.accepted,
        "duplicates": report.duplicates,
        "errors": [{"index": error.index, "id": error.id, "error": error.error} for error in report.errors],
    }
