"""Each product's card on /app/ and /billing/ says the same thing the same way: the trial's
days left beside its end date, and the seats as "used of limit"."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from ...conftest import organization_on
from ..helpers import paid_organization, workspace_ready

pytestmark = pytest.mark.django_db


def _card_text(html: str, marker: str) -> str:
    start = html.index(marker)
    return html[start : html.index("</section>", start)]


def test_a_trial_card_says_days_left_and_seats_used_of_limit_on_both_pages(client, catalog):
    organization, admin = organization_on("standard", members=3)
    workspace_ready(organization)
    client.force_login(admin)
    trial_ends_at = organization.subscriptions.get().trial_ends_at
    with time_machine.travel(trial_ends_at - timedelta(days=12, hours=3), tick=False):
        home = _card_text(client.get(reverse("home")).content.decode(), 'id="subscription-tracker"')
        billing = _card_text(client.get(reverse("billing")).content.decode(), 'id="billing-tracker"')
    for page in (home, billing):
        assert "13 days left, trial ends " in page
        assert "3 of 100 seats used" in page
        assert 'class="status active"' in page  # Trialing is green on both pages


def test_the_last_day_of_a_trial_is_counted_in_hours(client, catalog):
    organization, admin = organization_on("standard")
    client.force_login(admin)
    trial_ends_at = organization.subscriptions.get().trial_ends_at
    with time_machine.travel(trial_ends_at - timedelta(hours=5, minutes=10), tick=False):
        billing = _card_text(client.get(reverse("billing")).content.decode(), 'id="billing-tracker"')
    assert "6 hours left, trial ends " in billing
    assert timezone.now() < trial_ends_at


@pytest.mark.django_db(transaction=True)
def test_a_paid_card_offers_each_change_as_a_labelled_line_and_proposes_the_next_edition_up(client, localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe)
    client.force_login(admin)
    billing = _card_text(client.get(reverse("billing")).content.decode(), 'id="billing-tracker"')
    assert '<label for="add-seats-tracker">Add seats now</label>' in billing
    assert '<label for="remove-seats-tracker">Remove seats at renewal</label>' in billing
    assert '<label for="change-edition-tracker">Change edition</label>' in billing
    # Standard's card proposes Premium (a change now, at its shown price), never Free first.
    assert re.search(r'<option value="premium" selected>Premium \(now, prorated\)</option>', billing)
    assert '<option value="free" selected>' not in billing
