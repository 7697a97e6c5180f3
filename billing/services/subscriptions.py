"""Every write to a subscription's own life that an admin or a signup starts: starting a trial,
changing the edition, cancelling and keeping it, and paying what it owes now."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.exceptions import SeatLimitReached
from accounts.models import Organization, SignupIntent, User
from accounts.selectors import admin_membership_require
from accounts.services import organization_lock, seats_in_use
from catalog.exceptions import UnknownEdition
from catalog.models import AddOn, Edition
from catalog.selectors import edition_default_for_trial, edition_get, products_for_sale
from common.money import money
from experiments import events
from experiments.services import event_record
from provisioning.services import environment_request

from .. import events as billing_events
from ..exceptions import (
    CheckoutInvalid,
    ManagedByPayer,
    NoCardOnFile,
    SubscriptionExists,
    TrialNotOffered,
    TrialSpent,
)
from ..formats import day, seats_text, span, time_left
from ..models import (
    AddOnSubscription,
    BillingAccount,
    Invoice,
    Payment,
    Subscription,
)
from ..pricing import (
    PRICE_CHANGED,
    discount_minor,
    period_seconds,
    prorate,
    quote_token_make,
    quote_token_read,
    unit_price,
)
from .billing_account import (
    billing_email_admins,
    discount_bp_require,
    payer_collection,
    payer_require,
    payer_take_over_withdraw,
)
from .grants import addons_end, addons_follow_edition
from .invoices import (
    CreditLine,
    discount_lines,
    invoice_issue,
    invoice_mark_paid,
    owed_for_time_used,
)
from .payments import invoice_collect, invoice_pay_now


def subscription_start_trial(
    *,
    organization: Organization,
    edition: Edition,
    actor: User | None,
    on_behalf: Organization | None = None,
    discount_bp: int = 0,
) -> Subscription:
    """Start a product for an organization: a trial of a paid edition, or the Free edition.

    Invariant: one live subscription per organization and product (a database constraint),
    never started for an organization that already has more users than the edition allows;
    its environment is requested in the same transaction.

    `on_behalf`: a partner starts it for its customer (the actor is the partner's admin; no
    money moves): the subscription is billed to the partner, at `discount_bp`, from the start.
    """
    discount_bp_require(discount_bp)
    if on_behalf is not None:
        if actor is None:
            raise CheckoutInvalid("A partner's trial needs the partner's admin who starts it.")
        admin_membership_require(organization=on_behalf, user=actor, doing="start a trial for a customer")
        if on_behalf.pk == organization.pk:
            raise CheckoutInvalid(f"{on_behalf.name} cannot start a trial on its own behalf: use its billing page.")
    with transaction.atomic():
        # The organization row is the seat lock (accounts.services): counting seats under it
        # keeps a concurrent invite or join from slipping past this check.
        organization = organization_lock(organization)
        if Subscription.objects.filter(
            organization=organization, product=edition.product, status__in=Subscription.LIVE_STATUSES
        ).exists():
            raise SubscriptionExists(f"{organization.name} already has {edition.product.name}.")
        if not edition.is_free and edition.trial_days == 0:
            raise TrialNotOffered(
                f"{edition.product.name} {edition.name} has no free trial; choose an edition that has one."
            )
        in_use = seats_in_use(organization=organization)
        if in_use > edition.seat_limit:
            raise SeatLimitReached(
                f"{edition.product.name} {edition.name} allows {edition.seat_limit} users and "
                f"{organization.name} has {in_use} (members and pending invites). Choose a bigger "
                "edition, or free seats first.",
                limit=edition.seat_limit,
                product=edition.product.code,
            )
        now = timezone.now()
        # One trial per organization and product: a product whose trial was used (and which was
        # canceled since) comes back suspended (its checkout open, nothing usable until paid)
        # instead of a second trial. A Free edition canceled without a trial leaves it unused.
        trial_used = Subscription.objects.filter(
            organization=organization, product=edition.product, status=Subscription.Status.CANCELED,
            trial_started_at__isnull=False,
        ).exists()
        trialing = edition.trial_days > 0 and not edition.is_free and not trial_used
        if trialing:
            status = Subscription.Status.TRIALING
        elif edition.is_free:
            status = Subscription.Status.ACTIVE
        else:
            status = Subscription.Status.SUSPENDED
        try:
            with transaction.atomic():
                subscription = Subscription.objects.create(
                    organization=organization,
                    product=edition.product,
                    edition=edition,
                    status=status,
                    seat_limit=edition.seat_limit,
                    trial_ends_at=now + timedelta(days=edition.trial_days) if trialing else None,
                    trial_started_at=now if trialing else None,
                    suspended_at=now if status == Subscription.Status.SUSPENDED else None,
                    started_by=actor,
                    billed_to=on_behalf,
                    billed_to_discount_bp=discount_bp if on_behalf is not None else 0,
                )
        except IntegrityError:
            raise SubscriptionExists(f"{organization.name} already has {edition.product.name}.") from None
        event_record(
            name=events.TRIAL_STARTED if trialing else events.SUBSCRIPTION_STARTED,
            user=actor,
            organization=organization,
            properties={
                "product": edition.product.code,
                "edition": edition.code,
                "trial_days": edition.trial_days if trialing else 0,
                "seat_limit": edition.seat_limit,
                "restarted": trial_used,
                "by_partner": on_behalf is not None,
            },
        )
        environment_request(
            organization=organization,
            product=edition.product,
            requested_by=actor,
            plan={"edition": edition.code, "seat_limit": edition.seat_limit},
        )
        return subscription


def product_try(
    *,
    organization: Organization,
    actor: User,
    product_code: str,
    buy: bool = False,
    on_behalf: Organization | None = None,
    discount_bp: int = 0,
) -> Subscription:
    """"Try another product" with one click (the billing page, /app/, the in-product kit): a
    trial of the product's edition to try, inside the same organization.

    Invariant: one trial per organization and product. A product whose trial was used (and
    nothing of it is live) is not tried again: TrialSpent says what buying costs and nothing
    is created; with `buy`, it starts suspended, its checkout to be paid (subscription_start_trial).
    `on_behalf`: a partner's admin starts it for the partner's customer (subscription_start_trial).
    """
    from ..selectors import edition_to_try, trial_spent

    edition = edition_to_try(product_code=product_code)
    if edition is None:
        raise TrialNotOffered("That product has no trial.")
    if not buy and trial_spent(organization=organization, product=edition.product):
        raise TrialSpent(
            f"{organization.name} has had its {edition.product.name} trial already. Buying {edition.product.name} "
            f"{edition.name} costs {money(edition.monthly_price_minor, edition.currency)} per seat a month: "
            "use its Buy button; nothing is charged before you confirm the price."
        )
    return subscription_start_trial(
        organization=organization, edition=edition, actor=actor, on_behalf=on_behalf, discount_bp=discount_bp
    )


def _signup_edition(intent: SignupIntent | None) -> Edition | None:
    if intent is not None and intent.product_code:
        try:
            if intent.edition_code:
                edition = edition_get(product_code=intent.product_code, edition_code=intent.edition_code)
                if edition.is_free or edition.trial_days:
                    return edition
            return edition_default_for_trial(product_code=intent.product_code)
        except UnknownEdition:
            pass  # The catalog changed since the landing link; fall back to the default.
    first = products_for_sale().first()
    if first is None:
        return None
    try:
        return edition_default_for_trial(product_code=first.code)
    except UnknownEdition:
        return None


def subscription_start_signup_trial(*, organization: Organization, user: User, intent: SignupIntent | None) -> Subscription | None:
    """Start the trial the signup's landing link asked for (or the first product's default)."""
    edition = _signup_edition(intent)
    if edition is None:
        return None
    return subscription_start_trial(organization=organization, edition=edition, actor=user)


# Changing the edition ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EditionChangeQuote:
    """What moving to another edition costs, shown before the admin confirms.

    An upgrade applies now: the new edition for the rest of the period, less a credit for the
    unused rest of the old one, each prorated and rounded on its own (docs/billing.md). A
    downgrade waits for the period end and charges nothing now; the add-ons the smaller
    edition does not include (`addons_removed`) are removed at that period end too.
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
    addons_removed: list[AddOn] = field(default_factory=list)
    # A partner's discount (basis points) and what it takes off the upgrade's net charge.
    discount_bp: int = 0
    discount_minor: int = 0

    @property
    def is_upgrade(self) -> bool:
        return self.edition.rank > self.old_edition.rank

    @property
    def total_minor(self) -> int:
        return self.charge_minor - self.credit_minor - self.discount_minor

    @property
    def renewal_minor(self) -> int:
        """What each period costs from the next renewal on, on the new edition (less the
        partner's discount, if any)."""
        return self.new_unit_minor * self.seats - discount_minor(self.new_unit_minor * self.seats, self.discount_bp)

    @property
    def time_left(self) -> str:
        return time_left(self.seconds_left)


