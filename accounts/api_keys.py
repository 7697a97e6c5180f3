"""Organization API keys: what a product's servers authenticate with (docs/api.md).

A key is `fw_live_<prefix>_<secret>`: an 8-character prefix (lowercase letters and digits,
unique, shown in lists) and a secret of 32 random bytes (URL-safe base64). It is returned once,
by the service that creates it; only the SHA-256 of the secret is stored, and the secret's hash
is compared in constant time.

Every API request authenticates, so a web process remembers, for LOCAL_SECONDS (60), the keys
it verified against the database. Revocation must reach every process at once, so:

- revoking a key (or rotating it away) sets the key's *revocation marker* in the shared Redis
  (common/shared_redis.py), once at once and once after the revocation commits, for
  MARKER_SECONDS (600, longer than any process remembers a key);
- a request authenticated from memory reads the marker (in the same round trip as its answer,
  for the entitlements API) and, when it is set, asks the database again.

A key revoked is therefore refused by every process from the moment the revocation commits. If
Redis is unreachable, nothing is remembered and every request asks the database. Without a
shared Redis (the per-process cache of `make run` without REDIS_URL) nothing is remembered
either: a revocation in one process could not reach another's memory.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import string
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from common import invalidation, shared_redis

from .exceptions import NotFound, PermissionDenied, ValidationError
from .models import ApiKey, Organization, User
from .selectors import admin_membership_require
from .signals import analytics_event

KEY_PREFIX = "fw_live_"
PREFIX_LENGTH = 8
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
_KEY_RE = re.compile(r"^fw_live_([a-z0-9]{8})_([A-Za-z0-9_-]{20,100})$")
LOCAL_SECONDS = 60.0
MARKER_SECONDS = 600
# last_used_at is written at most this often per key and web process: not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
_last_used_written: dict[int, datetime] = {}
# "<prefix>:<secret hash>" -> (key id, organization id, remembered until: a time.monotonic(),
# the invalidation epoch it was verified under, or None)
_verified: dict[str, tuple[int, int, float, int | None]] = {}
_revocations_seen = 0

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiPrincipal:
    """Who is calling: the key and the organization it belongs to (its tenant)."""

    key_id: int
    organization_id: int
    prefix: str
    # True when the database said the key is live during this request; False when it came from
    # this process's memory and its revocation marker still has to be read.
    confirmed: bool = True
    # For a key from memory: the invalidation epoch it was verified under (None: unknown).
    verified_epoch: int | None = None


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def revocation_marker_key(prefix: str) -> str:
    return shared_redis.key(f"apikey-revoked:{prefix}")


def _event(name: str, *, actor: User, organization: Organization, properties: dict) -> None:
    analytics_event.send(
        sender=Organization, name=name, user=actor, organization=organization, properties=properties
    )


def _name_clean(name: str) -> str:
    cleaned = " ".join("".join(ch if ch.isprintable() else " " for ch in (name or "")).split())
    if not cleaned:
        raise ValidationError(
            "Give the key a name, such as the server or product that will use it."
        )
    if len(cleaned) > 120:
        raise ValidationError("A key's name can be at most 120 characters.")
    return cleaned


def _key_issue(*, organization: Organization, actor: User, name: str) -> tuple[ApiKey, str]:
    """Write a new key with a fresh prefix and secret; call inside the caller's transaction."""
    for _ in range(5):
        prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
        secret = secrets.token_urlsafe(32)
        try:
            with transaction.atomic():
                api_key = ApiKey.objects.create(
                    organization=organization,
                    name=name,
                    prefix=prefix,
                    secret_hash=_secret_hash(secret),
                    created_by=actor,
                )
        except IntegrityError:
            continue  # 36^8 prefixes: a collision is rare, a second one rarer still.
        return api_key, f"{KEY_PREFIX}{prefix}_{secret}"
    raise ValidationError("Could not create a key just now; try again.")


def marker_set(prefix: str) -> None:
    client = shared_redis.client()
    if client is None:
        return
    try:
        client.set(revocation_marker_key(prefix), b"1", ex=MARKER_SECONDS)
        # Processes that trust their memory without reading the marker hear it here.
        invalidation.publish(f"key:{prefix}")
    except redis.RedisError as error:
        # Refuse (and roll back) rather than let other processes accept the key meanwhile.
        raise ValidationError(
            "The key could not be revoked just now; try again in a moment."
        ) from error


def _marker_set_after_commit(prefix: str) -> None:
    try:
        marker_set(prefix)
    except ValidationError:
        # Committed already: other processes may accept the key until they forget it
        # (LOCAL_SECONDS). The marker set before the commit normally covers this.
        logger.exception("revocation marker of API key %s not set after commit", prefix)


