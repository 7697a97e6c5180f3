"""Who is calling the kit: the products' signing secrets, the token a product's server mints for
its signed-in user, its exchange for a session credential, and the `kit_endpoint` decorator
that reads that credential on every other kit endpoint (docs/in-product.md, "The token").

The token is a JWT signed HS256 with a secret Flywheel issued to the product (KitSecret; the
header's `kid` names it). It is checked whole before anything is written: signature, audience,
issuer (the key's product), lifetime (at most KIT_TOKEN_MAX_SECONDS), expiry, the shape of
every claim; then the request's origin must be one of the product's, and the user a member of
the organization. Only then, in one transaction, is its `jti` spent (a replay is refused by
the unique constraint) and the person's kit session joined or started. A refusal writes
nothing.

The session credential is a Django-signed, timestamped value naming the kit session, the
product and the origin it was issued for; it lives KIT_SESSION_SECONDS. `kit_endpoint` checks
it (and the origin, and that the membership still exists) and hands the view a KitCaller.

Import order inside the app: models, exceptions, caller, cors -> identity -> identity_views.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import wraps

import jwt
from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import F, FilteredRelation, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from accounts.models import Membership
from catalog.models import Product
from common.exceptions import (
    FlywheelError,
    NotFound,
    PermissionDenied,
)

from .caller import KitCaller
from .cors import (
    cors_allow,
    cors_preflight,
    kit_json_error,
    origin_allowed_for,
    origin_allowed_for_any,
    origin_refusal,
    request_origin,
)
from .exceptions import (
    KitBadRequest,
    KitError,
    KitForbidden,
    KitMethodNotAllowed,
    KitOriginRefused,
    KitSessionExpired,
    KitTokenRefused,
)
from .models import KitSecret, KitSession, KitTokenUse

AUDIENCE = "flywheel-kit"
ALGORITHM = "HS256"
LEEWAY_SECONDS = 30
REQUIRED_CLAIMS = ("iss", "aud", "sub", "org", "iat", "exp", "jti")
# A kit token is a few hundred characters; anything far longer is not one.
TOKEN_MAX_LENGTH = 4096
JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
KEY_ID_SHAPE = re.compile(r"[a-z0-9_-]{1,64}")
JTI_SHAPE = re.compile(r"[\x21-\x7e]{16,128}")  # printable ASCII, no space
# Seconds since 1970 beyond this (the year 5138) are no date a token carries.
NUMERIC_DATE_LIMIT = 10**11
SECRET_PREFIX = "fwk_"  # noqa: S105 - the prefix of every issued secret, not a secret
CREDENTIAL_SALT = "inproduct.kit-session"
CREDENTIAL_MAX_LENGTH = 1024
# A kit call moves the session's last_seen_at at most this often (one UPDATE a minute, not one a call).
TOUCH_INTERVAL = timedelta(minutes=1)
# Bodies the kit sends are a few hundred bytes.
BODY_MAX_BYTES = 16 * 1024


# --- Secrets -----------------------------------------------------------------------------------


def kit_secret_generate() -> str:
    """`fwk_` + 43 base64url characters (256 random bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def kit_secrets_live(*, product: Product) -> list[KitSecret]:
    """The product's secrets that still verify tokens, newest first."""
    return list(KitSecret.objects.filter(product=product, retired_at__isnull=True).order_by("-created_at", "-pk"))


@transaction.atomic
def kit_secret_issue(*, product: Product) -> tuple[KitSecret, str]:
    """Issue a new secret to `product` and return it with its value (shown once, to be put in the
    product server's configuration). The product's other live secrets keep verifying, so it can
    rotate without a moment when its tokens are refused."""
    kit_secret = KitSecret.objects.create(
        product=product, key_id=f"{product.code}_{secrets.token_hex(4)}", secret=kit_secret_generate()
    )
    return kit_secret, kit_secret.secret


@transaction.atomic
def kit_secret_retire(*, kit_secret: KitSecret) -> KitSecret:
    """Retire a secret: from now on a token whose `kid` names it is refused. Retiring twice keeps
    the first retirement's time."""
    KitSecret.objects.filter(pk=kit_secret.pk, retired_at__isnull=True).update(retired_at=timezone.now())
    kit_secret.refresh_from_db(fields=["retired_at"])
    return kit_secret


@transaction.atomic
def kit_secret_ensure(*, product: Product) -> tuple[KitSecret, bool]:
    """The product's newest live secret, issuing one if it has none; (secret, whether issued).
    Locks the product row so two concurrent callers do not both issue one."""
    Product.objects.select_for_update().filter(pk=product.pk).first()
    live = kit_secrets_live(product=product)
    if live:
        return live[0], False
    kit_secret, _value = kit_secret_issue(product=product)
    return kit_secret, True


def kit_token_uses_prune(*, now: datetime | None = None) -> int:
    """Forget used tokens that have expired (they would be refused as expired anyway); the
    number deleted."""
    deleted, _by_model = KitTokenUse.objects.filter(expires_at__lt=now or timezone.now()).delete()
    return deleted


# --- The token ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class KitToken:
    """A token whose signature and claims were checked (not yet spent)."""

    kit_secret: KitSecret
    user_public_id: uuid.UUID
    organization_public_id: uuid.UUID
    jti: str
    issued_at: datetime
    expires_at: datetime

    @property
    def product(self) -> Product:
        return self.kit_secret.product


def _numeric_date(claims: dict, name: str) -> float:
    value = claims.get(name)
    # bool is an int in Python; Python's JSON parser lets NaN, Infinity and ints of any size through.
    if not isinstance(value, bool) and isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
        if abs(seconds) < NUMERIC_DATE_LIMIT:
            return seconds
    raise KitTokenRefused(f"The token's {name} claim must be a number of seconds since 1970 (a NumericDate).")


def _public_id(claims: dict, name: str, what: str) -> uuid.UUID:
    value = claims.get(name)
    if isinstance(value, str) and len(value) <= 64:
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise KitTokenRefused(f"The token's {name} claim must be the {what}'s public id (a UUID).")


def _moment(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def kit_token_verify(token: object) -> KitToken:
    """Check a kit token whole; KitTokenRefused (401) naming the first thing wrong.

    Checks, in order: the JWT's shape, its header (alg HS256, a `kid`), the key (issued by
    Flywheel, not retired, its product active), the signature, every required claim (`aud`
    "flywheel-kit", `iss` the key's product, `iat` not in the future and `exp` not past, with
    LEEWAY_SECONDS either way, `exp - iat` at most KIT_TOKEN_MAX_SECONDS, `sub` and `org`
    UUIDs, `jti` 16 to 128 printable characters). Reads only; spending the jti is the exchange's.
    """
    if not isinstance(token, str) or not token:
        raise KitTokenRefused("The token is empty: send the token the product's server minted.")
    if len(token) > TOKEN_MAX_LENGTH or not JWT_SHAPE.fullmatch(token):
        raise KitTokenRefused("The token is not a JWT: it must be three base64url parts separated by dots.")
    try:
        header = jwt.get_unverified_header(token)
    except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
        raise KitTokenRefused("The token's header could not be read: it must be base64url-encoded JSON.") from None
    algorithm = header.get("alg")
    if algorithm != ALGORITHM:
        shown = algorithm if isinstance(algorithm, str) else repr(algorithm)
        raise KitTokenRefused(f"The token is signed with {shown[:20]!s}; Flywheel accepts {ALGORITHM} only.")
    key_id = header.get("kid")
    if not isinstance(key_id, str) or not key_id:
        raise KitTokenRefused("The token's header has no kid: set it to the key id Flywheel issued with the secret.")
    kit_secret = (
        KitSecret.objects.select_related("product").filter(key_id=key_id).first()
        if KEY_ID_SHAPE.fullmatch(key_id)
        else None
    )
    if kit_secret is None:
        raise KitTokenRefused(f"The token's kid {key_id[:64]!r} is not a key Flywheel issued.")
    if kit_secret.retired_at is not None:
        raise KitTokenRefused(
            f"The key {key_id} was retired on {kit_secret.retired_at:%Y-%m-%d}: sign tokens with the product's current secret."
        )
    product = kit_secret.product
    if not product.is_active:
        raise KitTokenRefused(f"The key {key_id} belongs to {product.name}, which is no longer offered.")

    try:
        claims = jwt.decode(
            token,
            kit_secret.secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=product.code,
            leeway=LEEWAY_SECONDS,
            options={
                "require": list(REQUIRED_CLAIMS),
                # aud is exactly "flywheel-kit", never a list that merely contains it.
                "strict_aud": True,
                "verify_sub": False,
                "verify_jti": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise KitTokenRefused(
            f"The token's signature does not match: it was not signed with the secret of key {key_id}."
        ) from None
    except jwt.ExpiredSignatureError:
        raise KitTokenRefused("The token has expired: mint a fresh one for each page the product serves.") from None
    except jwt.MissingRequiredClaimError as error:
        raise KitTokenRefused(f"The token has no {error.claim} claim; it needs {', '.join(REQUIRED_CLAIMS)}.") from None
    except jwt.InvalidAudienceError:
        raise KitTokenRefused(f"The token's aud claim must be {AUDIENCE!r}.") from None
    except jwt.InvalidIssuerError:
        raise KitTokenRefused(
            f"The token's iss claim must be {product.code!r}, the product key {key_id} was issued to."
        ) from None
    except jwt.ImmatureSignatureError:
        raise KitTokenRefused("The token's iat is in the future: check the clock of the product's server.") from None
    except (jwt.PyJWTError, ValueError, TypeError, OverflowError, RecursionError):
        raise KitTokenRefused("The token could not be read: its claims must be a JSON object of the documented claims.") from None

    issued_at = _numeric_date(claims, "iat")
    expires_at = _numeric_date(claims, "exp")
    if expires_at <= issued_at:
        raise KitTokenRefused("The token's exp claim must be after its iat claim.")
    lifetime = expires_at - issued_at
    if lifetime > settings.KIT_TOKEN_MAX_SECONDS:
        raise KitTokenRefused(
            f"The token lives {math.ceil(lifetime)} seconds (exp - iat); at most "
            f"{settings.KIT_TOKEN_MAX_SECONDS} seconds are allowed: mint short-lived tokens."
        )
    now = timezone.now().timestamp()
    if issued_at > now + LEEWAY_SECONDS:
        raise KitTokenRefused("The token's iat is in the future: check the clock of the product's server.")
    if expires_at <= now - LEEWAY_SECONDS:
        raise KitTokenRefused(f"The token expired at {_moment(expires_at)}: mint a fresh one for each page.")
    user_public_id = _public_id(claims, "sub", "user")
    organization_public_id = _public_id(claims, "org", "organization")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not JTI_SHAPE.fullmatch(jti):
        raise KitTokenRefused("The token's jti claim must be 16 to 128 random printable characters, new for each token.")
    return KitToken(
        kit_secret=kit_secret,
        user_public_id=user_public_id,
        organization_public_id=organization_public_id,
        jti=jti,
        issued_at=datetime.fromtimestamp(issued_at, tz=UTC),
        expires_at=datetime.fromtimestamp(expires_at, tz=UTC),
    )


# --- The exchange ------------------------------------------------------------------------------


@dataclass(frozen=True)
class KitExchange:
    """A token exchanged: the caller it names and the credential for the next calls."""

    caller: KitCaller
    credential: str
    expires_in: int


def person_name(membership: Membership) -> str:
    return membership.user.get_full_name().strip() or membership.user.email


def _member_for(token: KitToken) -> Membership:
    membership = (
        Membership.objects.select_related("user", "organization")
        .filter(
            user__public_id=token.user_public_id,
            user__is_active=True,
            organization__public_id=token.organization_public_id,
        )
        .first()
    )
    if membership is None:
        raise KitForbidden(
            f"The token's user (sub) is not a member of its organization (org) in Flywheel: "
            f"{token.product.name} may show the kit only to the organization's members."
        )
    return membership


@transaction.atomic
def kit_session_exchange(*, token: object, origin: str) -> KitExchange:
    """Exchange a product's kit token, sent from a page on `origin`, for a session credential.

    Invariants: a token is exchanged at most once (its jti is stored under a unique constraint,
    in the same transaction as the session); nothing is written when anything is refused; a
    person has at most one kit session active within KIT_SESSION_IDLE_MINUTES per organization
    (exchanges for one membership are serialized by locking its row, so two tabs opening at
    once join one session).
    """
    if not origin:
        raise KitOriginRefused(origin_refusal(origin))
    verified = kit_token_verify(token)
    product = verified.product
    if not origin_allowed_for(origin, product):
        raise KitOriginRefused(origin_refusal(origin, product))
    membership = _member_for(verified)
    # One exchange at a time per person and organization; the row may have gone meanwhile.
    if not Membership.objects.select_for_update().filter(pk=membership.pk).exists():
        raise KitForbidden("The token's user (sub) is not a member of its organization (org) in Flywheel.")
    try:
        with transaction.atomic():
            KitTokenUse.objects.create(
                jti=verified.jti, expires_at=verified.expires_at + timedelta(seconds=LEEWAY_SECONDS)
            )
    except IntegrityError:
        raise KitTokenRefused(
            "This token was already exchanged: mint a new token (with a new jti) for each page."
        ) from None

    now = timezone.now()
    session = (
        KitSession.objects.filter(
            user=membership.user,
            organization=membership.organization,
            last_seen_at__gte=now - timedelta(minutes=settings.KIT_SESSION_IDLE_MINUTES),
        )
        .order_by("-last_seen_at", "-pk")
        .first()
    )
    if session is None:
        session = KitSession.objects.create(
            organization=membership.organization,
            user=membership.user,
            product=product,
            origin=origin,
            started_at=now,
            last_seen_at=now,
        )
    else:
        KitSession.objects.filter(pk=session.pk).update(last_seen_at=now)
        session.last_seen_at = now
    session.product = product  # this exchange's product (a session spans the organization's products)
    return KitExchange(
        caller=KitCaller(membership=membership, session=session, origin=origin),
        credential=kit_session_credential(session=session, origin=origin),
        expires_in=settings.KIT_SESSION_SECONDS,
    )


# --- The session credential --------------------------------------------------------------------


def kit_session_credential(*, session: KitSession, origin: str) -> str:
    """A credential for `session` as seen from `origin`, for the product `session.product`;
    good for KIT_SESSION_SECONDS. Tampering with any part of it breaks its signature."""
    return signing.dumps(
        {"s": session.public_id.hex, "p": session.product_id, "o": origin}, salt=CREDENTIAL_SALT, compress=False
    )


def _credential_read(credential: str) -> dict:
    if not credential or len(credential) > CREDENTIAL_MAX_LENGTH:
        raise KitSessionExpired()
    try:
        value = signing.loads(credential, salt=CREDENTIAL_SALT, max_age=settings.KIT_SESSION_SECONDS)
    except (signing.BadSignature, ValueError, TypeError, UnicodeError):
        raise KitSessionExpired() from None
    if not (
        isinstance(value, dict)
        and isinstance(value.get("s"), str)
        and isinstance(value.get("p"), int)
        and isinstance(value.get("o"), str)
    ):
        raise KitSessionExpired()
    return value


def bearer_credential(request: HttpRequest) -> str:
    """The credential in `Authorization: Bearer <credential>` ("" when there is none)."""
    scheme, _, credential = request.headers.get("Authorization", "").strip().partition(" ")
    return credential.strip() if scheme.lower() == "bearer" else ""


def kit_caller_read(*, credential: str, origin: str) -> KitCaller:
    """The caller a session credential names, called from `origin`.

    KitOriginRefused (403): no origin, an origin no product registers, an origin other than the one
    the credential was issued for, or one its product no longer registers. KitSessionExpired
    (401): the credential is missing, expired or tampered with, or its session or the person's
    membership is gone. Touches the session's last_seen_at at most once per TOUCH_INTERVAL.
    """
    if not origin:
        raise KitOriginRefused(origin_refusal(origin))
    try:
        value = _credential_read(credential)
    except KitSessionExpired:
        if not origin_allowed_for_any(origin):
            raise KitOriginRefused(origin_refusal(origin)) from None
        raise
    if value["o"] != origin:
        raise KitOriginRefused(
            f"This Flywheel session was issued to a page on {value['o']}, not {origin[:200]}: reload the page."
        )
    try:
        session_public_id = uuid.UUID(hex=value["s"])
    except ValueError:
        raise KitSessionExpired() from None
    # One query on every kit call: the session with its person, organization, product and the
    # person's membership of that organization (None once they were removed).
    session = (
        KitSession.objects.annotate(
            membership=FilteredRelation(
                "user__memberships", condition=Q(user__memberships__organization=F("organization"))
            )
        )
        .select_related("product", "user", "organization", "membership")
        .filter(public_id=session_public_id)
        .first()
    )
    if session is None:
        raise KitSessionExpired()
    # Django leaves the attribute unset, not None, when the filtered relation found no row.
    membership: Membership | None = getattr(session, "membership", None)
    if membership is None or not session.user.is_active:
        raise KitSessionExpired()
    membership.user, membership.organization = session.user, session.organization
    if session.product_id != value["p"]:
        # The session was started from another of the organization's products: this page's
        # product is the credential's. Kept in memory only.
        product = Product.objects.filter(pk=value["p"]).first()
        if product is None:
            raise KitSessionExpired()
        session.product = product
    if not origin_allowed_for(origin, session.product):
        raise KitOriginRefused(origin_refusal(origin, session.product))
    now = timezone.now()
    if session.last_seen_at < now - TOUCH_INTERVAL:
        KitSession.objects.filter(pk=session.pk, last_seen_at__lt=now - TOUCH_INTERVAL).update(last_seen_at=now)
        session.last_seen_at = now
    return KitCaller(membership=membership, session=session, origin=origin)


# --- Views' helpers ------------------------------------------------------------------------------


def kit_json_body(request: HttpRequest) -> dict:
    """The request's JSON object body; KitBadRequest (400) naming what is wrong otherwise."""
    if len(request.body) > BODY_MAX_BYTES:
        raise KitBadRequest(f"The body is too large: at most {BODY_MAX_BYTES // 1024} KB.")
    try:
        data = json.loads(request.body or b"null")
    except (ValueError, RecursionError):
        raise KitBadRequest("The body must be a JSON object.") from None
    if not isinstance(data, dict):
        raise KitBadRequest("The body must be a JSON object.")
    return data


def _status_of(error: FlywheelError) -> int:
    """The kit's own errors carry their status; of the others NotFound is a 404,
    PermissionDenied a 403, and the rest (ValidationError, a service's refusal) a 400."""
    if isinstance(error, KitError):
        return error.status
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, PermissionDenied):
        return 403
    return 400


def kit_error_response(error: FlywheelError, *, origin: str = "") -> JsonResponse:
    """`{"detail": <the error's message>}` with the error's status; readable by `origin`'s pages
    when one is given."""
    return kit_json_error(error.message, status=_status_of(error), origin=origin)


ViewFunction = Callable[..., HttpResponse]


def kit_endpoint(view: ViewFunction | None = None, *, methods: Iterable[str] = ("GET", "POST")):
    """Decorate a kit endpoint: CORS (answers the preflight; refuses an origin the product has
    not registered), the session credential (`Authorization: Bearer ...`) read into
    `request.kit`, a KitCaller. Refusals and any FlywheelError the view raises are answered
    `{"detail": ...}` with their status (401, 403, 404, 400...). No CSRF check: the kit sends no
    cookies. Usable bare (`@kit_endpoint`) or with the methods the view answers
    (`@kit_endpoint(methods=["POST"])`; others are refused 405)."""
    allowed = tuple(method.upper() for method in methods)

    def decorate(function: ViewFunction) -> ViewFunction:
        @wraps(function)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            origin = request_origin(request)
            if request.method == "OPTIONS":
                return cors_preflight(origin)
            try:
                request.kit = kit_caller_read(credential=bearer_credential(request), origin=origin)  # type: ignore[attr-defined]
            except KitOriginRefused as error:
                return kit_error_response(error)
            except KitError as error:
                return kit_error_response(error, origin=origin)
            if request.method not in allowed:
                response = kit_error_response(
                    KitMethodNotAllowed(f"This address answers {' and '.join(allowed)} only."), origin=origin
                )
                response["Allow"] = ", ".join(allowed)
                return response
            try:
                response = function(request, *args, **kwargs)
            except FlywheelError as error:
                return kit_error_response(error, origin=origin)
            return cors_allow(response, origin)

        return csrf_exempt(wrapper)

    if view is not None:
        return decorate(view)
    return decorate
