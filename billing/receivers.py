"""Receivers for lower apps' signals, each one line that calls a service."""

from django.dispatch import receiver

from accounts.signals import organization_created

from .services import subscription_start_signup_trial


@receiver(organization_created, dispatch_uid="billing.start_signup_trial")
def start_signup_trial(sender, *, organization, user, intent, **kwargs):
    subscription_start_signup_trial(organization=organization, user=user, intent=intent)
