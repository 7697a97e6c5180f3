"""The clocks of a subscription: trial reminders and trial end, renewal, dunning; and the
changes that wait for them: edition changes and seat removals.

The beat runs `lifecycle_tick` every 15 minutes. Each tick finds what is due through partial
indexes (trial end, period end, next dunning retry), so its cost grows with what is due, not
with the number of subscriptions. Each subscription is handled in its own transaction that
locks its organization, then the subscription (the lock order of every billing change), and
checks its state again under the locks, so overlapping ticks never handle one twice. No lock is held while Stripe is called: charges go through
payments that the worker charges after commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Organization, User
from accounts.services import organization_lock, seats_in_use
from catalog.models import Edition
from catalog.templatetags.catalog_tags import money
from common.tasks import enqueue_on_commit
from experiments import events
from experiments.services import event_record

from . import events as billing_events
from .entitlements import entitlements_invalidate
from .exceptions import CheckoutInvalid, NoCardOnFile
from .formats import day, seats_text, span
from .models import BillingAccount, Invoice, Payment, Subscription
from .services import (
    PRICE_CHANGED,
    CreditLine,
    _invoice_issue,
    _payment_start,
    _require_admin,
    billing_account_of,
    billing_email_admins,
    owed_for_time_used,
    period_end_after,
    period_seconds,
    prorate,
    quote_token_make,
    quote_token_read,
)

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
    handled: list[str] = field(default_factory=list)


def _unit_price(edition: Edition, interval: str) -> int:
    return edition.monthly_price_minor if interval == Subscription.Interval.MONTH else edition.annual_price_minor


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
    event_record(
        name=events.TRIAL_ENDED,
        organization=organization,
        properties={"product": subscription.product.code, "outcome": outcome, "seats_in_use": in_use},
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
        _cancel_now(subscription, when=period_start, scheduled=True)
        report.handled.append(f"canceled at period end {subscription.public_id}")
        return
    if Invoice.objects.filter(
        subscription=subscription, kind=Invoice.Kind.RENEWAL, period_start=period_start
    ).exclude(status=Invoice.Status.VOID).exists():
        return  # issued by an earlier tick, waiting for its payment
    # Upgrades and seats left unpaid (declined) were priced for the period that ends now: void
    # them, so that none can be paid later to change the new period at the old one's price.
    for stale in Invoice.objects.select_for_update().filter(
        subscription=subscription, kind__in=(Invoice.Kind.UPGRADE, Invoice.Kind.SEATS), status=Invoice.Status.OPEN,
        period_end__lte=period_start,
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
    if subscription.edition.is_free:
        subscription.interval = ""
        subscription.current_period_start = None
        subscription.current_period_end = None
        subscription.save()
        report.handled.append(f"moved to free {subscription.public_id}")
        return
    period_end = period_end_after(period_start, subscription.interval)
    unit = _unit_price(subscription.edition, subscription.interval)
    account = billing_account_of(organization)
    purchase_order = account.collection_method == BillingAccount.Collection.INVOICE
    invoice = _invoice_issue(
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
    )
    subscription.save()
    report.renewals += 1
    report.handled.append(f"renewal {invoice.number}")
    if purchase_order:
        invoice.collection_method = BillingAccount.Collection.INVOICE
        invoice.po_number = account.po_number
        invoice.due_at = now + timedelta(days=account.net_terms_days)
        invoice.save(update_fields=["collection_method", "po_number", "due_at"])
        # Net terms: the product goes on while the invoice is being paid.
        subscription.current_period_start = period_start
        subscription.current_period_end = period_end
        subscription.save()
        billing_email_admins(
            organization=organization,
            subject=f"Invoice {invoice.number} for {subscription.product.name}",
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
        from .services import _renewal_payment_failed

        _renewal_payment_failed(payment)
        return
    _payment_start(invoice=invoice, account=account, actor=None)


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
        event_record(
            name=events.SUBSCRIPTION_SUSPENDED,
            organization=organization,
            properties={"product": subscription.product.code, "invoice": invoice.number, "reason": "unpaid renewal"},
        )
        billing_email_admins(
            organization=organization,
            subject=f"{subscription.product.name} is suspended",
            body=(
                f"Invoice {invoice.number} is still unpaid, so {subscription.product.name} is suspended. "
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
    account = billing_account_of(organization)
    live = invoice.payments.exclude(status=Payment.Status.FAILED).exists()
    if account.has_card and not live:
        _payment_start(invoice=invoice, account=account, actor=None)
    else:
        billing_email_admins(
            organization=organization,
            subject=f"Payment needed for {subscription.product.name}",
            body=(
                f"Invoice {invoice.number} is unpaid. Enter a card and pay it here: "
                f"{settings.SITE_URL}/billing/card/?invoice={invoice.public_id}"
            ),
        )


# Purchase orders --------------------------------------------------------------------------------


def overdue_tick(*, now: datetime, report: TickReport) -> None:
    """Remind purchase-order customers of overdue invoices; after the grace period, suspend
    the subscription the invoice covers (that one only)."""
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
            ended = subscription.status in (Subscription.Status.SUSPENDED, Subscription.Status.CANCELED)
            if days_overdue >= settings.DUNNING_GRACE_DAYS and not ended:
                Subscription.objects.filter(pk=subscription.pk).update(
                    status=Subscription.Status.SUSPENDED, suspended_at=now
                )
                entitlements_invalidate(organization_id=invoice.organization_id)
                event_record(
                    name=events.SUBSCRIPTION_SUSPENDED,
                    organization=invoice.organization,
                    properties={"product": subscription.product.code, "invoice": invoice.number, "reason": "overdue invoice"},
                )
                report.suspended += 1
                billing_email_admins(
                    organization=invoice.organization,
                    subject=f"{subscription.product.name} is suspended",
                    body=f"Invoice {invoice.number} is overdue, so {subscription.product.name} is suspended until it is paid.",
                )
            elif invoice.overdue_reminders_sent <= days_overdue // 7 and days_overdue < settings.DUNNING_GRACE_DAYS + 1:
                invoice.overdue_reminders_sent += 1
                invoice.save(update_fields=["overdue_reminders_sent"])
                report.overdue_reminders += 1
                billing_email_admins(
                    organization=invoice.organization,
                    subject=f"Invoice {invoice.number} is overdue",
                    body=(
                        f"Invoice {invoice.number} (PO {invoice.po_number or '-'}) was due on {day(invoice.due_at)}. "
                        f"{subscription.product.name} will be suspended if it stays unpaid."
                    ),
                )


def invoice_mark_paid_by_transfer(*, invoice: Invoice, actor: User) -> Invoice:
    """Staff: a purchase-order invoice was paid by bank transfer or cheque. Reactivates the
    subscription it covers if the invoice had suspended it."""
    from .services import invoice_mark_paid

    with transaction.atomic():
        organization_lock(invoice.organization)
        Subscription.objects.select_for_update(of=("self",)).filter(pk=invoice.subscription_id).first()
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status != Invoice.Status.OPEN:
            return invoice
        invoice = invoice_mark_paid(invoice=invoice, payment=None)
        Subscription.objects.filter(pk=invoice.subscription_id, status=Subscription.Status.SUSPENDED).update(
            status=Subscription.Status.ACTIVE, suspended_at=None
        )
        entitlements_invalidate(organization_id=invoice.organization_id)
        return invoice


def lifecycle_tick(*, now: datetime | None = None) -> TickReport:
    now = now or timezone.now()
    report = TickReport()
    trial_tick(now=now, report=report)
    renewal_tick(now=now, report=report)
    dunning_tick(now=now, report=report)
    overdue_tick(now=now, report=report)
    report.resumed = work_resume_stalled(now=now)
    return report


def work_resume_stalled(*, now: datetime) -> int:
    """Schedule again the charges and refunds that nothing is working on: a task that was never
    published (the broker was down at commit), or a worker lost in the middle. A payment or
    credit note still pending (or a payment processing) PAYMENT_STALE_MINUTES after it last
    moved is charged or refunded again, which adopts what Stripe already did for it, if
    anything, and never does it twice. Returns how many were scheduled."""
    from .models import CreditNote
    from .tasks import credit_note_refund, payment_charge

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
        enqueue_on_commit(payment_charge, payment_id)
    for note_id in notes:
        enqueue_on_commit(credit_note_refund, note_id)
    if payments or notes:
        logger.warning("resumed %d stalled payment(s) and %d stalled refund(s)", len(payments), len(notes))
    return len(payments) + len(notes)


# Changes by an admin ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EditionChangeQuote:
    """What moving to another edition costs, shown before the admin confirms.

    An upgrade applies now: the new edition for the rest of the period, less a credit for the
    unused rest of the old one, each prorated and rounded on its own (docs/billing.md). A
    downgrade waits for the period end and charges nothing now.
    """

    edition: Edition
    old_edition: Edition
    seats: int
    interval: str
    currency: str
    new_unit_minor: int
    old_unit_minor: int
    charge_minor: int
    credit_minor: int
    period_start: datetime
    period_end: datetime
    seconds_left: int
    seconds_in_period: int
    token: str

    @property
    def is_upgrade(self) -> bool:
        return self.edition.rank > self.old_edition.rank

    @property
    def total_minor(self) -> int:
        return self.charge_minor - self.credit_minor

    @property
    def renewal_minor(self) -> int:
        """What each period costs from the next renewal on, on the new edition."""
        return self.new_unit_minor * self.seats

    @property
    def time_left(self) -> str:
        from .formats import time_left

        return time_left(self.seconds_left)


def edition_change_quote(*, subscription: Subscription, edition: Edition, at: datetime | None = None) -> EditionChangeQuote:
    """Price moving `subscription` to `edition`, as at `at` (now by default). CheckoutInvalid
    says why it cannot be done: another product's edition, not paid for, the same edition, a
    smaller edition the organization's users do not fit in, a period that has ended."""
    if edition.product_id != subscription.product_id or not edition.is_active:
        raise CheckoutInvalid(f"{edition} is not an edition of {subscription.product.name}.")
    if subscription.status != Subscription.Status.ACTIVE or not subscription.interval or not subscription.current_period_end:
        raise CheckoutInvalid(f"{subscription.product.name} is not paid for: buy it first.")
    if edition.pk == subscription.edition_id:
        raise CheckoutInvalid(f"{subscription.product.name} is already on {edition.name}.")
    if edition.rank < subscription.edition.rank:
        in_use = seats_in_use(organization=subscription.organization)
        if in_use > edition.seat_limit:
            raise CheckoutInvalid(
                f"{edition} allows {edition.seat_limit} users and {subscription.organization.name} has {in_use}; "
                "remove members or withdraw invites first."
            )
    at = at or timezone.now()
    seconds_left = int((subscription.current_period_end - at).total_seconds())
    if edition.rank > subscription.edition.rank and seconds_left <= 0:
        raise CheckoutInvalid("The current period has ended; change the edition once it has renewed.")
    seconds_in_period = period_seconds(subscription)
    seats = subscription.seat_limit
    new_unit = _unit_price(edition, subscription.interval)
    old_unit = _unit_price(subscription.edition, subscription.interval)
    upgrade = edition.rank > subscription.edition.rank
    charge = prorate(full_amount_minor=new_unit * seats, seconds_left=seconds_left, seconds_in_period=seconds_in_period) if upgrade else 0
    credit = prorate(full_amount_minor=old_unit * seats, seconds_left=seconds_left, seconds_in_period=seconds_in_period) if upgrade else 0
    token = quote_token_make(kind="edition", subscription=subscription, detail=edition.code, at=at, total_minor=charge - credit)
    return EditionChangeQuote(
        edition=edition,
        old_edition=subscription.edition,
        seats=seats,
        interval=subscription.interval,
        currency=edition.currency,
        new_unit_minor=new_unit,
        old_unit_minor=old_unit,
        charge_minor=charge,
        credit_minor=credit,
        period_start=at,
        period_end=subscription.current_period_end,
        seconds_left=max(0, seconds_left),
        seconds_in_period=seconds_in_period,
        token=token,
    )


