"""factory_boy factories for the models tests build on."""

from __future__ import annotations

import factory
from allauth.account.models import EmailAddress
from django.utils import timezone

from accounts.models import Invite, Membership, Organization, User

PASSWORD = "correct-horse-battery-staple"  # noqa: S105


class UserFactory(factory.django.DjangoModelFactory):
    """A user with a verified primary email address."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def verified(self, create, extracted, **kwargs):
        if not create:
            return
        self.save()
        if extracted is not False:
            EmailAddress.objects.create(user=self, email=self.email, verified=True, primary=True)


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Org {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.MEMBER
    source = Membership.Source.STAFF


class InviteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invite

    organization = factory.SubFactory(OrganizationFactory)
    email = factory.Sequence(lambda n: f"invitee{n}@example.com")
    expires_at = factory.LazyFunction(lambda: timezone.now() + timezone.timedelta(days=7))
