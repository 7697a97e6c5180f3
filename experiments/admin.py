from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from .flags import admin_features_forget
from .models import Event, Experiment, Exposure, Feature, Variation


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["occurred_at", "name", "distinct_id", "organization", "sent_at", "attempts"]
    list_filter = ["name", ("sent_at", admin.EmptyFieldListFilter)]
    search_fields = ["distinct_id", "name", "organization__name", "user__email"]
    date_hierarchy = "occurred_at"
    readonly_fields = [f.name for f in Event._meta.fields]
    list_select_related = ["organization"]

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