def subscription_change_edition(
    *, subscription: Subscription, actor: User, edition: Edition, request_key: str, quote_token: str | None = None
) -> Payment | Subscription:
    """Move a paid subscription to another edition of its product.

    A bigger edition applies at once for the prorated difference (a payment; the edition
    changes when it succeeds). A smaller one waits for the period end, and is refused while
    the organization has more users than it allows.

    With `quote_token` (what the admin saw, edition_change_quote), an upgrade is charged exactly
    the total shown, priced at the moment it was shown; it is refused (CheckoutInvalid, nothing
    written) when that moment is over QUOTE_MAX_AGE ago or the price has changed since
    (the seats, the edition or the period moved). One request key, one invoice and one charge.
    """
    _require_admin(subscription.organization, actor)
    with transaction.atomic():
        organization = organization_lock(subscription.organization)
        subscription = Subscription.objects.select_for_update(of=("self",)).select_related("product", "edition").get(
            pk=subscription.pk
        )
        if edition.product_id != subscription.product_id or not edition.is_active:
            raise CheckoutInvalid(f"{edition} is not an edition of {subscription.product.name}.")
        if subscription.status != Subscription.Status.ACTIVE or not subscription.interval:
            raise CheckoutInvalid(f"{subscription.product.name} is not paid for: buy it first.")
        if edition.pk == subscription.edition_id:
            if subscription.pending_edition_id:
                subscription.pending_edition = None  # staying after all: cancel the waiting change
                subscription.save(update_fields=["pending_edition", "updated_at"])
                return subscription
            raise CheckoutInvalid(f"{subscription.product.name} is already on {edition.name}.")
        if edition.rank < subscription.edition.rank:
            edition_change_quote(subscription=subscription, edition=edition)  # refuses what the users do not fit
            subscription.pending_edition = edition
            subscription.save(update_fields=["pending_edition", "updated_at"])
            return subscription
        if request_key:
            existing = Payment.objects.filter(invoice__organization=organization, invoice__request_key=request_key).first()
            if existing is not None:
                return existing
        # One upgrade at a time: each is priced from the edition the subscription has now, so a
        # second one issued while the first is unpaid (another tab, a reload) would credit the
        # same unused time twice and charge for both.
        unpaid_upgrades = list(
            Invoice.objects.select_for_update().filter(
                subscription=subscription, kind=Invoice.Kind.UPGRADE, status=Invoice.Status.OPEN
            )
        )
        for unpaid in unpaid_upgrades:
            live = unpaid.payments.filter(status__in=Payment.LIVE).first()
            if live is not None:
                if unpaid.target_edition_id == edition.pk:
                    return live  # the same upgrade, asked for again
                raise CheckoutInvalid(
                    f"The upgrade to {unpaid.target_edition} (invoice {unpaid.number}) is being charged; "
                    "wait for it to finish, then change again."
                )
        account = billing_account_of(organization)
        if not account.has_card:
            raise NoCardOnFile("Add a card before upgrading.")
        at, shown_total = None, None
        if quote_token is not None:
            at, shown_total = quote_token_read(token=quote_token, kind="edition", subscription=subscription, detail=edition.code)
        quote = edition_change_quote(subscription=subscription, edition=edition, at=at)
        if shown_total is not None and quote.total_minor != shown_total:
            raise CheckoutInvalid(PRICE_CHANGED)
        for unpaid in unpaid_upgrades:
            unpaid.status = Invoice.Status.VOID  # declined earlier, and replaced by this one
            unpaid.save(update_fields=["status"])
        span_text = span(quote.period_start, quote.period_end)
        interval = "year" if subscription.interval == Subscription.Interval.YEAR else "month"
        seats = quote.seats
        invoice = _invoice_issue(
            organization=organization,
            subscription=subscription,
            kind=Invoice.Kind.UPGRADE,
            edition=edition,
            seats=seats,
            interval=subscription.interval,
            unit_amount_minor=quote.new_unit_minor,
            quantity=seats,
            amount_minor=quote.charge_minor,
            period_start=quote.period_start,
            period_end=quote.period_end,
            description=(
                f"{edition}, {seats_text(seats)} × {money(quote.new_unit_minor, quote.currency)}/{interval}, "
                f"prorated for {span_text}"
            ),
            request_key=request_key,
            credit=CreditLine(
                description=(
                    f"Unused time on {subscription.edition}, {seats_text(seats)} × "
                    f"{money(quote.old_unit_minor, quote.currency)}/{interval}, prorated for {span_text}"
                ),
                quantity=seats,
                unit_amount_minor=quote.old_unit_minor,
                amount_minor=quote.credit_minor,
            ),
        )
        amount = invoice.total_minor
        subscription.pending_edition = None
        subscription.save(update_fields=["pending_edition", "updated_at"])
        if amount == 0:
            from .services import invoice_mark_paid

            invoice_mark_paid(invoice=invoice, payment=None)
            return subscription
        return _payment_start(invoice=invoice, account=account, actor=actor)


