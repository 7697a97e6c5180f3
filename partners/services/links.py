"""A partner's consented link to a customer organization, for both sides.

    partner invites   -> invited   -> customer admin accepts / declines, partner withdraws
    customer requests -> requested -> partner admin accepts / declines, customer withdraws
    active            -> ended     (either side, or staff)

Invariants: a customer has at most one active partner (a database constraint; accepting a second
is refused with a sentence: end the current link first), at most one live link per pair (another
constraint); every transition is audited in its transaction and emails the other side; only an
admin of the side that acts may act. Ending a link hands every subscription billed to the partner
back to the customer at its next renewal (billing's subscription_payer_end): the partner keeps
the current term it paid for, nothing lapses and nothing is billed twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, Organization, User
from accounts.services import organization_lock
from billing.formats import day
from billing.models import Subscription
from billing.services.payer import subscription_payer_end

from ..exceptions import PartnerError
from ..models import AuditEntry, Partner, PartnerLink
from ..selectors import tier_name
from .audit import audit_record
from .notify import (
    CUSTOMER_DIRECTORY_PATH,
    CUSTOMER_PARTNER_PATH,
    PARTNER_HOME_PATH,
    notify_customer_admins,
    notify_partner,
    notify_person,
    possessive,
    site_link,
)

Side = PartnerLink.Side
Status = PartnerLink.Status
INVITE_EMAILED = "link_invite_emailed"

WHAT_A_PARTNER_SEES = (
    "A partner sees your organization's name, your subscriptions (product, edition, seats used of "
    "the limit, renewal dates), invoices it pays for you, its quotes and your requests to it. It "
    "never sees your people's names or addresses, nor your community posts or survey answers."
)


def _is_admin(user: User, organization: Organization) -> bool:
    return (
        user is not None
        and user.is_authenticated
        and Membership.objects.filter(organization=organization, user=user, role=Membership.Role.ADMIN).exists()
    )


def _require_admin(user: User, organization: Organization, doing: str) -> None:
    if not _is_admin(user, organization):
        raise PartnerError(f"Only an admin of {organization.name} can {doing}.")


def _lock(link: PartnerLink) -> PartnerLink:
    return PartnerLink.objects.select_for_update(of=("self",)).select_related("partner__organization", "customer").get(pk=link.pk)


def _partner_usable(partner: Partner) -> None:
    if partner.status != Partner.Status.ACTIVE:
        raise PartnerError(f"{partner.organization.name} is not an active partner at the moment.")


def _clean_message(message: str) -> str:
    return message.strip()[:1000]


@dataclass(frozen=True)
class InviteOutcome:
    """What an invite did: a pending link for an organization the address administers, or an
    email asking the person to sign up (`link` None): the link is made when their organization is."""

    link: PartnerLink | None
    email: str


def _admin_organization_of(email: str, *, partner: Partner) -> Organization | None:
    """The organization the address administers, other than the partner's own (the first one
    they joined, when several); the partner's own when it is the only one."""
    memberships = (
        Membership.objects.select_related("organization")
        .filter(user__email__iexact=email, role=Membership.Role.ADMIN)
        .order_by("created_at", "pk")
    )
    membership = memberships.exclude(organization_id=partner.organization_id).first() or memberships.first()
    return membership.organization if membership else None


def _invite_email_customer(link: PartnerLink) -> None:
    partner_name = link.partner.organization.name
    note = f'\n\nTheir message:\n"{link.message}"' if link.message else ""
    notify_customer_admins(
        customer=link.customer,
        subject=f"{partner_name} invites {link.customer.name} to work with them",
        body=(
            f"{partner_name}, a {tier_label(link.partner)} partner, asks to manage {possessive(link.customer.name)} "
            f"subscriptions: quote and buy them for you, add seats, renew, and be billed for them.{note}\n\n"
            f"{WHAT_A_PARTNER_SEES}\n\n"
            f"Nothing changes until an admin of {link.customer.name} accepts. Accept or decline: "
            f"{site_link(CUSTOMER_PARTNER_PATH, organization=link.customer)}"
        ),
    )


