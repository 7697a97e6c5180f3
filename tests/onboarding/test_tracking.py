"""Opens (pixel) and clicks (signed redirects that are never open redirects)."""

from __future__ import annotations

import html
import re

import pytest
import time_machine
from django.core import signing
from django.urls import reverse

from experiments.models import Event
from onboarding import events
from onboarding.models import Send
from onboarding.services.enrolments import enrolment_create
from onboarding.services.messages import open_pixel_url, tracked_url
from onboarding.services.sending import send_deliver
from onboarding.services.tick import onboarding_tick
from onboarding.services.tokens import CLICK_SALT

from ..factories import UserFactory
from .factories import fourteen_day_sequence


@pytest.fixture
def sent(db, settings, mailoutbox):
    settings.ONBOARDING_DEFAULT_SEQUENCE = "tracked"
    settings.ONBOARDING_EXPERIMENT_KEY = "no-such-experiment"
    settings.ONBOARDING_QUIET_HOURS_START = settings.ONBOARDING_QUIET_HOURS_END = 0
    fourteen_day_sequence("tracked")
    enrolment_create(user=UserFactory(email="tracked@example.com"))
    [send_id] = onboarding_tick().send_ids
    assert send_deliver(send_id=send_id) == "sent"
    return Send.objects.get(pk=send_id)


def local(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def test_a_click_on_our_own_page_is_counted_and_redirected(client, sent, settings):
    destination = f"{settings.SITE_URL}/app/members/?from=email"
    response = client.get(local(tracked_url(sent, destination)))
    assert response.status_code == 302
    assert response["Location"] == destination
    client.get(local(tracked_url(sent, destination)))
    sent.refresh_from_db()
    assert sent.click_count == 2 and sent.clicked_at is not None
    clicks = Event.objects.filter(name=events.ONBOARDING_EMAIL_CLICKED)
    assert clicks.count() == 2
    assert clicks.first().properties["url"] == destination
    assert clicks.first().properties["sequence"] == "tracked"


@pytest.mark.parametrize(
    "destination",
    ["https://evil.example/phish", "//evil.example/phish", "javascript:alert(1)", "http://127.0.0.1:8000@evil.example/"],
)
def test_the_signed_redirect_refuses_foreign_urls_even_when_signed(client, sent, destination):
    # Even a correctly signed token (a leaked key, a staff typo) cannot leave our hosts.
    token = signing.dumps({"s": str(sent.public_id), "u": destination}, salt=CLICK_SALT, compress=True)
    response = client.get(reverse("onboarding_click", args=[token]))
    assert response.status_code == 400
    assert b"does not lead to a Flywheel page" in response.content
    assert not Event.objects.filter(name=events.ONBOARDING_EMAIL_CLICKED).exists()


def test_a_tampered_click_link_is_refused(client, sent, settings):
    good = tracked_url(sent, f"{settings.SITE_URL}/app/")
    token = good.rstrip("/").rsplit("/", 1)[1]
    tampered = signing.dumps({"s": str(sent.public_id), "u": "https://evil.example/"}, key="guess", salt=CLICK_SALT)
    for bad in (token[:-3] + "xyz", tampered):
        response = client.get(reverse("onboarding_click", args=[bad]))
        assert response.status_code == 400
    assert Send.objects.get(pk=sent.pk).click_count == 0


@pytest.mark.parametrize("send", ["not-a-uuid", None, 7])
def test_a_signed_click_link_naming_no_send_still_leads_to_our_page_and_counts_nothing(client, sent, settings, send):
    token = signing.dumps({"s": send, "u": f"{settings.SITE_URL}/app/"}, salt=CLICK_SALT, compress=True)
    response = client.get(reverse("onboarding_click", args=[token]))
    assert (response.status_code, response["Location"]) == (302, f"{settings.SITE_URL}/app/")
    assert not Event.objects.filter(name=events.ONBOARDING_EMAIL_CLICKED).exists()


def test_the_open_pixel_counts_opens_and_records_the_first(client, sent):
    for _ in range(3):
        response = client.get(local(open_pixel_url(sent)))
        assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    sent.refresh_from_db()
    assert sent.open_count == 3 and sent.opened_at is not None
    assert Event.objects.filter(name=events.ONBOARDING_EMAIL_OPENED).count() == 1
    # A made-up token still gets the image, and records nothing.
    assert client.get(reverse("onboarding_open", args=["made-up"])).status_code == 200
    assert Event.objects.filter(name=events.ONBOARDING_EMAIL_OPENED).count() == 1


def test_links_in_the_sent_email_point_through_the_redirect(client, sent, mailoutbox, settings):
    [message] = mailoutbox
    html = message.alternatives[0][0]
    tracked = re.search(r'href="([^"]+/email/click/[^"]+/)">Open Flywheel', html).group(1)
    response = client.get(local(tracked))
    assert response.status_code == 302 and response["Location"] == f"{settings.SITE_URL}/app/"


def test_links_resolved_once_per_chunk_are_the_links_made_one_by_one(sent, settings):
    from onboarding.services.messages import Links
    from onboarding.services.suppression import unsubscribe_url

    settings.ONBOARDING_LINK_HOSTS = ["app.example.com"]
    with time_machine.travel(sent.sent_at, tick=False):  # tokens carry the second they were signed
        links = Links.resolve()
        assert links.unsubscribe_url("Tracked@Example.com ") == unsubscribe_url("tracked@example.com")
        assert links.open_pixel_url(sent) == open_pixel_url(sent)
        escaped = f"{settings.SITE_URL}/app/?a=1&amp;b=2"
        assert links.own_href(escaped) == f"{settings.SITE_URL}/app/?a=1&b=2"
        assert links.tracked_href(sent, links.own_href(escaped)) == html.escape(tracked_url(sent, f"{settings.SITE_URL}/app/?a=1&b=2"))
    assert links.own_href("https://evil.example/?a=1&amp;b=2") is None
    assert links.is_own("https://app.example.com/x") and links.is_own(f"{settings.SITE_URL}/y")
    assert not links.is_own("https://evil.example/") and not links.is_own("//evil.example/")


@pytest.mark.parametrize("payload", ["tracked@example.com", {"s": "4c1d", "u": "https://app.example.com/x?a=1&b=é"}])
def test_email_tokens_are_the_tokens_django_signing_makes_and_checks(settings, payload):
    from onboarding.services.tokens import token_sign

    with time_machine.travel("2026-03-02 10:00:00Z", tick=False):
        token = token_sign(payload, salt=CLICK_SALT)
        assert token == signing.dumps(payload, salt=CLICK_SALT)
    assert signing.loads(token, salt=CLICK_SALT) == payload
    with pytest.raises(signing.BadSignature):
        signing.loads(token, salt="another.salt")
    settings.SECRET_KEY = "a-rotated-secret-key-long-enough-for-django-" * 2
    assert token_sign(payload, salt=CLICK_SALT) != token  # signed with the new key, not a cached one
    with pytest.raises(signing.BadSignature):
        signing.loads(token, salt=CLICK_SALT)
