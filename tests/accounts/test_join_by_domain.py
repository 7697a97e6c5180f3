"""Joining an organization by its email domain: one organization per domain offers it, a
member who leaves may join again, a removed member may not until invited again."""

import pytest

from accounts.exceptions import PermissionDenied, ValidationError
from accounts.models import Membership, Removal
from accounts.services import (
    invite_accept,
    invite_create,
    membership_join_by_domain,
    membership_remove,
    organization_set_join_by_domain,
    organizations_joinable_by_domain,
)

from ..conftest import organization_on
from ..factories import UserFactory


def test_a_removed_member_cannot_rejoin_by_domain_until_invited_again(catalog):
    organization, admin = organization_on("standard")
    organization_set_join_by_domain(organization=organization, actor=admin, enabled=True)
    bob = UserFactory(email=f"bob@{organization.email_domain}")
    membership = membership_join_by_domain(organization=organization, user=bob)
    membership_remove(membership=membership, actor=admin)

    assert organizations_joinable_by_domain(user=bob) == []
    with pytest.raises(PermissionDenied, match="removed you; ask them for a new invitation"):
        membership_join_by_domain(organization=organization, user=bob)
    assert not Membership.objects.filter(organization=organization, user=bob).exists()

    invite = invite_create(organization=organization, actor=admin, email=bob.email)
    invite_accept(invite=invite, user=bob)
    assert Membership.objects.filter(organization=organization, user=bob).exists()
    assert not Removal.objects.filter(organization=organization, user=bob).exists()


def test_a_member_who_leaves_may_rejoin_by_domain(catalog):
    organization, admin = organization_on("standard")
    organization_set_join_by_domain(organization=organization, actor=admin, enabled=True)
    carol = UserFactory(email=f"carol@{organization.email_domain}")
    membership_remove(membership=membership_join_by_domain(organization=organization, user=carol), actor=carol)
    membership_join_by_domain(organization=organization, user=carol)
    assert Membership.objects.filter(organization=organization, user=carol).exists()


def test_only_one_organization_per_domain_lets_people_join_by_it(catalog):
    first, first_admin = organization_on("standard")
    second, second_admin = organization_on("standard")
    second.email_domain = first.email_domain
    second.save()
    organization_set_join_by_domain(organization=first, actor=first_admin, enabled=True)
    with pytest.raises(ValidationError, match="Another organization already lets people at"):
        organization_set_join_by_domain(organization=second, actor=second_admin, enabled=True)
    second.refresh_from_db()
    assert not second.join_by_domain
