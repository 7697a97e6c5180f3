"""The welcome step: a verified user with no organization joins one or starts their own."""

from django.urls import reverse

from accounts.models import Membership, Organization
from billing.models import Subscription
from experiments.models import Event

from ..factories import UserFactory


def test_verified_colleague_is_offered_join_by_domain_instead_of_a_new_org(client, trial_organization):
    from accounts.services import user_email_verified

    organization, admin = trial_organization
    organization.join_by_domain = True
    organization.save()
    colleague = UserFactory(email=f"colleague@{organization.email_domain}")
    assert user_email_verified(user=colleague, email=colleague.email) is None
    assert Organization.objects.count() == 1

    client.force_login(colleague)
    page = client.get(reverse("welcome"))
    assert f"Join {organization.name}".encode() in page.content
    response = client.post(reverse("join_by_domain", args=[organization.public_id]))
    assert response.status_code == 302
    assert Membership.objects.get(user=colleague).source == Membership.Source.DOMAIN
    assert Event.objects.filter(name="joined_by_domain", user=colleague).count() == 1


def test_starting_an_organization_twice_gives_one(client, catalog):
    user = UserFactory(email="twice@twice.example")
    client.force_login(user)
    first = client.post(reverse("organization_start"), {"name": "Twice Inc"})
    second = client.post(reverse("organization_start"), {"name": "Twice Again"})
    assert first.status_code == second.status_code == 302
    assert Organization.objects.filter(memberships__user=user).count() == 1
    assert Organization.objects.get().name == "Twice Inc"
    assert Subscription.objects.count() == 1
