"""One edition upgrade at a time, and no upgrade or seats invoice paid after its period."""

import uuid
from datetime import timedelta

import pytest
import time_machine

from billing import gateway
from billing.exceptions import CheckoutInvalid
from billing.models import Invoice, Payment, Subscription
from billing.services import billing_account, lifecycle, payments, seats, subscriptions
from catalog.selectors import edition_get

from ..helpers import DECLINED_AT_CHARGE, OK_CARD, card_enter, paid_organization


def _use_card(localstripe, organization, admin, number):
    intent, _ = card_enter(localstripe, organization, admin, number)
    billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=intent.id)


def _edition(code):
    return edition_get(product_code="tracker", edition_code=code)


def test_a_second_upgrade_while_the_first_is_charged_is_refused_and_the_same_one_is_returned(localstripe, catalog):
    # Two tabs of the billing page (each render has its own request key), or a reload and a
    # second click before the worker charged the first upgrade.
    organization, admin, subscription = paid_organization(localstripe, seats=4)
    to_premium = subscriptions.subscription_change_edition(
        subscription=subscription, actor=admin, edition=_edition("premium"), request_key=uuid.uuid4().hex
    )
    with pytest.raises(CheckoutInvalid, match=r"The upgrade to Tracker Premium \(invoice FW-\d+\) is being charged"):
        subscriptions.subscription_change_edition(
            subscription=subscription, actor=admin, edition=_edition("enterprise"), request_key=uuid.uuid4().hex
        )
    again = subscriptions.subscription_change_edition(
        subscription=subscription, actor=admin, edition=_edition("premium"), request_key=uuid.uuid4().hex
    )
    assert again.pk == to_premium.pk
    payments.payment_charge(payment_id=to_premium.pk)
    subscription.refresh_from_db()
    assert subscription.edition.code == "premium"
    assert Invoice.objects.filter(subscription=subscription, kind=Invoice.Kind.UPGRADE).count() == 1
    charged = [i for i in gateway.payment_intents_of_customer(organization.billing_account.stripe_customer_id)
               if i.status == "succeeded" and i.metadata.get("flywheel_invoice") == to_premium.invoice.number]
    assert len(charged) == 1


def test_a_declined_upgrade_is_replaced_by_the_next_one(localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe, seats=4)
    _use_card(localstripe, organization, admin, DECLINED_AT_CHARGE)
    declined = subscriptions.subscription_change_edition(
        subscription=subscription, actor=admin, edition=_edition("premium"), request_key=uuid.uuid4().hex
    )
    payments.payment_charge(payment_id=declined.pk)
    _use_card(localstripe, organization, admin, OK_CARD)
    to_enterprise = subscriptions.subscription_change_edition(
        subscription=subscription, actor=admin, edition=_edition("enterprise"), request_key=uuid.uuid4().hex
    )
    payments.payment_charge(payment_id=to_enterprise.pk)
    assert Invoice.objects.get(pk=declined.invoice_id).status == Invoice.Status.VOID
    with pytest.raises(CheckoutInvalid, match="is void"):
        payments.invoice_pay_now(invoice=declined.invoice, actor=admin)
    subscription.refresh_from_db()
    assert subscription.edition.code == "enterprise"


@pytest.mark.parametrize("change", ["upgrade", "seats"])
def test_an_upgrade_or_seats_declined_before_a_renewal_cannot_be_paid_after_it(localstripe, catalog, change):
    # Priced for the last hour of a period: paid days later, it would change the new period
    # (premium, or 20 more seats) at the price of that hour.
    organization, admin, subscription = paid_organization(localstripe, seats=4)
    _use_card(localstripe, organization, admin, DECLINED_AT_CHARGE)
    with time_machine.travel(subscription.current_period_end - timedelta(hours=1), tick=False):
        if change == "upgrade":
            declined = subscriptions.subscription_change_edition(
                subscription=subscription, actor=admin, edition=_edition("premium"), request_key=uuid.uuid4().hex
            )
        else:
            declined = seats.subscription_add_seats(subscription=subscription, actor=admin, seats=20, request_key=uuid.uuid4().hex)
        payments.payment_charge(payment_id=declined.pk)
    declined.refresh_from_db()
    assert declined.status == Payment.Status.FAILED and declined.invoice.status == Invoice.Status.OPEN
    _use_card(localstripe, organization, admin, OK_CARD)
    with time_machine.travel(subscription.current_period_end + timedelta(minutes=5), tick=False):
        lifecycle.lifecycle_tick()
        renewal = Invoice.objects.get(subscription=subscription, kind=Invoice.Kind.RENEWAL)
        payments.payment_charge(payment_id=renewal.payments.get().pk)
    declined.invoice.refresh_from_db()
    assert declined.invoice.status == Invoice.Status.VOID
    with time_machine.travel(subscription.current_period_end + timedelta(days=2), tick=False), \
            pytest.raises(CheckoutInvalid, match="is void"):
        payments.invoice_pay_now(invoice=declined.invoice, actor=admin)
    subscription = Subscription.objects.get(pk=subscription.pk)
    assert (subscription.edition.code, subscription.seat_limit) == ("standard", 4)


def test_a_declined_upgrade_cannot_be_paid_once_its_period_is_over_even_before_the_renewal(localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe, seats=4)
    _use_card(localstripe, organization, admin, DECLINED_AT_CHARGE)
    with time_machine.travel(subscription.current_period_end - timedelta(hours=1), tick=False):
        declined = subscriptions.subscription_change_edition(
            subscription=subscription, actor=admin, edition=_edition("premium"), request_key=uuid.uuid4().hex
        )
        payments.payment_charge(payment_id=declined.pk)
    _use_card(localstripe, organization, admin, OK_CARD)
    with time_machine.travel(subscription.current_period_end + timedelta(minutes=1), tick=False), \
            pytest.raises(CheckoutInvalid, match="was for a period that is over; make the change again"):
        payments.invoice_pay_now(invoice=declined.invoice, actor=admin)
