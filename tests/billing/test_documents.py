"""Invoices as documents: the HTML page and the PDF for the organization's members only, and
an issued invoice that nothing can change."""

import io
from datetime import timedelta

import pytest
from django.db import transaction
from django.db.models import ProtectedError
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from accounts.models import Membership
from billing.documents import DocumentImmutable, unicode_font
from billing.models import Invoice, InvoiceLine, Payment
from billing.services import billing_account, checkout

from ..conftest import organization_on
from ..factories import MembershipFactory, UserFactory
from .factories import InvoiceFactory, SubscriptionFactory
from .helpers import OK_CARD, card_enter, paid_payment, standard_checkout


def _paid_invoice(localstripe, organization, admin) -> Invoice:
    payment = paid_payment(localstripe, organization, admin)
    assert payment.status == Payment.Status.SUCCEEDED
    return Invoice.objects.get(pk=payment.invoice_id)


def _pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def test_members_see_the_invoice_page_and_other_organizations_get_404(client, localstripe, catalog):
    organization, admin = organization_on("standard")
    invoice = _paid_invoice(localstripe, organization, admin)
    member = MembershipFactory(organization=organization, role=Membership.Role.MEMBER).user
    url = reverse("invoice", args=[invoice.public_id])
    assert url == f"/billing/invoices/{invoice.public_id}/"

    client.force_login(member)
    response = client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    line = invoice.lines.get()
    assert f'<span id="document-number">{invoice.number}</span>' in page
    assert organization.name in page and line.description in page
    assert "USD 40.75" in page  # 5 seats x 8.15, the total
    assert 'id="document-status">Paid<' in page
    assert invoice.issued_at.strftime("%-d %b %Y") in page
    assert reverse("invoice_pdf", args=[invoice.public_id]) in page

    _, stranger = organization_on("standard")
    client.force_login(stranger)
    assert client.get(url).status_code == 404
    assert client.get(reverse("invoice_pdf", args=[invoice.public_id])).status_code == 404
    client.logout()
    assert client.get(url).status_code == 302  # to the sign-in page


def test_purchase_order_number_and_due_date_are_shown(client, catalog):
    invoice = InvoiceFactory(paid=True, subscription=SubscriptionFactory(paid=True))
    admin = MembershipFactory(organization=invoice.organization, role=Membership.Role.ADMIN).user
    invoice.po_number = "PO-4711"
    invoice.due_at = invoice.issued_at + timedelta(days=30)
    invoice.save(update_fields=["po_number", "due_at"])  # still allowed on an issued invoice
    client.force_login(admin)
    page = client.get(reverse("invoice", args=[invoice.public_id])).content.decode()
    assert 'id="document-po">PO-4711<' in page
    assert invoice.due_at.strftime("%-d %b %Y") in page


def test_the_pdf_is_a_pdf_of_the_invoice(client, localstripe, catalog):
    organization, admin = organization_on("standard")
    organization.name = "Łódź Café"
    organization.save()
    invoice = _paid_invoice(localstripe, organization, admin)
    client.force_login(admin)
    response = client.get(f"/billing/invoices/{invoice.public_id}.pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert f'filename="{invoice.number}.pdf"' in response["Content-Disposition"]
    assert response.content.startswith(b"%PDF")
    text = _pdf_text(response.content)
    assert f"Invoice {invoice.number}" in text
    assert "USD 40.75" in text and "Status: Paid" in text
    assert invoice.lines.get().description in text
    assert ("Łódź Café" if unicode_font() else "Lodz Café") in text
    # The same invoice always gives the same PDF.
    assert client.get(f"/billing/invoices/{invoice.public_id}.pdf").content == response.content


def test_a_paid_invoice_cannot_be_changed(catalog):
    invoice = InvoiceFactory(paid=True, subscription=SubscriptionFactory(paid=True))
    before = (invoice.number, invoice.total_minor, invoice.status)

    invoice.total_minor = 1
    with pytest.raises(DocumentImmutable, match=f"Invoice {invoice.number} is issued: its total_minor cannot change"):
        with transaction.atomic():
            invoice.save()
    invoice.refresh_from_db()
    invoice.number = "FW-999999"
    with pytest.raises(DocumentImmutable, match="number"), transaction.atomic():
        invoice.save(update_fields=["number"])
    invoice.refresh_from_db()
    invoice.status = Invoice.Status.OPEN
    with pytest.raises(DocumentImmutable, match="is paid and stays paid"), transaction.atomic():
        invoice.save()

    line = invoice.lines.get()
    line.amount_minor = 1
    with pytest.raises(DocumentImmutable, match="lines of an issued invoice"), transaction.atomic():
        line.save()
    with pytest.raises(DocumentImmutable, match="never after"), transaction.atomic():
        InvoiceLine.objects.create(
            invoice=invoice, description="Sneaked in", quantity=1, unit_amount_minor=100, amount_minor=100,
            period_start=invoice.period_start, period_end=invoice.period_end,
        )
    with pytest.raises((DocumentImmutable, ProtectedError)), transaction.atomic():
        invoice.delete()

    invoice = Invoice.objects.get(pk=invoice.pk)
    assert (invoice.number, invoice.total_minor, invoice.status) == before
    assert invoice.lines.count() == 1 and invoice.lines.get().amount_minor == 4075


def test_the_admin_shows_invoices_read_only(client, localstripe, trial_organization):
    organization, admin = trial_organization
    invoice = _paid_invoice(localstripe, organization, admin)
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    url = reverse("admin:billing_invoice_change", args=[invoice.pk])
    page = client.get(url).content.decode()
    assert invoice.number in page and 'name="_save"' not in page
    assert client.post(url, {"total_minor": "1", "number": "FW-1"}).status_code == 403
    assert client.get(reverse("admin:billing_invoice_add")).status_code == 403
    assert client.get(reverse("admin:billing_invoice_delete", args=[invoice.pk])).status_code == 403
    invoice.refresh_from_db()
    assert invoice.total_minor == 4075


def test_an_open_invoice_is_still_numbered_and_shown(client, localstripe, trial_organization):
    organization, admin = trial_organization
    intent, _ = card_enter(localstripe, organization, admin, OK_CARD)
    billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=intent.id)
    payment = standard_checkout(organization, admin)  # not charged yet
    client.force_login(admin)
    page = client.get(reverse("invoice", args=[payment.invoice.public_id])).content.decode()
    assert 'id="document-status">Open<' in page and payment.invoice.number in page
    assert timezone.now() >= payment.invoice.issued_at


