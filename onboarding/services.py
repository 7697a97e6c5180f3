"""Every write of onboarding: enrolment, the beat tick, sending, tracking, suppression.

Lock order, everywhere: the enrolment row, then its send row. The marketing frequency cap
serializes per address with a transaction-scoped advisory lock, taken after both.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import logging
import re
import zlib
from base64 import urlsafe_b64encode
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from functools import cached_property, lru_cache
from time import time as time_now
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.template import Context, Template
from django.template.base import TextNode, Variable, VariableNode
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString

from accounts.models import Organization, User
from billing.models import Subscription
from common.json_rows import json_rows, timestamp_text
from common.tasks import enqueue_on_commit
from experiments.services import event_record, events_store, experiment_assign

from . import events, selectors
from .exceptions import LinkInvalid, UnsubscribeInvalid
from .mail import OutcomeUnknown, OutgoingEmail, Sender
from .models import Enrolment, MarketingSend, Send, Sequence, Step, Suppression

logger = logging.getLogger(__name__)

UNSUBSCRIBE_SALT = "flywheel.onboarding.unsubscribe"
CLICK_SALT = "flywheel.onboarding.click"
OPEN_SALT = "flywheel.onboarding.open"


# Time: quiet hours in the recipient's zone -------------------------------------------------------


def user_zone(user: User) -> ZoneInfo:
    """The user's IANA zone, or settings.DEFAULT_USER_TIME_ZONE when blank or unknown."""
    for name in (user.time_zone, settings.DEFAULT_USER_TIME_ZONE, "UTC"):
        if not name:
            continue
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory, as "America"
            continue
    return ZoneInfo("UTC")


def quiet_hours_end(moment: datetime, zone: ZoneInfo) -> datetime:
    """`moment` itself if it is outside the recipient's quiet hours, else the end of them."""
    start, end = settings.ONBOARDING_QUIET_HOURS_START % 24, settings.ONBOARDING_QUIET_HOURS_END % 24
    if start == end:
        return moment
    local = moment.astimezone(zone)
    hour = local.hour
    if start > end:  # spans midnight, e.g. 21:00 to 08:00
        if not (hour >= start or hour < end):
            return moment
        day = local.date() if hour < end else local.date() + timedelta(days=1)
    else:
        if not (start <= hour < end):
            return moment
        day = local.date()
    return datetime.combine(day, time(end), tzinfo=zone).astimezone(UTC)


# Suppression and the shared frequency cap --------------------------------------------------------


def _normalize(email: str) -> str:
    return (email or "").strip().lower()


def email_suppressed(*, email: str) -> bool:
    return Suppression.objects.filter(email=_normalize(email)).exists()


def marketing_email_allowed(*, email: str) -> bool:
    """May a marketing (non-transactional) email go to `email` now? Not if the address is on
    the suppression list or has had its share of marketing email in the cap window.

    A read for pages and previews; a sender must use marketing_email_claim, which checks and
    records in one step so two senders cannot both take the last slot.
    """
    email = _normalize(email)
    if email_suppressed(email=email):
        return False
    window_start = timezone.now() - timedelta(hours=settings.MARKETING_EMAIL_CAP_HOURS)
    sent = MarketingSend.objects.filter(email=email, sent_at__gt=window_start).count()
    return sent < settings.MARKETING_EMAIL_CAP_COUNT


@dataclass(frozen=True)
class MarketingClaim:
    """The answer of marketing_email_claim: allowed (with the ledger row), or why not."""

    allowed: bool
    suppressed: bool = False
    retry_at: datetime | None = None
    ledger_id: int | None = None


def _address_lock(email: str) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Both halves of the key: one lock space per address, apart from other advisory locks.
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [4, zlib.crc32(email.encode()) - 2**31])


_CLAIM_SQL = """
INSERT INTO onboarding_marketingsend (email, source, sent_at)
SELECT %(email)s, %(source)s, %(now)s
WHERE NOT EXISTS (SELECT 1 FROM onboarding_suppression WHERE email = %(email)s)
  AND (SELECT count(*) FROM onboarding_marketingsend WHERE email = %(email)s AND sent_at > %(since)s) < %(cap)s
RETURNING id
"""


@transaction.atomic(savepoint=False)
def marketing_email_claim(*, email: str, source: str) -> MarketingClaim:
    """Claim the right to send one marketing email to `email` now, for any app.

    Invariant: at most MARKETING_EMAIL_CAP_COUNT claims per address in any
    MARKETING_EMAIL_CAP_HOURS, across every sender, and none for a suppressed address. Claims of
    one address run one after another (an advisory lock held to the end of the transaction),
    and the count is read in a statement that starts after the lock is granted, so it includes
    every claim committed before. A sender whose SMTP call fails gives the claim back
    (marketing_email_release).
    """
    email = _normalize(email)
    _address_lock(email)
    now = timezone.now()
    window = timedelta(hours=settings.MARKETING_EMAIL_CAP_HOURS)
    if connection.vendor == "postgresql":
        # The usual case, allowed, in one round trip; a refusal is explained below.
        with connection.cursor() as cursor:
            cursor.execute(
                _CLAIM_SQL,
                {"email": email, "source": source[:64], "now": now, "since": now - window,
                 "cap": settings.MARKETING_EMAIL_CAP_COUNT},
            )
            row = cursor.fetchone()
        if row is not None:
            return MarketingClaim(allowed=True, ledger_id=row[0])
    if email_suppressed(email=email):
        return MarketingClaim(allowed=False, suppressed=True)
    recent = list(
        MarketingSend.objects.filter(email=email, sent_at__gt=now - window)
        .order_by("-sent_at")
        .values_list("sent_at", flat=True)[: max(settings.MARKETING_EMAIL_CAP_COUNT, 1)]
    )
    if len(recent) >= settings.MARKETING_EMAIL_CAP_COUNT:
        # The slot frees when the oldest of the last CAP_COUNT sends leaves the window.
        return MarketingClaim(allowed=False, retry_at=(recent[-1] + window) if recent else now + window)
    row = MarketingSend.objects.create(email=email, source=source[:64], sent_at=now)
    return MarketingClaim(allowed=True, ledger_id=row.pk)


_CLAIM_MANY_SQL = """
INSERT INTO onboarding_marketingsend (email, source, sent_at)
SELECT wanted.email, wanted.source, %(now)s FROM jsonb_to_recordset(%(wanted)s::jsonb) AS wanted(email text, source text)
WHERE NOT EXISTS (SELECT 1 FROM onboarding_suppression WHERE email = wanted.email)
  AND (SELECT count(*) FROM onboarding_marketingsend AS sent
       WHERE sent.email = wanted.email AND sent.sent_at > %(since)s) < %(cap)s
RETURNING id, email
"""


