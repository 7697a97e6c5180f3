"""The organization's billing account: its Stripe customer, the card on file (card page and
setup_intent webhook), who invoices are made out to, who billing emails go to, and the request
to pay by invoice against a purchase order."""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.mail import email_subject, email_text, mail_queue
from accounts.models import Organization, User
from accounts.selectors import admin_membership_require
from accounts.services import organization_lock
from common.exceptions import NotFound

from .. import gateway
from ..exceptions import (
    CardDeclined,
    CheckoutInvalid,
    ManagedByPayer,
    StripeObjectMissing,
    WebhookNotOurs,
)
from ..formats import day
from ..models import BillingAccount, Invoice, Payment, Subscription

logger = logging.getLogger(__name__)


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


def card_setup_start(*, organization: Organization, actor: User) -> gateway.SetupIntent:
    """Start capturing a card: a SetupIntent for the organization's Stripe customer, whose
    client secret the card form hands to Stripe.js. Nothing is stored until it succeeds."""
    admin_membership_require(organization=organization, user=actor, doing="manage billing")
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
    admin_membership_require(organization=organization, user=actor, doing="manage billing")
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


def payer_of(subscription: Subscription) -> Organization:
    """Who pays for the subscription: the organization it is billed to (a channel partner), or
    the organization itself."""
    return subscription.billed_to if subscription.billed_to_id else subscription.organization


def payer_account_of(subscription: Subscription) -> BillingAccount:
    """The billing account that pays the subscription's invoices (its card on file, its
    purchase-order terms, its invoice details): the payer's (payer_of)."""
    return billing_account_of(payer_of(subscription))


def managed_by_sentence(subscription: Subscription) -> str:
    """"Tracker is managed by Northwind Partners: ask them from the billing page." """
    return f"{subscription.product.name} is managed by {subscription.billed_to.name}: ask them from the billing page."


def payer_require(
    *,
    subscription: Subscription,
    actor: User,
    on_behalf: Organization | None,
    doing: str = "manage billing",
    interval: str | None = None,
    may_become_payer: bool = False,
) -> Organization:
    """Who pays for a change of `subscription` that `actor` asks for, or why they may not.

    Without `on_behalf` the actor is an admin of the subscription's organization, and a
    subscription billed to another organization (a partner) refuses with ManagedByPayer: buying,
    seats, editions and add-ons are the payer's to do (cancel and keep are not). With `on_behalf`
    the actor is an admin of that organization (never of the customer's, which it cannot see)
    and the subscription is billed to it, or, when `may_become_payer` (checkout, a trial, a
    quote), billed to nobody yet. PARTNER_ANNUAL_ONLY: what a payer buys is annual (`interval`,
    or the subscription's own).
    """
    if on_behalf is None:
        admin_membership_require(organization=subscription.organization, user=actor, doing=doing)
        if subscription.billed_to_id:
            raise ManagedByPayer(managed_by_sentence(subscription))
        return subscription.organization
    admin_membership_require(organization=on_behalf, user=actor, doing=doing)
    if on_behalf.pk == subscription.organization_id:
        raise CheckoutInvalid(f"{on_behalf.name} cannot buy on its own behalf: use its billing page.")
    if subscription.billed_to_id != on_behalf.pk and not (may_become_payer and subscription.billed_to_id is None):
        raise ManagedByPayer(
            f"{subscription.product.name} of {subscription.organization.name} is not billed to {on_behalf.name}."
        )
    partner_interval_require(interval=interval if interval is not None else subscription.interval)
    return on_behalf


def payer_take_over_withdraw(*, subscription: Subscription) -> int:
    """The payer (a partner) changes `subscription` (seats, edition, an add-on, paying one of
    its own open invoices): a take-over its organization asked for and has not paid (declined,
    waiting) priced the subscription as it was, so it is voided; the organization's admins are
    told to take over again at the new price. While the take-over is being charged the change
    is refused (CheckoutInvalid): that payment may still move the subscription. Returns how many
    were voided. Call with the organization and the subscription locked."""
    voided = 0
    for takeover in Invoice.objects.select_for_update().filter(
        subscription=subscription, kind=Invoice.Kind.TAKEOVER, status=Invoice.Status.OPEN
    ):
        if takeover.payments.filter(status__in=Payment.LIVE).exists():
            raise CheckoutInvalid(
                f"{subscription.organization.name} is moving {subscription.product.name} to direct billing right now; "
                "try again in a minute."
            )
        takeover.status = Invoice.Status.VOID
        takeover.save(update_fields=["status"])
        voided += 1
    if voided:
        billing_email_admins(
            organization=subscription.organization,
            subject=f"Take over {subscription.product.name} again: its price changed",
            body=(
                f"{subscription.billed_to.name} changed {subscription.product.name} before your payment to take it over "
                f"went through, so that payment request is cancelled and nothing was charged. To pay for "
                f"{subscription.product.name} directly, take it over again from the billing page at the new price."
            ),
        )
    return voided