def tier_label(partner: Partner) -> str:
    return tier_name(partner.tier)


@transaction.atomic
def link_invite(*, partner: Partner, actor: User, email: str, message: str = "") -> InviteOutcome:
    """A partner's admin invites a customer by its admin's address. When the address is an
    admin of an organization, that organization gets a pending (invited) link and its admins an
    email to accept or decline. Otherwise the person is emailed an invitation to sign up, and the
    link is made for the organization they create (partner_invites_claim). Refused: the
    organization already linked to this partner (active or pending), the partner's own
    organization, an address that is not an address."""
    _require_admin(actor, partner.organization, "invite customers")
    _partner_usable(partner)
    email = email.strip().lower()
    try:
        validate_email(email)
    except DjangoValidationError:
        raise PartnerError("Enter the email address of an admin of your customer's organization.") from None
    message = _clean_message(message)
    customer = _admin_organization_of(email, partner=partner)
    partner_name = partner.organization.name
    if customer is None:
        audit_record(
            partner=partner,
            customer=None,
            actor=actor,
            actor_side=Side.PARTNER,
            action=INVITE_EMAILED,
            summary=f"{partner_name} invited {email} to sign up and link their organization.",
            detail={"email": email, "message": message},
        )
        note = f'\n\nTheir message:\n"{message}"' if message else ""
        notify_person(
            email=email,
            subject=f"{partner_name} invites you to {_site_name()}",
            body=(
                f"{partner_name}, a {_site_name()} partner, would like to manage your organization's "
                f"{_site_name()} subscriptions: quote and buy them for you, add seats, renew, and be "
                f"billed for them.{note}\n\n"
                f"Sign up with this address ({email}): once your organization exists, {possessive(partner_name)} "
                f"invitation waits for you on your partner page, to accept or decline. Sign up: "
                f"{site_link(reverse('signup_entry'))}\n\n{WHAT_A_PARTNER_SEES}"
            ),
            reason=f"You receive this email because {actor.email} of {partner_name} entered your address.",
        )
        return InviteOutcome(link=None, email=email)
    if customer.pk == partner.organization_id:
        raise PartnerError(f"{customer.name} is your own organization: invite a customer's admin.")
    existing = PartnerLink.objects.filter(partner=partner, customer=customer, status__in=PartnerLink.LIVE_STATUSES).first()
    if existing is not None:
        raise PartnerError(
            f"{customer.name} is already your customer."
            if existing.status == Status.ACTIVE
            else f"{customer.name} asked to work with you: accept their request on your dashboard."
            if existing.status == Status.REQUESTED
            # Never the organization's name before it accepts: an invite does not tell a partner
            # which organization an address runs.
            else f"You already invited {email}; the invitation waits for an answer."
        )
    link = _link_create(partner=partner, customer=customer, actor=actor, status=Status.INVITED, email=email, message=message)
    audit_record(
        partner=partner,
        customer=customer,
        actor=actor,
        actor_side=Side.PARTNER,
        action="link_invited",
        summary=f"{partner_name} invited {customer.name} to link as its customer.",
        detail={"link": str(link.public_id)},
    )
    _invite_email_customer(link)
    return InviteOutcome(link=link, email=email)


def _site_name() -> str:
    return settings.SITE_NAME


def _link_create(*, partner: Partner, customer: Organization, actor: User, status: str, email: str, message: str) -> PartnerLink:
    try:
        with transaction.atomic():
            return PartnerLink.objects.create(
                partner=partner,
                customer=customer,
                status=status,
                invited_email=email,
                message=message,
                created_by=actor if actor.is_authenticated else None,
            )
    except IntegrityError:
        raise PartnerError(f"{customer.name} and {partner.organization.name} already have a link in progress.") from None


