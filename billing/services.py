"""Every write to subscriptions, and the seat policy that accounts asks before adding a user."""

from __future__ import annotations

import calendar
import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.db.models import F, Q
from django.db.models.fields.json import KT
from django.utils import timezone

from accounts.exceptions import SeatLimitReached
from accounts.models import Organization, SignupIntent, User
from accounts.services import organization_lock, seats_in_use
from catalog.exceptions import UnknownEdition
from catalog.models import Edition
from catalog.selectors import edition_default_for_trial, edition_get, products_for_sale
from catalog.templatetags.catalog_tags import money
from common.exceptions import NotFound, PermissionDenied
from common.tasks import enqueue_on_commit
from experiments import events
from experiments.services import event_record
from provisioning.services import environment_request

from . import gateway, refunds
from .declines import reason_is_more_specific
from .entitlements import entitlements_invalidate
from .exceptions import (
    CardDeclined,
    CheckoutInvalid,
    NoCardOnFile,
    PaymentProcessorUnavailable,
    PaymentSetupInvalid,
    StripeObjectMissing,
    SubscriptionExists,
    TrialNotOffered,
    WebhookNotOurs,
    WebhookSignatureInvalid,
)
from .formats import day, seats_text, span
from .models import (
    BillingAccount,
    Invoice,
    InvoiceLine,
    InvoiceSequence,
    Payment,
    Subscription,
    WebhookEvent,
)

logger = logging.getLogger(__name__)


def seat_limit_enforce(organization: Organization, seats_in_use: int, seats_wanted: int) -> None:
    """The seat policy: every live subscription of the organization must have room.

    Called by accounts with the organization row locked, so the count cannot change under it.
    """
    if seats_wanted < 0:
        return
    subscriptions = (
        Subscription.objects.filter(organization=organization, status__in=Subscription.LIVE_STATUSES)
        .select_related("product", "edition")
        .order_by("seat_limit", "pk")
    )
    for subscription in subscriptions:
        if seats_in_use + seats_wanted > subscription.seat_limit:
            bigger = (
                Edition.objects.filter(
                    product=subscription.product, is_active=True, seat_limit__gt=subscription.seat_limit
                )
                .order_by("rank")
                .first()
            )
            situation = (
                f"{subscription.product.name} {subscription.edition.name} allows {subscription.seat_limit} users "
                f"and {organization.name} already has {seats_in_use} (members and pending invites)."
            )
            raise SeatLimitReached(
                f"{situation} {_seat_advice(bigger, to_admin=False)}",
                limit=subscription.seat_limit,
                product=subscription.product.code,
                to_admin=f"{situation} {_seat_advice(bigger, to_admin=True)}",
            )


def _seat_advice(bigger: Edition | None, *, to_admin: bool) -> str:
    """The way out of a full edition, said to everyone ("an admin can move to ...") or to the
    admin, who is the one who can take it ("move to ...")."""
    if bigger is None:
        return "An admin can free a seat by removing a member or withdrawing an invite."
    return (
        f"To get more seats, {'' if to_admin else 'an admin can '}move to {bigger.product.name} {bigger.name} "
        f"(up to {bigger.seat_limit} users), or free a seat by removing a member or withdrawing an invite."
    )


def subscription_start_trial(*, organization: Organization, edition: Edition, actor: User | None) -> Subscription:
    """Start a product for an organization: a trial of a paid edition, or the Free edition.

    Invariant: one live subscription per organization and product (a database constraint),
    never started for an organization that already has more users than the edition allows;
    its environment is requested in the same transaction.
    """
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
            },
        )
        environment_request(
            organization=organization,
            product=edition.product,
            requested_by=actor,
            plan={"edition": edition.code, "seat_limit": edition.seat_limit},
        )
        return subscription


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


# Paying by card --------------------------------------------------------------------------------


def add_months(moment: datetime, months: int) -> datetime:
    """The same day `months` later, clamped to the month's last day (31 Jan + 1 = 28/29 Feb)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


@dataclass(frozen=True)
class Quote:
    """The exact price of a checkout, shown before the admin confirms."""

    edition: Edition
    seats: int
    interval: str
    unit_amount_minor: int
    amount_minor: int
    currency: str
    period_start: datetime
    period_end: datetime

    @property
    def prorated(self) -> bool:
        """The first period is shortened to the organization's existing billing date."""
        return self.amount_minor != self.unit_amount_minor * self.seats


def checkout_quote(*, subscription: Subscription, edition: Edition, seats: int, interval: str) -> Quote:
    """Price `seats` seats of `edition` for one billing period starting now.

    Raises CheckoutInvalid naming what is wrong: another product's edition, a free edition,
    fewer seats than the organization uses, more than the edition allows, an unknown interval.
    """
    if edition.product_id != subscription.product_id or not edition.is_active:
        raise CheckoutInvalid(f"{edition} is not an edition of {subscription.product.name}.")
    if edition.is_free:
        raise CheckoutInvalid(f"{edition} is free: there is nothing to pay.")
    if interval not in Subscription.Interval.values:
        raise CheckoutInvalid(f"Billing must be monthly or annual, not {interval!r}.")
    in_use = seats_in_use(organization=subscription.organization)
    if seats < max(1, in_use):
        raise CheckoutInvalid(
            f"{subscription.organization.name} uses {in_use} seats (members and pending invites); "
            f"buy at least {max(1, in_use)}."
        )
    if seats > edition.seat_limit:
        raise CheckoutInvalid(f"{edition} allows at most {edition.seat_limit} users; choose a bigger edition.")
    unit = edition.monthly_price_minor if interval == Subscription.Interval.MONTH else edition.annual_price_minor
    start = timezone.now()
    full_end = period_end_after(start, interval)
    # Another product already paid on this interval sets the organization's billing date: the
    # first period runs to that date, prorated, so every product renews on one cycle.
    anchor = (
        Subscription.objects.filter(
            organization=subscription.organization,
            status=Subscription.Status.ACTIVE,
            interval=interval,
            current_period_end__gt=start,
            current_period_end__lte=full_end,
        )
        .exclude(pk=subscription.pk)
        .order_by("current_period_end")
        .first()
    )
    if anchor is None:
        return Quote(edition, seats, interval, unit, unit * seats, edition.currency, start, full_end)
    amount = prorate(
        full_amount_minor=unit * seats,
        seconds_left=int((anchor.current_period_end - start).total_seconds()),
        seconds_in_period=int((full_end - start).total_seconds()),
    )
    return Quote(edition, seats, interval, unit, amount, edition.currency, start, anchor.current_period_end)


def billing_account_of(organization: Organization) -> BillingAccount:
    account, _ = BillingAccount.objects.get_or_create(organization=organization)
    return account


def _customer_ensure(organization: Organization) -> BillingAccount:
    """The organization's Stripe customer, created once (the idempotency key is the
    organization's id, so a concurrent second request gets the same customer from Stripe)."""
    account = billing_account_of(organization)
    if account.stripe_customer_id:
        return account
    admin_email = (
        organization.memberships.filter(role="admin").order_by("created_at").values_list("user__email", flat=True).first()
        or ""
    )
    customer_id = gateway.customer_create(
        name=organization.name,
        email=admin_email,
        organization_id=str(organization.public_id),
        idempotency_key=f"flywheel-customer-{organization.public_id}",
    )
    BillingAccount.objects.filter(pk=account.pk, stripe_customer_id="").update(stripe_customer_id=customer_id)
    account.refresh_from_db()
    return account


def _require_admin(organization: Organization, actor: User) -> None:
    if not organization.memberships.filter(user=actor, role="admin").exists():
        raise PermissionDenied("Only an admin of this organization can manage billing.")


def card_setup_start(*, organization: Organization, actor: User) -> gateway.SetupIntent:
    """Start capturing a card: a SetupIntent for the organization's Stripe customer, whose
    client secret the card form hands to Stripe.js. Nothing is stored until it succeeds."""
    _require_admin(organization, actor)
    account = _customer_ensure(organization)
    return gateway.setup_intent_create(
        customer_id=account.stripe_customer_id, idempotency_key=f"flywheel-setup-{uuid.uuid4()}"
    )


def card_setup_complete(*, organization: Organization, actor: User, setup_intent_id: str) -> BillingAccount:
    """Store the card of a succeeded SetupIntent as the organization's card on file (the card
    page, once Stripe.js confirmed it).

    The SetupIntent is read back from Stripe and must belong to this organization's
    customer: a SetupIntent id of another organization is refused as not found. Stripe's
    setup_intent.succeeded webhook records the same card when the page never heard back
    (setup_intent_webhook_apply); whichever comes second changes nothing.
    """
    _require_admin(organization, actor)
    account = billing_account_of(organization)
    if not account.stripe_customer_id or not setup_intent_id.startswith("seti_"):
        raise NotFound("Card setup not found.")
    try:
        intent = gateway.setup_intent_retrieve(setup_intent_id)
    except StripeObjectMissing:
        raise NotFound("Card setup not found.") from None
    if intent.customer_id != account.stripe_customer_id:
        raise NotFound("Card setup not found.")
    if intent.status != "succeeded" or not intent.payment_method_id:
        raise CardDeclined("The card was not confirmed. Enter it again, or try another card.")
    return _card_on_file_record(account=account, intent=intent, recorded_by=f"admin {actor.pk}")


