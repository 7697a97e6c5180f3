"""Buying on a linked customer's behalf: a partner's admin adds seats, changes the edition or
starts a trial of another product for its customer, through billing's services with
`on_behalf=` the partner (billing checks the subscription is billed to it, prices at its
discount, charges its card or its purchase-order terms). Each is audited once and told to the
customer's admins (what changed, not what the partner pays).

See partners/services/__init__.py for the order modules import in."""

from __future__ import annotations

from django.db import transaction
from django.urls import reverse

from accounts.models import User
from billing.formats import day, seats_text
from billing.models import Invoice, Payment, Subscription
from billing.services.seats import subscription_add_seats
from billing.services.subscriptions import product_try, subscription_change_edition
from catalog.models import Edition

from ..models import AuditEntry, Partner, PartnerLink
from ..selectors import link_for_partner, partner_for_member, tier_discount_bp
from .audit import audit_record
from .notify import notify_customer_admins, possessive, site_link


def _partner_admin_check(*, partner: Partner, actor: User, customer) -> Partner:
    """The actor is an admin of the partner, and the customer is linked to it (else the same
    CustomerNotLinked as for any unknown customer)."""
    partner = partner_for_member(user=actor, organization=partner.organization, admin=True)
    link_for_partner(partner=partner, customer_id=customer.public_id)
    return partner


def _recorded(action: str, request_key: str, *, partner: Partner, customer) -> bool:
    """Whether this request (a double click, a retry) was audited already, for this partner and
    this customer: billing's request keys are per organization, so a key reused for another
    customer is another purchase and gets its own entry."""
    return AuditEntry.objects.filter(
        partner=partner, customer=customer, action=action, detail__request_key=request_key
    ).exists()


def _billing_link(subscription: Subscription) -> str:
    return site_link(reverse("billing"), organization=subscription.organization)


def on_behalf_add_seats(
    *, partner: Partner, actor: User, subscription: Subscription, seats: int, request_key: str, quote_token: str | None
) -> Payment | Invoice:
    """Add `seats` seats to the customer's subscription billed to the partner, for the prorated
    price at the subscription's partner rate (the price the partner saw: `quote_token`). Paid by
    the partner's card (a payment, the seats granted when it succeeds) or on its purchase-order
    terms (the invoice; the seats granted at once). One request key, one purchase, one audit
    entry and one email to the customer's admins."""
    partner = _partner_admin_check(partner=partner, actor=actor, customer=subscription.organization)
    customer = subscription.organization
    with transaction.atomic():
        outcome = subscription_add_seats(
            subscription=subscription,
            actor=actor,
            seats=seats,
            request_key=request_key,
            quote_token=quote_token,
            on_behalf=partner.organization,
        )
        if _recorded("seats_added", request_key, partner=partner, customer=customer):
            return outcome
        invoice = outcome.invoice if isinstance(outcome, Payment) else outcome
        granted = isinstance(outcome, Invoice)
        product = subscription.product.name
        audit_record(
            partner=partner,
            customer=customer,
            actor=actor,
            actor_side=PartnerLink.Side.PARTNER,
            action="seats_added",
            summary=(
                f"{partner.organization.name} added {seats_text(seats)} to {product} "
                f"(invoice {invoice.number}, billed to {partner.organization.name})."
            ),
            detail={"request_key": request_key, "subscription": str(subscription.public_id), "seats": seats, "invoice": invoice.number},
        )
        new_limit = invoice.target_seats
        notify_customer_admins(
            customer=customer,
            subject=f"{partner.organization.name} added {seats_text(seats)} to {product}",
            body=(
                f"{partner.organization.name}, {possessive(customer.name)} partner, added {seats_text(seats)} to {product} "
                + (
                    f"on {day(invoice.issued_at)}: {product} now has {seats_text(new_limit)}."
                    if granted
                    else f"on {day(invoice.issued_at)}: {product} will have {seats_text(new_limit)} as soon as their payment goes through (usually within a minute)."
                )
                + f"\n\n{partner.organization.name} is billed for them. Your billing page: {_billing_link(subscription)}"
            ),
        )
    return outcome


