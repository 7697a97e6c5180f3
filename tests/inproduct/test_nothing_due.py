""""Nothing due", remembered (inproduct/messages.py): kept per person and product while the
organization's billing is unchanged, void at once when it changes, forgotten after a success
moment, and cheap to answer."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.models import Subscription
from inproduct.messages import message_due
from inproduct.models import OfferClosed
from inproduct.services import success_record

from .helpers import (
    admin_membership,
    caller_for,
    headers,
    long_standing,
    member_of,
    nudge_experiment,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("nothing_due_remembered")]


def test_nothing_due_is_remembered_until_the_organizations_billing_changes(organization, no_survey):
    organization, _ = organization
    member = member_of(organization)
    assert message_due(caller=caller_for(member)) is None
    long_standing(member)  # the survey's tenure rule now passes, without any billing change
    assert message_due(caller=caller_for(member)) is None  # remembered
    subscription = Subscription.objects.get(organization=organization)
    subscription.trial_ends_at = timezone.now() + timedelta(days=2)
    subscription.save()
    assert message_due(caller=caller_for(member)).id == "prompt:trial_ends.tracker.3"


def test_a_success_moment_forgets_it(organization, no_survey):
    organization, admin = organization
    membership = admin_membership(organization, admin)
    for code in ("wiki", "servicedesk"):
        OfferClosed.objects.create(user=admin, organization=organization, offer=f"try:{code}", action="dismissed")
    nudge_experiment("in-product-first-success")
    assert message_due(caller=caller_for(membership)) is None
    success_record(caller=caller_for(membership), name="card_created")
    assert message_due(caller=caller_for(membership)).id == "nudge:invite"


def test_a_remembered_answer_costs_the_credential_and_two_reads(organization, no_survey, client):
    organization, _ = organization
    caller = caller_for(member_of(organization))
    assert client.get(reverse("kit_message"), **headers(caller)).json() == {"message": None}
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("kit_message"), **headers(caller)).json() == {"message": None}
    assert len(queries) <= 3, [query["sql"][:120] for query in queries]
