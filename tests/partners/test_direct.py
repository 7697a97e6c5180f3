"""Moving to direct billing (partners/services/direct.py, /app/partner/direct/): at renewal the
partner keeps the term it paid for and the renewal is the customer's own at list price; now, the
admin pays the rest of the term at list price and the product is its own at once. Both end the
partner link; nothing is charged twice, nothing lapses; refusals write nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.models import BillingAccount, Invoice, Payment, Subscription
from billing.pricing import unit_price
from billing.services import payments
from billing.services.billing_account import billing_account_of
from billing.services.payer import subscription_payer_take_over_quote
from billing.services.subscriptions import subscription_start_trial
from catalog.selectors import edition_get
from common.money import money
from partners.exceptions import PartnerError
from partners.models import AuditEntry, PartnerLink
from partners.services.direct import direct_at_renewal, direct_options

from ..billing.helpers import OK_CARD, card_set_up, tick_at, visible_text
from ..conftest import organization_on
from .conftest import customer_link, sign_in

pytestmark = pytest.mark.django_db


def _managed(customer, partner_organization, *, seats: int = 50) -> Subscription:
    """The customer's Tracker Standard: a year paid by the partner at 15 % off, 65 days in."""
    subscription = subscription_start_trial(
        organization=customer, edition=edition_get(product_code="tracker", edition_code="standard"), actor=None
    )
    now = timezone.now()
    Subscription.objects.filter(pk=subscription.pk).update(
        status=Subscription.Status.ACTIVE,
        interval=Subscription.Interval.YEAR,
        trial_ends_at=None,
        current_period_start=now - timedelta(days=65),
        current_period_end=now + timedelta(days=300),
        seat_limit=seats,
        billed_to=partner_organization,
        billed_to_discount_bp=1500,
    )
    subscription.refresh_from_db()
    return subscription


def _text(response) -> str:
    return visible_text(response.content.decode())


def test_the_page_shows_both_ways_with_their_exact_amounts_and_dates(client, catalog, northwind, acme):
    subscription = _managed(acme.customer, northwind.organization)
    list_price = unit_price(subscription.edition, "year") * 50
    quote = subscription_payer_take_over_quote(subscription=subscription)
    sign_in(client, acme.admin, acme.customer)
    page = client.get(reverse("partners:customer_direct"))
    assert page.status_code == 200
    text = _text(page)
    renews = f"{subscription.current_period_end:%-d %b %Y}"
    assert f"Tracker Standard, 50 seats {renews} {money(list_price, 'USD')} a year" in text
    assert "The partnership with Northwind Partners ends today" in text and "Nothing is charged today" in text
    assert f"Pay {money(quote.amount_minor, 'USD')} and take Tracker over now" in text
    assert 0 < quote.amount_minor < list_price
    assert f"prorated for the {quote.time_left} left until {renews}" in text


def test_at_renewal_ends_the_link_flags_the_subscription_and_charges_nothing(client, catalog, northwind, acme):
    subscription = _managed(acme.customer, northwind.organization)
    sign_in(client, acme.admin, acme.customer)
    response = client.post(reverse("partners:customer_direct"), {"when": "renewal"}, follow=True)
    assert response.status_code == 200
    assert "Moved to direct billing: Tracker from" in _text(response)
    acme.link.refresh_from_db()
    subscription.refresh_from_db()
    assert acme.link.status == PartnerLink.Status.ENDED and acme.link.closed_by_side == PartnerLink.Side.CUSTOMER
    assert subscription.billed_to_id == northwind.organization.pk  # the partner keeps this term
    assert subscription.billed_to_ends_at_renewal and subscription.status == Subscription.Status.ACTIVE
    assert not Invoice.objects.exists()
    [entry] = AuditEntry.objects.filter(customer=acme.customer, action="direct_at_renewal")
    assert entry.summary.startswith("Acme Robotics moves Tracker to direct billing: Northwind Partners pays until")
    assert "billed to Acme Robotics at list price (USD " in entry.summary
    assert AuditEntry.objects.filter(customer=acme.customer, action="link_ended").count() == 1


