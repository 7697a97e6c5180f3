"""Product environments: one per organization and product, moved through a state machine.

    requested -> provisioning -> active
                      |   ^
                      v   | (staff retry)
                    failed
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Environment(models.Model):
    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        PROVISIONING = "provisioning", "Provisioning"
        ACTIVE = "active", "Active"
        FAILED = "failed", "Failed"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="environments"
    )
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.REQUESTED)
    # What the product is asked to set up (edition, ...), sent in the provisioning request.
    plan = models.JSONField(default=dict, blank=True)
    url = models.URLField(max_length=500, blank=True)
    external_id = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # While an attempt runs: until when it holds the environment. Another call meanwhile (a
    # redelivered task, the stall sweep) leaves it to that attempt instead of starting one.
    attempt_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    failure_reason = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    active_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "product"], name="environment_one_per_product"),
            models.CheckConstraint(
                condition=~models.Q(status="active", url=""), name="environment_active_has_url"
            ),
        ]
        indexes = [
            models.Index(
                fields=["updated_at"],
                condition=models.Q(status__in=["requested", "provisioning"]),
                name="environment_pending_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.product} for {self.organization} ({self.status})"

    @property
    def is_settled(self) -> bool:
        return self.status in (self.Status.ACTIVE, self.Status.FAILED)