def payer_live_payment_refuse(*, subscription: Subscription) -> None:
    """Refuse (CheckoutInvalid) taking `subscription` over while its partner's payment for one
    of its invoices is under way: if it succeeds, it changes what the take-over priced, and the
    take-over would have to credit a payment not made yet. Call with the subscription locked."""
    if Payment.objects.filter(
        invoice__subscription=subscription,
        invoice__bill_to_id=subscription.billed_to_id,
        invoice__status=Invoice.Status.OPEN,
        status__in=Payment.LIVE,
    ).exists():
        raise CheckoutInvalid(
            f"{subscription.billed_to.name} is paying for a change to {subscription.product.name} right now; try again in a minute."
        )


def discount_bp_require(discount_bp: int) -> int:
    """A partner's discount in basis points, 0 to 9999 (99.99 %): every entry that takes one
    checks it here, so a stored rate can never make a renewal's discount exceed its charge."""
    if isinstance(discount_bp, bool) or not isinstance(discount_bp, int) or not 0 <= discount_bp < 10_000:
        raise CheckoutInvalid("A discount is between 0 and 99.99 %.")
    return discount_bp


def partner_interval_require(*, interval: str) -> None:
    """PARTNER_ANNUAL_ONLY: a subscription a partner buys or changes is billed a year at a time."""
    if settings.PARTNER_ANNUAL_ONLY and interval and interval != Subscription.Interval.YEAR:
        raise CheckoutInvalid(
            "Subscriptions managed by a partner are billed annually (our partner rule): choose annual billing."
        )


@dataclass(frozen=True)
class PayerCollection:
    """How a charge of a subscription is collected: the payer's billing account (payer_of), and
    either its card on file or a purchase order with its number and net terms."""

    account: BillingAccount
    purchase_order: bool
    po_number: str
    net_terms_days: int


def payer_collection(subscription: Subscription, *, kind: str) -> PayerCollection:
    """How an invoice of `kind` (Invoice.Kind) for `subscription` is collected.

    A subscription bought against a purchase order (`purchase_order_number`, a quote accepted
    with one) is invoiced on QUOTE_PO_NET_TERMS_DAYS net terms quoting it, whatever it is. A
    subscription billed to a partner follows the partner's account: its purchase-order terms
    for every charge when it has them, its card otherwise. The organization's own account puts
    renewals and add-ons on its purchase-order terms when it has them (docs/billing.md); its
    checkout, seats and upgrades are paid by card."""
    account = payer_account_of(subscription)
    if subscription.purchase_order_number:
        return PayerCollection(account, True, subscription.purchase_order_number, settings.QUOTE_PO_NET_TERMS_DAYS)
    on_terms = account.collection_method == BillingAccount.Collection.INVOICE
    if on_terms and (subscription.billed_to_id or kind in ("renewal", "addon")):
        return PayerCollection(account, True, account.po_number, account.net_terms_days)
    return PayerCollection(account, False, "", 0)


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
    admin_membership_require(organization=organization, user=actor, doing="manage billing")
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


def billing_email_recipients(organization: Organization) -> list[str]:
    """Who billing emails go to: the organization's admins, and its billing address if set."""
    recipients = set(organization.memberships.filter(role="admin").values_list("user__email", flat=True))
    account = BillingAccount.objects.filter(organization=organization).first()
    if account is not None and account.billing_email:
        recipients.add(account.billing_email)
    return sorted(recipients)


def billing_email_admins(*, organization: Organization, subject: str, body: str) -> None:
    """A billing email to every admin of the organization (and its billing address), sent by
    the worker after the transaction commits."""
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


def payment_terms_request(*, organization: Organization, actor: User, po_number: str, billing_email: str) -> BillingAccount:
    """An admin asks to pay by invoice with a purchase order. The request is recorded on the
    billing account (pending until staff switch the collection method in the admin, or clear
    it to decline) and staff are told, once: a second request while one is pending, or once
    invoices are accepted, is refused with what was asked and when."""
    admin_membership_require(organization=organization, user=actor, doing="manage billing")
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


def staff_email(*, subject: str, body: str) -> None:
    """An email to every active staff user (what finance must do by hand), after commit."""
    staff = sorted(User.objects.filter(is_staff=True, is_active=True).values_list("email", flat=True))
    if staff:
        mail_queue(EmailMessage(subject=f"[{settings.SITE_NAME}] {subject}", body=body, to=staff))