@transaction.atomic
def partner_invites_claim(*, organization: Organization, user: User) -> list[PartnerLink]:
    """The invites partners emailed to `user`'s address before they had an organization become
    pending links of the organization they just created (one per partner, once)."""
    entries = AuditEntry.objects.filter(
        action=INVITE_EMAILED, detail__email=user.email.lower(), partner__status=Partner.Status.ACTIVE
    ).select_related("partner__organization")
    links = []
    for entry in entries:
        partner = entry.partner
        if PartnerLink.objects.filter(partner=partner, customer=organization).exists():
            continue
        link = PartnerLink.objects.create(
            partner=partner,
            customer=organization,
            status=Status.INVITED,
            invited_email=user.email.lower(),
            message=entry.detail.get("message", ""),
            created_by=entry.actor,
        )
        audit_record(
            partner=partner,
            customer=organization,
            actor=entry.actor,
            actor_side=Side.PARTNER,
            action="link_invited",
            summary=f"{partner.organization.name} invited {organization.name} to link as its customer.",
            detail={"link": str(link.public_id), "emailed_before_signup": True},
        )
        links.append(link)
    for link in links:
        _invite_email_customer(link)
    return links


@transaction.atomic
def link_request(*, customer: Organization, partner: Partner, actor: User, message: str = "") -> PartnerLink:
    """A customer's admin asks a partner (from the directory) to manage its subscriptions: a
    pending (requested) link; the partner's admins are emailed to accept or decline. Refused when
    the customer already has an active partner (end that link first), a pending link with this
    partner, or the partner is not listed and active."""
    _require_admin(actor, customer, "choose a partner")
    if partner.status != Partner.Status.ACTIVE or not partner.listed:
        raise PartnerError("That partner is not in the directory.")
    if partner.organization_id == customer.pk:
        raise PartnerError(f"{customer.name} cannot be its own partner.")
    current = PartnerLink.objects.filter(customer=customer, status=Status.ACTIVE).select_related("partner__organization").first()
    if current is not None:
        raise PartnerError(
            f"{customer.name} already works with {current.partner.organization.name}: end that link first, "
            "then ask another partner."
        )
    existing = PartnerLink.objects.filter(partner=partner, customer=customer, status__in=PartnerLink.PENDING_STATUSES).first()
    if existing is not None:
        raise PartnerError(
            f"You already asked {partner.organization.name}; they have not answered yet."
            if existing.status == Status.REQUESTED
            else f"{partner.organization.name} already invited you: accept their invitation instead."
        )
    message = _clean_message(message)
    link = _link_create(partner=partner, customer=customer, actor=actor, status=Status.REQUESTED, email="", message=message)
    audit_record(
        partner=partner,
        customer=customer,
        actor=actor,
        actor_side=Side.CUSTOMER,
        action="link_requested",
        summary=f"{customer.name} asked {partner.organization.name} to become its partner.",
        detail={"link": str(link.public_id)},
    )
    note = f'\n\nTheir message:\n"{message}"' if message else ""
    notify_partner(
        partner=partner,
        subject=f"{customer.name} asks {partner.organization.name} to manage its subscriptions",
        body=(
            f"{customer.name} picked {partner.organization.name} from the {_site_name()} partner "
            f"directory and asks you to manage its subscriptions.{note}\n\n"
            f"Accept or decline: {site_link(PARTNER_HOME_PATH, organization=partner.organization)}"
        ),
    )
    return link


def _acting_side(link: PartnerLink) -> tuple[str, Organization]:
    """Who answers a pending link: the customer answers an invite, the partner a request."""
    if link.status == Status.INVITED:
        return Side.CUSTOMER, link.customer
    return Side.PARTNER, link.partner.organization


