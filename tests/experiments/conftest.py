"""Fixtures of the forwarding tests: PostHog settings pointing at a local stand-in."""

from __future__ import annotations

import pytest

from .helpers import API_KEY, PostHogSink


@pytest.fixture
def posthog_settings(settings):
    settings.POSTHOG_API_KEY = API_KEY
    settings.POSTHOG_TIMEOUT = 5
    return settings


@pytest.fixture
def sink(posthog_settings):
    sink = PostHogSink().start()
    posthog_settings.POSTHOG_HOST = sink.url
    yield sink
    sink.stop()
