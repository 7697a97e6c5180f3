"""allauth's signals, each handed to one service."""

import logging

from allauth.account.signals import email_confirmed, user_signed_up
from django.contrib import messages
from django.dispatch import receiver

from .exceptions import FlywheelError
from .middleware import ORGANIZATION_KEY
from .services import user_email_verified, user_signed_up_verified

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


@receiver(user_signed_up, dispatch_uid="accounts.user_signed_up")
def on_user_signed_up(sender, request, user, **kwargs):
    # Signing up through an invite link stores the invited address verified: the person joins
    # the organization now and is signed in, with no verification mail to wait for.
    try:
        organization = user_signed_up_verified(user=user)
    except FlywheelError as error:
        logger.warning("invite not accepted at signup for %s: %s", user.public_id, error.message)
        return
    if organization is not None and request is not None:
        request.session[ORGANIZATION_KEY] = str(organization.public_id)
        messages.success(request, f"Welcome to {organization.name}.")
