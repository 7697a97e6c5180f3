"""The NPS survey API the product's servers call (mounted at /api/v1/feedback/).

Authentication is the API's default: the organization's API key (config/api.py, accounts/api_auth.py);
every user named in a request must be a member of the key's organization, else 404.
docs/feedback.md describes the flow: ask -> show -> answer or dismiss.
"""

from __future__ import annotations

from uuid import UUID

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from common.api_schemas import INVALID_INPUT, ErrorOut

from . import selectors, services
from .models import Role

router = Router(tags=["feedback"])


class AskIn(Schema):
    user: UUID
    product: str | None = Field(None, description="The product code the user is in, e.g. tracker")


class RoleOut(Schema):
    value: str
    label: str


class AskOut(Schema):
    ask: bool
    reason: str = Field(description="Why not, when ask is false: tenure, not_sampled, "
                        "responded_recently, dismissed_recently, asked_recently, daily_cap")
    survey: UUID | None
    question: str
    roles: list[RoleOut]


class AnswerIn(Schema):
    user: UUID
    score: int = Field(description="0 to 10")
    role: str = Field(description="One of the roles returned by ask")
    comment: str = ""
    may_contact: bool = Field(False, description="The user agrees to be contacted about it")


class AnswerOut(Schema):
    id: UUID
    score: int
    category: str


class UserIn(Schema):
    user: UUID


def _member(request: HttpRequest, user: UUID):
    return selectors.member_get(organization_id=request.auth.organization_id, user_public_id=user)  # type: ignore[attr-defined]


@router.post(
    "/ask",
    response={200: AskOut, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut, **INVALID_INPUT},
    summary="Whether to show the NPS survey to a user now",
)
def ask(request: HttpRequest, payload: AskIn) -> dict:
    """When `ask` is true, show the survey and send its `survey` id back with the answer or the
    dismissal. The decision is recorded: asking again right away answers false."""
    decision = services.survey_decide(membership=_member(request, payload.user), product_code=payload.product)
    return {
        "ask": decision.ask,
        "reason": decision.reason,
        "survey": decision.survey.public_id if decision.survey else None,
        "question": decision.question,
        "roles": [{"value": value, "label": label} for value, label in Role.choices] if decision.ask else [],
    }


@router.post(
    "/surveys/{survey_id}/response",
    response={200: AnswerOut, 201: AnswerOut, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut, **INVALID_INPUT},
    summary="A user's answer: score, role and optional comment",
)
def answer(request: HttpRequest, survey_id: UUID, payload: AnswerIn):
    """201 with the stored answer; 200 with the same answer when it was already stored (a retry)."""
    response, created = services.response_submit(
        membership=_member(request, payload.user),
        survey_public_id=survey_id,
        score=payload.score,
        role=payload.role,
        comment=payload.comment,
        may_contact=payload.may_contact,
    )
    body = {"id": response.public_id, "score": response.score, "category": response.suggested_category}
    return Status(201 if created else 200, body)


@router.post(
    "/surveys/{survey_id}/dismiss",
    response={204: None, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut, **INVALID_INPUT},
    summary="The user closed the survey without answering",
)
def dismiss(request: HttpRequest, survey_id: UUID, payload: UserIn):
    services.survey_dismiss(membership=_member(request, payload.user), survey_public_id=survey_id)
    return Status(204, None)