def marketing_email_claim_many(*, requests: list[tuple[str, str]]) -> list[MarketingClaim]:
    """marketing_email_claim for many (email, source) pairs at once, in the caller's
    transaction: the addresses' advisory locks are taken in one statement, in a fixed order (so
    two batches cannot deadlock), and the allowed claims are written with one INSERT. Same
    invariant as marketing_email_claim."""
    if not requests:
        return []
    emails = [_normalize(email) for email, _ in requests]
    if connection.vendor != "postgresql" or len(set(emails)) != len(emails):
        return [marketing_email_claim(email=email, source=source) for email, source in requests]
    now = timezone.now()
    window = timedelta(hours=settings.MARKETING_EMAIL_CAP_HOURS)
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        keys = sorted({zlib.crc32(email.encode()) - 2**31 for email in emails})
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(4, key)) FROM (SELECT unnest(%s::int[]) AS key ORDER BY 1) AS ordered",
            [keys],
        )
        cursor.execute(
            _CLAIM_MANY_SQL,
            {"wanted": json_rows(["email", "source"], [(email, source[:64]) for email, (_, source) in zip(emails, requests, strict=True)]),
             "now": now, "since": now - window, "cap": settings.MARKETING_EMAIL_CAP_COUNT},
        )
        granted = {email: ledger_id for ledger_id, email in cursor.fetchall()}
    return [
        MarketingClaim(allowed=True, ledger_id=granted[email]) if email in granted
        # Refused: the single claim explains why (suppressed, or when the cap frees a slot).
        else marketing_email_claim(email=email, source=source)
        for email, (_, source) in zip(emails, requests, strict=True)
    ]


def marketing_email_release(*, claim: MarketingClaim) -> None:
    """Give back a claim whose email was not sent after all."""
    if claim.ledger_id is not None:
        MarketingSend.objects.filter(pk=claim.ledger_id).delete()


class _TokenSigner(signing.TimestampSigner):
    """Makes the very tokens signing.dumps(payload, salt=...) makes, which signing.loads()
    checks, at a fifth of the CPU: the HMAC key is derived from the salt and SECRET_KEY once
    per signer (salted_hmac hashes it anew for every token, and a worker signs four tokens per
    email), and the payload's JSON is written without a serializer object. Nothing is
    compressed: the payloads are a few dozen bytes, which zlib does not shorten."""

    def __init__(self, *, salt: str) -> None:
        super().__init__(salt=salt)
        key = hashlib.sha256(force_bytes(self.salt + "signer") + force_bytes(self.key)).digest()
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)
        self._second, self._timestamp = -1, ""

    def timestamp(self) -> str:
        # The same for every token signed within a second.
        second = int(time_now())
        if second != self._second:
            self._second, self._timestamp = second, signing.b62_encode(second)
        return self._timestamp

    def signature(self, value, key=None) -> str:
        if (key is not None and key != self.key) or self.algorithm != "sha256":
            return super().signature(value, key)
        keyed = self._keyed.copy()
        keyed.update(force_bytes(value))
        return signing.b64_encode(keyed.digest()).decode()

    def token(self, payload) -> str:
        """signing.dumps(payload, salt=self.salt): TimestampSigner.sign() and Signer.sign()
        written out, the base64 and the HMAC without the calls between them."""
        if self.algorithm != "sha256":
            return self.sign(signing.b64_encode(_COMPACT_JSON.encode(payload).encode("ascii")).decode())
        value = f"{urlsafe_b64encode(_COMPACT_JSON.encode(payload).encode('ascii')).rstrip(b'=').decode()}{self.sep}{self.timestamp()}"
        return f"{value}{self.sep}{self.signature(value)}"


# signing.JSONSerializer's JSON (json.dumps with these separators makes an encoder per call).
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


@lru_cache(maxsize=16)
def _signer(salt: str, secret_key: str) -> _TokenSigner:
    # Keyed by SECRET_KEY too, so a changed key (a test's settings) makes a new signer.
    return _TokenSigner(salt=salt)


def _token(payload, *, salt: str) -> str:
    return _signer(salt, settings.SECRET_KEY).token(payload)


def unsubscribe_token(email: str) -> str:
    """A signed, non-expiring token naming one address (unsubscribe links must keep working)."""
    return _token(_normalize(email), salt=UNSUBSCRIBE_SALT)


def email_from_unsubscribe_token(token: str) -> str:
    try:
        email = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        raise UnsubscribeInvalid() from None
    if not isinstance(email, str) or "@" not in email:
        raise UnsubscribeInvalid()
    return email


def unsubscribe_url(email: str) -> str:
    return f"{settings.SITE_URL}{reverse('onboarding_unsubscribe', args=[unsubscribe_token(email)])}"


@transaction.atomic
def suppression_add(*, email: str, reason: str = Suppression.Reason.UNSUBSCRIBED, source: str = "") -> Suppression:
    """Put an address on the suppression list. Idempotent: the first reason is kept.

    Invariant: from the commit on, marketing_email_claim refuses the address, so no marketing
    email is sent to it, whichever app sends; active onboarding enrolments of its user exit.
    """
    email = _normalize(email)
    try:
        with transaction.atomic():
            suppression = Suppression.objects.create(email=email, reason=reason, source=source[:64])
    except IntegrityError:
        return Suppression.objects.get(email=email)
    user = User.objects.filter(email__iexact=email).first()
    if user is not None:
        enrolment = Enrolment.objects.select_for_update().filter(user=user, status=Enrolment.Status.ACTIVE).first()
        if enrolment is not None:
            _enrolment_exit(enrolment, reason=Enrolment.ExitReason.UNSUBSCRIBED)
    event_record(
        name=events.MARKETING_UNSUBSCRIBED,
        user=user,
        distinct_id=None if user is not None else f"email:{zlib.crc32(email.encode()):08x}",
        properties={"reason": reason, "source": source},
    )
    return suppression


@transaction.atomic
def unsubscribe(*, token: str, source: str = "link") -> Suppression:
    """One-click unsubscribe (RFC 8058) or the confirm page's button: suppress the token's
    address. A forged or tampered token raises UnsubscribeInvalid and changes nothing."""
    return suppression_add(email=email_from_unsubscribe_token(token), source=source)


# Enrolment --------------------------------------------------------------------------------------


def _steps(sequence_id: int, cache: dict[int, list[Step]] | None = None) -> list[Step]:
    if cache is not None and sequence_id in cache:
        return cache[sequence_id]
    steps = list(Step.objects.filter(sequence_id=sequence_id).order_by("position"))
    if cache is not None:
        cache[sequence_id] = steps
    return steps


_PLANNED_FIELDS = ["status", "next_position", "next_send_at", "finished_at", "last_step_at"]


def _plan_next(
    enrolment: Enrolment, *, after_position: int | None, base: datetime, steps: list[Step] | None = None
) -> bool:
    """Point the enrolment (in memory) at the step after `after_position` (or the first) and set
    its time, out of the recipient's quiet hours; or complete it when there is none (True).
    `base` is when the previous step went out (or was skipped)."""
    steps = steps if steps is not None else _steps(enrolment.sequence_id)
    step = next((step for step in steps if after_position is None or step.position > after_position), None)
    if step is None:
        enrolment.status = Enrolment.Status.COMPLETED
        enrolment.next_send_at = None
        enrolment.finished_at = timezone.now()
        return True
    start = enrolment.enrolled_at if step.delay_from == Step.DelayFrom.ENROLMENT or after_position is None else base
    enrolment.next_position = step.position
    enrolment.next_send_at = quiet_hours_end(start + step.delay, user_zone(enrolment.user))
    return False


def _completed_record(enrolment: Enrolment) -> None:
    event_record(
        name=events.ONBOARDING_COMPLETED,
        user=enrolment.user,
        organization=enrolment.organization,
        properties=_variant_properties(enrolment),
    )


def _variant_properties(enrolment: Enrolment) -> dict[str, str]:
    return {
        "sequence": enrolment.sequence.key if enrolment.sequence_id else "",
        "experiment": enrolment.experiment_key,
        "variation": enrolment.variation_key,
    }


