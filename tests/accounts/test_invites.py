import re

import pytest
import time_machine
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from accounts.exceptions import AlreadyMember, InviteInvalid, PermissionDenied, ValidationError
from accounts.models import Invite, Membership
from accounts.services import (
    invite_accept,
    invite_create,
    invite_from_token,
    invite_revoke,
    invite_token,
    invites_expire,
    membership_join_by_domain,
    membership_remove,
    organization_set_join_by_domain,
)
from experiments.models import Event

from ..conftest import body_text, mails_to, organization_on, wait_for
from ..factories import MembershipFactory, UserFactory


def test_invite_is_recorded_and_refuses_bad_input(trial_organization, django_capture_on_commit_callbacks):
    organization, admin = trial_organization
    with django_capture_on_commit_callbacks() as callbacks:
        invite = invite_create(organization=organization, actor=admin, email="  New.Person@Example.ORG ")
    assert invite.email == "new.person@example.org"
    assert invite.status == Invite.Status.PENDING
    queued = [callback for callback in callbacks if "enqueue_on_commit" in callback.__qualname__]
    assert len(queued) == 1  # the email is queued for the worker once the invite commits
    assert Event.objects.filter(name="invite_sent", organization=organization).count() == 1

    with pytest.raises(ValidationError, match="'nope' is not a valid email address"):
        invite_create(organization=organization, actor=admin, email="nope")
    with pytest.raises(AlreadyMember, match="already been invited"):
        invite_create(organization=organization, actor=admin, email="new.person@example.org")
    with pytest.raises(AlreadyMember, match="already a member"):
        invite_create(organization=organization, actor=admin, email=admin.email.upper())
    with pytest.raises(ValidationError, match="Unknown role 'owner'"):
        invite_create(organization=organization, actor=admin, email="x@example.org", role="owner")
    member = MembershipFactory(organization=organization).user
    with pytest.raises(PermissionDenied, match="Only an admin"):
        invite_create(organization=organization, actor=member, email="y@example.org")
    assert Invite.objects.filter(organization=organization).count() == 1


def test_accepting_needs_the_invited_verified_address(trial_organization):
    organization, admin = trial_organization
    invite = invite_create(organization=organization, actor=admin, email="bob@example.org")
    stranger = UserFactory(email="mallory@example.org")
    with pytest.raises(PermissionDenied, match="This invitation was sent to bob@example.org"):
        invite_accept(invite=invite, user=stranger)
    unverified_bob = UserFactory(email="bob@example.org", verified=False)
    with pytest.raises(PermissionDenied):
        invite_accept(invite=invite, user=unverified_bob)
    assert Membership.objects.filter(organization=organization).count() == 1
    assert Invite.objects.get(pk=invite.pk).status == Invite.Status.PENDING


def test_double_accept_gives_one_membership(trial_organization):
    organization, admin = trial_organization
    invite = invite_create(organization=organization, actor=admin, email="carol@example.org", role="admin")
    carol = UserFactory(email="carol@example.org")
    first = invite_accept(invite=invite, user=carol)
    second = invite_accept(invite=invite, user=carol)
    assert first.pk == second.pk and first.role == Membership.Role.ADMIN
    assert Membership.objects.filter(organization=organization, user=carol).count() == 1
    assert Event.objects.filter(name="invite_accepted").count() == 1


def test_forged_tampered_expired_and_revoked_links_are_refused(trial_organization):
    organization, admin = trial_organization
    invite = invite_create(organization=organization, actor=admin, email="dan@example.org")
    token = invite_token(invite)
    assert invite_from_token(token) == invite
    with pytest.raises(InviteInvalid, match="not valid"):
        invite_from_token(token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    with pytest.raises(InviteInvalid, match="not valid"):
        invite_from_token(signing.dumps(str(invite.public_id), salt="some.other.salt"))
    dan = UserFactory(email="dan@example.org")
    with time_machine.travel(timezone.now() + timezone.timedelta(days=8)):
        with pytest.raises(InviteInvalid, match="expired"):
            invite_accept(invite=invite, user=dan)
        assert invites_expire() == 1
    assert Invite.objects.get(pk=invite.pk).status == Invite.Status.EXPIRED

    second = invite_create(organization=organization, actor=admin, email="dan@example.org")
    invite_revoke(invite=second, actor=admin)
    with pytest.raises(InviteInvalid, match="withdrawn"):
        invite_accept(invite=second, user=dan)
    assert not Membership.objects.filter(user=dan).exists()


def test_invite_link_page_refuses_bad_tokens(client, trial_organization):
    response = client.get(reverse("invite_landing", args=["garbage-token"]))
    assert response.status_code == 410
    assert b"not valid" in response.content


@pytest.mark.django_db(transaction=True)
def test_invitee_signs_up_through_the_link_and_joins(client, trial_organization, celery_worker):
    organization, admin = trial_organization
    invite_create(organization=organization, actor=admin, email="erin@example.org")
    mail = wait_for(lambda: mails_to("erin@example.org"), what="the invite email")[-1]
    assert mail["Subject"] == f"[Flywheel] You are invited to join {organization.name}"
    assert mail.get_body(preferencelist=("html",)) is not None
    link = re.search(r"https?://\S+/invites/\S+/", body_text(mail)).group(0)
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]

    landing = client.get(path)
    assert landing.status_code == 200 and b"Create an account with erin@example.org" in landing.content
    # The link proved the address: signing up joins at once, with no verification email.
    response = client.post(reverse("account_signup"), {"email": "erin@example.org", "password1": "plum-Orchard-47"})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    membership = Membership.objects.get(user__email="erin@example.org")
    assert membership.organization == organization and membership.source == Membership.Source.INVITE
    assert Invite.objects.get(email="erin@example.org").status == Invite.Status.ACCEPTED
    assert organization.subscriptions.count() == 1  # no second organization, no second trial
    members_page = client.get(reverse("members"))
    assert admin.email.encode() in members_page.content and b"erin@example.org" in members_page.content


def test_logged_in_user_accepts_with_one_click(client, trial_organization):
    organization, admin = trial_organization
    invite = invite_create(organization=organization, actor=admin, email="fay@example.org")
    fay = UserFactory(email="fay@example.org")
    client.force_login(fay)
    path = reverse("invite_landing", args=[invite_token(invite)])
    assert b"Accept and join" in client.get(path).content
    response = client.post(path)
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert Membership.objects.filter(organization=organization, user=fay).exists()


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


def test_an_accepted_invite_counts_for_its_inviter_once(trial_organization):
    """invitee_joined is the inviter's event, so an experiment on inviters counts it."""
    organization, admin = trial_organization
    invite = invite_create(organization=organization, actor=admin, email="erin@example.org")
    erin = UserFactory(email="erin@example.org")
    invite_accept(invite=invite, user=erin)
    invite_accept(invite=invite, user=erin)
    joined = Event.objects.get(name="invitee_joined")
    assert joined.user == admin and joined.organization == organization
    assert joined.properties["role"] == "member"
