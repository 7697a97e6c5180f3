"""Stripe's webhooks: the intake (verify, store once) and the drain that applies every stored
event, with outcomes, backoff, dead events and staff replay."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import psycopg
from django.conf import settings
from django.db import connections, transaction
from django.db.models import F, Q
from django.db.models.fields.json import KT
from django.utils import timezone

from common import shared_redis

from .. import gateway, tasks
from ..exceptions import (
    StripeObjectMissing,
    WebhookNotOurs,
    WebhookSignatureInvalid,
)
from ..models import (
    Payment,
    WebhookEvent,
)
from . import refunds
from .billing_account import setup_intent_webhook_apply
from .payments import payment_apply_intent

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReceivedWebhook:
    pk: int
    stripe_event_id: str
    created: bool


def _webhook_insert_sql(vendor: str) -> str:
    """One statement, one round trip: the new row's id and True, or the stored row's id and
    False for a duplicate (on PostgreSQL; SQLite answers nothing for a duplicate). The outcome
    and its reason take their database defaults (pending, empty)."""
    table = WebhookEvent._meta.db_table
    insert = (
        f"INSERT INTO {table} (stripe_event_id, type, payload, raw_body, received_at, attempts, last_error) "  # noqa: S608 - table name only
        f"VALUES (%(id)s, %(type)s, {'%(payload)s::jsonb' if vendor == 'postgresql' else '%(payload)s'}, %(raw)s, %(at)s, 0, '') "
        "ON CONFLICT (stripe_event_id) DO NOTHING RETURNING id"
    )
    if vendor != "postgresql":
        return insert
    return (
        f"WITH inserted AS ({insert}) SELECT id, true FROM inserted "  # noqa: S608 - table name only
        f"UNION ALL SELECT id, false FROM {table} WHERE stripe_event_id = %(id)s "
        "AND NOT EXISTS (SELECT 1 FROM inserted)"
    )


def _webhook_insert_prepared(connection, params: dict) -> tuple | None:
    """Run the insert as a server-side prepared statement on Django's own connection (and so
    in its transaction, if any). Django's cursors bind parameters on the client, so PostgreSQL
    would parse and plan the statement for every webhook; prepared once per connection, it
    costs PostgreSQL about 0.1 ms less CPU per event (bench/webhooks.py). psycopg keeps the
    prepared statement with the connection and prepares it again on a new one."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_webhook_insert_sql("postgresql"), params, prepare=True)
        return cursor.fetchone()


# What jsonb refuses in a JSON text: the escape \u0000 (text cannot hold NUL) and a surrogate
# escape that is not half of a pair. The pattern also matches valid pairs and escaped
# backslashes before "u": a match only means "look closer" (_jsonb_safe).
_JSONB_SUSPECT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_JSONB_REFUSED_CHARACTERS = re.compile("[\x00\ud800-\udfff]")  # json.loads joins valid pairs


def _jsonb_safe(value):
    """`value` (parsed JSON) with every NUL and lone surrogate, in strings and keys, replaced
    by U+FFFD, or `value` itself when it has none. Every other field is kept as it is."""
    if isinstance(value, str):
        return _JSONB_REFUSED_CHARACTERS.sub("\ufffd", value)
    if isinstance(value, list):
        items = [_jsonb_safe(item) for item in value]
        return value if all(new is old for new, old in zip(items, value, strict=True)) else items
    if isinstance(value, dict):
        pairs = [(_jsonb_safe(key), _jsonb_safe(item)) for key, item in value.items()]
        if all(new_key is key and new is item for (new_key, new), (key, item) in zip(pairs, value.items(), strict=True)):
            return value
        return dict(pairs)
    return value