def setup_intent_webhook_apply(*, event_type: str, payload: dict) -> BillingAccount | None:
    """setup_intent.succeeded: the card a customer confirmed (3-D Secure included) is on file
    even when the browser closed before the card page heard back.

    The organization is the one whose Stripe customer the SetupIntent belongs to; the intent
    is read back from Stripe (the event's copy is not trusted). WebhookNotOurs when no
    organization has that customer, or Stripe has no such SetupIntent. Other event types are
    ignored.
    """
    if event_type != "setup_intent.succeeded":
        return None
    obj = (payload.get("data") or {}).get("object") or {}
    setup_intent_id = str(obj.get("id") or "")
    customer = obj.get("customer")
    customer_id = str((customer.get("id") if isinstance(customer, dict) else customer) or "")
    account = (
        BillingAccount.objects.filter(stripe_customer_id=customer_id).select_related("organization").first()
        if customer_id
        else None
    )
    if account is None:
        raise WebhookNotOurs(
            f"setup intent {setup_intent_id} of customer {customer_id or '(none)'}, which no Flywheel organization has"
        )
    try:
        intent = gateway.setup_intent_retrieve(setup_intent_id)
    except StripeObjectMissing:
        raise WebhookNotOurs(f"setup intent {setup_intent_id}, which Stripe does not have in this account") from None
    if intent.customer_id != account.stripe_customer_id:
        raise WebhookNotOurs(f"setup intent {setup_intent_id} belongs to customer {intent.customer_id or '(none)'}, not {customer_id}")
    if intent.status != "succeeded" or not intent.payment_method_id:
        return None  # Stripe says it has not succeeded (any more): nothing to put on file
    return _card_on_file_record(account=account, intent=intent, recorded_by="Stripe's setup_intent.succeeded")


def _card_on_file_record(*, account: BillingAccount, intent: gateway.SetupIntent, recorded_by: str) -> BillingAccount:
    """Attach the card of a succeeded SetupIntent to the customer and make it the card on file.

    Idempotent, whichever of the card page and the webhook comes second: the intent already
    on file changes nothing, and an intent Stripe created before the one on file never
    replaces it (its page or webhook arrived late). Stripe is called before the account is
    locked."""
    card = gateway.payment_method_attach(
        payment_method_id=intent.payment_method_id, customer_id=account.stripe_customer_id
    )
    created = datetime.fromtimestamp(intent.created, tz=UTC) if intent.created else None
    with transaction.atomic():
        account = BillingAccount.objects.select_for_update().get(pk=account.pk)
        if account.card_setup_intent_id == intent.id and account.payment_method_id == card.payment_method_id:
            return account
        if created is not None and account.card_setup_created_at is not None and created < account.card_setup_created_at:
            logger.info(
                "card of setup intent %s (by %s) not put on file for %s: setup intent %s is newer",
                intent.id, recorded_by, account.organization_id, account.card_setup_intent_id,
            )
            return account
        account.payment_method_id = card.payment_method_id
        account.card_brand = card.brand
        account.card_last4 = card.last4
        account.card_exp_month = card.exp_month or None
        account.card_exp_year = card.exp_year or None
        account.card_setup_intent_id = intent.id
        account.card_setup_created_at = created
        account.save()
    logger.info(
        "card %s ending %s on file for organization %s (setup intent %s, by %s)",
        card.brand, card.last4, account.organization_id, intent.id, recorded_by,
    )
    return account


def _invoice_number() -> str:
    sequence, _ = InvoiceSequence.objects.get_or_create(name="invoice")
    sequence = InvoiceSequence.objects.select_for_update().get(pk=sequence.pk)
    number = sequence.next_number
    InvoiceSequence.objects.filter(pk=sequence.pk).update(next_number=F("next_number") + 1)
    return f"{settings.INVOICE_NUMBER_PREFIX}-{number:06d}"


def customer_details(account: BillingAccount) -> str:
    """What an invoice says under "Billed to": legal name, address and tax ID."""
    lines = [account.legal_name or account.organization.name]
    lines += [line.strip() for line in account.billing_address.splitlines() if line.strip()]
    if account.tax_id:
        lines.append(f"Tax ID: {account.tax_id}")
    return "\n".join(lines)


@transaction.atomic
def billing_details_update(
    *, organization: Organization, actor: User, legal_name: str, billing_address: str, tax_id: str
) -> BillingAccount:
    """Set who invoices are made out to. Invoices already issued keep what they say."""
    import re

    _require_admin(organization, actor)
    legal_name = " ".join(legal_name.split())
    address_lines = [" ".join(line.split()) for line in billing_address.splitlines()]
    billing_address = "\n".join(line for line in address_lines if line)
    tax_id = tax_id.strip().upper()
    if len(legal_name) > 200:
        raise CheckoutInvalid("The legal name is longer than 200 characters.")
    if len(billing_address) > 500 or len(address_lines) > 8:
        raise CheckoutInvalid("The billing address is longer than 8 lines or 500 characters.")
    if tax_id and not re.fullmatch(r"[A-Z0-9][A-Z0-9 .\-/]{1,31}", tax_id):
        raise CheckoutInvalid(
            f"{tax_id!r} does not look like a tax ID: use letters, digits, spaces, dots, dashes or slashes (at most 32)."
        )
    organization_lock(organization)
    account = billing_account_of(organization)
    account.legal_name, account.billing_address, account.tax_id = legal_name, billing_address, tax_id
    account.save(update_fields=["legal_name", "billing_address", "tax_id", "updated_at"])
    return account


@dataclass(frozen=True)
class CreditLine:
    """Money owed back inside an invoice, as positive numbers (the line stores them negated)."""

    description: str
    quantity: int
    unit_amount_minor: int
    amount_minor: int


def _invoice_issue(
    *,
    organization: Organization,
    subscription: Subscription,
    kind: str,
    edition: Edition,
    seats: int,
    interval: str,
    unit_amount_minor: int,
    quantity: int,
    amount_minor: int,
    period_start: datetime,
    period_end: datetime,
    description: str,
    seats_delta: int = 0,
    request_key: str = "",
    credit: CreditLine | None = None,
) -> Invoice:
    """Issue a numbered invoice: one line, and a credit line when given. Call inside the
    caller's transaction. The total is the lines' sum and is never negative."""
    total = amount_minor - (credit.amount_minor if credit else 0)
    if total < 0:
        raise CheckoutInvalid("The credit is larger than the charge; nothing to invoice.")
    invoice = Invoice.objects.create(
        organization=organization,
        number=_invoice_number(),
        kind=kind,
        currency=edition.currency,
        total_minor=total,
        seller_details=settings.SELLER_DETAILS,
        customer_details=customer_details(billing_account_of(organization)),
        issued_at=timezone.now(),
        subscription=subscription,
        target_edition=edition,
        target_seats=seats,
        target_interval=interval,
        period_start=period_start,
        period_end=period_end,
        seats_delta=seats_delta,
        request_key=request_key,
    )
    InvoiceLine.objects.create(
        invoice=invoice,
        description=description,
        quantity=quantity,
        unit_amount_minor=unit_amount_minor,
        amount_minor=amount_minor,
        period_start=period_start,
        period_end=period_end,
    )
    if credit is not None:
        InvoiceLine.objects.create(
            invoice=invoice,
            description=credit.description,
            quantity=credit.quantity,
            unit_amount_minor=-credit.unit_amount_minor,
            amount_minor=-credit.amount_minor,
            period_start=period_start,
            period_end=period_end,
        )
    return invoice


def _payment_start(*, invoice: Invoice, account: BillingAccount, actor: User) -> Payment:
    """A pending payment of the whole invoice with the card on file, charged by the worker
    once the transaction commits."""
    from .tasks import payment_charge as payment_charge_job

    payment = Payment.objects.create(
        organization=invoice.organization,
        invoice=invoice,
        amount_minor=invoice.total_minor,
        currency=invoice.currency,
        payment_method_id=account.payment_method_id,
        created_by=actor,
    )
    enqueue_on_commit(payment_charge_job, payment.pk)
    return payment


