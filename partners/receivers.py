"""Receivers for lower apps' signals, each one line that calls a service."""

from django.dispatch import receiver

from accounts.signals import organization_created

from .services.links import partner_invites_claim


@receiver(organization_created, dispatch_uid="partners.invites_claim")
def invites_claim(sender, *, organization, user, intent, **kwargs):
    partner_invites_claim(organization=organization, user=user)
