"""allauth's signals, each handed to one service."""

import logging

from allauth.account.signals import email_confirmed
from django.dispatch import receiver

from .exceptions import FlywheelError
from .services import user_email_verified

logger = logging.getLogger(__name__)


@receiver(email_confirmed, dispatch_uid="accounts.email_confirmed")
def on_email_confirmed(sender, request, email_address, **kwargs):
    # allauth has already stored the address as verified. If giving the user an organization
    # is refused (its own transaction rolled back), they land on the welcome page, which
    # offers to start or join one, instead of an error page.
    try:
        user_email_verified(user=email_address.user, email=email_address.email)
    except FlywheelError as error:
        logger.warning("no organization for %s after verification: %s", email_address.user.public_id, error.message)
