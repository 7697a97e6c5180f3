"""Invalidation messages between processes, over Redis pub/sub.

A process that keeps answers in its own memory (the entitlements API, the API keys it has
verified) must forget them the moment another process changes what they were computed from.
Writers publish a short message on one channel ("org:<id>", "catalog", "key:<prefix>") right
away and again after their transaction commits (and pass it to their own process's handlers at
once, `dispatch_local`); every web process runs one listener thread that passes each message to
the handlers registered here.

What a reader may trust is tied to the listener's *epoch*, a number that changes whenever the
listener (re)subscribes or loses its connection; every handler is then called with "*" (forget
everything), because messages sent while the listener was not subscribed are lost. A reader:

1. takes `epoch()` before it reads the shared store; None means "not listening": keep nothing;
2. keeps what it read only under that epoch, and only if no message about it arrived meanwhile
   (handlers keep counters for that);
3. uses a kept answer only while `epoch()` still equals the one it was kept under.

So a kept answer is at most as old as the delivery of the message that replaced it (well under a
millisecond on one host), and never survives a lost connection. Without a shared Redis,
`epoch()` is always None and nothing is kept.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import redis
from django.conf import settings

from . import shared_redis

logger = logging.getLogger(__name__)

Handler = Callable[[str], None]
_handlers: list[Handler] = []
_lock = threading.Lock()
_epoch = 0
_listening = False
_thread: threading.Thread | None = None
_thread_pid: int | None = None


def channel() -> str:
    return shared_redis.key("invalidate")


def handler_register(handler: Handler) -> None:
    """Call `handler(message)` for each message, and with "*" when the epoch changes."""
    if handler not in _handlers:
        _handlers.append(handler)


def publish(message: str) -> None:
    """Tell every process; a failure is logged (callers also change the shared store, which
    readers that are not listening use)."""
    client = shared_redis.client()
    if client is None:
        return
    try:
        client.publish(channel(), message)
    except redis.RedisError:
        logger.exception("invalidation %r not published", message)


def dispatch_local(message: str) -> None:
    """Pass `message` to this process's handlers now: a writer calls it before it changes the
    shared store and publishes, so its own process never waits for the listener to hear it."""
    _dispatch(message)


def epoch() -> int | None:
    """The listener's current epoch, or None while it is not subscribed (or there is no shared
    Redis, or local caching is off). Starts the listener on first use in a process."""
    if not settings.LOCAL_CACHE_WITH_INVALIDATION or shared_redis.client() is None:
        return None
    _listener_ensure()
    with _lock:
        return _epoch if _listening else None


def _dispatch(message: str) -> None:
    for handler in list(_handlers):
        try:
            handler(message)
        except Exception:  # noqa: BLE001 - one handler's bug must not stop the others
            logger.exception("invalidation handler %r failed on %r", handler, message)


def _epoch_change(listening: bool) -> None:
    global _epoch, _listening
    with _lock:
        _epoch += 1
        _listening = listening
    _dispatch("*")


def _listener_ensure() -> None:
    global _thread, _thread_pid
    if _thread is not None and _thread_pid == os.getpid() and _thread.is_alive():
        return
    with _lock:
        if _thread is not None and _thread_pid == os.getpid() and _thread.is_alive():
            return
        _thread = threading.Thread(target=_listen_forever, name="flywheel-invalidation", daemon=True)
        _thread_pid = os.getpid()
        _thread.start()


def _listen_forever() -> None:
    cache = settings.CACHES["default"]
    location = cache["LOCATION"]
    url = location[0] if isinstance(location, list | tuple) else location
    backoff = 0.1
    while True:
        subscriber = None
        try:
            # Its own connection, no read timeout (it waits for messages), pinged every 5 s so a
            # dead connection is noticed.
            subscriber = redis.Redis.from_url(url, socket_connect_timeout=1.0, health_check_interval=5).pubsub()
            subscriber.subscribe(channel())
            while True:
                message = subscriber.get_message(timeout=1.0)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    _epoch_change(listening=True)
                    backoff = 0.1
                elif message["type"] == "message":
                    data = message["data"]
                    _dispatch(data.decode() if isinstance(data, bytes) else str(data))
        except Exception:  # noqa: BLE001 - reconnect; meanwhile nothing is kept
            logger.warning("invalidation listener lost its connection; reconnecting", exc_info=True)
            _epoch_change(listening=False)
            time.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
        finally:
            if subscriber is not None:
                try:
                    subscriber.close()
                except Exception:  # noqa: BLE001
                    logger.debug("closing the invalidation subscriber failed", exc_info=True)
