from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from .flags import admin_features_forget
from .models import Event, Experiment, Exposure, Feature, Variation
from .services import events_retry


class EventStateFilter(admin.SimpleListFilter):
    """An outbox event is waiting to be sent, sent, or dead (refused by PostHog for good)."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("unsent", "Waiting to be sent"), ("sent", "Sent to PostHog"), ("dead", "Refused by PostHog (dead)")]

    def queryset(self, request, queryset):
        if self.value() == "unsent":
            return queryset.filter(sent_at__isnull=True, dead_at__isnull=True)
        if self.value() == "sent":
            return queryset.filter(sent_at__isnull=False)
        if self.value() == "dead":
            return queryset.filter(dead_at__isnull=False)
        return queryset


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["occurred_at", "name", "distinct_id", "organization", "state", "attempts", "reason"]
    list_filter = [EventStateFilter, "name"]
    search_fields = ["distinct_id", "name", "organization__name", "user__email"]
    date_hierarchy = "occurred_at"
    readonly_fields = [f.name for f in Event._meta.fields]
    list_select_related = ["organization"]
    actions = ["retry_dead"]

    @admin.display(description="State")
    def state(self, obj):
        if obj.sent_at is not None:
            return "Sent"
        if obj.dead_at is not None:
            return "Dead"
        return "Waiting"

    @admin.display(description="Reason (PostHog's, or the last error)")
    def reason(self, obj):
        return Truncator(obj.last_error).chars(160)

    @admin.action(description="Retry the selected dead events (send them again)", permissions=["retry"])
    def retry_dead(self, request, queryset):
        selected = list(queryset.values_list("pk", flat=True))
        retried = events_retry(event_ids=selected)
        skipped = len(selected) - retried
        self.message_user(
            request,
            f"{retried} dead event(s) back in the outbox; the next forward run sends them"
            + (f"; {skipped} skipped because they were not dead" if skipped else "")
            + ".",
            messages.SUCCESS if retried else messages.WARNING,
        )

    def has_retry_permission(self, request):
        return request.user.has_perm("experiments.change_event")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class VariationInline(admin.TabularInline):
    model = Variation
    extra = 0
    fields = ["position", "key", "name", "weight", "value", "holdout"]


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["key", "name", "status", "hash_attribute", "coverage", "analysis_link"]
    list_filter = ["status"]
    search_fields = ["key", "name"]
    inlines = [VariationInline]

    @admin.display(description="Analysis")
    def analysis_link(self, obj):
        return format_html('<a href="{}">Analysis</a>', reverse("staff_experiment", args=[obj.key]))


@admin.register(Exposure)
class ExposureAdmin(admin.ModelAdmin):
    list_display = ["exposed_at", "experiment", "variation_key", "unit_id", "user", "organization"]
    list_filter = ["experiment"]
    search_fields = ["unit_id", "user__email"]
    readonly_fields = [f.name for f in Exposure._meta.fields]
    list_select_related = ["experiment", "user", "organization"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Feature)
class FeatureAdmin(admin.ModelAdmin):
    list_display = ["key", "enabled", "updated_at"]
    list_filter = ["enabled"]
    search_fields = ["key", "description"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        admin_features_forget()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        admin_features_forget()
