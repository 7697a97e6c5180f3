"""The error bodies every operation of the products' API can answer (billing/api.py, feedback/api.py;
config/api.py mounts them).

422 is django-ninja's own answer to input that does not fit an operation's schema (a user id
that is not a UUID, a missing field), and common/middleware.py's answer to a NUL character in
any field: one shape for both, declared on every operation so the OpenAPI schema tells a client
what it will get.
"""

from __future__ import annotations

from ninja import Field, Schema


class ErrorOut(Schema):
    detail: str = Field(description="What was wrong, in words a developer can act on")


class ValidationIssueOut(Schema):
    type: str = Field(description="The kind of problem, e.g. missing, uuid_parsing, string_type, string_nul")
    loc: list[str | int] = Field(
        description="Where: the part of the request (body, query, path), then the field's path in it"
    )
    msg: str = Field(description="What was wrong with it")


class ValidationErrorOut(Schema):
    detail: list[ValidationIssueOut]


INVALID_INPUT = {422: ValidationErrorOut}
