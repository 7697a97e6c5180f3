"""A subscription billed to a partner: the partner's admins change it (on_behalf), at its
discount, paid by its card or on its terms; the customer's admins are told who manages it, and
can still cancel."""

import pytest
from django.core import mail

from billing.exceptions import CheckoutInvalid, ManagedByPayer
from billing.models import Invoice, Payment, Subscription
from billing.services import addons, checkout, seats, subscriptions
from catalog.models import AddOn
from catalog.selectors import edition_get
from common.exceptions import NotFound, PermissionDenied

from ...conftest import organization_on
from ...factories import MembershipFactory
from ..helpers import partner_buys, partner_org

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_tasks")]

MANAGED = "Tracker is managed by Northwind Partners: ask them from the billing page."


def test_the_customers_admin_is_told_who_manages_it_for_every_change_but_can_cancel(localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, _ = partner_buys(localstripe, seats=5)
    premium = edition_get(product_code="tracker", edition_code="premium")
    github = AddOn.objects.get(product__code="tracker", code="github")
    refusals = [
        lambda: seats.subscription_add_seats(subscription=subscription, actor=customer_admin, seats=2, request_key="s-1"),
        lambda: seats.subscription_remove_seats(subscription=subscription, actor=customer_admin, seats=1),
        lambda: subscriptions.subscription_change_edition(subscription=subscription, actor=customer_admin, edition=premium, request_key="e-1"),
        lambda: addons.addon_buy(subscription=subscription, addon=github, actor=customer_admin, request_key="a-1"),
        lambda: addons.addon_trial_start(subscription=subscription, addon=github, actor=customer_admin),
        lambda: checkout.subscription_checkout(subscription=subscription, actor=customer_admin, edition=premium, seats=5, interval="month"),
    ]
    for refuse in refusals:
        with pytest.raises(ManagedByPayer, match=MANAGED):
            refuse()
    assert Invoice.objects.filter(organization=customer).count() == 1
    subscription.refresh_from_db()
    assert subscription.seat_limit == 5 and subscription.edition.code == "standard"
    # Cancel is still the customer's own: at the period end, as today; the partner hears of it.
    mail.outbox.clear()
    subscriptions.subscription_cancel(subscription=subscription, actor=customer_admin)
    subscription.refresh_from_db()
    assert subscription.cancel_at_period_end
    assert any(partner_admin.email in message.to and customer.name in message.subject for message in mail.outbox)


def test_a_member_who_is_not_an_admin_is_refused_as_before(localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, _ = partner_buys(localstripe, seats=5)
    member = MembershipFactory(organization=customer).user
    with pytest.raises(PermissionDenied):
        seats.subscription_add_seats(subscription=subscription, actor=member, seats=2, request_key="s-1")


def test_the_partner_adds_seats_at_its_discount_on_its_card(localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, _ = partner_buys(localstripe, seats=5)
    quote = seats.seats_quote(subscription=subscription, seats=2)
    assert quote.discount_bp == 1500 and quote.discount_minor > 0
    assert quote.amount_minor == quote.seats_amount_minor - quote.discount_minor
    payment = seats.subscription_add_seats(
        subscription=subscription, actor=partner_admin, seats=2, request_key="seats-1", quote_token=quote.token, on_behalf=partner
    )
    payment.refresh_from_db()
    invoice = payment.invoice
    assert payment.status == Payment.Status.SUCCEEDED and invoice.bill_to == partner
    assert invoice.total_minor == quote.amount_minor
    assert [line.description for line in invoice.lines.order_by("pk")][-1] == "Partner discount (Gold, 15 %)"
    subscription.refresh_from_db()
    assert subscription.seat_limit == 7
    # Same key again: the same payment, nothing more charged.
    again = seats.subscription_add_seats(subscription=subscription, actor=partner_admin, seats=2, request_key="seats-1", on_behalf=partner)
    assert again.pk == payment.pk


def test_the_partner_upgrades_the_edition_at_its_discount(localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, _ = partner_buys(localstripe, seats=5)
    premium = edition_get(product_code="tracker", edition_code="premium")
    quote = subscriptions.edition_change_quote(subscription=subscription, edition=premium)
    assert quote.discount_minor == (quote.charge_minor - quote.credit_minor) * 15 // 100 or quote.discount_minor > 0
    payment = subscriptions.subscription_change_edition(
        subscription=subscription, actor=partner_admin, edition=premium, request_key="up-1", quote_token=quote.token, on_behalf=partner
    )
    payment.refresh_from_db()
    assert payment.invoice.total_minor == quote.total_minor and payment.invoice.bill_to == partner
    subscription.refresh_from_db()
    assert subscription.edition == premium


def test_the_partner_buys_an_add_on_on_its_purchase_order_terms(localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, _ = partner_buys(
        localstripe, seats=5, collection="invoice", po_number="NW-1"
    )
    github = AddOn.objects.get(product__code="tracker", code="github")
    invoice = addons.addon_buy(subscription=subscription, addon=github, actor=partner_admin, request_key="gh-1", on_behalf=partner)
    assert invoice.collection_method == "invoice" and invoice.po_number == "NW-1" and invoice.bill_to == partner
    assert invoice.lines.filter(description="Partner discount (Gold, 15 %)").exists()


def test_the_partner_adds_seats_on_its_terms_granted_at_once(localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, _ = partner_buys(
        localstripe, seats=5, collection="invoice", po_number="NW-2"
    )
    invoice = seats.subscription_add_seats(subscription=subscription, actor=partner_admin, seats=3, request_key="s-po", on_behalf=partner)
    assert isinstance(invoice, Invoice) and invoice.status == Invoice.Status.OPEN and invoice.po_number == "NW-2"
    subscription.refresh_from_db()
    assert subscription.seat_limit == 8
    again = seats.subscription_add_seats(subscription=subscription, actor=partner_admin, seats=3, request_key="s-po", on_behalf=partner)
    assert again.pk == invoice.pk
    subscription.refresh_from_db()
    assert subscription.seat_limit == 8


def test_another_organization_cannot_act_for_a_subscription_not_billed_to_it(localstripe, catalog):
    customer, customer_admin, partner, partner_admin, subscription, _ = partner_buys(localstripe, seats=5)
    other, other_admin = partner_org(localstripe, name="Southwind Resellers")
    with pytest.raises(ManagedByPayer, match="is not billed to Southwind Resellers"):
        seats.subscription_add_seats(subscription=subscription, actor=other_admin, seats=1, request_key="x", on_behalf=other)
    # An admin of the customer is not an admin of the partner.
    with pytest.raises(NotFound):
        seats.subscription_add_seats(subscription=subscription, actor=customer_admin, seats=1, request_key="y", on_behalf=partner)


def test_a_partner_checkout_is_annual_only(localstripe, catalog):
    customer, customer_admin = organization_on("standard")
    partner, partner_admin = partner_org(localstripe)
    with pytest.raises(CheckoutInvalid, match="Subscriptions managed by a partner are billed annually"):
        checkout.subscription_checkout(
            subscription=customer.subscriptions.get(), actor=partner_admin,
            edition=edition_get(product_code="tracker", edition_code="standard"), seats=3, interval="month", on_behalf=partner,
        )
    payment = checkout.subscription_checkout(
        subscription=customer.subscriptions.get(), actor=partner_admin,
        edition=edition_get(product_code="tracker", edition_code="standard"), seats=3, interval="year",
        on_behalf=partner, discount_bp=1000,
    )
    payment.refresh_from_db()
    subscription = Subscription.objects.get(organization=customer)
    assert payment.invoice.total_minor == 3 * 8150 - 2445  # 10 % off
    assert subscription.billed_to == partner and subscription.billed_to_discount_bp == 1000


def test_a_partner_starts_a_trial_for_its_customer_without_money(localstripe, catalog):
    customer, customer_admin = organization_on("standard")
    partner, partner_admin = partner_org(localstripe)
    trial = subscriptions.product_try(
        organization=customer, actor=partner_admin, product_code="wiki", on_behalf=partner, discount_bp=1500
    )
    assert trial.status == Subscription.Status.TRIALING and trial.billed_to == partner
    assert trial.billed_to_discount_bp == 1500 and not Invoice.objects.filter(subscription=trial).exists()
    with pytest.raises(NotFound):
        subscriptions.product_try(organization=customer, actor=customer_admin, product_code="servicedesk", on_behalf=partner)


@pytest.mark.parametrize("discount_bp", [-1, 10_000, 25_000])
def test_every_entry_of_a_discount_refuses_one_outside_0_to_99_99_percent(localstripe, catalog, discount_bp):
    """Review of issue 22, L2: a trial stored with 100 % off would make its first renewal's
    discount exceed the charge; every price helper checks the range too."""
    from accounts.models import Membership

    from ...factories import OrganizationFactory, UserFactory

    customer, customer_admin, partner, partner_admin, subscription, _ = partner_buys(localstripe, seats=5)
    premium = edition_get(product_code="tracker", edition_code="premium")
    github = AddOn.objects.get(product__code="tracker", code="github")
    standard = edition_get(product_code="tracker", edition_code="standard")
    refusals = [
        lambda: seats.seats_quote(subscription=subscription, seats=2, discount_bp=discount_bp),
        lambda: subscriptions.edition_change_quote(subscription=subscription, edition=premium, discount_bp=discount_bp),
        lambda: addons.addon_quote(subscription=subscription, addon=github, discount_bp=discount_bp),
        lambda: checkout.checkout_quote(subscription=subscription, edition=standard, seats=5, interval="year", discount_bp=discount_bp),
    ]
    for refused in refusals:
        with pytest.raises(CheckoutInvalid, match="A discount is between 0 and 99.99 %"):
            refused()
    admin = UserFactory(email="boss@acme-l2.example")
    other = OrganizationFactory(email_domain="acme-l2.example", created_by=admin)
    MembershipFactory(organization=other, user=admin, role=Membership.Role.ADMIN, source="signup")
    with pytest.raises(CheckoutInvalid, match="A discount is between 0 and 99.99 %"):
        subscriptions.subscription_start_trial(
            organization=other, edition=standard, actor=partner_admin, on_behalf=partner, discount_bp=discount_bp
        )
    assert not Subscription.objects.filter(organization=other).exists()