def subscription_remove_seats(*, subscription: Subscription, actor: User, seats: int) -> Subscription:
    """Fewer seats from the next renewal; refused below the seats the organization uses."""
    _require_admin(subscription.organization, actor)
    with transaction.atomic():
        organization = organization_lock(subscription.organization)
        subscription = Subscription.objects.select_for_update(of=("self",)).select_related("product").get(pk=subscription.pk)
        if subscription.status != Subscription.Status.ACTIVE or not subscription.interval:
            raise CheckoutInvalid(f"{subscription.product.name} is not paid for.")
        target = (subscription.pending_seat_limit or subscription.seat_limit) - seats
        in_use = seats_in_use(organization=organization)
        if seats < 1 or target < max(1, in_use):
            raise CheckoutInvalid(
                f"{organization.name} uses {in_use} seats (members and pending invites); it cannot go below that."
            )
        subscription.pending_seat_limit = target
        subscription.save(update_fields=["pending_seat_limit", "updated_at"])
        return subscription


# Cancellation -----------------------------------------------------------------------------------

CANCELLATION_REASONS = {
    "too_expensive": "Too expensive",
    "missing_features": "Missing features we need",
    "switched": "Switched to another product",
    "not_using": "Not using it enough",
    "other": "Something else",
}


def _cancel_now(subscription: Subscription, *, when: datetime, scheduled: bool) -> None:
    """End a subscription (its organization and row locked by the caller): it stops being
    entitled, its open invoices are voided (not a purchase-order renewal for a period that
    began: that is owed, and is still collected), and the product can be started again later."""
    open_invoices = list(
        Invoice.objects.select_for_update().filter(subscription=subscription, status=Invoice.Status.OPEN).exclude(
            owed_for_time_used(when)
        )
    )
    for invoice in open_invoices:
        if invoice.payments.filter(status__in=Payment.LIVE).exists():
            raise CheckoutInvalid(
                f"A payment of invoice {invoice.number} is under way; wait for it to finish, then cancel."
            )
    for invoice in open_invoices:
        invoice.status = Invoice.Status.VOID
        invoice.save(update_fields=["status"])
    previous = subscription.status
    subscription.status = Subscription.Status.CANCELED
    subscription.canceled_at = when
    subscription.cancel_at_period_end = False
    subscription.pending_edition = None
    subscription.pending_seat_limit = None
    subscription.next_dunning_at = None
    subscription.save()
    event_record(
        name=billing_events.SUBSCRIPTION_CANCELED,
        organization=subscription.organization,
        properties={
            "product": subscription.product.code,
            "edition": subscription.edition.code,
            "from_status": previous,
            "scheduled": scheduled,
            "reason": subscription.cancellation_reason,
            "voided_invoices": [invoice.number for invoice in open_invoices],
        },
    )
    billing_email_admins(
        organization=subscription.organization,
        subject=f"{subscription.product.name} is cancelled",
        body=(
            f"{subscription.product.name} ({subscription.edition.name}) of {subscription.organization.name} "
            f"ended on {day(when)}. Nothing more will be charged for it."
            + (f" Open invoices voided: {', '.join(i.number for i in open_invoices)}." if open_invoices else "")
            + f"\n\nChanged your mind? Start it again from {settings.SITE_URL}/billing/"
        ),
    )


