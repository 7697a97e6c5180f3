"""Write tests/fixtures/stripe/: one Stripe object of each resource a webhook carries, the
event type -> resource map of every v1 event type the installed stripe-python knows, and the
few variants that matter to Flywheel (tests/fixtures/stripe/README.md).

    .venv/bin/python scripts/stripe_fixtures.py [--out tests/fixtures/stripe]

Everything comes from the installed stripe-python (MIT, Stripe), itself generated from
Stripe's OpenAPI spec:

- the event types: the `enabled_events` Literal of WebhookEndpointCreateParams (every type a
  webhook endpoint can subscribe to, "*" aside);
- the resource of each type: the object its v1 thin-event class fetches
  (stripe/events/_v1_*_event.py), else a table below for the few types that have no such
  class, else the type's longest dotted prefix that names a resource;
- each resource's shape: its class's field annotations, filled the way Stripe's OpenAPI
  fixtures are (every top-level field; a nullable one null; a nullable nested object with
  only its required fields; expandable fields as ids, as webhooks send them);
- the dispute statuses: the Literal of Dispute.status.

Run it again after upgrading stripe-python; tests/billing/services/test_webhooks_stripe_event_shapes.py fails
until the committed set matches the installed SDK. The output is deterministic.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import re
import types
import typing
from pathlib import Path

import stripe
from stripe._object_classes import OBJECT_CLASSES

ROOT = Path(__file__).resolve().parent.parent
EVENTS_DIR = Path(stripe.__file__).parent / "events"

# Types whose resource no thin-event class names (Stripe's event docs say what data.object is).
RESOURCE_OF_PREFIX = {
    "account.application": "application",
    "account.external_account": "bank_account",
    "customer.source": "card",
    "source.mandate_notification": "source_mandate_notification",
    "source.transaction": "source_transaction",
}

# Id prefixes Stripe uses; any other resource gets "obj", as Stripe's own fixtures do.
ID_PREFIX = {
    "account": "acct", "application": "ca", "application_fee": "fee", "bank_account": "ba",
    "card": "card", "charge": "ch", "checkout.session": "cs_test", "coupon": "co",
    "credit_note": "cn", "customer": "cus", "dispute": "dp", "file": "file", "invoice": "in",
    "invoiceitem": "ii", "mandate": "mandate", "payment_intent": "pi", "payment_link": "plink",
    "payment_method": "pm", "payout": "po", "person": "person", "plan": "plan", "price": "price",
    "product": "prod", "promotion_code": "promo", "quote": "qt", "refund": "re",
    "review": "prv", "setup_intent": "seti", "source": "src", "subscription": "sub",
    "subscription_schedule": "sub_sched", "tax_id": "txi", "tax_rate": "txr", "topup": "tu",
    "transfer": "tr", "fee_refund": "fr", "source_transaction": "srctxn",
    "source_mandate_notification": "srcmn", "issuing.authorization": "iauth",
    "issuing.card": "ic", "issuing.cardholder": "ich", "issuing.dispute": "idp",
    "issuing.transaction": "ipi", "radar.early_fraud_warning": "issfr",
    "financial_connections.account": "fca", "identity.verification_session": "vs",
}
# The same, by the class name a forward reference gives (an expandable field's type).
# (Several classes share a name, financial_connections.Account and Account say: the one
# directly under stripe wins, as that is the one a top-level resource refers to.)
ID_PREFIX_OF_CLASS = {
    name: ID_PREFIX[object_name]
    for object_name, (module, name) in sorted(OBJECT_CLASSES.items(), key=lambda item: item[1][0].count("."), reverse=True)
    if object_name in ID_PREFIX
}

CREATED = 1780000000  # 2026-05-28, a fixed moment: the set is the same on every run


def stripe_id(prefix: str, seed: str) -> str:
    """A Stripe-looking id (prefix + 24 characters) that no Stripe account holds."""
    return f"{prefix}_1Fx" + hashlib.sha256(seed.encode()).hexdigest()[:21]


def event_types() -> list[str]:
    """Every event type a webhook endpoint can subscribe to, as stripe-python lists them."""
    annotation = stripe.params.WebhookEndpointCreateParams.__annotations__["enabled_events"]
    (literal,) = typing.get_args(annotation)
    return sorted(kind for kind in typing.get_args(literal) if kind != "*")


def dispute_statuses() -> list[str]:
    return sorted(
        value
        for arm in typing.get_args(stripe.Dispute.__annotations__["status"])
        for value in typing.get_args(arm)
    )


def thin_event_resources() -> dict[str, str]:
    """type -> resource, from the v1 thin-event classes (what fetch_related_object returns)."""
    found = {}
    for path in sorted(EVENTS_DIR.glob("_v1_*_event.py")):
        source = path.read_text()
        kind = re.search(r'LOOKUP_TYPE = \(?\s*"v1\.([^"]+)"', source)
        returned = re.search(r'def fetch_related_object\(self\) -> "(\w+)"', source)
        if not kind or not returned:
            continue
        imported = re.search(rf"from (stripe[\w.]*) import {returned.group(1)}\b", source)
        if imported:
            cls = getattr(importlib.import_module(imported.group(1)), returned.group(1))
            found[kind.group(1)] = cls.OBJECT_NAME
    return found


def resource_of(kind: str, thin: dict[str, str]) -> str:
    if kind in thin:
        return thin[kind]
    parts = kind.split(".")
    for length in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:length])
        if prefix in RESOURCE_OF_PREFIX:
            return RESOURCE_OF_PREFIX[prefix]
        if prefix in OBJECT_CLASSES:
            return prefix
    raise SystemExit(f"no resource for event type {kind}: add it to RESOURCE_OF_PREFIX")


def _value(annotation, field: str, seed: str, depth: int, required_only: bool):
    """A value of `annotation` the way Stripe's OpenAPI fixtures fill one."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args:
            inner = [arg for arg in args if arg is not type(None)]
            nested = [arg for arg in inner if isinstance(arg, type) and issubclass(arg, stripe.StripeObject)]
            if nested and len(inner) == 1 and depth == 0:
                return _object(nested[0], seed=f"{seed}.{field}", depth=depth + 1, required_only=True)
            return None
        literals = [arg for arg in args if typing.get_origin(arg) is typing.Literal]
        if literals:
            return typing.get_args(literals[0])[0]
        references = [arg for arg in args if isinstance(arg, typing.ForwardRef)]
        if references:  # an expandable field: webhooks send the id
            return stripe_id(ID_PREFIX_OF_CLASS.get(references[0].__forward_arg__, "obj"), f"{seed}.{field}")
        return _value(args[0], field, seed, depth, required_only)
    if origin is typing.Literal:
        return args[0]
    if origin in (list, typing.List):  # noqa: UP006 - both spellings occur
        return []
    if origin in (dict, typing.Dict):  # noqa: UP006
        return {}
    if isinstance(annotation, typing.ForwardRef):
        return stripe_id(ID_PREFIX_OF_CLASS.get(annotation.__forward_arg__, "obj"), f"{seed}.{field}")
    if isinstance(annotation, type) and issubclass(annotation, stripe.StripeObject):
        if not getattr(annotation, "__annotations__", None) or depth > 4:
            return {}
        return _object(annotation, seed=f"{seed}.{field}", depth=depth + 1, required_only=required_only)
    if isinstance(origin, type) and issubclass(origin, stripe.StripeObject):  # UntypedStripeObject[str]: metadata
        return {}
    if annotation is bool:
        return False
    if annotation is int:
        if field == "created" or field.endswith("_at") or field in ("due_by", "arrival_date", "available_on"):
            return CREATED
        return 1000 if "amount" in field else 1
    if annotation is float:
        return 1.0
    if annotation is str:
        return {"currency": "usd", "country": "US", "email": "jenny.rosen@example.com", "name": "Jenny Rosen"}.get(field, field)
    return None


