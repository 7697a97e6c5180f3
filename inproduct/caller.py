"""Who is calling the kit's endpoints: the person, organization, product and kit session a
request's session credential names. The credential is what the token exchange returns
(identity.py); every other kit endpoint reads it through `kit_caller`."""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import Membership, Organization, User
from accounts.selectors import membership_is_admin
from catalog.models import Product

from .models import KitSession


@dataclass(frozen=True)
class KitCaller:
    """A member of `organization` signed in to `product`, seen from `origin` (one of the
    product's registered origins), in kit session `session`."""

    membership: Membership
    session: KitSession
    origin: str

    @property
    def organization(self) -> Organization:
        return self.membership.organization

    @property
    def user(self) -> User:
        return self.membership.user

    @property
    def product(self) -> Product:
        return self.session.product

    @property
    def is_admin(self) -> bool:
        return membership_is_admin(self.membership)
