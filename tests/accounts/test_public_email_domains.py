"""A public mail provider is never an organization's domain: whoever signed up there first
would otherwise own it for join-by-domain, and every later signup there would be offered
their organization instead of one of their own."""

import pytest

from accounts.exceptions import ValidationError
from accounts.models import Membership
from accounts.services import (
    organization_create_for_signup,
    organization_set_join_by_domain,
    organizations_joinable_by_domain,
    user_email_verified,
)

from ..factories import UserFactory


@pytest.mark.parametrize("provider", ["foxmail.com", "hotmail.es", "yahoo.es", "protonmail.ch", "outlook.es"])
def test_a_public_mail_provider_cannot_be_claimed_for_join_by_domain(catalog, provider):
    mallory = UserFactory(email=f"mallory@{provider}")
    squat = organization_create_for_signup(user=mallory, name=f"{provider} official support")
    # Expected: a public provider is never an organization's domain, so this is refused.
    with pytest.raises(ValidationError):
        organization_set_join_by_domain(organization=squat, actor=mallory, enabled=True)


def test_a_new_signup_at_a_public_provider_gets_its_own_organization(catalog):
    mallory = UserFactory(email="mallory@foxmail.com")
    squat = organization_create_for_signup(user=mallory, name="Foxmail official support")
    try:
        organization_set_join_by_domain(organization=squat, actor=mallory, enabled=True)
    except ValidationError:
        pass
    victim = UserFactory(email="victim@foxmail.com")
    assert squat not in organizations_joinable_by_domain(user=victim)
    assert user_email_verified(user=victim, email=victim.email) is not None
    assert Membership.objects.filter(user=victim).exists()
