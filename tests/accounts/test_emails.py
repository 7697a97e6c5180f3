"""Every email allauth sends, rendered and read as its recipient reads it: the site's name,
the recipient's address and working links, never a hole where a name should be."""

import pytest
from django.urls import reverse

from ..factories import PASSWORD, UserFactory
from .conftest import assert_reads_well, body_text, last_mail_to, link_in

STRONG = "plum-Orchard-47-kettle"

pytestmark = pytest.mark.usefixtures("eager_mail")


def _post(client, capture, url, data):
    with capture(execute=True):
        return client.post(url, data)


def test_verification_email_names_flywheel_and_the_address(client, catalog, django_capture_on_commit_callbacks):
    _post(client, django_capture_on_commit_callbacks, reverse("account_signup"), {"email": "nell@lovelace-labs.example", "password1": STRONG, "password2": STRONG})
    mail = last_mail_to("nell@lovelace-labs.example")
    text = body_text(mail)
    assert mail["Subject"] == "[Flywheel] Confirm your email address to finish signing up"
    assert "Thanks for signing up for Flywheel with nell@lovelace-labs.example." in text
    assert "Hello from" not in text and "Thank you for using" not in text
    assert "The link works for 3 days." in text
    assert link_in(text, "/accounts/confirm-email/")
    assert text.rstrip().endswith("The Flywheel team\nhttp://127.0.0.1:8000") or "The Flywheel team" in text
    assert_reads_well(text)


def test_account_already_exists_email_names_the_address_and_the_ways_back(client, catalog, django_capture_on_commit_callbacks):
    UserFactory(email="taken@example.org")
    _post(client, django_capture_on_commit_callbacks, reverse("account_signup"), {"email": "taken@example.org", "password1": STRONG, "password2": STRONG})
    mail = last_mail_to("taken@example.org")
    text = body_text(mail)
    assert mail["Subject"] == "[Flywheel] You already have a Flywheel account"
    assert "tried to sign up for Flywheel with taken@example.org." in text
    assert link_in(text, "/accounts/login/") == "/accounts/login/"
    assert link_in(text, "/accounts/password/reset/") == "/accounts/password/reset/"
    assert_reads_well(text)


def test_password_reset_email_and_the_notice_after_it(client, catalog, django_capture_on_commit_callbacks):
    UserFactory(email="forgetful@example.org")
    _post(client, django_capture_on_commit_callbacks, reverse("account_reset_password"), {"email": "forgetful@example.org"})
    mail = last_mail_to("forgetful@example.org")
    text = body_text(mail)
    assert mail["Subject"] == "[Flywheel] Reset your Flywheel password"
    assert "reset the password of your Flywheel account (forgetful@example.org)" in text
    assert_reads_well(text)

    key_page = client.get(link_in(text, "/accounts/password/reset/key/"), follow=True)
    new = "quince-Harbour-58-lantern"
    _post(client, django_capture_on_commit_callbacks, key_page.redirect_chain[-1][0], {"password1": new, "password2": new})
    notice = last_mail_to("forgetful@example.org")
    assert notice["Subject"] == "[Flywheel] Your Flywheel password was reset"
    notice_text = body_text(notice)
    assert "The password of your Flywheel account (forgetful@example.org) was reset." in notice_text
    assert "If this was you, there is nothing to do." in notice_text
    assert link_in(notice_text, "/accounts/password/reset/")
    assert_reads_well(notice_text)


def test_unknown_address_gets_a_note_that_names_it(client, catalog, django_capture_on_commit_callbacks):
    _post(client, django_capture_on_commit_callbacks, reverse("account_reset_password"), {"email": "nobody@example.org"})
    mail = last_mail_to("nobody@example.org")
    assert mail["Subject"] == "[Flywheel] No Flywheel account for nobody@example.org"
    text = body_text(mail)
    assert "There is no account with this address." in text and link_in(text, "/signup")
    assert_reads_well(text)


def test_password_change_sends_a_notice(client, catalog, django_capture_on_commit_callbacks):
    user = UserFactory(email="careful@example.org")
    client.force_login(user)
    new = "quince-Harbour-58-lantern"
    _post(client, django_capture_on_commit_callbacks, reverse("account_change_password"), {"oldpassword": PASSWORD, "password1": new, "password2": new})
    mail = last_mail_to("careful@example.org")
    assert mail["Subject"] == "[Flywheel] Your Flywheel password was changed"
    text = body_text(mail)
    assert "The password of your Flywheel account (careful@example.org) was changed." in text
    assert "From: IP address 127.0.0.1" in text
    assert_reads_well(text)


def test_site_name_setting_names_the_site_everywhere(client, catalog, settings, django_capture_on_commit_callbacks):
    settings.SITE_NAME = "Acme Cloud"
    _post(client, django_capture_on_commit_callbacks, reverse("account_signup"), {"email": "olga@example.org", "password1": STRONG, "password2": STRONG})
    mail = last_mail_to("olga@example.org")
    assert mail["Subject"] == "[Acme Cloud] Confirm your email address to finish signing up"
    assert "Flywheel" not in body_text(mail) and "The Acme Cloud team" in body_text(mail)


def test_invite_email_names_the_role_the_address_and_one_date_format(trial_organization, django_capture_on_commit_callbacks):
    from accounts.services import invite_create

    organization, admin = trial_organization
    with django_capture_on_commit_callbacks(execute=True):
        invite = invite_create(organization=organization, actor=admin, email="ivy@example.org")
    mail = last_mail_to("ivy@example.org")
    text = body_text(mail)
    assert mail["Subject"] == f"[Flywheel] You are invited to join {organization.name}"
    assert f"{admin.email} invited you to join {organization.name} on Flywheel as a member." in text
    assert f"the link works until {invite.expires_at:%-d %b %Y}" in text
    assert "this invitation confirms your address (ivy@example.org)" in text
    assert_reads_well(text)
