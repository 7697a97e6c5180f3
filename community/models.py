"""The community forum (questions, answers, comments, votes, flags, revisions), its members'
reputation, and the escalation clock: business calendars, per-tier policies, support engineers
and the escalations they work."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q


class BusinessCalendar(models.Model):
    """Working days and hours, and holidays, in the calendar's own time zone."""

    name = models.CharField(max_length=120, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC", help_text="IANA name, e.g. Europe/Paris.")
    # ISO weekdays, Monday = 1 ... Sunday = 7.
    working_days = models.JSONField(default=list, help_text="ISO weekdays, Monday = 1 ... Sunday = 7.")
    day_starts_at = models.TimeField(help_text="Local time the working day starts.")
    day_ends_at = models.TimeField(help_text="Local time the working day ends.")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(day_ends_at__gt=models.F("day_starts_at")), name="calendar_day_not_empty")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.time_zone})"


class Holiday(models.Model):
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["date"]
        constraints = [models.UniqueConstraint(fields=["calendar", "date"], name="holiday_unique_per_calendar")]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class EscalationPolicy(models.Model):
    """How long the community has to answer a question of one support tier before staff step in."""

    class Counting(models.TextChoices):
        BUSINESS = "business", "Business hours (of the calendar)"
        CALENDAR = "calendar", "Calendar hours (around the clock)"

    support_tier = models.SlugField(max_length=64, unique=True, help_text="An edition's support_tier in the catalog.")
    name = models.CharField(max_length=120)
    rank = models.PositiveSmallIntegerField(default=0, help_text="Higher is a better tier.")
    hours_to_escalation = models.DecimalField(max_digits=7, decimal_places=2)
    counting = models.CharField(max_length=16, choices=Counting.choices, default=Counting.BUSINESS)
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.PROTECT, related_name="policies")
    # Calendar hours after an escalation is assigned before the support lead is told.
    reminder_hours = models.DecimalField(max_digits=7, decimal_places=2, default=4)

    class Meta:
        ordering = ["rank"]
        verbose_name_plural = "escalation policies"
        constraints = [
            models.CheckConstraint(condition=Q(hours_to_escalation__gt=0), name="policy_hours_positive"),
            models.CheckConstraint(condition=Q(reminder_hours__gt=0), name="policy_reminder_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name}: {self.hours_to_escalation} {self.counting} hours"


class Member(models.Model):
    """A user's life in the community: reputation and email preferences."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="community_member")
    reputation = models.IntegerField(default=1)
    notify_by_email = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user} ({self.reputation})"


class SupportEngineer(models.Model):
    """A staff user who works the support queue. Assignment is round robin among those on duty."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="support_engineer")
    on_duty = models.BooleanField(default=True)
    is_lead = models.BooleanField(default=False, help_text="Told when an assigned question stays unanswered.")
    cap = models.PositiveSmallIntegerField(default=10, help_text="Most open assignments at once.")
    open_assignments = models.PositiveIntegerField(default=0, editable=False)
    last_assigned_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(open_assignments__gte=0), name="engineer_open_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({'on duty' if self.on_duty else 'off duty'})"


class Tag(models.Model):
    name = models.SlugField(max_length=40, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Question(models.Model):
    """A question about one product, with its escalation clock.

    The clock is `running` with a `deadline`, `paused` with `clock_remaining_seconds` (business
    or calendar seconds, per the policy), `stopped` (answered by the community, closed) or
    `escalated` (handed to support). Only running questions have a deadline.
    """

    class State(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"
        DELETED = "deleted", "Deleted"

    class Clock(models.TextChoices):
        RUNNING = "running", "Running"
        PAUSED = "paused", "Waiting on the asker"
        STOPPED = "stopped", "Stopped"
        ESCALATED = "escalated", "Escalated"

    class StopReason(models.TextChoices):
        ACCEPTED = "accepted", "An answer was accepted"
        UPVOTED = "upvoted", "An answer from outside the asker's organization was upvoted"
        CLOSED = "closed", "Closed by staff"
        SUPPORT = "support", "Answered by support"
        SELF_SOLVED = "self_solved", "The asker accepted their own answer"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="+")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="community_questions")
    # What the asker was when they asked: private, shown to staff only.
    organization = models.ForeignKey(
        "accounts.Organization", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    edition = models.ForeignKey("catalog.Edition", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    support_tier = models.SlugField(max_length=64)
    title = models.CharField(max_length=200)
    body = models.TextField()
    body_html = models.TextField(editable=False)
    tags = models.ManyToManyField(Tag, blank=True, related_name="questions")
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    duplicate_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    accepted_answer = models.OneToOneField(
        "Answer", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    score = models.IntegerField(default=0)
    answer_count = models.PositiveIntegerField(default=0)
    flag_count = models.PositiveIntegerField(default=0)
    is_hidden = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    first_answer_at = models.DateTimeField(null=True, blank=True)
    # The escalation clock.
    policy = models.ForeignKey(EscalationPolicy, on_delete=models.PROTECT, related_name="+")
    clock = models.CharField(max_length=16, choices=Clock.choices, default=Clock.RUNNING)
    deadline = models.DateTimeField(null=True, blank=True)
    clock_remaining_seconds = models.PositiveIntegerField(null=True, blank=True)
    clock_stopped_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.CharField(max_length=16, choices=StopReason.choices, blank=True)
    # Full-text search (PostgreSQL only; the SQLite development database leaves it empty and
    # searches by substring). The services write the answers' text (weight C) into
    # answers_vector; searches read QuestionSearch, which triggers keep in step with this table.
    answers_vector = SearchVectorField(null=True, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(clock="running", deadline__isnull=False) | (~Q(clock="running") & Q(deadline__isnull=True)),
                name="question_deadline_iff_running",
            ),
            models.CheckConstraint(
                condition=~Q(clock="paused") | Q(clock_remaining_seconds__isnull=False),
                name="question_paused_has_remaining",
            ),
        ]
        indexes = [
            # The due-tick reads only this: open, unescalated questions, by deadline.
            models.Index(fields=["deadline"], condition=Q(clock="running"), name="question_due_idx"),
            models.Index(fields=["-created_at"], name="question_created_idx"),
            models.Index(fields=["product", "-created_at"], name="question_product_idx"),
            models.Index(fields=["author", "created_at"], name="question_author_idx"),
            # The "unanswered" filter, newest first, with or without search text.
            models.Index(fields=["-created_at"], condition=Q(answer_count=0), name="question_unanswered_idx"),
        ]

    def __str__(self) -> str:
        return self.title


class QuestionSearch(models.Model):
    """A question as full-text search reads it: its document (title A + body B + the answers'
    vector C) and what the filters look at, in a narrow row (about 450 bytes against the
    question's 2.4 kB), so the whole table stays in shared_buffers and a search pays a buffer
    hit per match, not a page of the wide question table.

    One row per question that is not deleted. Only the triggers of migration 0005 write it, on
    every write to community_question and community_question_tags (the services, the admin, a
    bulk UPDATE alike); the same migration creates its GIN and newest-first indexes, which are
    PostgreSQL's own. PostgreSQL only: on SQLite the table stays empty.
    """

    question = models.OneToOneField(
        Question, primary_key=True, on_delete=models.CASCADE, related_name="search", editable=False
    )
    document = SearchVectorField()
    created_at = models.DateTimeField()
    product = models.ForeignKey("catalog.Product", on_delete=models.CASCADE, related_name="+", db_index=False)
    is_hidden = models.BooleanField()
    is_answered = models.BooleanField()
    is_solved = models.BooleanField()
    tag_ids = ArrayField(models.BigIntegerField(), default=list)

    def __str__(self) -> str:
        return f"Search row of question {self.question_id}"


class Answer(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="answers")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="community_answers")
    body = models.TextField()
    body_html = models.TextField(editable=False)
    score = models.IntegerField(default=0)
    flag_count = models.PositiveIntegerField(default=0)
    is_hidden = models.BooleanField(default=False)
    is_deleted = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["question", "created_at"], name="answer_question_idx"),
            models.Index(fields=["author", "created_at"], name="answer_author_idx"),
        ]

    def __str__(self) -> str:
        return f"Answer to {self.question_id} by {self.author_id}"


def _one_post() -> Q:
    return Q(question__isnull=False, answer__isnull=True) | Q(question__isnull=True, answer__isnull=False)


class Comment(models.Model):
    """A short plain-text remark on a question or an answer.

    `asks_for_information` marks a request to the asker: it pauses the question's clock.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    question = models.ForeignKey(Question, null=True, blank=True, on_delete=models.CASCADE, related_name="comments")
    answer = models.ForeignKey(Answer, null=True, blank=True, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="community_comments")
    body = models.TextField(max_length=600)
    asks_for_information = models.BooleanField(default=False)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [models.CheckConstraint(condition=_one_post(), name="comment_on_one_post")]
        indexes = [models.Index(fields=["author", "created_at"], name="comment_author_idx")]

    def __str__(self) -> str:
        return self.body[:40]


class Revision(models.Model):
    """One version of a question or an answer: the first is what was posted, then each edit."""

    question = models.ForeignKey(Question, null=True, blank=True, on_delete=models.CASCADE, related_name="revisions")
    answer = models.ForeignKey(Answer, null=True, blank=True, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    editor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    title = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["number"]
        constraints = [
            models.CheckConstraint(condition=_one_post(), name="revision_of_one_post"),
            models.UniqueConstraint(fields=["question", "number"], name="revision_question_number_unique"),
            models.UniqueConstraint(fields=["answer", "number"], name="revision_answer_number_unique"),
        ]

    def __str__(self) -> str:
        return f"Revision {self.number}"


class Vote(models.Model):
    class Value(models.IntegerChoices):
        UP = 1, "Up"
        DOWN = -1, "Down"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    question = models.ForeignKey(Question, null=True, blank=True, on_delete=models.CASCADE, related_name="votes")
    answer = models.ForeignKey(Answer, null=True, blank=True, on_delete=models.CASCADE, related_name="votes")
    value = models.SmallIntegerField(choices=Value.choices)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=_one_post(), name="vote_on_one_post"),
            models.UniqueConstraint(fields=["user", "question"], name="vote_once_per_question"),
            models.UniqueConstraint(fields=["user", "answer"], name="vote_once_per_answer"),
        ]

    def __str__(self) -> str:
        return f"{self.value:+d} by {self.user_id}"


class Flag(models.Model):
    class Reason(models.TextChoices):
        SPAM = "spam", "Spam"
        RUDE = "rude", "Rude or abusive"
        OFF_TOPIC = "off_topic", "Off topic"
        OTHER = "other", "Needs a moderator"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    question = models.ForeignKey(Question, null=True, blank=True, on_delete=models.CASCADE, related_name="flags")
    answer = models.ForeignKey(Answer, null=True, blank=True, on_delete=models.CASCADE, related_name="flags")
    reason = models.CharField(max_length=16, choices=Reason.choices)
    created_at = models.DateTimeField()
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=_one_post(), name="flag_on_one_post"),
            models.UniqueConstraint(fields=["user", "question"], name="flag_once_per_question"),
            models.UniqueConstraint(fields=["user", "answer"], name="flag_once_per_answer"),
        ]

    def __str__(self) -> str:
        return f"{self.reason} by {self.user_id}"


class Escalation(models.Model):
    """A question whose clock ran out, in the support queue. At most one per question."""

    class State(models.TextChoices):
        QUEUED = "queued", "Waiting for an engineer"
        ASSIGNED = "assigned", "Assigned"
        RESOLVED = "resolved", "Resolved"

    question = models.OneToOneField(Question, on_delete=models.CASCADE, related_name="escalation")
    support_tier = models.SlugField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    escalated_at = models.DateTimeField()
    engineer = models.ForeignKey(
        SupportEngineer, null=True, blank=True, on_delete=models.SET_NULL, related_name="escalations"
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    reminder_due_at = models.DateTimeField(null=True, blank=True)
    # Set when the support lead was told the assigned question is still unanswered: a breach.
    lead_flagged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["escalated_at", "pk"]
        indexes = [
            models.Index(fields=["escalated_at"], condition=Q(state="queued"), name="escalation_queued_idx"),
            models.Index(
                fields=["reminder_due_at"],
                condition=Q(state="assigned", lead_flagged_at__isnull=True),
                name="escalation_reminder_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(state="assigned") | Q(engineer__isnull=False, assigned_at__isnull=False),
                name="escalation_assigned_has_engineer",
            )
        ]

    def __str__(self) -> str:
        return f"Escalation of {self.question_id} ({self.state})"
