"""Becoming a partner: an organization's admin applies, staff approve (with a tier) or decline
(with a note) in the admin, and manage partners afterwards (tier, suspension, the directory).

Invariants: one pending application per organization (a database constraint, answered with a
sentence); only an admin of the organization applies, only staff decide; an approval makes or
reactivates the organization's one Partner row; the applicant hears both outcomes by email,
and staff hear of every new application."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Membership, Organization, User
from billing.formats import day

from ..exceptions import PartnerError
from ..models import Partner, PartnerApplication, PartnerLink
from ..selectors import tier_discount_bp, tier_name
from .audit import audit_record
from .notify import (
    PARTNER_HOME_PATH,
    notify_partner,
    notify_person,
    notify_staff,
    possessive,
    site_link,
)

Side = PartnerLink.Side


@dataclass(frozen=True)
class ApplicationInput:
    company_name: str
    country: str
    website: str
    contact_name: str
    contact_email: str
    contact_phone: str
    description: str


def default_tier() -> str:
    """A new partner's tier: the first one configured (settings.PARTNER_TIERS)."""
    return next(iter(settings.PARTNER_TIERS))


def tier_choices() -> list[tuple[str, str]]:
    """Each tier's code and its name with the discount: ("gold", "Gold (15 % off)")."""
    return [(code, f"{tier_name(code)} ({tier_discount_bp(code) / 100:g} % off)") for code in settings.PARTNER_TIERS]


def _is_admin(user: User, organization: Organization) -> bool:
    return Membership.objects.filter(organization=organization, user=user, role=Membership.Role.ADMIN).exists()


@transaction.atomic
def application_submit(*, organization: Organization, actor: User, data: ApplicationInput) -> PartnerApplication:
    """An admin of `organization` applies for it to become a partner. Refused: not an admin, the
    organization already a partner, an application already pending. Staff are emailed, and the
    applicant gets a copy of what they sent."""
    if not _is_admin(actor, organization):
        raise PartnerError(f"Only an admin of {organization.name} can apply for it to become a partner.")
    if Partner.objects.filter(organization=organization, status=Partner.Status.ACTIVE).exists():
        raise PartnerError(f"{organization.name} is already a partner.")
    try:
        with transaction.atomic():
            application = PartnerApplication.objects.create(
                organization=organization,
                company_name=data.company_name.strip(),
                country=data.country,
                website=data.website.strip(),
                contact_name=data.contact_name.strip(),
                contact_email=data.contact_email.strip().lower(),
                contact_phone=data.contact_phone.strip(),
                description=data.description.strip(),
                applied_by=actor,
            )
    except IntegrityError:
        pending = PartnerApplication.objects.filter(organization=organization, status=PartnerApplication.Status.PENDING).first()
        when = f" on {day(pending.created_at)}" if pending else ""
        raise PartnerError(
            f"{organization.name} already applied{when}; staff will answer by email. There is no need to apply again."
        ) from None
    application.refresh_from_db()
    notify_staff(
        subject=f"New partner application: {application.company_name}",
        body=(
            f"{application.company_name} ({application.country.name}) applied to become a partner, for the "
            f"organization {organization.name}.\n\n"
            f"Contact: {application.contact_name} <{application.contact_email}>"
            + (f", {application.contact_phone}" if application.contact_phone else "")
            + (f"\nWebsite: {application.website}" if application.website else "")
            + (f"\n\nWhat they do:\n{application.description}" if application.description else "")
            + f"\n\nApprove (with a tier) or decline (with a note) in the admin: "
            f"{site_link(f'/admin/partners/partnerapplication/{application.pk}/change/')}"
        ),
    )
    notify_person(
        email=actor.email,
        subject=f"We received {possessive(application.company_name)} partner application",
        body=(
            f"Thank you for applying for {organization.name} to become a {settings.SITE_NAME} partner. "
            f"Our staff read every application and answer by email, usually within a few working days.\n\n"
            f"What you sent:\nCompany: {application.company_name}\nCountry: {application.country.name}\n"
            f"Contact: {application.contact_name} <{application.contact_email}>"
        ),
        reason=f"You receive this email because you applied as an admin of {organization.name}.",
    )
    return application


def _applicant_addresses(application: PartnerApplication) -> list[str]:
    addresses = {application.contact_email.lower()}
    if application.applied_by is not None:
        addresses.add(application.applied_by.email.lower())
    return sorted(addresses)


def _lock_pending(application: PartnerApplication) -> PartnerApplication:
    application = PartnerApplication.objects.select_for_update(of=("self",)).select_related("organization").get(pk=application.pk)
    if application.status != PartnerApplication.Status.PENDING:
        raise PartnerError(f"{possessive(application.company_name)} application was already {application.get_status_display().lower()}.")
    return application


