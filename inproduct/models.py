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


class AdminAsk(models.Model):
    """A member asked the organization's admins to act on a message the kit showed them (one
    email to each admin). At most one per person, organization, kind and UTC day: the unique
    constraint is the rule, so two clicks at once send one email."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # The prompt's kind ("seat_limit_reached"): what the admins are asked to do.
    kind = models.CharField(max_length=64)
    message_id = models.CharField(max_length=160)
    product_code = models.CharField(max_length=64, blank=True)
    day = models.DateField()
    asked_at = models.DateTimeField(default=timezone.now)
    recipients = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization", "kind", "day"], name="kit_admin_ask_once_a_day")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} asked the admins of {self.organization_id} about {self.kind} on {self.day}"


class OfferClosed(models.Model):
    """A person closed a marketing message of the kit (a product to try, the invite nudge), by
    dismissing it or by following it: it is not offered to them again for a while
    (docs/in-product.md, "Messages and their rules"). One row per person, organization and
    offer; closing again moves `closed_at`."""

    class Action(models.TextChoices):
        CLICKED = "clicked", "Followed"
        DISMISSED = "dismissed", "Dismissed"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # "try:wiki" or "nudge:invite".
    offer = models.CharField(max_length=80)
    action = models.CharField(max_length=16, choices=Action.choices)
    closed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization", "offer"], name="kit_offer_closed_once")
        ]

    def __str__(self) -> str:
        return f"{self.offer} {self.action} by {self.user_id}"


class InviteNudgeEmail(models.Model):
    """The invite nudge sent by email (the experiment's email channel) instead of in the kit:
    once per person and organization, ever; the row is claimed before the email is queued."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    variation_key = models.CharField(max_length=64)
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="kit_invite_nudge_email_once")
        ]

    def __str__(self) -> str:
        return f"invite nudge email to {self.user_id}"


class ProductSuccess(models.Model):
    """A success moment a product reported for a person (`element.track(name)`): when first
    and last, and how often. The invite nudge's `first_success` moment reads it."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=64)
    first_at = models.DateTimeField(default=timezone.now)
    last_at = models.DateTimeField(default=timezone.now)
    count = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organization", "product", "name"], name="kit_product_success_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} in {self.product_id} by {self.user_id}"