def subscription_checkout(
    *, subscription: Subscription, actor: User, edition: Edition, seats: int, interval: str
) -> Payment:
    """Turn a trial (or the Free edition, or a suspended subscription) into a paid one.

    Issues an invoice for the quoted amount and a payment, commits, then the worker charges
    the card on file off-session. A double click finds the payment already in flight and
    returns it: one invoice, one charge. After a declined card the same invoice is retried.
    Locks: organization, then subscription (the order every seat change uses).
    """
    organization = subscription.organization
    _require_admin(organization, actor)
    with transaction.atomic():
        organization = organization_lock(organization)
        subscription = Subscription.objects.select_for_update().select_related("product").get(pk=subscription.pk)
        subscription.organization = organization
        account = billing_account_of(organization)
        if not account.has_card:
            raise NoCardOnFile("Add a card before paying.")
        live = (
            Payment.objects.select_related("invoice")
            .filter(invoice__subscription=subscription, invoice__status=Invoice.Status.OPEN)
            .exclude(status=Payment.Status.FAILED)
            .first()
        )
        if live is not None:
            return live
        if subscription.status == Subscription.Status.ACTIVE and subscription.interval:
            raise CheckoutInvalid(f"{subscription.product.name} is already paid for.")
        owed_now = owed_for_time_used(timezone.now())
        owed = Invoice.objects.filter(owed_now, subscription=subscription, status=Invoice.Status.OPEN).first()
        if owed is not None:
            raise CheckoutInvalid(
                f"Invoice {owed.number} for a period {subscription.product.name} was used is not paid yet; once it is "
                "paid (against its purchase order), the subscription is active again."
            )
        quote = checkout_quote(subscription=subscription, edition=edition, seats=seats, interval=interval)
        invoice = (
            Invoice.objects.filter(
                subscription=subscription,
                status=Invoice.Status.OPEN,
                kind=Invoice.Kind.CONVERSION,
                target_edition=edition,
                target_seats=seats,
                target_interval=interval,
                total_minor=quote.amount_minor,
            )
            .order_by("-issued_at")
            .first()
        )
        if invoice is None:
            Invoice.objects.filter(subscription=subscription, status=Invoice.Status.OPEN).exclude(owed_now).update(
                status=Invoice.Status.VOID
            )
            invoice = _invoice_issue(
                organization=organization,
                subscription=subscription,
                kind=Invoice.Kind.CONVERSION,
                edition=edition,
                seats=seats,
                interval=interval,
                unit_amount_minor=quote.unit_amount_minor,
                quantity=seats,
                amount_minor=quote.amount_minor,
                period_start=quote.period_start,
                period_end=quote.period_end,
                description=(
                    f"{edition}, {seats} seat{'s' if seats != 1 else ''}, "
                    f"{'monthly' if interval == Subscription.Interval.MONTH else 'annual'}"
                ),
            )
        return _payment_start(invoice=invoice, account=account, actor=actor)


@dataclass(frozen=True)
class ChargeOutcome:
    done: bool
    retry_in: float | None = None


def payment_charge(*, payment_id: int) -> ChargeOutcome:
    """Charge one pending payment off-session (the worker's job). No row is locked while
    Stripe is called: the attempt is claimed and committed first.

    Invariant: a payment is charged at most once. The PaymentIntent's idempotency key is the
    payment's id; before a new attempt, an intent Stripe already has for this payment (a
    crash after Stripe answered) is adopted instead of creating another. When Stripe could not
    be reached by the last attempt, that attempt may still have charged (its answer lost): the
    payment fails only once Stripe says it holds no intent for it, and until Stripe answers it
    is only looked up, never charged again.
    """
    with transaction.atomic():
        payment = (
            Payment.objects.select_for_update(of=("self",))
            .select_related("organization__billing_account", "invoice")
            .filter(pk=payment_id)
            .first()
        )
        if payment is None or payment.status not in (Payment.Status.PENDING, Payment.Status.PROCESSING):
            return ChargeOutcome(done=True)
        payment.status = Payment.Status.PROCESSING
        payment.attempts += 1
        payment.save(update_fields=["status", "attempts", "updated_at"])
    account = payment.organization.billing_account
    key = f"flywheel-payment-{payment.public_id}"
    try:
        existing = None
        if payment.attempts > 1:
            # An earlier attempt may have reached Stripe before it was cut off.
            existing = next(
                (
                    intent
                    for intent in gateway.payment_intents_of_customer(account.stripe_customer_id)
                    if intent.metadata.get("flywheel_payment") == str(payment.public_id)
                ),
                None,
            )
        if existing is None and payment.attempts > settings.PAYMENT_MAX_ATTEMPTS:
            # Only checking whether the last attempt charged: Stripe says it did not.
            payment_record_failure(
                payment_id=payment.pk, message=payment.failure_message or "Stripe could not be reached.", code="processor_unavailable"
            )
            return ChargeOutcome(done=True)
        intent = existing or gateway.payment_intent_charge(
            amount=payment.amount_minor,
            currency=payment.currency,
            customer_id=account.stripe_customer_id,
            payment_method_id=payment.payment_method_id,
            metadata={"flywheel_payment": str(payment.public_id), "flywheel_invoice": payment.invoice.number},
            idempotency_key=key,
        )
    except CardDeclined as declined:
        payment_record_failure(
            payment_id=payment.pk,
            message=declined.message,
            code=declined.decline_code or declined.code,
            payment_intent_id=declined.payment_intent_id,
        )
        return ChargeOutcome(done=True)
    except PaymentProcessorUnavailable as error:
        Payment.objects.filter(pk=payment.pk, status=Payment.Status.PROCESSING).update(
            status=Payment.Status.PENDING, failure_message=error.message
        )
        # After the last attempt, whether it charged is unknown until Stripe answers: look again.
        attempts = min(payment.attempts, settings.PAYMENT_MAX_ATTEMPTS)
        return ChargeOutcome(done=False, retry_in=settings.PAYMENT_RETRY_SECONDS * attempts)
    except PaymentSetupInvalid as error:
        payment_record_failure(payment_id=payment.pk, message=error.message, code="invalid_request")
        return ChargeOutcome(done=True)
    payment_apply_intent(intent=intent)
    return ChargeOutcome(done=True)


@transaction.atomic
def payment_record_failure(*, payment_id: int, message: str, code: str = "", payment_intent_id: str = "") -> Payment:
    """A payment failed: the invoice stays open so the admin can try another card. A payment
    that already succeeded is never turned back.

    Recorded once, whichever of the worker (its card error) and Stripe's webhook comes first:
    a payment already failed only gains what the second path knows better (a more specific
    reason, the declined PaymentIntent's id), and nobody is told again. Locks in the billing
    order: organization, subscription, payment."""
    found = Payment.objects.select_related("organization").get(pk=payment_id)
    organization_lock(found.organization)
    Subscription.objects.select_for_update(of=("self",)).filter(invoices__payments=found).first()
    payment = Payment.objects.select_for_update().get(pk=payment_id)
    if payment.status == Payment.Status.SUCCEEDED:
        return payment
    if payment_intent_id and not payment.stripe_payment_intent_id:
        payment.stripe_payment_intent_id = payment_intent_id[:64]
    if payment.status == Payment.Status.FAILED:
        _failure_reason_keep(payment, code=code, message=message)
        payment.save(update_fields=["stripe_payment_intent_id", "failure_message", "failure_code", "updated_at"])
        return payment
    payment.status = Payment.Status.FAILED
    payment.failure_message = message[:2000]
    payment.failure_code = code[:64]
    payment.save(update_fields=["status", "stripe_payment_intent_id", "failure_message", "failure_code", "updated_at"])
    _renewal_payment_failed(payment)
    return payment


def _failure_reason_keep(payment: Payment, *, code: str, message: str) -> None:
    """A failure already recorded takes another path's reason only if it is more specific
    (insufficient_funds over card_declined), so the order of the paths never loses it."""
    if reason_is_more_specific(code, payment.failure_code):
        payment.failure_code = code[:64]
        payment.failure_message = (message or payment.failure_message)[:2000]
    elif not payment.failure_message:
        payment.failure_message = message[:2000]


def _renewal_payment_failed(payment: Payment) -> None:
    """A renewal charge failed: the subscription goes past due and dunning starts (retries on
    DUNNING_RETRY_DAYS, an email each time, then suspension after DUNNING_GRACE_DAYS)."""
    invoice = payment.invoice
    if invoice.kind != Invoice.Kind.RENEWAL or invoice.status != Invoice.Status.OPEN:
        return
    subscription = Subscription.objects.select_for_update(of=("self",)).select_related("product").get(pk=invoice.subscription_id)
    now = timezone.now()
    if subscription.status == Subscription.Status.ACTIVE:
        subscription.status = Subscription.Status.PAST_DUE
        subscription.past_due_since = now
        subscription.dunning_attempts = 0
        subscription.next_dunning_at = now + timedelta(days=settings.DUNNING_RETRY_DAYS[0])
        subscription.save()
        event_record(
            name=events.PAYMENT_FAILED,
            organization=subscription.organization,
            properties={
                "product": subscription.product.code,
                "invoice": invoice.number,
                "reason": payment.failure_message[:200],
                "code": payment.failure_code,
            },
        )
    billing_email_admins(
        organization=subscription.organization,
        subject=f"Payment failed for {subscription.product.name}",
        body=(
            f"We could not charge your card for invoice {invoice.number} "
            f"({money(payment.amount_minor, payment.currency)}). {payment.decline_reason}\n\n"
            f"Enter a card and pay this invoice here: {settings.SITE_URL}/billing/card/?invoice={invoice.public_id}\n\n"
            "We will try again automatically. If the invoice stays unpaid, "
            f"{subscription.product.name} will be suspended."
        ),
    )