def _literals(annotation) -> list:
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    return [value for arm in typing.get_args(annotation) for value in _literals(arm)]


def _object(cls, *, seed: str, depth: int, required_only: bool) -> dict:
    """An object of `cls`. An object with a `type` (a payment method, its details) is a card
    when it can be one, and carries the hash of that type only, as Stripe sends it."""
    annotations = {
        field: annotation
        for field, annotation in vars(cls).get("__annotations__", {}).items()
        if not field.startswith("_") and typing.get_origin(annotation) is not typing.ClassVar
    }
    kinds = _literals(annotations.get("type"))
    kind = "card" if "card" in kinds else (kinds[0] if kinds else None)
    fields = {} if kind is None else {"type": kind}
    for field, annotation in annotations.items():
        if field in fields or (field in kinds and field != kind) or field == "deleted":
            continue  # (`deleted` is sent only on a deleted object's stub)
        nullable = typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in typing.get_args(annotation)
        if required_only and nullable:
            continue
        # Stripe types metadata as nullable, yet always sends a hash.
        fields[field] = {} if field == "metadata" else _value(annotation, field, seed, depth, required_only)
    return fields


def resource(name: str) -> dict:
    module, class_name = OBJECT_CLASSES[name]
    cls = getattr(importlib.import_module(module), class_name)
    obj = _object(cls, seed=name, depth=0, required_only=False)
    obj["object"] = name
    if "id" in obj:
        obj["id"] = stripe_id(ID_PREFIX.get(name, "obj"), name)
    if "livemode" in obj:
        obj["livemode"] = False
    return dict(sorted(obj.items()))


