"""Onboarding email sequences, enrolments, sends, and the marketing suppression list."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.template import Template, TemplateSyntaxError
from django.utils import timezone


class Sequence(models.Model):
    """An ordered series of onboarding emails. An experiment's variation names one by `key`."""

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    exit_on_conversion = models.BooleanField(
        default=True, help_text="Stop sending once the organization pays for a subscription."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.key})"


class Step(models.Model):
    """One email of a sequence, sent `delay` after enrolment or after the previous step.

    Subject and bodies are Django templates rendered with the recipient's context
    (docs/onboarding.md lists the variables).
    """

    class DelayFrom(models.TextChoices):
        ENROLMENT = "enrolment", "After enrolment"
        PREVIOUS = "previous", "After the previous step was sent (or skipped)"

    class SkipCondition(models.TextChoices):
        NONE = "", "Never skip"
        INVITED_COLLEAGUE = "invited_colleague", "Already invited a colleague"
        PAID = "paid", "Already paid"
        WORKSPACE_READY = "workspace_ready", "Workspace already active"

    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=120, blank=True)
    delay = models.DurationField(help_text="For example 1 day: '1 00:00:00'; 2 hours: '02:00:00'.")
    delay_from = models.CharField(max_length=16, choices=DelayFrom.choices, default=DelayFrom.ENROLMENT)
    skip_condition = models.CharField(max_length=32, choices=SkipCondition.choices, blank=True, default="")
    subject = models.CharField(max_length=200)
    html_body = models.TextField()
    text_body = models.TextField()

    class Meta:
        ordering = ["sequence", "position"]
        constraints = [
            models.UniqueConstraint(fields=["sequence", "position"], name="step_position_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.sequence.key} #{self.position} {self.name or self.subject}"

    def clean(self) -> None:
        errors = {}
        for field in ("subject", "html_body", "text_body"):
            try:
                Template(getattr(self, field) or "")
            except TemplateSyntaxError as error:
                errors[field] = f"Template error: {error}"
        if self.delay is not None and self.delay.total_seconds() < 0:
            errors["delay"] = "The delay cannot be negative."
        if errors:
            raise ValidationError(errors)


class Enrolment(models.Model):
    """A user in the onboarding programme: their variation and their place in its sequence.

    `next_send_at` is set only while a step is waiting for its time; the beat tick finds due
    enrolments through a partial index on it, and clears it when it claims one, so a claimed
    enrolment is invisible to the next tick.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        HOLDOUT = "holdout", "Holdout (no emails)"
        COMPLETED = "completed", "Completed"
        EXITED = "exited", "Exited"

    class ExitReason(models.TextChoices):
        NONE = "", "-"
        CONVERTED = "converted", "Converted to paid"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="onboarding")
    organization = models.ForeignKey(
        "accounts.Organization", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    sequence = models.ForeignKey(Sequence, null=True, blank=True, on_delete=models.PROTECT, related_name="enrolments")
    experiment_key = models.CharField(max_length=64, blank=True)
    variation_key = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    exit_reason = models.CharField(max_length=16, choices=ExitReason.choices, blank=True, default="")
    next_position = models.PositiveSmallIntegerField(default=0)
    next_send_at = models.DateTimeField(null=True, blank=True)
    enrolled_at = models.DateTimeField(default=timezone.now)
    last_step_at = models.DateTimeField(null=True, blank=True)
    converted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_send_at"],
                condition=models.Q(status="active", next_send_at__isnull=False),
                name="enrolment_due_idx",
            ),
            models.Index(fields=["experiment_key", "variation_key"], name="enrolment_variation_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.sequence.key if self.sequence else 'holdout'} ({self.status})"


class Send(models.Model):
    """One step for one enrolment: created by the tick, claimed before the SMTP call.

    Unique per (enrolment, step): a step can never be sent twice to the same person. A send
    in `sending` was claimed; if the worker died during the SMTP call it stays there (sent at
    most once) and the sweep marks it `unknown` for staff to see.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Skipped (condition met)"
        SUPPRESSED = "suppressed", "Not sent (unsubscribed)"
        EXITED = "exited", "Not sent (enrolment exited)"
        UNKNOWN = "unknown", "Unknown (worker lost during sending)"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    enrolment = models.ForeignKey(Enrolment, on_delete=models.CASCADE, related_name="sends")
    step = models.ForeignKey(Step, on_delete=models.PROTECT, related_name="sends")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    to_email = models.EmailField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    open_count = models.PositiveIntegerField(default=0)
    clicked_at = models.DateTimeField(null=True, blank=True)
    click_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["enrolment", "step"], name="send_once_per_step"),
        ]
        indexes = [
            models.Index(fields=["claimed_at"], condition=models.Q(status="sending"), name="send_claimed_idx"),
            models.Index(fields=["created_at"], condition=models.Q(status="pending"), name="send_pending_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.step} to {self.to_email or self.enrolment.user_id} ({self.status})"


class Suppression(models.Model):
    """An address that gets no marketing email, ever (transactional email still goes out)."""

    class Reason(models.TextChoices):
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        BOUNCED = "bounced", "Bounced"
        COMPLAINED = "complained", "Marked as spam"
        STAFF = "staff", "Added by staff"

    # Always stored in lower case (services and clean() normalize), so a plain unique index
    # serves both the constraint and every lookup.
    email = models.EmailField(unique=True)
    reason = models.CharField(max_length=16, choices=Reason.choices, default=Reason.UNSUBSCRIBED)
    source = models.CharField(max_length=64, blank=True, help_text="What the address unsubscribed from.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(email=Lower("email")), name="suppression_email_lower")]

    def __str__(self) -> str:
        return f"{self.email} ({self.reason})"

    def clean(self) -> None:
        self.email = (self.email or "").strip().lower()


class MarketingSend(models.Model):
    """Every marketing email sent to an address, by any app: the shared frequency cap counts
    these rows (onboarding.services.suppression.marketing_email_claim)."""

    email = models.EmailField()  # lower case
    source = models.CharField(max_length=64)
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["email", "sent_at"], name="marketing_send_email_time_idx")]

    def __str__(self) -> str:
        return f"{self.source} to {self.email} at {self.sent_at:%Y-%m-%d %H:%M}"
