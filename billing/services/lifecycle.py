"""The clocks of a subscription, and only the clocks: trial reminders and trial end, renewal
(where the changes that wait for it apply: a smaller edition, fewer seats, a cancellation),
dunning, overdue purchase-order invoices, and stalled charges and refunds resumed. The changes
an admin makes are in subscriptions and seats.

The beat runs `lifecycle_tick` every 15 minutes. Each tick finds what is due through partial
indexes (trial end, period end, next dunning retry), so its cost grows with what is due, not
with the number of subscriptions. Each subscription is handled in its own transaction that
locks its organization, then the subscription (the lock order of every billing change), and
checks its state again under the locks, so overlapping ticks never handle one twice. No lock is
held while Stripe is called: charges go through payments that the worker charges after commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from accounts.models import Organization
from accounts.services import organization_lock, seats_in_use
from catalog.models import AddOn, Edition
from common.money import money
from common.tasks import enqueue_on_commit
from experiments import events
from experiments.services import event_record

from .. import events as billing_events
from .. import tasks
from ..entitlements import entitlements_invalidate
from ..formats import day, seats_text, span
from ..models import (
    AddOnSubscription,
    BillingAccount,
    CreditNote,
    Invoice,
    Payment,
    Subscription,
)
from ..pricing import (
    addon_edition_meets,
    addon_quantity,
    addon_unit_price,
    discount_minor,
    period_end_after,
    unit_price,
)
from ..selectors import addon_price_text, managed_ask_url
from .billing_account import billing_account_of, billing_email_admins, payer_collection
from .grants import (
    addon_grants_changed_if_any,
    addon_grants_changed_send,
    addon_invoice_suspend,
    addon_removal_reason_for_edition,
    addons_end,
)
from .invoices import ChargeLine, discount_lines, invoice_issue
from .payments import payment_start, renewal_payment_failed
from .subscriptions import subscription_cancel_now
from .training import training_tick

logger = logging.getLogger(__name__)
BATCH = 200


@dataclass
class TickReport:
    reminders: int = 0
    trials_to_free: int = 0
    trials_suspended: int = 0
    renewals: int = 0
    dunning_retries: int = 0
    suspended: int = 0
    overdue_reminders: int = 0
    resumed: int = 0
    addon_trials_ended: int = 0
    addons_ended: int = 0
    handled: list[str] = field(default_factory=list)
    training_reminders: int = 0  # training.training_tick: packs' expiry reminders, and packs expired
    training_expired: int = 0


def _free_edition(subscription: Subscription) -> Edition | None:
    return (
        Edition.objects.filter(product=subscription.product, is_active=True, monthly_price_minor=0, annual_price_minor=0)
        .order_by("rank")
        .first()
    )


def _for_each_due(due: Q, order_by: str, handle: Callable[[Subscription], None]) -> None:
    """Handle each due subscription (at most BATCH a tick) in its own transaction: its
    organization locked first, then the subscription, and `due` checked again under the
    locks, so an overlapping tick that got there first leaves nothing to do."""
    candidates = list(
        Subscription.objects.filter(due).order_by(order_by).values_list("pk", "organization_id")[:BATCH]
    )
    for subscription_id, organization_id in candidates:
        with transaction.atomic():
            organization_lock(Organization(pk=organization_id))
            subscription = (
                Subscription.objects.select_for_update(of=("self",))
                .select_related("organization", "product", "edition")
                .filter(due, pk=subscription_id)
                .first()
            )
            if subscription is not None:
                handle(subscription)


# Trials -----------------------------------------------------------------------------------------


def trial_tick(*, now: datetime, report: TickReport) -> None:
    """Send due trial reminders; end trials whose time is up (Free when the organization fits
    the Free edition, otherwise suspended until someone pays)."""
    horizon = now + timedelta(days=max(settings.TRIAL_REMINDER_DAYS, default=0))

    def handle(subscription: Subscription) -> None:
        if subscription.trial_ends_at <= now:
            _trial_end(subscription, report)
        else:
            _trial_remind(subscription, now, report)

    _for_each_due(Q(status=Subscription.Status.TRIALING, trial_ends_at__lte=horizon), "trial_ends_at", handle)


def _trial_remind(subscription: Subscription, now: datetime, report: TickReport) -> None:
    days_left = (subscription.trial_ends_at - now).total_seconds() / 86400
    reached = [days for days in settings.TRIAL_REMINDER_DAYS if days_left <= days]
    if not reached or min(reached) in subscription.trial_reminders_sent:
        return
    threshold = min(reached)
    # Thresholds already passed without a reminder (a late tick) are not sent late.
    subscription.trial_reminders_sent = sorted(set(subscription.trial_reminders_sent) | set(reached), reverse=True)
    subscription.save(update_fields=["trial_reminders_sent", "updated_at"])
    day_word = "day" if threshold == 1 else "days"
    if subscription.billed_to_id:
        # A trial a partner started: the partner buys it, the customer asks the partner.
        partner = subscription.billed_to
        billing_email_admins(
            organization=partner,
            subject=f"The {subscription.product.name} trial of {subscription.organization.name} ends in {threshold} {day_word}",
            body=(
                f"The {subscription.edition} trial you started for {subscription.organization.name} ends on "
                f"{day(subscription.trial_ends_at)}. To keep it, buy it for them (a quote, or buy on their behalf) "
                "from your partner pages before then. If nothing is bought, they move to the Free edition when it "
                "fits their user limit, or the product is suspended."
            ),
        )
        billing_email_admins(
            organization=subscription.organization,
            subject=f"Your {subscription.product.name} trial ends in {threshold} {day_word}",
            body=(
                f"Your {subscription.edition} trial ends on {day(subscription.trial_ends_at)}. "
                f"{partner.name} manages {subscription.product.name} for you: to keep it, ask them: "
                f"{settings.SITE_URL}{managed_ask_url(subscription, 'product')}"
            ),
        )
        report.reminders += 1
        report.handled.append(f"reminder {threshold}d {subscription.public_id}")
        return
    billing_email_admins(
        organization=subscription.organization,
        subject=f"Your {subscription.product.name} trial ends in {threshold} {day_word}",
        body=(
            f"Your {subscription.edition} trial ends on {day(subscription.trial_ends_at)}.\n\n"
            f"Keep it by adding a card: {settings.SITE_URL}/billing/checkout/{subscription.public_id}/\n\n"
            "If you do nothing, your organization moves to the Free edition when it fits its "
            "user limit, or the product is suspended until someone pays."
        ),
    )
    report.reminders += 1
    report.handled.append(f"reminder {threshold}d {subscription.public_id}")


def _trial_end(subscription: Subscription, report: TickReport) -> None:
    organization = subscription.organization  # locked by _for_each_due
    free = _free_edition(subscription)
    in_use = seats_in_use(organization=organization)
    if free is not None and in_use <= free.seat_limit:
        subscription.edition = free
        subscription.seat_limit = free.seat_limit
        subscription.status = Subscription.Status.ACTIVE
        for row in _live_addons(subscription):
            if not addon_edition_meets(row.addon, free):
                reason = addon_removal_reason_for_edition(row.addon, free)
                report.addons_ended += len(addons_end(subscription=subscription, when=timezone.now(), reason=reason, addons=[row.addon]))
        outcome = "free"
        report.trials_to_free += 1
        body = (
            f"Your {subscription.product.name} trial has ended and your organization is now on the "
            f"Free edition (up to {free.seat_limit} users). Upgrade any time: {settings.SITE_URL}/billing/"
        )
    else:
        subscription.status = Subscription.Status.SUSPENDED
        subscription.suspended_at = timezone.now()
        outcome = "suspended"
        report.trials_suspended += 1
        body = (
            f"Your {subscription.product.name} trial has ended. Your organization has {in_use} users, more "
            f"than the Free edition allows, so {subscription.product.name} is suspended until someone "
            f"pays: {settings.SITE_URL}/billing/checkout/{subscription.public_id}/"
        )
    subscription.trial_ends_at = None
    subscription.save()
    if outcome == "suspended":
        addon_grants_changed_if_any(subscription=subscription)
    event_record(
        name=events.TRIAL_ENDED,
        organization=organization,
        properties={"product": subscription.product.code, "outcome": outcome, "seats_in_use": in_use},
    )
    if subscription.billed_to_id and outcome == "suspended":
        partner = subscription.billed_to
        body = (
            f"Your {subscription.product.name} trial has ended. Your organization has {in_use} users, more "
            f"than the Free edition allows, so {subscription.product.name} is suspended until {partner.name}, "
            f"who manages it, buys it: ask them: {settings.SITE_URL}{managed_ask_url(subscription, 'product')}"
        )
    if subscription.billed_to_id:
        billing_email_admins(
            organization=subscription.billed_to,
            subject=f"The {subscription.product.name} trial of {organization.name} has ended",
            body=(
                f"The {subscription.product.name} trial you started for {organization.name} has ended: "
                + (f"they are on the Free edition now (up to {free.seat_limit} users)." if outcome == "free"
                   else f"{subscription.product.name} is suspended until you buy it for them from your partner pages.")
            ),
        )
    billing_email_admins(organization=organization, subject=f"Your {subscription.product.name} trial has ended", body=body)
    report.handled.append(f"trial end {outcome} {subscription.public_id}")


# Renewal ----------------------------------------------------------------------------------------


def renewal_tick(*, now: datetime, report: TickReport) -> None:
    """Issue and collect the next period's invoice of every subscription whose period ended.

    Waiting changes apply first (a smaller edition, fewer seats); a subscription moved to a
    free edition is not charged. Card customers are charged off-session; purchase-order
    customers get the invoice with their PO number and net terms, and keep the product.
    """
    _for_each_due(
        Q(status=Subscription.Status.ACTIVE, current_period_end__lte=now) & ~Q(interval=""),
        "current_period_end",
        lambda subscription: _renew(subscription, now, report),
    )


def _renew(subscription: Subscription, now: datetime, report: TickReport) -> None:
    organization = subscription.organization  # locked by _for_each_due
    period_start = subscription.current_period_end
    if subscription.cancel_at_period_end:
        subscription_cancel_now(subscription, when=period_start, scheduled=True)
        report.handled.append(f"canceled at period end {subscription.public_id}")
        return
    if Invoice.objects.filter(
        subscription=subscription, kind=Invoice.Kind.RENEWAL, period_start=period_start
    ).exclude(status=Invoice.Status.VOID).exists():
        return  # issued by an earlier tick, waiting for its payment
    # Upgrades, seats, add-ons and take-overs left unpaid (declined) were priced for the period that
    # ends now: void them, so that none can be paid later to change the new period at the old one's
    # price (a take-over paid after the partner renewed would hand the customer the partner's year).
    for stale in Invoice.objects.select_for_update().filter(
        subscription=subscription,
        kind__in=(Invoice.Kind.UPGRADE, Invoice.Kind.SEATS, Invoice.Kind.ADDON, Invoice.Kind.TAKEOVER),
        status=Invoice.Status.OPEN, collection_method=BillingAccount.Collection.CARD, period_end__lte=period_start,
    ):
        if not stale.payments.filter(status__in=Payment.LIVE).exists():
            stale.status = Invoice.Status.VOID
            stale.save(update_fields=["status"])
    if subscription.pending_edition_id:
        subscription.edition = subscription.pending_edition
        subscription.pending_edition = None
    if subscription.pending_seat_limit:
        subscription.seat_limit = subscription.pending_seat_limit
        subscription.pending_seat_limit = None
    subscription.seat_limit = min(subscription.seat_limit, subscription.edition.seat_limit)
    if subscription.billed_to_ends_at_renewal:
        # The partner's billing ended (link ended, or the customer moves to direct billing): from
        # this renewal the subscription is the organization's own, at list price, on its own
        # account (card, or its purchase-order terms); the partner's purchase order goes too.
        report.handled.append(f"payer ended {subscription.public_id}")
        subscription.billed_to = None
        subscription.billed_to_discount_bp = 0
        subscription.billed_to_ends_at_renewal = False
        subscription.purchase_order_number = ""
    report.addons_ended += _renewal_addons_end(subscription, when=period_start)
    if subscription.edition.is_free:
        subscription.interval = ""
        subscription.current_period_start = None
        subscription.current_period_end = None
        subscription.save()
        report.handled.append(f"moved to free {subscription.public_id}")
        return
    period_end = period_end_after(period_start, subscription.interval)
    unit = unit_price(subscription.edition, subscription.interval)
    addon_lines = _renewal_addon_lines(subscription, period_start=period_start, period_end=period_end)
    discount_bp = subscription.billed_to_discount_bp if subscription.billed_to_id else 0
    discount = discount_minor(unit * subscription.seat_limit + sum(line.amount_minor for line in addon_lines), discount_bp)
    collection = payer_collection(subscription, kind=Invoice.Kind.RENEWAL)
    account = collection.account
    purchase_order = collection.purchase_order
    invoice = invoice_issue(
        organization=organization,
        subscription=subscription,
        kind=Invoice.Kind.RENEWAL,
        edition=subscription.edition,
        seats=subscription.seat_limit,
        interval=subscription.interval,
        unit_amount_minor=unit,
        quantity=subscription.seat_limit,
        amount_minor=unit * subscription.seat_limit,
        period_start=period_start,
        period_end=period_end,
        description=(
            f"{subscription.edition}, {seats_text(subscription.seat_limit)}, "
            f"{span(period_start, period_end)}"
        ),
        lines=addon_lines + discount_lines(discount, discount_bp),
        bill_to=subscription.billed_to,
        discount_bp=discount_bp,
    )
    subscription.save()
    report.renewals += 1
    report.handled.append(f"renewal {invoice.number}")
    if purchase_order:
        invoice.collection_method = BillingAccount.Collection.INVOICE
        invoice.po_number = collection.po_number
        invoice.due_at = now + timedelta(days=collection.net_terms_days)
        invoice.save(update_fields=["collection_method", "po_number", "due_at"])
        # Net terms: the product goes on while the invoice is being paid.
        subscription.current_period_start = period_start
        subscription.current_period_end = period_end
        subscription.save()
        for_licensee = f" ({organization.name})" if invoice.bill_to_id else ""
        billing_email_admins(
            organization=invoice.bill_to or organization,
            subject=f"Invoice {invoice.number} for {subscription.product.name}{for_licensee}",
            body=(
                f"Invoice {invoice.number} (PO {invoice.po_number or '-'}) for "
                f"{money(invoice.total_minor, invoice.currency)} is due on {day(invoice.due_at)}. "
                f"View it at {settings.SITE_URL}/billing/invoices/{invoice.public_id}/"
            ),
        )
        return
    if not account.has_card:
        # Nothing to charge: straight into dunning, which asks for a card.
        payment = Payment.objects.create(
            organization=organization, invoice=invoice, amount_minor=invoice.total_minor, currency=invoice.currency,
            payment_method_id="", status=Payment.Status.FAILED, failure_message="No card on file.", failure_code="no_card",
        )
        renewal_payment_failed(payment)
        return
    payment_start(invoice=invoice, account=account, actor=None)


def _live_addons(subscription: Subscription) -> list[AddOnSubscription]:
    return list(
        AddOnSubscription.objects.select_related("addon__min_edition")
        .filter(subscription=subscription, status__in=AddOnSubscription.LIVE_STATUSES)
        .order_by("addon__position", "pk")
    )


def _renewal_addons_end(subscription: Subscription, *, when: datetime) -> int:
    """At the renewal, before the invoice: end the add-ons whose removal waited for it (their
    reason kept), those the edition now current does not include, every add-on when the base
    moved to a free edition (nothing bills them any more), and a suspended one (its own
    purchase-order invoice is unpaid). Returns how many ended."""
    edition = subscription.edition
    ending: dict[str, list[AddOn]] = {}
    for row in _live_addons(subscription):
        if row.cancel_at_period_end:
            reason = row.cancel_reason
        elif not addon_edition_meets(row.addon, edition):
            reason = addon_removal_reason_for_edition(row.addon, edition)
        elif edition.is_free:
            reason = f"{edition} is free: {row.addon.name} is billed with a paid edition."
        elif row.status == AddOnSubscription.Status.SUSPENDED:
            reason = f"{row.addon.name} was suspended for an unpaid invoice at the renewal."
        else:
            continue
        ending.setdefault(reason, []).append(row.addon)
    return sum(
        len(addons_end(subscription=subscription, when=when, reason=reason, addons=addons))
        for reason, addons in ending.items()
    )


def _renewal_addon_lines(subscription: Subscription, *, period_start: datetime, period_end: datetime) -> list[ChargeLine]:
    """One renewal line per active add-on of the base, on its interval: a per-seat add-on for
    the seats the new period has, a flat one once. Trialing add-ons are not billed (their trial
    end removes them unless they are bought)."""
    per = "year" if subscription.interval == Subscription.Interval.YEAR else "month"
    lines = []
    for row in _live_addons(subscription):
        if row.status != AddOnSubscription.Status.ACTIVE:
            continue
        addon = row.addon
        unit = addon_unit_price(addon, subscription.interval)
        quantity = addon_quantity(addon, seat_limit=subscription.seat_limit)
        what = (
            f"{seats_text(quantity)} × {money(unit, addon.currency)}/{per}"
            if addon.pricing == AddOn.Pricing.PER_SEAT
            else f"{money(unit, addon.currency)}/{per}"
        )
        lines.append(
            ChargeLine(
                description=f"{addon.name}: {what}, {span(period_start, period_end)}",
                quantity=quantity,
                unit_amount_minor=unit,
                amount_minor=unit * quantity,
                addon=addon,
            )
        )
    return lines


# Add-on trials ----------------------------------------------------------------------------------


def addon_trial_tick(*, now: datetime, report: TickReport) -> None:
    """End add-on trials whose time is up: the add-on is removed (never charged automatically)
    and the admins are told how to buy it. Each in its own transaction, locked in the billing
    order (organization, base subscription, add-on) and checked again under the locks."""
    due = Q(status=AddOnSubscription.Status.TRIALING, trial_ends_at__lte=now)
    candidates = list(
        AddOnSubscription.objects.filter(due).order_by("trial_ends_at").values_list("pk", "organization_id", "subscription_id")[:BATCH]
    )
    for addon_subscription_id, organization_id, subscription_id in candidates:
        with transaction.atomic():
            organization = organization_lock(Organization(pk=organization_id))
            subscription = (
                Subscription.objects.select_for_update(of=("self",))
                .select_related("organization", "product", "edition")
                .get(pk=subscription_id)
            )
            row = (
                AddOnSubscription.objects.select_for_update(of=("self",))
                .select_related("addon")
                .filter(due, pk=addon_subscription_id)
                .first()
            )
            if row is None:
                continue
            row.status = AddOnSubscription.Status.CANCELED
            row.canceled_at = now
            row.trial_ends_at = None
            row.cancel_reason = "The free trial ended."
            row.save(update_fields=["status", "canceled_at", "trial_ends_at", "cancel_reason", "updated_at"])
            addon_grants_changed_send(organization_id=organization_id, product_id=subscription.product_id)
            addon = row.addon
            product = subscription.product.name
            paid = subscription.status == Subscription.Status.ACTIVE and subscription.interval
            how = (
                f"To keep using it, add it for {addon_price_text(addon, subscription.interval)}: "
                f"{settings.SITE_URL}/billing/addons/{subscription.public_id}/{addon.code}/"
                if paid
                else f"It is billed with {product}'s paid subscription: buy {product}, then add {addon.name} "
                f"({addon_price_text(addon, subscription.interval)}) from {settings.SITE_URL}/billing/"
            )
            billing_email_admins(
                organization=subscription.organization,
                subject=f"Your {addon.name} trial has ended",
                body=(
                    f"Your free trial of {addon.name} on {product} has ended, and {addon.name} is removed. "
                    f"Nothing was charged. {how}"
                ),
            )
            event_record(
                name=billing_events.ADDON_ENDED,
                organization=organization,
                properties={"product": subscription.product.code, "addon": addon.code, "reason": "trial ended"},
            )
            report.addon_trials_ended += 1
            report.handled.append(f"addon trial end {row.public_id}")


# Dunning ----------------------------------------------------------------------------------------


def dunning_tick(*, now: datetime, report: TickReport) -> None:
    """Retry past-due renewals on DUNNING_RETRY_DAYS, e-mailing each time; suspend the
    subscription (that one only) DUNNING_GRACE_DAYS after the last retry."""
    _for_each_due(
        Q(status=Subscription.Status.PAST_DUE, next_dunning_at__lte=now),
        "next_dunning_at",
        lambda subscription: _dun(subscription, now, report),
    )


def _dun(subscription: Subscription, now: datetime, report: TickReport) -> None:
    organization = subscription.organization  # locked by _for_each_due
    invoice = (
        Invoice.objects.filter(subscription=subscription, kind=Invoice.Kind.RENEWAL, status=Invoice.Status.OPEN)
        .order_by("-period_start")
        .first()
    )
    if invoice is None:
        subscription.status = Subscription.Status.ACTIVE
        subscription.next_dunning_at = None
        subscription.save()
        return
    schedule = settings.DUNNING_RETRY_DAYS
    if subscription.dunning_attempts >= len(schedule):
        subscription.status = Subscription.Status.SUSPENDED
        subscription.suspended_at = now
        subscription.next_dunning_at = None
        subscription.save()
        addon_grants_changed_if_any(subscription=subscription)
        event_record(
            name=events.SUBSCRIPTION_SUSPENDED,
            organization=organization,
            properties={"product": subscription.product.code, "invoice": invoice.number, "reason": "unpaid renewal"},
        )
        if invoice.bill_to_id:
            _managed_suspension_note(subscription, payer=invoice.bill_to)
        billing_email_admins(
            organization=invoice.bill_to or organization,
            subject=f"{subscription.product.name} is suspended" + (f" for {organization.name}" if invoice.bill_to_id else ""),
            body=(
                f"Invoice {invoice.number} is still unpaid, so {subscription.product.name}"
                f"{f' of {organization.name}' if invoice.bill_to_id else ''} is suspended. "
                f"Pay it to reactivate it at once: {settings.SITE_URL}/billing/"
            ),
        )
        report.suspended += 1
        report.handled.append(f"suspended {subscription.public_id}")
        return
    subscription.dunning_attempts += 1
    attempt = subscription.dunning_attempts
    past_due_since = subscription.past_due_since or now
    if attempt < len(schedule):
        subscription.next_dunning_at = past_due_since + timedelta(days=schedule[attempt])
    else:
        subscription.next_dunning_at = past_due_since + timedelta(days=schedule[-1] + settings.DUNNING_GRACE_DAYS)
    subscription.save()
    report.dunning_retries += 1
    report.handled.append(f"retry {attempt} {invoice.number}")
    payer = invoice.bill_to or organization  # the renewal's payer: a partner's card pays its invoice
    account = billing_account_of(payer)
    live = invoice.payments.exclude(status=Payment.Status.FAILED).exists()
    if account.has_card and not live:
        payment_start(invoice=invoice, account=account, actor=None)
    else:
        billing_email_admins(
            organization=payer,
            subject=f"Payment needed for {subscription.product.name}" + (f" ({organization.name})" if invoice.bill_to_id else ""),
            body=(
                f"Invoice {invoice.number} is unpaid. Enter a card and pay it here: "
                f"{settings.SITE_URL}/billing/card/?invoice={invoice.public_id}"
            ),
        )


# Purchase orders --------------------------------------------------------------------------------


def overdue_tick(*, now: datetime, report: TickReport) -> None:
    """Remind purchase-order customers of overdue invoices; after the grace period, suspend
    the subscription the invoice covers (that one only), or for an add-on invoice only what it
    bought (the add-on or training pack), never the base."""
    overdue = list(
        Invoice.objects.filter(status=Invoice.Status.OPEN, collection_method="invoice", due_at__lte=now)
        .order_by("due_at")
        .values_list("pk", "organization_id")[:BATCH]
    )
    for invoice_id, organization_id in overdue:
        with transaction.atomic():
            organization_lock(Organization(pk=organization_id))
            Subscription.objects.select_for_update(of=("self",)).filter(invoices__pk=invoice_id).first()
            invoice = (
                Invoice.objects.select_for_update(of=("self",))
                .select_related("subscription__product", "organization")
                .filter(pk=invoice_id, status=Invoice.Status.OPEN)
                .first()
            )
            if invoice is None:
                continue
            days_overdue = (now - invoice.due_at).days
            subscription = invoice.subscription
            if invoice.kind == Invoice.Kind.ADDON and days_overdue >= settings.DUNNING_GRACE_DAYS:
                if addon_invoice_suspend(invoice=invoice, when=now):
                    event_record(
                        name=events.SUBSCRIPTION_SUSPENDED,
                        organization=invoice.organization,
                        properties={
                            "product": subscription.product.code,
                            "addon": invoice.addon.code,
                            "invoice": invoice.number,
                            "reason": "overdue add-on invoice",
                        },
                    )
                    report.suspended += 1
                    if invoice.bill_to_id:
                        _managed_suspension_note(subscription, payer=invoice.bill_to, what=invoice.addon.name)
                    billing_email_admins(
                        organization=invoice.bill_to or invoice.organization,
                        subject=f"{invoice.addon.name} is suspended" + (f" for {invoice.organization.name}" if invoice.bill_to_id else ""),
                        body=(
                            f"Invoice {invoice.number} (PO {invoice.po_number or '-'}) is overdue, so {invoice.addon.name} "
                            f"is suspended until it is paid. {subscription.product.name} itself goes on as before."
                        ),
                    )
                continue
            ended = subscription.status in (Subscription.Status.SUSPENDED, Subscription.Status.CANCELED)
            # A partner's invoice for a subscription its customer has taken over since is the
            # partner's debt alone: it is reminded, and never suspends the customer's product.
            not_theirs_any_more = invoice.bill_to_id is not None and subscription.billed_to_id != invoice.bill_to_id
            if days_overdue >= settings.DUNNING_GRACE_DAYS and not ended and not not_theirs_any_more:
                Subscription.objects.filter(pk=subscription.pk).update(
                    status=Subscription.Status.SUSPENDED, suspended_at=now
                )
                entitlements_invalidate(organization_id=invoice.organization_id)
                addon_grants_changed_if_any(subscription=subscription)
                event_record(
                    name=events.SUBSCRIPTION_SUSPENDED,
                    organization=invoice.organization,
                    properties={"product": subscription.product.code, "invoice": invoice.number, "reason": "overdue invoice"},
                )
                report.suspended += 1
                if invoice.bill_to_id:
                    _managed_suspension_note(subscription, payer=invoice.bill_to)
                billing_email_admins(
                    organization=invoice.bill_to or invoice.organization,
                    subject=f"{subscription.product.name} is suspended" + (f" for {invoice.organization.name}" if invoice.bill_to_id else ""),
                    body=(
                        f"Invoice {invoice.number} is overdue, so {subscription.product.name}"
                        f"{f' of {invoice.organization.name}' if invoice.bill_to_id else ''} is suspended until it is paid."
                        + (
                            f" View it at {settings.SITE_URL}{reverse('invoice', args=[invoice.public_id])}"
                            if invoice.bill_to_id
                            else ""
                        )
                    ),
                )
            elif invoice.overdue_reminders_sent <= days_overdue // 7 and days_overdue < settings.DUNNING_GRACE_DAYS + 1:
                invoice.overdue_reminders_sent += 1
                invoice.save(update_fields=["overdue_reminders_sent"])
                report.overdue_reminders += 1
                billing_email_admins(
                    organization=invoice.bill_to or invoice.organization,
                    subject=f"Invoice {invoice.number} is overdue" + (f" ({invoice.organization.name})" if invoice.bill_to_id else ""),
                    body=(
                        f"Invoice {invoice.number} (PO {invoice.po_number or '-'}) was due on {day(invoice.due_at)}. "
                        f"{invoice.addon.name if invoice.addon_id else subscription.product.name} will be suspended "
                        "if it stays unpaid."
                    ),
                )


def _managed_suspension_note(subscription: Subscription, *, payer: Organization, what: str = "") -> None:
    """The licensee's admins hear that their product (or add-on) is suspended because the
    partner's invoice is unpaid: who to ask, never the partner's amounts."""
    what = what or subscription.product.name
    billing_email_admins(
        organization=subscription.organization,
        subject=f"{what} is suspended: managed by {payer.name}",
        body=(
            f"{what} is managed by {payer.name}, who pays for it. Their invoice for it is unpaid, so {what} is "
            f"suspended until they pay it. Ask {payer.name} about it from your billing page: "
            f"{settings.SITE_URL}{reverse('billing')}"
        ),
    )


def lifecycle_tick(*, now: datetime | None = None) -> TickReport:
    now = now or timezone.now()
    report = TickReport()
    trial_tick(now=now, report=report)
    addon_trial_tick(now=now, report=report)
    renewal_tick(now=now, report=report)
    dunning_tick(now=now, report=report)
    overdue_tick(now=now, report=report)
    training_tick(now=now, report=report)
    report.resumed = work_resume_stalled(now=now)
    return report


def work_resume_stalled(*, now: datetime) -> int:
    """Schedule again the charges and refunds that nothing is working on: a task that was never
    published (the broker was down at commit), or a worker lost in the middle. A payment or
    credit note still pending (or a payment processing) PAYMENT_STALE_MINUTES after it last
    moved is charged or refunded again, which adopts what Stripe already did for it, if
    anything, and never does it twice. Returns how many were scheduled."""
    stale = now - timedelta(minutes=settings.PAYMENT_STALE_MINUTES)
    payments = list(
        Payment.objects.filter(status__in=(Payment.Status.PENDING, Payment.Status.PROCESSING), updated_at__lt=stale)
        .order_by("updated_at")
        .values_list("pk", flat=True)[:500]
    )
    notes = list(
        CreditNote.objects.filter(status=CreditNote.Status.PENDING, created_at__lt=stale)
        .order_by("created_at")
        .values_list("pk", flat=True)[:500]
    )
    for payment_id in payments:
        enqueue_on_commit(tasks.payment_charge, payment_id)
    for note_id in notes:
        enqueue_on_commit(tasks.credit_note_refund, note_id)
    if payments or notes:
        logger.warning("resumed %d stalled payment(s) and %d stalled refund(s)", len(payments), len(notes))
    return len(payments) + len(notes)
