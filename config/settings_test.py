"""Settings for the test suite: PostgreSQL and Redis over real connections.

Every value can still be overridden from the environment (CI, another machine).
"""

import os
import tempfile
import uuid

os.environ.setdefault("FLYWHEEL_ENV", "test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
# One queue per test run, so a leftover task of an earlier run is never picked up.
os.environ.setdefault("CELERY_QUEUE", f"flywheel-test-{uuid.uuid4().hex[:12]}")
os.environ.setdefault("CACHE_KEY_PREFIX", os.environ["CELERY_QUEUE"])
os.environ.setdefault("MAIL_DIR", tempfile.mkdtemp(prefix="flywheel-test-mail-"))
# Hashing strength is not under test here (bench/time_to_value.py measures the real hasher).
os.environ.setdefault("PASSWORD_HASHERS", "django.contrib.auth.hashers.MD5PasswordHasher")
os.environ.setdefault("PROVISIONING_BACKOFF_SECONDS", "0.2")
os.environ.setdefault("PROVISIONING_BACKOFF_MAX_SECONDS", "1")
os.environ.setdefault("PROVISIONING_MAX_ATTEMPTS", "4")
os.environ.setdefault("PROVISIONING_HTTP_TIMEOUT", "1")
os.environ.setdefault("SIGNUP_RATE_LIMIT", "1000/m/ip")
os.environ.setdefault("PAYMENT_RETRY_SECONDS", "0.2")


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# The test run's own localstripe (tests/conftest.py starts it); the worker inherits the port.
os.environ.setdefault("LOCALSTRIPE_PORT", str(_free_port()))

from .settings import *  # noqa: E402,F403

# Every browser journey signs in from 127.0.0.1: the suite signs in more than 30 times a minute.
ACCOUNT_RATE_LIMITS = {  # noqa: F405
    **ACCOUNT_RATE_LIMITS,  # noqa: F405
    "login": "1000/m/ip",
    "login_failed": "1000/m/ip",
    "confirm_email": "1000/m/key",
}

# Parallel test runs on one machine: give each its own database (and its own REDIS_URL db).
if os.environ.get("FLYWHEEL_TEST_DB"):
    DATABASES["default"]["TEST"] = {"NAME": os.environ["FLYWHEEL_TEST_DB"]}  # noqa: F405
