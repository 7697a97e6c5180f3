"""Refuse a NUL character in anything a client sends, before any view or query sees it.

PostgreSQL refuses NUL (0x00) in text and jsonb, so a NUL that reached a query or an insert
was a 500 ("A string literal cannot contain NUL (0x00) characters") wherever a field is used
in a query: /signup?product=%00, a form field, a JSON string, a session cookie. No person
types one, so nothing legitimate is lost by refusing it at the door, in one place, instead of
in each view.

What is checked: the path, every query-string and form field (names and values, also the
names of uploaded files), every string in a JSON body (keys too), and the session cookie. A
JSON body is parsed only when its bytes hold a NUL or a `\\u0000` escape, so the API's hot
path pays a substring search and no more.

The answer names what was wrong: a page gets a 400 page "The field 'product' contains a NUL
character."; the JSON API (the `api` URL namespace) gets django-ninja's own 422 shape,
`{"detail": [{"type": "string_nul", "loc": ["query", "product"], "msg": "..."}]}`, the body
every API operation declares for 422 (config/api.py, docs/api.md); the in-product kit's
endpoints (/kit/) get their own shape, a 400 `{"detail": "The field 'token' contains a NUL
character."}`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve

from .exceptions import RequestMalformed

NUL = "\x00"
API_NAMESPACE = "api"
# The in-product kit's endpoints answer JSON `{"detail": ...}` (inproduct/, docs/in-product.md).
KIT_PATH = "/kit/"
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@dataclass(frozen=True)
class NulFound:
    """Where a NUL was: `source` is path, query, form, body or cookie; `loc` the field's path."""

    source: str
    loc: tuple[str | int, ...]
    in_name: bool = False

    @property
    def field(self) -> str:
        return ".".join(str(part) for part in self.loc)

    @property
    def message(self) -> str:
        if self.source == "path" and not self.loc:
            return "The address contains a NUL character."
        visible = self.field.replace(NUL, "\\0")
        if self.source == "cookie":
            return f"The cookie '{visible}' contains a NUL character: clear this site's cookies and try again."
        if self.in_name:
            return f"A field name ('{visible}') contains a NUL character."
        return f"The field '{visible}' contains a NUL character."


def _in_querydict(source: str, data) -> Iterator[NulFound]:
    for name, values in data.lists():
        if NUL in name:
            yield NulFound(source, (name,), in_name=True)
        for value in values:
            if NUL in str(value):
                yield NulFound(source, (name,))


def _in_json(value, loc: tuple[str | int, ...]) -> Iterator[NulFound]:
    if isinstance(value, str):
        if NUL in value:
            yield NulFound("body", loc)
    elif isinstance(value, dict):
        for key, item in value.items():
            if NUL in key:
                yield NulFound("body", (*loc, key), in_name=True)
            yield from _in_json(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _in_json(item, (*loc, index))


def nul_find(request: HttpRequest) -> NulFound | None:
    """The first NUL in what the client sent, or None."""
    if NUL in request.path:
        return _in_path(request)
    for found in _in_querydict("query", request.GET):
        return found
    # Only the session cookie reaches a query (the sessions table); other cookies are not ours
    # to refuse a request for.
    if NUL in request.COOKIES.get(settings.SESSION_COOKIE_NAME, ""):
        return NulFound("cookie", (settings.SESSION_COOKIE_NAME,))
    content_type = request.content_type or ""
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        if content_type in _FORM_TYPES:
            _keep_body_readable(request)
            for found in _in_querydict("form", request.POST):
                return found
            for name, uploads in request.FILES.lists():
                for upload in uploads:
                    if NUL in name or NUL in (upload.name or ""):
                        return NulFound("form", (name,), in_name=NUL in name)
        else:
            # django-ninja reads a body as JSON whatever its content type says.
            is_json = content_type == "application/json" or content_type.endswith("+json")
            body = request.body
            if b"\\u0000" in body.lower() or (is_json and b"\x00" in body):
                try:
                    data = json.loads(body)
                except (ValueError, RecursionError):  # a raw NUL byte is not JSON: say so rather than "cannot parse"
                    return NulFound("body", ()) if is_json else None
                for found in _in_json(data, ()):
                    return found
    return None


def _keep_body_readable(request: HttpRequest) -> None:
    """Parsing a multipart body consumes the stream, after which a view reading `request.body`
    (a csrf-exempt callback) fails: read it into memory first when it may be held in memory,
    and Django parses the form from that copy. A larger body is streamed as before (no view can
    read such a body whole anyway)."""
    if request.content_type != "multipart/form-data":
        return
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is None or length <= limit:
        request.body  # noqa: B018 - cached on the request for the view


def _in_path(request: HttpRequest) -> NulFound:
    """Name the URL parameter that holds the NUL (`/invites/<token>/`) when the path resolves."""
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return NulFound("path", ())
    for name, value in match.kwargs.items():
        if NUL in str(value):
            return NulFound("path", (name,))
    return NulFound("path", ())


def accepts_nul_in_body(view):
    """Mark a view that takes a body holding NULs itself: Stripe's signed webhook, which must
    store every event Stripe sends (a refusal is redelivered for days) and keeps the body as
    sent beside a jsonb-safe copy (billing.services.webhooks.webhook_receive). The path, query and
    session cookie are still checked."""
    view.accepts_nul_in_body = True
    return view


def _view_accepts_nul_in_body(request: HttpRequest) -> bool:
    try:
        return getattr(resolve(request.path_info).func, "accepts_nul_in_body", False)
    except Resolver404:
        return False


def _is_api(request: HttpRequest) -> bool:
    try:
        return API_NAMESPACE in resolve(request.path_info).namespaces
    except Resolver404:
        return False


class RejectNulMiddleware:
    """First after the security and static-file middleware: before the session is read (a
    session cookie holding a NUL would otherwise reach the sessions table)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        found = nul_find(request)
        if found is None or (found.source == "body" and _view_accepts_nul_in_body(request)):
            return self.get_response(request)
        if (found.source != "path" or found.loc) and _is_api(request):
            return JsonResponse(
                {"detail": [{"type": "string_nul", "loc": [found.source, *found.loc], "msg": found.message}]},
                status=422,
            )
        if request.path.startswith(KIT_PATH):
            return JsonResponse({"detail": found.message}, status=400)
        return HttpResponse(render_to_string("bad_request.html", {"message": found.message}), status=400)


class RequestMalformedMiddleware:
    """A view that raises RequestMalformed (an id that is not an id, a field no form sends)
    answers 400 with the exception's message on a page of the site, not a 500. Placed after the
    authentication middleware so the page has its usual header."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, RequestMalformed):
            return None
        back = request.headers.get("referer", "")
        return render(
            request,
            "request_malformed.html",
            {"message": exception.message, "back": back if back.startswith(request.build_absolute_uri("/")) else ""},
            status=400,
        )
