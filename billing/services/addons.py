"""Add-ons: pricing one for the rest of the base subscription's period, buying it (by card off
session, or on purchase-order terms, granted at once), trying it free once, removing it at the
period end and keeping it after all.

Per-seat and flat add-ons are subscriptions co-termed with their base (AddOnSubscription): bought
only on a paid base, for the prorated rest of its current period, then billed on the base's
renewal invoice. A one-off add-on (training) is bought whole on any entitled base. What an
add-on grants is applied when its invoice is paid (invoices.invoice_mark_paid -> grants).
Locks: organization, then the base subscription, then the add-on rows (the billing order).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import Organization, User
from accounts.selectors import admin_membership_require
from accounts.services import organization_lock
from catalog.models import AddOn
from common.money import money
from experiments import events
from experiments.services import event_record

from .. import events as billing_events
from ..exceptions import CheckoutInvalid, NoCardOnFile
from ..formats import day, seats_text, span, time_left
from ..models import AddOnSubscription, BillingAccount, Invoice, Payment, Subscription
from ..pricing import (
    PRICE_CHANGED,
    addon_quantity,
    addon_unit_price,
    discount_minor,
    period_seconds,
    prorate,
    quote_token_make,
    quote_token_read,
)
from ..selectors import addon_refusal, addon_trial_refusal
from .billing_account import (
    billing_email_admins,
    discount_bp_require,
    payer_collection,
    payer_require,
    payer_take_over_withdraw,
)
from .grants import REMOVED_BY_ADMIN, addon_grants_changed_send, addon_invoice_apply
from .invoices import discount_lines, invoice_issue
from .payments import payment_start


@dataclass(frozen=True)
class AddOnQuote:
    """What buying an add-on costs now, shown before the admin confirms.

    Per seat or flat: unit x quantity for the base's interval, prorated for the rest of the
    base's current period (seconds left / seconds in the period, rounded half up), exactly as
    seats are; then `renewal_amount_minor` each period on the base's renewal invoice. One-off:
    the whole price once (`renewal_amount_minor` None), its period the credits' validity.
    """

    addon: AddOn
    subscription: Subscription
    quantity: int
    unit_amount_minor: int
    amount_minor: int
    currency: str
    period_start: datetime
    period_end: datetime
    seconds_left: int
    renewal_amount_minor: int | None
    interval: str
    collection: str
    token: str
    # Units billed from the renewal (a per-seat add-on follows a seat removal waiting for it).
    renewal_quantity: int = 0
    # A partner's discount (basis points) and what it takes off `amount_minor` (total_minor).
    discount_bp: int = 0
    discount_minor: int = 0

    @property
    def total_minor(self) -> int:
        """What is charged now: the add-on's line less the partner's discount."""
        return self.amount_minor - self.discount_minor

    @property
    def time_left(self) -> str:
        """What is left of the period in days (hours on its last day): "31 days"."""
        return time_left(self.seconds_left)

    @property
    def is_one_off(self) -> bool:
        return self.renewal_amount_minor is None

    @property
    def description(self) -> str:
        """The invoice line: "GitHub integration: 5 seats × US$1.50/month, prorated for 6 Dec
        2026 – 6 Jan 2027"."""
        if self.is_one_off:
            return f"{self.addon.name} ({self.addon.training_credits} training credits, valid until {day(self.period_end)})"
        per = "year" if self.interval == Subscription.Interval.YEAR else "month"
        unit = money(self.unit_amount_minor, self.currency)
        what = f"{seats_text(self.quantity)} × {unit}/{per}" if self.addon.pricing == AddOn.Pricing.PER_SEAT else f"{unit}/{per}"
        return f"{self.addon.name}: {what}, prorated for {span(self.period_start, self.period_end)}"