@transaction.atomic
def link_accept(*, link: PartnerLink, actor: User) -> PartnerLink:
    """The side that was asked accepts: an invite by an admin of the customer, a request by an
    admin of the partner. The link becomes active. Refused when the customer already has another
    active partner (end that link first), when the link is no longer pending, or when the
    partner is not active. Locks the customer organization first (so two partners' links
    accepted at once are answered one after the other), then the link."""
    organization_lock(link.customer)
    link = _lock(link)
    if link.status not in PartnerLink.PENDING_STATUSES:
        raise PartnerError(_not_pending(link))
    side, organization = _acting_side(link)
    _require_admin(actor, organization, "accept this link")
    _partner_usable(link.partner)
    current = (
        PartnerLink.objects.filter(customer=link.customer, status=Status.ACTIVE)
        .exclude(pk=link.pk)
        .select_related("partner__organization")
        .first()
    )
    if current is not None:
        raise PartnerError(
            f"{link.customer.name} already works with {current.partner.organization.name}: "
            f"end that link first, then accept {link.partner.organization.name}."
        )
    now = timezone.now()
    link.status = Status.ACTIVE
    link.accepted_by = actor
    link.accepted_at = now
    try:
        with transaction.atomic():
            link.save(update_fields=["status", "accepted_by", "accepted_at"])
    except IntegrityError:  # another partner's link was accepted meanwhile
        raise PartnerError(f"{link.customer.name} already has an active partner: end that link first.") from None
    partner_name, customer_name = link.partner.organization.name, link.customer.name
    audit_record(
        partner=link.partner,
        customer=link.customer,
        actor=actor,
        actor_side=side,
        action="link_accepted",
        summary=f"{customer_name} and {partner_name} are linked: {partner_name} manages {possessive(customer_name)} subscriptions.",
        detail={"link": str(link.public_id)},
    )
    if side == Side.CUSTOMER:
        notify_partner(
            partner=link.partner,
            subject=f"{customer_name} accepted your invitation",
            body=(
                f"{customer_name} accepted your invitation: {customer_name} is now a customer of {partner_name}. Its "
                f"subscriptions, renewals and requests are on your customer page: "
                f"{site_link(f'{PARTNER_HOME_PATH}customers/{link.customer.public_id}/', organization=link.partner.organization)}"
            ),
        )
    else:
        notify_customer_admins(
            customer=link.customer,
            subject=f"{partner_name} is now {possessive(customer_name)} partner",
            body=(
                f"{partner_name} accepted {possessive(customer_name)} request: it now manages your subscriptions "
                f"with you. {WHAT_A_PARTNER_SEES}\n\n"
                f"Everything it does for you is in your activity log: "
                f"{site_link(CUSTOMER_PARTNER_PATH + 'activity/', organization=link.customer)}"
            ),
        )
    return link


def _not_pending(link: PartnerLink) -> str:
    if link.status == Status.ACTIVE:
        return "This link is already active."
    return f"This link is no longer pending: it was {link.get_status_display().lower()}."


def _close(link: PartnerLink, *, status: str, actor: User, side: str, reason: str) -> None:
    link.status = status
    link.closed_by = actor if actor is not None and actor.is_authenticated else None
    link.closed_by_side = side
    link.closed_at = timezone.now()
    link.close_reason = reason.strip()[:240]
    link.save(update_fields=["status", "closed_by", "closed_by_side", "closed_at", "close_reason"])