def subscription_cancel(*, subscription: Subscription, actor: User, reason: str = "") -> Subscription:
    """Cancel a subscription.

    A paid, active subscription runs to the end of the period it is paid for and then ends
    (`cancel_at_period_end`; the renewal tick ends it instead of renewing, and no refund is
    made for the rest of the period). A trial, the Free edition, and a past-due or suspended
    subscription end at once, and their open invoices are voided. Canceling twice changes
    nothing.
    """
    _require_admin(subscription.organization, actor)
    if reason and reason not in CANCELLATION_REASONS:
        raise CheckoutInvalid(f"Unknown cancellation reason {reason!r}; choose one from the list.")
    with transaction.atomic():
        organization_lock(subscription.organization)
        subscription = (
            Subscription.objects.select_for_update(of=("self",))
            .select_related("organization", "product", "edition")
            .get(pk=subscription.pk)
        )
        if subscription.status == Subscription.Status.CANCELED or subscription.cancel_at_period_end:
            return subscription
        subscription.cancellation_reason = reason
        if subscription.status == Subscription.Status.ACTIVE and subscription.interval:
            subscription.cancel_at_period_end = True
            subscription.save(update_fields=["cancel_at_period_end", "cancellation_reason", "updated_at"])
            event_record(
                name=billing_events.SUBSCRIPTION_CANCEL_SCHEDULED,
                user=actor,
                organization=subscription.organization,
                properties={
                    "product": subscription.product.code,
                    "edition": subscription.edition.code,
                    "ends_at": subscription.current_period_end.isoformat(),
                    "reason": reason,
                },
            )
            billing_email_admins(
                organization=subscription.organization,
                subject=f"{subscription.product.name} will end on {day(subscription.current_period_end)}",
                body=(
                    f"{actor.email} cancelled {subscription.product.name}. It stays available until "
                    f"{day(subscription.current_period_end)}, the end of the period already paid, "
                    f"and will not renew. To keep it after all: {settings.SITE_URL}/billing/"
                ),
            )
            return subscription
        _cancel_now(subscription, when=timezone.now(), scheduled=False)
        return subscription


