"""Reads of accounts data, each scoped to an organization the reader belongs to."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet
from django.utils import timezone

from .exceptions import NotFound, PermissionDenied
from .models import Invite, Membership, Organization, SignupIntent, User


def membership_is_admin(membership: Membership | None) -> bool:
    """The one admin check: whether this membership (None: not a member) is an admin's."""
    return membership is not None and membership.role == Membership.Role.ADMIN


def admin_membership_require(*, organization: Organization, user: User, doing: str = "do that") -> Membership:
    """The user's membership of the organization, if they are one of its admins.

    Not a member: NotFound, so nobody learns that another organization exists. A member who
    is not an admin: PermissionDenied, saying what only an admin can do ("manage billing").
    """
    membership = Membership.objects.filter(organization=organization, user=user).first()
    if membership is None:
        raise NotFound("Organization not found.")
    if not membership_is_admin(membership):
        raise PermissionDenied(f"Only an admin of this organization can {doing}.")
    return membership


def memberships_for_user(*, user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("organization").order_by("created_at", "pk")


def get_membership_for_user(*, user: User, organization_public_id: object) -> Membership:
    """The user's membership of that organization, or NotFound (never another tenant's)."""
    membership = (
        Membership.objects.select_related("organization")
        .filter(user=user, organization__public_id=organization_public_id)
        .first()
    )
    if membership is None:
        raise NotFound("Organization not found.")
    return membership


def members_of(*, organization: Organization) -> QuerySet[Membership]:
    return Membership.objects.filter(organization=organization).select_related("user").order_by("created_at", "pk")


def pending_invites_of(*, organization: Organization) -> QuerySet[Invite]:
    return Invite.objects.filter(
        organization=organization, status=Invite.Status.PENDING, expires_at__gt=timezone.now()
    ).select_related("invited_by").order_by("-created_at")


def get_member_for_user(*, user: User, organization: Organization, membership_id: int) -> Membership:
    """A membership of `organization`, which `user` must belong to; NotFound otherwise."""
    if not Membership.objects.filter(organization=organization, user=user).exists():
        raise NotFound("Member not found.")
    membership = Membership.objects.filter(organization=organization, pk=membership_id).select_related(
        "organization", "user"
    ).first()
    if membership is None:
        raise NotFound("Member not found.")
    return membership


def get_invite_for_user(*, user: User, organization: Organization, invite_public_id: object) -> Invite:
    if not Membership.objects.filter(organization=organization, user=user).exists():
        raise NotFound("Invitation not found.")
    invite = Invite.objects.filter(organization=organization, public_id=invite_public_id).select_related(
        "organization"
    ).first()
    if invite is None:
        raise NotFound("Invitation not found.")
    return invite


def signup_intent_of(*, user: User) -> SignupIntent | None:
    """What brought the user here (landing link, invite), with the invite's organization."""
    return SignupIntent.objects.filter(user=user).select_related("invite__organization").first()


def invite_meant_for_another_address(*, invite: Invite, user: User) -> bool:
    """The invite names an address the user has not verified: accepting it was refused for that
    reason (it is still pending and not expired), not for expiry, withdrawal or seats."""
    from allauth.account.models import EmailAddress

    if invite.status != Invite.Status.PENDING or invite.expires_at <= timezone.now():
        return False
    return not EmailAddress.objects.filter(user=user, email__iexact=invite.email, verified=True).exists()


def organization_for_staff(*, public_id: str) -> Organization | None:
    """Staff: any organization by its public id (None for an unknown or malformed id). Only for
    staff pages: customers reach their own organization through their membership."""
    try:
        parsed = uuid.UUID(public_id)
    except ValueError:
        return None
    return Organization.objects.filter(public_id=parsed).first()
