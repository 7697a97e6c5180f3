"""What an organization is entitled to, product by product: the answer of the entitlements API.

The answer is read on every request a product's server makes and changes rarely, so it is kept
in the shared Redis (common/shared_redis.py) as ready-to-send JSON, one entry per organization,
and a request costs one round trip: the entry, the two generations below and, for a key this
process remembered, the key's revocation marker (accounts/api_keys.py), in one MGET.

Invariants of that cache:

- An entry is used only while it was computed under the organization's current *generation*
  and the catalog's current generation: random strings, stored in front of the JSON.
- Every change that can alter the answer replaces the organization's generation: a subscription
  saved or deleted, an invoice saved (paying one for added seats raises the limit with a
  queryset update, which sends no signal), a membership or invite saved or deleted (seats
  used), an add-on subscription or a training pack saved or deleted (what add-ons grant);
  billing/receivers.py. A change to the catalog (a product, an edition, an add-on) replaces
  the catalog generation.
  Generations are replaced once at once and once after the change commits, and a request
  reads them before the database, so an answer computed from rows older than a commit is stored
  under a generation nobody asks for any more: no stale answer is served after a commit.
- A pending invite frees its seat when it expires, without any write; an entry therefore
  lives no longer than the organization's next invite expiry (and at most
  ENTITLEMENTS_CACHE_SECONDS, 300 by default, a bound for writes that bypass signals).
- Each product's `active_seats` (people active in the 30 whole UTC days ending on `as_of`,
  yesterday, against its seats: billing.selectors.active_seats_of) changes when the UTC day
  does, without any write; an entry therefore lives no longer than the end of the UTC day it
  was computed on (the day after its `as_of`), and one computed too close to midnight to be
  stored is not. The lifetime is read from the answer's own `as_of`, so an answer computed
  just before midnight and stored just after is not kept. Activity arriving late for a past
  day (the activity API accepts events up to ACTIVITY_RAW_RETENTION_DAYS old) moves the figure
  without replacing any generation: it shows once the entry expires, within
  ENTITLEMENTS_CACHE_SECONDS, as other writes that bypass signals do. Activity is far too
  frequent a write to replace the generation on each batch.

A write that bypasses model signals (a queryset `update()` of subscriptions, add-on
subscriptions, memberships or invites that changes the answer) must call
`entitlements_invalidate` itself. An add-on's trial ends by a write (the lifecycle tick removes
it), as a subscription's does: until then the answer says it is trialing and granting.

Without a shared Redis (the per-process cache of `make run` without REDIS_URL), or while Redis
fails, every request computes the answer from the database.

Each web process also keeps the answers it read in its own memory, and answers from there with
no round trip at all, under common/invalidation.py's rules: every change above also publishes an
invalidation message ("org:<id>", "catalog"; a revoked API key "key:<prefix>") that each
process's listener applies, and a kept answer is used only while that listener has stayed
subscribed since it was kept. A change made anywhere therefore reaches every process as soon as
its message is delivered. A kept answer also lives no longer than its Redis entry would
(the invite expiry above), and at most ENTITLEMENTS_LOCAL_SECONDS (30). While the listener is
not subscribed nothing is kept, and every request asks Redis as above.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import redis
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from accounts.api_keys import (
    ApiPrincipal,
    api_key_confirm,
    api_key_trusted_locally,
    revocation_marker_key,
)
from accounts.models import Invite, Organization
from accounts.services import seats_in_use
from activity.selectors import last_whole_day
from common import invalidation, shared_redis

from .models import AddOnSubscription, Subscription
from .selectors import ActiveSeats, active_seats_of, addons_granting

logger = logging.getLogger(__name__)

# Statuses whose holder may use the product. Past due keeps working through dunning;
# suspended does not.
ENTITLED_STATUSES = (
    Subscription.Status.TRIALING,
    Subscription.Status.ACTIVE,
    Subscription.Status.PAST_DUE,
)

_GENERATION_SECONDS = 30 * 24 * 3600
# This process's kept answers: organization id -> (invalidation epoch, use until (a
# time.monotonic()), answer); and how many invalidations it has seen, per organization and for
# all, so an answer read while one arrived is not kept.
_local: dict[int, tuple[int, float, bytes]] = {}
_changes: dict[int, int] = {}
_changes_all = 0


def _on_invalidation(message: str) -> None:
    global _changes_all
    if message.startswith("kit:"):
        return  # the in-product kit's own (a person's answers): nothing kept here depends on it
    if message.startswith("org:"):
        try:
            organization_id = int(message[4:])
        except ValueError:
            return
        _changes[organization_id] = _changes.get(organization_id, 0) + 1
        _local.pop(organization_id, None)
    else:  # "*" (the listener's epoch changed), "catalog", "key:<prefix>"
        _changes_all += 1
        _local.clear()


invalidation.handler_register(_on_invalidation)


def _data_key(organization_id: int) -> str:
    return shared_redis.key(f"entitlements:{organization_id}")


def _generation_key(organization_id: int | None) -> str:
    return shared_redis.key(f"entitlements-generation:{organization_id or 'catalog'}")


def _cache_seconds() -> int:
    return int(getattr(settings, "ENTITLEMENTS_CACHE_SECONDS", 300))


def _local_seconds() -> float:
    return float(getattr(settings, "ENTITLEMENTS_LOCAL_SECONDS", 0))


def _json(value: Any) -> bytes:
    return json.dumps(value, cls=DjangoJSONEncoder, separators=(",", ":")).encode()


def entitlements_compute(*, organization_id: int) -> list[dict[str, Any]]:
    """The organization's subscriptions (all but canceled) as entitlements, from the database.

    `features` is what the product may use: the edition's features, then those of the add-ons
    that grant now (billing.selectors.addons_granting: trialing or active, on an entitled base).
    `feature_sources` says where each comes from (a feature both grant is listed for each),
    and `addons` lists the live add-ons (all but removed ones) with their effective status: a
    suspended base suspends its add-ons. `active_seats` is the product's people active in the
    30 whole UTC days ending on `as_of` (yesterday) against its seats, and their ratio."""
    subscriptions = list(
        Subscription.objects.filter(organization_id=organization_id)
        .exclude(status=Subscription.Status.CANCELED)
        .select_related("product", "edition", "billed_to")
        .order_by("product__position", "product__code")
    )
    if not subscriptions:
        return []
    seats_used = seats_in_use(organization=Organization(pk=organization_id))
    as_of = last_whole_day()
    active_seats = {
        row.subscription.pk: row
        for row in active_seats_of(organization_ids=[organization_id], as_of=as_of).get(organization_id, [])
    }
    granting = set(addons_granting(organization_id=organization_id).values_list("pk", flat=True))
    live_addons: dict[int, list[AddOnSubscription]] = {}
    for row in (
        AddOnSubscription.objects.filter(organization_id=organization_id, status__in=AddOnSubscription.LIVE_STATUSES)
        .select_related("addon")
        .order_by("addon__position", "addon__code")
    ):
        live_addons.setdefault(row.subscription_id, []).append(row)
    return [
        _entitlement(
            subscription,
            seats_used,
            live_addons.get(subscription.pk, []),
            granting,
            active_seats.get(subscription.pk) or ActiveSeats(subscription=subscription, active=0, seats=subscription.seat_limit),
            as_of,
        )
        for subscription in subscriptions
    ]


def _entitlement(
    subscription: Subscription,
    seats_used: int,
    addons: list[AddOnSubscription],
    granting: set[int],
    active_seats: ActiveSeats,
    as_of: date,
) -> dict[str, Any]:
    edition = subscription.edition
    features = list(edition.features or [])
    sources = [
        {"feature": feature, "source": "edition", "code": edition.code, "name": edition.name} for feature in features
    ]
    for row in addons:
        if row.pk not in granting:
            continue
        for feature in row.addon.features or []:
            if feature not in features:
                features.append(feature)
            sources.append({"feature": feature, "source": "addon", "code": row.addon.code, "name": row.addon.name})
    return {
        "product": subscription.product.code,
        "product_name": subscription.product.name,
        "edition": edition.code,
        "edition_name": edition.name,
        "status": subscription.status,
        "entitled": subscription.status in ENTITLED_STATUSES,
        "seat_limit": subscription.seat_limit,
        "seats_used": seats_used,
        "features": features,
        "feature_sources": sources,
        "addons": [
            {
                "code": row.addon.code,
                "name": row.addon.name,
                # What the product should act on: a suspended base suspends its add-ons.
                "status": AddOnSubscription.Status.SUSPENDED
                if subscription.status == Subscription.Status.SUSPENDED
                else row.status,
                "trial_ends_at": row.trial_ends_at if row.status == AddOnSubscription.Status.TRIALING else None,
                "granting": row.pk in granting,
            }
            for row in addons
        ],
        "trial_ends_at": subscription.trial_ends_at,
        "current_period_end": subscription.current_period_end,
        "interval": subscription.interval or None,
        "active_seats": {
            "active": active_seats.active,
            "seats": active_seats.seats,
            "ratio": None if active_seats.ratio is None else round(active_seats.ratio, 4),
            "as_of": as_of,
        },
        # A partner buys and manages it: products say "ask <name>" where an admin would buy.
        "managed_by": {"name": subscription.billed_to.name} if subscription.billed_to_id else None,
    }


def figures_valid_until(rows: list[dict[str, Any]]) -> float:
    """When the answer's day-bound figures change (a time.time()): the end of the UTC day after
    the earliest `active_seats.as_of` in it, the day it was computed on; never for no rows."""
    days = [row["active_seats"]["as_of"] for row in rows]
    if not days:
        return math.inf
    return datetime.combine(min(days) + timedelta(days=2), datetime.min.time(), tzinfo=UTC).timestamp()


def entry_seconds(organization_id: int) -> int:
    """How long an answer may be kept: until the next pending invite expires, at most the limit."""
    seconds = _cache_seconds()
    now = timezone.now()
    next_expiry = Invite.objects.filter(
        organization_id=organization_id, status=Invite.Status.PENDING, expires_at__gt=now
    ).aggregate(next=Min("expires_at"))["next"]
    if next_expiry is not None:
        seconds = min(seconds, max(1, math.floor((next_expiry - now).total_seconds())))
    return seconds


def _only(all_json: bytes, product_code: str | None) -> bytes:
    if product_code is None:
        return all_json
    return _json([row for row in json.loads(all_json) if row["product"] == product_code])


def _generations_ensure(
    client: redis.Redis, organization_id: int, found: list[bytes | None]
) -> list[bytes]:
    """The two generations, created where missing (evicted, or never set)."""
    keys = [_generation_key(organization_id), _generation_key(None)]
    if all(found):
        return [value for value in found if value is not None]
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.set(key, uuid.uuid4().hex, nx=True, ex=_GENERATION_SECONDS)
    for key in keys:
        pipe.get(key)
    return pipe.execute()[2:]


def entitlements_generations(*, organization_id: int) -> bytes | None:
    """The organization's and the catalog's current generations as one token, for a cache
    elsewhere whose answers depend on the same rows (the kit's "nothing due"): read it before
    computing an answer, store it with the answer, and use the answer only while the token is
    unchanged. None without a shared Redis or while it fails (then nothing may be kept)."""
    client = shared_redis.client()
    if client is None:
        return None
    try:
        found = client.mget([_generation_key(organization_id), _generation_key(None)])
        return b"|".join(_generations_ensure(client, organization_id, found))
    except redis.RedisError:
        return None


def entitlements_generation_keys(*, organization_id: int) -> list[str]:
    """The Redis keys of the organization's and the catalog's generations (the parts of
    entitlements_generations' token, in its order), for a cache elsewhere that reads them in its
    own MGET; where one is missing, entitlements_generations creates it."""
    return [_generation_key(organization_id), _generation_key(None)]


def entitlements_answer(
    *, principal: ApiPrincipal, product_code: str | None = None
) -> bytes | None:
    """The JSON array of the key's organization's entitlements, all products or one (an empty
    array for a product it does not have); None when the key turned out to be revoked."""
    organization_id = principal.organization_id
    client = shared_redis.client()
    if client is None:
        return _only(_json(entitlements_compute(organization_id=organization_id)), product_code)
    epoch = invalidation.epoch() if _local_seconds() > 0 else None
    if epoch is not None:
        kept = _local.get(organization_id)
        if (
            kept is not None
            and kept[0] == epoch
            and kept[1] > time.monotonic()
            and api_key_trusted_locally(principal, epoch)
        ):
            return _only(kept[2], product_code)
        seen = (_changes.get(organization_id, 0), _changes_all)
    answer = _from_redis(client, principal)
    if answer is None:
        return None
    all_json, expires_at = answer
    if (
        epoch is not None
        and invalidation.epoch() == epoch
        and seen == (_changes.get(organization_id, 0), _changes_all)
    ):
        lifetime = min(_local_seconds(), expires_at - time.time())
        if lifetime > 0:
            _local[organization_id] = (epoch, time.monotonic() + lifetime, all_json)
    return _only(all_json, product_code)


def _from_redis(client: redis.Redis, principal: ApiPrincipal) -> tuple[bytes, float] | None:
    """The answer and when its Redis entry expires (a time.time()); None for a revoked key.
    An entry is "<organization generation>|<catalog generation>|<expires at>|<JSON>"."""
    organization_id = principal.organization_id
    keys = [_data_key(organization_id), _generation_key(organization_id), _generation_key(None)]
    if not principal.confirmed:
        keys.append(revocation_marker_key(principal.prefix))
    try:
        values = client.mget(keys)
    except redis.RedisError as error:
        logger.warning("entitlements cache unavailable, answering from the database: %s", error)
        if api_key_confirm(principal, None, marker_known=False) is None:
            return None
        return _json(entitlements_compute(organization_id=organization_id)), 0.0
    if not principal.confirmed and api_key_confirm(principal, values[3]) is None:
        return None
    entry, organization_generation, catalog_generation = values[:3]
    if entry is not None and organization_generation is not None and catalog_generation is not None:
        head = organization_generation + b"|" + catalog_generation + b"|"
        if entry.startswith(head):
            expires_at, _, all_json = entry[len(head) :].partition(b"|")
            try:
                # Redis expires the entry by its own clock; past its time by ours (the day of
                # its active seats is over) it is computed again too.
                if float(expires_at) > time.time():
                    return all_json, float(expires_at)
            except ValueError:
                pass  # an entry of an older format: computed again below
    try:
        # Generations first, then the database: an answer computed from older rows lands under
        # a generation that a later change has already replaced.
        organization_generation, catalog_generation = _generations_ensure(
            client, organization_id, [organization_generation, catalog_generation]
        )
        rows = entitlements_compute(organization_id=organization_id)
        all_json = _json(rows)
        now = time.time()
        expires_at = min(now + entry_seconds(organization_id), figures_valid_until(rows))
        seconds = math.floor(expires_at - now)
        if seconds < 1:
            return all_json, 0.0  # computed for a day that ends now: not kept
        client.set(
            _data_key(organization_id),
            b"|".join([organization_generation, catalog_generation, f"{expires_at:.3f}".encode(), all_json]),
            ex=seconds,
        )
    except redis.RedisError as error:
        logger.warning("entitlements cache not filled: %s", error)
        return _json(entitlements_compute(organization_id=organization_id)), 0.0
    return all_json, expires_at


def _generation_replace(organization_id: int | None) -> None:
    message = "catalog" if organization_id is None else f"org:{organization_id}"
    # Every handler of this process at once (this module's, and caches that depend on the same
    # generations: the kit's answers); the other processes when it is published below.
    invalidation.dispatch_local(message)
    client = shared_redis.client()
    if client is None:
        return
    try:
        client.set(_generation_key(organization_id), uuid.uuid4().hex, ex=_GENERATION_SECONDS)
        # After the generation: a process that hears this and reads again reads the new one.
        invalidation.publish(message)
    except redis.RedisError:
        # A business change never fails for the cache's sake. While Redis is down nothing is
        # read from it either; an answer cached before the outage lives at most its lifetime.
        logger.exception("entitlements of %s not invalidated", organization_id or "the catalog")


def entitlements_invalidate(*, organization_id: int | None) -> None:
    """Forget the organization's cached answer, now and again when the current transaction commits."""
    if organization_id is None or shared_redis.client() is None:
        return
    _generation_replace(organization_id)
    transaction.on_commit(lambda: _generation_replace(organization_id))


def entitlements_invalidate_catalog() -> None:
    """Forget every organization's cached answer (an edition's features or name changed)."""
    if shared_redis.client() is None:
        return
    _generation_replace(None)
    transaction.on_commit(lambda: _generation_replace(None))
