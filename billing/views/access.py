"""Who may see billing's pages: a member of the current organization, and its admin."""

from __future__ import annotations

import uuid

from django.http import Http404, HttpRequest

from accounts.models import Organization
from accounts.selectors import membership_is_admin
from common.exceptions import NotFound

from ..models import Subscription
from ..selectors import get_subscription_for_user


def member_organization(request: HttpRequest) -> tuple[Organization, bool]:
    """The current organization and whether the user is its admin; 404 for a non-member."""
    membership = request.membership  # type: ignore[attr-defined]
    if not membership:
        raise Http404
    return membership.organization, membership_is_admin(membership)


def admin_organization(request: HttpRequest) -> Organization:
    """The current organization, for its admin; 404 for anyone else."""
    organization, is_admin = member_organization(request)
    if not is_admin:
        raise Http404
    return organization


def admin_subscription(request: HttpRequest, subscription_id: uuid.UUID) -> Subscription:
    """A subscription of the current organization, for its admin; 404 for anyone else."""
    organization, is_admin = member_organization(request)
    try:
        subscription = get_subscription_for_user(user=request.user, subscription_public_id=subscription_id)
    except NotFound:
        raise Http404 from None
    if subscription.organization_id != organization.pk or not is_admin:
        raise Http404
    return subscription
