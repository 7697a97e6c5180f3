"""Analytics events: an outbox written in the same transaction as the change it describes."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class Event(models.Model):
    """One step of a journey, stored first and forwarded to PostHog later.

    `public_id` is sent as PostHog's event uuid, so a batch sent twice is counted once.
    An event is in one of three states: unsent (`sent_at` and `dead_at` empty), sent
    (`sent_at`), or dead (`dead_at`: PostHog refused it, or it is over PostHog's size limit;
    `last_error` says why, and it is never sent again unless staff retry it). `claimed_until`
    is a forward run's lease on an unsent event: no other run takes it before then.
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
    claimed_until = models.DateTimeField(null=True, blank=True)
    dead_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The forward run's claim: unsent and not dead, oldest first.
            models.Index(
                fields=["id"], condition=models.Q(sent_at__isnull=True, dead_at__isnull=True), name="event_unsent_idx"
            ),
            # Dead events are few: staff count and list them without reading the outbox.
            models.Index(fields=["id"], condition=models.Q(dead_at__isnull=False), name="event_dead_idx"),
            models.Index(fields=["organization", "occurred_at"], name="event_org_time_idx"),
            # A browser's visits to the signup page, for its FunnelVisit rows.
            models.Index(
                fields=["distinct_id", "occurred_at"], condition=models.Q(name="signup_started"),
                name="event_signup_started_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.distinct_id})"


class FunnelProgress(models.Model):
    """One person's way through the signup funnel (experiments/funnel.py FUNNEL_STEPS): their
    first signup not through an invite, and when they first reached each next step, each at or
    after the one before (empty: not reached yet). `organization` is the first organization
    they created after signing up, whose events are steps 4-8. Each `<step>_after` is the
    microseconds from the previous step to that one (what the report sorts for its medians:
    integers sort several times faster than the intervals of two times).

    Derived from the events only, by experiments.funnel.funnel_progress_refresh (never written
    anywhere else): the staff funnel counts and times these rows instead of the events.
    """

    # The person's id, not a foreign key: a deleted person's row is taken out by the refresh
    # (their events' marks), which keeps FunnelDay's counts with it; a cascade would not.
    user_id = models.BigIntegerField(primary_key=True)
    organization = models.ForeignKey(
        "accounts.Organization", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    signed_up_at = models.DateTimeField()
    email_verified_at = models.DateTimeField(null=True, blank=True)
    organization_created_at = models.DateTimeField(null=True, blank=True)
    product_started_at = models.DateTimeField(null=True, blank=True)
    workspace_ready_at = models.DateTimeField(null=True, blank=True)
    invite_sent_at = models.DateTimeField(null=True, blank=True)
    colleague_joined_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    # The time of the last step reached (the report finds the people with a step after the end
    # of its period by it), and the microseconds from verifying to the workspace being ready.
    last_step_at = models.DateTimeField()
    time_to_value = models.BigIntegerField(null=True, blank=True)
    email_verified_after = models.BigIntegerField(null=True, blank=True)
    organization_created_after = models.BigIntegerField(null=True, blank=True)
    product_started_after = models.BigIntegerField(null=True, blank=True)
    workspace_ready_after = models.BigIntegerField(null=True, blank=True)
    invite_sent_after = models.BigIntegerField(null=True, blank=True)
    colleague_joined_after = models.BigIntegerField(null=True, blank=True)
    paid_after = models.BigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["signed_up_at"], name="funnel_progress_signup_idx"),
            models.Index(fields=["last_step_at"], name="funnel_progress_last_idx"),
            # Each wait in order, with what the report filters on: the median's row is found
            # among the few in its bucket (FunnelDay), from the index alone.
            *[
                models.Index(fields=[after], include=["signed_up_at", reached], name=f"funnel_{short}_idx")
                for after, reached, short in [
                    ("email_verified_after", "email_verified_at", "verified"),
                    ("organization_created_after", "organization_created_at", "organization"),
                    ("product_started_after", "product_started_at", "product"),
                    ("workspace_ready_after", "workspace_ready_at", "workspace"),
                    ("invite_sent_after", "invite_sent_at", "invite"),
                    ("colleague_joined_after", "colleague_joined_at", "colleague"),
                    ("paid_after", "paid_at", "paid"),
                    ("time_to_value", "workspace_ready_at", "value"),
                ]
            ],
        ]

    def __str__(self) -> str:
        return f"{self.user_id} signed up {self.signed_up_at:%Y-%m-%d}"


class FunnelDay(models.Model):
    """How many people who signed up on a UTC `day` reached a step, by how long it took them
    (`bucket`: the wait's place among experiments.funnel.WAIT_BUCKETS, 0 for the signup itself),
    and how many visits the signup page had that day (step experiments.funnel.VISITS). Kept by
    the refresh with FunnelProgress and FunnelVisit, in the same transaction: the report adds
    whole days up instead of reading every row."""

    day = models.DateField()
    step = models.PositiveSmallIntegerField()
    bucket = models.PositiveSmallIntegerField()
    people = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "step", "bucket"], name="funnel_day_once")]

    def __str__(self) -> str:
        return f"{self.day} step {self.step} bucket {self.bucket}: {self.people}"


