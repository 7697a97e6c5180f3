"""The in-product kit's records: the products' signing secrets, the tokens already used, and
the kit sessions a person's visits are counted in (docs/in-product.md)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Organization
from catalog.models import Product


class KitSecret(models.Model):
    """A secret Flywheel issued to a product, with which the product's server signs its users'
    kit tokens (HS256). `key_id` is the token header's `kid`. A product may hold two live secrets
    at once while it rotates; a retired secret verifies nothing."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="kit_secrets")
    key_id = models.SlugField(max_length=64, unique=True)
    # HMAC needs the secret itself to verify, so it is stored as issued (like a webhook secret).
    secret = models.CharField(max_length=128)
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["product", "-created_at"]

    def __str__(self) -> str:
        return f"{self.product.code} {self.key_id}"


class KitTokenUse(models.Model):
    """A kit token already exchanged for a session: its `jti` can never be exchanged again.
    Rows are pruned once the token has expired (it would be refused as expired anyway)."""

    jti = models.CharField(max_length=128, unique=True)
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"kit token {self.jti}"


class KitSession(models.Model):
    """One visit of a person to the organization's products: a token exchange joins the
    person's latest session while it was active within KIT_SESSION_IDLE_MINUTES, else starts
    one. The contact budget is counted per session: `message_id` is the one kit message shown
    in it (empty until one is), set once."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="kit_sessions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="kit_sessions")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    origin = models.CharField(max_length=255)
    started_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    message_id = models.CharField(max_length=160, blank=True)
    message_shown_at = models.DateTimeField(null=True, blank=True)
    message_closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "organization", "-last_seen_at"], name="kit_session_latest_idx")]

    def __str__(self) -> str:
        return f"kit session {self.public_id}"
