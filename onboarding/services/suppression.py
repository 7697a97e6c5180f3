"""Suppression and the shared marketing frequency cap, for every app that sends marketing email;
unsubscribe tokens and one-click unsubscribe.

The frequency cap serializes per address with a transaction-scoped advisory lock.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from common.json_rows import json_rows
from experiments.services import event_record

from .. import events
from ..exceptions import UnsubscribeInvalid
from ..models import Enrolment, MarketingSend, Suppression
from .enrolments import enrolment_exit
from .tokens import UNSUBSCRIBE_SALT, token_sign


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


def unsubscribe_token(email: str) -> str:
    """A signed, non-expiring token naming one address (unsubscribe links must keep working)."""
    return token_sign(_normalize(email), salt=UNSUBSCRIBE_SALT)


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
            enrolment_exit(enrolment, reason=Enrolment.ExitReason.UNSUBSCRIBED)
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