def on_behalf_change_edition(
    *, partner: Partner, actor: User, subscription: Subscription, edition: Edition, request_key: str, quote_token: str | None
) -> Payment | Subscription:
    """Move the customer's subscription billed to the partner to another edition: a bigger one
    now for the prorated difference at the partner's rate (the price it saw), a smaller one at
    the period end. Audited once, told to the customer's admins."""
    partner = _partner_admin_check(partner=partner, actor=actor, customer=subscription.organization)
    customer = subscription.organization
    old = subscription.edition
    with transaction.atomic():
        outcome = subscription_change_edition(
            subscription=subscription,
            actor=actor,
            edition=edition,
            request_key=request_key,
            quote_token=quote_token,
            on_behalf=partner.organization,
        )
        if _recorded("edition_changed", request_key, partner=partner, customer=customer):
            return outcome
        product = subscription.product.name
        after = Subscription.objects.get(pk=subscription.pk)
        if edition.rank > old.rank:
            what = f"moved {product} from {old.name} to {edition.name}"
            told = (
                f"{product} is now on {edition.name}."
                if after.edition_id == edition.pk
                else f"{product} moves to {edition.name} as soon as their payment goes through (usually within a minute)."
            )
        elif after.pending_edition_id == edition.pk:
            what = f"scheduled {product} to move from {old.name} to {edition.name} on {day(after.current_period_end)}"
            told = f"{product} moves to {edition.name} on {day(after.current_period_end)}, at renewal; until then nothing changes."
        else:
            what = f"kept {product} on {edition.name} (the change waiting for renewal is withdrawn)"
            told = f"{product} stays on {edition.name}."
        audit_record(
            partner=partner,
            customer=customer,
            actor=actor,
            actor_side=PartnerLink.Side.PARTNER,
            action="edition_changed",
            summary=f"{partner.organization.name} {what}.",
            detail={"request_key": request_key, "subscription": str(subscription.public_id), "from": old.code, "to": edition.code},
        )
        notify_customer_admins(
            customer=customer,
            subject=f"{partner.organization.name} changed {product} to {edition.name}",
            body=(
                f"{partner.organization.name}, {possessive(customer.name)} partner, {what}. {told}\n\n"
                f"{partner.organization.name} is billed for it. Your billing page: {_billing_link(subscription)}"
            ),
        )
    return outcome


def on_behalf_start_trial(*, partner: Partner, actor: User, customer, product_code: str) -> Subscription:
    """Start a trial of another product for the linked customer (no money moves): the trial is
    billed to the partner when it is bought. Audited, told to the customer's admins."""
    partner = _partner_admin_check(partner=partner, actor=actor, customer=customer)
    with transaction.atomic():
        subscription = product_try(
            organization=customer,
            actor=actor,
            product_code=product_code,
            on_behalf=partner.organization,
            discount_bp=tier_discount_bp(partner.tier),
        )
        product = subscription.product.name
        ends = f", until {day(subscription.trial_ends_at)}" if subscription.trial_ends_at else ""
        audit_record(
            partner=partner,
            customer=customer,
            actor=actor,
            actor_side=PartnerLink.Side.PARTNER,
            action="trial_started",
            summary=f"{partner.organization.name} started a trial of {subscription.edition}{ends}.",
            detail={"subscription": str(subscription.public_id), "product": product_code},
        )
        notify_customer_admins(
            customer=customer,
            subject=f"{partner.organization.name} started a {product} trial for {customer.name}",
            body=(
                f"{partner.organization.name}, {possessive(customer.name)} partner, started a trial of {subscription.edition} "
                f"for {customer.name}{ends}. Your people can use it now; nothing is charged to {customer.name}.\n\n"
                f"If {customer.name} keeps it, {partner.organization.name} buys it and is billed for it. "
                f"Your billing page: {_billing_link(subscription)}"
            ),
        )
    return subscription
