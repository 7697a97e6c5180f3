"""Factories for billing rows, built as the services leave them: a subscription on a trial of
Tracker Standard (or paid for, `paid=True`), a conversion invoice with its one line whose
amounts are the edition's price per interval times the seats, in the edition's currency, and a
payment of the whole invoice. They write the rows only: no analytics event, no environment, no
task, no Stripe. Need the `catalog` fixture.

For a state reached through Stripe (a charge, a decline, a webhook), use the services against
localstripe instead (tests/billing/helpers.py)."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

import factory
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.models import (
    AddOnSubscription,
    BillingAccount,
    Invoice,
    InvoiceLine,
    Payment,
    Subscription,
    TrainingPack,
)
from catalog.models import AddOn
from catalog.selectors import edition_get

from ..factories import OrganizationFactory


def tracker(edition_code: str = "standard"):
    return edition_get(product_code="tracker", edition_code=edition_code)


def one_period_after(start: datetime, interval: str) -> datetime:
    """The same day a month (or a year) later, clamped to the month's last day, as billing's
    periods run."""
    months = 1 if interval == Subscription.Interval.MONTH else 12
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return start.replace(year=year, month=month, day=min(start.day, calendar.monthrange(year, month)[1]))


def unit_price(edition, interval: str) -> int:
    """The price of one seat of `edition` for one period of `interval`, in minor units."""
    return edition.monthly_price_minor if interval == Subscription.Interval.MONTH else edition.annual_price_minor


class BillingAccountFactory(factory.django.DjangoModelFactory):
    """An organization's billing account; `card=True` with a Visa ending 4242 on file."""

    class Meta:
        model = BillingAccount

    organization = factory.SubFactory(OrganizationFactory)

    class Params:
        card = factory.Trait(
            stripe_customer_id=factory.Sequence(lambda n: f"cus_factory{n}"),
            payment_method_id=factory.Sequence(lambda n: f"pm_factory{n}"),
            card_brand="visa",
            card_last4="4242",
            card_exp_month=12,
            card_exp_year=factory.LazyFunction(lambda: timezone.now().year + 3),
        )


class SubscriptionFactory(factory.django.DjangoModelFactory):
    """A trial of Tracker Standard as subscription_start_trial starts it; `paid=True`: 5 seats
    paid monthly, its period running from now, as paying the conversion invoice leaves it."""

    class Meta:
        model = Subscription

    organization = factory.SubFactory(OrganizationFactory)
    edition = factory.LazyFunction(tracker)
    product = factory.SelfAttribute("edition.product")
    status = Subscription.Status.TRIALING
    seat_limit = factory.SelfAttribute("edition.seat_limit")
    trial_started_at = factory.LazyFunction(timezone.now)
    trial_ends_at = factory.LazyAttribute(lambda o: o.trial_started_at + timedelta(days=o.edition.trial_days))

    class Params:
        paid = factory.Trait(
            status=Subscription.Status.ACTIVE,
            seat_limit=5,
            interval=Subscription.Interval.MONTH,
            trial_ends_at=None,
            current_period_start=factory.LazyFunction(timezone.now),
            current_period_end=factory.LazyAttribute(lambda o: one_period_after(o.current_period_start, o.interval)),
        )


