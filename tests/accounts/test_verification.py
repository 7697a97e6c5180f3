"""Confirming an address: a link already used says so, and the tab that signed up moves on
when the link is opened in another browser."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Membership, User

from .conftest import body_text, last_mail_to, link_in

STRONG = "plum-Orchard-47-kettle"

pytestmark = pytest.mark.usefixtures("eager_mail")


def _sign_up(client, capture, email):
    client.get("/signup?product=tracker&edition=standard")
    with capture(execute=True):
        response = client.post(reverse("account_signup"), {"email": email, "password1": STRONG})
    assert response["Location"] == reverse("account_email_verification_sent")
    return link_in(body_text(last_mail_to(email)), "/accounts/confirm-email/")


def test_a_used_link_says_the_address_is_already_confirmed(client, catalog, django_capture_on_commit_callbacks):
    link = _sign_up(client, django_capture_on_commit_callbacks, "vera@vega.example")
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(link)["Location"] == reverse("home")

    again = client.get(link).content.decode()
    assert "Your email address is already confirmed" in again and "vera@vega.example" in again
    assert "expired" not in again and f'href="{reverse("welcome")}">Continue' in again

    elsewhere = Client()
    page = elsewhere.get(link).content.decode()
    assert "Your email address is already confirmed" in page
    assert f'href="{reverse("account_login")}">Sign in' in page and "expired" not in page
    resubmitted = elsewhere.post(link)
    assert resubmitted.status_code == 200 and b"already confirmed" in resubmitted.content


def test_a_broken_link_says_how_to_get_a_new_one(client, catalog):
    page = client.get("/accounts/confirm-email/not-a-real-key/").content.decode()
    assert "This link has expired or is incomplete" in page
    assert "sign in with your email address and password: we send one at once" in page


def test_the_tab_that_signed_up_moves_on_when_another_browser_confirms(
    client, catalog, django_capture_on_commit_callbacks
):
    waiting = client.get(reverse("account_email_verification_sent")).content.decode()
    assert f'hx-get="{reverse("account_verification_status")}" hx-trigger="every 3s"' in waiting
    link = _sign_up(client, django_capture_on_commit_callbacks, "walt@whale.example")
    status = reverse("account_verification_status")
    assert client.get(status).json() == {"verified": False}

    phone = Client()
    with django_capture_on_commit_callbacks(execute=True):
        confirmed = phone.post(link)
    page = confirmed.content.decode()
    assert confirmed.status_code == 200 and "Your email address is confirmed" in page
    assert "it has moved on by itself" in page and "walt@whale.example" in page
    assert Client().get(status).json() == {"verified": False}  # a stranger learns nothing

    answer = client.get(status)
    assert answer.json()["verified"] is True and answer["HX-Redirect"] == answer.json()["next"]
    walt = User.objects.get(email="walt@whale.example")
    home = client.get(answer["HX-Redirect"], follow=True)
    assert home.wsgi_request.user == walt
    assert Membership.objects.get(user=walt).organization.name.encode() in home.content
