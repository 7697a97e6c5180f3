"""The one module that talks to Stripe (the only importer of `stripe`).

Stripe stores cards and moves money; Flywheel's ledger (invoices, payments, seats) lives in
our database. Every mutating call carries an idempotency key derived from the Flywheel object
it serves, and every Stripe error becomes a Flywheel error with a message a customer can read.
Locally and in tests the API base is localstripe (billing/localstripe_server.py).
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass
from typing import Any

import stripe
from django.conf import settings

from .exceptions import (
    CardDeclined,
    PaymentProcessorUnavailable,
    PaymentSetupInvalid,
    StripeObjectMissing,
    WebhookSignatureInvalid,
)


@functools.cache
def _client(api_key: str, api_base: str | None) -> stripe.StripeClient:
    addresses = {"api": api_base} if api_base else None
    return stripe.StripeClient(api_key, base_addresses=addresses, max_network_retries=0)  # type: ignore[arg-type]


def client() -> stripe.StripeClient:
    return _client(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE)


def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one Stripe call, turning Stripe's errors into Flywheel's."""
    try:
        return function(*args, **kwargs)
    except stripe.CardError as error:
        raise card_declined_from(error, read_charge=False) from None
    except (stripe.APIConnectionError, stripe.RateLimitError) as error:
        raise PaymentProcessorUnavailable(
            "Our payment processor did not answer. Nothing was charged twice: try again in a minute."
        ) from error
    except stripe.AuthenticationError as error:
        raise PaymentProcessorUnavailable(
            "Payments are not configured correctly on our side; our staff have been told."
        ) from error
    except stripe.InvalidRequestError as error:
        if error.http_status == 404 or error.code == "resource_missing":
            # Permanent: the object is not in this account (a Connect account's, deleted test
            # data, a dashboard test event), and asking again never finds it.
            raise StripeObjectMissing(error.user_message or "Stripe has no such object.") from error
        raise PaymentSetupInvalid(error.user_message or "The payment request was refused.") from error
    except stripe.StripeError as error:
        if error.http_status and error.http_status >= 500:
            raise PaymentProcessorUnavailable(
                "Our payment processor is having trouble. Nothing was charged twice: try again in a minute."
            ) from error
        raise PaymentSetupInvalid(error.user_message or "The payment request was refused.") from error


def _options(idempotency_key: str | None) -> dict[str, Any]:
    return {"idempotency_key": idempotency_key} if idempotency_key else {}