def _revocation_publish(api_key: ApiKey) -> None:
    """Make every process ask the database about this key: now (a Redis failure here refuses
    the revocation, which rolls back) and again after the commit."""
    for memory_key in [k for k in _verified if k.startswith(f"{api_key.prefix}:")]:
        _verified.pop(memory_key, None)
    marker_set(api_key.prefix)
    transaction.on_commit(lambda: _marker_set_after_commit(api_key.prefix))


@transaction.atomic
def api_key_create(*, organization: Organization, actor: User, name: str) -> tuple[ApiKey, str]:
    """Create a key for the organization and return it with its secret, shown this once.

    Only an admin of the organization may; anyone else is refused (NotFound for a non-member).
    """
    name = _name_clean(name)
    admin_membership_require(organization=organization, user=actor)
    api_key, raw = _key_issue(organization=organization, actor=actor, name=name)
    _event(
        "api_key_created",
        actor=actor,
        organization=organization,
        properties={"prefix": api_key.prefix, "name": name},
    )
    return api_key, raw


@transaction.atomic
def api_key_rotate(*, api_key: ApiKey, actor: User) -> tuple[ApiKey, str]:
    """Replace a key: a new key with the same name, and the old one revoked at once.

    Rotation is for a key that may have leaked, so the old key stops working the moment this
    commits; there is no grace period. To change keys without a gap, create a second key,
    deploy it, then revoke the first (docs/api.md#rotating-a-key).
    """
    organization = api_key.organization
    admin_membership_require(organization=organization, user=actor)
    old = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if old.revoked_at is not None:
        raise ValidationError("This key is already revoked; create a new one instead.")
    new, raw = _key_issue(organization=organization, actor=actor, name=old.name)
    old.revoked_at = timezone.now()
    old.revoked_by = actor
    old.save(update_fields=["revoked_at", "revoked_by"])
    _revocation_publish(old)
    _event(
        "api_key_rotated",
        actor=actor,
        organization=organization,
        properties={"prefix": new.prefix, "replaced_prefix": old.prefix, "name": old.name},
    )
    return new, raw


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: User) -> ApiKey:
    """Revoke a key: it never authenticates again. Revoking twice changes nothing."""
    organization = api_key.organization
    admin_membership_require(organization=organization, user=actor)
    api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if api_key.revoked_at is not None:
        return api_key
    api_key.revoked_at = timezone.now()
    api_key.revoked_by = actor
    api_key.save(update_fields=["revoked_at", "revoked_by"])
    _revocation_publish(api_key)
    _event(
        "api_key_revoked",
        actor=actor,
        organization=organization,
        properties={"prefix": api_key.prefix},
    )
    return api_key


@transaction.atomic
def api_key_revoke_by_staff(*, api_key: ApiKey, actor: User) -> ApiKey:
    """Staff revoke a key from the admin (a leaked key reported to support)."""
    if not actor.is_staff:
        raise PermissionDenied("Only staff can revoke another organization's key.")
    api_key = ApiKey.objects.select_for_update().select_related("organization").get(pk=api_key.pk)
    if api_key.revoked_at is not None:
        return api_key
    api_key.revoked_at = timezone.now()
    api_key.revoked_by = actor
    api_key.save(update_fields=["revoked_at", "revoked_by"])
    _revocation_publish(api_key)
    _event(
        "api_key_revoked",
        actor=actor,
        organization=api_key.organization,
        properties={"prefix": api_key.prefix, "by_staff": True},
    )
    return api_key


def _last_used_touch(key_id: int) -> None:
    now = timezone.now()
    previous = _last_used_written.get(key_id)
    if previous is not None and timedelta(0) <= now - previous < LAST_USED_RESOLUTION:
        return
    _last_used_written[key_id] = now
    ApiKey.objects.filter(pk=key_id, revoked_at__isnull=True).update(last_used_at=now)


def _on_invalidation(message: str) -> None:
    """Another process revoked a key ("key:<prefix>"), or this process's listener changed
    epoch ("*"): forget the keys concerned."""
    global _revocations_seen
    if message.startswith("key:"):
        _revocations_seen += 1
        prefix = message[4:]
        for memory_key in [k for k in _verified if k.startswith(f"{prefix}:")]:
            _verified.pop(memory_key, None)
    elif message == "*":
        _revocations_seen += 1
        _verified.clear()


invalidation.handler_register(_on_invalidation)


