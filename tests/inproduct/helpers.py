"""Helpers of the kit's message tests: a kit caller (a member in a kit session of a product),
its session credential, and the invite-nudge experiment forced to one variation."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from accounts.models import Membership
from catalog.models import Product
from experiments.services import definitions_load
from inproduct.caller import KitCaller
from inproduct.identity import kit_session_credential
from inproduct.models import KitSession
from inproduct.nudges import DEFINITION, EXPERIMENT_KEY

from ..factories import MembershipFactory, UserFactory

ORIGIN = settings.DEMO_PRODUCT_URL


def caller_for(membership: Membership, *, product: str = "tracker", session: KitSession | None = None) -> KitCaller:
    """The kit caller of `membership` in a new kit session of `product` (or in `session`, read afresh)."""
    if session is None:
        session = KitSession.objects.create(
            organization=membership.organization,
            user=membership.user,
            product=Product.objects.get(code=product),
            origin=ORIGIN,
        )
    else:
        session = KitSession.objects.select_related("product").get(pk=session.pk)
    membership = Membership.objects.select_related("user", "organization").get(pk=membership.pk)
    return KitCaller(membership=membership, session=session, origin=ORIGIN)


def admin_membership(organization, admin) -> Membership:
    return Membership.objects.get(organization=organization, user=admin)


def member_of(organization, *, email: str | None = None, name: tuple[str, str] = ("", "")) -> Membership:
    user = UserFactory(**({"email": email} if email else {}), first_name=name[0], last_name=name[1])
    return MembershipFactory(organization=organization, user=user, role=Membership.Role.MEMBER)


def long_standing(membership: Membership, days: int = 400) -> None:
    """Make the membership old enough for the survey's tenure rule."""
    Membership.objects.filter(pk=membership.pk).update(created_at=timezone.now() - timedelta(days=days))


def headers(caller: KitCaller) -> dict[str, str]:
    """The kit's request headers for this caller's session."""
    return {
        "HTTP_ORIGIN": caller.origin,
        "HTTP_AUTHORIZATION": f"Bearer {kit_session_credential(session=caller.session, origin=caller.origin)}",
    }


def nudge_experiment(variation_key: str | None = None, **value_changes) -> None:
    """Load invite-nudge as shipped, or with every weight 0 but `variation_key`'s (its value
    changed by `value_changes`), so everyone exposed gets that variation."""
    definition = {**DEFINITION, "variations": [dict(variation) for variation in DEFINITION["variations"]]}
    if variation_key is not None:
        for variation in definition["variations"]:
            chosen = variation["key"] == variation_key
            variation["weight"] = 1.0 if chosen else 0.0
            if chosen and variation.get("value") is not None:
                variation["value"] = {**variation["value"], **value_changes}
    definitions_load(data={"experiments": [definition]})
    assert definition["key"] == EXPERIMENT_KEY
