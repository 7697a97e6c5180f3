"""The launch of the demo product: Flywheel's builtin workspace URL (/w/<environment id>/) sends
a signed-in member to the demo product (settings.DEMO_PRODUCT_URL, an origin of its own) with a
short-lived ticket, as a single sign-on would (docs/in-product.md, "The demo product").

The ticket is an HS256 JWT signed with the product's live kit secret (the one the demo product
also mints the kit's tokens with), `aud` "flywheel-demo-launch" so that it can never pass for a
kit token, and it lives a minute: the demo product verifies it, opens its own session and
drops the ticket from the address.
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlencode

import jwt
from django.conf import settings

from accounts.models import Membership
from accounts.selectors import membership_is_admin
from provisioning.models import Environment

from .identity import person_name
from .models import KitSecret

LAUNCH_AUDIENCE = "flywheel-demo-launch"
LAUNCH_ISSUER = "flywheel"
LAUNCH_TICKET_SECONDS = 60


def launch_ticket(*, environment: Environment, membership: Membership, secret: KitSecret) -> str:
    """A ticket naming the person, their organization and role, and the workspace; it expires
    LAUNCH_TICKET_SECONDS from now and carries a random id the demo product accepts once."""
    user, organization, product = membership.user, environment.organization, environment.product
    now = int(time.time())
    claims = {
        "iss": LAUNCH_ISSUER,
        "aud": LAUNCH_AUDIENCE,
        "sub": str(user.public_id),
        "name": person_name(membership),
        "email": user.email,
        "org": str(organization.public_id),
        "org_name": organization.name,
        "product": product.code,
        "product_name": product.name,
        "environment": str(environment.public_id),
        "admin": membership_is_admin(membership),
        "iat": now,
        "exp": now + LAUNCH_TICKET_SECONDS,
        "jti": secrets.token_urlsafe(24),
    }
    return jwt.encode(claims, secret.secret, algorithm="HS256", headers={"kid": secret.key_id})


def launch_url(*, environment: Environment, ticket: str) -> str:
    """Where the demo product opens this workspace, the ticket in its query."""
    return f"{settings.DEMO_PRODUCT_URL}/w/{environment.public_id}/?{urlencode({'ticket': ticket})}"