@transaction.atomic
def application_approve(*, application: PartnerApplication, actor: User, tier: str) -> Partner:
    """Staff approve a pending application at `tier`: the organization becomes an active partner
    (its Partner row made, or a suspended one reactivated with the application's details), the
    applicant is emailed what it can do now."""
    if not actor.is_staff:
        raise PartnerError("Only staff can approve partners.")
    if tier not in settings.PARTNER_TIERS:
        raise PartnerError(f"Choose a tier: {', '.join(tier_name(code) for code in settings.PARTNER_TIERS)}.")
    application = _lock_pending(application)
    now = timezone.now()
    application.status = PartnerApplication.Status.APPROVED
    application.decided_by = actor
    application.decided_at = now
    application.save(update_fields=["status", "decided_by", "decided_at"])
    partner, _created = Partner.objects.update_or_create(
        organization=application.organization,
        defaults={
            "application": application,
            "tier": tier,
            "status": Partner.Status.ACTIVE,
            "country": application.country,
            "website": application.website,
            "description": application.description,
            "contact_email": application.contact_email,
            "approved_at": now,
        },
    )
    audit_record(
        partner=partner, customer=None, actor=actor, actor_side=Side.STAFF, action="partner_approved",
        summary=f"Staff approved {application.organization.name} as a {tier_name(tier)} partner.",
        detail={"application": str(application.public_id), "tier": tier},
    )
    organization = application.organization
    for address in _applicant_addresses(application):
        notify_person(
            email=address,
            subject=f"{application.company_name} is now a {settings.SITE_NAME} partner",
            body=(
                f"Welcome: staff approved {organization.name} as a {tier_name(tier)} partner. You buy for your "
                f"customers at {tier_discount_bp(tier) / 100:g} % off list prices, annual terms.\n\n"
                f"What to do next: switch to {organization.name} in {settings.SITE_NAME} and open your partner "
                f"dashboard, invite your customers' admins, and quote and buy for them once they accept. "
                f"Your dashboard: {site_link(PARTNER_HOME_PATH, organization=organization)}"
            ),
            reason=f"You receive this email because you applied for {organization.name} to become a partner.",
        )
    return partner


@transaction.atomic
def application_decline(*, application: PartnerApplication, actor: User, note: str) -> PartnerApplication:
    """Staff decline a pending application with a note, sent to the applicant in their words."""
    if not actor.is_staff:
        raise PartnerError("Only staff can decline applications.")
    note = note.strip()
    if not note:
        raise PartnerError("Write a note for the applicant: it is sent with the decline.")
    application = _lock_pending(application)
    application.status = PartnerApplication.Status.DECLINED
    application.decided_by = actor
    application.decided_at = timezone.now()
    application.decision_note = note[:2000]
    application.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    for address in _applicant_addresses(application):
        notify_person(
            email=address,
            subject=f"About {possessive(application.company_name)} partner application",
            body=(
                f"Thank you for applying for {application.organization.name} to become a {settings.SITE_NAME} "
                f"partner. We are not able to accept it at this time.\n\nFrom our staff:\n\"{application.decision_note}\"\n\n"
                f"You may apply again once the reason above no longer applies."
            ),
            reason=f"You receive this email because you applied for {application.organization.name} to become a partner.",
        )
    return application


@transaction.atomic
def partner_set_tier(*, partner: Partner, actor: User, tier: str) -> Partner:
    """Staff move a partner to another tier: its new discount applies to quotes and purchases
    made from now on (subscriptions already billed keep the rate they were bought at). The
    partner is emailed."""
    if not actor.is_staff:
        raise PartnerError("Only staff can change a partner's tier.")
    if tier not in settings.PARTNER_TIERS:
        raise PartnerError("Unknown tier.")
    partner = Partner.objects.select_for_update(of=("self",)).select_related("organization").get(pk=partner.pk)
    if partner.tier == tier:
        return partner
    before = partner.tier
    partner.tier = tier
    partner.save(update_fields=["tier"])
    audit_record(
        partner=partner, customer=None, actor=actor, actor_side=Side.STAFF, action="partner_tier_changed",
        summary=f"Staff moved {partner.organization.name} from {tier_name(before)} to {tier_name(tier)}.",
        detail={"from": before, "to": tier},
    )
    notify_partner(
        partner=partner,
        subject=f"{partner.organization.name} is now a {tier_name(tier)} partner",
        body=(
            f"{partner.organization.name} moved from {tier_name(before)} to {tier_name(tier)}: quotes and "
            f"purchases you make from now on are at {tier_discount_bp(tier) / 100:g} % off list prices. "
            "Quotes already made keep their prices."
        ),
    )
    return partner


@transaction.atomic
def partner_set_status(*, partner: Partner, actor: User, status: str) -> Partner:
    """Staff suspend a partner (its pages and actions stop; its customers' links and what it
    already pays for stay as they are, for staff to sort out) or reactivate it."""
    if not actor.is_staff:
        raise PartnerError("Only staff can suspend or reactivate a partner.")
    if status not in Partner.Status.values:
        raise PartnerError("Unknown status.")
    partner = Partner.objects.select_for_update(of=("self",)).select_related("organization").get(pk=partner.pk)
    if partner.status == status:
        return partner
    partner.status = status
    partner.save(update_fields=["status"])
    verb = "suspended" if status == Partner.Status.SUSPENDED else "reactivated"
    audit_record(
        partner=partner, customer=None, actor=actor, actor_side=Side.STAFF, action=f"partner_{verb}",
        summary=f"Staff {verb} {partner.organization.name} as a partner.", detail={},
    )
    return partner
