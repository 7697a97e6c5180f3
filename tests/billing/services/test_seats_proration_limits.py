"""Prorations in a first period cut short to the billing date, and the edition's seat limit
with purchases still being paid for."""

import uuid
from datetime import timedelta

import pytest
import time_machine

from billing import pricing
from billing.exceptions import CheckoutInvalid
from billing.services import checkout, payments, seats, subscriptions
from catalog.selectors import edition_get

from ..helpers import paid_organization


def test_seats_added_in_a_first_period_cut_short_cost_their_share_of_a_whole_month(localstripe, catalog):
    # Wiki bought 20 days into Tracker's month runs about 10 days to the shared billing date,
    # charged about 10/30 of a month; a seat added halfway through costs about 5/30, not 5/10.
    organization, admin, tracker = paid_organization(localstripe, seats=2)
    wiki_standard = edition_get(product_code="wiki", edition_code="standard")
    with time_machine.travel(tracker.current_period_start + timedelta(days=20), tick=False):
        wiki = subscriptions.subscription_start_trial(organization=organization, edition=wiki_standard, actor=admin)
        payment = checkout.subscription_checkout(subscription=wiki, actor=admin, edition=wiki_standard, seats=2, interval="month")
        payments.payment_charge(payment_id=payment.pk)
    wiki.refresh_from_db()
    assert wiki.current_period_end == tracker.current_period_end
    halfway = wiki.current_period_start + (wiki.current_period_end - wiki.current_period_start) / 2
    with time_machine.travel(halfway, tick=False):
        quote = seats.seats_quote(subscription=wiki, seats=1)
    month = pricing.add_months(wiki.current_period_start, 1) - wiki.current_period_start
    assert quote.seconds_in_period == int(month.total_seconds())
    fair = pricing.prorate(full_amount_minor=wiki_standard.monthly_price_minor, seconds_left=quote.seconds_left,
                            seconds_in_period=int(month.total_seconds()))
    assert quote.amount_minor == fair
    assert quote.amount_minor * 4 < wiki_standard.monthly_price_minor  # about 5 days of a month


def test_seat_purchases_being_paid_for_count_against_the_editions_limit(localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe, seats=95)
    limit = subscription.edition.seat_limit
    first = seats.subscription_add_seats(subscription=subscription, actor=admin, seats=limit - 95, request_key=uuid.uuid4().hex)
    with pytest.raises(CheckoutInvalid, match=rf"allows at most {limit} users and you have 95 seats \({limit - 95} more being paid for\)"):
        seats.subscription_add_seats(subscription=subscription, actor=admin, seats=1, request_key=uuid.uuid4().hex)
    payments.payment_charge(payment_id=first.pk)
    subscription.refresh_from_db()
    assert subscription.seat_limit == limit
