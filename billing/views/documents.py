"""Invoices and credit notes (billing/documents.py) as pages and PDFs, for members of their
organization."""

from __future__ import annotations

import uuid

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from common.exceptions import NotFound

from ..documents import credit_note_document, document_pdf, invoice_document
from ..models import Payment
from ..selectors import get_credit_note_for_user, get_invoice_for_user, invoice_failed_payment


def _document_response(
    request: HttpRequest, document, *, pdf_url: str, as_pdf: bool, failed_payment: Payment | None = None
) -> HttpResponse:
    if as_pdf:
        return HttpResponse(
            document_pdf(document),
            content_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{document.filename}"'},
        )
    return render(
        request, "billing/invoice.html", {"document": document, "pdf_url": pdf_url, "failed_payment": failed_payment}
    )


@login_required
def invoice_page(request: HttpRequest, invoice_id: uuid.UUID, as_pdf: bool = False) -> HttpResponse:
    """An invoice, for members of its organization (404 for anyone else): HTML or PDF."""
    try:
        invoice = get_invoice_for_user(user=request.user, invoice_public_id=invoice_id)
    except NotFound:
        raise Http404 from None
    return _document_response(
        request,
        invoice_document(invoice),
        pdf_url=reverse("invoice_pdf", args=[invoice.public_id]),
        as_pdf=as_pdf,
        failed_payment=None if as_pdf else invoice_failed_payment(invoice=invoice),
    )


@login_required
def invoice_pdf(request: HttpRequest, invoice_id: uuid.UUID) -> HttpResponse:
    return invoice_page(request, invoice_id, as_pdf=True)


@login_required
def credit_note_page(request: HttpRequest, credit_note_id: uuid.UUID, as_pdf: bool = False) -> HttpResponse:
    """An issued credit note, for members of its organization (404 for anyone else)."""
    try:
        credit_note = get_credit_note_for_user(user=request.user, credit_note_public_id=credit_note_id)
    except NotFound:
        raise Http404 from None
    return _document_response(
        request,
        credit_note_document(credit_note),
        pdf_url=reverse("credit_note_pdf", args=[credit_note.public_id]),
        as_pdf=as_pdf,
    )


@login_required
def credit_note_pdf(request: HttpRequest, credit_note_id: uuid.UUID) -> HttpResponse:
    return credit_note_page(request, credit_note_id, as_pdf=True)
