"""Helpers of the billing tests: cards entered in localstripe, checkouts, paid organizations,
signed webhooks, the lifecycle clock moved by time-machine, and words as a person reads them."""

from __future__ import annotations

import io
import json
import os
import re
import sys
import time
from datetime import timedelta
from html import unescape

import stripe
import time_machine
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from billing import gateway
from billing.models import AddOnSubscription, Payment, Subscription
from billing.services import billing_account, checkout, lifecycle, payments
from catalog.models import AddOn
from catalog.selectors import edition_get
from provisioning.models import Environment

from ..conftest import organization_on

# localstripe's test cards.
OK_CARD = "4242424242424242"
DECLINED_AT_SETUP = "4000000000000002"
DECLINED_AT_CHARGE = "4000000000000341"
THREE_D_SECURE = "4000002500003155"


def card_enter(localstripe, organization, admin, number, **kwargs):
    """A card typed into the card form: the SetupIntent, and localstripe's confirmation."""
    intent = billing_account.card_setup_start(organization=organization, actor=admin)
    confirmed = localstripe.enter_card(intent.client_secret, number, **kwargs)
    return intent, confirmed


def card_set_up(localstripe, organization, admin, number):
    """A card entered and put on file."""
    intent, _ = card_enter(localstripe, organization, admin, number)
    billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=intent.id)


def standard_checkout(organization, admin, *, seats=5, interval="month"):
    """The checkout of Tracker Standard: its pending payment (not charged yet)."""
    subscription = organization.subscriptions.get()
    return checkout.subscription_checkout(
        subscription=subscription,
        actor=admin,
        edition=edition_get(product_code="tracker", edition_code="standard"),
        seats=seats,
        interval=interval,
    )


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


def paid_on_commit(localstripe, *, edition="standard", seats=5, interval="month", members=1):
    """An organization on Tracker `edition`, paid by card: the charge runs on commit, so the
    test needs the `eager_tasks` fixture (tests/billing/conftest.py)."""
    organization, admin = organization_on("standard", members=members)
    card_set_up(localstripe, organization, admin, OK_CARD)
    subscription = organization.subscriptions.get()
    checkout.subscription_checkout(
        subscription=subscription, actor=admin, edition=edition_get(product_code="tracker", edition_code=edition),
        seats=seats, interval=interval,
    )
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.ACTIVE
    return organization, admin, subscription


def tick_at(at):
    """The lifecycle clock, run once at `at`."""
    with time_machine.travel(at, tick=False):
        return lifecycle.lifecycle_tick()


def paid_payment(localstripe, organization, admin):
    """The organization's trial converted by a card charge: its succeeded payment."""
    intent, _ = card_enter(localstripe, organization, admin, OK_CARD)
    billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=intent.id)
    payment = standard_checkout(organization, admin)
    payments.payment_charge(payment_id=payment.pk)
    payment.refresh_from_db()
    return payment


def charged_but_unrecorded(localstripe, organization, admin):
    """Stripe charged the card, but the worker died before recording it: only webhooks can
    tell Flywheel now."""
    intent, _ = card_enter(localstripe, organization, admin, OK_CARD)
    billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=intent.id)
    payment = standard_checkout(organization, admin)
    Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.PROCESSING, attempts=1)
    charged = gateway.payment_intent_charge(
        amount=payment.amount_minor,
        currency=payment.currency,
        customer_id=organization.billing_account.stripe_customer_id,
        payment_method_id=payment.payment_method_id,
        metadata={"flywheel_payment": str(payment.public_id)},
        idempotency_key=f"flywheel-payment-{payment.public_id}",
    )
    payment.refresh_from_db()
    return payment, charged.id


def webhook_signed(event: dict, secret: str | None = None) -> tuple[bytes, str]:
    """The event as Stripe sends it: its body and its Stripe-Signature header."""
    payload = json.dumps(event).encode()
    timestamp = int(time.time())
    signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{payload.decode()}", secret or settings.STRIPE_WEBHOOK_SECRET)
    return payload, f"t={timestamp},v1={signature}"


def webhook_event(event_id: str, kind: str, intent_id: str) -> dict:
    """A Stripe event about a PaymentIntent, naming only its id."""
    return {"id": event_id, "object": "event", "type": kind, "data": {"object": {"id": intent_id, "object": "payment_intent"}}}


def webhook_post(client, payload, signature):
    return client.post(reverse("stripe_webhook"), data=payload, content_type="application/json", headers={"Stripe-Signature": signature})