def billing_email_recipients(organization: Organization) -> list[str]:
    """Who billing emails go to: the organization's admins, and its billing address if set."""
    recipients = set(organization.memberships.filter(role="admin").values_list("user__email", flat=True))
    account = BillingAccount.objects.filter(organization=organization).first()
    if account is not None and account.billing_email:
        recipients.add(account.billing_email)
    return sorted(recipients)


def invoice_receipt_send(*, invoice_id: int) -> bool:
    """Email the receipt of a paid invoice to the organization's admins (and billing address):
    the amount, what it paid for, how, the invoice's link and its PDF attached. Sent by the
    worker; its Message-ID is the invoice's, so a retried task is one message to mail systems.
    Returns whether a message was sent."""
    from django.core.mail import EmailMultiAlternatives, get_connection
    from django.template.loader import render_to_string
    from django.urls import reverse

    from .documents import document_pdf, invoice_document

    invoice = (
        Invoice.objects.select_related("organization", "subscription__product", "target_edition")
        .filter(pk=invoice_id, status=Invoice.Status.PAID)
        .first()
    )
    if invoice is None:
        return False
    recipients = billing_email_recipients(invoice.organization)
    if not recipients:
        return False
    product = invoice.subscription.product.name
    headline = {
        Invoice.Kind.CONVERSION: f"Thank you: {invoice.target_edition} is paid for, with {seats_text(invoice.target_seats)}.",
        Invoice.Kind.SEATS: f"Thank you: {seats_text(invoice.seats_delta)} added to {invoice.target_edition}.",
        Invoice.Kind.UPGRADE: f"Thank you: {product} is now on {invoice.target_edition.name}.",
        Invoice.Kind.RENEWAL: f"Thank you: {invoice.target_edition} is renewed until {day(invoice.period_end)}.",
    }.get(invoice.kind, f"Thank you: invoice {invoice.number} is paid.")
    payment = invoice.payments.filter(status=Payment.Status.SUCCEEDED).first()
    account = BillingAccount.objects.filter(organization=invoice.organization).first()
    if payment is None:
        paid_with_short = f"Bank transfer{f' against PO {invoice.po_number}' if invoice.po_number else ''}"
    elif account is not None and account.card_last4:
        paid_with_short = f"{account.card_brand.capitalize()} ending {account.card_last4}"
    else:
        paid_with_short = "Card"
    document = invoice_document(invoice)
    context = {
        "invoice": invoice,
        "headline": headline,
        "paid_with_short": paid_with_short,
        "paid_with": f"Paid with: {paid_with_short}",
        "lines": document.lines,
        "invoice_url": f"{settings.SITE_URL}{reverse('invoice', args=[invoice.public_id])}",
    }
    message = EmailMultiAlternatives(
        subject=f"[{settings.SITE_NAME}] Receipt for {product}: {money(invoice.total_minor, invoice.currency)} paid (invoice {invoice.number})",
        body=render_to_string("billing/email/receipt.txt", context),
        to=recipients,
        headers={"Message-ID": f"<receipt-{invoice.public_id}@flywheel.localhost>"},
    )
    message.attach_alternative(render_to_string("billing/email/receipt.html", context), "text/html")
    message.attach(document.filename, document_pdf(document), "application/pdf")
    message.connection = get_connection()
    message.send()
    return True


def billing_email_admins(*, organization: Organization, subject: str, body: str) -> None:
    """A billing email to every admin of the organization (and its billing address), sent by
    the worker after the transaction commits."""
    from django.core.mail import EmailMessage
    from django.urls import reverse

    from accounts.mail import email_subject, email_text, mail_queue

    recipients = billing_email_recipients(organization)
    if recipients:
        text = email_text(
            body=body,
            reason=(
                f"You receive this email because you are an admin of {organization.name}, or its "
                f"billing contact. Billing settings: {settings.SITE_URL}{reverse('billing')}"
            ),
        )
        mail_queue(EmailMessage(subject=email_subject(subject), body=text, to=recipients))


def payment_apply_intent(*, intent: gateway.PaymentIntent) -> Payment | None:
    """Bring the payment a PaymentIntent belongs to in line with the intent's current state.

    Idempotent and safe in any order: a settled payment only moves from failed to succeeded
    (a later successful retry of the same intent), never back; success applies the invoice.
    """
    payment_public_id = intent.metadata.get("flywheel_payment", "")
    found = Payment.objects.filter(stripe_payment_intent_id=intent.id).first() if intent.id else None
    if found is None and payment_public_id:
        try:
            found = Payment.objects.filter(public_id=uuid.UUID(payment_public_id)).first()
        except ValueError:
            found = None
    if found is None:
        return None
    if found.status == Payment.Status.SUCCEEDED and found.stripe_payment_intent_id == intent.id:
        return found  # settled for good: nothing an intent says can change it, so take no locks
    with transaction.atomic():
        # The lock order of every billing change: organization, subscription, payment, invoice.
        organization_lock(found.organization)
        Subscription.objects.select_for_update(of=("self",)).filter(invoices__payments=found).first()
        payment = Payment.objects.select_for_update().get(pk=found.pk)
        if intent.amount != payment.amount_minor or intent.currency.upper() != payment.currency.upper():
            logger.error("PaymentIntent %s does not match payment %s", intent.id, payment.public_id)
            return payment
        if not payment.stripe_payment_intent_id:
            payment.stripe_payment_intent_id = intent.id
            payment.client_secret = intent.client_secret
        if intent.status == "succeeded":
            holder = None
            if payment.status != Payment.Status.SUCCEEDED:
                holder = (
                    Payment.objects.filter(invoice_id=payment.invoice_id, status__in=(*Payment.LIVE, Payment.Status.SUCCEEDED))
                    .exclude(pk=payment.pk)
                    .first()
                )
            if holder is not None:
                # Another payment holds the invoice already (paid, or under way): Stripe says this
                # one charged too. It cannot also be the invoice's payment: staff refund it.
                logger.error(
                    "PaymentIntent %s succeeded for payment %s of invoice %s, which payment %s (%s) holds: "
                    "the customer may have paid twice; refund %s in Stripe if so",
                    intent.id, payment.public_id, payment.invoice.number, holder.public_id, holder.status, intent.id,
                )
                payment.failure_message = (
                    f"Stripe charged this ({intent.id}) while payment {holder.public_id} held the invoice: "
                    "refund it in Stripe if both went through."
                )
                payment.save()
                return payment
            if payment.status != Payment.Status.SUCCEEDED:
                payment.status = Payment.Status.SUCCEEDED
                payment.succeeded_at = timezone.now()
                payment.failure_message = ""
                payment.save()
                invoice_mark_paid(invoice=payment.invoice, payment=payment)
            return payment
        if payment.status == Payment.Status.SUCCEEDED:
            return payment
        if intent.status == "requires_action":
            payment.status = Payment.Status.REQUIRES_ACTION
        elif intent.status in ("requires_payment_method", "canceled"):
            # requires_payment_method: the charge was declined; canceled: the intent will never
            # charge (canceled in Stripe, or abandoned). Either fails the payment, once.
            if payment.status == Payment.Status.FAILED:
                # Already recorded (the worker's card error, or an earlier delivery of this
                # event): the admins were told once. Only the intent's link and a more specific
                # reason than the first path's are added.
                _failure_reason_keep(payment, code=intent.error_code, message=intent.error_message)
                payment.save()
                return payment
            payment.status = Payment.Status.FAILED
            payment.failure_message = intent.error_message or (
                "The payment was canceled." if intent.status == "canceled" else "The payment was not completed."
            )
            payment.failure_code = intent.error_code or ("canceled" if intent.status == "canceled" else "")
            payment.save()
            _renewal_payment_failed(payment)
            return payment
        elif intent.status == "processing" and payment.status != Payment.Status.FAILED:
            # The bank has not answered yet (some cards, bank debits): still under way. A payment
            # already failed stays failed; a success comes as `succeeded`.
            payment.status = Payment.Status.PROCESSING
        payment.save()
        return payment


def owed_for_time_used(now) -> Q:
    """Open invoices that are a debt whatever happens next: a purchase-order renewal for a
    period that has begun (the customer had the product on its terms). Never voided."""
    return Q(kind=Invoice.Kind.RENEWAL, collection_method=BillingAccount.Collection.INVOICE, period_start__lte=now)