def webhook_receive(*, payload: bytes, signature: str) -> ReceivedWebhook:
    """Verify and store a Stripe webhook once by its event id; the worker processes it.

    One statement, `INSERT ... ON CONFLICT (stripe_event_id) DO NOTHING`: a duplicate delivery,
    even one racing the first on another connection, stores nothing and is told so. The body
    is stored as Stripe sent it (the database parses it), and the worker is nudged once the
    row is committed (webhooks_drain_nudge). A bad signature raises WebhookSignatureInvalid
    and stores nothing.

    A body that jsonb would refuse (a \\u0000 or a lone surrogate escape, anywhere) is stored
    too, never answered 500: its payload has those characters replaced by U+FFFD and the body
    itself is kept in raw_body. Only bodies with such an escape pay for the closer look.
    """
    data = gateway.webhook_event_parse(payload=payload, signature=signature)
    body = payload.decode("utf-8")
    raw = ""
    if _JSONB_SUSPECT.search(payload):
        safe = _jsonb_safe(data)
        if safe is not data:
            data, raw, body = safe, body, json.dumps(safe)
    event_id = str(data.get("id", ""))
    event_type = str(data.get("type", ""))
    if not event_id or len(event_id) > 255 or len(event_type) > 255:
        raise WebhookSignatureInvalid("Webhook refused: the event has no usable id or type.")
    connection = connections[WebhookEvent.objects.db]
    params = {"id": event_id, "type": event_type, "payload": body, "raw": raw, "at": timezone.now()}
    if connection.vendor == "postgresql":
        row = _webhook_insert_prepared(connection, params)
    else:
        with connection.cursor() as cursor:
            cursor.execute(_webhook_insert_sql(connection.vendor), params)
            row = cursor.fetchone()
    if row is None:  # SQLite: a duplicate
        existing = WebhookEvent.objects.filter(stripe_event_id=event_id).values_list("pk", flat=True).first()
        return ReceivedWebhook(pk=existing or 0, stripe_event_id=event_id, created=False)
    if len(row) > 1 and not row[1]:
        return ReceivedWebhook(pk=row[0], stripe_event_id=event_id, created=False)
    transaction.on_commit(webhooks_drain_nudge_soon, robust=True)
    return ReceivedWebhook(pk=row[0], stripe_event_id=event_id, created=True)


# The drain: one worker task applies every stored, unprocessed event, instead of one task per
# event (a Celery publish per webhook cost more than storing it). A Redis flag says "a drain is
# scheduled or running", so a burst of webhooks publishes one task, not thousands.
_DRAIN_FLAG = "webhooks-drain"
_DRAIN_FLAG_SECONDS = 60  # a drain that died leaves the flag this long at most


_NUDGE_WINDOW_SECONDS = 0.05
_nudge_lock = threading.Lock()
_nudge_last = float("-inf")
_nudge_timer: threading.Timer | None = None


def webhooks_drain_nudge_soon() -> None:
    """After an event is committed: nudge a drain now, or, if this process already nudged in
    the last 50 ms, once at the end of that window (a trailing debounce). Either way a nudge
    follows every committed event within 50 ms, at a cost of at most 20 Redis calls a second
    per process however many webhooks arrive."""
    global _nudge_last, _nudge_timer
    now = time.monotonic()
    with _nudge_lock:
        if now - _nudge_last >= _NUDGE_WINDOW_SECONDS:
            _nudge_last = now
        else:
            if _nudge_timer is None:
                _nudge_timer = threading.Timer(_NUDGE_WINDOW_SECONDS - (now - _nudge_last), _nudge_trailing)
                _nudge_timer.daemon = True
                _nudge_timer.start()
            return
    webhooks_drain_nudge()


def _nudge_trailing() -> None:
    global _nudge_last, _nudge_timer
    with _nudge_lock:
        _nudge_timer = None
        _nudge_last = time.monotonic()
    try:
        webhooks_drain_nudge()
    except Exception:  # noqa: BLE001 - the beat sweep nudges again within a minute
        logger.exception("webhook drain nudge failed")


def webhooks_drain_nudge() -> None:
    """Make sure a drain will run after this moment: publish one unless one is pending."""
    redis_client = shared_redis.client()
    if redis_client is not None:
        try:
            if not redis_client.set(shared_redis.key(_DRAIN_FLAG), b"1", nx=True, ex=_DRAIN_FLAG_SECONDS):
                return  # a drain is pending or running, and rechecks before it stops
        except Exception:  # noqa: BLE001 - no Redis: publish anyway, drains are idempotent
            logger.warning("webhook drain flag unavailable; publishing a drain", exc_info=True)
    tasks.webhooks_drain.apply_async(queue=settings.CELERY_TASK_DEFAULT_QUEUE)