def subscription_keep(*, subscription: Subscription, actor: User) -> Subscription:
    """Withdraw a cancellation that waits for the period end: the subscription renews again."""
    _require_admin(subscription.organization, actor)
    with transaction.atomic():
        organization_lock(subscription.organization)
        subscription = Subscription.objects.select_for_update(of=("self",)).select_related("product").get(pk=subscription.pk)
        if not subscription.cancel_at_period_end:
            return subscription
        subscription.cancel_at_period_end = False
        subscription.cancellation_reason = ""
        subscription.save(update_fields=["cancel_at_period_end", "cancellation_reason", "updated_at"])
        event_record(
            name=billing_events.SUBSCRIPTION_CANCEL_WITHDRAWN,
            user=actor,
            organization=subscription.organization,
            properties={"product": subscription.product.code},
        )
        return subscription


def subscription_pay_now(*, subscription: Subscription, actor: User) -> Payment:
    """Pay a past-due or suspended subscription's open renewal invoice now, with the card
    on file; success reactivates it at once."""
    invoice = (
        Invoice.objects.filter(subscription=subscription, status=Invoice.Status.OPEN, kind=Invoice.Kind.RENEWAL)
        .order_by("-period_start")
        .first()
    )
    if invoice is None:
        _require_admin(subscription.organization, actor)
        raise CheckoutInvalid("There is nothing to pay.")
    return invoice_pay_now(invoice=invoice, actor=actor)


