"""Everything the demo product does with Flywheel, as any product's server would: read the
secrets Flywheel issued, verify Flywheel's launch ticket, mint the kit's token for the signed-in
person (docs/in-product.md, "The token").

Both are HS256 JWTs signed with the product's kit secret; the header's `kid` names the secret.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from django.conf import settings

KIT_AUDIENCE = "flywheel-kit"
LAUNCH_AUDIENCE = "flywheel-demo-launch"
LAUNCH_ISSUER = "flywheel"
# A token lives 5 minutes (Flywheel accepts at most KIT_TOKEN_MAX_SECONDS, 600): the kit asks
# /flywheel-token for a new one when its session runs out, so short is cheap.
TOKEN_SECONDS = 300
# Flywheel signs a launch ticket for a minute; a longer one is refused whatever it says.
LAUNCH_MAX_SECONDS = 120
LEEWAY_SECONDS = 30


class LaunchRefused(Exception):
    """The launch ticket cannot be trusted; the message says why, in words for a person."""


@dataclass(frozen=True)
class ProductSecret:
    product: str  # the catalog's code: tracker, wiki, servicedesk
    key_id: str
    secret: str


def _env_file_values(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        text = path.read_text()
    except OSError:
        return values
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, value = line.split("=", 1)
        values[name.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


def product_secret(product: str) -> ProductSecret | None:
    """The secret of `product` (its code), from FLYWHEEL_KIT_SECRET_<PRODUCT> and
    FLYWHEEL_KIT_KID_<PRODUCT> in the environment, else in the env file. The file is read at
    each call (a few lines), so a secret rotated with `kit_secret --env-file` takes effect at
    once."""
    name = product.upper().replace("-", "_")  # as `manage.py kit_secret --env-file` names them
    secret, key_id = os.environ.get(f"FLYWHEEL_KIT_SECRET_{name}"), os.environ.get(f"FLYWHEEL_KIT_KID_{name}")
    if not (secret and key_id):
        values = _env_file_values(settings.ENV_FILE)
        secret, key_id = values.get(f"FLYWHEEL_KIT_SECRET_{name}"), values.get(f"FLYWHEEL_KIT_KID_{name}")
    if not (secret and key_id):
        return None
    return ProductSecret(product=product, key_id=key_id, secret=secret)


def _secret_for_key_id(key_id: str) -> ProductSecret | None:
    # The key id is `<product>_<8 hex>`: its product names the secret to look up.
    product = key_id.rsplit("_", 1)[0] if "_" in key_id else ""
    found = product_secret(product) if re.fullmatch(r"[a-z0-9_-]{1,64}", product) else None
    return found if found is not None and secrets.compare_digest(found.key_id, key_id) else None


@dataclass(frozen=True)
class Launch:
    """Who Flywheel sent, into which workspace (what the ticket names)."""

    environment: str
    user_id: str
    user_name: str
    user_email: str
    organization_id: str
    organization_name: str
    product: str
    product_name: str
    is_admin: bool
    expires_at: int
    ticket_id: str


class _UsedTickets:
    """Ticket ids already used, kept until they expire: a ticket opens a session once (a
    copied address cannot open a second one). In this process's memory: the demo product runs
    as one process and a ticket lives a minute."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, int] = {}

    def claim(self, ticket_id: str, expires_at: int) -> bool:
        now = int(time.time())
        with self._lock:
            self._seen = {key: until for key, until in self._seen.items() if until + LEEWAY_SECONDS >= now}
            if ticket_id in self._seen:
                return False
            self._seen[ticket_id] = expires_at
            return True


used_tickets = _UsedTickets()


def launch_verify(ticket: str, *, environment: str) -> Launch:
    """The launch a ticket from Flywheel names, for the workspace at `environment`; LaunchRefused
    for a ticket that is malformed, forged, expired, too long-lived, for another workspace, or
    already used."""
    try:
        header = jwt.get_unverified_header(ticket)
    except jwt.PyJWTError:
        raise LaunchRefused("The sign-in link is damaged.") from None
    found = _secret_for_key_id(str(header.get("kid") or ""))
    if found is None:
        raise LaunchRefused(
            "This product does not know the key the sign-in link was signed with: "
            "run `make run` again to write var/demo-product.env."
        )
    try:
        claims = jwt.decode(
            ticket,
            found.secret,
            algorithms=["HS256"],
            audience=LAUNCH_AUDIENCE,
            issuer=LAUNCH_ISSUER,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "jti", "sub", "org", "product", "environment"]},
        )
    except jwt.ExpiredSignatureError:
        raise LaunchRefused("The sign-in link has expired.") from None
    except jwt.PyJWTError:
        raise LaunchRefused("The sign-in link is not valid.") from None
    if int(claims["exp"]) - int(claims["iat"]) > LAUNCH_MAX_SECONDS:
        raise LaunchRefused("The sign-in link lives too long to be trusted.")
    if claims["product"] != found.product or claims["environment"] != environment:
        raise LaunchRefused("The sign-in link is for another workspace.")
    if not used_tickets.claim(str(claims["jti"]), int(claims["exp"])):
        raise LaunchRefused("The sign-in link was already used.")
    return Launch(
        environment=environment,
        user_id=str(claims["sub"]),
        user_name=str(claims.get("name") or claims.get("email") or ""),
        user_email=str(claims.get("email") or ""),
        organization_id=str(claims["org"]),
        organization_name=str(claims.get("org_name") or ""),
        product=found.product,
        product_name=str(claims.get("product_name") or found.product.title()),
        is_admin=bool(claims.get("admin")),
        expires_at=int(claims["exp"]),
        ticket_id=str(claims["jti"]),
    )


def kit_token(*, product: str, user_id: str, organization_id: str) -> str:
    """The kit's token for this person (docs/in-product.md, "The token"): HS256, `kid` in the
    header, a random `jti`, 5 minutes. Raises LookupError when the product has no secret."""
    found = product_secret(product)
    if found is None:
        raise LookupError(f"No kit secret for {product}: set FLYWHEEL_KIT_SECRET_{product.upper()}.")
    now = int(time.time())
    claims = {
        "iss": product,
        "aud": KIT_AUDIENCE,
        "sub": user_id,
        "org": organization_id,
        "iat": now,
        "exp": now + TOKEN_SECONDS,
        "jti": secrets.token_urlsafe(24),
    }
    return jwt.encode(claims, found.secret, algorithm="HS256", headers={"kid": found.key_id})