def enrolment_create(*, user: User, organization: Organization | None = None) -> Enrolment | None:
    """Enrol a new user: the onboarding experiment chooses their sequence, or none (holdout).

    Invariants: at most one enrolment per user (a unique constraint; enrolling twice returns the
    first); the experiment exposure is stored once with it; while the experiment is absent or
    not running everyone gets ONBOARDING_DEFAULT_SEQUENCE, or nobody is enrolled if that is
    empty. Never raises into the signup that calls it: a failure is logged and the user simply
    gets no onboarding emails.
    """
    try:
        with transaction.atomic():
            return _enrolment_create(user=user, organization=organization)
    except Exception:  # noqa: BLE001 - onboarding must never break a signup
        logger.exception("could not enrol user %s in onboarding", user.public_id)
        return None


def _enrolment_create(*, user: User, organization: Organization | None) -> Enrolment | None:
    existing = Enrolment.objects.filter(user=user).first()
    if existing is not None:
        return existing
    experiment_key, variation_key, sequence_key = "", "", settings.ONBOARDING_DEFAULT_SEQUENCE or ""
    assignment = experiment_assign(
        experiment_key=settings.ONBOARDING_EXPERIMENT_KEY, user=user, organization=organization
    )
    if assignment is not None:
        experiment_key, variation_key = assignment.experiment_key, assignment.variation_key
        value = assignment.value
        if isinstance(value, dict):
            value = value.get("sequence")
        sequence_key = "" if assignment.holdout or not value else str(value)
    elif not sequence_key:
        return None
    sequence = Sequence.objects.filter(key=sequence_key).first() if sequence_key else None
    if sequence_key and sequence is None:
        # A misconfigured experiment: this user is exposed to the variation but gets no emails.
        # An error, so that operators' alerting hears of it before the analysis is read.
        logger.error(
            "onboarding experiment %s: variation %s names unknown sequence %r; %s gets no onboarding emails",
            experiment_key, variation_key, sequence_key, user.public_id,
        )
    try:
        with transaction.atomic():
            enrolment = Enrolment.objects.create(
                user=user,
                organization=organization,
                sequence=sequence,
                experiment_key=experiment_key,
                variation_key=variation_key,
                status=Enrolment.Status.ACTIVE if sequence is not None else Enrolment.Status.HOLDOUT,
            )
    except IntegrityError:
        return Enrolment.objects.get(user=user)
    if sequence is not None:
        if _plan_next(enrolment, after_position=None, base=enrolment.enrolled_at):
            _completed_record(enrolment)
        enrolment.save(update_fields=_PLANNED_FIELDS)
    event_record(
        name=events.ONBOARDING_ENROLLED,
        user=user,
        organization=organization,
        properties={**_variant_properties(enrolment), "holdout": sequence is None},
    )
    return enrolment


def _enrolment_exit(enrolment: Enrolment, *, reason: str) -> None:
    """Stop a (locked) enrolment for good, recording why."""
    enrolment.status = Enrolment.Status.EXITED
    enrolment.exit_reason = reason
    enrolment.next_send_at = None
    enrolment.finished_at = timezone.now()
    if reason == Enrolment.ExitReason.CONVERTED and enrolment.converted_at is None:
        enrolment.converted_at = timezone.now()
    enrolment.save(update_fields=["status", "exit_reason", "next_send_at", "finished_at", "converted_at"])
    event_record(
        name=events.ONBOARDING_EXITED,
        user=enrolment.user,
        organization=enrolment.organization,
        properties={**_variant_properties(enrolment), "reason": reason},
    )


# The beat tick ----------------------------------------------------------------------------------


@dataclass
class TickReport:
    claimed: int = 0
    enqueued: int = 0
    swept: int = 0
    send_ids: list[int] = field(default_factory=list)


def onboarding_tick(*, limit: int | None = None) -> TickReport:
    """Claim every due step (up to `limit`), create its send row, and hand the sends to the
    worker in chunks.

    Cost grows with what is due, not with who is enrolled: due enrolments are read through the
    partial index on next_send_at. Two ticks at once never claim the same enrolment: rows are
    locked with SKIP LOCKED and their next_send_at is cleared in the same transaction, and a
    send row is unique per (enrolment, step) anyway.
    """
    limit = limit or settings.ONBOARDING_TICK_LIMIT
    report = TickReport()
    now = timezone.now()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            claimed, send_ids, stepless = _claim_due_postgresql(now=now, limit=limit)
        else:
            claimed, send_ids, stepless = _claim_due(now=now, limit=limit)
        _replan_stepless(stepless)
        report.claimed = claimed
        report.enqueued = len(send_ids)
        report.send_ids = send_ids
        _enqueue_sends(send_ids)
    report.swept = sends_sweep()
    return report


# One round trip: lock the due rows (SKIP LOCKED, through the partial index), clear their
# next_send_at, insert their sends (a conflict means the send exists: postponed earlier), and
# return every pending send of the claimed enrolments, and those whose step is gone (deleted
# by staff while they waited for it) or was settled already (staff reordered the steps, so
# the position they wait for names one they were sent).
_CLAIM_DUE_SQL = """
WITH due AS (
    SELECT id, sequence_id, next_position FROM onboarding_enrolment
    WHERE status = 'active' AND next_send_at <= %(now)s
    ORDER BY next_send_at LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE onboarding_enrolment AS enrolment SET next_send_at = NULL
    FROM due WHERE enrolment.id = due.id
    RETURNING enrolment.id, due.sequence_id, due.next_position
), inserted AS (
    INSERT INTO onboarding_send (public_id, enrolment_id, step_id, status, to_email, attempts, last_error,
                                 created_at, open_count, click_count)
    SELECT gen_random_uuid(), claimed.id, step.id, 'pending', '', 0, '', %(now)s, 0, 0
    FROM claimed JOIN onboarding_step AS step
         ON step.sequence_id = claimed.sequence_id AND step.position = claimed.next_position
    ON CONFLICT ON CONSTRAINT send_once_per_step DO NOTHING
    RETURNING id
)
SELECT 'send', id FROM inserted
UNION ALL
SELECT 'send', send.id FROM onboarding_send AS send JOIN claimed ON send.enrolment_id = claimed.id
WHERE send.status = 'pending'
UNION ALL
SELECT 'stepless', claimed.id FROM claimed
WHERE NOT EXISTS (SELECT 1 FROM onboarding_step AS step
                  WHERE step.sequence_id = claimed.sequence_id AND step.position = claimed.next_position)
UNION ALL
SELECT 'stepless', claimed.id FROM claimed
JOIN onboarding_step AS step ON step.sequence_id = claimed.sequence_id AND step.position = claimed.next_position
WHERE EXISTS (SELECT 1 FROM onboarding_send AS send
              WHERE send.enrolment_id = claimed.id AND send.step_id = step.id AND send.status <> 'pending')
UNION ALL
SELECT 'claimed', count(*) FROM claimed
"""


def _claim_due_postgresql(*, now: datetime, limit: int) -> tuple[int, list[int], list[int]]:
    """(how many were claimed, their pending send ids, the claimed enrolments whose step is gone)."""
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_DUE_SQL, {"now": now, "limit": limit})
        rows = cursor.fetchall()
    claimed = next(value for kind, value in rows if kind == "claimed")
    return (
        claimed,
        sorted(value for kind, value in rows if kind == "send"),
        sorted(value for kind, value in rows if kind == "stepless"),
    )


