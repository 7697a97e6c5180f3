from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Membership, Organization, User
from common.exceptions import NotFound

from .models import Environment


def environments_of(*, organization: Organization) -> QuerySet[Environment]:
    return Environment.objects.filter(organization=organization).select_related("product").order_by("requested_at")


def get_environment_for_user(*, user: User, environment_public_id: object) -> Environment:
    """An environment of an organization the user belongs to; NotFound for anyone else's."""
    environment = (
        Environment.objects.select_related("product", "organization")
        .filter(
            public_id=environment_public_id,
            organization__in=Membership.objects.filter(user=user).values("organization"),
        )
        .first()
    )
    if environment is None:
        raise NotFound("Workspace not found.")
    return environment
