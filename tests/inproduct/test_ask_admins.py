"""Asking the admins (inproduct/services.py admins_ask): a member's request about a billing
prompt reaches every admin by email, at most once a day per person and kind."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership
from billing.models import Subscription
from experiments.models import Event
from inproduct.exceptions import AskedToday, MessageNotDue, PermissionDenied
from inproduct.messages import message_due
from inproduct.models import AdminAsk, KitSession
from inproduct.services import admins_ask, admins_sentence

from ..conftest import organization_on
from ..factories import MembershipFactory, UserFactory
from .helpers import caller_for, headers, member_of

pytestmark = pytest.mark.django_db

SEAT_PROMPT = "prompt:seat_limit_reached.tracker.10"


@pytest.fixture
def full(catalog, no_survey):
    """An organization on Tracker Free with every one of its 10 seats taken: Ada and Bob are
    its admins, Carol one of its members."""
    organization, ada = organization_on("free", members=8)
    ada.first_name, ada.last_name = "Ada", "Lovelace"
    ada.save()
    bob = UserFactory(email="bob@acme.example", first_name="Bob", last_name="Smith")
    MembershipFactory(organization=organization, user=bob, role=Membership.Role.ADMIN)
    carol = member_of(organization, email="carol@acme.example", name=("Carol", "Jones"))
    organization.name = "Acme"
    organization.save()
    return organization, carol


def test_a_member_asks_and_every_admin_gets_an_email_they_can_act_on(full, eager_tasks, django_capture_on_commit_callbacks):
    organization, carol = full
    caller = caller_for(carol)
    assert message_due(caller=caller).id == SEAT_PROMPT
    with django_capture_on_commit_callbacks(execute=True):
        names = admins_ask(caller=caller, message_id=SEAT_PROMPT)
    assert names == ["Ada Lovelace", "Bob Smith"]
    assert sorted(email.to[0] for email in mail.outbox) == sorted(
        [Membership.objects.get(organization=organization, user__first_name="Ada").user.email, "bob@acme.example"]
    )
    email = next(email for email in mail.outbox if email.to == ["bob@acme.example"])
    assert email.subject == "[Flywheel] Carol Jones asks: All 10 seats of Tracker Free are taken"
    assert email.reply_to == ["carol@acme.example"]
    body = email.body
    assert body.startswith("Hello Bob,\n\nCarol Jones (carol@acme.example), a member of Acme, saw this in Tracker")
    # The admin's own copy and action (billing's): a bigger edition, with its price.
    assert "Move to Tracker Standard" in body and "per seat a month" in body
    assert f"Move to Standard:\n{settings.SITE_URL}/billing/checkout/" in body
    assert "To answer Carol Jones, reply to this email." in body
    html = email.alternatives[0][0]
    assert "<strong>Acme</strong>" in html
    ask = AdminAsk.objects.get()
    assert (ask.user, ask.kind, ask.recipients) == (carol.user, "seat_limit_reached", 2)
    event = Event.objects.get(name="kit_admins_asked")
    assert event.properties["kind"] == "seat_limit_reached" and event.properties["recipients"] == 2
    # Asking is acting on the message: the session shows nothing more.
    assert KitSession.objects.get(pk=caller.session.pk).message_closed_at is not None


def test_once_a_day_per_person_and_kind(full, eager_tasks, django_capture_on_commit_callbacks):
    organization, carol = full
    with django_capture_on_commit_callbacks(execute=True):
        admins_ask(caller=caller_for(carol), message_id=SEAT_PROMPT)
    sent = len(mail.outbox)
    with pytest.raises(AskedToday, match="You asked the admins about this today already; they have your request."):
        admins_ask(caller=caller_for(carol), message_id=SEAT_PROMPT)
    assert len(mail.outbox) == sent and AdminAsk.objects.count() == 1
    with time_machine.travel(timezone.now() + timedelta(days=1)):
        with django_capture_on_commit_callbacks(execute=True):
            admins_ask(caller=caller_for(carol), message_id=SEAT_PROMPT)
    assert AdminAsk.objects.count() == 2 and len(mail.outbox) == 2 * sent


def test_an_admin_is_not_asked_to_ask_and_a_prompt_that_no_longer_applies_is_refused(full):
    organization, carol = full
    ada = Membership.objects.get(organization=organization, user__first_name="Ada")
    with pytest.raises(PermissionDenied, match="you can act on this yourself"):
        admins_ask(caller=caller_for(ada), message_id=SEAT_PROMPT)
    with pytest.raises(MessageNotDue):
        admins_ask(caller=caller_for(carol), message_id="prompt:trial_ends.tracker.3")
    assert not AdminAsk.objects.exists()


def test_over_http(full, client):
    organization, carol = full
    caller = caller_for(carol)
    url = reverse("kit_ask_admins")
    body = json.dumps({"message": SEAT_PROMPT})
    response = client.post(url, body, content_type="application/json", **headers(caller))
    assert response.status_code == 202
    assert response.json() == {"detail": "We asked Ada Lovelace and Bob Smith (admins of Acme)."}
    again = client.post(url, body, content_type="application/json", **headers(caller))
    assert again.status_code == 429
    assert again.json() == {"detail": "You asked the admins about this today already; they have your request."}
    gone = client.post(url, json.dumps({"message": "prompt:suspended.tracker.suspended"}), content_type="application/json", **headers(caller))
    assert gone.status_code == 404
    assert "admins were not asked" in gone.json()["detail"]


def test_admin_lists_are_short_past_five(full):
    assert admins_sentence(names=["Ada"], organization_name="Acme") == "We asked Ada (admin of Acme)."
    assert admins_sentence(names=list("ABCDEFG"), organization_name="Acme") == "We asked A, B, C, D, E and 2 other admins of Acme."


def test_a_member_prompt_of_a_suspended_product_can_be_sent_to_the_admins(full, eager_tasks, django_capture_on_commit_callbacks):
    organization, carol = full
    Subscription.objects.filter(organization=organization).update(status=Subscription.Status.SUSPENDED)
    with django_capture_on_commit_callbacks(execute=True):
        admins_ask(caller=caller_for(carol), message_id="prompt:suspended.tracker.suspended")
    assert any("Tracker is suspended" in email.subject for email in mail.outbox)
