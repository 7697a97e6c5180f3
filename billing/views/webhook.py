"""Stripe's webhook endpoint: verified, stored once by event id, answered at once."""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.db import close_old_connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from common.middleware import accepts_nul_in_body

from ..exceptions import WebhookSignatureInvalid
from ..services.webhooks import webhook_receive

logger = logging.getLogger(__name__)


def _webhook_answer(*, body: bytes, signature: str, remote_addr: str | None) -> tuple[int, dict]:
    """The webhook's status and JSON answer, for both forms of the endpoint below."""
    try:
        received = webhook_receive(payload=body, signature=signature)
    except WebhookSignatureInvalid as error:
        logger.warning("stripe webhook refused from %s: %s", remote_addr, error.message)
        return 400, {"error": error.message}
    return 200, {"received": received.stripe_event_id, "duplicate": not received.created}


@accepts_nul_in_body
@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    """Stripe's webhook: verified, stored once by event id, answered at once; the worker
    applies it (billing.tasks.webhooks_drain). Production serves the same endpoint through
    stripe_webhook_wsgi; this view answers it under runserver and the test client."""
    status, answer = _webhook_answer(
        body=request.body, signature=request.META.get("HTTP_STRIPE_SIGNATURE", ""), remote_addr=request.META.get("REMOTE_ADDR")
    )
    return JsonResponse(answer, status=status)


_WSGI_STATUS = {
    200: "200 OK",
    400: "400 Bad Request",
    405: "405 Method Not Allowed",
    413: "413 Content Too Large",
    500: "500 Internal Server Error",
}


def stripe_webhook_wsgi(environ: dict, start_response) -> list[bytes]:
    """The webhook as a bare WSGI application: config/wsgi.py routes /stripe/webhook here.

    A signed server-to-server POST needs nothing of Django's request cycle but the database
    connection's upkeep, which this does itself (close_old_connections before and after, as the
    request_started and request_finished signals do). Request and response objects, signals,
    URL resolution and the view's decorators cost more CPU than verifying and storing the
    event (bench/webhooks.py). The checks are the same: POST only (405), a body no larger than
    DATA_UPLOAD_MAX_MEMORY_SIZE (413), the signature (400). An unexpected error answers 500
    and is logged; Stripe delivers the event again later, and a broken database connection is
    closed before the next request.
    """
    if environ.get("REQUEST_METHOD") != "POST":
        return _wsgi_json(start_response, 405, {"error": "Only POST is allowed."}, [("Allow", "POST")])
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if length < 0 or (limit is not None and length > limit):
        return _wsgi_json(start_response, 413, {"error": "Webhook refused: the body is too large."})
    body = environ["wsgi.input"].read(length) if length else b""
    close_old_connections()
    try:
        status, answer = _webhook_answer(
            body=body, signature=environ.get("HTTP_STRIPE_SIGNATURE", ""), remote_addr=environ.get("REMOTE_ADDR")
        )
    except Exception:
        logger.exception("stripe webhook from %s could not be stored", environ.get("REMOTE_ADDR"))
        status, answer = 500, {"error": "The event could not be stored; deliver it again later."}
    finally:
        close_old_connections()
    return _wsgi_json(start_response, status, answer)


def _wsgi_json(start_response, status: int, answer: dict, headers: list | None = None) -> list[bytes]:
    content = json.dumps(answer).encode()
    start_response(
        _WSGI_STATUS[status],
        [("Content-Type", "application/json"), ("Content-Length", str(len(content))), *(headers or [])],
    )
    return [content]
