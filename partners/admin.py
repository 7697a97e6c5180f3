"""Staff's partner tools in the admin: decide applications (approve with a tier, decline with a
note), manage partners (tier, suspension, the directory), end a link, and read links, requests,
quotes and the audit log. Every decision goes through partners' services, so it is audited and
emailed exactly as the pages do it."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, Q
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from common.exceptions import FlywheelError
from common.money import money

from .models import (
    AuditEntry,
    Partner,
    PartnerApplication,
    PartnerLink,
    PartnerRequest,
    Quote,
    QuoteLine,
)
from .selectors import tier_name
from .services.applications import (
    application_approve,
    application_decline,
    partner_set_status,
    partner_set_tier,
    tier_choices,
)
from .services.links import link_end


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the services: looked at here, changed only through actions."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def _intermediate(modeladmin, request, queryset, *, title: str, template: str, context: dict):
    return TemplateResponse(
        request,
        template,
        {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "items": list(queryset),
            "action": request.POST.get("action", ""),
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "opts": modeladmin.model._meta,
            **context,
        },
    )


@admin.register(PartnerApplication)
class PartnerApplicationAdmin(admin.ModelAdmin):
    list_display = ["company_name", "organization", "country", "status", "created_at", "decided_at"]
    list_filter = ["status", "country"]
    search_fields = ["company_name", "organization__name", "contact_email"]
    ordering = ["-created_at"]
    actions = ["approve", "decline"]
    readonly_fields = [
        "organization", "company_name", "country", "website", "contact_name", "contact_email", "contact_phone",
        "description", "status", "applied_by", "decided_by", "decided_at", "decision_note", "created_at",
    ]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Approve as a partner (choose the tier)")
    def approve(self, request, queryset):
        pending = queryset.filter(status=PartnerApplication.Status.PENDING)
        if not pending.exists():
            self.message_user(request, "Choose applications that are waiting for review.", messages.ERROR)
            return None
        error = ""
        if "apply" in request.POST:
            tier = request.POST.get("tier", "")
            approved = []
            try:
                for application in pending:
                    approved.append(application_approve(application=application, actor=request.user, tier=tier))
            except FlywheelError as refusal:
                error = refusal.message
            if approved:
                self.message_user(
                    request,
                    f"Approved as {tier_name(tier)} partners: {', '.join(p.organization.name for p in approved)}. "
                    "The applicants were emailed.",
                    messages.SUCCESS,
                )
            if not error:
                return None
        return _intermediate(
            self, request, pending,
            title="Approve partner applications", template="partners/partner/admin_approve.html",
            context={"tiers": tier_choices(), "error": error},
        )

    @admin.action(description="Decline (write a note to the applicant)")
    def decline(self, request, queryset):
        pending = queryset.filter(status=PartnerApplication.Status.PENDING)
        if not pending.exists():
            self.message_user(request, "Choose applications that are waiting for review.", messages.ERROR)
            return None
        error = ""
        if "apply" in request.POST:
            note = request.POST.get("note", "")
            try:
                declined = [application_decline(application=application, actor=request.user, note=note) for application in pending]
            except FlywheelError as refusal:
                error = refusal.message
            else:
                self.message_user(
                    request,
                    f"Declined: {', '.join(a.company_name for a in declined)}. The applicants were emailed your note.",
                    messages.SUCCESS,
                )
                return None
        return _intermediate(
            self, request, pending,
            title="Decline partner applications", template="partners/partner/admin_decline.html",
            context={"error": error},
        )


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = ["organization", "tier_display", "status", "listed", "customers", "approved_at"]
    list_filter = ["tier", "status", "listed"]
    search_fields = ["organization__name", "contact_email"]
    fields = ["organization", "tier_display", "status", "listed", "country", "website", "contact_email", "description", "approved_at", "application"]
    readonly_fields = ["organization", "tier_display", "status", "approved_at", "application"]
    actions = ["set_tier", "suspend", "reactivate"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("organization")
            .annotate(customer_count=Count("links", filter=Q(links__status=PartnerLink.Status.ACTIVE)))
        )

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # a partner comes from an approved application

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Tier", ordering="tier")
    def tier_display(self, partner: Partner) -> str:
        return tier_name(partner.tier)

    @admin.display(description="Customers", ordering="customer_count")
    def customers(self, partner: Partner) -> int:
        return partner.customer_count

    @admin.action(description="Change the tier (emails the partner)")
    def set_tier(self, request, queryset):
        error = ""
        if "apply" in request.POST:
            tier = request.POST.get("tier", "")
            try:
                changed = [partner_set_tier(partner=partner, actor=request.user, tier=tier) for partner in queryset]
            except FlywheelError as refusal:
                error = refusal.message
            else:
                self.message_user(
                    request, f"{', '.join(p.organization.name for p in changed)}: now {tier_name(tier)}.", messages.SUCCESS
                )
                return None
        return _intermediate(
            self, request, queryset,
            title="Change the partners' tier", template="partners/partner/admin_approve.html",
            context={"tiers": tier_choices(), "error": error, "tier_change": True},
        )

    @admin.action(description="Suspend (its partner pages and actions stop)")
    def suspend(self, request, queryset):
        for partner in queryset:
            partner_set_status(partner=partner, actor=request.user, status=Partner.Status.SUSPENDED)
        self.message_user(request, f"Suspended {queryset.count()} partner(s). Their links and what they pay for stay as they are.", messages.SUCCESS)

    @admin.action(description="Reactivate")
    def reactivate(self, request, queryset):
        for partner in queryset:
            partner_set_status(partner=partner, actor=request.user, status=Partner.Status.ACTIVE)
        self.message_user(request, f"Reactivated {queryset.count()} partner(s).", messages.SUCCESS)


@admin.register(PartnerLink)
class PartnerLinkAdmin(ReadOnlyAdmin):
    list_display = ["partner", "customer", "status", "created_at", "accepted_at", "closed_at", "closed_by_side"]
    list_filter = ["status", "closed_by_side"]
    search_fields = ["partner__organization__name", "customer__name"]
    list_select_related = ["partner__organization", "customer"]
    actions = ["end_link"]

    def has_end_permission(self, request) -> bool:
        return request.user.is_staff

    @admin.action(description="End the link (staff; subscriptions come back to the customer at renewal)", permissions=["end"])
    def end_link(self, request, queryset):
        active = queryset.filter(status=PartnerLink.Status.ACTIVE)
        if not active.exists():
            self.message_user(request, "Choose active links.", messages.ERROR)
            return None
        error = ""
        if "apply" in request.POST:
            reason = request.POST.get("reason", "")
            try:
                ended = [link_end(link=link, actor=request.user, side=PartnerLink.Side.STAFF, reason=reason) for link in active]
            except FlywheelError as refusal:
                error = refusal.message
            else:
                self.message_user(request, f"Ended {len(ended)} link(s); both sides were emailed.", messages.SUCCESS)
                return None
        return _intermediate(
            self, request, active,
            title="End partner links", template="partners/partner/admin_end_link.html", context={"error": error},
        )


@admin.register(PartnerRequest)
class PartnerRequestAdmin(ReadOnlyAdmin):
    list_display = ["customer", "partner", "kind", "product", "seats_wanted", "status", "created_at", "handled_at"]
    list_filter = ["status", "kind"]
    search_fields = ["customer__name", "partner__organization__name"]
    list_select_related = ["customer", "partner__organization", "product"]


class QuoteLineInline(admin.TabularInline):
    model = QuoteLine
    extra = 0
    fields = ["description", "quantity", "unit_amount_minor", "amount_minor"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Quote)
class QuoteAdmin(ReadOnlyAdmin):
    list_display = ["number", "organization", "partner", "status", "total", "valid_until", "accepted_at", "paid_with"]
    list_filter = ["status", "paid_with"]
    search_fields = ["number", "organization__name", "partner__organization__name", "po_number"]
    list_select_related = ["organization", "partner__organization"]
    inlines = [QuoteLineInline]

    @admin.display(description="Total", ordering="total_minor")
    def total(self, quote: Quote) -> str:
        return money(quote.total_minor, quote.currency)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """The partner audit log: every partner action, read-only."""

    list_display = ["created_at", "summary", "partner", "customer_link", "actor_side", "action"]
    list_filter = ["actor_side", "action"]
    search_fields = ["summary", "partner__organization__name", "customer__name"]
    list_select_related = ["partner__organization", "customer"]
    ordering = ["-created_at", "-pk"]

    @admin.display(description="Customer", ordering="customer__name")
    def customer_link(self, entry: AuditEntry) -> str:
        if entry.customer_id is None:
            return "-"
        url = reverse("admin:partners_auditentry_changelist") + f"?customer__id__exact={entry.customer_id}"
        return format_html('<a href="{}">{}</a>', url, entry.customer.name)