def edition_change_quote(
    *, subscription: Subscription, edition: Edition, at: datetime | None = None, discount_bp: int | None = None
) -> EditionChangeQuote:
    """Price moving `subscription` to `edition`, as at `at` (now by default). CheckoutInvalid
    says why it cannot be done: another product's edition, not paid for, the same edition, a
    smaller edition the organization's users do not fit in, a period that has ended.
    `discount_bp`: a partner's discount off the net charge (by default the subscription's own)."""
    if discount_bp is not None:
        discount_bp_require(discount_bp)
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
    seconds_in_period = period_seconds(subscription.current_period_start, subscription.interval)
    seats = subscription.seat_limit
    new_unit = unit_price(edition, subscription.interval)
    old_unit = unit_price(subscription.edition, subscription.interval)
    upgrade = edition.rank > subscription.edition.rank
    charge = prorate(full_amount_minor=new_unit * seats, seconds_left=seconds_left, seconds_in_period=seconds_in_period) if upgrade else 0
    credit = prorate(full_amount_minor=old_unit * seats, seconds_left=seconds_left, seconds_in_period=seconds_in_period) if upgrade else 0
    if discount_bp is None:
        discount_bp = subscription.billed_to_discount_bp if subscription.billed_to_id else 0
    discount = discount_minor(charge - credit, discount_bp)
    token = quote_token_make(
        kind="edition", subscription=subscription, detail=edition.code, at=at, total_minor=charge - credit - discount
    )
    addons_removed = [
        row.addon
        for row in AddOnSubscription.objects.select_related("addon__min_edition")
        .filter(subscription=subscription, status__in=AddOnSubscription.LIVE_STATUSES)
        .order_by("addon__position", "pk")
        if row.addon.min_edition_id is not None and edition.rank < row.addon.min_edition.rank
    ]
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
        addons_removed=addons_removed,
        discount_bp=discount_bp,
        discount_minor=discount,
    )


