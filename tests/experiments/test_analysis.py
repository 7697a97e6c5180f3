"""Experiment analysis: the numbers are gbstats' own on the same counts; holdouts; the page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.hashers import make_password
from django.urls import reverse
from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig
from gbstats.models.statistics import ProportionStatistic, SampleMeanStatistic

from accounts.models import Organization, User
from experiments import events
from experiments.analysis import experiment_analyse
from experiments.models import Event, Exposure

from ..factories import OrganizationFactory, UserFactory
from .factories import experiment_with

EXPOSED = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)


def population(experiment, arms: dict[str, dict]) -> None:
    """Per arm: `units` exposures (a user in their own organization each), of whom the first
    `activated` sent an invite, the first `paid` paid `amounts[i]` within 30 days; plus noise
    the analysis must ignore (events before exposure, a payment after 30 days)."""
    positions = {variation.key: variation.position for variation in experiment.variations.all()}
    password = make_password(None)
    rows = []
    for key, arm in arms.items():
        for index in range(arm["units"]):
            rows.append((key, index, arm))
    users = User.objects.bulk_create(User(email=f"{key}-{index}-{experiment.key}@analysis.example", password=password) for key, index, _ in rows)
    organizations = Organization.objects.bulk_create(Organization(name=f"Org {n}") for n in range(len(rows)))
    exposures, analytics = [], []
    for (key, index, arm), user, organization in zip(rows, users, organizations, strict=True):
        exposures.append(Exposure(experiment=experiment, unit_id=str(user.public_id), variation_position=positions[key],
                                  variation_key=key, user=user, organization=organization, exposed_at=EXPOSED))
        # Before exposure: never counted.
        analytics.append(Event(name=events.INVITE_SENT, user=user, organization=None, distinct_id="x", occurred_at=EXPOSED - timedelta(days=1)))
        if index < arm["activated"]:
            analytics.append(Event(name=events.INVITE_SENT, user=user, distinct_id="x", occurred_at=EXPOSED + timedelta(hours=3)))
        if index < arm["paid"]:
            amount = arm["amounts"][index % len(arm["amounts"])]
            analytics.append(Event(name=events.SUBSCRIPTION_PAID, organization=organization, distinct_id="x",
                                   occurred_at=EXPOSED + timedelta(days=10), properties={"amount_minor": amount}))
        if index == 0:
            # A renewal-sized payment 40 days in: outside the revenue window.
            analytics.append(Event(name=events.SEATS_ADDED, organization=organization, distinct_id="x",
                                   occurred_at=EXPOSED + timedelta(days=40), properties={"amount_minor": 999_999}))
    Exposure.objects.bulk_create(exposures)
    Event.objects.bulk_create(analytics)


def proportions(control, treatment):
    return EffectBayesianABTest(ProportionStatistic(n=control[0], sum=control[1]), ProportionStatistic(n=treatment[0], sum=treatment[1]),
                                EffectBayesianConfig()).compute_result()


def means(control_amounts, control_units, treatment_amounts, treatment_units):
    def stat(amounts, units):
        return SampleMeanStatistic(n=units, sum=sum(amounts), sum_squares=sum(a * a for a in amounts))

    return EffectBayesianABTest(stat(control_amounts, control_units), stat(treatment_amounts, treatment_units), EffectBayesianConfig()).compute_result()


def amounts_of(arm):
    return [arm["amounts"][i % len(arm["amounts"])] for i in range(arm["paid"])]


CONTROL = {"units": 200, "activated": 50, "paid": 24, "amounts": [12_000, 30_000]}
TREATMENT = {"units": 210, "activated": 72, "paid": 40, "amounts": [12_000, 12_000, 30_000]}


@pytest.mark.django_db
def test_the_analysis_matches_gbstats_run_directly_on_the_same_counts():
    experiment = experiment_with(("control", 1.0), ("treatment", 1.0), key="numbers", activation_events=[events.INVITE_SENT])
    population(experiment, {"control": CONTROL, "treatment": TREATMENT})

    analysis = experiment_analyse(experiment=experiment)

    assert [(v.key, v.exposures, v.is_control) for v in analysis.variants] == [("control", 200, True), ("treatment", 210, False)]
    metrics = {metric.key: metric for metric in analysis.metrics}
    assert [metric.label for metric in analysis.metrics] == [
        "Activation: Invited a colleague", "Conversion to paid", "Revenue in the first 30 days per unit"]
    expected = {
        "activation_0": ((50, 200), (72, 210), proportions((200, 50), (210, 72))),
        "paid": ((24, 200), (40, 210), proportions((200, 24), (210, 40))),
        "revenue": ((sum(amounts_of(CONTROL)), 200), (sum(amounts_of(TREATMENT)), 210),
                    means(amounts_of(CONTROL), 200, amounts_of(TREATMENT), 210)),
    }
    for key, (control_counts, treatment_counts, direct) in expected.items():
        control, treatment = metrics[key].variants
        assert (control.total, control.units) == control_counts
        assert (treatment.total, treatment.units) == treatment_counts
        assert control.is_control and control.uplift is None
        assert treatment.mean == pytest.approx(treatment_counts[0] / treatment_counts[1])
        assert treatment.uplift == pytest.approx(direct.expected, rel=1e-12)
        assert [treatment.ci_low, treatment.ci_high] == pytest.approx(direct.ci, rel=1e-12)
        assert treatment.chance_to_beat_control == pytest.approx(direct.chance_to_win, rel=1e-12)
    # Sanity of the fixture itself: treatment likely wins on conversion.
    assert metrics["paid"].variants[1].chance_to_beat_control > 0.9
    assert not analysis.srm_flagged and not analysis.small_sample and analysis.warnings == []


@pytest.mark.django_db
def test_a_holdout_shows_as_the_control():
    experiment = experiment_with(("emails", 1.0), ("holdout", 1.0), key="with-holdout")
    experiment.variations.filter(key="holdout").update(holdout=True)
    population(experiment, {"emails": TREATMENT, "holdout": CONTROL})

    analysis = experiment_analyse(experiment=experiment)

    assert analysis.control.key == "holdout"
    paid = next(metric for metric in analysis.metrics if metric.key == "paid")
    emails, holdout = paid.variants
    assert holdout.is_control and holdout.uplift is None
    direct = proportions((200, 24), (210, 40))  # the holdout is gbstats' control (A)
    assert emails.uplift == pytest.approx(direct.expected, rel=1e-12)
    assert emails.chance_to_beat_control == pytest.approx(direct.chance_to_win, rel=1e-12)


@pytest.mark.django_db
def test_the_staff_page_shows_the_analysis_with_a_chart_and_warns_on_small_samples(client, admin_client):
    experiment = experiment_with(("control", 1.0), ("treatment", 1.0), key="page", name="Welcome subject", minimum_sample=500)
    population(experiment, {"control": CONTROL, "treatment": TREATMENT})

    assert client.get(reverse("staff_experiment", args=["page"])).status_code == 302  # staff only: to sign in
    response = admin_client.get(reverse("staff_experiment", args=["page"]))
    assert response.status_code == 200
    content = response.content.decode()
    assert "<h1>Welcome subject</h1>" in content
    assert "Too few exposures so far: every variation needs at least 500" in content
    assert content.count('<svg xmlns="http://www.w3.org/2000/svg" class="uplift-chart"') == 2  # paid, revenue
    assert '<line data-variation="treatment"' in content
    # Uplift, interval and chance as percentages, as the chart shows them.
    assert re.search(r'<td class="uplift">[+-]\d+\.\d%</td><td>\[[+-]\d+\.\d%, [+-]\d+\.\d%\]</td><td class="chance">\d+\.\d%</td>', content)
    assert "Sample ratio check (chi-square): p = " in content

    listing = admin_client.get(reverse("staff_experiments"))
    assert listing.status_code == 200 and b"Welcome subject" in listing.content
    assert admin_client.get(reverse("staff_experiment", args=["nope"])).status_code == 404


def _expose(experiment, key: str, user, organization, *, at=EXPOSED) -> None:
    variation = experiment.variations.get(key=key)
    unit = user.public_id if experiment.hash_attribute == "id" else organization.public_id
    Exposure.objects.create(experiment=experiment, unit_id=str(unit), variation_position=variation.position,
                            variation_key=key, user=user, organization=organization, exposed_at=at)


def _event(name, *, organization, user=None, days=1, **properties) -> None:
    Event.objects.create(name=name, user=user, organization=organization, distinct_id="x",
                         occurred_at=EXPOSED + timedelta(days=days), properties=properties)


def _metrics(analysis) -> dict[str, dict[str, float]]:
    return {metric.key: {v.variation_key: v.total for v in metric.variants} for metric in analysis.metrics}


@pytest.mark.django_db
def test_members_of_one_organization_in_different_arms_share_its_outcomes_once():
    # A user-hashed experiment: two members of one organization land in different arms. The
    # organization pays once, its environment goes live (no user), and the treatment member invites.
    experiment = experiment_with(("control", 1.0), ("treatment", 1.0), key="shared-organization",
                                 activation_events=[events.INVITE_SENT, events.ENVIRONMENT_ACTIVE])
    organization = OrganizationFactory()
    first, second = UserFactory(), UserFactory()
    _expose(experiment, "control", first, organization)
    _expose(experiment, "treatment", second, organization, at=EXPOSED + timedelta(minutes=5))
    _event(events.INVITE_SENT, organization=organization, user=second)
    _event(events.ENVIRONMENT_ACTIVE, organization=organization)
    _event(events.SUBSCRIPTION_PAID, organization=organization, days=2, amount_minor=10_000, currency="USD")

    metrics = _metrics(experiment_analyse(experiment=experiment))

    # The payment counts once, for the organization's first exposed member; so does what the
    # organization did without either of them; an invite counts only for whoever sent it.
    assert metrics["revenue"] == {"control": 10_000, "treatment": 0}
    assert metrics["paid"] == {"control": 1, "treatment": 0}
    assert metrics["activation_0"] == {"control": 0, "treatment": 1}
    assert metrics["activation_1"] == {"control": 1, "treatment": 0}


@pytest.mark.django_db
def test_revenue_counts_every_paid_invoice_less_what_was_given_back():
    experiment = experiment_with(("control", 1.0), ("treatment", 1.0), key="net-revenue", hash_attribute="organization_id")
    paying, refunded = OrganizationFactory(), OrganizationFactory()
    _expose(experiment, "control", UserFactory(), paying)
    _expose(experiment, "treatment", UserFactory(), refunded)
    for organization in (paying, refunded):
        _event(events.SUBSCRIPTION_PAID, organization=organization, amount_minor=10_000, currency="USD")
        _event(events.SEATS_ADDED, organization=organization, days=3, amount_minor=2_000, currency="USD")
        _event(events.EDITION_CHANGED, organization=organization, days=5, amount_minor=5_000, currency="USD")
        _event(events.ADDON_BOUGHT, organization=organization, days=8, amount_minor=6_600, currency="USD")
        _event(events.SUBSCRIPTION_RENEWED, organization=organization, days=29, amount_minor=10_000, currency="USD")
        _event(events.SUBSCRIPTION_RENEWED, organization=organization, days=31, amount_minor=10_000, currency="USD")  # too late
    _event(events.PAYMENT_REFUNDED, organization=refunded, days=6, amount_minor=10_000, currency="usd", source="refund")
    _event(events.PAYMENT_REFUNDED, organization=refunded, days=7, amount_minor=2_000, currency="USD", source="dispute")

    analysis = experiment_analyse(experiment=experiment)

    assert _metrics(analysis)["revenue"] == {"control": 33_600, "treatment": 21_600}
    assert [metric.label for metric in analysis.metrics][-1] == "Revenue in the first 30 days per unit, USD"


@pytest.mark.django_db
def test_revenue_in_several_currencies_is_compared_per_currency_never_added_up():
    experiment = experiment_with(("control", 1.0), ("treatment", 1.0), key="currencies", hash_attribute="organization_id")
    for key, currency in (("control", "JPY"), ("treatment", "USD"), ("treatment", "JPY")):
        organization = OrganizationFactory()
        _expose(experiment, key, UserFactory(), organization)
        _event(events.SUBSCRIPTION_PAID, organization=organization, amount_minor=10_000, currency=currency)

    analysis = experiment_analyse(experiment=experiment)

    metrics = _metrics(analysis)
    assert "revenue" not in metrics
    assert metrics["revenue_JPY"] == {"control": 10_000, "treatment": 10_000}
    assert metrics["revenue_USD"] == {"control": 0, "treatment": 10_000}
    assert [metric.label for metric in analysis.metrics if metric.kind == "mean"] == [
        "Revenue in the first 30 days per unit, JPY", "Revenue in the first 30 days per unit, USD"]
    assert any("Payments in 2 currencies (JPY, USD)" in warning for warning in analysis.warnings)


@pytest.mark.django_db
def test_exposures_to_a_removed_variation_are_left_out_and_said_so():
    experiment = experiment_with(("control", 1.0), ("treatment", 1.0), ("dropped", 1.0), key="dropped-variation")
    for key in ("control", "treatment", "dropped", "dropped"):
        _expose(experiment, key, UserFactory(), OrganizationFactory())
    experiment.variations.filter(key="dropped").delete()

    analysis = experiment_analyse(experiment=experiment)

    assert analysis.total_exposures == 2
    assert any(warning.startswith("2 exposure(s) to a variation no longer in the experiment") for warning in analysis.warnings)


@pytest.mark.django_db
def test_an_arm_closed_to_new_units_does_not_hold_the_small_sample_warning_for_ever():
    experiment = experiment_with(("control", 1.0), ("treatment", 1.0), ("closed", 0.0), key="closed-arm", minimum_sample=1)
    for key in ("control", "treatment"):
        _expose(experiment, key, UserFactory(), OrganizationFactory())
    analysis = experiment_analyse(experiment=experiment)
    assert not analysis.small_sample