def addon_quote(
    *, subscription: Subscription, addon: AddOn, at: datetime | None = None, discount_bp: int | None = None
) -> AddOnQuote:
    """Price `addon` on `subscription` (its base) as at `at` (now by default). CheckoutInvalid
    says why it cannot be bought (selectors.addon_refusal): the edition is too small or already
    includes it, the base is not paid, the organization already has it, the period is over.
    `discount_bp`: a partner's discount (by default the subscription's own rate)."""
    refusal = addon_refusal(subscription=subscription, addon=addon)
    if refusal:
        raise CheckoutInvalid(refusal)
    now = at or timezone.now()
    if discount_bp is None:
        discount_bp = subscription.billed_to_discount_bp if subscription.billed_to_id else 0
    discount_bp_require(discount_bp)
    payer_id = subscription.billed_to_id or subscription.organization_id
    account = BillingAccount.objects.filter(organization_id=payer_id).first()
    collection = (
        BillingAccount.Collection.INVOICE
        if subscription.purchase_order_number
        or (account is not None and account.collection_method == BillingAccount.Collection.INVOICE)
        else BillingAccount.Collection.CARD
    )
    if addon.pricing == AddOn.Pricing.ONE_OFF:
        amount = addon_unit_price(addon, subscription.interval)
        discount = discount_minor(amount, discount_bp)
        period_end = now + timedelta(days=addon.training_valid_days)
        return AddOnQuote(
            addon=addon,
            subscription=subscription,
            quantity=1,
            unit_amount_minor=amount,
            amount_minor=amount,
            currency=addon.currency,
            period_start=now,
            period_end=period_end,
            seconds_left=int((period_end - now).total_seconds()),
            renewal_amount_minor=None,
            interval=subscription.interval,
            collection=str(collection),
            token=quote_token_make(kind="addon", subscription=subscription, detail=addon.code, at=now, total_minor=amount - discount),
            discount_bp=discount_bp,
            discount_minor=discount,
        )
    seconds_left = int((subscription.current_period_end - now).total_seconds())
    if seconds_left <= 0:
        raise CheckoutInvalid(f"The current period has ended; add {addon.name} once {subscription.product.name} has renewed.")
    unit = addon_unit_price(addon, subscription.interval)
    quantity = addon_quantity(addon, seat_limit=subscription.seat_limit)
    amount = prorate(
        full_amount_minor=unit * quantity,
        seconds_left=seconds_left,
        seconds_in_period=period_seconds(subscription.current_period_start, subscription.interval),
    )
    renewal_quantity = addon_quantity(addon, seat_limit=subscription.pending_seat_limit or subscription.seat_limit)
    discount = discount_minor(amount, discount_bp)
    return AddOnQuote(
        discount_bp=discount_bp,
        discount_minor=discount,
        addon=addon,
        subscription=subscription,
        quantity=quantity,
        unit_amount_minor=unit,
        amount_minor=amount,
        currency=addon.currency,
        period_start=now,
        period_end=subscription.current_period_end,
        seconds_left=seconds_left,
        renewal_amount_minor=unit * renewal_quantity,
        renewal_quantity=renewal_quantity,
        interval=subscription.interval,
        collection=str(collection),
        token=quote_token_make(kind="addon", subscription=subscription, detail=addon.code, at=now, total_minor=amount - discount),
    )


def _subscription_lock(subscription: Subscription) -> Subscription:
    return (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("organization", "product", "edition", "pending_edition", "billed_to")
        .get(pk=subscription.pk)
    )


