"""Subscriptions: an organization's right to use one product in one edition.

A trial is a subscription in status `trialing` with a trial end; payments (the billing issue)
move it to `active` without a new model.
"""

from __future__ import annotations

from django.db import models


class Subscription(models.Model):
    class Status(models.TextChoices):
        TRIALING = "trialing", "Trialing"
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Past due"
        SUSPENDED = "suspended", "Suspended"
        CANCELED = "canceled", "Canceled"

    LIVE_STATUSES = (Status.TRIALING, Status.ACTIVE, Status.PAST_DUE, Status.SUSPENDED)

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="subscriptions"
    )
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="+")
    edition = models.ForeignKey("catalog.Edition", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices)
    seat_limit = models.PositiveIntegerField()
    trial_ends_at = models.DateTimeField(null=True, blank=True)
    started_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "product"],
                condition=~models.Q(status="canceled"),
                name="subscription_one_live_per_product",
            ),
            models.CheckConstraint(condition=models.Q(seat_limit__gt=0), name="subscription_seats_positive"),
            models.CheckConstraint(
                condition=~models.Q(status="trialing", trial_ends_at__isnull=True),
                name="subscription_trial_has_end",
            ),
        ]
        indexes = [
            models.Index(fields=["trial_ends_at"], condition=models.Q(status="trialing"), name="subscription_trial_end_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.organization} {self.edition} ({self.status})"
