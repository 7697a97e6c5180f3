"""In-product NPS: asks, responses with their product context, categories, follow-ups, and the
claims that make each monthly digest and report go out once.

Rules for asking live in services.py; the arithmetic of the reports in reports.py.
"""

from __future__ import annotations

import uuid

from django.db import models

from activity.people import USAGE_STATES


class Category(models.TextChoices):
    RELIABILITY = "reliability", "Reliability"
    USABILITY = "usability", "Usability"
    FUNCTIONALITY = "functionality", "Functionality"
    OTHER = "other", "Other"


class Role(models.TextChoices):
    """The short list of roles the product shows next to the question."""

    DEVELOPER = "developer", "Developer or engineer"
    DESIGNER = "designer", "Designer"
    PRODUCT_MANAGER = "product_manager", "Product or project manager"
    TEAM_LEAD = "team_lead", "Team lead or manager"
    EXECUTIVE = "executive", "Executive"
    OPERATIONS = "operations", "Operations, IT or support"
    OTHER = "other", "Other"


class SurveyState(models.Model):
    """One row per user: when they were last asked, answered or dismissed.

    The row is locked (SELECT ... FOR UPDATE) while deciding whether to ask, so two concurrent
    requests for the same user decide one after the other and only the first can ask.
    """

    user = models.OneToOneField("accounts.User", on_delete=models.CASCADE, related_name="+")
    last_asked_at = models.DateTimeField(null=True, blank=True)
    last_responded_at = models.DateTimeField(null=True, blank=True)
    last_dismissed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Survey state of user {self.user_id}"


class DailyAskCount(models.Model):
    """How many surveys were shown in one organization on one UTC day (the daily cap)."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    asks = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "day"], name="feedback_daily_ask_unique")
        ]

    def __str__(self) -> str:
        return f"{self.organization_id} on {self.day}: {self.asks}"


class Survey(models.Model):
    """One ask: the product showed (or was told to show) the question to one member.

    It ends answered (one Response), dismissed, replaced (the member was asked again, so this
    one takes no answer: one response per ask window), or left open until it no longer matters.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Asked"
        ANSWERED = "answered", "Answered"
        DISMISSED = "dismissed", "Dismissed"
        REPLACED = "replaced", "Replaced by a newer ask"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey("catalog.Product", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    asked_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "-asked_at"], name="feedback_survey_org_idx")]

    def __str__(self) -> str:
        return f"Survey {self.public_id} ({self.status})"


class Response(models.Model):
    """An answer: score 0-10, role, optional comment, and the product context at that moment.

    The snapshot (product, edition, seats, tenure, organization age, paying, and the
    respondent's use of the product in the 30 days before) is copied, not joined, so a later
    upgrade does not rewrite what a trial user said. `month` is the first day
    of the UTC month of `submitted_at`: reports group and filter on it.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    survey = models.OneToOneField(Survey, on_delete=models.CASCADE, related_name="response")
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    score = models.PositiveSmallIntegerField()
    role = models.CharField(max_length=32, choices=Role.choices)
    comment = models.TextField(blank=True)
    may_contact = models.BooleanField(
        default=False, help_text="The respondent agreed to be contacted and named to their admins."
    )
    product = models.ForeignKey("catalog.Product", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    edition = models.ForeignKey("catalog.Edition", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    seats = models.PositiveIntegerField(default=0)
    tenure_days = models.PositiveIntegerField(default=0)
    organization_age_days = models.PositiveIntegerField(default=0)
    paying = models.BooleanField(default=False)
    # The respondent's use of the product (of every product of the organization when there is
    # none) in the 30 whole UTC days before the answer's day (activity.people.person_usage_before):
    # days active (0-30) and lifecycle state. Empty only for a row stored without the service.
    active_days = models.PositiveSmallIntegerField(null=True, blank=True)
    usage_state = models.CharField(
        max_length=16,
        choices=[(state, label) for state, label, _ in USAGE_STATES],
        blank=True,
        default="",
        # Rows inserted in SQL (bench/feedback.py) leave it out: "" reads as "not known".
        db_default="",
    )
    submitted_at = models.DateTimeField()
    month = models.DateField()
    # The categorizer's suggestion, and the category in force (the suggestion until staff
    # correct it). Both empty when there is no comment.
    suggested_category = models.CharField(max_length=16, choices=Category.choices, blank=True)
    category = models.CharField(max_length=16, choices=Category.choices, blank=True)
    category_corrected_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    category_corrected_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(score__lte=10), name="feedback_score_0_to_10"),
            models.CheckConstraint(
                condition=models.Q(comment="", category="") | ~models.Q(comment=""),
                name="feedback_category_needs_comment",
            ),
        ]
        indexes = [
            # The staff report (one month, every breakdown, in one pass) finds its rows here, and
            # the trend and the overall figure are index-only scans of (month, score).
            models.Index(fields=["month", "score"], name="feedback_month_score_idx"),
            # A customer's report: its own responses, by month.
            models.Index(fields=["organization", "month"], name="feedback_org_month_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.score} from {self.organization_id} on {self.submitted_at:%Y-%m-%d}"

    @property
    def kind(self) -> str:
        if self.score >= 9:
            return "promoter"
        return "passive" if self.score >= 7 else "detractor"


class FollowUp(models.Model):
    """A detractor's comment, for staff to act on: what was done, and whether they were told."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    response = models.OneToOneField(Response, on_delete=models.CASCADE, related_name="follow_up")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    action_taken = models.TextField(blank=True)
    resolved_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    respondent_told_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["created_at"], condition=models.Q(status="open"), name="feedback_follow_up_open_idx")
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status="done", resolved_at__isnull=True), name="feedback_follow_up_done_has_date"
            )
        ]

    def __str__(self) -> str:
        return f"Follow-up of {self.response_id} ({self.status})"


class DigestRun(models.Model):
    """The staff digest of one month, claimed once (unique month) before anything is sent.

    The figures, the ten comments and the charts are frozen here when the month is claimed, so
    every staff member reads the same digest and a retried send rebuilds the same message.
    """

    month = models.DateField(unique=True)
    claimed_at = models.DateTimeField()
    summary = models.JSONField(default=dict)
    chart_png = models.BinaryField()
    # The usage charts beside the NPS (activity.charts): active people by month, and the
    # monthly retention heat map. Empty for a digest claimed before they were drawn.
    mau_chart_png = models.BinaryField(default=b"", blank=True)
    retention_chart_png = models.BinaryField(default=b"", blank=True)

    def __str__(self) -> str:
        return f"Digest of {self.month:%B %Y}"


class DigestDelivery(models.Model):
    """One staff member's copy of one digest; `sent_at` once the mail backend accepted it."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    run = models.ForeignKey(DigestRun, on_delete=models.CASCADE, related_name="deliveries")
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    email = models.EmailField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "user"], name="feedback_digest_delivery_unique")]

    def __str__(self) -> str:
        return f"{self.run} to {self.email}"


class OrganizationReportRun(models.Model):
    """A customer's monthly report to its admins, claimed once per (organization, month)."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    month = models.DateField()
    claimed_at = models.DateTimeField()
    recipients = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "month"], name="feedback_org_report_unique")
        ]

    def __str__(self) -> str:
        return f"Report of {self.organization_id} for {self.month:%B %Y}"


class ReportOptOut(models.Model):
    """An admin who asked for no more monthly reports of what their team said (the link in
    every report email; one click, no sign-in)."""

    user = models.OneToOneField("accounts.User", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user} (no monthly reports)"