def test_the_renewal_after_moving_is_the_customers_own_at_list_price(catalog, northwind, acme):
    subscription = _managed(acme.customer, northwind.organization)
    direct_at_renewal(organization=acme.customer, actor=acme.admin)
    tick_at(subscription.current_period_end + timedelta(minutes=1))
    renewal = Invoice.objects.get(subscription=subscription, kind=Invoice.Kind.RENEWAL)
    assert renewal.organization_id == acme.customer.pk and renewal.bill_to_id is None
    assert renewal.total_minor == unit_price(subscription.edition, "year") * 50  # list price, no discount line
    assert all(line.amount_minor >= 0 for line in renewal.lines.all())
    subscription.refresh_from_db()
    assert subscription.billed_to_id is None and subscription.billed_to_discount_bp == 0
    assert not subscription.billed_to_ends_at_renewal


def test_moving_with_nothing_to_move_is_refused_and_writes_nothing(client, catalog):
    organization, admin = organization_on("standard")
    with pytest.raises(PartnerError, match="already pays Flywheel directly"):
        direct_at_renewal(organization=organization, actor=admin)
    client.force_login(admin)
    response = client.post(reverse("partners:customer_direct"), {"when": "renewal"})
    assert response.status_code == 400
    assert "already pays Flywheel directly: there is nothing to move." in _text(response)
    assert not AuditEntry.objects.exists()


def test_only_an_admin_moves_and_an_unknown_choice_is_a_400(client, catalog, northwind, acme):
    subscription = _managed(acme.customer, northwind.organization)
    sign_in(client, acme.member, acme.customer)
    assert client.post(reverse("partners:customer_direct"), {"when": "renewal"}).status_code == 404
    sign_in(client, acme.admin, acme.customer)
    response = client.post(reverse("partners:customer_direct"), {"when": "tomorrow"})
    assert response.status_code == 400
    assert "Choose when to move: at renewal or now." in _text(response)
    acme.link.refresh_from_db()
    subscription.refresh_from_db()
    assert acme.link.status == PartnerLink.Status.ACTIVE and not subscription.billed_to_ends_at_renewal


def test_now_against_a_purchase_order_makes_it_the_customers_at_once(client, catalog, northwind, acme):
    subscription = _managed(acme.customer, northwind.organization)
    sign_in(client, acme.admin, acme.customer)
    [option] = direct_options(organization=acme.customer)
    # Not on invoice terms: a purchase order is refused with a sentence, and nothing moves.
    refused = client.post(
        reverse("partners:customer_direct"),
        {"when": "now", "subscription": str(subscription.public_id), "request_key": "take-over-0",
         "quote_token": option.now_quote.token, "po_number": "PO-7781"},
    )
    assert refused.status_code == 400 and "is not on invoice terms" in _text(refused)
    assert not Invoice.objects.filter(kind=Invoice.Kind.TAKEOVER).exists()
    # Staff put the account on invoice terms (the billing page's request, accepted).
    BillingAccount.objects.update_or_create(
        organization=acme.customer, defaults={"collection_method": BillingAccount.Collection.INVOICE, "po_number": "ACME-PO"}
    )
    [option] = direct_options(organization=acme.customer)
    response = client.post(
        reverse("partners:customer_direct"),
        {
            "when": "now",
            "subscription": str(subscription.public_id),
            "request_key": "take-over-1",
            "quote_token": option.now_quote.token,
            "po_number": "PO-7781",
        },
    )
    assert response.status_code == 302, _text(response)
    invoice = Invoice.objects.get(kind=Invoice.Kind.TAKEOVER)
    assert response["Location"] == reverse("invoice", args=[invoice.public_id])
    assert invoice.organization_id == acme.customer.pk and invoice.bill_to_id is None
    assert invoice.total_minor == option.now_quote.amount_minor and invoice.po_number == "PO-7781"
    subscription.refresh_from_db()
    assert subscription.billed_to_id is None and subscription.status == Subscription.Status.ACTIVE
    acme.link.refresh_from_db()
    assert acme.link.status == PartnerLink.Status.ENDED
    [entry] = AuditEntry.objects.filter(action="direct_now")
    assert f"{money(invoice.total_minor, 'USD')} at list price" in entry.summary and invoice.number in entry.summary
    # A second click with the same form buys nothing more.
    client.post(
        reverse("partners:customer_direct"),
        {"when": "now", "subscription": str(subscription.public_id), "request_key": "take-over-1", "quote_token": option.now_quote.token},
    )
    assert Invoice.objects.filter(kind=Invoice.Kind.TAKEOVER).count() == 1


