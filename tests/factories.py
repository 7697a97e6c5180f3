"""factory_boy factories for the models tests build on."""

from __future__ import annotations

import factory
from allauth.account.models import EmailAddress
from django.utils import timezone

from accounts.models import Invite, Membership, Organization, User
from catalog.models import Product
from inproduct.models import KitSession, OfferClosed

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


class KitSessionFactory(factory.django.DjangoModelFactory):
    """A kit session of the person in a product (Tracker; the catalog must be synced), started
    `days_ago` days ago (0: now): what the invite nudge's `days_active` moment counts."""

    class Meta:
        model = KitSession
        exclude = ("days_ago",)

    days_ago = 0
    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    product = factory.LazyFunction(lambda: Product.objects.get(code="tracker"))
    origin = "http://127.0.0.1:8001"
    started_at = factory.LazyAttribute(lambda session: timezone.now() - timezone.timedelta(days=session.days_ago))
    last_seen_at = factory.SelfAttribute("started_at")


class OfferClosedFactory(factory.django.DjangoModelFactory):
    """A kit offer ("try:wiki", "nudge:invite") the person dismissed just now."""

    class Meta:
        model = OfferClosed

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    offer = "try:wiki"
    action = OfferClosed.Action.DISMISSED