def _drain_flag_renew() -> None:
    """Set the flag for another _DRAIN_FLAG_SECONDS: a drain does so for each batch it takes,
    so the flag says "a drain is running" as long as one is, even after it cleared the flag
    and then found more work."""
    redis_client = shared_redis.client()
    if redis_client is not None:
        try:
            redis_client.set(shared_redis.key(_DRAIN_FLAG), b"1", ex=_DRAIN_FLAG_SECONDS)
        except Exception:  # noqa: BLE001 - without the flag, nudges publish more drains; leases keep them apart
            logger.warning("webhook drain flag not renewed", exc_info=True)


def _drain_successor_publish() -> None:
    """A drain that stops with work left hands over to a new task. The flag is still its own,
    so it publishes directly (a nudge would see the flag and do nothing) and renews the flag."""
    _drain_flag_renew()
    tasks.webhooks_drain.apply_async(queue=settings.CELERY_TASK_DEFAULT_QUEUE)


def webhooks_drain_flag_clear() -> None:
    redis_client = shared_redis.client()
    if redis_client is not None:
        try:
            redis_client.delete(shared_redis.key(_DRAIN_FLAG))
        except Exception:  # noqa: BLE001 - the flag expires by itself
            logger.warning("webhook drain flag not cleared", exc_info=True)


def _webhook_retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(settings.WEBHOOK_RETRY_SECONDS * 2 ** max(attempts - 1, 0), 3600))


def webhooks_claim(*, limit: int) -> list[int]:
    """Lease up to `limit` pending events to this caller, oldest first.

    A leased event is invisible to other drains until its lease ends (WEBHOOK_LEASE_SECONDS):
    concurrent drains never apply one event at the same time, and an event whose drain died
    is picked up again when its lease runs out. Only pending events are claimed: a dead one
    waits for staff (webhooks_replay). No row lock is held after this returns.
    """
    connection = connections[WebhookEvent.objects.db]
    table = WebhookEvent._meta.db_table
    skip_locked = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET claimed_until = %s WHERE id IN ("  # noqa: S608 - no user input
            f"SELECT id FROM {table} WHERE outcome = %s AND (claimed_until IS NULL OR claimed_until < %s) "
            f"ORDER BY received_at, id LIMIT %s{skip_locked}) RETURNING id",
            [now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS), WebhookEvent.Outcome.PENDING, now, limit],
        )
        return sorted(row[0] for row in cursor.fetchall())


@dataclass
class DrainReport:
    processed: int = 0  # events that reached a final outcome: applied, stored or not ours
    failed: int = 0  # events that met a temporary error (backing off, or dead)
    not_ours: int = 0  # of `processed`
    dead: int = 0  # of `failed`: they reached WEBHOOK_MAX_ATTEMPTS


def webhooks_drain(*, batch: int = 100, max_seconds: float = 20.0, linger: float | None = None) -> DrainReport:
    """Apply stored events until none is left to claim; return what was done.

    After a batch that was not full it waits `linger` seconds (WEBHOOK_DRAIN_LINGER_SECONDS)
    before claiming again, with its flag still set, so the intake publishes no other drain
    meanwhile. During a burst the events then come in batches of what arrived in that time,
    each for the same few statements, rather than one or two per claim; a lone event is still
    applied as soon as the drain starts, and the wait only delays the drain's end.

    Stops after `max_seconds` and publishes its successor, so one long burst never holds a
    worker process. Before stopping for lack of work it clears the flag and claims once more:
    an event stored while the flag was still set is never left waiting for the sweep.
    """
    report = DrainReport()
    linger = settings.WEBHOOK_DRAIN_LINGER_SECONDS if linger is None else linger
    deadline = time.monotonic() + max_seconds
    flag_cleared = False
    while True:
        claimed = webhooks_claim(limit=batch)
        if not claimed:
            if flag_cleared:
                return report
            webhooks_drain_flag_clear()
            flag_cleared = True
            continue
        _drain_flag_renew()
        flag_cleared = False
        _webhooks_apply(claimed, report)
        if time.monotonic() > deadline:
            _drain_successor_publish()
            return report
        if len(claimed) < batch and linger > 0:
            time.sleep(linger)


# Outcomes ----------------------------------------------------------------------------------
# A permanent error (the event is about nothing of ours) ends an event at once as "not ours";
# any other error is temporary: the event backs off and is tried again, and after
# WEBHOOK_MAX_ATTEMPTS it is dead (an alert in the log) until staff replay it.