def invoice_mark_paid(*, invoice: Invoice, payment: Payment | None) -> Invoice:
    """Mark an invoice paid and apply what it bought, exactly once (applied_at)."""
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.applied_at is not None:
        return invoice
    now = timezone.now()
    invoice.status = Invoice.Status.PAID
    invoice.paid_at = now
    invoice.applied_at = now
    invoice.save(update_fields=["status", "paid_at", "applied_at"])
    if invoice.total_minor > 0:
        # Here and only here, under the invoice's lock and its applied_at: one receipt per
        # payment, however many of the webhook, the worker and staff see it paid.
        from .tasks import invoice_receipt_send as invoice_receipt_send_job

        enqueue_on_commit(invoice_receipt_send_job, invoice.pk)
    subscription = Subscription.objects.select_for_update().select_related("edition").get(pk=invoice.subscription_id)
    if invoice.kind == Invoice.Kind.RENEWAL:
        # A debt paid after the subscription ended (a purchase order paid late) starts nothing again.
        if subscription.status != Subscription.Status.CANCELED:
            if subscription.current_period_end is None or invoice.period_end > subscription.current_period_end:
                subscription.current_period_start = invoice.period_start
                subscription.current_period_end = invoice.period_end
            subscription.status = Subscription.Status.ACTIVE
            subscription.past_due_since = None
            subscription.dunning_attempts = 0
            subscription.next_dunning_at = None
            subscription.suspended_at = None
            subscription.save()
        event_record(
            name=events.SUBSCRIPTION_RENEWED,
            user=payment.created_by if payment else None,
            organization=invoice.organization,
            properties={"product": subscription.product.code, "amount_minor": invoice.total_minor, "currency": invoice.currency},
        )
        return invoice
    if invoice.kind == Invoice.Kind.UPGRADE:
        previous_edition = subscription.edition.code
        subscription.edition = invoice.target_edition
        subscription.pending_edition = None
        subscription.save()
        event_record(
            name=events.EDITION_CHANGED,
            user=payment.created_by if payment else None,
            organization=invoice.organization,
            properties={
                "product": subscription.product.code,
                "from": previous_edition,
                "to": invoice.target_edition.code,
                "amount_minor": invoice.total_minor,
                "currency": invoice.currency,
            },
        )
        return invoice
    if invoice.kind == Invoice.Kind.SEATS:
        Subscription.objects.filter(pk=subscription.pk).update(seat_limit=F("seat_limit") + invoice.seats_delta)
        entitlements_invalidate(organization_id=invoice.organization_id)
        event_record(
            name=events.SEATS_ADDED,
            user=payment.created_by if payment else None,
            organization=invoice.organization,
            properties={
                "product": subscription.product.code,
                "seats_added": invoice.seats_delta,
                "amount_minor": invoice.total_minor,
                "currency": invoice.currency,
            },
        )
        return invoice
    previous = subscription.status
    subscription.edition = invoice.target_edition
    subscription.seat_limit = invoice.target_seats
    subscription.interval = invoice.target_interval
    subscription.status = Subscription.Status.ACTIVE
    subscription.trial_ends_at = None
    subscription.suspended_at = None
    subscription.current_period_start = invoice.period_start
    subscription.current_period_end = invoice.period_end
    subscription.save()
    event_record(
        name=events.SUBSCRIPTION_PAID,
        user=payment.created_by if payment else None,
        organization=invoice.organization,
        properties={
            "product": subscription.product.code,
            "edition": invoice.target_edition.code,
            "seats": invoice.target_seats,
            "interval": invoice.target_interval,
            "amount_minor": invoice.total_minor,
            "currency": invoice.currency,
            "from_status": previous,
        },
    )
    return invoice


# Shown prices ----------------------------------------------------------------------------------

# A price shown before money moves is honoured for this long: the confirmation charges the
# amount priced at the moment it was shown. After that the admin sees the price again.
QUOTE_MAX_AGE = timedelta(minutes=15)


def quote_token_make(*, kind: str, subscription: Subscription, detail: str, at: datetime, total_minor: int) -> str:
    """A signed record of a price shown to an admin: what (kind, subscription, detail), when,
    and its total. The confirming form sends it back (quote_token_read)."""
    from django.core import signing

    return signing.dumps(
        {"subscription": str(subscription.public_id), "detail": detail, "at": at.isoformat(), "total": total_minor},
        salt=f"billing.quote.{kind}",
    )


def quote_token_read(*, token: str, kind: str, subscription: Subscription, detail: str) -> tuple[datetime, int]:
    """When the confirmed price was shown and its total. CheckoutInvalid when the token is not a
    price of this change, is from the future, or is older than QUOTE_MAX_AGE."""
    from django.core import signing

    try:
        quoted = signing.loads(token, salt=f"billing.quote.{kind}", max_age=QUOTE_MAX_AGE)
    except signing.SignatureExpired:
        raise CheckoutInvalid(
            "This price was shown more than 15 minutes ago and has changed since: check the new price below and confirm again."
        ) from None
    except signing.BadSignature:
        raise CheckoutInvalid("Open the price first, then confirm it.") from None
    if quoted.get("subscription") != str(subscription.public_id) or quoted.get("detail") != detail:
        raise CheckoutInvalid("Open the price first, then confirm it.")
    at = datetime.fromisoformat(quoted["at"])
    if at > timezone.now():
        raise CheckoutInvalid("Open the price first, then confirm it.")
    return at, int(quoted["total"])


PRICE_CHANGED = (
    "The price has changed since it was shown (the seats, the edition or the period changed): "
    "check the new price below and confirm again."
)


# Adding seats ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeatsQuote:
    """The prorated price of adding seats until the end of the current period.

    amount = seats x price per seat for the period x seconds left / seconds in the period,
    rounded half up to a whole minor unit (docs/billing.md).
    """

    seats: int
    unit_amount_minor: int
    amount_minor: int
    currency: str
    period_start: datetime
    period_end: datetime
    seconds_left: int
    seconds_in_period: int
    new_seat_limit: int
    token: str = ""

    @property
    def time_left(self) -> str:
        """What is left of the period in days (hours on its last day): "31 days"."""
        from .formats import time_left

        return time_left(self.seconds_left)


def prorate(*, full_amount_minor: int, seconds_left: int, seconds_in_period: int) -> int:
    """full x left / period, rounded half up, in integers only."""
    if seconds_in_period <= 0 or seconds_left <= 0:
        return 0
    seconds_left = min(seconds_left, seconds_in_period)
    return (full_amount_minor * seconds_left * 2 + seconds_in_period) // (2 * seconds_in_period)


def period_end_after(start: datetime, interval: str) -> datetime:
    """The end of a whole billing period (a month or a year) that begins at `start`."""
    return add_months(start, 1 if interval == Subscription.Interval.MONTH else 12)


def period_seconds(subscription: Subscription) -> int:
    """A whole billing period (a month or a year) from the current period's start, what the price
    is for: prorations divide by this, as the checkout's quote does. It is the current period's
    own length, except for a first period cut short to the organization's billing date."""
    start = subscription.current_period_start
    return int((period_end_after(start, subscription.interval) - start).total_seconds())


def seats_quote(*, subscription: Subscription, seats: int, at: datetime | None = None) -> SeatsQuote:
    """Price `seats` more seats for the rest of the paid period, as at `at` (now by default);
    CheckoutInvalid says why not."""
    if subscription.status != Subscription.Status.ACTIVE or not subscription.interval or not subscription.current_period_end:
        raise CheckoutInvalid(f"{subscription.product.name} is not paid for yet: buy it first.")
    if seats < 1:
        raise CheckoutInvalid("Add at least one seat.")
    edition = subscription.edition
    # Seats being paid for count already: two purchases under way must not pass the limit together.
    buying = sum(
        Invoice.objects.filter(
            subscription=subscription, kind=Invoice.Kind.SEATS, status=Invoice.Status.OPEN, payments__status__in=Payment.LIVE
        ).values_list("seats_delta", flat=True)
    )
    if subscription.seat_limit + buying + seats > edition.seat_limit:
        being_bought = f" ({buying} more being paid for)" if buying else ""
        raise CheckoutInvalid(
            f"{edition} allows at most {edition.seat_limit} users and you have {subscription.seat_limit} seats{being_bought}; "
            "choose a bigger edition to add more."
        )
    now = at or timezone.now()
    seconds_left = int((subscription.current_period_end - now).total_seconds())
    if seconds_left <= 0:
        raise CheckoutInvalid("The current period has ended; seats are added at renewal.")
    seconds_in_period = period_seconds(subscription)
    unit = edition.monthly_price_minor if subscription.interval == Subscription.Interval.MONTH else edition.annual_price_minor
    amount = prorate(full_amount_minor=unit * seats, seconds_left=seconds_left, seconds_in_period=seconds_in_period)
    return SeatsQuote(
        seats=seats,
        unit_amount_minor=unit,
        amount_minor=amount,
        currency=edition.currency,
        period_start=now,
        period_end=subscription.current_period_end,
        seconds_left=seconds_left,
        seconds_in_period=seconds_in_period,
        new_seat_limit=subscription.seat_limit + seats,
        token=quote_token_make(kind="seats", subscription=subscription, detail=str(seats), at=now, total_minor=amount),
    )


