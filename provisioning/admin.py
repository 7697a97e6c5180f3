from django.contrib import admin, messages

from .models import Environment
from .services import environment_retry


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin):
    list_display = ["public_id", "organization", "product", "status", "attempts", "requested_at", "active_at"]
    list_filter = ["status", "product"]
    search_fields = ["public_id", "organization__name", "url", "external_id"]
    list_select_related = ["organization", "product"]
    readonly_fields = [f.name for f in Environment._meta.fields]
    actions = ["retry_provisioning"]

    @admin.action(description="Retry provisioning of the selected failed environments")
    def retry_provisioning(self, request, queryset):
        retried = 0
        for environment in queryset.filter(status=Environment.Status.FAILED).order_by("pk"):
            environment_retry(environment=environment)
            retried += 1
        skipped = queryset.count() - retried
        self.message_user(
            request,
            f"{retried} environment(s) scheduled again"
            + (f"; {skipped} skipped because they had not failed" if skipped else "")
            + ".",
            messages.SUCCESS if retried else messages.WARNING,
        )

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
