"""Members, reputation and privileges: the member row, its lock, the privilege and moderator
checks, reputation moves, and a member's email preference.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F

from accounts.models import User
from experiments.services import event_record

from .. import events, privileges
from ..exceptions import (
    PermissionDenied,
    PrivilegeRequired,
)
from ..models import (
    Member,
)


def member_of(*, user: User) -> Member:
    """The user's community member row, created on first use."""
    member, _ = Member.objects.get_or_create(user=user)
    return member


def member_lock(user: User) -> Member:
    member_of(user=user)
    return Member.objects.select_for_update().get(user=user)


def privilege_require(*, user: User, privilege: str) -> None:
    reputation = member_of(user=user).reputation
    if not privileges.has_privilege(user=user, reputation=reputation, privilege=privilege):
        raise PrivilegeRequired(
            f"You need {privileges.THRESHOLDS[privilege]} reputation to {privileges.LABELS[privilege]}; "
            f"you have {reputation}."
        )


def reputation_move(changes: dict[int, int]) -> None:
    """Add to members' reputation (user id -> delta), in user id order (the lock order)."""
    for user_id in sorted(changes):
        if changes[user_id]:
            Member.objects.get_or_create(user_id=user_id)
            Member.objects.filter(user_id=user_id).update(reputation=F("reputation") + changes[user_id])


def moderator_require(user: User) -> None:
    if not user.is_staff:
        raise PermissionDenied("Only moderators can do that.")


@transaction.atomic
def notifications_unsubscribe(*, user: User) -> None:
    """Stop the community's email to this member (support staff email is not affected)."""
    member = member_lock(user)
    if member.notify_by_email:
        member.notify_by_email = False
        member.save(update_fields=["notify_by_email"])
        event_record(name=events.NOTIFICATIONS_UNSUBSCRIBED, user=user)