def subscription_add_seats(
    *, subscription: Subscription, actor: User, seats: int, request_key: str, quote_token: str | None = None
) -> Payment:
    """Add seats to a paid subscription for a prorated charge; they are granted when the
    charge succeeds.

    With `quote_token` (the price the admin saw, seats_quote), the charge is exactly that
    price, priced at the moment it was shown; a price older than QUOTE_MAX_AGE, or one the
    subscription no longer matches, is refused and nothing is written.

    Invariant: one request key, one invoice and one charge. A double click or a retried
    request (same key) returns the payment it started. Locks: organization, then subscription.
    """
    organization = subscription.organization
    _require_admin(organization, actor)
    if not request_key or len(request_key) > 64:
        raise CheckoutInvalid("The request is missing its key; reload the page and try again.")
    with transaction.atomic():
        organization = organization_lock(organization)
        existing = Payment.objects.filter(invoice__organization=organization, invoice__request_key=request_key).order_by("-created_at").first()
        if existing is not None:
            return existing
        subscription = (
            Subscription.objects.select_for_update(of=("self",)).select_related("product", "edition").get(pk=subscription.pk)
        )
        account = billing_account_of(organization)
        if not account.has_card:
            raise NoCardOnFile("Add a card before buying seats.")
        at, shown_total = None, None
        if quote_token is not None:
            at, shown_total = quote_token_read(token=quote_token, kind="seats", subscription=subscription, detail=str(seats))
        quote = seats_quote(subscription=subscription, seats=seats, at=at)
        if shown_total is not None and quote.amount_minor != shown_total:
            raise CheckoutInvalid(PRICE_CHANGED)
        if quote.amount_minor == 0:
            raise CheckoutInvalid("The period ends now; seats are added at renewal.")
        invoice = _invoice_issue(
            organization=organization,
            subscription=subscription,
            kind=Invoice.Kind.SEATS,
            edition=subscription.edition,
            seats=quote.new_seat_limit,
            interval=subscription.interval,
            unit_amount_minor=quote.unit_amount_minor,
            quantity=seats,
            amount_minor=quote.amount_minor,
            period_start=quote.period_start,
            period_end=quote.period_end,
            description=(
                f"{subscription.edition}: {seats_text(seats)} × {money(quote.unit_amount_minor, quote.currency)}/"
                f"{'year' if subscription.interval == Subscription.Interval.YEAR else 'month'}, "
                f"prorated for {span(quote.period_start, quote.period_end)}"
            ),
            seats_delta=seats,
            request_key=request_key,
        )
        return _payment_start(invoice=invoice, account=account, actor=actor)


@dataclass(frozen=True)
class ReceivedWebhook:
    pk: int
    stripe_event_id: str
    created: bool


def _webhook_insert_sql(vendor: str) -> str:
    """One statement, one round trip: the new row's id and True, or the stored row's id and
    False for a duplicate (on PostgreSQL; SQLite answers nothing for a duplicate). The outcome
    and its reason take their database defaults (pending, empty)."""
    table = WebhookEvent._meta.db_table
    insert = (
        f"INSERT INTO {table} (stripe_event_id, type, payload, raw_body, received_at, attempts, last_error) "  # noqa: S608 - table name only
        f"VALUES (%(id)s, %(type)s, {'%(payload)s::jsonb' if vendor == 'postgresql' else '%(payload)s'}, %(raw)s, %(at)s, 0, '') "
        "ON CONFLICT (stripe_event_id) DO NOTHING RETURNING id"
    )
    if vendor != "postgresql":
        return insert
    return (
        f"WITH inserted AS ({insert}) SELECT id, true FROM inserted "  # noqa: S608 - table name only
        f"UNION ALL SELECT id, false FROM {table} WHERE stripe_event_id = %(id)s "
        "AND NOT EXISTS (SELECT 1 FROM inserted)"
    )


