"""The only importer of the `posthog` package: sends stored events to PostHog in batches.

How PostHog's capture service (`POST /batch/`) answers, and what each answer means here:
- 200: every event of the batch was taken.
- 400 (a malformed event: no distinct id, an empty name, a bad timestamp, a body it cannot
  parse) and 413 (an event over its per-event limit, about 1 MB as it is written to Kafka,
  or a body over its 20 MiB request limit): a refusal of the batch as sent. The same bytes
  will be refused again, so AnalyticsRefused; the caller splits the batch to find the events
  at fault. Other 4xx are refusals too, except those below.
- 401 / 403 (no key, or a key that names no project) and 404 (no capture endpoint at
  POSTHOG_HOST): PostHog refuses Flywheel's configuration, not the events; the same events
  go through once the key or the host is fixed, so AnalyticsUnavailable (an outage), never a
  refusal that would condemn every event one by one.
- 408, 429 (rate or billing limit), 5xx, a timeout, a refused or broken connection: an
  outage, AnalyticsUnavailable; the next run sends the same events again.

Its error bodies are JSON, `{"status": 400, "code": "invalid_event", "error": "..."}` from
the capture service in Rust, `{"type": ..., "code": ..., "detail": "..."}` from the older
Django one, or plain text from a proxy in front: `refusal_reason` reads all three.
"""

from __future__ import annotations

import json
from typing import Any

import requests
from django.conf import settings
from posthog.consumer import BATCH_SIZE_LIMIT, MAX_MSG_SIZE
from posthog.request import APIError, DatetimeSerializer, batch_post

from .exceptions import AnalyticsRefused, AnalyticsUnavailable

# posthog-python's own limits, below PostHog's (1 MB an event, 20 MiB a request): an event
# posthog-python would drop is never sent as is, and a batch stays well under the body limit.
MAX_EVENT_BYTES = MAX_MSG_SIZE
MAX_BATCH_BYTES = BATCH_SIZE_LIMIT

# Statuses that refuse the configuration (key, host), not the events: see the module docstring.
_CONFIGURATION_STATUSES = frozenset({401, 403, 404})
_OUTAGE_STATUSES = frozenset({408, 429})


def is_configured() -> bool:
    return bool(settings.POSTHOG_API_KEY)


def message_size(message: dict[str, Any]) -> int:
    """The bytes one message takes in the request body, counted as posthog-python counts them
    before it drops an event (its serialized JSON, ASCII-escaped as it is sent)."""
    return len(json.dumps(message, cls=DatetimeSerializer).encode())


def refusal_reason(body: str) -> str:
    """PostHog's words from an error body (JSON of either capture service, or text)."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        text = payload.get("error") or payload.get("detail") or payload.get("message")
        if isinstance(text, str) and text:
            code = payload.get("code")
            return f"{text} [{code}]" if isinstance(code, str) and code else text
    return " ".join(str(body).split())[:500] or "no reason given"


def send_batch(messages: list[dict[str, Any]]) -> None:
    """POST one batch to `{POSTHOG_HOST}/batch/`.

    Raises AnalyticsRefused (with PostHog's status and reason) when PostHog will never take
    this batch as it is, AnalyticsUnavailable on any other failure (see the module docstring).
    """
    try:
        batch_post(
            settings.POSTHOG_API_KEY,
            host=settings.POSTHOG_HOST,
            timeout=settings.POSTHOG_TIMEOUT,
            batch=messages,
        )
    except APIError as error:
        status = error.status if isinstance(error.status, int) else 0
        if 200 <= status < 300:
            return  # batch_post wants exactly 200; a 204 took the events too
        reason = refusal_reason(error.message)
        if 400 <= status < 500 and status not in _CONFIGURATION_STATUSES | _OUTAGE_STATUSES:
            what = "the event" if len(messages) == 1 else f"a batch of {len(messages)} events"
            raise AnalyticsRefused(f"PostHog refused {what} ({status}): {reason}", status=status) from error
        if status in _CONFIGURATION_STATUSES:
            raise AnalyticsUnavailable(
                f"PostHog refused Flywheel's API key or host ({status}): {reason}"
            ) from error
        raise AnalyticsUnavailable(f"PostHog could not take the batch ({status or error.status}): {reason}") from error
    except requests.Timeout as error:
        raise AnalyticsUnavailable(
            f"PostHog did not answer within {settings.POSTHOG_TIMEOUT:g} s: {error}"
        ) from error
    except (requests.RequestException, OSError) as error:
        raise AnalyticsUnavailable(f"PostHog could not be reached: {error}") from error