def invoice_pay_now(*, invoice: Invoice, actor: User) -> Payment:
    """Charge an open card invoice to the card on file now: after a decline, with the card
    the admin just entered. The invoice is the one whose price was shown; paying it applies
    its change as if the first attempt had succeeded.

    Invariant: at most one payment per invoice is in flight or succeeded (a database
    constraint), so a double click returns the payment already under way.
    """
    _require_admin(invoice.organization, actor)
    with transaction.atomic():
        organization = organization_lock(invoice.organization)
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status != Invoice.Status.OPEN:
            raise CheckoutInvalid(f"Invoice {invoice.number} is {invoice.get_status_display().lower()}; there is nothing to pay.")
        if invoice.collection_method != BillingAccount.Collection.CARD:
            raise CheckoutInvalid(f"Invoice {invoice.number} is paid by bank transfer against its purchase order.")
        if invoice.kind in (Invoice.Kind.UPGRADE, Invoice.Kind.SEATS) and invoice.period_end <= timezone.now():
            # Priced for the rest of a period that is over: paying it now would give the change
            # for the next period at this one's price.
            raise CheckoutInvalid(f"Invoice {invoice.number} was for a period that is over; make the change again.")
        live = invoice.payments.exclude(status=Payment.Status.FAILED).first()
        if live is not None:
            return live
        account = billing_account_of(organization)
        if not account.has_card:
            raise NoCardOnFile("Add a card first.")
        return _payment_start(invoice=invoice, account=account, actor=actor)


