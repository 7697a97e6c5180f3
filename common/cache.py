"""The default cache: Django's Redis cache, where a Redis outage never locks anyone out.

allauth keeps its rate limits (sign-in, failed sign-ins, signup, password reset, verification
mails; ACCOUNT_RATE_LIMITS in config/settings.py) in the default cache, through
`allauth.core.internal.ratelimit`, and that is all Flywheel keeps there. With Redis
unreachable every sign-in and signup used to answer 500: the whole customer base locked out
to protect against password guessing.

`FailOpenRedisCache` fails open for rate limiting only. For a rate-limit key (allauth's
`allauth:rl:` keys and their locks) a Redis error reads as "no history" (get), "lock taken"
(add) and "nothing stored" (set, delete), so the limit is not applied; any other key still
raises, so nothing that needs the cache to be right is quietly served wrong. After an error,
rate-limit operations skip Redis for `retry_seconds` (1 s default) rather than pay a timeout on
every request, and the outage is logged as an ERROR once per `log_seconds` (60 s default) and
process, not per request nor per thread; its end is logged as a WARNING.

Tune in CACHES["default"]["OPTIONS"]: `retry_seconds`, `log_seconds`, and redis-py's
`socket_connect_timeout` and `socket_timeout` (config/settings.py sets 1 s: a Redis that drops
packets costs a request at most that long, then `retry_seconds` of nothing).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import redis
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)

RATE_LIMIT_KEY_PREFIXES = ("allauth:rl:",)


def is_rate_limit_key(key: str) -> bool:
    return key.startswith(RATE_LIMIT_KEY_PREFIXES)


def _without_password(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}" if rest else url


class _Outage:
    """One per cache location and process: Django makes a cache object per thread (and a
    threaded server a thread per request), so what was seen must outlive the object."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.down_until = 0.0
        self.logged_at: float | None = None
        self.ongoing = False


_outages: dict[str, _Outage] = {}
_outages_lock = threading.Lock()


def _outage_of(location: str) -> _Outage:
    with _outages_lock:
        return _outages.setdefault(location, _Outage())


class FailOpenRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        options = dict(params.get("OPTIONS") or {})
        self.retry_seconds = float(options.pop("retry_seconds", 1.0))
        self.log_seconds = float(options.pop("log_seconds", 60.0))
        super().__init__(server, {**params, "OPTIONS": options})
        self._outage = _outage_of(server)

    # The outage: skip Redis for a moment, log once per interval ------------------------------

    def _fail_open(self, keys: Iterable[str], operation: Callable[[], Any], fallback: Any) -> Any:
        if not all(is_rate_limit_key(key) for key in keys):
            return operation()
        if time.monotonic() < self._outage.down_until:
            return fallback
        try:
            result = operation()
        except redis.RedisError as error:
            self._failed(error)
            return fallback
        if self._outage.ongoing:
            self._recovered()
        return result

    def _failed(self, error: Exception) -> None:
        now = time.monotonic()
        outage = self._outage
        with outage.lock:
            outage.down_until = now + self.retry_seconds
            outage.ongoing = True
            if outage.logged_at is not None and now - outage.logged_at < self.log_seconds:
                return
            outage.logged_at = now
        logger.error(
            "The cache's Redis (%s) is unreachable: sign-in and signup rate limits are off until it "
            "is back, everything else works. %s: %s",
            self._where(),
            type(error).__name__,
            error,
        )

    def _recovered(self) -> None:
        outage = self._outage
        with outage.lock:
            if not outage.ongoing:
                return
            outage.ongoing = False
            outage.logged_at = None
        logger.warning("The cache's Redis (%s) answers again: rate limits are back on.", self._where())

    def _where(self) -> str:
        return ", ".join(_without_password(server) for server in self._servers)

    # Django's cache API ----------------------------------------------------------------------

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        # allauth's lock around a rate-limit history: "acquired", so the request goes on.
        return self._fail_open([key], lambda: super(FailOpenRedisCache, self).add(key, value, timeout, version), True)

    def get(self, key, default=None, version=None):
        return self._fail_open([key], lambda: super(FailOpenRedisCache, self).get(key, default, version), default)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._fail_open([key], lambda: super(FailOpenRedisCache, self).set(key, value, timeout, version), None)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._fail_open([key], lambda: super(FailOpenRedisCache, self).touch(key, timeout, version), False)

    def delete(self, key, version=None):
        return self._fail_open([key], lambda: super(FailOpenRedisCache, self).delete(key, version), False)

    def has_key(self, key, version=None):
        return self._fail_open([key], lambda: super(FailOpenRedisCache, self).has_key(key, version), False)

    def get_many(self, keys, version=None):
        keys = list(keys)
        return self._fail_open(keys, lambda: super(FailOpenRedisCache, self).get_many(keys, version), {})

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return self._fail_open(
            list(data), lambda: super(FailOpenRedisCache, self).set_many(data, timeout, version), list(data)
        )

    def delete_many(self, keys, version=None):
        keys = list(keys)
        return self._fail_open(keys, lambda: super(FailOpenRedisCache, self).delete_many(keys, version), None)