class InvoiceFactory(factory.django.DjangoModelFactory):
    """An open conversion invoice for 5 seats of the subscription's edition, monthly: its one
    line written in the transaction that issues it (billing/documents.py refuses lines after).
    `paid=True`: paid and applied at its issue."""

    class Meta:
        model = Invoice

    subscription = factory.SubFactory(SubscriptionFactory)
    organization = factory.SelfAttribute("subscription.organization")
    number = factory.Sequence(lambda n: f"FACTORY-{n:06d}")
    kind = Invoice.Kind.CONVERSION
    target_edition = factory.SelfAttribute("subscription.edition")
    target_seats = 5
    target_interval = Subscription.Interval.MONTH
    currency = factory.SelfAttribute("target_edition.currency")
    total_minor = factory.LazyAttribute(lambda o: unit_price(o.target_edition, o.target_interval) * o.target_seats)
    issued_at = factory.LazyFunction(timezone.now)
    period_start = factory.SelfAttribute("issued_at")
    period_end = factory.LazyAttribute(lambda o: one_period_after(o.period_start, o.target_interval))
    seller_details = factory.LazyFunction(lambda: settings.SELLER_DETAILS)
    customer_details = factory.SelfAttribute("organization.name")

    class Params:
        paid = factory.Trait(
            status=Invoice.Status.PAID,
            paid_at=factory.SelfAttribute("issued_at"),
            applied_at=factory.SelfAttribute("issued_at"),
        )

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with transaction.atomic():
            invoice = super()._create(model_class, *args, **kwargs)
            seats = invoice.target_seats
            InvoiceLine.objects.create(
                invoice=invoice,
                description=(
                    f"{invoice.target_edition}, {seats} seat{'s' if seats != 1 else ''}, "
                    f"{'monthly' if invoice.target_interval == Subscription.Interval.MONTH else 'annual'}"
                ),
                quantity=seats,
                unit_amount_minor=unit_price(invoice.target_edition, invoice.target_interval),
                amount_minor=invoice.total_minor,
                period_start=invoice.period_start,
                period_end=invoice.period_end,
            )
        return invoice


class PaymentFactory(factory.django.DjangoModelFactory):
    """A pending payment of the whole invoice by card, as checkout writes it before the worker
    charges it. `succeeded=True` or `failed=True` for a charge Stripe settled."""

    class Meta:
        model = Payment

    invoice = factory.SubFactory(InvoiceFactory)
    organization = factory.SelfAttribute("invoice.organization")
    amount_minor = factory.SelfAttribute("invoice.total_minor")
    currency = factory.SelfAttribute("invoice.currency")
    payment_method_id = factory.Sequence(lambda n: f"pm_factory{n}")
    status = Payment.Status.PENDING

    class Params:
        succeeded = factory.Trait(
            status=Payment.Status.SUCCEEDED,
            attempts=1,
            stripe_payment_intent_id=factory.Sequence(lambda n: f"pi_factory{n}"),
            succeeded_at=factory.LazyFunction(timezone.now),
        )
        failed = factory.Trait(
            status=Payment.Status.FAILED,
            attempts=1,
            failure_code="card_declined",
            failure_message="Your card was declined.",
        )


def tracker_addon(code: str = "github") -> AddOn:
    """One of Tracker's add-ons in the shipped catalog: github (per seat, 14-day trial, needs
    Standard), premium-support (flat, needs Standard), training (one-off, 10 credits)."""
    return AddOn.objects.get(product__code="tracker", code=code)


class AddOnSubscriptionFactory(factory.django.DjangoModelFactory):
    """Tracker's GitHub integration, active on a paid Tracker Standard subscription, as paying
    its add-on invoice leaves it. `trialing=True`: in its 14-day trial, as addon_trial_start
    leaves it."""

    class Meta:
        model = AddOnSubscription

    subscription = factory.SubFactory(SubscriptionFactory, paid=True)
    organization = factory.SelfAttribute("subscription.organization")
    addon = factory.LazyFunction(tracker_addon)
    status = AddOnSubscription.Status.ACTIVE

    class Params:
        trialing = factory.Trait(
            status=AddOnSubscription.Status.TRIALING,
            trial_started_at=factory.LazyFunction(timezone.now),
            trial_ends_at=factory.LazyAttribute(lambda o: o.trial_started_at + timedelta(days=o.addon.trial_days)),
        )


class TrainingPackFactory(factory.django.DjangoModelFactory):
    """A Tracker training pack as training_pack_grant leaves it: its credits granted now,
    valid for the add-on's training_valid_days, bought by a paid add-on invoice (`invoice=None`
    for a pack without one)."""

    class Meta:
        model = TrainingPack

    organization = factory.SubFactory(OrganizationFactory)
    addon = factory.LazyFunction(lambda: tracker_addon("training"))
    invoice = None
    credits = factory.SelfAttribute("addon.training_credits")
    granted_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyAttribute(lambda o: o.granted_at + timedelta(days=o.addon.training_valid_days))
