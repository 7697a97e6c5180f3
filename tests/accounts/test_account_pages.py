"""allauth's pages in Flywheel's design vocabulary and words: a card, labels above fields
(.field), banners for what went wrong, one password field with Show, no library wording."""

import re

import pytest
from django.urls import reverse

from ..factories import PASSWORD, UserFactory
from .conftest import body_text, last_mail_to, link_in

LIBRARY_WORDING = ("Sign Up", "Sign In", "Remember Me", "Forgotten your password", "(again)", "Make Primary",
                   "Re-send Verification", "Bad Token", "If you have not created an account yet")


def _unlike_flywheel(html: str, heading: str) -> list[str]:
    """What keeps an allauth page from reading as Flywheel's: empty when it does."""
    main = html.split("<main", 1)[1]
    problems = []
    if f"<h1>{heading}</h1>" not in main:
        problems.append(f"no <h1>{heading}</h1>")
    if 'class="card stack entrance"' not in main:
        problems.append("not in the entrance card")
    problems += [f"library wording {words!r}" for words in LIBRARY_WORDING if words in main]
    for field in re.findall(r'<input[^>]*type="(?:email|password|text)"[^>]*>', main):
        name = re.search(r'id="([^"]+)"', field).group(1)
        if not re.search(rf'<div class="field">\s*<label for="{name}">', main):
            problems.append(f"{name} has no label above it")
    if len(re.findall(r'type="password"', main)) > 1 and "oldpassword" not in main:
        problems.append("more than one password field")
    return problems


@pytest.mark.parametrize(
    ("url_name", "heading"),
    [
        ("account_login", "Sign in to Flywheel"),
        ("account_signup", "Start your free trial"),
        ("account_reset_password", "Reset your password"),
        ("account_reset_password_done", "Check your email"),
        ("account_email_verification_sent", "Check your email"),
    ],
)
def test_signed_out_pages(client, catalog, url_name, heading):
    response = client.get(reverse(url_name))
    assert response.status_code == 200
    assert _unlike_flywheel(response.content.decode(), heading) == []


@pytest.mark.parametrize(
    ("url_name", "heading"),
    [
        ("account_logout", "Sign out"),
        ("account_change_password", "Change your password"),
        ("account_email", "Your email addresses"),
    ],
)
def test_signed_in_pages(client, catalog, url_name, heading):
    client.force_login(UserFactory())
    response = client.get(reverse(url_name))
    assert response.status_code == 200
    assert _unlike_flywheel(response.content.decode(), heading) == []


def test_wrong_password_is_a_banner_and_keeps_the_address(client, catalog):
    UserFactory(email="kim@example.org")
    response = client.post(reverse("account_login"), {"login": "kim@example.org", "password": "not-" + PASSWORD})
    html = response.content.decode()
    assert '<div class="banner danger" role="alert">' in html
    assert "The email address and/or password you specified are not correct." in html
    assert 'value="kim@example.org"' in html


@pytest.mark.usefixtures("eager_mail")
def test_reset_link_asks_for_one_new_password_and_a_used_link_says_so(client, catalog, django_capture_on_commit_callbacks):
    UserFactory(email="lee@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("account_reset_password"), {"email": "lee@example.org"})
    link = link_in(body_text(last_mail_to("lee@example.org")), "/accounts/password/reset/key/")
    page = client.get(link, follow=True)
    form_url = page.redirect_chain[-1][0]
    assert _unlike_flywheel(page.content.decode(), "Choose a new password") == []
    assert 'data-password-toggle' in page.content.decode()
    new = "quince-Harbour-58-lantern"
    done = client.post(form_url, {"password1": new}, follow=True)
    assert _unlike_flywheel(done.content.decode(), "Your password is changed") == []
    used = client.get(link, follow=True).content.decode()
    assert _unlike_flywheel(used, "This reset link cannot be used") == []
    assert "Send me a new link" in used