def payment_story(resources: dict[str, dict]) -> None:
    """Link the payment objects as one real payment's are: the customer's card, the intent
    that charged it, the charge, its refund and its dispute name each other. (Their ids
    exist in no Stripe account.)"""
    customer, card, intent, charge = (resources[name]["id"] for name in ("customer", "payment_method", "payment_intent", "charge"))
    resources["payment_method"].update(customer=customer, type="card")
    resources["payment_intent"].update(
        customer=customer, payment_method=card, latest_charge=charge, status="succeeded",
        amount_received=1000, amount_capturable=0, last_payment_error=None, next_action=None,
        payment_method_types=["card"],
    )
    resources["charge"].update(
        customer=customer, payment_method=card, payment_intent=intent, status="succeeded",
        paid=True, captured=True, amount_refunded=0, refunded=False,
    )
    resources["refund"].update(charge=charge, payment_intent=intent, status="succeeded", reason="requested_by_customer")
    resources["dispute"].update(charge=charge, payment_intent=intent, status="needs_response", reason="fraudulent")
    resources["setup_intent"].update(customer=customer, payment_method_types=["card"], usage="off_session")


def variants(resources: dict[str, dict]) -> list[dict]:
    """The shapes Flywheel's handlers must get right, beyond one event of each type. Each names
    an event type, what to change in its data.object ("object", merged; {"$resource": name}
    puts in a copy of that resource) and at the top of the event ("event")."""
    connect_account = stripe_id("acct", "connected account")
    found = [
        {
            "name": "connect_payment_intent_succeeded",
            "why": "A connected account's event: Stripe adds `account`; reading the intent back without that account answers 404.",
            "type": "payment_intent.succeeded",
            "event": {"account": connect_account},
            "object": {"status": "succeeded", "amount_received": 1000, "on_behalf_of": connect_account},
        },
        {
            "name": "payment_failed_insufficient_funds",
            "why": "A declined charge as Stripe reports it: the useful reason in last_payment_error.decline_code, the card as a nested object.",
            "type": "payment_intent.payment_failed",
            "object": {
                "status": "requires_payment_method",
                "amount_received": 0,
                "payment_method": None,
                "customer": resources["customer"]["id"],
                "metadata": {"flywheel_payment": "00000000-0000-4000-8000-000000000017"},
                "last_payment_error": {
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": "insufficient_funds",
                    "message": "Your card has insufficient funds.",
                    "charge": resources["charge"]["id"],
                    "doc_url": "https://stripe.com/docs/error-codes/card-declined",
                    "payment_method": {"$resource": "payment_method"},
                },
            },
        },
        {
            "name": "setup_intent_succeeded",
            "why": "A card the customer confirmed (3-D Secure included) after the browser went away.",
            "type": "setup_intent.succeeded",
            "object": {
                "status": "succeeded",
                "customer": resources["customer"]["id"],
                "payment_method": resources["payment_method"]["id"],
                "usage": "off_session",
                "next_action": None,
                "last_setup_error": None,
            },
        },
        {
            "name": "nul_in_metadata",
            "why": "A \\u0000 escape in a string, which PostgreSQL's jsonb refuses.",
            "type": "customer.updated",
            "object": {"metadata": {"note": "before\u0000after"}},
        },
        {
            "name": "lone_surrogate_in_name",
            "why": "An escaped lone surrogate (half an emoji), which PostgreSQL's jsonb refuses too.",
            "type": "product.updated",
            "object": {"name": "Tracker \ud83d"},
        },
    ]
    for status in dispute_statuses():
        kind = {
            "needs_response": "charge.dispute.created",
            "warning_needs_response": "charge.dispute.created",
            "won": "charge.dispute.closed",
            "lost": "charge.dispute.closed",
            "warning_closed": "charge.dispute.closed",
            "prevented": "charge.dispute.closed",
        }.get(status, "charge.dispute.updated")
        found.append(
            {
                "name": f"dispute_{status}",
                "why": f"A dispute whose status is {status}.",
                "type": kind,
                "object": {"status": status, "charge": resources["charge"]["id"], "reason": "fraudulent",
                           "evidence_details": {"due_by": CREATED + 7 * 86400, "has_evidence": False, "past_due": False, "submission_count": 0}},
            }
        )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "stripe")
    arguments = parser.parse_args()
    thin = thin_event_resources()
    kinds = event_types()
    type_resources = {kind: resource_of(kind, thin) for kind in kinds}
    names = sorted(set(type_resources.values()) | {"payment_method", "customer", "charge"})
    resources = {name: resource(name) for name in names}
    payment_story(resources)
    arguments.out.mkdir(parents=True, exist_ok=True)
    # One resource a line: small, and a regeneration's diff says which resource changed.
    lines = [f"{json.dumps(name)}: {json.dumps(resources[name], sort_keys=True)}" for name in names]
    (arguments.out / "resources.json").write_text("{\n" + ",\n".join(lines) + "\n}\n")
    index = {
        "source": {
            "package": "stripe (stripe-python)",
            "version": stripe.VERSION,
            "api_version": stripe.api_version,
            "licence": "MIT, Stripe, Inc.",
            "generator": "scripts/stripe_fixtures.py",
        },
        "types": type_resources,
        "dispute_statuses": dispute_statuses(),
        "variants": variants(resources),
    }
    (arguments.out / "events.json").write_text(json.dumps(index, indent=1, ensure_ascii=True) + "\n")
    print(f"{len(kinds)} event types over {len(names)} resources, {len(index['variants'])} variants, written to {arguments.out}")


if __name__ == "__main__":
    main()