def test_invoices_name_the_seller_and_the_customer_as_they_were_at_issue(client, localstripe, catalog, settings):
    settings.SELLER_DETAILS = "Flywheel Inc.\n1 Main Street, Springfield\nVAT US123456789"
    organization, admin = organization_on("standard")
    client.force_login(admin)
    response = client.post(
        reverse("billing_details"),
        {"legal_name": "  Acme   Widgets Ltd ", "billing_address": "4 Quay Road\r\n\r\nDublin D02  X285", "tax_id": "ie 6388047v"},
    )
    assert response.status_code == 302
    refused = client.post(reverse("billing_details"), {"legal_name": "Acme", "billing_address": "", "tax_id": "<script>"}, follow=True)
    assert "does not look like a tax ID" in refused.content.decode()
    account = organization.billing_account
    account.refresh_from_db()
    assert (account.legal_name, account.billing_address, account.tax_id) == ("Acme Widgets Ltd", "4 Quay Road\nDublin D02 X285", "IE 6388047V")

    from catalog.selectors import edition_get

    from .helpers import card_set_up

    card_set_up(localstripe, organization, admin, OK_CARD)
    checkout.subscription_checkout(
        subscription=organization.subscriptions.get(), actor=admin,
        edition=edition_get(product_code="tracker", edition_code="standard"), seats=2, interval="month",
    )
    invoice = Invoice.objects.get()
    page = client.get(reverse("invoice", args=[invoice.public_id])).content.decode()
    assert "Flywheel Inc.<br>1 Main Street, Springfield<br>VAT US123456789" in page
    assert "Acme Widgets Ltd<br>4 Quay Road<br>Dublin D02 X285<br>Tax ID: IE 6388047V" in page
    # Later changes reach new invoices only.
    client.post(reverse("billing_details"), {"legal_name": "Acme Holdings", "billing_address": "", "tax_id": ""})
    invoice.refresh_from_db()
    assert invoice.customer_details.startswith("Acme Widgets Ltd")
    pdf_text = _pdf_text(client.get(reverse("invoice_pdf", args=[invoice.public_id])).content)
    assert "Acme Widgets Ltd" in pdf_text and "VAT US123456789" in pdf_text
    # A member who is not an admin cannot change them.
    member = MembershipFactory(organization=organization, role="member").user
    client.force_login(member)
    assert client.post(reverse("billing_details"), {"legal_name": "Evil"}).status_code == 404


def test_development_invoices_name_a_demo_seller_and_every_date_reads_one_way(client, localstripe, catalog):
    from datetime import UTC, datetime

    import time_machine

    with time_machine.travel(datetime(2026, 12, 6, 9, 30, tzinfo=UTC), tick=False):
        organization, admin = organization_on("standard")
        invoice = _paid_invoice(localstripe, organization, admin)
        client.force_login(admin)
        page = client.get(reverse("invoice", args=[invoice.public_id])).content.decode()
        pdf = _pdf_text(client.get(f"/billing/invoices/{invoice.public_id}.pdf").content)
    for shown in (page, pdf):
        assert "Flywheel Demo Ltd" in shown and "Set SELLER_DETAILS" not in shown
        assert "6 Dec 2026" in shown and "06 Dec 2026" not in shown and "December 2026" not in shown
    assert "Issued: 6 Dec 2026" in pdf and "Period: 6 Dec 2026 – 6 Jan 2027" in pdf