def wsgi_call(path: str, *, method: str = "POST", body: bytes = b"", headers: dict | None = None):
    """One request through the production entry point (config.wsgi), without the test client."""
    from config.wsgi import application

    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "HTTP_HOST": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
        **{f"HTTP_{name.upper().replace('-', '_')}": value for name, value in (headers or {}).items()},
    }
    answer: dict = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"], answer["headers"] = int(status.split()[0]), dict(response_headers)

    chunks = application(environ, start_response)
    answer["body"] = b"".join(chunks)
    getattr(chunks, "close", lambda: None)()
    return answer


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


def addon_on(subscription, code="github", *, status=AddOnSubscription.Status.ACTIVE, **fields):
    """An add-on subscription on `subscription` (the commerce services create them in real life)."""
    addon = AddOn.objects.get(product=subscription.product, code=code)
    if status == AddOnSubscription.Status.TRIALING:
        fields.setdefault("trial_started_at", timezone.now())
        fields.setdefault("trial_ends_at", timezone.now() + timedelta(days=addon.trial_days or 14))
    return AddOnSubscription.objects.create(
        organization=subscription.organization, subscription=subscription, addon=addon, status=status, **fields
    )


def partner_org(localstripe=None, *, name="Northwind Partners", card=True, terms_po=""):
    """Another organization that pays for a customer (a channel partner, as billing sees one:
    billing never reads the partners app): its admin, and a card on file when `card`, or
    purchase-order terms when `terms_po` is given."""
    from accounts.models import Membership

    from ..factories import MembershipFactory, OrganizationFactory, UserFactory

    admin = UserFactory(email=f"partner-{os.urandom(3).hex()}@northwind.example")
    organization = OrganizationFactory(name=name, email_domain="", created_by=admin)
    MembershipFactory(organization=organization, user=admin, role=Membership.Role.ADMIN, source="signup")
    if card:
        card_set_up(localstripe, organization, admin, OK_CARD)
    if terms_po:
        from billing.models import BillingAccount

        billing_account.billing_account_of(organization)
        BillingAccount.objects.filter(organization=organization).update(collection_method="invoice", po_number=terms_po)
    return organization, admin


def on_invoice_terms(organization, po_number="ACME-STANDING"):
    """Staff approved `organization` for invoice terms: its billing account collects against
    purchase orders (`po_number` its standing one)."""
    from billing.models import BillingAccount

    billing_account.billing_account_of(organization)
    BillingAccount.objects.filter(organization=organization).update(collection_method="invoice", po_number=po_number)


def quoted_lines(edition, *, seats, interval="year", discount_bp=1500, addons=()):
    """A quote's lines as the partners app prices them: the edition, each add-on, the discount."""
    from billing.pricing import addon_quantity, addon_unit_price, discount_minor, unit_price
    from billing.services.invoices import ChargeLine, discount_lines

    unit = unit_price(edition, interval)
    lines = [ChargeLine(description=f"{edition}, {seats} seats, annual", quantity=seats, unit_amount_minor=unit, amount_minor=unit * seats)]
    for addon in addons:
        addon_unit = addon_unit_price(addon, interval)
        quantity = addon_quantity(addon, seat_limit=seats)
        lines.append(ChargeLine(description=addon.name, quantity=quantity, unit_amount_minor=addon_unit, amount_minor=addon_unit * quantity, addon=addon))
    gross = sum(line.amount_minor for line in lines)
    return lines + discount_lines(discount_minor(gross, discount_bp), discount_bp)


def partner_buys(localstripe, *, seats=5, discount_bp=1500, collection="card", po_number="", members=1, addons=()):
    """A customer on a Tracker trial whose partner bought Tracker Standard for it (annual, by the
    partner's card, or against a PO on the partner's terms): customer, its admin, partner, its admin,
    the subscription and the invoice. Needs `eager_tasks` for the card charge."""
    customer, customer_admin = organization_on("standard", members=members)
    partner, partner_admin = partner_org(localstripe, card=collection == "card", terms_po=po_number if collection == "invoice" else "")
    edition = edition_get(product_code="tracker", edition_code="standard")
    from billing.services.quoted import subscription_buy_quoted

    invoice = subscription_buy_quoted(
        organization=customer, edition=edition, seats=seats, interval="year", addons=list(addons),
        lines=quoted_lines(edition, seats=seats, discount_bp=discount_bp, addons=addons), actor=partner_admin,
        on_behalf=partner, discount_bp=discount_bp, collection=collection, po_number=po_number,
        request_key=f"quote:{os.urandom(4).hex()}:tracker",
    )
    subscription = Subscription.objects.get(organization=customer, product__code="tracker")
    return customer, customer_admin, partner, partner_admin, subscription, invoice
