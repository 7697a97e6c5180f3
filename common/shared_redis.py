"""The shared cache's Redis, used directly by the API's hot path: one round trip per request.

Django's RedisCache builds a new redis-py client for every operation (some 50 µs with redis-py
8) and pickles every value. The entitlements API answers from one MGET of plain bytes through
one client per process instead. Keys carry the cache's KEY_PREFIX, so parallel runs (tests,
benches) stay apart, and live in the same Redis database as the cache.

`client()` is None unless the default cache is Redis (REDIS_URL): without a cache that every
process shares, nothing may be kept, because an invalidation could not reach other processes.
Callers also treat a RedisError as "no cache" and answer from the database: slower, never wrong.
"""

from __future__ import annotations

import os

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

_client: redis.Redis | None = None
_client_pid: int | None = None


def client() -> redis.Redis | None:
    global _client, _client_pid
    cache = settings.CACHES["default"]
    if not cache["BACKEND"].endswith("RedisCache"):
        return None
    # A client made before a fork (gunicorn --preload) must not share its sockets.
    if _client is None or _client_pid != os.getpid():
        location = cache["LOCATION"]
        url = location[0] if isinstance(location, list | tuple) else location
        # One immediate retry (a pooled connection Redis closed); no backoff: a request falls
        # back to the database rather than wait for Redis.
        _client = redis.Redis.from_url(
            url, socket_timeout=1.0, socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 1)
        )
        _client_pid = os.getpid()
    return _client


def key(name: str) -> str:
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    return f"{prefix}:fw:{name}" if prefix else f"fw:{name}"
