from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from .models import Invite, Membership, Organization, SignupIntent, User


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
