"""The kit's identity endpoints: the token exchange and the script itself (identity.py,
docs/in-product.md)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, path
from django.views.decorators.csrf import csrf_exempt

from .cors import (
    cors_allow,
    cors_preflight,
    kit_json_error,
    origin_allowed_for_any,
    origin_refusal,
    request_origin,
)
from .exceptions import KitBadRequest, KitError, KitForbidden
from .identity import kit_error_response, kit_json_body, kit_session_exchange, person_name

KIT_SCRIPT = Path(settings.BASE_DIR) / "static" / "kit" / "v1" / "kit.js"
KIT_SCRIPT_MAX_AGE_SECONDS = 300


@csrf_exempt
def session_exchange(request: HttpRequest) -> HttpResponse:
    """POST {"token": "<jwt>"} -> the session credential and who it names (the kit's first call)."""
    origin = request_origin(request)
    if request.method == "OPTIONS":
        return cors_preflight(origin)
    try:
        if request.method != "POST":
            response = kit_json_error("Exchange a token with POST {\"token\": \"<jwt>\"}.", status=405)
            response["Allow"] = "POST, OPTIONS"
            raise _Answered(response)
        body = kit_json_body(request)
        token = body.get("token")
        if not isinstance(token, str):
            raise KitBadRequest('The body must hold the token as text: {"token": "<jwt>"}.')
        exchange = kit_session_exchange(token=token, origin=origin)
    except _Answered as answered:
        return cors_allow(answered.response, origin if origin_allowed_for_any(origin) else "")
    except KitForbidden as error:
        return kit_error_response(error)
    except KitError as error:
        # Before the token named its product, only "is this any product's origin?" can be asked;
        # an origin that is nobody's is refused as such, whatever else was wrong.
        if not origin_allowed_for_any(origin):
            return kit_json_error(origin_refusal(origin), status=403)
        return kit_error_response(error, origin=origin)
    caller = exchange.caller
    return cors_allow(
        JsonResponse(
            {
                "session": exchange.credential,
                "expires_in": exchange.expires_in,
                "product": {"code": caller.product.code, "name": caller.product.name},
                "user": {"name": person_name(caller.membership), "is_admin": caller.is_admin},
                "organization": {"name": caller.organization.name},
            }
        ),
        origin,
    )


class _Answered(Exception):
    def __init__(self, response: HttpResponse) -> None:
        self.response = response


_script_cache: dict[tuple[int, int], tuple[bytes, str]] = {}


def _kit_script() -> tuple[bytes, str] | None:
    """The script's bytes and ETag, read again only when the file changes."""
    try:
        stat = KIT_SCRIPT.stat()
        key = (stat.st_mtime_ns, stat.st_size)
        if key not in _script_cache:
            content = KIT_SCRIPT.read_bytes()
            _script_cache.clear()
            _script_cache[key] = (content, '"' + hashlib.sha256(content).hexdigest()[:32] + '"')
        return _script_cache[key]
    except OSError:
        return None


@csrf_exempt  # answers a POST 405, not the CSRF page
def kit_script(request: HttpRequest) -> HttpResponse:
    """GET the kit (one ES module), for any page to load: `Access-Control-Allow-Origin: *`
    (a module script is fetched in CORS mode), cacheable for five minutes, revalidated by ETag."""
    if request.method not in ("GET", "HEAD"):
        response = kit_json_error("The kit's script is read with GET.", status=405)
        response["Allow"] = "GET, HEAD"
        return response
    script = _kit_script()
    if script is None:
        response = kit_json_error("The kit's script is not available: static/kit/v1/kit.js is missing.", status=404)
        response["Access-Control-Allow-Origin"] = "*"
        return response
    content, etag = script
    if etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(content, content_type="text/javascript; charset=utf-8")
    response["ETag"] = etag
    response["Cache-Control"] = f"public, max-age={KIT_SCRIPT_MAX_AGE_SECONDS}"
    response["Access-Control-Allow-Origin"] = "*"
    # Pages that isolate themselves (Cross-Origin-Embedder-Policy) may still load it.
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


urlpatterns: list[URLPattern] = [
    path("session", session_exchange, name="kit_session"),
    path("kit.js", kit_script, name="kit_script"),
]
