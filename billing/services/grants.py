"""What a paid add-on invoice grants, applied exactly once by invoices.invoice_mark_paid (or
at once on purchase-order terms): an add-on subscription granted, or a training pack.
And the signal that tells the apps above (the community's support tier) that an
organization's add-on grants on a product changed."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from catalog.models import AddOn

from ..models import Invoice, TrainingPack
from ..signals import addon_grants_changed


def addon_grants_changed_send(*, organization_id: int, product_id: int) -> None:
    """Tell receivers, once the current transaction commits, that what the organization's
    add-ons grant on the product changed."""
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
