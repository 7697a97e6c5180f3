"""The quote's PDF: its text as pypdf reads it (number, dates, seller, bill-to, licensee, lines,
totals, valid until), EXPIRED once past its date, and the same wall as the page."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse
from pypdf import PdfReader

from accounts.models import Membership
from partners.documents import quote_document, quote_pdf
from partners.services.quotes import quote_withdraw

from ..factories import MembershipFactory
from .quote_helpers import item, linked_customer, partner_on, partner_quote, use_session_org

pytestmark = pytest.mark.django_db
MADE = datetime(2026, 12, 6, 10, tzinfo=UTC)


def pdf_text(data: bytes) -> str:
    return " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages).split())


@pytest.fixture
def quote(catalog):
    partner, admin = partner_on("gold")
    customer, customer_admin = linked_customer(partner)
    with time_machine.travel(MADE, tick=False):
        made = partner_quote(partner, admin, customer, item(seats=50, addons=("github",)), note="Renewal aligned with FY27")
    return made, admin, customer_admin


def test_the_pdf_says_what_the_page_says(quote):
    quote, _, _ = quote
    with time_machine.travel(MADE + timedelta(days=1), tick=False):
        text = pdf_text(quote_pdf(quote_document(quote)))
    for words in [
        "Flywheel Demo Ltd",
        f"Quote {quote.number}",
        "Status: Open",
        "Issued: 6 Dec 2026",
        "Valid until: 5 Jan 2027 (end of day, UTC)",
        "Billing: Annual",
        "Bill to: Northwind Partners",
        "Licensee: Acme Corp",
        "Tracker Standard, 50 seats, annual 50 81.50 4,075.00",
        "GitHub integration for Tracker, 50 seats, annual 50 15.00 750.00",
        "Subtotal: USD 4,825.00",
        "Partner discount (Gold, 15 %): -USD 723.75",
        "Total: USD 4,101.25",
        "Renewal aligned with FY27",
    ]:
        assert words in text, words
    assert "EXPIRED" not in text


def test_an_expired_quote_pdf_says_expired(quote):
    quote, _, _ = quote
    with time_machine.travel(MADE + timedelta(days=31), tick=False):
        text = pdf_text(quote_pdf(quote_document(quote)))
    assert "EXPIRED on 5 Jan 2027: this quote can no longer be accepted." in text
    assert "Status: Expired" in text


def test_a_withdrawn_quote_pdf_says_withdrawn(quote):
    quote, admin, _ = quote
    quote_withdraw(quote=quote, actor=admin)
    quote.refresh_from_db()
    assert "WITHDRAWN: this quote can no longer be accepted." in pdf_text(quote_pdf(quote_document(quote)))


def test_the_pdf_over_http_for_the_partner_and_the_customer_admin_only(client, quote):
    quote, admin, customer_admin = quote
    url = reverse("partners:quote_pdf", args=[quote.public_id])
    for user, organization in ((admin, quote.partner.organization), (customer_admin, quote.organization)):
        client.force_login(user)
        use_session_org(client, organization)
        answer = client.get(url)
        assert answer.status_code == 200 and answer["Content-Type"] == "application/pdf"
        assert f'filename="{quote.number}.pdf"' in answer["Content-Disposition"]
        assert f"Quote {quote.number}" in pdf_text(answer.content)
        client.logout()
    member = MembershipFactory(organization=quote.organization, role=Membership.Role.MEMBER).user
    client.force_login(member)
    use_session_org(client, quote.organization)
    assert client.get(url).status_code == 404


def test_the_same_quote_gives_the_same_bytes(quote):
    quote, _, _ = quote
    with time_machine.travel(MADE + timedelta(days=2), tick=False):
        assert quote_pdf(quote_document(quote)) == quote_pdf(quote_document(quote))