def addon_buy(
    *,
    subscription: Subscription,
    addon: AddOn,
    actor: User,
    request_key: str,
    quote_token: str | None = None,
    on_behalf: Organization | None = None,
    discount_bp: int | None = None,
) -> Invoice:
    """Buy `addon` on `subscription` (its base): an add-on invoice of one line naming it.

    Card customers: a payment of it is started (charged off-session by the worker after
    commit) and the add-on is granted when it succeeds; a decline grants nothing. Purchase-order
    customers: the invoice carries their PO number and net-terms due date, and the add-on is
    granted at once (overdue past grace, lifecycle suspends only the add-on).

    With `quote_token` (the price the admin saw, addon_quote) the charge is exactly that price,
    priced when it was shown; a price older than QUOTE_MAX_AGE or one that changed since is
    refused and nothing is written.

    Invariant: one request key, one invoice and one charge (a double click returns the first
    invoice); a second purchase of the same add-on while one is being charged returns that one.
    Locks: organization, then subscription.

    The payer pays: `on_behalf`, the partner the base is billed to (the actor one of its
    admins), at `discount_bp` (by default the subscription's rate), by its card or on its
    purchase-order terms; the invoice is billed to it. A base billed to a partner refuses its
    own organization's admins (ManagedByPayer).
    """
    organization = subscription.organization
    payer_require(subscription=subscription, actor=actor, on_behalf=on_behalf)
    if not request_key or len(request_key) > 64:
        raise CheckoutInvalid("The request is missing its key; reload the page and try again.")
    with transaction.atomic():
        organization = organization_lock(organization)
        existing = Invoice.objects.filter(organization=organization, request_key=request_key).first()
        if existing is not None:
            if existing.kind != Invoice.Kind.ADDON or existing.addon_id != addon.pk:
                raise CheckoutInvalid("This request was already used for something else; reload the page and try again.")
            return existing
        subscription = _subscription_lock(subscription)
        subscription.organization = organization
        payer_require(subscription=subscription, actor=actor, on_behalf=on_behalf)
        if subscription.billed_to_id:
            payer_take_over_withdraw(subscription=subscription)  # it priced the subscription as it was
        # One purchase of an add-on at a time: another being charged is this one, asked again.
        unpaid = list(
            Invoice.objects.select_for_update()
            .filter(subscription=subscription, kind=Invoice.Kind.ADDON, addon=addon, status=Invoice.Status.OPEN)
            .exclude(collection_method=BillingAccount.Collection.INVOICE)
        )
        for invoice in unpaid:
            if invoice.payments.filter(status__in=Payment.LIVE).exists():
                return invoice
        collection = payer_collection(subscription, kind=Invoice.Kind.ADDON)
        account = collection.account
        purchase_order = collection.purchase_order
        if not purchase_order and not account.has_card:
            raise NoCardOnFile(
                f"Add a card first ({settings.SITE_URL}{reverse('card_update')}), then buy {addon.name}."
            )
        at, shown_total = None, None
        if quote_token is not None:
            at, shown_total = quote_token_read(token=quote_token, kind="addon", subscription=subscription, detail=addon.code)
        quote = addon_quote(subscription=subscription, addon=addon, at=at, discount_bp=discount_bp)
        if shown_total is not None and quote.total_minor != shown_total:
            raise CheckoutInvalid(PRICE_CHANGED)
        if quote.amount_minor == 0:
            raise CheckoutInvalid(f"The period ends now; add {addon.name} once {subscription.product.name} has renewed.")
        for invoice in unpaid:
            invoice.status = Invoice.Status.VOID  # declined earlier, replaced by this purchase
            invoice.save(update_fields=["status"])
        invoice = invoice_issue(
            organization=organization,
            subscription=subscription,
            kind=Invoice.Kind.ADDON,
            edition=subscription.edition,
            seats=subscription.seat_limit,
            interval=subscription.interval or Subscription.Interval.MONTH,
            unit_amount_minor=quote.unit_amount_minor,
            quantity=quote.quantity,
            amount_minor=quote.amount_minor,
            period_start=quote.period_start,
            period_end=quote.period_end,
            description=quote.description,
            request_key=request_key,
            addon=addon,
            lines=discount_lines(quote.discount_minor, quote.discount_bp),
            bill_to=subscription.billed_to,
            discount_bp=quote.discount_bp,
        )
        if not purchase_order:
            payment_start(invoice=invoice, account=account, actor=actor)
            return invoice
        invoice.collection_method = BillingAccount.Collection.INVOICE
        invoice.po_number = collection.po_number
        invoice.due_at = timezone.now() + timedelta(days=collection.net_terms_days)
        invoice.save(update_fields=["collection_method", "po_number", "due_at"])
        # Net terms: granted now, paid by transfer within them.
        addon_invoice_apply(invoice=invoice, actor=actor)
        event_record(
            name=events.ADDON_BOUGHT,
            user=actor,
            organization=organization,
            properties={
                "product": subscription.product.code,
                "addon": addon.code,
                "amount_minor": invoice.total_minor,
                "currency": invoice.currency,
                "collection": "invoice",
            },
        )
        billing_email_admins(
            organization=subscription.billed_to or organization,
            subject=f"Invoice {invoice.number} for {addon.name}" + (f" ({organization.name})" if subscription.billed_to_id else ""),
            body=(
                f"{addon.name} is added to {subscription.product.name}. Invoice {invoice.number} "
                f"(PO {invoice.po_number or '-'}) for {money(invoice.total_minor, invoice.currency)} is due on "
                f"{day(invoice.due_at)}. View it at {settings.SITE_URL}{reverse('invoice', args=[invoice.public_id])}"
            ),
        )
        return invoice


def addon_trial_start(
    *, subscription: Subscription, addon: AddOn, actor: User, on_behalf: Organization | None = None
) -> AddOnSubscription:
    """Try `addon` free on `subscription` for its trial_days: no card, nothing charged, ever;
    at the trial end it is removed (lifecycle) unless it was bought meanwhile.

    Invariant: one trial per organization and add-on (trial_started_at kept for good), on a
    trialing or paid base that meets its smallest edition; one live add-on per base (a database
    constraint). Locks: organization, then subscription. A base billed to a partner: the
    partner's admins start it (`on_behalf`), not the organization's (ManagedByPayer).
    """
    payer_require(subscription=subscription, actor=actor, on_behalf=on_behalf)
    with transaction.atomic():
        organization = organization_lock(subscription.organization)
        subscription = _subscription_lock(subscription)
        refusal = addon_trial_refusal(subscription=subscription, addon=addon)
        if refusal:
            raise CheckoutInvalid(refusal)
        now = timezone.now()
        try:
            with transaction.atomic():
                trial = AddOnSubscription.objects.create(
                    organization=organization,
                    subscription=subscription,
                    addon=addon,
                    status=AddOnSubscription.Status.TRIALING,
                    trial_started_at=now,
                    trial_ends_at=now + timedelta(days=addon.trial_days),
                    started_by=actor,
                )
        except IntegrityError:
            raise CheckoutInvalid(f"{organization.name} already has {addon.name} on {subscription.product.name}.") from None
        event_record(
            name=billing_events.ADDON_TRIAL_STARTED,
            user=actor,
            organization=organization,
            properties={"product": subscription.product.code, "addon": addon.code, "trial_days": addon.trial_days},
        )
        addon_grants_changed_send(organization_id=organization.pk, product_id=subscription.product_id)
        return trial