@transaction.atomic
def link_decline(*, link: PartnerLink, actor: User, reason: str = "") -> PartnerLink:
    """The side that was asked says no: an invite declined by the customer's admin, a request by
    the partner's admin. The other side is emailed."""
    link = _lock(link)
    if link.status not in PartnerLink.PENDING_STATUSES:
        raise PartnerError(_not_pending(link))
    side, organization = _acting_side(link)
    _require_admin(actor, organization, "decline this link")
    _close(link, status=Status.DECLINED, actor=actor, side=side, reason=reason)
    partner_name, customer_name = link.partner.organization.name, link.customer.name
    note = f'\n\nTheir note:\n"{link.close_reason}"' if link.close_reason else ""
    if side == Side.CUSTOMER:
        summary = f"{customer_name} declined {possessive(partner_name)} invitation."
        notify_partner(
            partner=link.partner,
            subject=f"{customer_name} declined your invitation",
            body=f"{customer_name} declined {possessive(partner_name)} invitation to link as your customer.{note}",
        )
    else:
        summary = f"{partner_name} declined {possessive(customer_name)} request."
        notify_customer_admins(
            customer=link.customer,
            subject=f"{partner_name} declined {possessive(customer_name)} request",
            body=(
                f"{partner_name} declined {possessive(customer_name)} request to manage your subscriptions.{note}\n\n"
                f"Nothing changed: you keep buying directly. Another partner may suit you: "
                f"{site_link(CUSTOMER_DIRECTORY_PATH, organization=link.customer)}"
            ),
        )
    audit_record(
        partner=link.partner, customer=link.customer, actor=actor, actor_side=side,
        action="link_declined", summary=summary, detail={"link": str(link.public_id)},
    )
    return link


@transaction.atomic
def link_withdraw(*, link: PartnerLink, actor: User) -> PartnerLink:
    """The side that asked takes it back before an answer: the partner its invite, the
    customer's admin its request. The other side is emailed."""
    link = _lock(link)
    if link.status not in PartnerLink.PENDING_STATUSES:
        raise PartnerError(_not_pending(link))
    if link.status == Status.INVITED:
        side, organization = Side.PARTNER, link.partner.organization
    else:
        side, organization = Side.CUSTOMER, link.customer
    _require_admin(actor, organization, "withdraw this link")
    _close(link, status=Status.WITHDRAWN, actor=actor, side=side, reason="")
    partner_name, customer_name = link.partner.organization.name, link.customer.name
    if side == Side.PARTNER:
        summary = f"{partner_name} withdrew its invitation to {customer_name}."
        notify_customer_admins(
            customer=link.customer,
            subject=f"{partner_name} withdrew its invitation",
            body=f"{partner_name} withdrew its invitation to manage {possessive(customer_name)} subscriptions. Nothing changed.",
        )
    else:
        summary = f"{customer_name} withdrew its request to {partner_name}."
        notify_partner(
            partner=link.partner,
            subject=f"{customer_name} withdrew its request",
            body=f"{customer_name} withdrew its request that {partner_name} manage its subscriptions. Nothing changed.",
        )
    audit_record(
        partner=link.partner, customer=link.customer, actor=actor, actor_side=side,
        action="link_withdrawn", summary=summary, detail={"link": str(link.public_id)},
    )
    return link


def subscriptions_billed_to(*, link: PartnerLink) -> list[Subscription]:
    """The customer's live subscriptions the link's partner pays for."""
    return list(
        Subscription.objects.select_related("product", "edition")
        .filter(
            organization=link.customer,
            billed_to=link.partner.organization,
            status__in=Subscription.LIVE_STATUSES,
        )
        .order_by("product__name", "pk")
    )


def handover_lines(subscriptions: list[Subscription], *, partner_name: str, customer_name: str = "", reader: str = "customer") -> list[str]:
    """What happens to each subscription a partner paid for when the link ends, in words, for
    the customer's admins (`reader` "customer") or the partner's people ("partner")."""
    lines = []
    for subscription in subscriptions:
        name = str(subscription.edition)
        paid_until = subscription.current_period_end if subscription.status == Subscription.Status.ACTIVE else None
        if reader == Side.PARTNER:
            lines.append(
                f"- {name}: you have paid until {day(paid_until)}; the renewal on that day is invoiced to "
                f"{customer_name} at list price."
                if paid_until
                else f"- {name}: its next invoice goes to {customer_name}, at list price."
            )
        else:
            lines.append(
                f"- {name}: {partner_name} has paid until {day(paid_until)}. The renewal on that day is invoiced to "
                "you at list price, by your card on file or your purchase-order terms."
                if paid_until
                else f"- {name}: its next invoice goes to you, at list price."
            )
    return lines


