"""The kit's identity endpoints: the token exchange and the script itself (identity.py,
docs/in-product.md)."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, path
from django.utils.cache import patch_vary_headers
from django.views.decorators.csrf import csrf_exempt

from .cors import (
    cors_allow,
    cors_preflight,
    kit_json_error,
    origin_allowed_for_any,
    origin_refusal,
    request_origin,
)
from .exceptions import KitBadRequest, KitError, KitMethodNotAllowed, KitOriginRefused
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
            raise KitMethodNotAllowed('Exchange a token with POST {"token": "<jwt>"}.')
        body = kit_json_body(request)
        token = body.get("token")
        if not isinstance(token, str):
            raise KitBadRequest('The body must hold the token as text: {"token": "<jwt>"}.')
        exchange = kit_session_exchange(token=token, origin=origin)
    except KitOriginRefused as error:
        return kit_error_response(error)
    except KitError as error:
        # Before the token named its product, only "is this any product's origin?" can be asked;
        # an origin that is nobody's is refused as such, whatever else was wrong.
        if not origin_allowed_for_any(origin):
            return kit_json_error(origin_refusal(origin), status=403)
        response = kit_error_response(error, origin=origin)
        if isinstance(error, KitMethodNotAllowed):
            response["Allow"] = "POST, OPTIONS"
        return response
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


@dataclass(frozen=True)
class KitScript:
    """The script as served: plain and gzipped, each with its own ETag."""

    content: bytes
    gzipped: bytes
    etag: str

    @property
    def gzipped_etag(self) -> str:
        return self.etag[:-1] + '-gzip"'


_script_cache: dict[tuple[str, int, int], KitScript] = {}


def kit_script_read() -> KitScript | None:
    """The script, read (and compressed) again only when the file changes; None while it is missing."""
    try:
        stat = KIT_SCRIPT.stat()
        key = (str(KIT_SCRIPT), stat.st_mtime_ns, stat.st_size)
        if key not in _script_cache:
            content = KIT_SCRIPT.read_bytes()
            _script_cache.clear()
            _script_cache[key] = KitScript(
                content=content,
                gzipped=gzip.compress(content, compresslevel=9, mtime=0),
                etag='"' + hashlib.sha256(content).hexdigest()[:32] + '"',
            )
        return _script_cache[key]
    except OSError:
        return None


def accepts_gzip(request: HttpRequest) -> bool:
    for coding in request.headers.get("Accept-Encoding", "").split(","):
        name, _, parameters = coding.strip().partition(";")
        if name.strip().lower() == "gzip" and parameters.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            return True
    return False


@csrf_exempt  # answers a POST 405, not the CSRF page
def kit_script(request: HttpRequest) -> HttpResponse:
    """GET the kit (one ES module), for any page to load: `Access-Control-Allow-Origin: *`
    (a module script is fetched in CORS mode), cacheable for five minutes, revalidated by ETag."""
    if request.method not in ("GET", "HEAD"):
        response = kit_json_error("The kit's script is read with GET.", status=405)
        response["Allow"] = "GET, HEAD"
        return response
    script = kit_script_read()
    if script is None:
        response = kit_json_error("The kit's script is not available: static/kit/v1/kit.js is missing.", status=404)
        response["Access-Control-Allow-Origin"] = "*"
        return response
    compressed = accepts_gzip(request)
    etag = script.gzipped_etag if compressed else script.etag
    if {script.etag, script.gzipped_etag} & {tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")}:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(
            script.gzipped if compressed else script.content, content_type="text/javascript; charset=utf-8"
        )
        if compressed:
            response["Content-Encoding"] = "gzip"
    patch_vary_headers(response, ("Accept-Encoding",))
    response["ETag"] = etag
    response["Cache-Control"] = f"public, max-age={KIT_SCRIPT_MAX_AGE_SECONDS}"
    response["Access-Control-Allow-Origin"] = "*"
    # Pages that isolate themselves (Cross-Origin-Embedder-Policy) may still load it.
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


@csrf_exempt
def kit_not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any other address under /kit/: a JSON 404 (the kit reads JSON), readable by products' pages."""
    origin = request_origin(request)
    response = kit_json_error(f"There is no kit endpoint at {request.path[:200]}.", status=404)
    return cors_allow(response, origin if origin_allowed_for_any(origin) else "")


urlpatterns: list[URLPattern] = [
    path("session", session_exchange, name="kit_session"),
    path("kit.js", kit_script, name="kit_script"),
]
