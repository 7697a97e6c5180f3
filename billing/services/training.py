"""Training: assign a colleague to a course (credits drawn from packs, soonest expiry first), withdraw, and the expiry clock.

A pack (billing.models.TrainingPack) is bought once with a product's training add-on and holds
credits until it expires. Its credits pay for the courses of that product only (the pack is
"Tracker training"). A pack is spendable while it is not expired (`expires_at` in the future
and no `expired_at`) and not suspended (its purchase-order invoice is overdue).

Lock order, as every billing change of an organization: the organization, then its packs by
pk, then the assignment. Under the organization's lock no two assignments of one organization
run at once, so the balance read and the credits drawn can never disagree (no overspending);
the packs' own check constraint (credits_used <= credits) is the last line.

Layering (billing/services/__init__.py): imports payments, invoices, grants, billing_account
and below, never addons or seats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from accounts.mail import email_subject, email_text, mail_queue
from accounts.models import Membership, Organization, User
from accounts.selectors import admin_membership_require
from accounts.services import organization_lock
from catalog.models import Course, Product
from experiments.services import event_record

from .. import events
from ..exceptions import TrainingRefused
from ..formats import day
from ..models import Subscription, TrainingAssignment, TrainingPack, TrainingSpend

# Days before a pack's end when its organization's admins are reminded of the credits left.
EXPIRY_REMINDER_DAYS = (30, 7)
BATCH = 200
# A course can be taken on a product the organization has and is entitled to now.
_ENTITLED = (Subscription.Status.TRIALING, Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE)


class TrainingTickReport(Protocol):
    """What training_tick counts into (lifecycle.TickReport)."""

    training_reminders: int
    training_expired: int
    handled: list[str]


def credits_text(count: int) -> str:
    """1 credit, 3 credits."""
    return f"{count} credit{'s' if count != 1 else ''}"


def _spendable(now: datetime) -> Q:
    return Q(expired_at__isnull=True, suspended_at__isnull=True, expires_at__gt=now)


def _training_url() -> str:
    return f"{settings.SITE_URL}/billing/training/"


@dataclass(frozen=True)
class TrainingBalance:
    """An organization's training credits now: what is left across its spendable packs, and
    the next expiry (the soonest-expiring pack with credits left) with what expires then."""

    credits_left: int
    next_expiry: datetime | None
    credits_expiring_next: int
    packs: list[TrainingPack] = field(default_factory=list)

    @property
    def text(self) -> str:
        """"7 credits left, 3 of them expire on 6 Dec 2027" in words; "No training credits"."""
        if not self.credits_left:
            return "No training credits left"
        left = f"{credits_text(self.credits_left)} left"
        if self.credits_expiring_next == self.credits_left:
            return f"{left}, to use by {day(self.next_expiry)}"
        return f"{left}, {self.credits_expiring_next} of them expire on {day(self.next_expiry)}"


def training_packs_spendable(*, organization: Organization, product: Product | None = None, now: datetime | None = None) -> QuerySet[TrainingPack]:
    """The organization's packs whose credits can be spent now (of one product, or all),
    soonest expiry first."""
    packs = TrainingPack.objects.filter(_spendable(now or timezone.now()), organization=organization)
    if product is not None:
        packs = packs.filter(addon__product=product)
    return packs.select_related("addon__product").order_by("expires_at", "pk")


def training_balance(*, organization: Organization, product: Product | None = None) -> TrainingBalance:
    """The organization's training balance (of one product's packs, or all of them)."""
    packs = list(training_packs_spendable(organization=organization, product=product))
    with_credits = [pack for pack in packs if pack.credits_left > 0]
    next_expiry = with_credits[0].expires_at if with_credits else None
    return TrainingBalance(
        credits_left=sum(pack.credits_left for pack in with_credits),
        next_expiry=next_expiry,
        credits_expiring_next=sum(pack.credits_left for pack in with_credits if pack.expires_at == next_expiry),
        packs=packs,
    )


def _refuse_short(*, organization: Organization, course: Course, balance: TrainingBalance) -> TrainingRefused:
    product = course.product.name
    has = (
        f"{organization.name} has {credits_text(balance.credits_left)} of {product} training left"
        if balance.credits_left
        else f"{organization.name} has no {product} training credits left"
    )
    return TrainingRefused(
        f"{course.name} takes {credits_text(course.credits)}; {has}. "
        f"Buy a {product} training pack on the billing page to top up, or choose a shorter course."
    )


@transaction.atomic
def training_assign(*, organization: Organization, actor: User, course: Course, user: User) -> TrainingAssignment:
    """Assign `user` (a member of the organization) to `course`, paid with the course's credits
    drawn from the organization's spendable packs of the course's product, soonest expiry first
    and across several packs when one is short (one TrainingSpend per pack drawn from).

    Invariant: a pack never gives more credits than it has left, even under concurrent
    assignments (the organization and its packs are locked); a person is assigned to a course
    once while not withdrawn; only an admin assigns. The colleague is emailed after commit.
    """
    admin_membership_require(organization=organization, user=actor, doing="assign training")
    who = user.get_full_name() or user.email
    if not Membership.objects.filter(organization=organization, user=user).exists():
        raise TrainingRefused(
            f"{who} is not a member of {organization.name}: invite them to the organization first, then assign the course."
        )
    product = course.product
    if not (course.is_active and product.is_active):
        raise TrainingRefused(f"{course.name} is no longer offered: choose another {product.name} course.")
    if not Subscription.objects.filter(organization=organization, product=product, status__in=_ENTITLED).exists():
        raise TrainingRefused(
            f"{course.name} is a {product.name} course and {organization.name} has no {product.name} subscription "
            f"in good standing: start or renew {product.name} first."
        )
    now = timezone.now()
    organization_lock(organization)
    if TrainingAssignment.objects.filter(
        organization=organization, course=course, user=user, withdrawn_at__isnull=True
    ).exists():
        raise TrainingRefused(f"{who} is already assigned to {course.name}; nothing was spent.")
    locked = list(
        TrainingPack.objects.select_for_update()
        .filter(_spendable(now), organization=organization, addon__product=product)
        .order_by("pk")
    )
    packs = sorted((pack for pack in locked if pack.credits_left > 0), key=lambda pack: (pack.expires_at, pack.pk))
    balance = TrainingBalance(
        credits_left=sum(pack.credits_left for pack in packs),
        next_expiry=packs[0].expires_at if packs else None,
        credits_expiring_next=0,
        packs=packs,
    )
    if balance.credits_left < course.credits:
        raise _refuse_short(organization=organization, course=course, balance=balance)
    try:
        with transaction.atomic():
            assignment = TrainingAssignment.objects.create(
                organization=organization, course=course, user=user, assigned_by=actor, credits=course.credits
            )
    except IntegrityError:
        raise TrainingRefused(f"{who} is already assigned to {course.name}; nothing was spent.") from None
    needed = course.credits
    drawn: list[TrainingPack] = []
    for pack in packs:
        if not needed:
            break
        take = min(needed, pack.credits_left)
        TrainingPack.objects.filter(pk=pack.pk).update(credits_used=F("credits_used") + take)
        TrainingSpend.objects.create(assignment=assignment, pack=pack, credits=take)
        drawn.append(pack)
        needed -= take
    use_by = min(pack.expires_at for pack in drawn)
    event_record(
        name=events.TRAINING_ASSIGNED,
        user=actor,
        organization=organization,
        properties={
            "assignment": str(assignment.public_id),
            "course": f"{product.code}/{course.code}",
            "credits": course.credits,
            "packs": [str(pack.public_id) for pack in drawn],
        },
    )
    _assigned_email(assignment=assignment, actor=actor, use_by=use_by)
    return assignment


def _assigned_email(*, assignment: TrainingAssignment, actor: User, use_by: datetime) -> None:
    course = assignment.course
    kind = "a live session" if course.format == Course.Format.SESSION else "a self-paced course"
    hours = course.duration_minutes / 60
    length = (
        f"{course.duration_minutes} minutes"
        if course.duration_minutes < 60 or course.duration_minutes % 60
        else f"{int(hours)} hour{'s' if hours != 1 else ''}"
    )
    by = actor.get_full_name() or actor.email
    paragraphs = [
        f"{by} assigned you to {course.name}, {kind} on {course.product.name} ({length}).",
        course.description,
        f"{assignment.organization.name} paid for your place with training credits valid until {day(use_by)}: "
        "please take it before then.",
    ]
    body = "\n\n".join(paragraph for paragraph in paragraphs if paragraph)
    mail_queue(
        EmailMessage(
            subject=email_subject(f"You are assigned to {course.product.name} training: {course.name}"),
            body=email_text(
                body=body,
                reason=f"You receive this email because an admin of {assignment.organization.name} assigned you a course.",
            ),
            to=[assignment.user.email],
        )
    )


@transaction.atomic
def training_withdraw(*, assignment: TrainingAssignment, actor: User) -> TrainingAssignment:
    """Withdraw an assignment not yet completed: its credits go back to the packs they came
    from, those that have not expired (credits of an expired pack are lost with it). The spend
    rows stay as the record of what was drawn.

    Invariant: an assignment is withdrawn once; credits come back at most once."""
    organization = assignment.organization
    admin_membership_require(organization=organization, user=actor, doing="withdraw training")
    now = timezone.now()
    organization_lock(organization)
    assignment = TrainingAssignment.objects.select_for_update().select_related("course", "user").get(pk=assignment.pk)
    who = assignment.user.get_full_name() or assignment.user.email
    if assignment.withdrawn_at is not None:
        raise TrainingRefused(f"{who} was already withdrawn from {assignment.course.name} on {day(assignment.withdrawn_at)}.")
    if assignment.completed_at is not None:
        raise TrainingRefused(
            f"{who} completed {assignment.course.name} on {day(assignment.completed_at)}: a completed course cannot be withdrawn."
        )
    spends = list(assignment.spends.all())
    packs = {
        pack.pk: pack
        for pack in TrainingPack.objects.select_for_update().filter(pk__in=[spend.pack_id for spend in spends]).order_by("pk")
    }
    returned = 0
    for spend in spends:
        pack = packs[spend.pack_id]
        if pack.expired_at is None and pack.expires_at > now:
            TrainingPack.objects.filter(pk=pack.pk).update(credits_used=F("credits_used") - spend.credits)
            returned += spend.credits
    assignment.withdrawn_at = now
    assignment.save(update_fields=["withdrawn_at"])
    event_record(
        name=events.TRAINING_WITHDRAWN,
        user=actor,
        organization=organization,
        properties={
            "assignment": str(assignment.public_id),
            "course": f"{assignment.course.product.code}/{assignment.course.code}",
            "credits_returned": returned,
            "credits_lost": assignment.credits - returned,
        },
    )
    return assignment


# The clock -------------------------------------------------------------------------------------


def training_tick(*, now: datetime, report: TrainingTickReport) -> None:
    """Remind admins EXPIRY_REMINDER_DAYS before a pack with credits left expires (each
    reminder once, recorded in expiry_reminders_sent; thresholds a late tick passed without a
    reminder are not sent late), and expire packs whose time is up (expired_at set, the
    credits left lost, an event recorded). Each pack in its own transaction, its organization
    locked first, checked again under the lock."""
    horizon = now + timedelta(days=max(EXPIRY_REMINDER_DAYS))
    candidates = list(
        TrainingPack.objects.filter(expired_at__isnull=True, expires_at__lte=horizon)
        .order_by("expires_at", "pk")
        .values_list("pk", "organization_id")[:BATCH]
    )
    for pack_id, organization_id in candidates:
        with transaction.atomic():
            organization_lock(Organization(pk=organization_id))
            pack = (
                TrainingPack.objects.select_for_update(of=("self",))
                .select_related("organization", "addon__product")
                .filter(pk=pack_id, expired_at__isnull=True)
                .first()
            )
            if pack is None:
                continue
            if pack.expires_at <= now:
                _pack_expire(pack, now=now, report=report)
            else:
                _pack_remind(pack, now=now, report=report)


def _pack_expire(pack: TrainingPack, *, now: datetime, report: TrainingTickReport) -> None:
    lost = pack.credits_left
    pack.expired_at = now
    pack.save(update_fields=["expired_at"])
    event_record(
        name=events.TRAINING_PACK_EXPIRED,
        organization=pack.organization,
        properties={"pack": str(pack.public_id), "product": pack.addon.product.code, "credits_lost": lost},
    )
    if lost > 0:
        organization = pack.organization
        product = pack.addon.product.name
        _admins_email(
            organization,
            subject=f"{credits_text(lost)} of {product} training expired",
            body=(
                f"{credits_text(lost).capitalize()} of {product} training that {organization.name} had not spent "
                f"expired on {day(pack.expires_at)} and can no longer be used.\n\n"
                f"To train more colleagues, buy a {product} training pack: {_training_url()}"
            ),
        )
    report.training_expired += 1
    report.handled.append(f"training pack expired {pack.public_id}")


def _admins_email(organization, *, subject: str, body: str) -> None:
    """One email to the organization's admins, saying why they receive it."""
    admins = sorted(
        Membership.objects.filter(organization=organization, role=Membership.Role.ADMIN).values_list("user__email", flat=True)
    )
    if admins:
        mail_queue(
            EmailMessage(
                subject=email_subject(subject),
                body=email_text(body=body, reason=f"You receive this email because you are an admin of {organization.name}."),
                to=admins,
            )
        )


def _pack_remind(pack: TrainingPack, *, now: datetime, report: TrainingTickReport) -> None:
    days_left = (pack.expires_at - now).total_seconds() / 86400
    reached = [days for days in EXPIRY_REMINDER_DAYS if days_left <= days]
    left = pack.credits_left
    if not reached or min(reached) in pack.expiry_reminders_sent or left <= 0 or pack.suspended_at is not None:
        return
    threshold = min(reached)
    pack.expiry_reminders_sent = sorted(set(pack.expiry_reminders_sent) | set(reached), reverse=True)
    pack.save(update_fields=["expiry_reminders_sent"])
    organization = pack.organization
    product = pack.addon.product.name
    _admins_email(
        organization,
        subject=f"{credits_text(left)} of {product} training {'expires' if left == 1 else 'expire'} in {threshold} days",
        body=(
            f"{organization.name} has {credits_text(left)} of {product} training left that expire on "
            f"{day(pack.expires_at)}. Credits not spent by then are lost.\n\n"
            f"Assign colleagues to {product} courses before then: {_training_url()}"
        ),
    )
    report.training_reminders += 1
    report.handled.append(f"training reminder {threshold}d {pack.public_id}")