@transaction.atomic
def link_end(*, link: PartnerLink, actor: User, side: str, reason: str = "") -> PartnerLink:
    """Either side (an admin of it) or staff ends an active link. Every subscription of the
    customer billed to the partner is flagged to come back to the customer at its next renewal
    (billing's subscription_payer_end): the partner keeps the term it paid for, the renewal is the
    customer's at list price. Both sides are emailed what happens when.

    Locks: the customer organization (billing's first lock, so a move to direct billing or a
    purchase for the same customer waits instead of deadlocking), then the link, then each
    subscription (in billing)."""
    organization_lock(link.customer)
    link = _lock(link)
    if link.status != Status.ACTIVE:
        raise PartnerError("This link is not active: there is nothing to end.")
    if side == Side.PARTNER:
        _require_admin(actor, link.partner.organization, "end this link")
    elif side == Side.CUSTOMER:
        _require_admin(actor, link.customer, "end this link")
    elif side == Side.STAFF:
        if actor is None or not actor.is_staff:
            raise PartnerError("Only staff can end a link for both sides.")
    else:
        raise PartnerError(f"Unknown side {side!r}.")
    now = timezone.now()
    _close(link, status=Status.ENDED, actor=actor, side=side, reason=reason)
    subscriptions = subscriptions_billed_to(link=link)
    for subscription in subscriptions:
        subscription_payer_end(subscription=subscription, at=now)
    partner_name, customer_name = link.partner.organization.name, link.customer.name
    who = {Side.PARTNER: partner_name, Side.CUSTOMER: customer_name, Side.STAFF: f"{_site_name()} staff"}[side]
    audit_record(
        partner=link.partner,
        customer=link.customer,
        actor=actor,
        actor_side=side,
        action="link_ended",
        summary=(
            f"{who} ended the link between {customer_name} and {partner_name}"
            + (f"; {len(subscriptions)} subscription{'s' if len(subscriptions) != 1 else ''} "
               f"billed to {partner_name} come{'s' if len(subscriptions) == 1 else ''} back to {customer_name} at renewal."
               if subscriptions else ".")
        ),
        detail={"link": str(link.public_id), "subscriptions": [str(s.public_id) for s in subscriptions], "reason": link.close_reason},
    )
    lines = handover_lines(subscriptions, partner_name=partner_name)
    note = f'\n\nThe reason given:\n"{link.close_reason}"' if link.close_reason else ""
    billing = (
        "What happens to what " + partner_name + " pays for:\n" + "\n".join(lines)
        if lines
        else f"{partner_name} paid for none of your subscriptions: your billing does not change."
    )
    notify_customer_admins(
        customer=link.customer,
        subject=f"{customer_name} and {partner_name} are no longer linked",
        body=(
            f"{who} ended the link between {customer_name} and {partner_name} on {day(now)}. "
            f"{partner_name} can no longer see or manage your subscriptions.{note}\n\n{billing}\n\n"
            f"Nothing lapses: your products keep working. You may choose another partner from the "
            f"directory: {site_link(CUSTOMER_DIRECTORY_PATH, organization=link.customer)}"
        ),
    )
    partner_lines = handover_lines(subscriptions, partner_name=partner_name, customer_name=customer_name, reader=Side.PARTNER)
    partner_billing = (
        "Subscriptions you pay for go back to the customer at renewal:\n" + "\n".join(partner_lines)
        if partner_lines
        else "You paid for none of their subscriptions."
    )
    notify_partner(
        partner=link.partner,
        subject=f"{customer_name} is no longer your customer",
        body=(
            f"{who} ended the link between {customer_name} and {partner_name} on {day(now)}.{note}\n\n"
            f"{partner_billing}"
        ),
    )
    return link