def _claim_due(*, now: datetime, limit: int) -> tuple[int, list[int], list[int]]:
    """The same claim with the ORM, for databases other than PostgreSQL (the SQLite default)."""
    due = list(
        Enrolment.objects.select_for_update(skip_locked=True)
        .filter(status=Enrolment.Status.ACTIVE, next_send_at__lte=now)
        .order_by("next_send_at")
        .values_list("id", "sequence_id", "next_position")[:limit]
    )
    if not due:
        return 0, [], []
    ids = [row[0] for row in due]
    Enrolment.objects.filter(pk__in=ids).update(next_send_at=None)
    step_ids = {
        (sequence_id, position): step_id
        for step_id, sequence_id, position in Step.objects.filter(
            sequence_id__in={row[1] for row in due}
        ).values_list("id", "sequence_id", "position")
    }
    Send.objects.bulk_create(
        [
            Send(enrolment_id=enrolment_id, step_id=step_ids[(sequence_id, position)], created_at=now)
            for enrolment_id, sequence_id, position in due
            if (sequence_id, position) in step_ids
        ],
        ignore_conflicts=True,
    )
    send_ids = list(
        Send.objects.filter(enrolment_id__in=ids, status=Send.Status.PENDING).order_by("id").values_list("id", flat=True)
    )
    settled = set(
        Send.objects.filter(enrolment_id__in=ids, step_id__in=step_ids.values()).exclude(status=Send.Status.PENDING)
        .values_list("enrolment_id", "step_id")
    )
    stepless = sorted(
        enrolment_id for enrolment_id, sequence_id, position in due
        if (sequence_id, position) not in step_ids or (enrolment_id, step_ids[(sequence_id, position)]) in settled
    )
    return len(due), send_ids, stepless


def _replan_stepless(enrolment_ids: list[int]) -> None:
    """Enrolments claimed for a step that no longer exists (staff deleted it while they waited;
    a step that was sent to anyone cannot be deleted), or that they were sent already (staff
    reordered the steps), move on to the step after it, timed from their last email as if it
    had never been there, or complete when none is left. Without this they would stay active
    with no next send time, never to be picked up again."""
    if not enrolment_ids:
        return
    enrolments = Enrolment.objects.select_related("user", "sequence", "organization").filter(
        pk__in=enrolment_ids, status=Enrolment.Status.ACTIVE
    )
    for enrolment in enrolments:
        base = enrolment.last_step_at or enrolment.enrolled_at
        if _plan_next(enrolment, after_position=enrolment.next_position, base=base):
            _completed_record(enrolment)
        enrolment.save(update_fields=_PLANNED_FIELDS)


def _enqueue_sends(send_ids: list[int]) -> None:
    from .tasks import sends_deliver

    chunk = max(settings.ONBOARDING_SEND_CHUNK, 1)
    for start in range(0, len(send_ids), chunk):
        enqueue_on_commit(sends_deliver, send_ids[start : start + chunk])


@transaction.atomic
def sends_sweep() -> int:
    """Repair what a lost worker left behind. A send claimed (sending) longer than
    ONBOARDING_STALE_MINUTES ago may or may not have gone out: it is marked unknown, never sent
    again, and its sequence moves on. A pending send whose enrolment is not scheduled (its task
    was lost) is scheduled again for the next tick."""
    stale = timezone.now() - timedelta(minutes=settings.ONBOARDING_STALE_MINUTES)
    repaired = 0
    lost = list(
        Send.objects.filter(status=Send.Status.SENDING, claimed_at__lt=stale).values_list("enrolment_id", "id")[:500]
    )
    for enrolment_id, send_id in lost:
        enrolment = Enrolment.objects.select_for_update(skip_locked=True).filter(pk=enrolment_id).first()
        if enrolment is not None and _settle_unknown(enrolment, send_id=send_id):
            repaired += 1
    repaired += Enrolment.objects.filter(
        status=Enrolment.Status.ACTIVE,
        next_send_at__isnull=True,
        pk__in=Send.objects.filter(status=Send.Status.PENDING, created_at__lt=stale).values("enrolment_id"),
    ).update(next_send_at=timezone.now())
    return repaired


def _waits_for(status: str, next_send_at: datetime | None, next_position: int | None, position: int) -> bool:
    """An enrolment (its status, next send time and next position) is still waiting for the send
    of the step at `position`: active, claimed for it (no next send time), and at it. One the
    sweep or another worker moved on since must not be moved again from that step."""
    return status == Enrolment.Status.ACTIVE and next_send_at is None and next_position == position


def _settle_unknown(enrolment: Enrolment, *, send_id: int, error: str = "") -> bool:
    """With the enrolment locked: a send that may or may not have gone out (a lost worker, a
    connection lost after the message was written) is marked unknown, never sent again, keeps
    its frequency-cap slot, and its sequence moves on. False when it was no longer sending."""
    send = Send.objects.select_for_update().filter(pk=send_id, status=Send.Status.SENDING).select_related("step").first()
    if send is None:
        return False
    send.status = Send.Status.UNKNOWN
    send.last_error = error[:2000]
    send.save(update_fields=["status", "last_error"])
    if _waits_for(enrolment.status, enrolment.next_send_at, enrolment.next_position, send.step.position):
        enrolment.last_step_at = send.claimed_at
        if _plan_next(enrolment, after_position=send.step.position, base=send.claimed_at or timezone.now()):
            _completed_record(enrolment)
        enrolment.save(update_fields=_PLANNED_FIELDS)
    return True


def _record_unknown(send: Send, error: Exception) -> None:
    with transaction.atomic():
        enrolment = Enrolment.objects.select_for_update().filter(pk=send.enrolment_id).first()
        if enrolment is not None:
            _settle_unknown(enrolment, send_id=send.pk, error=f"{type(error).__name__}: {error}")
    logger.warning("onboarding send %s may or may not have gone out, not sent again: %s", send.pk, error)


# Sending ----------------------------------------------------------------------------------------


@dataclass
class Rendered:
    subject: str
    text: str
    html: str


def render_step(step: Step, context: dict) -> Rendered:
    """Subject, text and HTML of a step for one recipient's context (also the admin preview)."""
    subject = _render(step.subject, context, autoescape=False)
    return Rendered(
        subject=" ".join(subject.split()),
        text=_render(step.text_body, context, autoescape=False),
        html=_render(step.html_body, context, autoescape=True),
    )


# The context variables that are plain text for every recipient: a template that only prints
# them ({{ first_name }}, no filter, no tag) is its text with them put in their places.
_TEXT_VARIABLES = frozenset(
    {"first_name", "email", "organization_name", "product", "edition", "app_url", "invite_url", "billing_url", "unsubscribe_url"}
)


def _render(source: str, context: dict, *, autoescape: bool) -> str:
    """What Template(source).render(Context(context, autoescape=autoescape)) returns.

    A template made of text and variables of the context, with or without filters (most
    steps), is split once per process into its pieces and rendered by joining them: a bare
    text variable is the recipient's value, escaped for HTML as Django escapes it
    (conditional_escape); a variable with filters (or one that is not text) is rendered by
    its own node, which reads only the variables and the autoescape, use_l10n and use_tz
    flags of what it is given. Any other template (tags, dotted lookups, literals, unknown
    names) is rendered by Django, and so is a template whose pieces raise. Creating the
    Contexts and walking the nodes cost more than the rest of an email."""
    pieces = _pieces(source)
    if pieces is not None:
        rendered = _render_pieces(pieces, context, autoescape=autoescape)
        if rendered is not None:
            # Safe, as Django's render returns it (the admin preview escapes the subject and text itself).
            return SafeString(rendered)
    return _template(source).render(Context(context, autoescape=autoescape))


