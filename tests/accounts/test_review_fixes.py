"""Regression tests for the security review: removals last, names stay one line, the dev
mailbox is local, one organization per domain lets people join by it."""

import pytest
from django.urls import reverse

from accounts.exceptions import PermissionDenied, ValidationError
from accounts.models import Membership, Removal
from accounts.services import (
    invite_accept,
    invite_create,
    membership_join_by_domain,
    membership_remove,
    organization_create_for_signup,
    organization_set_join_by_domain,
    organizations_joinable_by_domain,
    user_signup_record,
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


def test_an_invite_sent_before_joining_by_domain_cannot_bring_back_a_removed_member(catalog):
    from accounts.exceptions import InviteInvalid
    from accounts.models import Invite

    organization, admin = organization_on("standard")
    organization_set_join_by_domain(organization=organization, actor=admin, enabled=True)
    bob = UserFactory(email=f"bob@{organization.email_domain}")
    invite = invite_create(organization=organization, actor=admin, email=bob.email.upper())
    membership = membership_join_by_domain(organization=organization, user=bob)  # instead of the invite
    invite.refresh_from_db()
    assert (invite.status, invite.accepted_by) == (Invite.Status.ACCEPTED, bob)  # its seat is his membership's
    membership_remove(membership=membership, actor=admin)
    with pytest.raises(InviteInvalid):
        invite_accept(invite=invite, user=bob)
    assert not Membership.objects.filter(organization=organization, user=bob).exists()

    # An invite still pending when an admin removes someone is withdrawn with them.
    carol = UserFactory(email=f"carol@{organization.email_domain}")
    membership = membership_join_by_domain(organization=organization, user=carol)
    later = invite_create(organization=organization, actor=admin, email="someone-else@example.com")
    stale = Invite.objects.create(organization=organization, email=carol.email, invited_by=admin, expires_at=later.expires_at)
    membership_remove(membership=membership, actor=admin)
    stale.refresh_from_db()
    later.refresh_from_db()
    assert (stale.status, later.status) == (Invite.Status.REVOKED, Invite.Status.PENDING)


def test_a_member_who_leaves_may_rejoin_by_domain(catalog):
    organization, admin = organization_on("standard")
    organization_set_join_by_domain(organization=organization, actor=admin, enabled=True)
    carol = UserFactory(email=f"carol@{organization.email_domain}")
    membership_remove(membership=membership_join_by_domain(organization=organization, user=carol), actor=carol)
    membership_join_by_domain(organization=organization, user=carol)
    assert Membership.objects.filter(organization=organization, user=carol).exists()


def test_organization_names_are_one_line(catalog):
    user = UserFactory(email="eve@eve.example")
    user_signup_record(user=user, organization_name="Evil\r\nBcc: victim@example.org")
    organization = organization_create_for_signup(user=user)
    assert organization.name == "Evil Bcc: victim@example.org"
    invite_create(organization=organization, actor=user, email="someone@example.org")  # renders a subject


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


def test_dev_mailbox_is_only_for_this_machine_or_staff(client, settings, db):
    settings.DEBUG = True
    settings.EMAIL_BACKEND = "accounts.mail.MaildirBackend"
    assert client.get(reverse("dev_mailbox"), REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get(reverse("dev_mailbox"), REMOTE_ADDR="203.0.113.9").status_code == 404
    # Through a tunnel or proxy on this machine: from loopback, but passed on from elsewhere.
    for header in ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP"):
        assert client.get(reverse("dev_mailbox"), REMOTE_ADDR="127.0.0.1", **{header: "203.0.113.9"}).status_code == 404
    client.force_login(UserFactory(email="ops@flywheel.example", is_staff=True))
    assert client.get(reverse("dev_mailbox"), REMOTE_ADDR="203.0.113.9").status_code == 200
    settings.DEBUG = False
    assert client.get(reverse("dev_mailbox"), REMOTE_ADDR="127.0.0.1").status_code == 404


def test_signup_landing_keeps_only_known_utm_tags(client, catalog):
    from experiments.models import Event

    client.get("/signup?product=tracker&utm_source=" + "x" * 500 + "&utm_evil=1")
    properties = Event.objects.get(name="signup_started").properties
    assert properties["utm_source"] == "x" * 200
    assert "utm_evil" not in properties
