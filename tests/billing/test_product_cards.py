"""Each product's card on /app/ and /billing/ says the same thing the same way: the trial's
days left beside its end date, and the seats as "used of limit"."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from ..conftest import organization_on
from .helpers import workspace_ready

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