class _VariableContext(dict):
    """The variables of a recipient's context and what a VariableNode reads of a Context
    besides them, with Context's defaults (no Context with its stacks per email)."""

    use_l10n = None
    use_tz = None
    template = None

    def __init__(self, variables: dict, *, autoescape: bool) -> None:
        super().__init__(variables)
        self.autoescape = autoescape


def _render_pieces(pieces: tuple[str | VariableNode, ...], context: dict, *, autoescape: bool) -> str | None:
    """The pieces joined, or None when one of them cannot be rendered here."""
    # What conditional_escape() returns for a plain str (no __html__): html.escape's text,
    # without keep_lazy's wrapper around Django's escape() (a third of the rendering's CPU).
    escape = html.escape if autoescape else str
    variables: _VariableContext | None = None
    out = []
    for index, piece in enumerate(pieces):
        if index % 2 == 0:
            out.append(piece)
        elif type(piece) is str:
            value = context.get(piece)
            if type(value) is not str:
                return None
            out.append(escape(value))
        else:
            if piece.filter_expression.var.lookups[0] not in context:
                return None  # Django decides: string_if_invalid, or an error
            if variables is None:
                variables = _VariableContext(context, autoescape=autoescape)
            try:
                out.append(piece.render(variables))
            except Exception:  # noqa: BLE001 - Django's own render says what is wrong, or renders it
                return None
    return "".join(out)


@lru_cache(maxsize=512)
def _pieces(source: str) -> tuple[str | VariableNode, ...] | None:
    """The template's text and variables, alternating (text first, text last): the name of
    a bare text variable, else the VariableNode of one context variable (with filters, or a
    variable that is not text); or None when the template holds anything else: a tag, a
    lookup with a dot, a literal, a translated string."""
    pieces: list[str | VariableNode] = [""]
    for node in _template(source).nodelist:
        if type(node) is TextNode:
            pieces[-1] += node.s
            continue
        variable = node.filter_expression.var if type(node) is VariableNode else None
        if (
            not isinstance(variable, Variable)
            or variable.literal is not None
            or variable.translate
            or variable.message_context
            or variable.lookups is None
            or len(variable.lookups) != 1
        ):
            return None
        bare = not node.filter_expression.filters and variable.lookups[0] in _TEXT_VARIABLES
        pieces.extend([variable.lookups[0] if bare else node, ""])
    return tuple(pieces)


def sample_context() -> dict:
    """What the admin preview renders a step with."""
    return {
        "first_name": "Ada",
        "email": "ada@example.com",
        "organization_name": "Acme Rockets",
        "product": "Tracker",
        "edition": "Standard",
        "trial_ends_at": timezone.now() + timedelta(days=14),
        "app_url": f"{settings.SITE_URL}/app/",
        "invite_url": f"{settings.SITE_URL}{reverse('members')}",
        "billing_url": f"{settings.SITE_URL}{reverse('billing')}",
        "unsubscribe_url": f"{settings.SITE_URL}{reverse('onboarding_unsubscribe', args=['sample'])}",
    }


_STAND_IN = "STAND-IN"  # where the signed token goes, while a link's route is resolved


def _around_token(route: str) -> tuple[str, str]:
    # Tokens are URL-safe base64 with ':' and '.', which reverse() never quotes, so the link
    # of any token is the route's link for _STAND_IN with the token in its place.
    prefix, suffix = reverse(route, args=[_STAND_IN]).split(_STAND_IN)
    return f"{settings.SITE_URL}{prefix}", suffix


@dataclass(frozen=True)
class _Links:
    """The links and names every email of a chunk shares, resolved once per chunk: reverse()
    costs more than signing the token that goes into a link."""

    app_url: str
    invite_url: str
    billing_url: str
    unsubscribe: tuple[str, str]
    click: tuple[str, str]
    open: tuple[str, str]
    hosts: frozenset[str]
    message_id_domain: str
    own: dict[str, bool] = field(default_factory=dict)  # URL -> on one of our hosts
    hrefs: dict[str, str | None] = field(default_factory=dict)  # href -> its URL if ours (own_href)

    @classmethod
    def resolve(cls) -> _Links:
        return cls(
            app_url=f"{settings.SITE_URL}/app/",
            invite_url=f"{settings.SITE_URL}{reverse('members')}",
            billing_url=f"{settings.SITE_URL}{reverse('billing')}",
            unsubscribe=_around_token("onboarding_unsubscribe"),
            click=_around_token("onboarding_click"),
            open=_around_token("onboarding_open"),
            hosts=frozenset(link_hosts()),
            message_id_domain=_message_id_domain(),
        )

    def unsubscribe_url(self, email: str) -> str:
        """The link unsubscribe_url(email) makes, with the route resolved once."""
        return f"{self.unsubscribe[0]}{unsubscribe_token(email)}{self.unsubscribe[1]}"

    def open_pixel_url(self, send: Send) -> str:
        """The link open_pixel_url(send) makes, with the route resolved once."""
        return f"{self.open[0]}{_open_token(send)}{self.open[1]}"

    def is_own(self, url: str) -> bool:
        own = self.own.get(url)
        if own is None:
            own = self.own[url] = url_has_allowed_host_and_scheme(url, allowed_hosts=set(self.hosts), require_https=False)
        return own

    def own_href(self, href: str) -> str | None:
        """The URL of an href attribute's value (HTML-escaped) when it is on one of our hosts,
        else None; once per chunk for each href (the steps' links are the same for everyone)."""
        if href not in self.hrefs:
            url = html.unescape(href)
            self.hrefs[href] = url if self.is_own(url) else None
        return self.hrefs[href]

    def tracked_href(self, send: Send, url: str) -> str:
        """html.escape(tracked_url(send, url)), with the route resolved once: a token has
        nothing to escape (URL-safe base64 and ':'), so the route's parts around it are
        escaped once."""
        prefix, suffix = self.escaped_click
        return f"{prefix}{_click_token(send, url)}{suffix}"

    @cached_property
    def escaped_click(self) -> tuple[str, str]:
        return html.escape(self.click[0]), html.escape(self.click[1])


def _recipient_context(enrolment: Enrolment, *, trial: Subscription | None, links: _Links, unsubscribe: str) -> dict:
    """What a step's templates see: plain values only, the very names sample_context() has (no
    model instance, whose attributes and relations would reach the password hash and other
    tenants' rows; and what the preview shows is what is sent)."""
    user, organization = enrolment.user, enrolment.organization
    return {
        "first_name": user.first_name or user.email.split("@", 1)[0],
        "email": user.email,
        "organization_name": organization.name if organization is not None else "",
        "product": trial.product.name if trial is not None else "",
        "edition": trial.edition.name if trial is not None else "",
        "trial_ends_at": trial.trial_ends_at if trial is not None else None,
        "app_url": links.app_url,
        "invite_url": links.invite_url,
        "billing_url": links.billing_url,
        "unsubscribe_url": unsubscribe,
    }