def subscription_change_edition(
    *,
    subscription: Subscription,
    actor: User,
    edition: Edition,
    request_key: str,
    quote_token: str | None = None,
    on_behalf: Organization | None = None,
    discount_bp: int | None = None,
) -> Payment | Subscription:
    """Move a paid subscription to another edition of its product.

    A bigger edition applies at once for the prorated difference (a payment; the edition
    changes when it succeeds). A smaller one waits for the period end, and is refused while
    the organization has more users than it allows; the add-ons it does not include are
    scheduled for removal at the same period end (edition_change_quote.addons_removed says
    which), and withdrawing the downgrade keeps them again.

    With `quote_token` (what the admin saw, edition_change_quote), an upgrade is charged exactly
    the total shown, priced at the moment it was shown; it is refused (CheckoutInvalid, nothing
    written) when that moment is over QUOTE_MAX_AGE ago or the price has changed since
    (the seats, the edition or the period moved). One request key, one invoice and one charge.

    The payer pays (payer_collection): `on_behalf`, the partner the subscription is billed to
    (the actor one of its admins), at `discount_bp` (by default the subscription's rate), by its
    card or on its purchase-order terms (the upgrade applies at once; the subscription is
    returned). A subscription billed to a partner refuses its own admins (ManagedByPayer).
    """
    payer_require(subscription=subscription, actor=actor, on_behalf=on_behalf)
    with transaction.atomic():
        organization = organization_lock(subscription.organization)
        subscription = Subscription.objects.select_for_update(of=("self",)).select_related("product", "edition", "billed_to").get(
            pk=subscription.pk
        )
        payer_require(subscription=subscription, actor=actor, on_behalf=on_behalf)
        if subscription.billed_to_id:
            payer_take_over_withdraw(subscription=subscription)  # it priced the subscription as it was
        if edition.product_id != subscription.product_id or not edition.is_active:
            raise CheckoutInvalid(f"{edition} is not an edition of {subscription.product.name}.")
        if subscription.status != Subscription.Status.ACTIVE or not subscription.interval:
            raise CheckoutInvalid(f"{subscription.product.name} is not paid for: buy it first.")
        if edition.pk == subscription.edition_id:
            if subscription.pending_edition_id:
                subscription.pending_edition = None  # staying after all: cancel the waiting change
                subscription.save(update_fields=["pending_edition", "updated_at"])
                addons_follow_edition(subscription=subscription)
                return subscription
            raise CheckoutInvalid(f"{subscription.product.name} is already on {edition.name}.")
        if edition.rank < subscription.edition.rank:
            edition_change_quote(subscription=subscription, edition=edition)  # refuses what the users do not fit
            subscription.pending_edition = edition
            subscription.save(update_fields=["pending_edition", "updated_at"])
            addons_follow_edition(subscription=subscription)
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
            ).exclude(collection_method=BillingAccount.Collection.INVOICE)  # granted on terms already
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
        collection = payer_collection(subscription, kind=Invoice.Kind.UPGRADE)
        if not collection.purchase_order and not collection.account.has_card:
            raise NoCardOnFile("Add a card before upgrading.")
        at, shown_total = None, None
        if quote_token is not None:
            at, shown_total = quote_token_read(token=quote_token, kind="edition", subscription=subscription, detail=edition.code)
        quote = edition_change_quote(subscription=subscription, edition=edition, at=at, discount_bp=discount_bp)
        if shown_total is not None and quote.total_minor != shown_total:
            raise CheckoutInvalid(PRICE_CHANGED)
        for unpaid in unpaid_upgrades:
            unpaid.status = Invoice.Status.VOID  # declined earlier, and replaced by this one
            unpaid.save(update_fields=["status"])
        span_text = span(quote.period_start, quote.period_end)
        interval = "year" if subscription.interval == Subscription.Interval.YEAR else "month"
        seats = quote.seats
        invoice = invoice_issue(
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
            lines=discount_lines(quote.discount_minor, quote.discount_bp),
            bill_to=subscription.billed_to,
            discount_bp=quote.discount_bp,
        )
        amount = invoice.total_minor
        subscription.pending_edition = None
        subscription.save(update_fields=["pending_edition", "updated_at"])
        addons_follow_edition(subscription=subscription)
        if amount == 0:
            invoice_mark_paid(invoice=invoice, payment=None)
            return subscription
        payment = invoice_collect(
            invoice=invoice, collection=collection, actor=actor, what=f"{subscription.product.name} moved to {edition.name}"
        )
        return payment if payment is not None else subscription


