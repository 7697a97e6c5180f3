"""Receivers for lower apps' signals, each one line that calls a service."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts.models import Invite, Membership
from accounts.signals import organization_created
from catalog.models import AddOn, Edition, Product

from .entitlements import entitlements_invalidate, entitlements_invalidate_catalog
from .models import AddOnSubscription, Invoice, Subscription, TrainingPack
from .services.subscriptions import subscription_start_signup_trial


@receiver(organization_created, dispatch_uid="billing.start_signup_trial")
def start_signup_trial(sender, *, organization, user, intent, **kwargs):
    subscription_start_signup_trial(organization=organization, user=user, intent=intent)


# The entitlements cache (billing/entitlements.py): every change that can alter an
# organization's answer forgets it. Invoices count because paying one for added seats raises
# the seat limit with a queryset update, which sends no signal of its own.
@receiver(post_save, sender=Subscription, dispatch_uid="billing.entitlements.subscription_saved")
@receiver(post_delete, sender=Subscription, dispatch_uid="billing.entitlements.subscription_deleted")
@receiver(post_save, sender=Invoice, dispatch_uid="billing.entitlements.invoice_saved")
@receiver(post_save, sender=Membership, dispatch_uid="billing.entitlements.membership_saved")
@receiver(post_delete, sender=Membership, dispatch_uid="billing.entitlements.membership_deleted")
@receiver(post_save, sender=Invite, dispatch_uid="billing.entitlements.invite_saved")
@receiver(post_delete, sender=Invite, dispatch_uid="billing.entitlements.invite_deleted")
def organization_entitlements_changed(sender, *, instance, **kwargs):
    entitlements_invalidate(organization_id=instance.organization_id)


# What add-ons grant is part of the answer (features, the add-ons' list).
@receiver(post_save, sender=AddOnSubscription, dispatch_uid="billing.entitlements.addon_subscription_saved")
@receiver(post_delete, sender=AddOnSubscription, dispatch_uid="billing.entitlements.addon_subscription_deleted")
@receiver(post_save, sender=TrainingPack, dispatch_uid="billing.entitlements.training_pack_saved")
@receiver(post_delete, sender=TrainingPack, dispatch_uid="billing.entitlements.training_pack_deleted")
def organization_addons_changed(sender, *, instance, **kwargs):
    entitlements_invalidate(organization_id=instance.organization_id)


@receiver(post_save, sender=Edition, dispatch_uid="billing.entitlements.edition_saved")
@receiver(post_save, sender=Product, dispatch_uid="billing.entitlements.product_saved")
@receiver(post_save, sender=AddOn, dispatch_uid="billing.entitlements.addon_saved")
def catalog_entitlements_changed(sender, **kwargs):
    entitlements_invalidate_catalog()
