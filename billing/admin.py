from django.contrib import admin

from .models import Subscription


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["organization", "product", "edition", "status", "seat_limit", "trial_ends_at", "created_at"]
    list_filter = ["status", "product", "edition__code"]
    search_fields = ["organization__name", "organization__public_id"]
    list_select_related = ["organization", "product", "edition"]
    raw_id_fields = ["organization", "started_by"]
    readonly_fields = ["created_at", "updated_at"]