def api_key_trusted_locally(principal: ApiPrincipal, epoch: int) -> bool:
    """Whether a principal may be trusted without reading its revocation marker: verified
    against the database, or remembered from a verification under the listener's current
    epoch (every revocation since then has reached this process: common/invalidation.py)."""
    return principal.confirmed or (principal.verified_epoch is not None and principal.verified_epoch == epoch)


def _from_database(prefix: str, secret_hash: str) -> ApiPrincipal | None:
    epoch = invalidation.epoch()
    seen = _revocations_seen
    row = (
        ApiKey.objects.filter(prefix=prefix)
        .values_list("pk", "organization_id", "secret_hash", "revoked_at")
        .first()
    )
    if row is None:
        return None
    key_id, organization_id, stored_hash, revoked_at = row
    if not hmac.compare_digest(stored_hash, secret_hash) or revoked_at is not None:
        return None
    if shared_redis.client() is not None:
        # Verified under `epoch` only if no revocation arrived while the database was read.
        trusted_epoch = epoch if seen == _revocations_seen and invalidation.epoch() == epoch else None
        _verified[f"{prefix}:{secret_hash}"] = (
            key_id,
            organization_id,
            time.monotonic() + LOCAL_SECONDS,
            trusted_epoch,
        )
    _last_used_touch(key_id)
    return ApiPrincipal(key_id=key_id, organization_id=organization_id, prefix=prefix)


def api_key_resolve(raw: str) -> ApiPrincipal | None:
    """The key's organization, from this process's memory of verified keys or the database.

    Malformed, unknown and revoked keys all answer None. A principal that is not `confirmed`
    came from memory: the caller must read its revocation marker and pass it to
    `api_key_confirm` before trusting it (`api_key_authenticate` does both).
    """
    match = _KEY_RE.match(raw or "")
    if match is None:
        return None
    prefix, secret = match.groups()
    secret_hash = _secret_hash(secret)
    remembered = _verified.get(f"{prefix}:{secret_hash}")
    if remembered is not None and remembered[3] is None and invalidation.epoch() is not None:
        # Verified before this process's invalidation listener was subscribed: verify once more,
        # so that from now on the key can be trusted from memory (api_key_trusted_locally).
        remembered = None
    if remembered is not None and remembered[2] > time.monotonic():
        _last_used_touch(remembered[0])
        return ApiPrincipal(
            key_id=remembered[0],
            organization_id=remembered[1],
            prefix=prefix,
            confirmed=False,
            verified_epoch=remembered[3],
        )
    return _from_database(prefix, secret_hash)


def api_key_confirm(
    principal: ApiPrincipal, marker: bytes | None, *, marker_known: bool = True
) -> ApiPrincipal | None:
    """Trust a principal from memory given its revocation marker (None: not set). A set marker,
    or one that could not be read, sends the question to the database."""
    if principal.confirmed or (marker_known and marker is None):
        return principal
    for memory_key in [k for k in _verified if k.startswith(f"{principal.prefix}:")]:
        _verified.pop(memory_key, None)
    if not ApiKey.objects.filter(pk=principal.key_id, revoked_at__isnull=True).exists():
        return None
    return ApiPrincipal(
        key_id=principal.key_id, organization_id=principal.organization_id, prefix=principal.prefix
    )


def api_key_authenticate(raw: str) -> ApiPrincipal | None:
    """The key's organization if `raw` is a live key, else None (one Redis read at most)."""
    principal = api_key_resolve(raw)
    if principal is None or principal.confirmed:
        return principal
    client = shared_redis.client()
    try:
        marker = client.get(revocation_marker_key(principal.prefix)) if client is not None else None
    except redis.RedisError:
        return api_key_confirm(principal, None, marker_known=False)
    return api_key_confirm(principal, marker, marker_known=client is not None)


def api_keys_of(*, organization: Organization) -> list[ApiKey]:
    """The organization's keys, newest first, live ones before revoked ones."""
    return list(
        ApiKey.objects.filter(organization=organization)
        .select_related("created_by", "revoked_by")
        .order_by(F("revoked_at").asc(nulls_first=True), "-created_at")
    )


def get_api_key_for_admin(
    *, organization: Organization, actor: User, api_key_public_id: object
) -> ApiKey:
    """A key of `organization`, for one of its admins; NotFound for any other key or person."""
    admin_membership_require(organization=organization, user=actor)
    api_key = (
        ApiKey.objects.select_related("organization")
        .filter(organization=organization, public_id=api_key_public_id)
        .first()
    )
    if api_key is None:
        raise NotFound("API key not found.")
    return api_key