_NOT_OURS_ERRORS = (WebhookNotOurs, StripeObjectMissing)


def _webhook_intent_apply(intent_id: str) -> None:
    """Apply a PaymentIntent an event is about, read back from Stripe. An intent that belongs
    to no Flywheel payment (another integration on the same Stripe account) is not ours."""
    try:
        intent = gateway.payment_intent_retrieve(intent_id)
    except StripeObjectMissing:
        raise WebhookNotOurs(f"payment event for PaymentIntent {intent_id}, which Stripe does not have in this account") from None
    if payment_apply_intent(intent=intent) is None:
        raise WebhookNotOurs(f"payment event for PaymentIntent {intent_id}, which no Flywheel payment knows")


def _webhook_handled(event_type: str) -> bool:
    """Whether a handler of ours acts on this type (its events end applied, others stored)."""
    return event_type in HANDLED_WEBHOOKS or event_type in refunds.HANDLED_WEBHOOKS


def _not_ours_unread(*, account, livemode) -> str:
    """Why an event is not ours, seen from the event alone (no call to Stripe), or ""."""
    if account:
        return (
            f"A Connect event from account {account}: Flywheel is not a Connect platform, and "
            "that account's objects cannot be read with Flywheel's key."
        )
    if isinstance(livemode, bool) and livemode != gateway.key_is_live():
        return (
            f"A {'live' if livemode else 'test'}-mode event, but Flywheel uses a "
            f"{'live' if gateway.key_is_live() else 'test'}-mode key: its objects are not in this account."
        )
    return ""


def _not_ours_reason(error: Exception) -> str:
    if isinstance(error, StripeObjectMissing):
        return f"Stripe cannot find its object in Flywheel's account: {error.message}"
    return str(getattr(error, "message", "") or error)


def _webhooks_done(event_ids: list[int], outcome: str, *, reason: str = "", error: Exception | None = None, attempt: bool = False) -> int:
    """Record a final outcome (applied, stored or not ours) on pending events."""
    changes: dict = {"outcome": outcome, "outcome_reason": reason, "processed_at": timezone.now()}
    changes["last_error"] = repr(error)[:2000] if error is not None else ""
    if attempt:
        changes["attempts"] = F("attempts") + 1
    return WebhookEvent.objects.filter(pk__in=event_ids, outcome=WebhookEvent.Outcome.PENDING).update(**changes)


def _webhook_failed(event_id: int, stripe_event_id: str, attempts: int, error: Exception) -> bool:
    """A temporary error on attempt number `attempts`: keep it on the event and hide the event
    from drains until its backoff is over; after WEBHOOK_MAX_ATTEMPTS, the event is dead
    instead, with an alert in the log. Returns whether it is dead."""
    words = str(getattr(error, "message", "") or repr(error))
    if attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        dead = WebhookEvent.objects.filter(pk=event_id, outcome=WebhookEvent.Outcome.PENDING).update(
            outcome=WebhookEvent.Outcome.DEAD,
            outcome_reason=f"Gave up after {attempts} attempts: {words}",
            last_error=repr(error)[:2000],
            claimed_until=None,
        )
        if dead:
            logger.error("stripe webhook %s dead after %s attempts: %s", stripe_event_id, attempts, words)
        return True
    WebhookEvent.objects.filter(pk=event_id).update(
        last_error=repr(error)[:2000], claimed_until=timezone.now() + _webhook_retry_delay(attempts)
    )
    return False


def _intent_of(event_type: str, object_id) -> str:
    """The PaymentIntent an event is about (the id of its data.object), or "" for any other."""
    if event_type not in HANDLED_WEBHOOKS:
        return ""
    intent_id = str(object_id or "")
    return intent_id if intent_id.startswith("pi_") else ""


def _intents_settled(intent_ids) -> set[str]:
    """The PaymentIntents among `intent_ids` whose payment has succeeded with that very intent.
    payment_apply_intent never changes such a payment, whatever the intent says now, so an
    event about one needs no read from Stripe: a late or duplicate delivery costs one query,
    not an API call counted against Stripe's rate limit. (Refunds and disputes arrive as
    charge.* events, which take their own path.)"""
    return set(
        Payment.objects.filter(stripe_payment_intent_id__in=list(intent_ids), status=Payment.Status.SUCCEEDED)
        .values_list("stripe_payment_intent_id", flat=True)
    )


