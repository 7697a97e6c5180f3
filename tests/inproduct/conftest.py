"""Fixtures for the kit's tests: a product's kit secret, tokens minted as a product's server
mints them, and a caller's session credential."""

from __future__ import annotations

import json
import secrets
import time

import jwt
import pytest
from django.conf import settings

from accounts.models import Membership
from catalog.models import Product
from config.celery import app as celery_app
from inproduct.identity import kit_secret_issue
from inproduct.models import KitSecret, KitSession, KitTokenUse
from tests.factories import MembershipFactory
from tests.journeys.conftest import TIMEOUT_MS, browser, viewport  # noqa: F401 - Chromium at 1280 and 390 px, for the kit's browser tests

from ..conftest import organization_on


@pytest.fixture
def demo_origin() -> str:
    """Where the builtin products' pages run (the demo product): one of Tracker's origins."""
    return settings.DEMO_PRODUCT_URL


@pytest.fixture
def tracker(catalog) -> Product:
    return Product.objects.get(code="tracker")


@pytest.fixture
def tracker_secret(tracker) -> tuple[KitSecret, str]:
    return kit_secret_issue(product=tracker)


@pytest.fixture
def acme(trial_organization):
    """An organization on a Tracker trial, its admin and one member: (organization, admin, member)."""
    organization, admin = trial_organization
    member = MembershipFactory(organization=organization, role=Membership.Role.MEMBER).user
    return organization, admin, member


def claims_for(user, organization, product_code: str = "tracker", **overrides) -> dict:
    now = int(time.time())
    claims = {
        "iss": product_code,
        "aud": "flywheel-kit",
        "sub": str(user.public_id),
        "org": str(organization.public_id),
        "iat": now,
        "exp": now + 300,
        "jti": secrets.token_urlsafe(24),
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not DROP}


DROP = object()


@pytest.fixture
def mint(tracker_secret, acme):
    """mint(**claim overrides, user=, organization=, secret=, kid=, headers=) -> a token, signed
    as the product's server signs it (claims default to Acme's admin on Tracker; a claim set to
    DROP is left out)."""
    kit_secret, value = tracker_secret
    organization, admin, _member = acme

    def _mint(*, user=None, organization_=None, secret=None, kid=None, headers=None, algorithm="HS256", **overrides):
        claims = claims_for(user or admin, organization_ or organization, **overrides)
        header = {"kid": kit_secret.key_id if kid is None else kid, **(headers or {})}
        header = {name: item for name, item in header.items() if item is not DROP}
        return jwt.encode(claims, secret or value, algorithm=algorithm, headers=header)

    return _mint


@pytest.fixture
def exchange(client, demo_origin):
    """exchange(token, origin=demo) -> the response of POST /kit/v1/session."""

    def _exchange(token, *, origin=None, body=None):
        headers = {} if origin == "" else {"HTTP_ORIGIN": origin or demo_origin}
        payload = body if body is not None else {"token": token}
        data = payload if isinstance(payload, str | bytes) else json.dumps(payload)
        return client.post("/kit/v1/session", data=data, content_type="application/json", **headers)

    return _exchange


@pytest.fixture
def nothing_written():
    """Call it after a refusal: no kit session was started and no token spent."""

    def _check():
        assert KitSession.objects.count() == 0
        assert KitTokenUse.objects.count() == 0

    return _check


# The message tests' fixtures ---------------------------------------------------------------------


@pytest.fixture
def organization(catalog):
    """An organization on a Tracker Standard trial (14 days left: no prompt due) and its admin."""
    return organization_on("standard")


@pytest.fixture
def no_survey(settings):
    """Nobody is drawn for the survey."""
    settings.FEEDBACK_SAMPLING_RATE = 0.0


@pytest.fixture
def eager_tasks():
    """Celery runs tasks in-process, so an email queued on commit is in mail.outbox after it."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture(autouse=True)
def _answers_not_kept(settings, request):
    """Message tests compute every answer; test_message_cache.py turns the cache on."""
    if "answers_kept" not in request.fixturenames:
        settings.KIT_MESSAGE_CACHE_SECONDS = 0


@pytest.fixture
def answers_kept(settings):
    settings.KIT_MESSAGE_CACHE_SECONDS = 60


# The kit's browser tests (test_kit_browser.py, test_feature_offer_browser.py): the product site
# (kit_site.py) and fresh pages.


@pytest.fixture
def product_site(live_server, tracker_secret, settings):
    """Tracker's pages on a second origin, registered as Tracker's (a builtin product's origin
    is the demo product's: DEMO_PRODUCT_URL). Flywheel's links point at the live server."""
    from .kit_site import ProductSite  # here: kit_site.py reads claims_for from this module

    site = ProductSite(live_server.url, tracker_secret)
    settings.DEMO_PRODUCT_URL = site.url
    settings.SITE_URL = live_server.url
    yield site
    site.stop()


@pytest.fixture
def open_page(browser, viewport):  # noqa: F811 - the journeys' fixtures, imported above
    """`open_page(url)`: a fresh window at this run's width, the page loaded and the kit's
    script run. Reduced motion, so the card is at its final colours when axe reads them."""
    contexts = []

    def open_(url: str):
        context = browser.new_context(viewport=viewport, reduced_motion="reduce")
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.goto(url)
        return page

    yield open_
    for context in contexts:
        context.close()
