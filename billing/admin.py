import re
from decimal import Decimal, InvalidOperation

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from common.exceptions import FlywheelError
from common.money import money

from .models import (
    AddOnSubscription,
    BillingAccount,
    CreditNote,
    Dispute,
    Invoice,
    InvoiceLine,
    Payment,
    Subscription,
    TrainingPack,
    WebhookEvent,
)
from .services.invoices import invoice_mark_paid_by_transfer
from .services.refunds import (
    REFUND_REASONS,
    RefundInvalid,
    credit_note_paid_back,
    payment_refundable_minor,
    refund_request,
)
from .services.webhooks import webhooks_replay


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["organization", "product", "edition", "status", "seat_limit", "trial_ends_at", "created_at"]
    list_filter = ["status", "product", "edition__code"]
    search_fields = ["organization__name", "organization__public_id"]
    list_select_related = ["organization", "product", "edition"]
    raw_id_fields = ["organization", "started_by"]
    readonly_fields = ["created_at", "updated_at"]


# Invoices, payments and credit notes: read-only documents; money goes back by refund only. ------


def _minor_units(text: str) -> int | None:
    """"12.34" -> 1234, exactly (no floats); None if it is not an amount with at most 2 decimals."""
    try:
        amount = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        return None
    minor = amount * 100
    if not amount.is_finite() or minor != minor.to_integral_value():
        return None
    return int(minor)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Issued documents and Stripe's records are looked at, never edited here."""

    def has_refund_permission(self, request) -> bool:
        """Refunds are for staff allowed to issue credit notes (finance)."""
        return request.user.has_perm("billing.add_creditnote")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def _refund_action(modeladmin: admin.ModelAdmin, request, payments: list[Payment], selected: list[int]):
    """The refund form for one payment, then the refund: a pending credit note that the worker
    turns into a Stripe refund and a numbered credit note."""
    if len(payments) != 1:
        modeladmin.message_user(request, "Refund one payment at a time.", messages.ERROR)
        return None
    payment = payments[0]
    refundable = payment_refundable_minor(payment)
    error = ""
    if "apply" in request.POST:
        amount_minor = _minor_units(request.POST.get("amount", ""))
        reason_code = request.POST.get("reason_code", "")
        reason_label = dict(REFUND_REASONS).get(reason_code, "")
        note_text = request.POST.get("note", "").strip()
        reason = f"{reason_label}: {note_text}" if reason_label and note_text else reason_label or note_text
        if amount_minor is None:
            error = "Enter the amount as a number with at most two decimals, e.g. 12.50."
        else:
            try:
                note = refund_request(payment=payment, amount_minor=amount_minor, reason=reason, actor=request.user)
            except RefundInvalid as refusal:
                error = refusal.message
            else:
                modeladmin.message_user(
                    request,
                    f"Refund of {money(note.amount_minor, note.currency)} on invoice {payment.invoice.number} requested; "
                    "its credit note is numbered when Stripe confirms.",
                    messages.SUCCESS,
                )
                return None
    return TemplateResponse(
        request,
        "admin/billing/refund.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": f"Refund invoice {payment.invoice.number}",
            "payment": payment,
            "refundable": money(refundable, payment.currency),
            "default_amount": money(refundable),
            "reasons": REFUND_REASONS,
            "error": error,
            "action": request.POST.get("action", ""),
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "selected": selected,
            "collected": money(payment.amount_minor, payment.currency),
            "opts": modeladmin.model._meta,
        },
    )


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
    fields = ["description", "addon", "quantity", "unit_amount_minor", "amount_minor", "period_start", "period_end"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class CreditNoteInline(admin.TabularInline):
    model = CreditNote
    extra = 0
    can_delete = False
    fields = ["number", "status", "amount_minor", "currency", "reason", "stripe_refund_id", "issued_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = ["number", "organization", "bill_to", "kind", "status", "total", "issued_at", "paid_at", "due_at"]
    list_filter = ["status", "kind", "collection_method"]
    search_fields = ["number", "organization__name", "po_number"]
    list_select_related = ["organization", "bill_to"]
    inlines = [InvoiceLineInline, CreditNoteInline]
    actions = ["refund", "mark_paid_by_transfer"]

    def has_mark_paid_permission(self, request) -> bool:
        return request.user.has_perm("billing.change_invoice")

    @admin.action(
        description="Mark the selected purchase-order invoices paid (bank transfer or cheque)",
        permissions=["mark_paid"],
    )
    def mark_paid_by_transfer(self, request, queryset):
        marked = 0
        for invoice in queryset.filter(status=Invoice.Status.OPEN, collection_method="invoice").order_by("pk"):
            invoice_mark_paid_by_transfer(invoice=invoice, actor=request.user)
            marked += 1
        skipped = queryset.count() - marked
        self.message_user(
            request,
            f"{marked} invoice(s) marked paid" + (f"; {skipped} skipped (not open purchase-order invoices)" if skipped else "") + ".",
            messages.SUCCESS if marked else messages.WARNING,
        )

    @admin.display(description="Total")
    def total(self, invoice: Invoice) -> str:
        return money(invoice.total_minor, invoice.currency)

    @admin.action(description="Refund the card payment of the selected invoice", permissions=["refund"])
    def refund(self, request, queryset):
        payments = [
            payment
            for invoice in queryset.order_by("pk")
            for payment in invoice.payments.filter(status=Payment.Status.SUCCEEDED).select_related("invoice", "organization")
        ]
        if queryset.count() == 1 and not payments:
            self.message_user(request, "This invoice has no succeeded card payment to refund.", messages.ERROR)
            return None
        return _refund_action(self, request, payments, list(queryset.values_list("pk", flat=True)))


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "organization", "invoice", "status", "amount", "succeeded_at", "stripe_payment_intent_id"]
    list_filter = ["status"]
    search_fields = ["public_id", "stripe_payment_intent_id", "invoice__number", "organization__name"]
    list_select_related = ["organization", "invoice"]
    inlines = [CreditNoteInline]
    actions = ["refund"]

    @admin.display(description="Amount")
    def amount(self, payment: Payment) -> str:
        return money(payment.amount_minor, payment.currency)

    @admin.action(description="Refund the selected payment (fully or partly)", permissions=["refund"])
    def refund(self, request, queryset):
        payments = list(queryset.select_related("invoice", "organization"))
        return _refund_action(self, request, payments, [payment.pk for payment in payments])


@admin.register(CreditNote)
class CreditNoteAdmin(ReadOnlyAdmin):
    list_display = ["number", "organization", "invoice", "status", "source", "amount", "to_pay_back", "reason", "issued_at"]
    list_filter = ["status", "source"]
    search_fields = ["number", "invoice__number", "stripe_refund_id", "organization__name"]
    list_select_related = ["organization", "invoice__bill_to"]
    actions = ["paid_back"]

    @admin.display(description="Amount")
    def amount(self, note: CreditNote) -> str:
        return money(note.amount_minor, note.currency)

    @admin.display(description="To pay back by transfer")
    def to_pay_back(self, note: CreditNote) -> str:
        """A partner's credit on a purchase-order invoice it paid by transfer: staff pay it back."""
        if note.source != CreditNote.Source.TRANSFER:
            return "-"
        payee = note.invoice.bill_to or note.organization
        if note.paid_back_at:
            return f"Paid back to {payee} on {note.paid_back_at:%d %b %Y}"
        return f"Pay {money(note.amount_minor, note.currency)} back to {payee}"

    def has_paid_back_permission(self, request) -> bool:
        return request.user.is_staff

    @admin.action(description="Record the selected credit notes as paid back by transfer", permissions=["paid_back"])
    def paid_back(self, request, queryset):
        done = 0
        for note in queryset:
            try:
                credit_note_paid_back(credit_note=note, actor=request.user)
                done += 1
            except FlywheelError as refusal:
                self.message_user(request, refusal.message, messages.ERROR)
        if done:
            self.message_user(request, f"{done} credit note{'s' if done != 1 else ''} recorded as paid back.")


@admin.register(Dispute)
class DisputeAdmin(ReadOnlyAdmin):
    list_display = ["stripe_dispute_id", "organization", "payment", "amount_minor", "currency", "reason", "status", "evidence_due_by"]
    list_filter = ["status", "reason"]
    search_fields = ["stripe_dispute_id", "organization__name"]
    list_select_related = ["organization", "payment"]


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    """Stripe's events as stored, with where each stands (its outcome) and why. Staff replay
    dead and not-ours events here once the cause is fixed."""

    # Few columns, so the reason has room beside the admin's menu and filters at 1280 px.
    list_display = ["event", "outcome", "reason", "attempts"]
    list_display_links = ["event"]
    ordering = ["-received_at", "-pk"]
    list_filter = ["outcome", "type"]
    # An event's id, or the id of the object it is about (pi_..., ch_..., du_...).
    search_fields = ["stripe_event_id", "payload__data__object__id"]
    search_help_text = "An event id (evt_...) or the id of its object (pi_..., ch_..., du_...)."
    actions = ["replay"]
    # Where it stands first, then Stripe's body (raw_body only when jsonb could not hold it).
    fields = readonly_fields = [
        "stripe_event_id",
        "type",
        "outcome",
        "outcome_reason",
        "received_at",
        "processed_at",
        "attempts",
        "last_error",
        "claimed_until",
        "payload",
        "raw_body",
    ]

    @admin.display(description="Event", ordering="stripe_event_id")
    def event(self, event: WebhookEvent) -> str:
        # The id, then its type and when it came; Stripe's longest types (70 characters) break
        # after a dot.
        return format_html(
            '{}<br><span class="quiet">{} · {}</span>',
            event.stripe_event_id,
            format_html_join(mark_safe("<wbr>"), "{}", ((part,) for part in re.split(r"(?<=\.)", event.type))),
            date_format(timezone.localtime(event.received_at), "j M Y H:i:s"),
        )

    @admin.display(description="Why")
    def reason(self, event: WebhookEvent) -> str:
        text = event.outcome_reason
        return text if len(text) <= 100 else f"{text[:99]}…"

    def has_replay_permission(self, request) -> bool:
        return request.user.has_perm("billing.change_webhookevent")

    @admin.action(description="Replay selected events", permissions=["replay"])
    def replay(self, request, queryset):
        selected = list(queryset.values_list("pk", flat=True))
        replayed = webhooks_replay(event_ids=selected)
        waiting = len(selected) - len(replayed)
        one = len(replayed) == 1
        text = f"{len(replayed)} {'event' if one else 'events'} put back to be applied; the worker applies {'it' if one else 'them'} now."
        if waiting:
            text += f" {waiting} already waiting for a retry {'was' if waiting == 1 else 'were'} left as {'it was' if waiting == 1 else 'they were'}."
        self.message_user(request, text, messages.SUCCESS if replayed else messages.WARNING)


@admin.register(BillingAccount)
class BillingAccountAdmin(admin.ModelAdmin):
    """Staff switch an organization to purchase orders (collection method "invoice") here."""

    list_display = ["organization", "collection_method", "po_number", "net_terms_days", "card_brand", "card_last4"]
    list_filter = ["collection_method"]
    search_fields = ["organization__name", "po_number", "billing_email", "stripe_customer_id"]
    fields = [
        "organization",
        "collection_method",
        "po_number",
        "invoice_terms_requested_at",
        "net_terms_days",
        "billing_email",
        "stripe_customer_id",
        "card_brand",
        "card_last4",
        "card_exp_month",
        "card_exp_year",
    ]
    readonly_fields = ["organization", "stripe_customer_id", "card_brand", "card_last4", "card_exp_month", "card_exp_year"]
    list_select_related = ["organization"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AddOnSubscription)
class AddOnSubscriptionAdmin(ReadOnlyAdmin):
    """Add-ons on organizations' subscriptions: looked at here; bought, tried, removed and kept
    through billing's services (the billing page), which keep the invoices and grants in step."""

    list_display = ["organization", "addon", "status", "subscription", "trial_ends_at", "cancel_at_period_end", "created_at"]
    list_filter = ["status", "cancel_at_period_end", "addon__product", "addon__code"]
    search_fields = ["organization__name", "organization__public_id", "public_id"]
    list_select_related = ["organization", "addon__product", "subscription__product", "subscription__edition"]
    readonly_fields = [
        "public_id", "organization", "subscription", "addon", "status", "trial_started_at", "trial_ends_at",
        "cancel_at_period_end", "cancel_reason", "canceled_at", "suspended_at", "started_by", "created_at", "updated_at",
    ]


@admin.register(TrainingPack)
class TrainingPackAdmin(ReadOnlyAdmin):
    """Training credits bought (one pack per add-on invoice), spent by assignments."""

    list_display = ["organization", "addon", "credits", "credits_used", "granted_at", "expires_at", "expired_at", "suspended_at"]
    list_filter = ["addon__product", "addon__code"]
    search_fields = ["organization__name", "organization__public_id", "public_id", "invoice__number"]
    list_select_related = ["organization", "addon__product", "invoice"]
    readonly_fields = [
        "public_id", "organization", "addon", "invoice", "credits", "credits_used", "granted_at", "expires_at",
        "expiry_reminders_sent", "expired_at", "suspended_at", "created_by",
    ]