def _id(value: Any) -> str:
    """The id of a field Stripe sends either as an id or, expanded, as the object itself
    (`customer`, `payment_method`, `charge`, `payment_intent`, `latest_charge` ...)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    found = value.get("id") if isinstance(value, dict) else getattr(value, "id", None)
    return str(found or "")


def _field(value: Any, name: str) -> Any:
    """`value[name]` of a Stripe object or a plain dict (a parsed error body, an event's copy)."""
    if value is None or isinstance(value, str):
        return None
    if isinstance(value, dict):
        return value.get(name)
    return getattr(value, name, None)


def _read(function: Any, object_id: str) -> Any:
    """A read of one object by its id. Its 404 (StripeObjectMissing, from _call) names the id:
    the object is not in this account (a Connect account's, deleted test data), and asking
    again never finds it. The event handlers tell such an event "not ours" by it."""
    try:
        return _call(function, object_id)
    except StripeObjectMissing:
        raise StripeObjectMissing(f"Stripe has no {object_id}.") from None


def card_declined_from(error: stripe.CardError, *, read_charge: bool = True) -> CardDeclined:
    """The bank's refusal as Flywheel's CardDeclined, with what the card error carries: Stripe's
    generic code (card_declined), the issuer's decline_code (insufficient_funds ...) and the
    declined PaymentIntent (`payment_intent`, an object in Stripe's error body). localstripe
    names only the declined charge: with `read_charge` (a charge's decline), its PaymentIntent
    is read from it."""
    body = error.json_body.get("error", {}) if isinstance(error.json_body, dict) else {}
    body = body if isinstance(body, dict) else {}
    intent_id = _id(body.get("payment_intent"))
    if read_charge and not intent_id and _id(body.get("charge")):
        try:
            intent_id = charge_retrieve(_id(body.get("charge"))).payment_intent_id
        except (PaymentSetupInvalid, PaymentProcessorUnavailable):
            intent_id = ""  # the webhook links it later through the intent's metadata
    return CardDeclined(
        error.user_message or str(body.get("message") or "") or "Your card was declined.",
        code=str(error.code or body.get("code") or "card_declined"),
        decline_code=str(body.get("decline_code") or ""),
        payment_intent_id=intent_id,
    )


@dataclass(frozen=True)
class Card:
    payment_method_id: str
    customer_id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class SetupIntent:
    id: str
    status: str
    customer_id: str
    payment_method_id: str
    client_secret: str
    created: int = 0  # Unix seconds: which of two confirmed cards is the newer


@dataclass(frozen=True)
class PaymentIntent:
    id: str
    status: str
    amount: int
    currency: str
    customer_id: str
    client_secret: str
    metadata: dict[str, str]
    error_message: str
    # The most specific reason Stripe gives: the issuer's decline_code (insufficient_funds)
    # when there is one, else Stripe's code (card_declined, authentication failure ...).
    error_code: str


def customer_create(*, name: str, email: str, organization_id: str, idempotency_key: str) -> str:
    customer = _call(
        client().v1.customers.create,
        {"name": name, "email": email, "metadata": {"flywheel_organization": organization_id}},
        _options(idempotency_key),
    )
    return customer.id


def setup_intent_create(*, customer_id: str, idempotency_key: str) -> SetupIntent:
    intent = _call(
        client().v1.setup_intents.create,
        {"customer": customer_id, "usage": "off_session", "payment_method_types": ["card"]},
        _options(idempotency_key),
    )
    return _setup_intent(intent)


def setup_intent_retrieve(setup_intent_id: str) -> SetupIntent:
    """The SetupIntent as Stripe has it now; StripeObjectMissing when Stripe has none."""
    return _setup_intent(_read(client().v1.setup_intents.retrieve, setup_intent_id))


def _setup_intent(intent: Any) -> SetupIntent:
    return SetupIntent(
        id=intent.id,
        status=intent.status,
        customer_id=_id(intent.customer),
        payment_method_id=_id(intent.payment_method),  # an object when expanded
        client_secret=intent.client_secret or "",
        created=int(_field(intent, "created") or 0),
    )


def payment_method_attach(*, payment_method_id: str, customer_id: str) -> Card:
    """Attach a card to the customer (a no-op if it already is) and return its details."""
    method = _call(client().v1.payment_methods.retrieve, payment_method_id)
    if (method.customer or "") != customer_id:
        method = _call(
            client().v1.payment_methods.attach,
            payment_method_id,
            {"customer": customer_id},
            _options(f"attach-{payment_method_id}-{customer_id}"),
        )
    card = method.card
    return Card(
        payment_method_id=method.id,
        customer_id=customer_id,
        brand=str(card.brand or "card"),
        last4=str(card.last4 or ""),
        exp_month=int(card.exp_month or 0),
        exp_year=int(card.exp_year or 0),
    )


def payment_intent_charge(
    *, amount: int, currency: str, customer_id: str, payment_method_id: str, metadata: dict[str, str], idempotency_key: str
) -> PaymentIntent:
    """Create and confirm an off-session PaymentIntent. A decline raises CardDeclined with the
    issuer's decline code and the declined PaymentIntent's id."""

    def create(params: dict[str, Any], options: dict[str, Any]) -> Any:
        try:
            return client().v1.payment_intents.create(params, options)
        except stripe.CardError as error:
            raise card_declined_from(error) from None

    intent = _call(
        create,
        {
            "amount": amount,
            "currency": currency.lower(),
            "customer": customer_id,
            "payment_method": payment_method_id,
            "metadata": metadata,
            "confirm": True,
            "off_session": True,
        },
        _options(idempotency_key),
    )
    return _payment_intent(intent)


def payment_intent_retrieve(payment_intent_id: str) -> PaymentIntent:
    return _payment_intent(_call(client().v1.payment_intents.retrieve, payment_intent_id))


def payment_intents_of_customer(customer_id: str) -> list[PaymentIntent]:
    """The customer's most recent PaymentIntents (up to 100)."""
    try:
        page = _call(client().v1.payment_intents.list, {"customer": customer_id, "limit": 100})
    except PaymentSetupInvalid:
        # localstripe cannot filter lists by customer; Stripe can. Filter here instead.
        page = _call(client().v1.payment_intents.list, {"limit": 100})
    return [_payment_intent(intent) for intent in page.data if (intent.customer or "") == customer_id]


def payment_intent_parse(data: dict[str, Any]) -> PaymentIntent:
    """A PaymentIntent from its JSON as Stripe sends it (an event's data.object, an error's
    payment_intent), read the way every retrieved intent is."""
    return _payment_intent(stripe.PaymentIntent.construct_from(data, settings.STRIPE_SECRET_KEY))


def _payment_intent(intent: Any) -> PaymentIntent:
    error = _field(intent, "last_payment_error")
    error = error.to_dict() if hasattr(error, "to_dict") else dict(error or {})
    if not error:
        # No last_payment_error (older API versions, a canceled intent): the declined charge's
        # own reason, when the charge came expanded (latest_charge, or the old `charges` list).
        charge = _field(intent, "latest_charge")
        listed = _field(_field(intent, "charges"), "data") or []
        charge = charge if not isinstance(charge, str | None) else (listed[0] if listed else None)
        if charge is not None and _field(charge, "failure_code"):
            error = {
                "code": _field(charge, "failure_code"),
                "decline_code": _field(_field(charge, "outcome"), "reason") or "",
                "message": _field(charge, "failure_message") or "",
            }
    metadata = intent.metadata.to_dict() if hasattr(intent.metadata, "to_dict") else dict(intent.metadata or {})
    return PaymentIntent(
        id=intent.id,
        status=intent.status,
        amount=int(intent.amount),
        currency=str(intent.currency).upper(),
        customer_id=_id(intent.customer),
        client_secret=intent.client_secret or "",
        metadata={str(k): str(v) for k, v in metadata.items()},
        error_message=str(error.get("message") or ""),
        # Real Stripe puts the useful reason (insufficient_funds) in decline_code, beside the
        # generic code (card_declined).
        error_code=str(error.get("decline_code") or error.get("code") or ""),
    )


def key_is_live() -> bool:
    """Whether Flywheel talks to Stripe with a live-mode key (its events have livemode true)."""
    return str(settings.STRIPE_SECRET_KEY or "").startswith(("sk_live_", "rk_live_"))


def _signed_at(signature: str) -> int | None:
    for item in signature.split(","):
        name, _, value = item.partition("=")
        if name.strip() == "t":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def webhook_event_parse(*, payload: bytes, signature: str) -> dict[str, Any]:
    """The event a webhook delivered, once its Stripe-Signature is verified.

    Verifies with the SDK's own header check, then parses plain JSON: building Stripe objects
    only to turn them back into a dict cost more than the rest of the intake. The signature's
    time must lie within STRIPE_WEBHOOK_TOLERANCE of now, before or after: the SDK only
    refuses old ones, and a signature from the future is a replay waiting to happen or a
    clock to fix.
    """
    try:
        stripe.WebhookSignature.verify_header(
            payload.decode("utf-8"), signature, settings.STRIPE_WEBHOOK_SECRET, settings.STRIPE_WEBHOOK_TOLERANCE
        )
        event = json.loads(payload)
    except (stripe.SignatureVerificationError, ValueError) as error:
        raise WebhookSignatureInvalid(f"Webhook refused: {error}") from None
    signed_at = _signed_at(signature)
    ahead = (signed_at or 0) - time.time()
    if settings.STRIPE_WEBHOOK_TOLERANCE and ahead > settings.STRIPE_WEBHOOK_TOLERANCE:
        raise WebhookSignatureInvalid(
            f"Webhook refused: it is signed {ahead:.0f} seconds in the future, more than the "
            f"{settings.STRIPE_WEBHOOK_TOLERANCE} seconds allowed (check this server's clock)."
        )
    if not isinstance(event, dict):
        raise WebhookSignatureInvalid("Webhook refused: the body is not a JSON object.")
    return event


# Refunds, charges and reconciliation (billing/services/refunds.py and reconciliation.py) -----


@dataclass(frozen=True)
class Refund:
    id: str
    status: str
    amount: int
    currency: str
    payment_intent_id: str
    charge_id: str
    metadata: dict[str, str]
    failure_reason: str


@dataclass(frozen=True)
class Charge:
    id: str
    payment_intent_id: str
    amount: int
    amount_refunded: int
    currency: str


def _metadata(value: Any) -> dict[str, str]:
    metadata = value.to_dict() if hasattr(value, "to_dict") else dict(value or {})
    return {str(k): str(v) for k, v in metadata.items()}


def _refund(refund: Any) -> Refund:
    return Refund(
        id=refund.id,
        status=str(refund.status or ""),
        amount=int(refund.amount),
        currency=str(refund.currency).upper(),
        payment_intent_id=_id(getattr(refund, "payment_intent", None)),
        charge_id=_id(getattr(refund, "charge", None)),
        metadata=_metadata(getattr(refund, "metadata", None)),
        failure_reason=str(getattr(refund, "failure_reason", None) or ""),
    )


def refund_create(*, payment_intent_id: str, amount: int, metadata: dict[str, str], idempotency_key: str) -> Refund:
    """Refund `amount` minor units of a succeeded PaymentIntent. Stripe refuses (PaymentSetupInvalid)
    a refund of more than is left to refund."""
    refund = _call(
        client().v1.refunds.create,
        {"payment_intent": payment_intent_id, "amount": amount, "metadata": metadata},
        _options(idempotency_key),
    )
    return _refund(refund)


def refunds_of_payment_intent(payment_intent_id: str) -> list[Refund]:
    """Every refund of a PaymentIntent (up to 100: a payment is never refunded that often)."""
    page = _call(client().v1.refunds.list, {"payment_intent": payment_intent_id, "limit": 100})
    return [_refund(refund) for refund in page.data]


def charge_retrieve(charge_id: str) -> Charge:
    """The charge as Stripe has it now; StripeObjectMissing when Stripe has none (another
    account's charge, deleted test data)."""
    charge = _read(client().v1.charges.retrieve, charge_id)
    return Charge(
        id=charge.id,
        payment_intent_id=_id(getattr(charge, "payment_intent", None)),
        amount=int(charge.amount),
        amount_refunded=int(getattr(charge, "amount_refunded", 0) or 0),
        currency=str(charge.currency).upper(),
    )


def payment_intents_created_since(since_timestamp: int, *, max_pages: int = 100) -> list[PaymentIntent]:
    """Every PaymentIntent of the account created at or after `since_timestamp` (Unix seconds),
    following Stripe's pagination (100 a page, at most `max_pages` pages)."""
    params: dict[str, Any] = {"limit": 100, "created": {"gte": since_timestamp}}
    filter_here = False
    found: list[PaymentIntent] = []
    for _ in range(max_pages):
        try:
            page = _call(client().v1.payment_intents.list, params)
        except PaymentSetupInvalid:
            if filter_here:
                raise
            # localstripe cannot filter lists by creation time; Stripe can. Filter here instead.
            filter_here = True
            params.pop("created", None)
            page = _call(client().v1.payment_intents.list, params)
        found.extend(
            _payment_intent(intent)
            for intent in page.data
            if not filter_here or int(getattr(intent, "created", 0) or 0) >= since_timestamp
        )
        if not page.has_more or not page.data:
            break
        params["starting_after"] = page.data[-1].id
    return found