def _webhooks_apply(event_ids: list[int], report: DrainReport) -> None:
    """Apply a claimed batch of events.

    Events about the same PaymentIntent share one read of it from Stripe and one application:
    that read comes after every one of them was stored, so it is at least as new as each, and
    applying it once is what applying each in turn would have done. Events about an intent
    whose payment is already settled are done without asking Stripe (_intents_settled). Any
    other event is applied on its own (webhook_process). A Connect or other-mode event is not
    ours before anything is read. Errors are told apart as webhook_process does.

    Each of those applications may wait on Stripe. Once half the lease has gone, the events
    not yet started are handed back (their lease cleared) for the next claim, so a slow Stripe
    never lets the lease run out under an event still being applied, which another drain
    would then apply too.
    """
    hand_back_after = time.monotonic() + settings.WEBHOOK_LEASE_SECONDS / 2
    handed_back: list[int] = []
    by_intent: dict[str, list[tuple[int, str, int]]] = {}  # intent id -> [(event id, Stripe's id, attempts)]
    rows = (
        WebhookEvent.objects.filter(pk__in=event_ids, outcome=WebhookEvent.Outcome.PENDING)
        .order_by("pk")
        # Not the whole body: the object's id, and what says an event is not ours unread.
        .values_list("pk", "stripe_event_id", "type", "attempts", KT("payload__data__object__id"), KT("payload__account"), "payload__livemode")
    )
    for event_id, stripe_event_id, event_type, attempts, object_id, account, livemode in rows:
        reason = _not_ours_unread(account=account, livemode=livemode)
        if reason:
            report.processed += _webhooks_done([event_id], WebhookEvent.Outcome.NOT_OURS, reason=reason, attempt=True)
            report.not_ours += 1
            continue
        intent_id = _intent_of(event_type, object_id)
        if not intent_id:
            if time.monotonic() > hand_back_after:
                handed_back.append(event_id)
                continue
            outcome = webhook_process(event_id=event_id)
            if outcome in (WebhookEvent.Outcome.PENDING, WebhookEvent.Outcome.DEAD):
                report.failed += 1
                report.dead += outcome == WebhookEvent.Outcome.DEAD
            else:
                report.processed += 1
                report.not_ours += outcome == WebhookEvent.Outcome.NOT_OURS
            continue
        by_intent.setdefault(intent_id, []).append((event_id, stripe_event_id, attempts))
    settled = _intents_settled(by_intent)
    # Settled: nothing to apply, so every such event of the batch is done in one statement.
    done = [event_id for intent_id in settled for event_id, _, _ in by_intent.pop(intent_id, [])]
    if done:
        report.processed += _webhooks_done(done, WebhookEvent.Outcome.APPLIED, attempt=True)
    for intent_id, group in by_intent.items():
        ids = [event_id for event_id, _, _ in group]
        if time.monotonic() > hand_back_after:
            handed_back += ids
            continue
        WebhookEvent.objects.filter(pk__in=ids).update(attempts=F("attempts") + 1)
        try:
            _webhook_intent_apply(intent_id)
        except _NOT_OURS_ERRORS as error:
            _webhooks_done(ids, WebhookEvent.Outcome.NOT_OURS, reason=_not_ours_reason(error), error=error)
            report.processed += len(group)
            report.not_ours += len(group)
            continue
        except Exception as error:  # noqa: BLE001 - temporary: kept in last_error, retried after a backoff
            report.failed += len(group)
            logger.warning("stripe webhook events %s about %s failed", ids, intent_id, exc_info=True)
            for event_id, stripe_event_id, attempts in group:
                report.dead += _webhook_failed(event_id, stripe_event_id, attempts + 1, error)
            continue
        _webhooks_done(ids, WebhookEvent.Outcome.APPLIED)
        report.processed += len(group)
    if handed_back:
        WebhookEvent.objects.filter(pk__in=handed_back, outcome=WebhookEvent.Outcome.PENDING).update(claimed_until=None)


