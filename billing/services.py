"""Every write to subscriptions, and the seat policy that accounts asks before adding a user."""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.exceptions import SeatLimitReached
from accounts.models import Organization, SignupIntent, User
from accounts.services import seats_in_use
from catalog.exceptions import UnknownEdition
from catalog.models import Edition
from catalog.selectors import edition_default_for_trial, edition_get, products_for_sale
from experiments import events
from experiments.services import event_record
from provisioning.services import environment_request

from .exceptions import SubscriptionExists, TrialNotOffered
from .models import Subscription


def seat_limit_enforce(organization: Organization, seats_in_use: int, seats_wanted: int) -> None:
    """The seat policy: every live subscription of the organization must have room.

    Called by accounts with the organization row locked, so the count cannot change under it.
    """
    if seats_wanted < 0:
        return
    subscriptions = (
        Subscription.objects.filter(organization=organization, status__in=Subscription.LIVE_STATUSES)
        .select_related("product", "edition")
        .order_by("seat_limit", "pk")
    )
    for subscription in subscriptions:
        if seats_in_use + seats_wanted > subscription.seat_limit:
            bigger = (
                Edition.objects.filter(
                    product=subscription.product, is_active=True, seat_limit__gt=subscription.seat_limit
                )
                .order_by("rank")
                .first()
            )
            advice = (
                f"To get more seats, an admin can move to {bigger.product.name} {bigger.name} "
                f"(up to {bigger.seat_limit} users), or free a seat by removing a member or "
                "withdrawing an invite."
                if bigger
                else "An admin can free a seat by removing a member or withdrawing an invite."
            )
            raise SeatLimitReached(
                f"{subscription.product.name} {subscription.edition.name} allows {subscription.seat_limit} users "
                f"and {organization.name} already has {seats_in_use} (members and pending invites). {advice}",
                limit=subscription.seat_limit,
                product=subscription.product.code,
            )


def subscription_start_trial(*, organization: Organization, edition: Edition, actor: User | None) -> Subscription:
    """Start a product for an organization: a trial of a paid edition, or the Free edition.

    Invariant: one live subscription per organization and product (a database constraint),
    never started for an organization that already has more users than the edition allows;
    its environment is requested in the same transaction.
    """
    with transaction.atomic():
        # The organization row is the seat lock (accounts.services): counting seats under it
        # keeps a concurrent invite or join from slipping past this check.
        organization = Organization.objects.select_for_update().get(pk=organization.pk)
        if Subscription.objects.filter(
            organization=organization, product=edition.product, status__in=Subscription.LIVE_STATUSES
        ).exists():
            raise SubscriptionExists(f"{organization.name} already has {edition.product.name}.")
        if not edition.is_free and edition.trial_days == 0:
            raise TrialNotOffered(
                f"{edition.product.name} {edition.name} has no free trial; choose an edition that has one."
            )
        in_use = seats_in_use(organization=organization)
        if in_use > edition.seat_limit:
            raise SeatLimitReached(
                f"{edition.product.name} {edition.name} allows {edition.seat_limit} users and "
                f"{organization.name} has {in_use} (members and pending invites). Choose a bigger "
                "edition, or free seats first.",
                limit=edition.seat_limit,
                product=edition.product.code,
            )
        now = timezone.now()
        trialing = edition.trial_days > 0 and not edition.is_free
        try:
            with transaction.atomic():
                subscription = Subscription.objects.create(
                    organization=organization,
                    product=edition.product,
                    edition=edition,
                    status=Subscription.Status.TRIALING if trialing else Subscription.Status.ACTIVE,
                    seat_limit=edition.seat_limit,
                    trial_ends_at=now + timedelta(days=edition.trial_days) if trialing else None,
                    started_by=actor,
                )
        except IntegrityError:
            raise SubscriptionExists(f"{organization.name} already has {edition.product.name}.") from None
        event_record(
            name=events.TRIAL_STARTED if trialing else events.SUBSCRIPTION_STARTED,
            user=actor,
            organization=organization,
            properties={
                "product": edition.product.code,
                "edition": edition.code,
                "trial_days": edition.trial_days if trialing else 0,
                "seat_limit": edition.seat_limit,
            },
        )
        environment_request(
            organization=organization,
            product=edition.product,
            requested_by=actor,
            plan={"edition": edition.code, "seat_limit": edition.seat_limit},
        )
        return subscription


def _signup_edition(intent: SignupIntent | None) -> Edition | None:
    if intent is not None and intent.product_code:
        try:
            if intent.edition_code:
                edition = edition_get(product_code=intent.product_code, edition_code=intent.edition_code)
                if edition.is_free or edition.trial_days:
                    return edition
            return edition_default_for_trial(product_code=intent.product_code)
        except UnknownEdition:
            pass  # The catalog changed since the landing link; fall back to the default.
    first = products_for_sale().first()
    if first is None:
        return None
    try:
        return edition_default_for_trial(product_code=first.code)
    except UnknownEdition:
        return None


def subscription_start_signup_trial(*, organization: Organization, user: User, intent: SignupIntent | None) -> Subscription | None:
    """Start the trial the signup's landing link asked for (or the first product's default)."""
    edition = _signup_edition(intent)
    if edition is None:
        return None
    return subscription_start_trial(organization=organization, edition=edition, actor=user)
