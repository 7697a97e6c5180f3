"""A quote as a document: what its page and its PDF say, from the quote row as it was made
(prices, seller, bill-to and licensee are fixed when the quote is made)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from billing.documents import pdf_start
from billing.formats import day
from common.money import money

from .models import Quote
from .selectors import tier_name


@dataclass(frozen=True)
class QuoteDocumentLine:
    description: str
    quantity: int
    unit_amount_minor: int
    amount_minor: int


@dataclass(frozen=True)
class QuoteDocument:
    """What a quote says, the same on its page and in its PDF."""

    number: str
    status: str  # "Open", "Accepted", "Withdrawn", "Expired"
    status_code: str  # open, accepted, withdrawn, expired
    issued_at: datetime
    valid_until: datetime
    interval: str
    currency: str
    seller_details: str
    bill_to_details: str
    licensee_details: str
    lines: list[QuoteDocumentLine]
    subtotal_minor: int
    discount_label: str
    discount_minor: int
    total_minor: int
    note: str
    partner_name: str
    accepted_at: datetime | None
    po_number: str
    paid_with: str

    @property
    def discount_line_minor(self) -> int:
        """The discount as its line shows it: negative."""
        return -self.discount_minor

    @property
    def filename(self) -> str:
        return f"{self.number}.pdf"

    @property
    def interval_text(self) -> str:
        return "Annual" if self.interval == "year" else "Monthly"


def quote_status(quote: Quote, *, at: datetime | None = None) -> tuple[str, str]:
    """(code, words) of the quote's state now: an open quote past its date is expired."""
    if quote.status == Quote.Status.OPEN and (at or timezone.now()) > quote.valid_until:
        return "expired", "Expired"
    return quote.status, quote.get_status_display()


def discount_percent(discount_bp: int) -> str:
    """1500 -> "15 %", 1250 -> "12.5 %"."""
    whole, rest = divmod(discount_bp, 100)
    return f"{whole} %" if not rest else f"{whole}.{rest:02d}".rstrip("0") + " %"


def discount_label(*, tier: str, discount_bp: int) -> str:
    """The discount line's words: "Partner discount (Gold, 15 %)"."""
    return f"Partner discount ({tier_name(tier)}, {discount_percent(discount_bp)})"


def discount_words(quote: Quote) -> str:
    if not quote.discount_minor:
        return ""
    if quote.partner_id:
        return discount_label(tier=quote.partner.tier, discount_bp=quote.discount_bp)
    return f"Discount ({discount_percent(quote.discount_bp)})"


def quote_document(quote: Quote) -> QuoteDocument:
    code, words = quote_status(quote)
    return QuoteDocument(
        number=quote.number,
        status=words,
        status_code=code,
        issued_at=quote.created_at,
        valid_until=quote.valid_until,
        interval=quote.interval,
        currency=quote.currency,
        seller_details=quote.seller_details,
        bill_to_details=quote.bill_to_details,
        licensee_details=quote.licensee_details,
        lines=[
            QuoteDocumentLine(
                description=line.description,
                quantity=line.quantity,
                unit_amount_minor=line.unit_amount_minor,
                amount_minor=line.amount_minor,
            )
            for line in quote.lines.order_by("position", "pk")
        ],
        subtotal_minor=quote.subtotal_minor,
        discount_label=discount_words(quote),
        discount_minor=quote.discount_minor,
        total_minor=quote.total_minor,
        note=quote.note,
        partner_name=quote.partner.organization.name if quote.partner_id else "",
        accepted_at=quote.accepted_at,
        po_number=quote.po_number,
        paid_with=quote.get_paid_with_display() if quote.paid_with else "",
    )


def quote_pdf(document: QuoteDocument) -> bytes:
    """The quote as a PDF (A4), laid out like billing's invoices. The same quote in the same
    state always gives the same bytes (its creation date is the quote's)."""
    pages = pdf_start(title=f"Quote {document.number}", created_at=document.issued_at)
    pdf, family, text, line = pages.pdf, pages.family, pages.text, pages.line

    line(document.seller_details or "Flywheel", size=10, style="B" if not document.seller_details else "")
    pdf.ln(4)
    line(f"Quote {document.number}", size=18, style="B", height=10)
    if document.status_code == "expired":
        pdf.set_text_color(170, 0, 0)
        line(f"EXPIRED on {day(document.valid_until)}: this quote can no longer be accepted.", size=14, style="B", height=8)
        pdf.set_text_color(0, 0, 0)
    elif document.status_code == "withdrawn":
        pdf.set_text_color(170, 0, 0)
        line("WITHDRAWN: this quote can no longer be accepted.", size=14, style="B", height=8)
        pdf.set_text_color(0, 0, 0)
    line(f"Status: {document.status}")
    line(f"Issued: {day(document.issued_at)}")
    line(f"Valid until: {day(document.valid_until)} (end of day, UTC)")
    line(f"Billing: {document.interval_text}, a term starting on the day the quote is accepted")
    if document.accepted_at:
        paid = f", {document.paid_with.lower()}" if document.paid_with else ""
        po = f" {document.po_number}" if document.po_number else ""
        line(f"Accepted: {day(document.accepted_at)}{paid}{po}")
    pdf.ln(3)
    line("Bill to:", style="B")
    line(document.bill_to_details)
    if document.licensee_details and document.licensee_details != document.bill_to_details:
        pdf.ln(2)
        line("Licensee:", style="B")
        line(document.licensee_details)
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
            table.row([text(item.description), str(item.quantity), money(item.unit_amount_minor), money(item.amount_minor)])
    pdf.ln(4)
    line(f"Subtotal: {money(document.subtotal_minor, document.currency)}")
    if document.discount_minor:
        line(f"{document.discount_label}: {money(-document.discount_minor, document.currency)}")
    line(f"Total: {money(document.total_minor, document.currency)}", size=12, style="B", height=8)
    if document.note:
        pdf.ln(3)
        line("Note:", style="B")
        line(document.note)
    pdf.ln(3)
    line(
        f"Prices are fixed until {day(document.valid_until)}. Accepting this quote buys the items above for one "
        f"{'year' if document.interval == 'year' else 'month'} from the day it is accepted, paid by card or against a "
        "purchase order; they renew at the end of the term unless cancelled.",
        size=9,
    )
    return bytes(pdf.output())
