"""GET /kit/v1/message answered from a cache: the ready-to-send JSON of a kit session's answer
in one product, from one origin (docs/in-product.md, "Speed").

The answer is asked on every page load of every product and changes rarely, so it is kept, as
billing/entitlements.py keeps the entitlements API's, in the shared Redis and in each web
process's memory, and a repeat request costs no database query: the session credential is
checked (its signature: CPU only), then the answer is read from memory, or with one MGET from
Redis.

Invariants:

- An entry is used only while three *generations* are what they were when the request that
  computed it began: the organization's and the catalog's entitlements generations
  (billing.entitlements: subscriptions, invoices, memberships, invites, products, editions;
  this module's receivers add payments, the billing account's card, the organization's and its
  members' names and activity, and the experiments) and the person's kit generation
  (`kit_person_changed`): every write of what the answer depends on that is the person's own,
  wherever it is made (the kit, the server API, Flywheel's pages): prompt dismissals, the
  survey's asks, answers and dismissals, offers closed, success moments, asks to the admins,
  the invite-nudge email, and the kit session itself (started, its one message claimed or
  closed). Generations are replaced at once and again after the change commits, and a request
  reads them before the database, so an answer computed from rows older than a commit is
  stored under a generation nobody asks for any more.
- Membership: an entry was computed by the full path, which checked that the person is an
  active member of the organization; removing the member (a membership deleted) or
  deactivating the user replaces the organization's generation, so the next request takes the
  full path again and is refused (401).
- Origin: the entry's key names the credential's session, product and origin, and the full
  path checked that origin against the product's registered origins; a change to the catalog
  (an origin retired) replaces the catalog generation.
- Time: an entry lives until the first moment the answer could change with time alone (a
  trial's next day, a card's warning and expiry, a pending invite's expiry, the survey's
  tenure, sampling period, windows and daily cap, an offer's snooze, the marketing cap's
  window), and at most KIT_MESSAGE_CACHE_SECONDS (300): a bound for changes no write announces
  (GrowthBook copy from its features file; a queryset update that bypasses the receivers).
- A session's last_seen_at is still moved at most once a minute (identity.TOUCH_INTERVAL): a
  hit touches it when this process has not done so for a minute.

Each web process also keeps the answers it read in its own memory, under common/invalidation.py's
rules: every generation replaced above also publishes an invalidation message ("org:<id>",
"catalog", "kit:person:<user id>"), and a kept answer is used only while the listener's epoch
is the one it was kept under and no message about its organization or person arrived since it
was read. Without a shared Redis, or while Redis fails, every request is answered from the
database; nothing is kept.

Import order inside the app: models, caller, cors, identity -> message_cache -> messages.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from billing.entitlements import entitlements_generation_keys, entitlements_generations
from common import invalidation, shared_redis

from .caller import KitCaller
from .exceptions import KitSessionExpired
from .identity import TOUCH_INTERVAL, KitCredential, kit_credential_read
from .models import KitSession

logger = logging.getLogger(__name__)

_GENERATION_SECONDS = 30 * 24 * 3600
# A process remembers this many sessions' people and touches; past it, it starts afresh.
_MEMORY_LIMIT = 20_000
PERSON_MESSAGE = "kit:person:"

# This process's kept answers: entry key -> (epoch, use until (time.monotonic()), expires at
# (time.time()), organization id, user id, invalidations seen when it was read, answer).
_local: dict[str, tuple[int, float, float, int, int, tuple[int, int, int], bytes]] = {}
# Invalidations seen, per organization, per person and for all.
_changes_organization: dict[int, int] = {}
_changes_person: dict[int, int] = {}
_changes_all = 0
# Session public id -> (organization id, user id): what a session is never changes.
_people: dict[str, tuple[int, int]] = {}
# Session public id -> when this process last moved its last_seen_at.
_touched: dict[str, datetime] = {}
_lock = threading.Lock()


def _on_invalidation(message: str) -> None:
    global _changes_all
    with _lock:
        if message.startswith("org:"):
            try:
                organization_id = int(message[4:])
            except ValueError:
                return
            _changes_organization[organization_id] = _changes_organization.get(organization_id, 0) + 1
        elif message.startswith(PERSON_MESSAGE):
            try:
                user_id = int(message[len(PERSON_MESSAGE) :])
            except ValueError:
                return
            _changes_person[user_id] = _changes_person.get(user_id, 0) + 1
        elif message == "*" or message == "catalog":
            _changes_all += 1
            _local.clear()


invalidation.handler_register(_on_invalidation)


def _seen(organization_id: int, user_id: int) -> tuple[int, int, int]:
    return (_changes_organization.get(organization_id, 0), _changes_person.get(user_id, 0), _changes_all)


def cache_seconds() -> int:
    return int(getattr(settings, "KIT_MESSAGE_CACHE_SECONDS", 300))


def _entry_key(credential: KitCredential) -> str:
    origin = hashlib.sha256(credential.origin.encode()).hexdigest()[:16]
    return shared_redis.key(f"kit-message:{credential.session}:{credential.product_id}:{origin}")


def _person_key(user_id: int) -> str:
    return shared_redis.key(f"kit-person:{user_id}")


def answer_json(value: dict[str, Any]) -> bytes:
    """The body both paths send: the cached bytes are the computed ones."""
    return json.dumps(value, cls=DjangoJSONEncoder).encode()


# Replacing the person's generation ------------------------------------------------------------


def _person_replace(user_id: int) -> None:
    message = f"{PERSON_MESSAGE}{user_id}"
    invalidation.dispatch_local(message)
    client = shared_redis.client()
    if client is None:
        return
    try:
        client.set(_person_key(user_id), uuid.uuid4().hex, ex=_GENERATION_SECONDS)
        # After the generation: a process that hears this and reads again reads the new one.
        invalidation.publish(message)
    except redis.RedisError:
        # A write never fails for the cache's sake; an answer kept before the outage lives at
        # most its expiry.
        logger.exception("kit answers of user %s not invalidated", user_id)


def kit_person_changed(*, user_id: int | None) -> None:
    """Something the person's kit answer depends on changed: forget their answers (in every
    organization and product), now and again when the current transaction commits."""
    if user_id is None or shared_redis.client() is None:
        return
    _person_replace(user_id)
    transaction.on_commit(lambda: _person_replace(user_id))


# Reading -------------------------------------------------------------------------------------------


@dataclass
class Lookup:
    """What a request that missed read before computing its answer: where to keep it, and the
    generations (organization, catalog, person) to keep it under (None: keep nothing)."""

    key: str
    session: str
    organization_id: int | None = None
    user_id: int | None = None
    generations: list[bytes] | None = None
    epoch: int | None = None
    seen: tuple[int, int, int] | None = None


def _touch(session: str) -> None:
    """Move the session's last_seen_at, at most once per TOUCH_INTERVAL from this process (and
    only when nobody else moved it within TOUCH_INTERVAL)."""
    now = timezone.now()
    previous = _touched.get(session)
    if previous is not None and timedelta(0) <= now - previous < TOUCH_INTERVAL:
        return
    if len(_touched) > _MEMORY_LIMIT:
        _touched.clear()
    _touched[session] = now
    KitSession.objects.filter(public_id=session, last_seen_at__lt=now - TOUCH_INTERVAL).update(last_seen_at=now)


def _generations_ensure(client: redis.Redis, organization_id: int, user_id: int, found: list[bytes | None]) -> list[bytes]:
    """The organization's, the catalog's and the person's generations, created where missing."""
    organization, catalog, person = found
    if organization is None or catalog is None:
        token = entitlements_generations(organization_id=organization_id)
        if token is None:
            raise redis.RedisError("entitlements generations unavailable")
        organization, catalog = token.split(b"|")
    if person is None:
        pipe = client.pipeline(transaction=False)
        pipe.set(_person_key(user_id), uuid.uuid4().hex, nx=True, ex=_GENERATION_SECONDS)
        pipe.get(_person_key(user_id))
        person = pipe.execute()[1]
        if person is None:
            raise redis.RedisError("kit person generation unavailable")
    return [organization, catalog, person]


