"""`inproduct_demo` (run by `demo_data` in `make run`): the organizations whose people see a
trial-ending prompt, a seat-limit prompt and the survey in the demo product, their workspaces
ready; running it again changes nothing but keeping the trial 3 days from its end."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from accounts.models import Membership
from billing.prompts import prompts_for
from experiments.models import Experiment
from feedback.services import survey_decide
from provisioning.models import Environment

pytestmark = pytest.mark.django_db


def _membership(email: str) -> Membership:
    return Membership.objects.select_related("user", "organization").get(user__email=email)


def test_each_demo_account_has_the_message_it_is_printed_with(catalog):
    call_command("demo_data", "--only-accounts", stdout=io.StringIO())
    printed = io.StringIO()
    call_command("inproduct_demo", stdout=printed)
    call_command("inproduct_demo", stdout=io.StringIO())  # idempotent

    text = printed.getvalue()
    for email in ("gina@globex.example", "gus@globex.example", "ian@initech.example", "uma@umbrella.example"):
        assert email in text
    assert "http://" in text and "trial-ending prompt" in text and "seat-limit prompt" in text and "survey" in text

    trial = [prompt for prompt in prompts_for(membership=_membership("gina@globex.example")) if prompt.kind == "trial_ends"]
    assert [(prompt.product, prompt.threshold) for prompt in trial] == [("tracker", "3")]
    assert "ends in 3 days" in trial[0].title
    assert [p.kind for p in prompts_for(membership=_membership("gus@globex.example"))] == ["trial_ends"]

    seats = prompts_for(membership=_membership("ian@initech.example"))
    assert [(prompt.kind, prompt.threshold) for prompt in seats] == [("seat_limit_reached", "10")]
    assert Membership.objects.filter(organization__name="Initech").count() == 10

    uma = _membership("uma@umbrella.example")
    assert prompts_for(membership=uma) == []
    assert survey_decide(membership=uma, product_code="wiki").ask

    assert Experiment.objects.filter(key="invite-nudge").count() == 1

    for name in ("Globex", "Initech", "Umbrella"):
        environment = Environment.objects.get(organization__name=name)
        assert environment.status == Environment.Status.ACTIVE and environment.url.endswith(f"/w/{environment.public_id}/")
