"""The signup page: says what the person chose, asks for an address and one password, and
through an invite link fills in the invited address, locks it, and joins at once."""

import re

import pytest
from allauth.account.models import EmailAddress
from django.urls import reverse

from accounts.models import Invite, Membership, Organization, User
from accounts.services import invite_create, invite_revoke, invite_token, seats_in_use

from .conftest import sent_to

STRONG = "plum-Orchard-47-kettle"

pytestmark = pytest.mark.usefixtures("eager_mail")


def _page(client, url):
    response = client.get(url, follow=True)
    assert response.status_code == 200
    return response.content.decode()


def _inputs(html: str) -> list[str]:
    return re.findall(r"<input[^>]*>", html)


def test_signup_page_names_the_edition_and_trial_and_asks_for_little(client, catalog):
    html = _page(client, "/signup?product=tracker&edition=standard")
    assert "Start your 14-day Tracker Standard trial" in html
    passwords = [tag for tag in _inputs(html) if 'type="password"' in tag]
    assert len(passwords) == 1 and "data-password-toggle" in passwords[0]
    assert 'name="organization_name"' not in html and "Organization name" not in html
    assert "you can rename it at any time" in html
    assert "/static/js/account.js" in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "an inline script"


def test_free_edition_signup_says_free(client, catalog):
    html = _page(client, "/signup?product=wiki&edition=free")
    assert "Start Wiki Free" in html and "Free for as long as you like" in html
    assert "trial" not in html.split("<main", 1)[1].split("</h1>", 1)[0]


def test_signup_with_one_password_creates_the_account(client, catalog, django_capture_on_commit_callbacks):
    client.get("/signup?product=tracker&edition=standard")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("account_signup"), {"email": "uma@umbrella.example", "password1": STRONG})
    assert response.status_code == 302 and response["Location"] == reverse("account_email_verification_sent")
    assert User.objects.filter(email="uma@umbrella.example").exists()


def _invited(organization, admin, email="erin@example.org"):
    invite = invite_create(organization=organization, actor=admin, email=email)
    return invite, reverse("invite_landing", args=[invite_token(invite)])


def test_invite_signup_prefills_locks_and_joins_without_a_second_verification(
    client, trial_organization, django_capture_on_commit_callbacks
):
    organization, admin = trial_organization
    invite, link = _invited(organization, admin)
    seats_before = seats_in_use(organization=organization)

    landing = _page(client, link)
    assert "Create an account with erin@example.org" in landing
    html = _page(client, reverse("account_signup"))
    email_input = next(tag for tag in _inputs(html) if 'name="email"' in tag)
    assert 'value="erin@example.org"' in email_input and "readonly" in email_input
    assert f"Join {organization.name}" in html and "Organization name" not in html
    assert "your invitation already confirmed your address" in html

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("account_signup"), {"email": "erin@example.org", "password1": STRONG})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    erin = User.objects.get(email="erin@example.org")
    assert EmailAddress.objects.get(user=erin).verified
    membership = Membership.objects.get(user=erin)
    assert membership.organization == organization and membership.source == Membership.Source.INVITE
    assert Invite.objects.get(pk=invite.pk).status == Invite.Status.ACCEPTED
    assert seats_in_use(organization=organization) == seats_before  # the invite's seat became hers
    assert Organization.objects.filter(memberships__user=erin).count() == 1
    assert not [m for m in sent_to("erin@example.org") if "confirm-email" in m.get_body().get_content()]

    home = client.get(reverse("home"), follow=True).content.decode()
    assert f"Welcome to {organization.name}." in home


def test_invite_signup_refuses_another_address_and_stores_nothing(client, trial_organization):
    organization, admin = trial_organization
    invite, link = _invited(organization, admin)
    client.get(link)
    response = client.post(reverse("account_signup"), {"email": "mallory@evil.example", "password1": STRONG})
    assert response.status_code == 200
    assert "is for erin@example.org: sign up with that address" in response.content.decode()
    assert not User.objects.filter(email__in=["mallory@evil.example", "erin@example.org"]).exists()
    assert not EmailAddress.objects.filter(email__in=["mallory@evil.example", "erin@example.org"]).exists()
    assert Invite.objects.get(pk=invite.pk).status == Invite.Status.PENDING


def test_a_withdrawn_invite_no_longer_shapes_signup(client, trial_organization, django_capture_on_commit_callbacks):
    organization, admin = trial_organization
    invite, link = _invited(organization, admin)
    client.get(link)
    invite_revoke(invite=invite, actor=admin)
    html = _page(client, reverse("account_signup"))
    assert "readonly" not in next(tag for tag in _inputs(html) if 'name="email"' in tag)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("account_signup"), {"email": "erin@example.org", "password1": STRONG})
    erin = User.objects.get(email="erin@example.org")
    assert not EmailAddress.objects.get(user=erin).verified  # she confirms by email, as anyone does
    assert not Membership.objects.filter(user=erin).exists()


def test_starting_from_a_landing_link_forgets_an_invite_opened_before(client, trial_organization):
    organization, admin = trial_organization
    _invite, link = _invited(organization, admin)
    client.get(link)
    html = _page(client, "/signup?product=wiki&edition=standard")
    assert "Start your 14-day Wiki Standard trial" in html
    assert "readonly" not in next(tag for tag in _inputs(html) if 'name="email"' in tag)
