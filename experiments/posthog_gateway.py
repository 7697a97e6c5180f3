"""The only importer of the `posthog` package: sends stored events to PostHog in batches."""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings
from posthog.request import APIError, batch_post

from .exceptions import AnalyticsUnavailable


def is_configured() -> bool:
    return bool(settings.POSTHOG_API_KEY)


def send_batch(messages: list[dict[str, Any]]) -> None:
    """POST one batch to `{POSTHOG_HOST}/batch/`; raise AnalyticsUnavailable on any failure."""
    try:
        batch_post(
            settings.POSTHOG_API_KEY,
            host=settings.POSTHOG_HOST,
            timeout=settings.POSTHOG_TIMEOUT,
            batch=messages,
        )
    except APIError as error:
        raise AnalyticsUnavailable(f"PostHog refused the batch: {error}") from error
    except (requests.RequestException, OSError) as error:
        raise AnalyticsUnavailable(f"PostHog could not be reached: {error}") from error
