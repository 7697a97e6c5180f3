from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from .models import Enrolment, MarketingSend, Send, Sequence, Step, Suppression
from .services.rendering import render_step, sample_context


class StepInline(admin.StackedInline):
    model = Step
    extra = 0
    fields = ["position", "name", ("delay", "delay_from"), "skip_condition", "subject", "text_body", "html_body", "preview_link"]
    readonly_fields = ["preview_link"]

    @admin.display(description="Preview")
    def preview_link(self, obj):
        if not obj.pk:
            return "Save first, then preview."
        return format_html('<a href="{}" target="_blank">Preview with sample data</a>', reverse("admin:onboarding_step_preview", args=[obj.pk]))


@admin.register(Sequence)
class SequenceAdmin(admin.ModelAdmin):
    list_display = ["key", "name", "exit_on_conversion", "step_count"]
    search_fields = ["key", "name"]
    inlines = [StepInline]

    @admin.display(description="Steps")
    def step_count(self, obj):
        return obj.steps.count()


@admin.register(Step)
class StepAdmin(admin.ModelAdmin):
    list_display = ["sequence", "position", "name", "subject", "delay", "delay_from", "skip_condition", "preview_link"]
    list_filter = ["sequence"]
    list_select_related = ["sequence"]

    @admin.display(description="Preview")
    def preview_link(self, obj):
        return format_html('<a href="{}">Preview</a>', reverse("admin:onboarding_step_preview", args=[obj.pk]))

    def get_urls(self):
        return [
            path("<int:step_id>/preview/", self.admin_site.admin_view(self.preview_view), name="onboarding_step_preview"),
            *super().get_urls(),
        ]

    def preview_view(self, request, step_id: int):
        """The step rendered with sample data: subject, text body, and HTML in a sandbox."""
        step = get_object_or_404(Step.objects.select_related("sequence"), pk=step_id)
        if not self.has_view_or_change_permission(request, step):  # staff alone is not enough
            raise PermissionDenied
        error = ""
        try:
            rendered = render_step(step, sample_context())
        except Exception as exception:  # noqa: BLE001 - show the template error to the editor
            rendered, error = None, str(exception)
        context = {**self.admin_site.each_context(request), "step": step, "rendered": rendered, "error": error, "title": f"Preview: {step}"}
        return TemplateResponse(request, "admin/onboarding/step_preview.html", context)


@admin.register(Enrolment)
class EnrolmentAdmin(admin.ModelAdmin):
    list_display = ["user", "sequence", "experiment_key", "variation_key", "status", "exit_reason", "next_position", "next_send_at", "enrolled_at"]
    list_filter = ["status", "exit_reason", "sequence", "variation_key"]
    search_fields = ["user__email"]
    list_select_related = ["user", "sequence"]
    raw_id_fields = ["user", "organization"]
    readonly_fields = ["public_id", "user", "organization", "experiment_key", "variation_key", "enrolled_at", "last_step_at", "converted_at", "finished_at"]


@admin.register(Send)
class SendAdmin(admin.ModelAdmin):
    list_display = ["created_at", "step", "to_email", "status", "sent_at", "opened_at", "clicked_at", "attempts"]
    list_filter = ["status", "step__sequence"]
    search_fields = ["to_email", "enrolment__user__email"]
    list_select_related = ["step__sequence"]
    readonly_fields = [f.name for f in Send._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ["email", "reason", "source", "created_at"]
    list_filter = ["reason"]
    search_fields = ["email"]


@admin.register(MarketingSend)
class MarketingSendAdmin(admin.ModelAdmin):
    list_display = ["sent_at", "email", "source"]
    search_fields = ["email"]
    list_filter = ["source"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
