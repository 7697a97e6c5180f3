"""allauth's signals, each handed to one service."""

from allauth.account.signals import email_confirmed
from django.dispatch import receiver

from .services import user_email_verified


@receiver(email_confirmed, dispatch_uid="accounts.email_confirmed")
def on_email_confirmed(sender, request, email_address, **kwargs):
    user_email_verified(user=email_address.user, email=email_address.email)