def _parse(entry: bytes | None) -> tuple[list[bytes], float, int, int, bytes] | None:
    """An entry is "<organization gen>|<catalog gen>|<person gen>|<expires at>|<organization
    id>|<user id>|<JSON>"."""
    if entry is None:
        return None
    parts = entry.split(b"|", 6)
    if len(parts) != 7:
        return None
    try:
        return parts[:3], float(parts[3]), int(parts[4]), int(parts[5]), parts[6]
    except ValueError:
        return None


def answer_cached(*, credential: str, origin: str) -> tuple[bytes | None, Lookup | None]:
    """The kept answer for this credential and origin, or (None, what to keep the computed
    answer under). (None, None) when the credential or origin is not right (the full path
    answers the refusal) or nothing may be kept."""
    if cache_seconds() <= 0:
        return None, None
    try:
        read = kit_credential_read(credential)
    except KitSessionExpired:
        return None, None  # the full path answers the refusal
    if read.origin != origin:
        return None, None
    key = _entry_key(read)
    lookup = Lookup(key=key, session=read.session)
    people = _people.get(read.session)
    if people is not None:
        lookup.organization_id, lookup.user_id = people
    epoch = invalidation.epoch()
    if epoch is not None and people is not None:
        kept = _local.get(key)
        if (
            kept is not None
            and kept[0] == epoch
            and kept[1] > time.monotonic()
            and kept[2] > time.time()
            and kept[5] == _seen(kept[3], kept[4])
        ):
            _touch(read.session)
            return kept[6], None
    client = shared_redis.client()
    if client is None:
        return None, None
    try:
        if people is None:
            # First time this process sees the session: who it is comes with its entry.
            parsed = _parse(client.get(key))
            if parsed is None:
                return None, lookup
            people = parsed[2], parsed[3]
            _people_remember(read.session, people)
            lookup.organization_id, lookup.user_id = people
        organization_id, user_id = people
        seen = _seen(organization_id, user_id)
        values = client.mget(
            [key, *entitlements_generation_keys(organization_id=organization_id), _person_key(user_id)]
        )
        parsed = _parse(values[0])
        if parsed is not None and all(values[1:]) and parsed[0] == values[1:] and parsed[1] > time.time():
            if epoch is not None and invalidation.epoch() == epoch and seen == _seen(organization_id, user_id):
                lifetime = parsed[1] - time.time()
                _local_keep(key, (epoch, time.monotonic() + lifetime, parsed[1], organization_id, user_id, seen, parsed[4]))
            _touch(read.session)
            return parsed[4], None
        lookup.generations = _generations_ensure(client, organization_id, user_id, values[1:])
        lookup.epoch, lookup.seen = epoch, seen
    except redis.RedisError as error:
        logger.warning("kit answers cache unavailable, answering from the database: %s", error)
        return None, None
    return None, lookup