def link_hosts() -> set[str]:
    hosts = {urlsplit(settings.SITE_URL).netloc}
    hosts.update(settings.ONBOARDING_LINK_HOSTS)
    return {host for host in hosts if host}


def _click_token(send: Send, url: str) -> str:
    return _token({"s": str(send.public_id), "u": url}, salt=CLICK_SALT)


def _open_token(send: Send) -> str:
    return _token(str(send.public_id), salt=OPEN_SALT)


def tracked_url(send: Send, url: str) -> str:
    return f"{settings.SITE_URL}{reverse('onboarding_click', args=[_click_token(send, url)])}"


def open_pixel_url(send: Send) -> str:
    return f"{settings.SITE_URL}{reverse('onboarding_open', args=[_open_token(send)])}"


_HREF = re.compile(r'href="(https?://[^"]+)"', re.IGNORECASE)


def _track_links(send: Send, body: str, *, unsubscribe: str, links: _Links) -> str:
    """Rewrite links to our own hosts as signed click links; other links stay as they are."""

    def rewrite(match: re.Match) -> str:
        url = links.own_href(match.group(1))
        if url is None or url == unsubscribe:
            return match.group(0)
        return f'href="{links.tracked_href(send, url)}"'

    return _HREF.sub(rewrite, body)


def _message_id_domain() -> str:
    return urlsplit(settings.SITE_URL).hostname or "flywheel.localhost"


def build_message(send: Send, rendered: Rendered, *, to: str) -> EmailMultiAlternatives:
    """The email of one send: both bodies, the unsubscribe link and headers, the open pixel."""
    links = _Links.resolve()
    return _compose(send, rendered, to=to, links=links, unsubscribe=links.unsubscribe_url(to)).django_message()


def _compose(send: Send, rendered: Rendered, *, to: str, links: _Links, unsubscribe: str) -> OutgoingEmail:
    """build_message with the chunk's links resolved, and the recipient's unsubscribe link
    (signed once, for the context and the email)."""
    text = f"{rendered.text.rstrip()}\n\n--\nYou get these emails because you started a Flywheel trial.\nUnsubscribe: {unsubscribe}\n"
    body = _track_links(send, rendered.html, unsubscribe=unsubscribe, links=links)
    # On lines of their own: a body line over 998 bytes makes the whole HTML part
    # quoted-printable, and the signed links would lengthen the step's own last line.
    footer = (
        '\n<p style="font-size:12px;color:#667">You get these emails because you started a Flywheel trial. '
        f'<a href="{html.escape(unsubscribe)}">Unsubscribe</a></p>\n'
        f'<img src="{html.escape(links.open_pixel_url(send))}" width="1" height="1" alt="">\n'
    )
    body = body.replace("</body>", footer + "</body>") if "</body>" in body else body + footer
    return OutgoingEmail(
        subject=rendered.subject,
        text=text,
        html=body,
        from_email=settings.ONBOARDING_FROM_EMAIL,
        to=to,
        headers={
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            # Fixed per send: should a message ever go out twice, mail systems drop the copy.
            "Message-ID": f"<{send.public_id.hex}@{links.message_id_domain}>",
            "X-Flywheel-Sequence": send.enrolment.sequence.key if send.enrolment.sequence_id else "",
        },
    )


def _transition(send: Send, *, source: str, target: str, **fields) -> bool:
    """Move the send from `source` to `target`; False if it was no longer in `source`."""
    return Send.objects.filter(pk=send.pk, status=source).update(status=target, **fields) == 1


def _decide(send: Send, *, now: datetime, paid: set[int], skip: bool, steps: dict[int, list[Step]]) -> str:
    """With the enrolment locked: act on every reason not to send now and say which, or
    "send". The rare outcomes here write row by row; the usual one is batched by the caller."""
    enrolment = send.enrolment
    if send.status != Send.Status.PENDING:
        return "done"  # sent, skipped or claimed by an earlier run of the task
    if enrolment.next_send_at is not None and enrolment.next_send_at > now:
        return "not due"  # a stale copy of the task: the step was postponed since
    if enrolment.status != Enrolment.Status.ACTIVE:
        _transition(send, source=Send.Status.PENDING, target=Send.Status.EXITED)
        return "exited"
    user, organization = enrolment.user, enrolment.organization
    if enrolment.sequence.exit_on_conversion and organization is not None and organization.pk in paid:
        if not _transition(send, source=Send.Status.PENDING, target=Send.Status.EXITED):
            return "done"
        _enrolment_exit(enrolment, reason=Enrolment.ExitReason.CONVERTED)
        return "converted"
    if skip:
        if not _transition(send, source=Send.Status.PENDING, target=Send.Status.SKIPPED):
            return "done"
        event_record(
            name=events.ONBOARDING_EMAIL_SKIPPED,
            user=user,
            organization=organization,
            properties={**_variant_properties(enrolment), "step": send.step.position, "condition": send.step.skip_condition},
        )
        enrolment.last_step_at = now
        if _plan_next(enrolment, after_position=send.step.position, base=now, steps=_steps(enrolment.sequence_id, steps)):
            _completed_record(enrolment)
        enrolment.save(update_fields=_PLANNED_FIELDS)
        return "skipped"
    later = quiet_hours_end(now, user_zone(user))
    if later > now:
        enrolment.next_send_at = later
        enrolment.save(update_fields=["next_send_at"])
        return "quiet"
    return "send"


def _claim_sends(sends: list[Send], *, now: datetime) -> set[int]:
    """pending -> sending for these sends, in one statement; the ids that moved."""
    if not sends:
        return set()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE onboarding_send AS send SET status = 'sending', claimed_at = %s, to_email = claim.email "
                "FROM jsonb_to_recordset(%s::jsonb) AS claim(id bigint, email text) "
                "WHERE send.id = claim.id AND send.status = 'pending' RETURNING send.id",
                [now, json_rows(["id", "email"], ((send.pk, send.enrolment.user.email) for send in sends))],
            )
            return {row[0] for row in cursor.fetchall()}
    return {
        send.pk
        for send in sends
        if _transition(send, source=Send.Status.PENDING, target=Send.Status.SENDING, claimed_at=now, to_email=send.enrolment.user.email)
    }


# What sending reads of a send, its enrolment, user and organization: reading and converting
# every column of the four rows (the password hash, a dozen timestamps) cost more than the rest
# of the chunk's statements. A field left out is read with a query of its own when used, so
# tests/onboarding/test_chunk_queries.py checks that a chunk's queries do not grow with it.
_SEND_FIELDS = (
    "public_id", "enrolment_id", "step_id", "status",
    *(f"enrolment__{name}" for name in (
        "user_id", "organization_id", "sequence_id", "experiment_key", "variation_key", "status", "exit_reason",
        "next_position", "next_send_at", "enrolled_at", "last_step_at", "converted_at", "finished_at",
    )),
    "enrolment__user__email", "enrolment__user__first_name", "enrolment__user__time_zone", "enrolment__user__public_id",
    "enrolment__organization__name", "enrolment__organization__public_id",
)


