from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from .api_keys import api_key_revoke_by_staff
from .models import ApiKey, Invite, Membership, Organization, SignupIntent, User


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user", "organization"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "public_id", "is_staff", "is_active", "date_joined"]
    search_fields = ["email", "public_id", "first_name", "last_name"]
    readonly_fields = ["public_id", "last_login", "date_joined"]
    fieldsets = (
        (None, {"fields": ("email", "public_id", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    inlines = [MembershipInline]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "public_id", "email_domain", "join_by_domain", "created_at"]
    search_fields = ["name", "public_id", "email_domain"]
    list_filter = ["join_by_domain"]
    readonly_fields = ["public_id", "created_at"]
    raw_id_fields = ["created_by"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "source", "created_at"]
    list_filter = ["role", "source"]
    search_fields = ["user__email", "organization__name"]
    raw_id_fields = ["user", "organization"]
    list_select_related = ["user", "organization"]


@admin.register(Invite)
class InviteAdmin(admin.ModelAdmin):
    list_display = ["email", "organization", "role", "status", "expires_at", "created_at"]
    list_filter = ["status", "role"]
    search_fields = ["email", "organization__name"]
    raw_id_fields = ["organization", "invited_by", "accepted_by"]
    list_select_related = ["organization"]


@admin.register(SignupIntent)
class SignupIntentAdmin(admin.ModelAdmin):
    list_display = ["user", "product_code", "edition_code", "created_at", "completed_at"]
    search_fields = ["user__email", "product_code"]
    raw_id_fields = ["user", "invite"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Staff can see keys and revoke them; they cannot create one here (its secret would never be
    shown), edit or delete one (a revocation must go through the service, which also clears the
    authentication cache), nor read a secret (only its hash is stored)."""

    list_display = ["name", "prefix", "organization", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "organization__name", "organization__public_id"]
    list_select_related = ["organization"]
    fields = ["public_id", "organization", "name", "prefix", "secret_hash", "created_at", "created_by",
              "last_used_at", "revoked_at", "revoked_by"]
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset):
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke_by_staff(api_key=api_key, actor=request.user)
