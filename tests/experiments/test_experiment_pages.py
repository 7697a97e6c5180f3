"""The experiment pages as staff read them: one baseline named unambiguously (a variation keyed
"control" next to a holdout is a treatment, not a second control), and revenue as money."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from experiments import events
from experiments.analysis import experiment_analyse, uplift_chart_svg
from experiments.models import Event, Exposure

from ..factories import MembershipFactory, UserFactory
from .factories import ExperimentFactory, VariationFactory

EXPOSED = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)


def visible_text(html: str) -> str:
    """What a person reads: the page without its tags (and so without attributes)."""
    body = html[html.index("<main") :]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


@pytest.fixture
def sequence_or_no_email(db):
    """The demo's shape: the variation keyed "control" sends the welcome sequence; the holdout
    gets no email and is the baseline. One organization in each paid within 30 days."""
    experiment = ExperimentFactory(key="onboarding-emails", name="Onboarding: welcome sequence vs no email",
                                   hash_attribute="id", minimum_sample=1)
    VariationFactory(experiment=experiment, position=0, key="control", name="Welcome sequence", weight=0.8)
    VariationFactory(experiment=experiment, position=1, key="holdout", name="No email", weight=0.2, holdout=True)
    for key, amount in (("control", 13237), ("holdout", 5000)):
        membership = MembershipFactory()
        variation = experiment.variations.get(key=key)
        Exposure.objects.create(experiment=experiment, unit_id=str(membership.user.public_id),
                                variation_position=variation.position, variation_key=key,
                                user=membership.user, organization=membership.organization, exposed_at=EXPOSED)
        Event.objects.create(name=events.SUBSCRIPTION_PAID, organization=membership.organization, distinct_id="x",
                             occurred_at=EXPOSED + timedelta(days=2), properties={"amount_minor": amount, "currency": "USD"})
    return experiment


def test_the_holdout_is_the_one_baseline_and_the_variation_keyed_control_a_treatment(client, sequence_or_no_email):
    client.force_login(UserFactory(is_staff=True))

    page = client.get(reverse("staff_experiment", args=["onboarding-emails"])).content.decode()

    text = visible_text(page)
    assert "Baseline: No email , the holdout: it gets no treatment. Every other variation is a treatment, compared with it." in text
    assert re.search(r'<tr data-variation="control"><td><span title="Variation key: control">Welcome sequence</span></td>\s*'
                     r'<td><span class="status">Treatment</span></td>', page)
    assert re.search(r'<tr data-variation="holdout"><td><span title="Variation key: holdout">No email</span></td>\s*'
                     r'<td><span class="status active">Holdout \(baseline\)</span></td>', page)
    # Nothing a person reads calls anything "control" (the chart's labels included).
    assert not re.search(r"\bcontrol\b", text, re.I)
    assert "(control)" not in page
    chart = uplift_chart_svg(experiment_analyse(experiment=sequence_or_no_email).metrics[-1])
    assert "No email (baseline)" in chart and "Welcome sequence" in chart and "control" not in chart

    listing = visible_text(client.get(reverse("staff_experiments")).content.decode())
    assert "Welcome sequence · Treatment" in listing
    assert "No email · Holdout (baseline)" in listing
    assert not re.search(r"\bcontrol\b", listing, re.I)


def test_revenue_is_money_with_its_currency_not_minor_units(client, sequence_or_no_email):
    client.force_login(UserFactory(is_staff=True))

    page = client.get(reverse("staff_experiment", args=["onboarding-emails"])).content.decode()

    revenue = page[page.index('data-metric="revenue"') :]
    assert "<h2>Revenue in the first 30 days per unit, USD</h2>" in revenue
    assert re.search(r'<tr data-variation="control">.*?<td class="total">USD 132\.37</td>\s*<td class="mean">USD 132\.37</td>', revenue, re.S)
    assert re.search(r'<tr data-variation="holdout">.*?<td class="total">USD 50\.00</td>', revenue, re.S)
    assert "13237" not in page and "minor units" not in page
