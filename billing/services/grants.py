"""What a paid add-on invoice grants, applied exactly once by invoices.invoice_mark_paid (or
at once on purchase-order terms): an add-on subscription granted, or a training pack.
And the signal that tells the apps above (the community's support tier) that an
organization's add-on grants on a product changed."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from catalog.models import AddOn, Edition

from ..entitlements import entitlements_invalidate
from ..models import AddOnSubscription, Invoice, Subscription, TrainingPack
from ..pricing import addon_edition_meets
from ..signals import addon_grants_changed


def addon_grants_changed_send(*, organization_id: int, product_id: int) -> None:
    """Tell receivers, once the current transaction commits, that what the organization's
    add-ons grant on the product changed (and drop its cached entitlements)."""
    entitlements_invalidate(organization_id=organization_id)
    transaction.on_commit(
        lambda: addon_grants_changed.send(sender=AddOn, organization_id=organization_id, product_id=product_id)
    )


def training_pack_grant(*, invoice: Invoice, actor=None) -> TrainingPack:
    """The training pack an add-on invoice for a one-off training add-on bought: its credits,
    valid for the add-on's training_valid_days from now. One per invoice (a second call returns
    the first pack). Call inside the caller's transaction, with the invoice locked."""
    existing = TrainingPack.objects.filter(invoice=invoice).first()
    if existing is not None:
        return existing
    addon = invoice.addon
    now = timezone.now()
    return TrainingPack.objects.create(
        organization_id=invoice.organization_id,
        addon=addon,
        invoice=invoice,
        credits=addon.training_credits,
        granted_at=now,
        expires_at=now + timedelta(days=addon.training_valid_days),
        created_by=actor,
    )


def addon_grants_changed_if_any(*, subscription: Subscription) -> None:
    """The base subscription's status changed (suspended, reactivated, ended): if it carries
    live add-ons, what they grant changed with it (addons_granting reads the base's status)."""
    if AddOnSubscription.objects.filter(subscription_id=subscription.pk, status__in=AddOnSubscription.LIVE_STATUSES).exists():
        addon_grants_changed_send(organization_id=subscription.organization_id, product_id=subscription.product_id)


def addon_invoice_apply(
    *, invoice: Invoice, actor: User | None = None, create: bool = True
) -> AddOnSubscription | TrainingPack | None:
    """Grant what an add-on invoice (kind addon) buys: a training pack for a one-off add-on
    (training_pack_grant), otherwise the add-on subscription on the invoice's base, created, or
    made active again when it was trialing (bought during its trial) or suspended (its
    purchase-order invoice overdue, now paid).

    Idempotent: called when the invoice is issued on purchase-order terms and again when it is
    paid, and a second call changes nothing. With `create` False (a purchase-order invoice paid
    by transfer: it was granted at issue), only what it granted is reactivated; an add-on that
    has ended since (removed, its base ended) is not started again by paying the debt. Call inside the caller's transaction, with the
    organization, the base subscription and the invoice locked (the billing lock order).
    """
    addon = invoice.addon
    if addon.pricing == AddOn.Pricing.ONE_OFF:
        pack = training_pack_grant(invoice=invoice, actor=actor) if create else TrainingPack.objects.filter(invoice=invoice).first()
        if pack is None:
            return None
        if pack.suspended_at is not None:
            pack.suspended_at = None
            pack.save(update_fields=["suspended_at"])
        addon_grants_changed_send(organization_id=invoice.organization_id, product_id=addon.product_id)
        return pack
    live = (
        AddOnSubscription.objects.select_for_update(of=("self",))
        .filter(subscription_id=invoice.subscription_id, addon=addon, status__in=AddOnSubscription.LIVE_STATUSES)
        .first()
    )
    if live is None:
        if not create:
            return None
        live = AddOnSubscription.objects.create(
            organization_id=invoice.organization_id,
            subscription_id=invoice.subscription_id,
            addon=addon,
            status=AddOnSubscription.Status.ACTIVE,
            started_by=actor,
        )
    elif live.status != AddOnSubscription.Status.ACTIVE:
        live.status = AddOnSubscription.Status.ACTIVE
        live.trial_ends_at = None
        live.suspended_at = None
        live.save(update_fields=["status", "trial_ends_at", "suspended_at", "updated_at"])
    else:
        return live
    addon_grants_changed_send(organization_id=invoice.organization_id, product_id=addon.product_id)
    return live


