"""With the cache's Redis unreachable, people can still sign in and sign up: the rate limits
that live in the cache are skipped (and that is logged as an error, once per interval, not per
request), and a signup is whole: user, address, intent, verification email."""

from __future__ import annotations

import logging
import re
import threading
import uuid

import pytest
import redis
from allauth.account.models import EmailAddress
from django.conf import settings as django_settings
from django.urls import reverse

from accounts.models import SignupIntent, User

from ..conftest import body_text, mails_to, wait_for
from ..factories import PASSWORD, UserFactory

STRONG = "plum-Orchard-47-kettle"
DOWN = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def redis_down(settings):
    """The default cache points at a port nothing listens on (its backend as configured)."""
    # Each test its own location: what a process saw of an outage is kept per location.
    location = f"{DOWN}?client_name=test-{uuid.uuid4().hex[:8]}"
    settings.CACHES = {
        **django_settings.CACHES,
        "default": {**django_settings.CACHES["default"], "LOCATION": location},
    }
    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis.from_url(location).ping()


def _login(client, email, password):
    return client.post(reverse("account_login"), {"login": email, "password": password})


def test_sign_in_works_while_the_cache_is_down(client, catalog, redis_down):
    user = UserFactory(email="dana@acme.example")
    response = _login(client, "dana@acme.example", PASSWORD)
    assert response.status_code == 302
    assert int(client.session["_auth_user_id"]) == user.pk


def test_a_wrong_password_is_still_refused_while_the_cache_is_down(client, catalog, redis_down):
    UserFactory(email="dana@acme.example")
    response = _login(client, "dana@acme.example", "not-the-password")
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert "not correct" in response.content.decode()


def test_the_outage_is_logged_as_an_error_once_not_per_request(client, catalog, redis_down, caplog):
    UserFactory(email="dana@acme.example")
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            client.logout()
            assert _login(client, "dana@acme.example", PASSWORD).status_code == 302
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1, [record.getMessage() for record in errors]
    assert "rate limits are off" in errors[0].getMessage()


@pytest.mark.django_db(transaction=True)
def test_signup_works_while_the_cache_is_down_and_is_whole(client, catalog, celery_worker, redis_down):
    response = client.post(
        reverse("account_signup"), {"email": "ada@lovelace-labs.example", "password1": STRONG, "password2": STRONG}
    )
    assert response.status_code == 302
    user = User.objects.get(email="ada@lovelace-labs.example")
    assert EmailAddress.objects.filter(user=user, verified=False).count() == 1
    assert SignupIntent.objects.filter(user=user).exists()
    mail = wait_for(lambda: mails_to("ada@lovelace-labs.example"), what="the verification email")
    assert re.search(r"/accounts/confirm-email/\S+/", body_text(mail[-1]))


def test_only_rate_limits_fail_open(redis_down):
    from django.core.cache import caches

    cache = caches["default"]
    assert cache.get("allauth:rl:allauth.account:login:30/60/ip:127.0.0.1", []) == []
    assert cache.add("allauth:rl:allauth.account:login:30/60/ip:127.0.0.1:lock", True) is True
    with pytest.raises(redis.exceptions.ConnectionError):
        cache.get("anything-else")  # a value someone relies on is never quietly missing


def test_the_outage_is_logged_once_across_threads(redis_down, caplog):
    """A threaded server makes a cache object per thread (Django's caches are per thread)."""
    from django.core.cache import caches

    def one_request():
        caches["default"].get("allauth:rl:allauth.account:login:30/60/ip:127.0.0.1", [])

    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            thread = threading.Thread(target=one_request)
            thread.start()
            thread.join()
    assert len([record for record in caplog.records if record.levelno >= logging.ERROR]) == 1
