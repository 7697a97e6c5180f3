from django.contrib import admin

from .models import (
    Answer,
    BusinessCalendar,
    Escalation,
    EscalationPolicy,
    Flag,
    Holiday,
    Member,
    Question,
    SupportEngineer,
    Tag,
)


class HolidayInline(admin.TabularInline):
    model = Holiday
    extra = 1


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(admin.ModelAdmin):
    list_display = ["name", "time_zone", "working_days", "day_starts_at", "day_ends_at"]
    inlines = [HolidayInline]

    def save_model(self, request, obj, form, change):
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        from django.core.exceptions import ValidationError

        try:
            ZoneInfo(obj.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError(f"{obj.time_zone} is not an IANA time zone.") from None
        super().save_model(request, obj, form, change)


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(admin.ModelAdmin):
    list_display = ["support_tier", "name", "rank", "hours_to_escalation", "counting", "calendar", "reminder_hours"]
    list_editable = ["hours_to_escalation", "counting", "reminder_hours"]


@admin.register(SupportEngineer)
class SupportEngineerAdmin(admin.ModelAdmin):
    list_display = ["user", "on_duty", "is_lead", "cap", "open_assignments", "last_assigned_at"]
    list_editable = ["on_duty", "is_lead", "cap"]
    raw_id_fields = ["user"]
    readonly_fields = ["open_assignments", "last_assigned_at"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            from accounts.models import User

            kwargs["queryset"] = User.objects.filter(is_staff=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    list_display = ["user", "reputation", "notify_by_email", "created_at"]
    search_fields = ["user__email"]
    raw_id_fields = ["user"]


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin):
    list_display = ["title", "product", "support_tier", "state", "clock", "deadline", "is_hidden", "created_at"]
    list_filter = ["state", "clock", "support_tier", "is_hidden", "product"]
    search_fields = ["title", "author__email", "organization__name"]
    raw_id_fields = ["author", "organization", "duplicate_of", "accepted_answer"]
    readonly_fields = [
        "body_html", "score", "answer_count", "flag_count", "policy", "clock", "deadline",
        "clock_remaining_seconds", "clock_stopped_at", "stop_reason", "first_answer_at",
    ]
    list_select_related = ["product"]


@admin.register(Answer)
class AnswerAdmin(admin.ModelAdmin):
    list_display = ["pk", "question", "author", "score", "is_hidden", "is_deleted", "created_at"]
    list_filter = ["is_hidden", "is_deleted"]
    raw_id_fields = ["question", "author"]
    readonly_fields = ["body_html", "score", "flag_count"]


@admin.register(Flag)
class FlagAdmin(admin.ModelAdmin):
    list_display = ["pk", "question", "answer", "user", "reason", "created_at", "reviewed_at"]
    list_filter = ["reason"]
    raw_id_fields = ["question", "answer", "user", "reviewed_by"]


@admin.register(Escalation)
class EscalationAdmin(admin.ModelAdmin):
    list_display = ["question", "support_tier", "state", "engineer", "escalated_at", "assigned_at", "lead_flagged_at"]
    list_filter = ["state", "support_tier"]
    raw_id_fields = ["question"]
    # Assignment moves the engineers' open counts: it happens through the services (the queue page).
    readonly_fields = [
        "support_tier", "state", "engineer", "escalated_at", "assigned_at", "reminder_due_at",
        "lead_flagged_at", "resolved_at",
    ]


admin.site.register(Tag)