def _webhook_insert_prepared(connection, params: dict) -> tuple | None:
    """Run the insert as a server-side prepared statement on Django's own connection (and so
    in its transaction, if any). Django's cursors bind parameters on the client, so PostgreSQL
    would parse and plan the statement for every webhook; prepared once per connection, it
    costs PostgreSQL about 0.1 ms less CPU per event (bench/webhooks.py). psycopg keeps the
    prepared statement with the connection and prepares it again on a new one."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_webhook_insert_sql("postgresql"), params, prepare=True)
        return cursor.fetchone()


# What jsonb refuses in a JSON text: the escape \u0000 (text cannot hold NUL) and a surrogate
# escape that is not half of a pair. The pattern also matches valid pairs and escaped
# backslashes before "u": a match only means "look closer" (_jsonb_safe).
_JSONB_SUSPECT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_JSONB_REFUSED_CHARACTERS = re.compile("[\x00\ud800-\udfff]")  # json.loads joins valid pairs


def _jsonb_safe(value):
    """`value` (parsed JSON) with every NUL and lone surrogate, in strings and keys, replaced
    by U+FFFD, or `value` itself when it has none. Every other field is kept as it is."""
    if isinstance(value, str):
        return _JSONB_REFUSED_CHARACTERS.sub("\ufffd", value)
    if isinstance(value, list):
        items = [_jsonb_safe(item) for item in value]
        return value if all(new is old for new, old in zip(items, value, strict=True)) else items
    if isinstance(value, dict):
        pairs = [(_jsonb_safe(key), _jsonb_safe(item)) for key, item in value.items()]
        if all(new_key is key and new is item for (new_key, new), (key, item) in zip(pairs, value.items(), strict=True)):
            return value
        return dict(pairs)
    return value


def webhook_receive(*, payload: bytes, signature: str) -> ReceivedWebhook:
    """Verify and store a Stripe webhook once by its event id; the worker processes it.

    One statement, `INSERT ... ON CONFLICT (stripe_event_id) DO NOTHING`: a duplicate delivery,
    even one racing the first on another connection, stores nothing and is told so. The body
    is stored as Stripe sent it (the database parses it), and the worker is nudged once the
    row is committed (webhooks_drain_nudge). A bad signature raises WebhookSignatureInvalid
    and stores nothing.

    A body that jsonb would refuse (a \\u0000 or a lone surrogate escape, anywhere) is stored
    too, never answered 500: its payload has those characters replaced by U+FFFD and the body
    itself is kept in raw_body. Only bodies with such an escape pay for the closer look.
    """
    data = gateway.webhook_event_parse(payload=payload, signature=signature)
    body = payload.decode("utf-8")
    raw = ""
    if _JSONB_SUSPECT.search(payload):
        safe = _jsonb_safe(data)
        if safe is not data:
            data, raw, body = safe, body, json.dumps(safe)
    event_id = str(data.get("id", ""))
    event_type = str(data.get("type", ""))
    if not event_id or len(event_id) > 255 or len(event_type) > 255:
        raise WebhookSignatureInvalid("Webhook refused: the event has no usable id or type.")
    connection = connections[WebhookEvent.objects.db]
    params = {"id": event_id, "type": event_type, "payload": body, "raw": raw, "at": timezone.now()}
    if connection.vendor == "postgresql":
        row = _webhook_insert_prepared(connection, params)
    else:
        with connection.cursor() as cursor:
            cursor.execute(_webhook_insert_sql(connection.vendor), params)
            row = cursor.fetchone()
    if row is None:  # SQLite: a duplicate
        existing = WebhookEvent.objects.filter(stripe_event_id=event_id).values_list("pk", flat=True).first()
        return ReceivedWebhook(pk=existing or 0, stripe_event_id=event_id, created=False)
    if len(row) > 1 and not row[1]:
        return ReceivedWebhook(pk=row[0], stripe_event_id=event_id, created=False)
    transaction.on_commit(webhooks_drain_nudge_soon, robust=True)
    return ReceivedWebhook(pk=row[0], stripe_event_id=event_id, created=True)


# The drain: one worker task applies every stored, unprocessed event, instead of one task per
# event (a Celery publish per webhook cost more than storing it). A Redis flag says "a drain is
# scheduled or running", so a burst of webhooks publishes one task, not thousands.
_DRAIN_FLAG = "webhooks-drain"
_DRAIN_FLAG_SECONDS = 60  # a drain that died leaves the flag this long at most


_NUDGE_WINDOW_SECONDS = 0.05
_nudge_lock = threading.Lock()
_nudge_last = float("-inf")
_nudge_timer: threading.Timer | None = None


def webhooks_drain_nudge_soon() -> None:
    """After an event is committed: nudge a drain now, or, if this process already nudged in
    the last 50 ms, once at the end of that window (a trailing debounce). Either way a nudge
    follows every committed event within 50 ms, at a cost of at most 20 Redis calls a second
    per process however many webhooks arrive."""
    global _nudge_last, _nudge_timer
    now = time.monotonic()
    with _nudge_lock:
        if now - _nudge_last >= _NUDGE_WINDOW_SECONDS:
            _nudge_last = now
        else:
            if _nudge_timer is None:
                _nudge_timer = threading.Timer(_NUDGE_WINDOW_SECONDS - (now - _nudge_last), _nudge_trailing)
                _nudge_timer.daemon = True
                _nudge_timer.start()
            return
    webhooks_drain_nudge()


def _nudge_trailing() -> None:
    global _nudge_last, _nudge_timer
    with _nudge_lock:
        _nudge_timer = None
        _nudge_last = time.monotonic()
    try:
        webhooks_drain_nudge()
    except Exception:  # noqa: BLE001 - the beat sweep nudges again within a minute
        logger.exception("webhook drain nudge failed")


def webhooks_drain_nudge() -> None:
    """Make sure a drain will run after this moment: publish one unless one is pending."""
    from common import shared_redis

    from .tasks import webhooks_drain as webhooks_drain_job

    redis_client = shared_redis.client()
    if redis_client is not None:
        try:
            if not redis_client.set(shared_redis.key(_DRAIN_FLAG), b"1", nx=True, ex=_DRAIN_FLAG_SECONDS):
                return  # a drain is pending or running, and rechecks before it stops
        except Exception:  # noqa: BLE001 - no Redis: publish anyway, drains are idempotent
            logger.warning("webhook drain flag unavailable; publishing a drain", exc_info=True)
    webhooks_drain_job.apply_async(queue=settings.CELERY_TASK_DEFAULT_QUEUE)


def _drain_flag_renew() -> None:
    """Set the flag for another _DRAIN_FLAG_SECONDS: a drain does so for each batch it takes,
    so the flag says "a drain is running" as long as one is, even after it cleared the flag
    and then found more work."""
    from common import shared_redis

    redis_client = shared_redis.client()
    if redis_client is not None:
        try:
            redis_client.set(shared_redis.key(_DRAIN_FLAG), b"1", ex=_DRAIN_FLAG_SECONDS)
        except Exception:  # noqa: BLE001 - without the flag, nudges publish more drains; leases keep them apart
            logger.warning("webhook drain flag not renewed", exc_info=True)


def _drain_successor_publish() -> None:
    """A drain that stops with work left hands over to a new task. The flag is still its own,
    so it publishes directly (a nudge would see the flag and do nothing) and renews the flag."""
    from .tasks import webhooks_drain as webhooks_drain_job

    _drain_flag_renew()
    webhooks_drain_job.apply_async(queue=settings.CELERY_TASK_DEFAULT_QUEUE)


def _drain_flag_clear() -> None:
    from common import shared_redis

    redis_client = shared_redis.client()
    if redis_client is not None:
        try:
            redis_client.delete(shared_redis.key(_DRAIN_FLAG))
        except Exception:  # noqa: BLE001 - the flag expires by itself
            logger.warning("webhook drain flag not cleared", exc_info=True)


def _webhook_retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(settings.WEBHOOK_RETRY_SECONDS * 2 ** max(attempts - 1, 0), 3600))


def webhooks_claim(*, limit: int) -> list[int]:
    """Lease up to `limit` pending events to this caller, oldest first.

    A leased event is invisible to other drains until its lease ends (WEBHOOK_LEASE_SECONDS):
    concurrent drains never apply one event at the same time, and an event whose drain died
    is picked up again when its lease runs out. Only pending events are claimed: a dead one
    waits for staff (webhooks_replay). No row lock is held after this returns.
    """
    connection = connections[WebhookEvent.objects.db]
    table = WebhookEvent._meta.db_table
    skip_locked = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET claimed_until = %s WHERE id IN ("  # noqa: S608 - no user input
            f"SELECT id FROM {table} WHERE outcome = %s AND (claimed_until IS NULL OR claimed_until < %s) "
            f"ORDER BY received_at, id LIMIT %s{skip_locked}) RETURNING id",
            [now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS), WebhookEvent.Outcome.PENDING, now, limit],
        )
        return sorted(row[0] for row in cursor.fetchall())


@dataclass
class DrainReport:
    processed: int = 0  # events that reached a final outcome: applied, stored or not ours
    failed: int = 0  # events that met a temporary error (backing off, or dead)
    not_ours: int = 0  # of `processed`
    dead: int = 0  # of `failed`: they reached WEBHOOK_MAX_ATTEMPTS


def webhooks_drain(*, batch: int = 100, max_seconds: float = 20.0, linger: float | None = None) -> DrainReport:
    """Apply stored events until none is left to claim; return what was done.

    After a batch that was not full it waits `linger` seconds (WEBHOOK_DRAIN_LINGER_SECONDS)
    before claiming again, with its flag still set, so the intake publishes no other drain
    meanwhile. During a burst the events then come in batches of what arrived in that time,
    each for the same few statements, rather than one or two per claim; a lone event is still
    applied as soon as the drain starts, and the wait only delays the drain's end.

    Stops after `max_seconds` and publishes its successor, so one long burst never holds a
    worker process. Before stopping for lack of work it clears the flag and claims once more:
    an event stored while the flag was still set is never left waiting for the sweep.
    """
    report = DrainReport()
    linger = settings.WEBHOOK_DRAIN_LINGER_SECONDS if linger is None else linger
    deadline = time.monotonic() + max_seconds
    flag_cleared = False
    while True:
        claimed = webhooks_claim(limit=batch)
        if not claimed:
            if flag_cleared:
                return report
            _drain_flag_clear()
            flag_cleared = True
            continue
        _drain_flag_renew()
        flag_cleared = False
        _webhooks_apply(claimed, report)
        if time.monotonic() > deadline:
            _drain_successor_publish()
            return report
        if len(claimed) < batch and linger > 0:
            time.sleep(linger)


# Outcomes ----------------------------------------------------------------------------------
# A permanent error (the event is about nothing of ours) ends an event at once as "not ours";
# any other error is temporary: the event backs off and is tried again, and after
# WEBHOOK_MAX_ATTEMPTS it is dead (an alert in the log) until staff replay it.

_NOT_OURS_ERRORS = (WebhookNotOurs, StripeObjectMissing)


def _webhook_intent_apply(intent_id: str) -> None:
    """Apply a PaymentIntent an event is about, read back from Stripe. An intent that belongs
    to no Flywheel payment (another integration on the same Stripe account) is not ours."""
    try:
        intent = gateway.payment_intent_retrieve(intent_id)
    except StripeObjectMissing:
        raise WebhookNotOurs(f"payment event for PaymentIntent {intent_id}, which Stripe does not have in this account") from None
    if payment_apply_intent(intent=intent) is None:
        raise WebhookNotOurs(f"payment event for PaymentIntent {intent_id}, which no Flywheel payment knows")


def _webhook_handled(event_type: str) -> bool:
    """Whether a handler of ours acts on this type (its events end applied, others stored)."""
    return event_type in HANDLED_WEBHOOKS or event_type in refunds.HANDLED_WEBHOOKS


def _not_ours_unread(*, account, livemode) -> str:
    """Why an event is not ours, seen from the event alone (no call to Stripe), or ""."""
    if account:
        return (
            f"A Connect event from account {account}: Flywheel is not a Connect platform, and "
            "that account's objects cannot be read with Flywheel's key."
        )
    if isinstance(livemode, bool) and livemode != gateway.key_is_live():
        return (
            f"A {'live' if livemode else 'test'}-mode event, but Flywheel uses a "
            f"{'live' if gateway.key_is_live() else 'test'}-mode key: its objects are not in this account."
        )
    return ""


def _not_ours_reason(error: Exception) -> str:
    if isinstance(error, StripeObjectMissing):
        return f"Stripe cannot find its object in Flywheel's account: {error.message}"
    return str(getattr(error, "message", "") or error)


def _webhooks_done(event_ids: list[int], outcome: str, *, reason: str = "", error: Exception | None = None, attempt: bool = False) -> int:
    """Record a final outcome (applied, stored or not ours) on pending events."""
    changes: dict = {"outcome": outcome, "outcome_reason": reason, "processed_at": timezone.now()}
    changes["last_error"] = repr(error)[:2000] if error is not None else ""
    if attempt:
        changes["attempts"] = F("attempts") + 1
    return WebhookEvent.objects.filter(pk__in=event_ids, outcome=WebhookEvent.Outcome.PENDING).update(**changes)


def _webhook_failed(event_id: int, stripe_event_id: str, attempts: int, error: Exception) -> bool:
    """A temporary error on attempt number `attempts`: keep it on the event and hide the event
    from drains until its backoff is over; after WEBHOOK_MAX_ATTEMPTS, the event is dead
    instead, with an alert in the log. Returns whether it is dead."""
    words = str(getattr(error, "message", "") or repr(error))
    if attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        dead = WebhookEvent.objects.filter(pk=event_id, outcome=WebhookEvent.Outcome.PENDING).update(
            outcome=WebhookEvent.Outcome.DEAD,
            outcome_reason=f"Gave up after {attempts} attempts: {words}",
            last_error=repr(error)[:2000],
            claimed_until=None,
        )
        if dead:
            logger.error("stripe webhook %s dead after %s attempts: %s", stripe_event_id, attempts, words)
        return True
    WebhookEvent.objects.filter(pk=event_id).update(
        last_error=repr(error)[:2000], claimed_until=timezone.now() + _webhook_retry_delay(attempts)
    )
    return False


def _intent_of(event_type: str, object_id) -> str:
    """The PaymentIntent an event is about (the id of its data.object), or "" for any other."""
    if event_type not in HANDLED_WEBHOOKS:
        return ""
    intent_id = str(object_id or "")
    return intent_id if intent_id.startswith("pi_") else ""


def _intents_settled(intent_ids) -> set[str]:
    """The PaymentIntents among `intent_ids` whose payment has succeeded with that very intent.
    payment_apply_intent never changes such a payment, whatever the intent says now, so an
    event about one needs no read from Stripe: a late or duplicate delivery costs one query,
    not an API call counted against Stripe's rate limit. (Refunds and disputes arrive as
    charge.* events, which take their own path.)"""
    return set(
        Payment.objects.filter(stripe_payment_intent_id__in=list(intent_ids), status=Payment.Status.SUCCEEDED)
        .values_list("stripe_payment_intent_id", flat=True)
    )


def _webhooks_apply(event_ids: list[int], report: DrainReport) -> None:
    """Apply a claimed batch of events.

    Events about the same PaymentIntent share one read of it from Stripe and one application:
    that read comes after every one of them was stored, so it is at least as new as each, and
    applying it once is what applying each in turn would have done. Events about an intent
    whose payment is already settled are done without asking Stripe (_intents_settled). Any
    other event is applied on its own (webhook_process). A Connect or other-mode event is not
    ours before anything is read. Errors are told apart as webhook_process does.

    Each of those applications may wait on Stripe. Once half the lease has gone, the events
    not yet started are handed back (their lease cleared) for the next claim, so a slow Stripe
    never lets the lease run out under an event still being applied, which another drain
    would then apply too.
    """
    hand_back_after = time.monotonic() + settings.WEBHOOK_LEASE_SECONDS / 2
    handed_back: list[int] = []
    by_intent: dict[str, list[tuple[int, str, int]]] = {}  # intent id -> [(event id, Stripe's id, attempts)]
    rows = (
        WebhookEvent.objects.filter(pk__in=event_ids, outcome=WebhookEvent.Outcome.PENDING)
        .order_by("pk")
        # Not the whole body: the object's id, and what says an event is not ours unread.
        .values_list("pk", "stripe_event_id", "type", "attempts", KT("payload__data__object__id"), KT("payload__account"), "payload__livemode")
    )
    for event_id, stripe_event_id, event_type, attempts, object_id, account, livemode in rows:
        reason = _not_ours_unread(account=account, livemode=livemode)
        if reason:
            report.processed += _webhooks_done([event_id], WebhookEvent.Outcome.NOT_OURS, reason=reason, attempt=True)
            report.not_ours += 1
            continue
        intent_id = _intent_of(event_type, object_id)
        if not intent_id:
            if time.monotonic() > hand_back_after:
                handed_back.append(event_id)
                continue
            outcome = webhook_process(event_id=event_id)
            if outcome in (WebhookEvent.Outcome.PENDING, WebhookEvent.Outcome.DEAD):
                report.failed += 1
                report.dead += outcome == WebhookEvent.Outcome.DEAD
            else:
                report.processed += 1
                report.not_ours += outcome == WebhookEvent.Outcome.NOT_OURS
            continue
        by_intent.setdefault(intent_id, []).append((event_id, stripe_event_id, attempts))
    settled = _intents_settled(by_intent)
    # Settled: nothing to apply, so every such event of the batch is done in one statement.
    done = [event_id for intent_id in settled for event_id, _, _ in by_intent.pop(intent_id, [])]
    if done:
        report.processed += _webhooks_done(done, WebhookEvent.Outcome.APPLIED, attempt=True)
    for intent_id, group in by_intent.items():
        ids = [event_id for event_id, _, _ in group]
        if time.monotonic() > hand_back_after:
            handed_back += ids
            continue
        WebhookEvent.objects.filter(pk__in=ids).update(attempts=F("attempts") + 1)
        try:
            _webhook_intent_apply(intent_id)
        except _NOT_OURS_ERRORS as error:
            _webhooks_done(ids, WebhookEvent.Outcome.NOT_OURS, reason=_not_ours_reason(error), error=error)
            report.processed += len(group)
            report.not_ours += len(group)
            continue
        except Exception as error:  # noqa: BLE001 - temporary: kept in last_error, retried after a backoff
            report.failed += len(group)
            logger.warning("stripe webhook events %s about %s failed", ids, intent_id, exc_info=True)
            for event_id, stripe_event_id, attempts in group:
                report.dead += _webhook_failed(event_id, stripe_event_id, attempts + 1, error)
            continue
        _webhooks_done(ids, WebhookEvent.Outcome.APPLIED)
        report.processed += len(group)
    if handed_back:
        WebhookEvent.objects.filter(pk__in=handed_back, outcome=WebhookEvent.Outcome.PENDING).update(claimed_until=None)


def webhooks_resume_unprocessed(*, older_than_seconds: int = 60) -> int:
    """Beat: nudge a drain when pending events wait with no drain to take them (its task was
    lost to a broker outage, its worker died, or a failed event's backoff is over). Returns
    how many events are waiting; dead ones are not (they wait for staff)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    now = timezone.now()
    waiting = (
        WebhookEvent.objects.filter(outcome=WebhookEvent.Outcome.PENDING, received_at__lt=cutoff)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .count()
    )
    if waiting:
        _drain_flag_clear()  # whoever held it is gone: its events' leases ran out
        transaction.on_commit(webhooks_drain_nudge, robust=True)
    return waiting


def webhooks_replay(*, event_ids: list[int], nudge: bool = True) -> list[int]:
    """Put stored events back to pending with their attempts, reason and error cleared, so
    the drain applies them again (nudged once this commits, unless `nudge` is False: then the
    caller applies them itself). For staff, once the cause of a dead or not-ours event is
    fixed; any event may be replayed, since every handler is idempotent.

    An event a drain holds right now (pending, leased or backing off) is left as it is: it is
    already waiting, and clearing its lease would let a second drain apply it meanwhile.
    Returns the ids put back.
    """
    with transaction.atomic():
        events = WebhookEvent.objects.select_for_update().filter(pk__in=event_ids).exclude(
            outcome=WebhookEvent.Outcome.PENDING, claimed_until__gt=timezone.now()
        )
        replayed = list(events.order_by("received_at", "pk").values_list("pk", flat=True))
        WebhookEvent.objects.filter(pk__in=replayed).update(
            outcome=WebhookEvent.Outcome.PENDING,
            outcome_reason="",
            processed_at=None,
            attempts=0,
            claimed_until=None,
            last_error="",
        )
        if replayed and nudge:
            transaction.on_commit(webhooks_drain_nudge, robust=True)
    return replayed


HANDLED_WEBHOOKS = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.requires_action",
    "payment_intent.processing",
    "payment_intent.canceled",
    "setup_intent.succeeded",
)