def _prepare_many(send_ids: list[int], steps: dict[int, list[Step]]) -> dict[int, str | tuple[Send, MarketingClaim]]:
    """Decide for every send of a chunk, with their enrolments locked (in id order), and claim
    those that go out now (pending -> sending, plus a frequency cap slot each), in one
    transaction committed before any SMTP call.

    Every writer of a send locks its enrolment first, so the enrolment locks order them. The
    send's own columns come from the same statement and may predate the lock, so every change
    of a send's status is a conditional update from the status it must have (_transition)."""
    results: dict[int, str | tuple[Send, MarketingClaim]] = {send_id: "missing" for send_id in send_ids}
    with transaction.atomic():
        sends = list(
            Send.objects.select_related("enrolment__user", "enrolment__organization")
            .only(*_SEND_FIELDS)
            .select_for_update(of=("enrolment",))
            .filter(pk__in=send_ids)
            .order_by("enrolment_id", "id")
        )
        _attach_steps(sends, steps)
        now = timezone.now()
        paid = selectors.organizations_paid(
            organization_ids={send.enrolment.organization_id for send in sends if send.enrolment.organization_id}
        )
        skip = _skip_conditions_met(sends)
        ready: list[Send] = []
        for send in sends:
            outcome = _decide(send, now=now, paid=paid, skip=send.pk in skip, steps=steps)
            if outcome == "send":
                ready.append(send)
            else:
                results[send.pk] = outcome
        claimed_ids = _claim_sends(ready, now=now)
        ready = [send for send in ready if send.pk in claimed_ids]
        for send in sends:
            if send.pk not in claimed_ids and results[send.pk] == "missing":
                results[send.pk] = "done"
        claims = marketing_email_claim_many(
            requests=[(send.enrolment.user.email, f"onboarding:{send.enrolment.sequence.key}") for send in ready]
        )
        for send, claim in zip(ready, claims, strict=True):
            enrolment = send.enrolment
            if claim.suppressed:
                Send.objects.filter(pk=send.pk).update(status=Send.Status.SUPPRESSED, claimed_at=None)
                _enrolment_exit(enrolment, reason=Enrolment.ExitReason.UNSUBSCRIBED)
                results[send.pk] = "suppressed"
            elif not claim.allowed:
                Send.objects.filter(pk=send.pk).update(status=Send.Status.PENDING, claimed_at=None)
                enrolment.next_send_at = quiet_hours_end(claim.retry_at or now + timedelta(hours=1), user_zone(enrolment.user))
                enrolment.save(update_fields=["next_send_at"])
                results[send.pk] = "capped"
            else:
                send.status, send.claimed_at, send.to_email = Send.Status.SENDING, now, enrolment.user.email
                results[send.pk] = (send, claim)
    return results


def _attach_steps(sends: list[Send], steps: dict[int, list[Step]]) -> None:
    """Give each send its step and each enrolment its sequence from one query for the whole
    chunk (a few sequences, their steps' long template texts read once, not once per send),
    and keep the steps for planning the next ones."""
    wanted = {send.enrolment.sequence_id for send in sends if send.enrolment.sequence_id} - steps.keys()
    if wanted:
        for sequence_id in wanted:
            steps[sequence_id] = []
        for step in Step.objects.select_related("sequence").filter(sequence_id__in=wanted).order_by("sequence_id", "position"):
            steps[step.sequence_id].append(step)
    by_id = {step.pk: step for sequence_steps in steps.values() for step in sequence_steps}
    for send in sends:
        step = by_id.get(send.step_id)
        if step is None:  # not a step of the enrolment's sequence: never made so, read it anyway
            continue
        send.step = step
        if send.enrolment.sequence_id == step.sequence_id:
            send.enrolment.sequence = step.sequence


def _skip_conditions_met(sends: list[Send]) -> set[int]:
    """The sends whose step's skip condition holds for their recipient, a query or two per
    condition for the whole chunk."""
    by_condition: dict[str, list[Send]] = {}
    for send in sends:
        if send.step.skip_condition and send.status == Send.Status.PENDING:
            by_condition.setdefault(send.step.skip_condition, []).append(send)
    met: set[int] = set()
    for condition, conditioned in by_condition.items():
        users = selectors.skip_conditions_met(
            condition, recipients=[(send.enrolment.user_id, send.enrolment.organization_id) for send in conditioned]
        )
        met.update(send.pk for send in conditioned if send.enrolment.user_id in users)
    return met


@lru_cache(maxsize=512)
def _template(source: str) -> Template:
    """Compiled once per process for each template text (a changed text is a new key)."""
    return Template(source)


def _record_sent(sent: list[Send], steps: dict[int, list[Step]]) -> None:
    """Sent: each enrolment still active moves to its next step, each send is marked sent, and
    the events are stored, in one transaction of a few statements for the whole chunk."""
    if not sent:
        return
    now = timezone.now()
    with transaction.atomic():
        # Enrolments first (in id order), then the sends: the one lock order. An enrolment
        # moves on only if it is still active (an unsubscribe during the SMTP call wins) and
        # still waiting for this step: a chunk slower than ONBOARDING_STALE_MINUTES may find the
        # sweep moved it on already, and another worker sent the next step since. One deleted
        # meanwhile (its user or organization) is left out of the events.
        locked = {
            enrolment_id: (status, next_send_at, next_position)
            for enrolment_id, status, next_send_at, next_position in Enrolment.objects.select_for_update()
            .filter(pk__in=[send.enrolment_id for send in sent])
            .order_by("id")
            .values_list("id", "status", "next_send_at", "next_position")
        }
        sent = [send for send in sent if send.enrolment_id in locked]
        moved, completed = [], []
        for send in sent:
            enrolment = send.enrolment
            if not _waits_for(*locked[enrolment.pk], send.step.position):
                continue
            enrolment.last_step_at = now
            if _plan_next(enrolment, after_position=send.step.position, base=now, steps=_steps(enrolment.sequence_id, steps)):
                completed.append(enrolment)
            moved.append(enrolment)
        _enrolments_save_planned(moved)
        # A send the sweep gave up on as unknown meanwhile did go out after all.
        Send.objects.filter(pk__in=[send.pk for send in sent], status__in=(Send.Status.SENDING, Send.Status.UNKNOWN)).update(
            status=Send.Status.SENT, sent_at=now, last_error="", attempts=F("attempts") + 1
        )
        events_store(
            events=[
                {
                    "name": events.ONBOARDING_EMAIL_SENT,
                    "user": send.enrolment.user,
                    "organization": send.enrolment.organization,
                    "properties": {**_variant_properties(send.enrolment), "step": send.step.position},
                }
                for send in sent
            ]
            + [
                {
                    "name": events.ONBOARDING_COMPLETED,
                    "user": enrolment.user,
                    "organization": enrolment.organization,
                    "properties": _variant_properties(enrolment),
                }
                for enrolment in completed
            ]
        )


def _enrolments_save_planned(enrolments: list[Enrolment]) -> None:
    """Write the planned fields of many enrolments in one statement (Django's bulk_update
    builds a CASE per field and row, which costs more than the sending on PostgreSQL)."""
    if not enrolments:
        return
    if connection.vendor != "postgresql":
        Enrolment.objects.bulk_update(enrolments, _PLANNED_FIELDS)
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE onboarding_enrolment AS enrolment SET status = planned.status, "
            "next_position = planned.next_position, next_send_at = planned.next_send_at, "
            "finished_at = planned.finished_at, last_step_at = planned.last_step_at "
            "FROM jsonb_to_recordset(%s::jsonb) AS planned(id bigint, status text, next_position int, "
            "next_send_at timestamptz, finished_at timestamptz, last_step_at timestamptz) "
            "WHERE enrolment.id = planned.id",
            [
                json_rows(
                    ["id", *_PLANNED_FIELDS],
                    (
                        (e.pk, e.status, e.next_position, *(timestamp_text(moment) for moment in (e.next_send_at, e.finished_at, e.last_step_at)))
                        for e in enrolments
                    ),
                )
            ],
        )


