from django.contrib import admin

from .models import AddOn, Course, Edition, Product


class EditionInline(admin.TabularInline):
    model = Edition
    extra = 0
    can_delete = False
    readonly_fields = [f.name for f in Edition._meta.fields if f.name != "id"]


class AddOnInline(admin.TabularInline):
    model = AddOn
    extra = 0
    can_delete = False
    fk_name = "product"
    readonly_fields = [f.name for f in AddOn._meta.fields if f.name != "id"]


class CourseInline(admin.TabularInline):
    model = Course
    extra = 0
    can_delete = False
    fk_name = "product"
    readonly_fields = [f.name for f in Course._meta.fields if f.name != "id"]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    """Read-only: the catalog file is the source of truth (`manage.py catalog_sync`)."""

    list_display = ["code", "name", "provisioner", "is_active"]
    inlines = [EditionInline, AddOnInline, CourseInline]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
