from django.contrib import admin

from .models import Event


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
