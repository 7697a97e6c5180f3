"""Invoices and credit notes as documents: what they say (HTML page, PDF) and the rule that
an issued document never changes.

Immutability is kept below the services, on every `save()` and `delete()` (signal receivers,
connected in BillingConfig.ready): an issued invoice keeps its number, amounts, period and what
it bought, a paid invoice stays paid, its lines are written in the transaction that issues it
and never after, and an issued credit note is final. Money given back is a new document (a
credit note, billing/services/refunds.py), never an edit. Bulk `QuerySet.update()` bypasses signals: the
services only use it for status moves that these rules allow.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save, pre_delete, pre_save
from django.dispatch import receiver

from common.exceptions import FlywheelError
from common.money import money

from .formats import day, span
from .models import CreditNote, Invoice, InvoiceLine


class DocumentImmutable(FlywheelError):
    default_message = "An issued invoice or credit note cannot be changed; issue a credit note instead."


# Immutability ---------------------------------------------------------------------------------

# What an issued invoice says. Status, payment dates, the purchase-order number, the due date and
# reminder counts may still move (an open invoice gets paid, voided, or sent with its PO terms).
INVOICE_FROZEN_FIELDS = (
    "organization",
    "number",
    "kind",
    "currency",
    "total_minor",
    "issued_at",
    "subscription",
    "target_edition",
    "target_seats",
    "target_interval",
    "period_start",
    "period_end",
    "seats_delta",
    "seller_details",
    "customer_details",
    "bill_to",
    "licensee_details",
    "discount_bp",
)
CREDIT_NOTE_FROZEN_FIELDS = (
    "organization",
    "invoice",
    "payment",
    "number",
    "status",
    "source",
    "currency",
    "amount_minor",
    "reason",
    "stripe_refund_id",
    "issued_at",
)

_state = threading.local()


def _invoices_being_issued() -> dict[int, Any]:
    """Invoice id -> the atomic block that created it, for this thread. Lines may be added to an
    invoice only while that block is still open: in the transaction that issues it."""
    if not hasattr(_state, "issuing"):
        _state.issuing = {}
    return _state.issuing


def _block_open(block: Any, using: str) -> bool:
    return any(open_block is block for open_block in transaction.get_connection(using).atomic_blocks)


def _changed_fields(model: Any, instance: Any, names: tuple[str, ...], update_fields: Any) -> list[str]:
    attnames = {name: model._meta.get_field(name).attname for name in names}
    if update_fields is not None:
        attnames = {name: attname for name, attname in attnames.items() if name in update_fields or attname in update_fields}
    if not attnames:
        return []
    stored = model.objects.filter(pk=instance.pk).values(*attnames.values()).first()
    if stored is None:
        return []
    return [name for name, attname in attnames.items() if stored[attname] != getattr(instance, attname)]


@receiver(pre_save, sender=Invoice, dispatch_uid="billing.documents.invoice_immutable")
def invoice_immutable(sender: Any, instance: Invoice, raw: bool = False, update_fields: Any = None, **kwargs: Any) -> None:
    if raw or instance._state.adding or instance.pk is None:
        return
    changed = _changed_fields(Invoice, instance, INVOICE_FROZEN_FIELDS, update_fields)
    if changed:
        raise DocumentImmutable(
            f"Invoice {instance.number} is issued: its {', '.join(changed)} cannot change. "
            "Give money back with a credit note instead."
        )
    if update_fields is None or "status" in update_fields:
        stored_status = Invoice.objects.filter(pk=instance.pk).values_list("status", flat=True).first()
        if stored_status == Invoice.Status.PAID and instance.status != Invoice.Status.PAID:
            raise DocumentImmutable(
                f"Invoice {instance.number} is paid and stays paid. Give money back with a credit note instead."
            )


@receiver(post_save, sender=Invoice, dispatch_uid="billing.documents.invoice_issuing")
def invoice_issuing(sender: Any, instance: Invoice, created: bool, using: str = "default", **kwargs: Any) -> None:
    if not created:
        return
    issuing = _invoices_being_issued()
    for invoice_id, (block, block_using) in list(issuing.items()):
        if not _block_open(block, block_using):
            del issuing[invoice_id]
    blocks = transaction.get_connection(using).atomic_blocks
    if blocks:
        issuing[instance.pk] = (blocks[-1], using)


@receiver(pre_save, sender=InvoiceLine, dispatch_uid="billing.documents.invoice_line_immutable")
def invoice_line_immutable(sender: Any, instance: InvoiceLine, raw: bool = False, **kwargs: Any) -> None:
    if raw:
        return
    if not instance._state.adding and instance.pk is not None:
        raise DocumentImmutable("The lines of an issued invoice cannot change.")
    block, using = _invoices_being_issued().get(instance.invoice_id, (None, "default"))
    if block is None or not _block_open(block, using):
        raise DocumentImmutable("Lines are written in the transaction that issues the invoice, never after.")


@receiver(pre_save, sender=CreditNote, dispatch_uid="billing.documents.credit_note_immutable")
def credit_note_immutable(
    sender: Any, instance: CreditNote, raw: bool = False, update_fields: Any = None, **kwargs: Any
) -> None:
    if raw or instance._state.adding or instance.pk is None:
        return
    stored_status = CreditNote.objects.filter(pk=instance.pk).values_list("status", flat=True).first()
    if stored_status != CreditNote.Status.ISSUED:
        return
    changed = _changed_fields(CreditNote, instance, CREDIT_NOTE_FROZEN_FIELDS, update_fields)
    if changed:
        raise DocumentImmutable(f"Credit note {instance.number} is issued: its {', '.join(changed)} cannot change.")


@receiver(pre_delete, sender=Invoice, dispatch_uid="billing.documents.invoice_undeletable")
@receiver(pre_delete, sender=InvoiceLine, dispatch_uid="billing.documents.invoice_line_undeletable")
def invoice_undeletable(sender: Any, instance: Any, **kwargs: Any) -> None:
    raise DocumentImmutable("Issued invoices are kept: their numbers have no gaps. Void it instead.")


@receiver(pre_delete, sender=CreditNote, dispatch_uid="billing.documents.credit_note_undeletable")
def credit_note_undeletable(sender: Any, instance: CreditNote, **kwargs: Any) -> None:
    if instance.status == CreditNote.Status.ISSUED:
        raise DocumentImmutable("Issued credit notes are kept: their numbers have no gaps.")


# The document ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DocumentLine:
    description: str
    quantity: int
    unit_amount_minor: int
    amount_minor: int
    period_start: datetime | None = None
    period_end: datetime | None = None

    @property
    def prorated(self) -> bool:
        """Charged (or credited) for part of a period: the amount is not quantity x unit price."""
        return self.amount_minor != self.quantity * self.unit_amount_minor

    @property
    def period_text(self) -> str:
        """"Prorated for 6 Dec 2026 – 6 Jan 2027", or the plain span of a whole period."""
        if not (self.period_start and self.period_end):
            return ""
        dates = span(self.period_start, self.period_end)
        if dates in self.description:
            return ""  # the description says it already (lines issued since issue 16)
        return f"{'Prorated for ' if self.prorated else ''}{dates}"


@dataclass(frozen=True)
class Reference:
    """Another document this one points at: a credit note of an invoice, or its invoice."""

    label: str
    number: str
    issued_at: datetime | None
    amount_minor: int
    note: str = ""
    url: str = ""


@dataclass(frozen=True)
class Document:
    """What an invoice or a credit note says, the same in HTML and in the PDF."""

    kind: str
    number: str
    status: str
    status_code: str
    organization_name: str
    issued_at: datetime
    currency: str
    lines: list[DocumentLine]
    total_minor: int
    due_at: datetime | None = None
    paid_at: datetime | None = None
    po_number: str = ""
    period_start: datetime | None = None
    period_end: datetime | None = None
    reason: str = ""
    refunded_minor: int = 0
    references: list[Reference] = field(default_factory=list)
    public_id: str = ""
    seller_details: str = ""
    customer_details: str = ""
    # Billed to a partner: the organization that uses what it pays for (printed as "Licensee").
    licensee_details: str = ""

    @property
    def billed_to(self) -> str:
        return self.customer_details or self.organization_name

    @property
    def net_minor(self) -> int:
        return self.total_minor - self.refunded_minor

    @property
    def filename(self) -> str:
        return f"{self.number}.pdf"


def invoice_document(invoice: Invoice) -> Document:
    from django.urls import reverse

    credit_notes = list(
        CreditNote.objects.filter(invoice=invoice, status=CreditNote.Status.ISSUED).order_by("issued_at", "pk")
    )
    return Document(
        kind="Invoice",
        number=invoice.number,
        status=invoice.get_status_display(),
        status_code=invoice.status,
        organization_name=invoice.organization.name,
        seller_details=invoice.seller_details,
        customer_details=invoice.customer_details,
        licensee_details=invoice.licensee_details,
        issued_at=invoice.issued_at,
        currency=invoice.currency,
        lines=[
            DocumentLine(
                description=line.description,
                quantity=line.quantity,
                unit_amount_minor=line.unit_amount_minor,
                amount_minor=line.amount_minor,
                period_start=line.period_start,
                period_end=line.period_end,
            )
            for line in invoice.lines.order_by("pk")
        ],
        total_minor=invoice.total_minor,
        due_at=invoice.due_at,
        paid_at=invoice.paid_at,
        po_number=invoice.po_number,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        refunded_minor=sum(note.amount_minor for note in credit_notes),
        references=[
            Reference(
                label="Credit note",
                number=note.number,
                issued_at=note.issued_at,
                amount_minor=note.amount_minor,
                note=note.reason,
                url=reverse("credit_note", args=[note.public_id]),
            )
            for note in credit_notes
        ],
        public_id=str(invoice.public_id),
    )


def credit_note_document(credit_note: CreditNote) -> Document:
    from django.urls import reverse

    invoice = credit_note.invoice
    return Document(
        kind="Credit note",
        number=credit_note.number,
        status=credit_note.get_status_display(),
        status_code=credit_note.status,
        organization_name=credit_note.organization.name,
        seller_details=credit_note.invoice.seller_details,
        customer_details=credit_note.invoice.customer_details,
        licensee_details=credit_note.invoice.licensee_details,
        issued_at=credit_note.issued_at or credit_note.created_at,
        currency=credit_note.currency,
        lines=[
            DocumentLine(
                description=(
                    f"Credit on invoice {invoice.number}, paid back by bank transfer: {credit_note.reason}"
                    if credit_note.source == CreditNote.Source.TRANSFER
                    else f"Refund on invoice {invoice.number}: {credit_note.reason}"
                ),
                quantity=1,
                unit_amount_minor=credit_note.amount_minor,
                amount_minor=credit_note.amount_minor,
            )
        ],
        total_minor=credit_note.amount_minor,
        reason=credit_note.reason,
        references=[
            Reference(
                label="Invoice",
                number=invoice.number,
                issued_at=invoice.issued_at,
                amount_minor=invoice.total_minor,
                url=reverse("invoice", args=[invoice.public_id]),
            )
        ],
        public_id=str(credit_note.public_id),
    )


# PDF ------------------------------------------------------------------------------------------

# fpdf2's built-in Helvetica only knows Latin-1; a Unicode TrueType font is used where the machine
# has one (Debian's fonts-dejavu-core), so organization names in any script print as typed.
_FONT_CANDIDATES = (
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
)


def unicode_font() -> tuple[str, str] | None:
    configured = getattr(settings, "INVOICE_PDF_FONTS", None)
    for regular, bold in ([tuple(configured)] if configured else []) + list(_FONT_CANDIDATES):
        if Path(regular).is_file() and Path(bold).is_file():
            return regular, bold
    return None


def _latin1(text: str) -> str:
    """Text Helvetica can print: Latin-1 as is, accents folded away elsewhere, else '?'."""
    out = []
    for char in text:
        try:
            char.encode("latin-1")
        except UnicodeEncodeError:
            folded = unicodedata.normalize("NFKD", char).encode("latin-1", "ignore").decode("latin-1")
            char = folded or "?"
        out.append(char)
    return "".join(out)


def _date(moment: datetime | None) -> str:
    return day(moment)


@dataclass
class PdfPages:
    """An A4 PDF begun the way every Flywheel document is (pdf_start): its font family and the
    function that makes text printable in it."""

    pdf: Any
    family: str
    text: Callable[[str], str]

    def line(self, value: str, *, size: float = 10, style: str = "", height: float = 6) -> None:
        self.pdf.set_font(self.family, style, size)
        self.pdf.multi_cell(0, height, self.text(value), new_x="LMARGIN", new_y="NEXT")


def pdf_start(*, title: str, created_at: datetime) -> PdfPages:
    """An A4 PDF with its first page: Flywheel as author, the Unicode font when the machine has
    one (Helvetica and folded Latin-1 otherwise). Dated `created_at`, so the same document
    always gives the same bytes. Invoices, credit notes and quotes start here."""
    from fpdf import FPDF

    # fontTools narrates every font subset at INFO; that is noise in our logs.
    logging.getLogger("fontTools").setLevel(logging.WARNING)

    pdf = FPDF(format="A4")
    pdf.set_creation_date(created_at)
    pdf.set_title(title)
    pdf.set_author("Flywheel")
    pdf.set_creator("Flywheel")
    pdf.set_producer("Flywheel")
    pdf.set_auto_page_break(auto=True, margin=15)
    fonts = unicode_font()
    if fonts:
        pdf.add_font("Document", "", fonts[0])
        pdf.add_font("Document", "B", fonts[1])
        pages = PdfPages(pdf=pdf, family="Document", text=str)
    else:
        pages = PdfPages(pdf=pdf, family="Helvetica", text=_latin1)
    pdf.add_page()
    return pages


def document_pdf(document: Document) -> bytes:
    """The document as a PDF (A4). The same document always gives the same bytes: the PDF's
    creation date is the document's issue date."""
    pages = pdf_start(title=f"{document.kind} {document.number}", created_at=document.issued_at)
    pdf, family, text, line = pages.pdf, pages.family, pages.text, pages.line

    line(document.seller_details or "Flywheel", size=10, style="B" if not document.seller_details else "")
    pdf.ln(4)
    line(f"{document.kind} {document.number}", size=18, style="B", height=10)
    line(f"Status: {document.status}")
    pdf.ln(2)
    line(f"Billed to: {document.billed_to}", style="B")
    if document.licensee_details:
        line(f"Licensee: {document.licensee_details}")
    line(f"Issued: {_date(document.issued_at)}")
    if document.period_start and document.period_end:
        line(f"Period: {span(document.period_start, document.period_end)}")
    if document.po_number:
        line(f"Purchase order: {document.po_number}")
    if document.due_at:
        line(f"Due: {_date(document.due_at)}")
    if document.paid_at:
        line(f"Paid: {_date(document.paid_at)}")
    for reference in document.references:
        if document.kind != "Invoice":
            line(f"{reference.label}: {reference.number} of {_date(reference.issued_at)}")
    pdf.ln(4)

    pdf.set_font(family, "", 10)
    with pdf.table(
        col_widths=(100, 20, 35, 35),
        text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT"),
        first_row_as_headings=True,
        line_height=6,
    ) as table:
        table.row(["Description", "Quantity", f"Unit price ({document.currency})", f"Amount ({document.currency})"])
        for item in document.lines:
            description = item.description
            if item.period_text:
                description += f"\n{item.period_text}"
            table.row(
                [
                    text(description),
                    str(item.quantity),
                    money(item.unit_amount_minor),
                    money(item.amount_minor),
                ]
            )
    pdf.ln(4)
    line(f"Total: {money(document.total_minor, document.currency)}", size=12, style="B", height=8)
    if document.kind == "Invoice" and document.refunded_minor:
        line(f"Refunded: {money(document.refunded_minor, document.currency)}")
        line(f"Net: {money(document.net_minor, document.currency)}")
        for reference in document.references:
            line(
                f"{reference.label} {reference.number} of {_date(reference.issued_at)}: "
                f"{money(reference.amount_minor, document.currency)} ({reference.note})"
            )
    return bytes(pdf.output())