# Cancellation -----------------------------------------------------------------------------------


CANCELLATION_REASONS = {
    "too_expensive": "Too expensive",
    "missing_features": "Missing features we need",
    "switched": "Switched to another product",
    "not_using": "Not using it enough",
    "other": "Something else",
}


def subscription_cancel_now(subscription: Subscription, *, when: datetime, scheduled: bool) -> None:
    """End a subscription (its organization and row locked by the caller): it stops being
    entitled, its open invoices are voided (not a purchase-order renewal for a period that
    began: that is owed, and is still collected; nor a purchase-order add-on already granted),
    its add-ons end with it, and the product can be started again later."""
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
    addons_end(subscription=subscription, when=when, reason=f"{subscription.product.name} ended on {day(when)}.")
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
    admin_membership_require(organization=subscription.organization, user=actor, doing="manage billing")
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
            if subscription.billed_to_id:
                billing_email_admins(
                    organization=subscription.billed_to,
                    subject=f"{subscription.organization.name} cancelled {subscription.product.name}",
                    body=(
                        f"{subscription.organization.name} cancelled {subscription.product.name}, which you manage for them. "
                        f"It stays available until {day(subscription.current_period_end)}, the end of the term you paid for, "
                        "and will not renew: nothing more is invoiced to you for it."
                    ),
                )
            return subscription
        subscription_cancel_now(subscription, when=timezone.now(), scheduled=False)
        return subscription


def subscription_keep(*, subscription: Subscription, actor: User) -> Subscription:
    """Withdraw a cancellation that waits for the period end: the subscription renews again."""
    admin_membership_require(organization=subscription.organization, user=actor, doing="manage billing")
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


# Paying what is owed ----------------------------------------------------------------------------


def subscription_pay_now(*, subscription: Subscription, actor: User) -> Payment:
    """Pay a past-due or suspended subscription's open renewal invoice now, with the card
    on file; success reactivates it at once."""
    invoice = (
        Invoice.objects.filter(subscription=subscription, status=Invoice.Status.OPEN, kind=Invoice.Kind.RENEWAL)
        .order_by("-period_start")
        .first()
    )
    if invoice is None:
        admin_membership_require(organization=subscription.organization, user=actor, doing="manage billing")
        raise CheckoutInvalid("There is nothing to pay.")
    if invoice.bill_to_id and invoice.bill_to_id != subscription.organization_id:
        payer = invoice.bill_to
        if not payer.memberships.filter(user=actor).exists():
            admin_membership_require(organization=subscription.organization, user=actor, doing="manage billing")
            raise ManagedByPayer(f"{subscription.product.name} is managed by {payer.name}: they pay this invoice.")
    return invoice_pay_now(invoice=invoice, actor=actor)
