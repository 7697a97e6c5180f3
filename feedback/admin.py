from django.contrib import admin, messages

from . import services
from .exceptions import FlywheelError
from .models import Category, DigestRun, FollowUp, OrganizationReportRun, Response, Survey


@admin.register(Response)
class ResponseAdmin(admin.ModelAdmin):
    """Staff read answers and correct the category of comments (list or detail)."""

    list_display = ["submitted_at", "organization", "score", "role", "short_comment", "suggested_category", "category"]
    list_filter = ["month", "category", "suggested_category", "role", "paying", "usage_state", "product", "score"]
    search_fields = ["comment", "organization__name", "public_id"]
    date_hierarchy = "submitted_at"
    list_select_related = ["organization"]
    fields = [
        "public_id", "organization", "user", "score", "role", "comment", "may_contact",
        "product", "edition", "seats", "tenure_days", "organization_age_days", "paying",
        "active_days", "usage_state", "submitted_at", "suggested_category", "category", "category_corrected_by", "category_corrected_at",
    ]
    readonly_fields = [field for field in fields if field != "category"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Comment")
    def short_comment(self, response: Response) -> str:
        return response.comment[:80] + ("…" if len(response.comment) > 80 else "")

    def save_model(self, request, obj, form, change):
        # The category goes through the service: who corrected it and when, and the event.
        if "category" in form.changed_data:
            try:
                services.response_categorize(response=obj, category=obj.category, actor=request.user)
            except FlywheelError as error:
                messages.error(request, error.message)

    def _mark(self, request, queryset, category: str) -> None:
        done = 0
        for response in queryset.exclude(comment=""):
            services.response_categorize(response=response, category=category, actor=request.user)
            done += 1
        messages.success(request, f"{done} comment(s) set to {Category(category).label}.")

    def get_actions(self, request):
        actions = super().get_actions(request)
        for value, label in Category.choices:
            name = f"mark_{value}"

            def action(modeladmin, request, queryset, value=value):
                modeladmin._mark(request, queryset, value)

            actions[name] = (action, name, f"Set category: {label}")
        return actions


@admin.register(FollowUp)
class FollowUpAdmin(admin.ModelAdmin):
    list_display = ["created_at", "response", "status", "resolved_by", "resolved_at", "respondent_told_at"]
    list_filter = ["status"]
    search_fields = ["response__comment", "response__organization__name", "action_taken"]
    list_select_related = ["response", "resolved_by"]
    readonly_fields = ["public_id", "response", "status", "action_taken", "resolved_by", "resolved_at",
                       "respondent_told_at", "created_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # closed from the follow-up page (staff/feedback/follow-ups/), which tells the respondent


@admin.register(Survey)
class SurveyAdmin(admin.ModelAdmin):
    list_display = ["asked_at", "organization", "user", "product", "status", "closed_at"]
    list_filter = ["status", "product"]
    search_fields = ["public_id", "organization__name", "user__email"]
    list_select_related = ["organization", "user", "product"]
    readonly_fields = [field.name for field in Survey._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DigestRun)
class DigestRunAdmin(admin.ModelAdmin):
    list_display = ["month", "claimed_at"]
    readonly_fields = ["month", "claimed_at", "summary"]
    exclude = ["chart_png"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(OrganizationReportRun)
class OrganizationReportRunAdmin(admin.ModelAdmin):
    list_display = ["month", "organization", "recipients", "claimed_at"]
    list_select_related = ["organization"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