def _people_remember(session: str, people: tuple[int, int]) -> None:
    if len(_people) > _MEMORY_LIMIT:
        _people.clear()
    _people[session] = people


def _local_keep(key: str, kept: tuple[int, float, float, int, int, tuple[int, int, int], bytes]) -> None:
    if len(_local) > _MEMORY_LIMIT:
        _local.clear()
    _local[key] = kept


# Keeping ----------------------------------------------------------------------------------------


def answer_keep(*, lookup: Lookup | None, caller: KitCaller, body: bytes, seconds: Callable[[], float]) -> None:
    """Keep the answer computed for `caller` under the generations `lookup` read before it was
    computed, for `seconds()` (until the first moment it could change with time alone:
    messages.message_seconds; asked only when the answer is kept)."""
    if lookup is None:
        return
    people = (caller.organization.pk, caller.user.pk)
    if lookup.organization_id is None:
        # Who the session is was not known when the request began, so no generations were read
        # before the membership was checked: keep nothing now, read them next time.
        _people_remember(lookup.session, people)
        return
    if lookup.generations is None or people != (lookup.organization_id, lookup.user_id):
        return
    client = shared_redis.client()
    if client is None:
        return
    lifetime = min(seconds(), cache_seconds())
    if lifetime <= 0:
        return
    expires_at = time.time() + lifetime
    entry = b"|".join(
        [*lookup.generations, f"{expires_at:.3f}".encode(), str(people[0]).encode(), str(people[1]).encode(), body]
    )
    try:
        client.set(lookup.key, entry, ex=max(1, math.ceil(lifetime)))
    except redis.RedisError as error:
        logger.warning("kit answer not kept: %s", error)
        return
    epoch = lookup.epoch
    if epoch is not None and invalidation.epoch() == epoch and lookup.seen == _seen(*people):
        _local_keep(lookup.key, (epoch, time.monotonic() + lifetime, expires_at, people[0], people[1], lookup.seen, body))
