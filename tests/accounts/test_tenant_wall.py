"""A user of one organization can never read or change another organization's data."""

from django.urls import reverse

from accounts.middleware import ORGANIZATION_KEY
from accounts.models import Invite, Membership
from accounts.services import invite_create
from experiments.models import Event

from ..conftest import organization_on
from ..factories import MembershipFactory


def _two_organizations(catalog):
    acme, acme_admin = organization_on("standard")
    globex, globex_admin = organization_on("standard")
    return acme, acme_admin, globex, globex_admin


def test_members_page_shows_only_the_own_organization(client, catalog):
    acme, acme_admin, globex, globex_admin = _two_organizations(catalog)
    invite_create(organization=acme, actor=acme_admin, email="secret-hire@acme.example")
    client.force_login(globex_admin)
    page = client.get(reverse("members")).content.decode()
    assert globex_admin.email in page
    assert acme_admin.email not in page and "secret-hire" not in page


def test_cannot_remove_or_promote_another_organizations_member(client, catalog):
    acme, acme_admin, globex, globex_admin = _two_organizations(catalog)
    victim = MembershipFactory(organization=acme)
    client.force_login(globex_admin)
    assert client.post(reverse("member_remove", args=[victim.pk])).status_code == 404
    assert client.post(reverse("member_role", args=[victim.pk]), {"role": "admin"}).status_code == 404
    victim.refresh_from_db()
    assert victim.role == Membership.Role.MEMBER


def test_cannot_revoke_or_resend_another_organizations_invite(client, catalog):
    acme, acme_admin, globex, globex_admin = _two_organizations(catalog)
    invite = invite_create(organization=acme, actor=acme_admin, email="x@acme.example")
    client.force_login(globex_admin)
    assert client.post(reverse("invite_revoke", args=[invite.public_id])).status_code == 404
    assert client.post(reverse("invite_resend", args=[invite.public_id])).status_code == 404
    assert Invite.objects.get(pk=invite.pk).status == Invite.Status.PENDING


def test_cannot_switch_into_another_organization(client, catalog):
    acme, acme_admin, globex, globex_admin = _two_organizations(catalog)
    client.force_login(globex_admin)
    assert client.post(reverse("organization_switch", args=[acme.public_id])).status_code == 404
    # A tampered session pointing at Acme falls back to the user's own organization.
    session = client.session
    session[ORGANIZATION_KEY] = str(acme.public_id)
    session.save()
    page = client.get(reverse("members")).content.decode()
    assert acme.name not in page and globex.name in page


def test_cannot_toggle_join_by_domain_of_another_organization(client, catalog):
    acme, acme_admin, globex, globex_admin = _two_organizations(catalog)
    member = MembershipFactory(organization=globex).user
    client.force_login(member)  # a plain member of Globex, not an admin
    client.post(reverse("join_by_domain_toggle"), {"enabled": "1"})
    globex.refresh_from_db()
    acme.refresh_from_db()
    assert not globex.join_by_domain and not acme.join_by_domain


def test_cannot_join_a_domain_organization_without_an_address_there(client, catalog):
    acme, acme_admin, globex, globex_admin = _two_organizations(catalog)
    acme.join_by_domain = True
    acme.save()
    client.force_login(globex_admin)
    assert client.post(reverse("join_by_domain", args=[acme.public_id])).status_code == 404
    assert not Membership.objects.filter(organization=acme, user=globex_admin).exists()


def test_organization_events_are_scoped(catalog):
    from experiments.selectors import events_for_organization

    acme, acme_admin, globex, globex_admin = _two_organizations(catalog)
    assert Event.objects.filter(organization=acme).exists()
    assert all(event.organization_id == globex.pk for event in events_for_organization(organization=globex))


def test_member_of_two_organizations_switches_between_them(client, catalog):
    acme, acme_admin, globex, globex_admin = _two_organizations(catalog)
    MembershipFactory(organization=globex, user=acme_admin)
    client.force_login(acme_admin)
    assert acme.name in client.get(reverse("members")).content.decode()
    client.post(reverse("organization_switch", args=[globex.public_id]))
    page = client.get(reverse("members")).content.decode()
    assert f"Members of {globex.name}" in page


def test_admin_manages_members(client, catalog):
    acme, acme_admin, globex, globex_admin = _two_organizations(catalog)
    member = MembershipFactory(organization=acme)
    client.force_login(acme_admin)
    client.post(reverse("member_role", args=[member.pk]), {"role": "admin"})
    member.refresh_from_db()
    assert member.role == Membership.Role.ADMIN
    client.post(reverse("member_remove", args=[member.pk]))
    assert not Membership.objects.filter(pk=member.pk).exists()
    # The last admin cannot leave.
    own = Membership.objects.get(organization=acme, user=acme_admin)
    response = client.post(reverse("member_remove", args=[own.pk]), follow=True)
    assert "needs at least one admin" in response.content.decode()
    assert Membership.objects.filter(pk=own.pk).exists()
    # Invite form errors are shown on the page.
    response = client.post(reverse("members"), {"email": "bad", "role": "member"})
    assert response.status_code == 400 and "is not a valid email address" in response.content.decode()