def organizations_over_sales_threshold(*, minimum_minor: int, since: datetime) -> list[tuple[Organization, int]]:
    """Organizations whose paid invoices since `since` add up to `minimum_minor` or more."""
    from django.db.models import Sum

    totals = (
        Invoice.objects.filter(status=Invoice.Status.PAID, paid_at__gte=since)
        .values("organization")
        .annotate(total=Sum("total_minor"))
        .filter(total__gte=minimum_minor)
        .order_by("-total")
    )
    organizations = Organization.objects.in_bulk([row["organization"] for row in totals])
    return [(organizations[row["organization"]], row["total"]) for row in totals]



def payment_terms_request(*, organization: Organization, actor: User, po_number: str, billing_email: str) -> BillingAccount:
    """An admin asks to pay by invoice with a purchase order. The request is recorded on the
    billing account (pending until staff switch the collection method in the admin, or clear
    it to decline) and staff are told, once: a second request while one is pending, or once
    invoices are accepted, is refused with what was asked and when."""
    from django.core.exceptions import ValidationError as DjangoValidationError
    from django.core.mail import EmailMessage
    from django.core.validators import validate_email

    from accounts.mail import mail_queue

    _require_admin(organization, actor)
    po_number = " ".join(po_number.split())[:64]
    billing_email = billing_email.strip().lower()
    if not po_number:
        raise CheckoutInvalid("Enter the purchase order number your invoices should carry.")
    if billing_email:
        try:
            validate_email(billing_email)
        except DjangoValidationError:
            raise CheckoutInvalid(f"{billing_email!r} is not a valid email address.") from None
    with transaction.atomic():
        organization_lock(organization)
        account = billing_account_of(organization)
        if account.collection_method == BillingAccount.Collection.INVOICE:
            raise CheckoutInvalid(
                f"{organization.name} already pays by invoice (PO {account.po_number or '-'}); nothing to ask."
            )
        if account.invoice_terms_pending:
            raise CheckoutInvalid(
                f"Your request to pay by invoice (PO {account.po_number}) was sent on "
                f"{day(account.invoice_terms_requested_at)} and is pending; we will answer by email. "
                "There is no need to send it again."
            )
        account.po_number = po_number
        account.invoice_terms_requested_at = timezone.now()
        if billing_email:
            account.billing_email = billing_email
        account.save(update_fields=["po_number", "billing_email", "invoice_terms_requested_at", "updated_at"])
    staff = sorted(User.objects.filter(is_staff=True, is_active=True).values_list("email", flat=True))
    if staff:
        mail_queue(
            EmailMessage(
                subject=f"[{settings.SITE_NAME}] {organization.name} asks to pay by invoice",
                body=(
                    f"{actor.email} asks to pay by invoice with PO {po_number}. To accept, set the billing "
                    f"account's collection method to 'invoice' in the admin: {settings.SITE_URL}/admin/billing/billingaccount/"
                ),
                to=staff,
            )
        )
    return account