def _addon_lock(addon_subscription: AddOnSubscription) -> tuple[Subscription, AddOnSubscription]:
    organization_lock(addon_subscription.organization)
    subscription = _subscription_lock(addon_subscription.subscription)
    locked = AddOnSubscription.objects.select_for_update(of=("self",)).select_related("addon", "addon__min_edition").get(
        pk=addon_subscription.pk
    )
    return subscription, locked


def addon_remove(*, addon_subscription: AddOnSubscription, actor: User) -> AddOnSubscription:
    """The admin removes an add-on. A paid one stays until the base's period end (paid for
    until then; cancel_at_period_end, and the renewal bills it no more); a trialing one (or one
    on a base with no period running) ends at once. Removing twice changes nothing."""
    admin_membership_require(organization=addon_subscription.organization, user=actor, doing="manage billing")
    with transaction.atomic():
        subscription, row = _addon_lock(addon_subscription)
        if row.status == AddOnSubscription.Status.CANCELED or row.cancel_at_period_end:
            return row
        now = timezone.now()
        paid_period = (
            row.status != AddOnSubscription.Status.TRIALING
            and subscription.status == Subscription.Status.ACTIVE
            and subscription.current_period_end is not None
            and subscription.current_period_end > now
        )
        if paid_period:
            row.cancel_at_period_end = True
            row.cancel_reason = REMOVED_BY_ADMIN
            row.save(update_fields=["cancel_at_period_end", "cancel_reason", "updated_at"])
            billing_email_admins(
                organization=subscription.organization,
                subject=f"{row.addon.name} will end on {day(subscription.current_period_end)}",
                body=(
                    f"{actor.email} removed {row.addon.name} from {subscription.product.name}. It stays until "
                    f"{day(subscription.current_period_end)}, the end of the period already paid, and will not renew. "
                    f"To keep it after all: {settings.SITE_URL}{reverse('billing')}"
                ),
            )
        else:
            row.status = AddOnSubscription.Status.CANCELED
            row.canceled_at = now
            row.trial_ends_at = None
            row.cancel_reason = REMOVED_BY_ADMIN
            row.save(update_fields=["status", "canceled_at", "trial_ends_at", "cancel_reason", "updated_at"])
            addon_grants_changed_send(organization_id=row.organization_id, product_id=subscription.product_id)
        event_record(
            name=billing_events.ADDON_ENDED,
            user=actor,
            organization=subscription.organization,
            properties={
                "product": subscription.product.code,
                "addon": row.addon.code,
                "scheduled": paid_period,
                "reason": "removed",
            },
        )
        return row


def addon_keep(*, addon_subscription: AddOnSubscription, actor: User) -> AddOnSubscription:
    """Withdraw a removal that waits for the period end: the add-on renews with its base again.
    Refused while the base is moving to an edition that does not include it (keep the edition
    first: withdrawing that downgrade keeps its add-ons too)."""
    admin_membership_require(organization=addon_subscription.organization, user=actor, doing="manage billing")
    with transaction.atomic():
        subscription, row = _addon_lock(addon_subscription)
        if row.status == AddOnSubscription.Status.CANCELED:
            raise CheckoutInvalid(f"{row.addon.name} has ended; buy it again from the billing page.")
        if not row.cancel_at_period_end:
            return row
        pending = subscription.pending_edition
        if pending is not None and row.addon.min_edition_id is not None and pending.rank < row.addon.min_edition.rank:
            raise CheckoutInvalid(
                f"{subscription.product.name} moves to {pending.name} on {day(subscription.current_period_end)}, which "
                f"does not include {row.addon.name}: keep {subscription.edition.name} first."
            )
        if subscription.cancel_at_period_end:
            raise CheckoutInvalid(
                f"{subscription.product.name} ends on {day(subscription.current_period_end)}: keep it first."
            )
        row.cancel_at_period_end = False
        row.cancel_reason = ""
        row.save(update_fields=["cancel_at_period_end", "cancel_reason", "updated_at"])
        return row