def webhooks_resume_unprocessed(*, older_than_seconds: int = 60) -> int:
    """Beat: nudge a drain when pending events wait with no drain to take them (its task was
    lost to a broker outage, its worker died, or a failed event's backoff is over). Returns
    how many events are waiting; dead ones are not (they wait for staff)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    now = timezone.now()
    waiting = (
        WebhookEvent.objects.filter(outcome=WebhookEvent.Outcome.PENDING, received_at__lt=cutoff)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .count()
    )
    if waiting:
        webhooks_drain_flag_clear()  # whoever held it is gone: its events' leases ran out
        transaction.on_commit(webhooks_drain_nudge, robust=True)
    return waiting


def webhooks_replay(*, event_ids: list[int], nudge: bool = True) -> list[int]:
    """Put stored events back to pending with their attempts, reason and error cleared, so
    the drain applies them again (nudged once this commits, unless `nudge` is False: then the
    caller applies them itself). For staff, once the cause of a dead or not-ours event is
    fixed; any event may be replayed, since every handler is idempotent.

    An event a drain holds right now (pending, leased or backing off) is left as it is: it is
    already waiting, and clearing its lease would let a second drain apply it meanwhile.
    Returns the ids put back.
    """
    with transaction.atomic():
        events = WebhookEvent.objects.select_for_update().filter(pk__in=event_ids).exclude(
            outcome=WebhookEvent.Outcome.PENDING, claimed_until__gt=timezone.now()
        )
        replayed = list(events.order_by("received_at", "pk").values_list("pk", flat=True))
        WebhookEvent.objects.filter(pk__in=replayed).update(
            outcome=WebhookEvent.Outcome.PENDING,
            outcome_reason="",
            processed_at=None,
            attempts=0,
            claimed_until=None,
            last_error="",
        )
        if replayed and nudge:
            transaction.on_commit(webhooks_drain_nudge, robust=True)
    return replayed


HANDLED_WEBHOOKS = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.requires_action",
    "payment_intent.processing",
    "payment_intent.canceled",
    "setup_intent.succeeded",
)


def webhook_process(*, event_id: int) -> str:
    """Apply one stored, pending webhook event, once, and return its outcome (WebhookEvent.Outcome).

    The handler reads the object's current state from Stripe rather than trusting the event's
    copy, so a stale or reordered event cannot overwrite newer state. A handler that raises
    WebhookNotOurs, or a Stripe 404 (StripeObjectMissing), makes the event not ours at once;
    a Connect or other-mode event is not ours before anything is read. Any other error is
    temporary: recorded, backed off, and dead after WEBHOOK_MAX_ATTEMPTS (pending or dead is
    returned, never raised). An event that is not pending is left alone ("" is returned).
    """
    event = WebhookEvent.objects.filter(pk=event_id, outcome=WebhookEvent.Outcome.PENDING).first()
    if event is None:
        return ""
    WebhookEvent.objects.filter(pk=event.pk).update(attempts=F("attempts") + 1)
    reason = _not_ours_unread(account=event.payload.get("account"), livemode=event.payload.get("livemode"))
    if reason:
        _webhooks_done([event.pk], WebhookEvent.Outcome.NOT_OURS, reason=reason)
        return WebhookEvent.Outcome.NOT_OURS
    try:
        intent_id = _intent_of(event.type, ((event.payload.get("data") or {}).get("object") or {}).get("id"))
        if intent_id and not _intents_settled([intent_id]):
            _webhook_intent_apply(intent_id)
        refunds.webhook_apply(event_type=event.type, payload=event.payload)  # refunds and disputes
        setup_intent_webhook_apply(event_type=event.type, payload=event.payload)  # a card confirmed
    except _NOT_OURS_ERRORS as error:
        _webhooks_done([event.pk], WebhookEvent.Outcome.NOT_OURS, reason=_not_ours_reason(error), error=error)
        return WebhookEvent.Outcome.NOT_OURS
    except Exception as error:  # noqa: BLE001 - temporary: kept in last_error, retried after a backoff
        logger.warning("stripe webhook %s (%s) failed", event.stripe_event_id, event.type, exc_info=True)
        dead = _webhook_failed(event.pk, event.stripe_event_id, event.attempts + 1, error)
        return WebhookEvent.Outcome.DEAD if dead else WebhookEvent.Outcome.PENDING
    outcome = WebhookEvent.Outcome.APPLIED if _webhook_handled(event.type) else WebhookEvent.Outcome.STORED
    _webhooks_done([event.pk], outcome)
    return outcome