def webhook_process(*, event_id: int) -> str:
    """Apply one stored, pending webhook event, once, and return its outcome (WebhookEvent.Outcome).

    The handler reads the object's current state from Stripe rather than trusting the event's
    copy, so a stale or reordered event cannot overwrite newer state. A handler that raises
    WebhookNotOurs, or a Stripe 404 (StripeObjectMissing), makes the event not ours at once;
    a Connect or other-mode event is not ours before anything is read. Any other error is
    temporary: recorded, backed off, and dead after WEBHOOK_MAX_ATTEMPTS (pending or dead is
    returned, never raised). An event that is not pending is left alone ("" is returned).
    """
    event = WebhookEvent.objects.filter(pk=event_id, outcome=WebhookEvent.Outcome.PENDING).first()
    if event is None:
        return ""
    WebhookEvent.objects.filter(pk=event.pk).update(attempts=F("attempts") + 1)
    reason = _not_ours_unread(account=event.payload.get("account"), livemode=event.payload.get("livemode"))
    if reason:
        _webhooks_done([event.pk], WebhookEvent.Outcome.NOT_OURS, reason=reason)
        return WebhookEvent.Outcome.NOT_OURS
    try:
        intent_id = _intent_of(event.type, ((event.payload.get("data") or {}).get("object") or {}).get("id"))
        if intent_id and not _intents_settled([intent_id]):
            _webhook_intent_apply(intent_id)
        refunds.webhook_apply(event_type=event.type, payload=event.payload)  # refunds and disputes
        setup_intent_webhook_apply(event_type=event.type, payload=event.payload)  # a card confirmed
    except _NOT_OURS_ERRORS as error:
        _webhooks_done([event.pk], WebhookEvent.Outcome.NOT_OURS, reason=_not_ours_reason(error), error=error)
        return WebhookEvent.Outcome.NOT_OURS
    except Exception as error:  # noqa: BLE001 - temporary: kept in last_error, retried after a backoff
        logger.warning("stripe webhook %s (%s) failed", event.stripe_event_id, event.type, exc_info=True)
        dead = _webhook_failed(event.pk, event.stripe_event_id, event.attempts + 1, error)
        return WebhookEvent.Outcome.DEAD if dead else WebhookEvent.Outcome.PENDING
    outcome = WebhookEvent.Outcome.APPLIED if _webhook_handled(event.type) else WebhookEvent.Outcome.STORED
    _webhooks_done([event.pk], outcome)
    return outcome


def payment_refresh(*, payment: Payment) -> Payment | None:
    """Read the payment's PaymentIntent back from Stripe and apply what it says: after 3-D
    Secure in the browser, before Stripe's webhook tells the same. Idempotent and safe in any
    order, as payment_apply_intent is (its rules decide; this only fetches the intent)."""
    return payment_apply_intent(intent=gateway.payment_intent_retrieve(payment.stripe_payment_intent_id))
