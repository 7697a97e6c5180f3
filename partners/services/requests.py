""""Ask <partner>": a customer's person asks their partner for something (more seats, another
edition, a product to try, an add-on), and the partner's inbox where its people answer.

Invariants: a request exists only through the customer's active link (no partner, no request);
the partner's admins and contact are emailed at once; an answer (done or declined, with a note)
is given once, by a person of the partner, audited, and emailed to the person who asked."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, Organization, User
from billing.formats import day
from catalog.models import Product

from ..exceptions import PartnerError
from ..models import Partner, PartnerLink, PartnerRequest
from .audit import audit_record
from .notify import (
    CUSTOMER_PARTNER_PATH,
    PARTNER_REQUESTS_PATH,
    notify_partner,
    notify_person,
    possessive,
    site_link,
)

Kind = PartnerRequest.Kind
MAX_SEATS_WANTED = 100_000


def request_describe(request: PartnerRequest) -> str:
    """What was asked, in words: "10 more seats of Tracker", "another edition of Tracker"."""
    product = request.product.name if request.product_id else ""
    if request.kind == Kind.SEATS:
        seats = f"{request.seats_wanted} more seat{'s' if request.seats_wanted != 1 else ''}" if request.seats_wanted else "more seats"
        return f"{seats} of {product}" if product else seats
    if request.kind == Kind.EDITION:
        return f"another edition of {product}" if product else "another edition"
    if request.kind == Kind.PRODUCT:
        return f"{product}, to try or buy" if product else "another product"
    if request.kind == Kind.ADDON:
        return f"an add-on of {product}" if product else "an add-on"
    return f"something about {product}" if product else "something else"


@transaction.atomic
def request_create(
    *,
    customer: Organization,
    actor: User,
    kind: str,
    product: Product | None = None,
    seats_wanted: int | None = None,
    message: str = "",
) -> PartnerRequest:
    """A person of `customer` (admin or member) asks its partner for something. Needs an active
    link (PartnerError otherwise, with a sentence); `kind` one of PartnerRequest.Kind; seats
    between 1 and 100,000 for a seats request (optional otherwise, ignored for other kinds).
    The partner's admins and contact are emailed; the request is audited on the customer's
    side."""
    if actor is None or not actor.is_authenticated or not Membership.objects.filter(organization=customer, user=actor).exists():
        raise PartnerError(f"Only a member of {customer.name} can ask its partner.")
    link = (
        PartnerLink.objects.select_related("partner__organization")
        .filter(customer=customer, status=PartnerLink.Status.ACTIVE)
        .first()
    )
    if link is None:
        raise PartnerError(f"{customer.name} has no partner: buy from the billing page, or choose a partner first.")
    if link.partner.status != Partner.Status.ACTIVE:
        raise PartnerError(
            f"{link.partner.organization.name} cannot take requests at the moment. Write to our support team, "
            "or end the link and buy directly from the billing page."
        )
    if kind not in Kind.values:
        raise PartnerError("Choose what you are asking for: more seats, another edition, a product, an add-on or something else.")
    if kind == Kind.SEATS:
        if seats_wanted is None:
            raise PartnerError("Enter how many more seats you need.")
        if not 1 <= seats_wanted <= MAX_SEATS_WANTED:
            raise PartnerError(f"Enter a number of seats from 1 to {MAX_SEATS_WANTED:,}.")
    else:
        seats_wanted = None
    message = message.strip()
    if len(message) > 1000:
        raise PartnerError("Keep the message under 1,000 characters.")
    if kind == Kind.OTHER and not message:
        raise PartnerError("Say what you need in the message.")
    partner = link.partner
    request = PartnerRequest.objects.create(
        link=link,
        partner=partner,
        customer=customer,
        product=product,
        kind=kind,
        seats_wanted=seats_wanted,
        message=message,
        requested_by=actor,
    )
    what = request_describe(request)
    partner_name = partner.organization.name
    audit_record(
        partner=partner,
        customer=customer,
        actor=actor,
        actor_side=PartnerLink.Side.CUSTOMER,
        action="request_created",
        summary=f"{customer.name} asked {partner_name} for {what}.",
        detail={"request": str(request.public_id), "kind": kind, "seats_wanted": seats_wanted},
    )
    note = f'\n\nTheir message:\n"{message}"' if message else ""
    notify_partner(
        partner=partner,
        subject=f"{customer.name} asks for {what}",
        body=(
            f"{customer.name}, your customer, asks {partner_name} for {what}.{note}\n\n"
            f"Answer it in your requests inbox (mark it done or declined, with a note the customer reads): "
            f"{site_link(PARTNER_REQUESTS_PATH, organization=partner.organization)}"
        ),
    )
    return request


@transaction.atomic
def request_answer(*, request: PartnerRequest, partner: Partner, actor: User, status: str, note: str = "") -> PartnerRequest:
    """A person of the partner marks an open request done or declined, with a note that is
    emailed to the person who asked (and audited). Answering twice is refused with a sentence;
    a declined request needs a note."""
    request = PartnerRequest.objects.select_for_update(of=("self",)).select_related("customer", "product", "requested_by").get(pk=request.pk)
    if request.partner_id != partner.pk:
        raise PartnerError("That request is not one of yours.")
    if not Membership.objects.filter(organization=partner.organization, user=actor).exists():
        raise PartnerError(f"Only a person of {partner.organization.name} can answer its requests.")
    if request.status != PartnerRequest.Status.OPEN:
        raise PartnerError(f"This request was already marked {request.get_status_display().lower()}.")
    if status not in (PartnerRequest.Status.DONE, PartnerRequest.Status.DECLINED):
        raise PartnerError("Mark the request done or declined.")
    note = note.strip()
    if len(note) > 1000:
        raise PartnerError("Keep the note under 1,000 characters.")
    if status == PartnerRequest.Status.DECLINED and not note:
        raise PartnerError("Say why you decline it: the note is sent to the customer.")
    request.status = status
    request.handled_by = actor
    request.handled_at = timezone.now()
    request.save(update_fields=["status", "handled_by", "handled_at"])
    what = request_describe(request)
    partner_name, customer = partner.organization.name, request.customer
    verb = "done" if status == PartnerRequest.Status.DONE else "declined"
    audit_record(
        partner=partner,
        customer=customer,
        actor=actor,
        actor_side=PartnerLink.Side.PARTNER,
        action=f"request_{verb}",
        summary=f"{partner_name} marked {possessive(customer.name)} request for {what} {verb}" + (f': "{note}"' if note else "."),
        detail={"request": str(request.public_id), "status": status},
    )
    if request.requested_by is not None and request.requested_by.is_active:
        note_text = f'\n\nTheir note:\n"{note}"' if note else ""
        notify_person(
            email=request.requested_by.email,
            subject=f"{partner_name} answered your request for {what}",
            body=(
                f"{partner_name} marked {possessive(customer.name)} request for {what} {verb} "
                f"(asked on {day(request.created_at)}).{note_text}\n\n"
                f"Your partner page: {site_link(CUSTOMER_PARTNER_PATH, organization=customer)}"
            ),
            reason=f"You receive this email because you asked {partner_name} for this as a member of {customer.name}.",
        )
    return request
