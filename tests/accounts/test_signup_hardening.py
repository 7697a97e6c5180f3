"""The signup journey under a proxy, a double submit, a second trial, invites to other addresses,
and organization names that stay one line (they go into email subjects)."""

import threading

import pytest
from allauth.account.models import EmailAddress
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.models import Invite, Membership, User
from accounts.services import invite_create, organization_create_for_signup, user_signup_record
from billing.models import Subscription

from ..conftest import organization_on
from ..factories import PASSWORD, UserFactory

STRONG = "plum-Orchard-47-kettle"
# config/settings.py's production values (settings_test raises some of them).
PRODUCTION_LIMITS = {
    "change_password": "5/m/user", "manage_email": "10/m/user", "reset_password": "20/m/ip,5/m/key",
    "reauthenticate": "10/m/user", "reset_password_from_key": "20/m/ip", "signup": "20/m/ip",
    "login": "30/m/ip", "login_failed": "10/m/ip,5/5m/key", "confirm_email": "1/3m/key",
}


def _signup(client, email, **extra):
    return client.post(reverse("account_signup"), {"email": email, "password1": STRONG, "password2": STRONG, **extra})


def _behind_proxy(n):
    """A browser behind the TLS proxy of docs/deployment.md: REMOTE_ADDR is the proxy."""
    return Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")


def test_behind_the_proxy_ten_strangers_failing_logins_do_not_lock_everyone_out(settings, catalog):
    cache.clear()
    settings.ACCOUNT_RATE_LIMITS = PRODUCTION_LIMITS
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1  # production's default
    UserFactory(email="legit@legit.example")
    for n in range(10):
        _behind_proxy(n).post(reverse("account_login"), {"login": f"guess{n}@x.example", "password": "wrong"})
    response = _behind_proxy(77).post(reverse("account_login"), {"login": "legit@legit.example", "password": PASSWORD})
    assert response.status_code == 302, "a different client with the right password was refused"


def test_behind_the_proxy_the_signup_limit_counts_each_client(settings, catalog):
    cache.clear()
    settings.ACCOUNT_RATE_LIMITS = PRODUCTION_LIMITS
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1  # production's default
    codes = [_signup(_behind_proxy(n), f"person{n}@company{n}.example").status_code for n in range(21)]
    assert codes[-1] == 302, f"the 21st different client was refused: {codes}"


@pytest.mark.django_db(transaction=True)
def test_a_double_submitted_signup_form_answers_as_for_a_taken_address(settings, catalog):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]  # production's
    barrier, codes = threading.Barrier(2), []

    def submit():
        client = Client(raise_request_exception=False)
        barrier.wait()
        try:
            codes.append(_signup(client, "double@double.example").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    [thread.start() for thread in threads]
    [thread.join() for thread in threads]
    assert User.objects.filter(email="double@double.example").count() == 1
    assert sorted(codes) == [302, 302], codes


def test_a_free_edition_canceled_without_a_trial_leaves_the_trial_unused(client, catalog):
    organization, admin = organization_on("free", "wiki")  # Wiki Free, never a trial
    Subscription.objects.filter(organization=organization).update(status=Subscription.Status.CANCELED)
    client.force_login(admin)
    client.post(reverse("product_trial_start"), {"product": "wiki"})  # "Try Wiki" on the billing page
    restarted = Subscription.objects.exclude(status=Subscription.Status.CANCELED).get(organization=organization)
    assert restarted.status == Subscription.Status.TRIALING, "refused as 'trial used before', sent to checkout"


def test_an_invite_refused_for_another_address_says_so(client, catalog):
    from accounts.services import invite_create, invite_token

    organization, admin = organization_on("standard")
    invite = invite_create(organization=organization, actor=admin, email="alice@corp.example")
    client.get(f"/invites/{invite_token(invite)}/")
    # The invitee tries her personal address: the form keeps the invited one and says why.
    page = _signup(client, "alice.home@gmail.com").content.decode()
    assert not User.objects.filter(email="alice.home@gmail.com").exists()
    assert Invite.objects.get(pk=invite.pk).status == Invite.Status.PENDING
    assert "is for alice@corp.example: sign up with that address" in page
    assert "ask an admin there to invite it" in page


def test_inviting_a_members_other_verified_address_is_refused(catalog):
    from accounts.exceptions import AlreadyMember
    from accounts.services import invite_create

    organization, admin = organization_on("standard")
    bob = UserFactory(email="bob@corp.example")
    Membership.objects.create(organization=organization, user=bob)
    EmailAddress.objects.create(user=bob, email="bob.smith@corp.example", verified=True, primary=False)
    with pytest.raises(AlreadyMember):
        invite_create(organization=organization, actor=admin, email="bob.smith@corp.example")


def test_organization_names_are_one_line(catalog):
    user = UserFactory(email="eve@eve.example")
    user_signup_record(user=user, organization_name="Evil\r\nBcc: victim@example.org")
    organization = organization_create_for_signup(user=user)
    assert organization.name == "Evil Bcc: victim@example.org"
    invite_create(organization=organization, actor=user, email="someone@example.org")  # renders a subject
