"""Product activity: what people do in each product, as the products report it (docs/activity.md).

Two tables:

- `ActivityEvent`, the raw events, one row per event id a product gave: the record that makes a
  retried batch count once. Pruned after ACTIVITY_RAW_RETENTION_DAYS; events older than that
  are refused on arrival, so a retry can never arrive after its first copy was pruned.
- `ActivityDay`, the rollup every figure reads: one row per person, organization, product and
  UTC day, with how many events arrived and how many of them were of a name the product counts
  as activity (catalog `activity_events`). Written in the same transaction as the raw rows it
  counts, from the rows that transaction actually inserted, so it holds each event exactly once.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ActivityEvent(models.Model):
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="+")
    # The product's own id for the event: a batch sent again finds its events by it.
    event_id = models.CharField(max_length=128)
    name = models.CharField(max_length=64)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "product", "event_id"], name="activity_event_once"),
        ]
        indexes = [models.Index(fields=["occurred_at"], name="activity_event_occurred_idx")]

    def __str__(self) -> str:
        return f"{self.name} by {self.user_id} on {self.occurred_at:%Y-%m-%d}"


class ActivityDay(models.Model):
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="+")
    day = models.DateField(help_text="The UTC day the events occurred on.")
    events = models.PositiveIntegerField(default=0)
    # Of those, the ones whose name the product counts as activity: the person was active that
    # day when this is above 0.
    active_events = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user", "product", "day"], name="activity_day_once"),
        ]
        indexes = [
            models.Index(fields=["product", "day"], name="activity_day_product_idx"),
            models.Index(fields=["organization", "product", "day"], name="activity_day_org_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} on {self.product_id} {self.day}: {self.active_events}/{self.events}"


class StaffFiguresSnapshot(models.Model):
    """The staff figures over all organizations for one `as_of` day, so /staff/usage/ reads a
    few small rows instead of scanning every rollup (docs/activity.md#how-the-staff-figures-stay-fast).

    One row per (as_of, period, product): the three count tables retention, lifecycle and
    monthly usage are derived from (activity.selectors.PeriodCounts), for a product or, under
    product_key 0, all products with a person counted once across them. Built by the beat after
    midnight UTC and rebuilt, debounced, when an event arrives late for a day it covers; a page
    that finds no row for its day computes the figures live."""

    as_of = models.DateField()
    period = models.CharField(max_length=8)
    # The product's id, or 0 for all products (a person counted once across them).
    product_key = models.PositiveIntegerField()
    counts = models.JSONField()
    built_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["as_of", "period", "product_key"], name="activity_snapshot_once"
            ),
        ]

    def __str__(self) -> str:
        return f"staff figures of {self.as_of} by {self.period} for {self.product_key or 'all products'}"