def _record_failed(send: Send, claim: MarketingClaim, error: Exception) -> None:
    with transaction.atomic():
        # Enrolment first, then the send: the one lock order. Only a send still claimed goes
        # back to pending (the sweep may have settled it): then its step is tried again later.
        enrolment = Enrolment.objects.select_for_update().filter(pk=send.enrolment_id).first()
        moved_back = _transition(
            send, source=Send.Status.SENDING, target=Send.Status.PENDING, claimed_at=None,
            attempts=F("attempts") + 1, last_error=f"{type(error).__name__}: {error}"[:2000],
        )
        if not moved_back:
            return
        if enrolment is not None and enrolment.status == Enrolment.Status.ACTIVE and enrolment.next_send_at is None:
            Enrolment.objects.filter(pk=enrolment.pk).update(
                next_send_at=timezone.now() + timedelta(minutes=settings.ONBOARDING_RETRY_MINUTES)
            )
        marketing_email_release(claim=claim)
    logger.warning("onboarding send %s failed, tried again later: %s", send.pk, error)


def sends_deliver(*, send_ids: list[int], mail_connection=None) -> dict[str, int]:
    """Deliver a chunk of onboarding sends, each exactly once, and move their enrolments on.

    Invariants: a send row (unique per enrolment and step) is claimed (pending -> sending) in a
    committed transaction before its SMTP call, so a retried or duplicated task finds it claimed
    or sent and does nothing; exits (unsubscribed, converted), skip conditions, quiet hours and
    the shared frequency cap are checked with the enrolments locked. A failed SMTP call puts
    its send back to pending and the step is tried again ONBOARDING_RETRY_MINUTES later; one
    send's failure never stops the others. The chunk shares its SMTP connections
    (ONBOARDING_SMTP_CONNECTIONS) and a few statements per transaction, so the cost per email
    is the SMTP call, not the bookkeeping.
    Returns how many sends ended how, by word.
    """
    return _deliver(send_ids, mail_connection)[1]


def send_deliver(*, send_id: int, mail_connection=None) -> str:
    """One send (see sends_deliver); returns what happened to it, as a word."""
    return _deliver([send_id], mail_connection)[0][send_id]


def _deliver(send_ids: list[int], mail_connection) -> tuple[dict[int, str], dict[str, int]]:
    outcomes: dict[int, str] = {}
    if not send_ids:
        return outcomes, {}
    steps: dict[int, list[Step]] = {}
    prepared = _prepare_many(list(dict.fromkeys(send_ids)), steps)
    to_send = [value for value in prepared.values() if not isinstance(value, str)]
    outcomes.update({send_id: value for send_id, value in prepared.items() if isinstance(value, str)})
    sent: list[Send] = []
    if to_send:
        links = _Links.resolve()
        trials = selectors.organization_trials(
            organization_ids={send.enrolment.organization_id for send, _ in to_send if send.enrolment.organization_id}
        )

        def failed(item: tuple[Send, MarketingClaim], error: Exception) -> None:
            send, claim = item
            if isinstance(error, OutcomeUnknown):  # it may have gone out: never again
                _record_unknown(send, error)
                outcomes[send.pk] = "unknown"
                return
            _record_failed(send, claim, error)
            outcomes[send.pk] = "failed"

        def delivered(item: tuple[Send, MarketingClaim]) -> None:
            send, _ = item
            sent.append(send)
            outcomes[send.pk] = "sent"

        sender = Sender(
            mail_connection, connections=settings.ONBOARDING_SMTP_CONNECTIONS, keep_seconds=settings.ONBOARDING_SMTP_KEEP_SECONDS
        )
        try:
            sender.open()
        except OSError as error:  # the connection could not be opened: none of them went out
            for send, claim in to_send:
                failed((send, claim), error)
        else:
            try:
                sender.send_all(
                    to_send, compose=lambda item: _email_of(item[0], links=links, trials=trials), sent=delivered, failed=failed
                )
            finally:
                try:
                    sender.close()
                finally:
                    # Recorded even if recording a failure or closing raised: what the server accepted is sent.
                    _record_sent(sent, steps)
    counts: dict[str, int] = {}
    for outcome in outcomes.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    return outcomes, counts


def _email_of(send: Send, *, links: _Links, trials: dict[int, Subscription]) -> OutgoingEmail:
    enrolment = send.enrolment
    unsubscribe = links.unsubscribe_url(send.to_email)
    context = _recipient_context(
        enrolment, trial=trials.get(enrolment.organization_id), links=links, unsubscribe=unsubscribe
    )
    return _compose(send, render_step(send.step, context), to=send.to_email, links=links, unsubscribe=unsubscribe)


# Opens and clicks --------------------------------------------------------------------------------


def _send_by_public_id(public_id: str) -> Send | None:
    try:
        return Send.objects.select_related("enrolment__user", "enrolment__organization", "enrolment__sequence").filter(public_id=public_id).first()
    except (ValueError, TypeError, ValidationError):  # not a UUID
        return None


@transaction.atomic
def send_open_record(*, token: str) -> Send | None:
    """Count an open (the pixel was loaded); the first one is an analytics event. A bad token
    records nothing."""
    try:
        public_id = signing.loads(token, salt=OPEN_SALT)
    except signing.BadSignature:
        return None
    send = _send_by_public_id(public_id)
    if send is None:
        return None
    now = timezone.now()
    first = Send.objects.filter(pk=send.pk, opened_at__isnull=True).update(opened_at=now)
    Send.objects.filter(pk=send.pk).update(open_count=F("open_count") + 1)
    if first:
        enrolment = send.enrolment
        event_record(
            name=events.ONBOARDING_EMAIL_OPENED,
            user=enrolment.user,
            organization=enrolment.organization,
            properties={**_variant_properties(enrolment), "step": send.step.position},
        )
    return send


@transaction.atomic
def send_click_record(*, token: str) -> str:
    """The destination of a signed click link, after counting the click (an analytics event).

    Refused (LinkInvalid) when the token is forged or tampered with, or when its URL is not
    on one of our own hosts: the redirect can never be used to send people elsewhere.
    """
    try:
        payload = signing.loads(token, salt=CLICK_SALT)
    except signing.BadSignature:
        raise LinkInvalid() from None
    url = payload.get("u") if isinstance(payload, dict) else None
    if not isinstance(url, str) or not url_has_allowed_host_and_scheme(url, allowed_hosts=link_hosts(), require_https=False) or not url.lower().startswith(("http://", "https://")):
        raise LinkInvalid("This link does not lead to a Flywheel page.")
    send = _send_by_public_id(payload.get("s", ""))
    if send is not None:
        now = timezone.now()
        Send.objects.filter(pk=send.pk, clicked_at__isnull=True).update(clicked_at=now)
        Send.objects.filter(pk=send.pk).update(click_count=F("click_count") + 1)
        enrolment = send.enrolment
        event_record(
            name=events.ONBOARDING_EMAIL_CLICKED,
            user=enrolment.user,
            organization=enrolment.organization,
            properties={**_variant_properties(enrolment), "step": send.step.position, "url": url},
        )
    return url