def test_now_without_a_card_or_purchase_order_is_refused_and_nothing_moves(client, catalog, northwind, acme):
    subscription = _managed(acme.customer, northwind.organization)
    account = billing_account_of(acme.customer)
    assert account.collection_method == BillingAccount.Collection.CARD and not account.has_card
    [option] = direct_options(organization=acme.customer)
    sign_in(client, acme.admin, acme.customer)
    response = client.post(
        reverse("partners:customer_direct"),
        {"when": "now", "subscription": str(subscription.public_id), "request_key": "k2", "quote_token": option.now_quote.token},
    )
    assert response.status_code == 400
    assert "Add a card first, or pay against a purchase order." in _text(response)
    acme.link.refresh_from_db()
    subscription.refresh_from_db()
    assert acme.link.status == PartnerLink.Status.ACTIVE
    assert subscription.billed_to_id == northwind.organization.pk and not subscription.billed_to_ends_at_renewal
    assert not Invoice.objects.exists() and not AuditEntry.objects.exists()


def test_now_for_another_organizations_subscription_is_refused(client, catalog, northwind, acme):
    other = customer_link(northwind.partner, name="Initech")
    theirs = _managed(other.customer, northwind.organization)
    _managed(acme.customer, northwind.organization)
    sign_in(client, acme.admin, acme.customer)
    response = client.post(
        reverse("partners:customer_direct"),
        {"when": "now", "subscription": str(theirs.public_id), "request_key": "k3", "quote_token": "x"},
    )
    assert response.status_code == 400
    assert "No product of yours billed to a partner has that id." in _text(response)
    assert "Initech" not in _text(response)
    assert not Invoice.objects.exists()


def test_now_by_card_moves_once_the_payment_succeeds(client, catalog, northwind, acme, localstripe):
    subscription = _managed(acme.customer, northwind.organization)
    card_set_up(localstripe, acme.customer, acme.admin, OK_CARD)
    [option] = direct_options(organization=acme.customer)
    sign_in(client, acme.admin, acme.customer)
    page = _text(client.get(reverse("partners:customer_direct")))
    assert "Charged now to Visa ending 4242" in page
    response = client.post(
        reverse("partners:customer_direct"),
        {"when": "now", "subscription": str(subscription.public_id), "request_key": "card-1", "quote_token": option.now_quote.token},
    )
    payment = Payment.objects.get(invoice__kind=Invoice.Kind.TAKEOVER)
    assert response.status_code == 302 and response["Location"] == reverse("payment_status", args=[payment.public_id])
    # Until the card is charged, the partner still pays: nothing has moved.
    subscription.refresh_from_db()
    assert subscription.billed_to_id == northwind.organization.pk
    payments.payment_charge(payment_id=payment.pk)
    subscription.refresh_from_db()
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED and payment.amount_minor == option.now_quote.amount_minor
    assert subscription.billed_to_id is None and subscription.status == Subscription.Status.ACTIVE
    assert subscription.current_period_end == option.renews_at  # same term: nothing lapses, nothing is added
