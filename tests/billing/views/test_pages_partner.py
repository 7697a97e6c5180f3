"""Billing's pages when a partner pays: the customer's admin sees who manages a product and asks
them (and can still cancel); the partner reads its invoices, the licensee does not; the invoice
names the bill-to and the licensee; the API, the seat policy and the prompts say ask <partner>."""

import io
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from pypdf import PdfReader

from accounts.exceptions import SeatLimitReached
from accounts.services import seats_in_use
from billing.entitlements import entitlements_compute
from billing.models import Invoice, Subscription
from billing.prompts import prompts_for
from billing.services.payer import subscription_payer_end
from billing.services.seats import seat_limit_enforce

from ...factories import MembershipFactory
from ..helpers import partner_buys, visible_text

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_tasks")]

ASK_SEATS = "/app/partner/ask/?product=tracker&amp;kind=seats"


def test_the_customers_billing_page_says_who_manages_the_product_and_offers_ask_and_cancel(client, localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, invoice = partner_buys(localstripe, seats=5)
    client.force_login(customer_admin)
    page = client.get(reverse("billing")).content.decode()
    text = visible_text(page)
    assert "Managed by Northwind Partners · billed to Northwind Partners." in text
    assert f'href="{ASK_SEATS}"' in page and "Ask Northwind Partners" in text
    assert "Add seats now" not in text and "Remove seats at renewal" not in text and "Change edition" not in text
    assert "Cancel Tracker" in text
    # The partner's invoice is not the customer's: left out, and the list says where it goes.
    assert invoice.number not in text and "Invoices for Tracker go to Northwind Partners." in text
    assert "Your partner" in text and "Get a quote" in text and "Quotes" in text
    # A price page for it says the same instead of a price.
    seats_page = client.get(reverse("add_seats", args=[subscription.public_id]), {"seats": 2, "quote": "k1"})
    assert seats_page.status_code == 200
    assert "Tracker is managed by Northwind Partners" in visible_text(seats_page.content.decode())
    assert "USD" not in visible_text(seats_page.content.decode())


def test_once_the_link_ended_the_page_says_when_billing_comes_back(client, localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, invoice = partner_buys(localstripe, seats=5)
    subscription_payer_end(subscription=subscription, at=subscription.current_period_start)
    client.force_login(customer_admin)
    text = visible_text(client.get(reverse("billing")).content.decode())
    subscription.refresh_from_db()
    renewal_day = f"{subscription.current_period_end:%-d %b %Y}"
    assert f"billed to Northwind Partners until {renewal_day}; from then it is billed to {customer.name} at list price" in text


def test_the_invoice_is_the_partners_to_read_with_bill_to_and_licensee(client, localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, invoice = partner_buys(localstripe, seats=5)
    client.force_login(partner_admin)
    page = client.get(reverse("invoice", args=[invoice.public_id]))
    assert page.status_code == 200
    text = visible_text(page.content.decode())
    assert "Billed to Northwind Partners" in text and f"Licensee {customer.name}" in text
    assert "Partner discount (Gold, 15 %)" in text
    pdf = client.get(reverse("invoice_pdf", args=[invoice.public_id]))
    pdf_text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Billed to: Northwind Partners" in pdf_text and f"Licensee: {customer.name}" in pdf_text
    # The partner's billing page lists what it pays for its customers.
    billing = visible_text(client.get(reverse("billing")).content.decode())
    assert "Invoices for your customers" in billing and invoice.number in billing and customer.name in billing
    # The licensee's admins and members do not read the partner's invoice or its payment.
    member = MembershipFactory(organization=customer).user
    for person in (customer_admin, member):
        client.force_login(person)
        assert client.get(reverse("invoice", args=[invoice.public_id])).status_code == 404
        assert client.get(reverse("invoice_pdf", args=[invoice.public_id])).status_code == 404
        payment = invoice.payments.get()
        assert client.get(reverse("payment_status", args=[payment.public_id])).status_code == 404


def test_the_entitlements_name_the_partner_that_manages_a_product(localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, invoice = partner_buys(localstripe, seats=5)
    [tracker] = entitlements_compute(organization_id=customer.pk)
    assert tracker["managed_by"] == {"name": "Northwind Partners"}
    Subscription.objects.filter(pk=subscription.pk).update(billed_to=None, billed_to_discount_bp=0)
    [tracker] = entitlements_compute(organization_id=customer.pk)
    assert tracker["managed_by"] is None


def test_at_the_seat_limit_everyone_is_told_to_ask_the_partner(localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, invoice = partner_buys(localstripe, seats=2, members=2)
    with pytest.raises(SeatLimitReached) as refused:
        seat_limit_enforce(customer, seats_in_use(organization=customer), 1)
    assert "Tracker is managed by Northwind Partners: ask Northwind Partners for more seats" in refused.value.message
    assert "/app/partner/ask/?product=tracker&kind=seats" in refused.value.message
    assert "move to" not in refused.value.message
    member = customer.memberships.exclude(user=customer_admin).get()
    [prompt] = [p for p in prompts_for(membership=member) if p.kind == "seat_limit_reached"]
    assert "Tracker is managed by Northwind Partners: ask Northwind Partners" in prompt.body and not prompt.cta_url
    admin_membership = customer.memberships.get(user=customer_admin)
    [prompt] = [p for p in prompts_for(membership=admin_membership) if p.kind == "seat_limit_reached"]
    assert prompt.cta_label == "Ask Northwind Partners" and "/app/partner/ask/" in prompt.cta_url


def test_an_admin_of_the_customer_cannot_pay_the_partners_invoice(client, localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, invoice = partner_buys(
        localstripe, seats=5, collection="invoice", po_number="NW-1"
    )
    client.force_login(customer_admin)
    assert client.get(reverse("card_update"), {"invoice": str(invoice.public_id)}).status_code == 404
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.OPEN
    assert not [m for m in mail.outbox if customer_admin.email in m.to and invoice.number in m.body]


def test_the_pages_banners_say_ask_the_partner_and_show_none_of_its_invoices(client, localstripe, catalog, settings):
    customer, customer_admin, partner, partner_admin, subscription, invoice = partner_buys(
        localstripe, seats=5, collection="invoice", po_number="NW-4"
    )
    Subscription.objects.filter(pk=subscription.pk).update(status=Subscription.Status.SUSPENDED)
    client.force_login(customer_admin)
    page = client.get(reverse("billing")).content.decode()
    text = visible_text(page)
    assert "Northwind Partners, who manages it, has an unpaid invoice for it. Ask Northwind Partners to pay it." in text
    assert "The invoice Northwind Partners pays for Tracker is unpaid: ask them to pay it." in text
    assert invoice.number not in text and "USD 346" not in text
    assert "Pay the open invoice now" not in text


def test_the_partner_pays_its_customers_unpaid_renewal_from_its_own_card_page(client, localstripe, catalog):
    import time_machine

    from billing.models import BillingAccount
    from billing.services import lifecycle

    customer, customer_admin, partner, partner_admin, subscription, invoice = partner_buys(localstripe, seats=5)
    BillingAccount.objects.filter(organization=partner).update(payment_method_id="", card_last4="")
    with time_machine.travel(subscription.current_period_end + timedelta(minutes=5), tick=False):
        lifecycle.lifecycle_tick()
    renewal = Invoice.objects.get(subscription=subscription, kind=Invoice.Kind.RENEWAL)
    assert renewal.status == Invoice.Status.OPEN and renewal.bill_to == partner
    client.force_login(partner_admin)
    billing = visible_text(client.get(reverse("billing")).content.decode())
    assert renewal.number in billing and "Pay now" in billing
    card_page = client.get(reverse("card_update"), {"invoice": str(renewal.public_id)})
    assert card_page.status_code == 200 and renewal.number in visible_text(card_page.content.decode())
    client.force_login(customer_admin)
    assert client.get(reverse("card_update"), {"invoice": str(renewal.public_id)}).status_code == 404


def test_a_partners_unpaid_quote_on_a_suspended_product_shows_the_customer_no_number_and_no_amount(client, localstripe, catalog):
    """Review of issue 22, M2: the partner's card declined on the quote it bought for a customer
    whose trial had ended; the customer's page, banners and kit name the partner, never its
    invoice or its discounted price."""
    from django.utils import timezone

    from billing.selectors import product_states_of
    from billing.services.quoted import subscription_buy_quoted
    from catalog.selectors import edition_get

    from ...conftest import organization_on
    from ..helpers import DECLINED_AT_CHARGE, card_set_up, partner_org, quoted_lines

    customer, customer_admin = organization_on("standard")
    Subscription.objects.filter(organization=customer).update(
        status=Subscription.Status.SUSPENDED, suspended_at=timezone.now(), trial_ends_at=None
    )
    partner, partner_admin = partner_org(localstripe, card=False)
    card_set_up(localstripe, partner, partner_admin, DECLINED_AT_CHARGE)
    edition = edition_get(product_code="tracker", edition_code="standard")
    invoice = subscription_buy_quoted(
        organization=customer, edition=edition, seats=5, interval="year", addons=[], lines=quoted_lines(edition, seats=5),
        actor=partner_admin, on_behalf=partner, discount_bp=1500, collection="card", po_number="", request_key="quote:m2:tracker",
    )
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.OPEN and invoice.bill_to == partner
    state = next(iter(product_states_of(organization=customer).values()))
    assert "Northwind Partners, who manages it, has an unpaid invoice for it." in state.happened
    assert state.admin_todo == "Ask Northwind Partners to pay it."
    seen = " ".join((state.happened, state.admin_todo, state.member_todo, state.action_label))
    assert invoice.number not in seen and "USD" not in seen
    from accounts.models import Membership
    from billing.selectors import page_prompts_for

    membership = Membership.objects.get(organization=customer, user=customer_admin)
    for prompt in prompts_for(membership=membership):
        assert invoice.number not in f"{prompt.title} {prompt.body}" and "USD" not in f"{prompt.title} {prompt.body}"
    for banner in page_prompts_for(membership=membership):
        assert invoice.number not in banner.text and "USD" not in banner.text
    client.force_login(customer_admin)
    text = visible_text(client.get(reverse("billing")).content.decode())
    assert "Northwind Partners, who manages it, has an unpaid invoice for it." in text
    assert invoice.number not in text and "346.37" not in text
