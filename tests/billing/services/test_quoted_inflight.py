"""A quote accepted while the customer's own checkout is being charged: refused with a sentence,
nothing voided, so one term is never billed to both (review of issue 22: H3). The worker does not
run eagerly here: the customer's payment stays pending, as it is between the click and the charge."""

import os

import pytest

from billing.exceptions import CheckoutInvalid
from billing.models import Invoice, Payment, Subscription
from billing.services import payments
from billing.services.quoted import subscription_buy_quoted
from catalog.selectors import edition_get

from ...conftest import organization_on
from ..helpers import OK_CARD, card_set_up, partner_org, quoted_lines, standard_checkout

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_a_quote_is_refused_while_the_customers_checkout_is_being_charged(localstripe, catalog):
    customer, customer_admin = organization_on("standard")
    card_set_up(localstripe, customer, customer_admin, OK_CARD)
    pending = standard_checkout(customer, customer_admin, seats=5, interval="year")
    assert pending.status == Payment.Status.PENDING
    partner, partner_admin = partner_org(localstripe, card=False, terms_po="NW-PO")
    edition = edition_get(product_code="tracker", edition_code="standard")
    with pytest.raises(CheckoutInvalid, match=f"{customer.name} is paying for Tracker right now; try again in a minute"):
        subscription_buy_quoted(
            organization=customer, edition=edition, seats=5, interval="year", addons=[],
            lines=quoted_lines(edition, seats=5), actor=partner_admin, on_behalf=partner, discount_bp=1500,
            collection="invoice", po_number="NW-PO", request_key=f"quote:{os.urandom(4).hex()}:tracker",
        )
    assert not Invoice.objects.filter(bill_to=partner).exists()
    pending.invoice.refresh_from_db()
    assert pending.invoice.status == Invoice.Status.OPEN
    payments.payment_charge(payment_id=pending.pk)  # the worker runs: the customer's own purchase goes through
    pending.refresh_from_db()
    subscription = Subscription.objects.get(organization=customer, product__code="tracker")
    assert pending.status == Payment.Status.SUCCEEDED and subscription.billed_to is None
    assert subscription.status == Subscription.Status.ACTIVE


def test_the_customers_own_checkout_never_returns_the_partners_payment_under_way(localstripe, catalog):
    """Review of issue 22, L3: the partner's card payment for a quote is being charged; the
    customer's admin buying Tracker itself is told so in a sentence, not handed the partner's
    payment (whose page it may not open), and nothing is voided."""
    from billing.services.checkout import subscription_checkout

    customer, customer_admin = organization_on("standard")
    card_set_up(localstripe, customer, customer_admin, OK_CARD)
    partner, partner_admin = partner_org(localstripe)
    edition = edition_get(product_code="tracker", edition_code="standard")
    partner_invoice = subscription_buy_quoted(
        organization=customer, edition=edition, seats=5, interval="year", addons=[],
        lines=quoted_lines(edition, seats=5), actor=partner_admin, on_behalf=partner, discount_bp=1500,
        collection="card", po_number="", request_key=f"quote:{os.urandom(4).hex()}:tracker",
    )
    [partner_payment] = partner_invoice.payments.all()
    assert partner_payment.status == Payment.Status.PENDING
    subscription = Subscription.objects.get(organization=customer, product__code="tracker")
    with pytest.raises(CheckoutInvalid, match="Northwind Partners is paying for Tracker right now; try again in a minute"):
        subscription_checkout(subscription=subscription, actor=customer_admin, edition=edition, seats=5, interval="year")
    partner_invoice.refresh_from_db()
    assert partner_invoice.status == Invoice.Status.OPEN
    assert not Invoice.objects.filter(organization=customer, bill_to__isnull=True).exists()