def addon_invoice_suspend(*, invoice: Invoice, when: datetime) -> bool:
    """Suspend what an overdue purchase-order add-on invoice granted, and only that: its add-on
    subscription (status suspended) or its training pack (suspended_at); never the base. Paying
    the invoice (addon_invoice_apply) reactivates it. Returns whether anything was suspended.
    Call with the organization and base subscription locked."""
    addon = invoice.addon
    if addon is None:
        return False
    if addon.pricing == AddOn.Pricing.ONE_OFF:
        changed = TrainingPack.objects.filter(invoice=invoice, suspended_at__isnull=True).update(suspended_at=when)
    else:
        live = (
            AddOnSubscription.objects.select_for_update(of=("self",))
            .filter(subscription_id=invoice.subscription_id, addon=addon, status=AddOnSubscription.Status.ACTIVE)
            .first()
        )
        changed = 0
        if live is not None:
            live.status = AddOnSubscription.Status.SUSPENDED
            live.suspended_at = when
            live.save(update_fields=["status", "suspended_at", "updated_at"])
            changed = 1
    if changed:
        addon_grants_changed_send(organization_id=invoice.organization_id, product_id=addon.product_id)
    return bool(changed)


def addons_end(*, subscription: Subscription, when: datetime, reason: str, addons=None) -> list[AddOnSubscription]:
    """End the base subscription's live add-ons (or those of `addons`, AddOn rows, among them)
    at once: status canceled, with the reason in words. Returns the ones ended. Call with the
    organization and the base subscription locked."""
    rows = AddOnSubscription.objects.select_for_update(of=("self",)).select_related("addon").filter(
        subscription_id=subscription.pk, status__in=AddOnSubscription.LIVE_STATUSES
    )
    if addons is not None:
        rows = rows.filter(addon__in=list(addons))
    ended = list(rows.order_by("pk"))
    for row in ended:
        row.status = AddOnSubscription.Status.CANCELED
        row.canceled_at = when
        row.cancel_at_period_end = False
        row.trial_ends_at = None
        row.cancel_reason = (reason or row.cancel_reason)[:240]
        row.save(update_fields=["status", "canceled_at", "cancel_at_period_end", "trial_ends_at", "cancel_reason", "updated_at"])
    if ended:
        addon_grants_changed_send(organization_id=subscription.organization_id, product_id=subscription.product_id)
    return ended



def addon_removal_reason_for_edition(addon: AddOn, edition: Edition) -> str:
    """Why an add-on goes when its base moves to `edition`: "Tracker Free does not include
    Premium support (it needs Standard or above)."."""
    return f"{edition} does not include {addon.name} (it needs {addon.min_edition.name} or above)."[:240]


# The reason an admin's removal is kept under (AddOnSubscription.cancel_reason); a removal the
# base's downgrade scheduled says which edition does not include the add-on instead.
REMOVED_BY_ADMIN = "Removed by an admin of the organization."


def addons_follow_edition(*, subscription: Subscription) -> list[AddOn]:
    """Schedule, or withdraw, the removal of the base's add-ons at its period end to match the
    edition it will have then (its pending edition, else its edition): an add-on that edition
    does not include (below its min_edition) is removed then, with the reason in words; one a
    withdrawn or changed downgrade no longer excludes is kept again (an admin's own removal
    stays). Returns the add-ons that will be removed by the edition. Call with the organization
    and the base subscription locked."""
    target = subscription.pending_edition or subscription.edition
    rows = list(
        AddOnSubscription.objects.select_for_update(of=("self",))
        .select_related("addon__min_edition")
        .filter(subscription_id=subscription.pk, status__in=AddOnSubscription.LIVE_STATUSES)
        .order_by("pk")
    )
    removed = []
    for row in rows:
        if not addon_edition_meets(row.addon, target):
            removed.append(row.addon)
            if not row.cancel_at_period_end:
                row.cancel_at_period_end = True
                row.cancel_reason = addon_removal_reason_for_edition(row.addon, target)
                row.save(update_fields=["cancel_at_period_end", "cancel_reason", "updated_at"])
        elif row.cancel_at_period_end and row.cancel_reason != REMOVED_BY_ADMIN:
            row.cancel_at_period_end = False
            row.cancel_reason = ""
            row.save(update_fields=["cancel_at_period_end", "cancel_reason", "updated_at"])
    return removed
