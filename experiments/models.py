"""Analytics events: an outbox written in the same transaction as the change it describes."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class Event(models.Model):
    """One step of a journey, stored first and forwarded to PostHog later.

    `public_id` is sent as PostHog's event uuid, so a batch sent twice is counted once.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=64, db_index=True)
    distinct_id = models.CharField(max_length=64)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    organization = models.ForeignKey(
        "accounts.Organization", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    properties = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["id"], condition=models.Q(sent_at__isnull=True), name="event_unsent_idx"),
            models.Index(fields=["organization", "occurred_at"], name="event_org_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.distinct_id})"
