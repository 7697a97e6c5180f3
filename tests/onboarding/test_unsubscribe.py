"""Unsubscribe links and the suppression list every marketing email respects."""

from __future__ import annotations

import pytest
from django.core import signing
from django.test import Client, override_settings
from django.urls import reverse

from experiments.models import Event
from onboarding import events
from onboarding.models import Enrolment, MarketingSend, Send, Suppression
from onboarding.services.enrolments import enrolment_create
from onboarding.services.sending import send_deliver
from onboarding.services.suppression import (
    marketing_email_allowed,
    marketing_email_claim,
    suppression_add,
    unsubscribe_token,
)
from onboarding.services.tick import onboarding_tick
from onboarding.services.tokens import UNSUBSCRIBE_SALT

from ..factories import UserFactory
from .factories import fourteen_day_sequence


def url(token: str) -> str:
    return reverse("onboarding_unsubscribe", args=[token])


@pytest.mark.django_db
def test_the_link_shows_a_confirm_page_and_its_button_unsubscribes():
    user = UserFactory(email="Mia.Link@Example.com")
    token = unsubscribe_token(user.email)
    client = Client(enforce_csrf_checks=True)  # no login, no CSRF cookie: as from a mail client

    response = client.get(url(token))
    assert response.status_code == 200
    assert b"Unsubscribe mia.link@example.com?" in response.content
    assert b'<form method="post"' in response.content
    assert not Suppression.objects.exists()  # a GET (a link scanner) changes nothing

    response = client.post(url(token))
    assert response.status_code == 200
    assert b"will get no more marketing email" in response.content
    suppression = Suppression.objects.get()
    assert (suppression.email, suppression.reason, suppression.source) == ("mia.link@example.com", "unsubscribed", "link")
    assert Event.objects.filter(name=events.MARKETING_UNSUBSCRIBED, user=user).count() == 1

    assert client.post(url(token), {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert Suppression.objects.count() == 1  # idempotent


@pytest.mark.django_db
@pytest.mark.parametrize(
    "forge",
    [
        lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),  # tampered signature
        lambda token: signing.dumps("victim@example.com", salt="another.salt", compress=True),  # wrong salt
        lambda token: signing.dumps("victim@example.com", key="not-our-secret", salt=UNSUBSCRIBE_SALT),  # forged
        lambda token: "victim@example.com",  # no signature at all
    ],
    ids=["tampered", "wrong-salt", "forged-key", "unsigned"],
)
def test_a_forged_or_tampered_token_is_refused_and_nothing_changes(forge):
    token = forge(unsubscribe_token("victim@example.com"))
    client = Client(enforce_csrf_checks=True)
    for method in (client.get, client.post):
        response = method(url(token))
        assert response.status_code == 400
        assert b"This unsubscribe link is not valid" in response.content
    assert not Suppression.objects.exists()
    assert not Event.objects.filter(name=events.MARKETING_UNSUBSCRIBED).exists()


@pytest.mark.django_db
def test_a_suppressed_address_receives_no_marketing_email(settings, mailoutbox):
    settings.ONBOARDING_DEFAULT_SEQUENCE = "suppressed"
    settings.ONBOARDING_EXPERIMENT_KEY = "no-such-experiment"
    settings.ONBOARDING_QUIET_HOURS_START = settings.ONBOARDING_QUIET_HOURS_END = 0
    fourteen_day_sequence("suppressed")
    user = UserFactory(email="bounced@example.com")
    enrolment_create(user=user)
    # Suppressed by staff (say, after a bounce) without going through the enrolment.
    Suppression.objects.create(email="bounced@example.com", reason=Suppression.Reason.BOUNCED)

    assert marketing_email_allowed(email="BOUNCED@example.com") is False
    claim = marketing_email_claim(email="bounced@example.com", source="newsletter")
    assert (claim.allowed, claim.suppressed) == (False, True)

    [send_id] = onboarding_tick().send_ids
    assert send_deliver(send_id=send_id) == "suppressed"
    assert mailoutbox == []
    assert Send.objects.get(pk=send_id).status == Send.Status.SUPPRESSED
    enrolment = Enrolment.objects.get(user=user)
    assert (enrolment.status, enrolment.exit_reason, enrolment.next_send_at) == ("exited", "unsubscribed", None)
    assert not MarketingSend.objects.exists()


@pytest.mark.django_db
def test_unsubscribing_ends_the_enrolment_at_once():
    fourteen_day_sequence("ends")
    user = UserFactory(email="leaver@example.com")
    with override_settings(ONBOARDING_DEFAULT_SEQUENCE="ends", ONBOARDING_EXPERIMENT_KEY="none"):
        enrolment_create(user=user)
    suppression_add(email="Leaver@Example.com", source="preferences")
    enrolment = Enrolment.objects.get(user=user)
    assert (enrolment.status, enrolment.exit_reason) == ("exited", "unsubscribed")
    assert Event.objects.filter(name=events.ONBOARDING_EXITED, user=user, properties__reason="unsubscribed").exists()
    assert marketing_email_allowed(email="someone-else@example.com") is True
