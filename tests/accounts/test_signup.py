"""Signup over HTTP: landing link, allauth signup, verification email, organization and trial."""

import re

import pytest
from allauth.account.models import EmailAddress
from django.urls import reverse

from accounts.models import Membership, SignupIntent, User
from billing.models import Subscription
from experiments.models import Event
from provisioning.models import Environment

from ..conftest import body_text, mails_to, wait_for
from ..factories import PASSWORD, UserFactory

STRONG = "plum-Orchard-47-kettle"


def _signup(client, email, **extra):
    return client.post(
        reverse("account_signup"),
        {"email": email, "password1": STRONG, **extra},
    )


def _verification_link(email):
    messages = wait_for(lambda: mails_to(email), what=f"the verification email to {email}")
    match = re.search(r"https?://\S+/accounts/confirm-email/\S+/", body_text(messages[-1]))
    assert match, body_text(messages[-1])
    return match.group(0)


@pytest.mark.django_db(transaction=True)
def test_landing_link_to_ready_workspace(client, catalog, celery_worker):
    response = client.get("/signup?product=wiki&edition=premium&utm_source=newsletter&utm_campaign=fall")
    assert response.status_code == 302 and response["Location"] == reverse("account_signup")
    assert Event.objects.filter(name="signup_started").count() == 1

    response = _signup(client, "Ada@Lovelace-Labs.example")
    assert response.status_code == 302
    user = User.objects.get(email="ada@lovelace-labs.example")
    assert user.public_id
    intent = SignupIntent.objects.get(user=user)
    assert (intent.product_code, intent.edition_code) == ("wiki", "premium")
    assert intent.utm == {"utm_source": "newsletter", "utm_campaign": "fall"}
    assert not Membership.objects.filter(user=user).exists()  # nothing before verification

    link = _verification_link(user.email)
    path = link.split("://", 1)[1].split("/", 1)[1]
    assert client.get("/" + path).status_code == 200
    response = client.post("/" + path)
    # On failure, say which page answered (allauth renders the confirm page again when the
    # key does not load or no redirect follows the confirmation).
    assert response.status_code == 302, response.content.decode()[response.content.decode().find("<main"):][:1500]
    assert response["Location"] == reverse("home")
    assert EmailAddress.objects.get(user=user).verified

    membership = Membership.objects.get(user=user)
    assert membership.role == Membership.Role.ADMIN
    organization = membership.organization
    assert organization.name == "Lovelace Labs"  # from the address's domain, renamed later
    assert organization.email_domain == "lovelace-labs.example"
    subscription = Subscription.objects.get(organization=organization)
    assert subscription.status == Subscription.Status.TRIALING
    assert (subscription.product.code, subscription.edition.code) == ("wiki", "premium")
    assert subscription.seat_limit == 1000 and subscription.trial_ends_at is not None

    # welcome -> home -> the "being prepared" page, which the worker makes ready
    assert client.get(reverse("welcome"))["Location"] == reverse("home")
    environment = Environment.objects.get(organization=organization)
    wait_for(lambda: Environment.objects.get(pk=environment.pk).status == "active", what="the environment")
    page = client.get(reverse("environment_status", args=[environment.public_id]))
    assert b"Your workspace is ready" in page.content
    renamed = client.post(reverse("organization_settings"), {"name": "Analytical Engines"}, follow=True)
    assert b"Your organization is now called Analytical Engines." in renamed.content
    workspace = client.get(reverse("builtin_workspace", args=[environment.public_id]))
    assert b"Analytical Engines" in workspace.content

    steps = list(Event.objects.order_by("occurred_at", "id").values_list("name", flat=True))
    assert steps == [
        "signup_started",
        "signed_up",
        "email_verified",
        "organization_created",
        "trial_started",
        "environment_requested",
        "environment_active",
    ]
    signed_up = Event.objects.get(name="signed_up")
    assert signed_up.properties["anonymous_id"] == Event.objects.get(name="signup_started").distinct_id
    assert signed_up.properties["utm_source"] == "newsletter"


def test_unknown_product_or_edition_is_named(client, catalog):
    response = client.get("/signup?product=tracker&edition=platinum")
    assert response.status_code == 404
    assert b"Tracker has no edition called &#x27;platinum&#x27;" in response.content
    response = client.get("/signup?product=spaceship")
    assert b"There is no product called &#x27;spaceship&#x27;" in response.content
    assert not Event.objects.exists()


def test_signup_errors_name_the_field_and_create_nothing(client, catalog):
    response = client.post(
        reverse("account_signup"), {"email": "not-an-email", "password1": "x", "password2": "y"}
    )
    assert response.status_code == 200
    assert b"Enter a valid email address" in response.content
    assert not User.objects.exists()
    response = client.post(
        reverse("account_signup"), {"email": "ok@example.org", "password1": "password", "password2": "password"}
    )
    assert b"This password is too common" in response.content
    assert not User.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_signup_does_not_reveal_existing_accounts(client, catalog, celery_worker):
    existing = UserFactory(email="taken@example.org")
    response = _signup(client, "taken@example.org")
    fresh = _signup(client.__class__(), "brand-new@example.org")
    # Same answer either way: the "check your email" page.
    assert response.status_code == fresh.status_code == 302
    assert response["Location"] == fresh["Location"]
    assert User.objects.filter(email="taken@example.org").count() == 1
    assert existing.check_password(PASSWORD)
    notices = wait_for(lambda: mails_to("taken@example.org"), what="the account-exists notice")
    assert "already" in body_text(notices[-1]).lower()


def test_public_email_domain_never_becomes_the_organization_domain(client, catalog):
    from accounts.services import organization_create_for_signup

    user = UserFactory(email="someone@gmail.com")
    organization = organization_create_for_signup(user=user)
    assert organization.email_domain == ""
    assert organization.name == "Someone's team"
    assert Subscription.objects.filter(organization=organization, product__code="tracker").exists()


@pytest.mark.django_db(transaction=True)
def test_password_reset_mails_only_real_accounts_and_says_the_same_either_way(client, catalog, celery_worker):
    UserFactory(email="forgetful@example.org")
    known = client.post(reverse("account_reset_password"), {"email": "forgetful@example.org"})
    unknown = client.post(reverse("account_reset_password"), {"email": "nobody@example.org"})
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"]
    reset = wait_for(lambda: mails_to("forgetful@example.org"), what="the password reset email")[-1]
    assert "/accounts/password/reset/key/" in body_text(reset)


def test_signup_landing_keeps_only_known_utm_tags(client, catalog):
    from experiments.models import Event

    client.get("/signup?product=tracker&utm_source=" + "x" * 500 + "&utm_evil=1")
    properties = Event.objects.get(name="signup_started").properties
    assert properties["utm_source"] == "x" * 200
    assert "utm_evil" not in properties
