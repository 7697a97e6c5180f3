"""Helpers of the billing page tests: an organization that has paid for Tracker by card."""

from __future__ import annotations

import re
from html import unescape

from django.utils import timezone

from billing.models import Subscription
from billing.services import billing_account, checkout, payments
from catalog.selectors import edition_get
from provisioning.models import Environment

from ..conftest import organization_on

OK_CARD = "4242424242424242"


def paid_organization(localstripe, *, seats=5, interval="month", members=1):
    """An organization on Tracker Standard, paid by card (its admin signs in)."""
    organization, admin = organization_on("standard", members=members)
    intent = billing_account.card_setup_start(organization=organization, actor=admin)
    localstripe.enter_card(intent.client_secret, OK_CARD)
    billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=intent.id)
    payment = checkout.subscription_checkout(
        subscription=organization.subscriptions.get(),
        actor=admin,
        edition=edition_get(product_code="tracker", edition_code="standard"),
        seats=seats,
        interval=interval,
    )
    payments.payment_charge(payment_id=payment.pk)
    subscription = Subscription.objects.get(organization=organization)
    assert subscription.status == Subscription.Status.ACTIVE
    return organization, admin, subscription


def visible_text(html: str) -> str:
    """The page's words as a person reads them: no tags, scripts or repeated spaces."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def workspace_ready(organization) -> Environment:
    """The organization's one workspace, provisioned (as the worker leaves it)."""
    environment = Environment.objects.get(organization=organization)
    environment.status = Environment.Status.ACTIVE
    environment.url = f"http://testserver/w/{environment.public_id}/"
    environment.active_at = timezone.now()
    environment.save()
    return environment
