"""The one-click trial from the kit (POST /kit/v1/trials): the billing page's rules."""

import json

import pytest
from django.conf import settings
from django.urls import reverse

from billing.models import Subscription
from experiments.models import Event
from inproduct.exceptions import PermissionDenied
from inproduct.messages import message_due
from inproduct.models import KitSession
from inproduct.services import trial_start
from onboarding.models import MarketingSend
from provisioning.models import Environment

from .helpers import admin_membership, caller_for, headers, member_of

pytestmark = pytest.mark.django_db


def post(client, caller, product: str):
    return client.post(reverse("kit_trials"), json.dumps({"product": product}), content_type="application/json", **headers(caller))


def test_an_admin_starts_a_trial_of_a_product_offered_in_the_kit(organization, no_survey, client):
    organization, admin = organization
    caller = caller_for(admin_membership(organization, admin))
    assert message_due(caller=caller).id == "try:wiki+servicedesk"
    response = post(client, caller, "wiki")
    assert response.status_code == 201
    environment = Environment.objects.get(organization=organization, product__code="wiki")
    assert response.json() == {
        "detail": "Your Wiki Standard trial has started: 14 days, free.",
        "url": f"{settings.SITE_URL}/environments/{environment.public_id}/",
    }
    wiki = Subscription.objects.get(organization=organization, product__code="wiki")
    assert wiki.status == Subscription.Status.TRIALING and wiki.started_by == admin
    assert Event.objects.get(name="kit_trial_started").properties["product"] == "wiki"
    assert KitSession.objects.get(pk=caller.session.pk).message_closed_at is not None
    # The next session: the marketing cap's slot went to the offer; once the window passes,
    # what is left to try.
    assert message_due(caller=caller_for(caller.membership)) is None
    MarketingSend.objects.all().delete()
    assert message_due(caller=caller_for(caller.membership)).id == "try:servicedesk"


def test_a_member_cannot_start_a_trial(organization, no_survey, client):
    organization, admin = organization
    member = member_of(organization)
    with pytest.raises(PermissionDenied, match="Only an admin of"):
        trial_start(caller=caller_for(member), product_code="wiki")
    response = post(client, caller_for(member), "wiki")
    assert response.status_code == 403
    assert not Subscription.objects.filter(product__code="wiki").exists()


def test_a_spent_trial_says_what_buying_costs_and_nothing_is_created(organization, no_survey, client):
    organization, admin = organization
    caller = caller_for(admin_membership(organization, admin))
    assert post(client, caller, "wiki").status_code == 201
    Subscription.objects.filter(product__code="wiki").update(status=Subscription.Status.CANCELED)
    response = post(client, caller, "wiki")
    assert response.status_code == 409
    assert response.json() == {
        "detail": f"{organization.name} has had its Wiki trial already. Buying Wiki Standard costs USD 6.11 per seat "
        "a month: use its Buy button; nothing is charged before you confirm the price.",
        "url": f"{settings.SITE_URL}/billing/",
    }
    assert Subscription.objects.filter(product__code="wiki").count() == 1


def test_a_product_it_has_or_without_a_trial_is_refused(organization, no_survey, client):
    organization, admin = organization
    caller = caller_for(admin_membership(organization, admin))
    response = post(client, caller, "tracker")
    assert response.status_code == 409
    assert response.json() == {"detail": f"{organization.name} already has Tracker."}
    response = post(client, caller, "nope")
    assert response.status_code == 409
    assert response.json() == {"detail": "That product has no trial."}