class FunnelVisit(models.Model):
    """One visit to the signup page (a `signup_started` event) with the time of the same
    browser's visit before it: the distinct browsers of a period are its visits whose previous
    one is older than the period (or none), counted from the index alone. Derived from the
    events by funnel_progress_refresh, like FunnelProgress."""

    event_id = models.BigIntegerField(primary_key=True)
    distinct_id = models.CharField(max_length=64, db_index=True)
    occurred_at = models.DateTimeField()
    previous_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["occurred_at"], include=["previous_at"], name="funnel_visit_time_idx"),
            models.Index(fields=["previous_at"], include=["occurred_at"], name="funnel_visit_previous_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.distinct_id} at {self.occurred_at:%Y-%m-%d %H:%M}"


class FunnelChange(models.Model):
    """A person (`user_id`), an organization (`organization_id`) or a browser (`distinct_id`)
    whose funnel events changed since their FunnelProgress or FunnelVisit rows were computed:
    written by the triggers on experiments_event (migration 0004), taken by
    funnel_progress_refresh. Plain values, not foreign keys: the mark of a deleted event
    outlives its person or organization, and the refresh then clears their rows."""

    user_id = models.BigIntegerField(null=True, blank=True)
    organization_id = models.BigIntegerField(null=True, blank=True)
    distinct_id = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        if self.user_id:
            return f"person {self.user_id}"
        return f"organization {self.organization_id}" if self.organization_id else f"browser {self.distinct_id}"


class Experiment(models.Model):
    """An A/B test staff define in the admin; GrowthBook's SDK assigns units to its variations.

    Assignment hashes `hash_attribute` (the user's or the organization's public id) with the
    experiment's key as seed, so it is the same in every process and on every request. Position
    0 is the control unless a variation is marked as the holdout, which then is the control.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft (nobody is assigned)"
        RUNNING = "running", "Running"
        STOPPED = "stopped", "Stopped (nobody new is assigned)"

    class HashAttribute(models.TextChoices):
        USER = "id", "User"
        ORGANIZATION = "organization_id", "Organization"

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    hash_attribute = models.CharField(
        max_length=32, choices=HashAttribute.choices, default=HashAttribute.USER
    )
    coverage = models.FloatField(
        default=1.0, help_text="Share of eligible units that enter the experiment (0 to 1)."
    )
    condition = models.JSONField(
        default=dict,
        blank=True,
        help_text='GrowthBook targeting condition on attributes, e.g. {"country": {"$in": ["FR", "DE"]}}.',
    )
    activation_events = models.JSONField(
        default=list,
        blank=True,
        help_text='Analytics event names analysed as activation metrics, e.g. ["invite_sent"].',
    )
    minimum_sample = models.PositiveIntegerField(
        default=100, help_text="Below this many exposures per variation the analysis warns."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(coverage__gte=0, coverage__lte=1), name="experiment_coverage_range"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.key})"


class Variation(models.Model):
    """One arm of an experiment. `value` is what the caller receives (for onboarding, the key of
    the email sequence, or null for none)."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variations")
    position = models.PositiveSmallIntegerField()
    key = models.SlugField(max_length=64)
    name = models.CharField(max_length=120)
    weight = models.FloatField(default=1.0, help_text="Relative share of traffic.")
    value = models.JSONField(null=True, blank=True)
    holdout = models.BooleanField(
        default=False, help_text="Gets no treatment at all; the analysis uses it as the control."
    )

    class Meta:
        ordering = ["experiment", "position"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "position"], name="variation_position_unique"),
            models.UniqueConstraint(fields=["experiment", "key"], name="variation_key_unique"),
            models.UniqueConstraint(
                fields=["experiment"], condition=models.Q(holdout=True), name="variation_one_holdout"
            ),
            models.CheckConstraint(condition=models.Q(weight__gte=0), name="variation_weight_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.experiment.key}/{self.key}"


class Exposure(models.Model):
    """The first time a unit (user or organization) was assigned a variation. Once per unit."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="exposures")
    unit_id = models.CharField(max_length=64)
    variation_position = models.PositiveSmallIntegerField()
    variation_key = models.CharField(max_length=64)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    organization = models.ForeignKey(
        "accounts.Organization", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    exposed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "unit_id"], name="exposure_once_per_unit")
        ]
        indexes = [models.Index(fields=["experiment", "variation_position"], name="exposure_variation_idx")]

    def __str__(self) -> str:
        return f"{self.unit_id} in {self.experiment_id}/{self.variation_key}"


class Feature(models.Model):
    """A GrowthBook feature flag staff edit in the admin: `definition` is GrowthBook's own JSON
    for one feature ({"defaultValue": ..., "rules": [...]}), as its SDK payload carries it.
    Admin features add to (and override, by key) those of GROWTHBOOK_FEATURES(_FILE)."""

    key = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    definition = models.JSONField(default=dict, help_text='e.g. {"defaultValue": false, "rules": [{"force": true, "condition": {"country": "FR"}}]}')
    enabled = models.BooleanField(default=True, help_text="A disabled feature is unknown: callers use their defaults.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.key
