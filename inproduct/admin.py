"""Staff's view of the products' kit secrets: issue one (its value is shown once, on the page
that follows), retire one. The secret itself is never displayed again, nor editable."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .identity import kit_secret_issue, kit_secret_retire
from .models import KitSecret


def _show_once(request: HttpRequest, kit_secret: KitSecret, value: str) -> None:
    messages.warning(
        request,
        f"New secret for {kit_secret.product.name}: key id {kit_secret.key_id}, secret {value} "
        "- copy it into the product server's configuration now: it is not shown again.",
    )


@admin.register(KitSecret)
class KitSecretAdmin(admin.ModelAdmin):
    list_display = ["key_id", "product", "created_at", "retired_at"]
    list_filter = ["product", ("retired_at", admin.EmptyFieldListFilter)]
    search_fields = ["key_id", "product__code"]
    list_select_related = ["product"]
    actions = ["issue_successor", "retire"]

    def get_fields(self, request: HttpRequest, obj: KitSecret | None = None) -> list[str]:
        # Adding asks for the product only; the key id and secret are generated.
        return ["product"] if obj is None else ["product", "key_id", "created_at", "retired_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: KitSecret | None = None) -> list[str]:
        return [] if obj is None else ["product", "key_id", "created_at", "retired_at"]

    def has_delete_permission(self, request: HttpRequest, obj: KitSecret | None = None) -> bool:
        return False  # retire instead: a retired key still says which product it was

    def save_model(self, request: HttpRequest, obj: KitSecret, form, change: bool) -> None:
        if change:
            return
        issued, value = kit_secret_issue(product=obj.product)
        obj.pk, obj.key_id, obj.secret, obj.created_at = issued.pk, issued.key_id, issued.secret, issued.created_at
        _show_once(request, issued, value)

    @admin.action(description="Issue a new secret for the selected secrets' products (rotate)")
    def issue_successor(self, request: HttpRequest, queryset: QuerySet[KitSecret]) -> None:
        for product in {kit_secret.product for kit_secret in queryset.select_related("product")}:
            issued, value = kit_secret_issue(product=product)
            _show_once(request, issued, value)

    @admin.action(description="Retire the selected secrets (their tokens are refused from now on)")
    def retire(self, request: HttpRequest, queryset: QuerySet[KitSecret]) -> None:
        retired = [kit_secret_retire(kit_secret=kit_secret).key_id for kit_secret in queryset.filter(retired_at__isnull=True)]
        if retired:
            messages.success(request, f"Retired {', '.join(retired)}: tokens signed with them are refused from now on.")
