"""Variant assignment with GrowthBook's SDK: deterministic, stable, close to the split."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

from experiments.analysis import experiment_analyse, srm_p_value
from experiments.events import EXPERIMENT_EXPOSED
from experiments.flags import ExperimentDefinition, experiment_run
from experiments.models import Event, Experiment, Exposure
from experiments.services import experiment_assign

from ..conftest import ROOT
from ..factories import MembershipFactory, UserFactory
from .factories import experiment_with

IDS = [str(uuid.UUID(int=index * 7919 + 1)) for index in range(10_000)]
SPLIT = ExperimentDefinition(key="onboarding-emails", weights=[0.5, 0.3, 0.2])


def test_ten_thousand_users_split_close_to_the_weights_and_pass_the_srm_check():
    counts = [0, 0, 0]
    for unit in IDS:
        result = experiment_run(SPLIT, attributes={"id": unit})
        assert result.in_experiment
        counts[result.variation] += 1
    for count, weight in zip(counts, SPLIT.weights, strict=True):
        assert abs(count / len(IDS) - weight) < 0.02, counts
    assert srm_p_value(counts, SPLIT.weights) > 0.001
    # Stable: the same unit gets the same variation every time.
    assert all(experiment_run(SPLIT, attributes={"id": unit}).variation == experiment_run(SPLIT, attributes={"id": unit}).variation for unit in IDS[:500])


def test_assignment_is_the_same_in_another_process():
    here = [experiment_run(SPLIT, attributes={"id": unit}).variation for unit in IDS[:300]]
    script = (
        "import json, sys\n"
        "from experiments.flags import ExperimentDefinition, experiment_run\n"
        "ids = json.load(sys.stdin)\n"
        "definition = ExperimentDefinition(key='onboarding-emails', weights=[0.5, 0.3, 0.2])\n"
        "print(json.dumps([experiment_run(definition, attributes={'id': unit}).variation for unit in ids]))\n"
    )
    output = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], input=json.dumps(IDS[:300]), capture_output=True, text=True, cwd=ROOT, check=True,
        env={"PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "config.settings", "PATH": "/usr/bin:/bin"},
    )
    assert json.loads(output.stdout) == here


def test_coverage_conditions_and_a_missing_attribute_keep_units_out():
    partial = ExperimentDefinition(key="half", weights=[1, 1], coverage=0.5)
    inside = sum(experiment_run(partial, attributes={"id": unit}).in_experiment for unit in IDS[:2000])
    assert 900 < inside < 1100
    french = ExperimentDefinition(key="fr", weights=[1, 1], condition={"country": "FR"})
    assert experiment_run(french, attributes={"id": "u1", "country": "FR"}).in_experiment
    assert not experiment_run(french, attributes={"id": "u1", "country": "DE"}).in_experiment
    assert not experiment_run(SPLIT, attributes={"country": "FR"}).in_experiment
    # Organization as the unit: every member of one organization gets the same variation.
    by_org = ExperimentDefinition(key="org", weights=[1, 1], hash_attribute="organization_id")
    assert len({experiment_run(by_org, attributes={"id": unit, "organization_id": "org-1"}).variation for unit in IDS[:50]}) == 1


@pytest.mark.django_db
def test_the_first_exposure_is_stored_and_tracked_once_and_the_variation_sticks():
    experiment = experiment_with(("control", 1.0), ("treatment", 1.0), key="sticky")
    members = [MembershipFactory() for _ in range(20)]
    first = {m.user_id: experiment_assign(experiment_key="sticky", user=m.user, organization=m.organization) for m in members}
    assert all(assignment.first_exposure for assignment in first.values())
    assert Exposure.objects.filter(experiment=experiment).count() == 20
    events = Event.objects.filter(name=EXPERIMENT_EXPOSED)
    assert events.count() == 20
    event = events.get(user=members[0].user)
    assert event.properties["experiment"] == "sticky"
    assert event.properties["$feature_flag_response"] == first[members[0].user_id].variation_key
    assert event.organization == members[0].organization

    # Staff flip the weights: people already exposed keep their variation, and no new events.
    experiment.variations.filter(key="control").update(weight=0.0)
    again = {m.user_id: experiment_assign(experiment_key="sticky", user=m.user) for m in members}
    assert {k: v.variation_key for k, v in again.items()} == {k: v.variation_key for k, v in first.items()}
    assert not any(assignment.first_exposure for assignment in again.values())
    assert events.count() == 20
    assert experiment_assign(experiment_key="sticky", user=UserFactory()).variation_key == "treatment"


@pytest.mark.django_db
def test_draft_and_stopped_experiments_expose_nobody_new():
    experiment = experiment_with(("a", 1.0), ("b", 1.0), key="paused", status=Experiment.Status.DRAFT)
    user = UserFactory()
    assert experiment_assign(experiment_key="paused", user=user) is None
    assert experiment_assign(experiment_key="no-such-key", user=user) is None
    experiment.status = Experiment.Status.RUNNING
    experiment.save()
    exposed = experiment_assign(experiment_key="paused", user=user)
    experiment.status = Experiment.Status.STOPPED
    experiment.save()
    assert experiment_assign(experiment_key="paused", user=user).variation_key == exposed.variation_key
    assert experiment_assign(experiment_key="paused", user=UserFactory()) is None
    assert Exposure.objects.count() == 1


@pytest.mark.django_db
def test_a_deliberately_skewed_assignment_is_flagged_by_the_srm_check():
    experiment = experiment_with(("control", 1.0), ("treatment", 1.0), key="skewed")
    # A bug sends 56% of units to control instead of 50%.
    Exposure.objects.bulk_create(
        Exposure(experiment=experiment, unit_id=unit, variation_position=0 if index < 5600 else 1,
                 variation_key="control" if index < 5600 else "treatment")
        for index, unit in enumerate(IDS)
    )
    analysis = experiment_analyse(experiment=experiment)
    assert [variant.exposures for variant in analysis.variants] == [5600, 4400]
    assert analysis.srm_flagged and analysis.srm_p_value < 1e-6
    assert any("Sample ratio mismatch" in warning for warning in analysis.warnings)
    assert not analysis.small_sample

    # The honest split of the same experiment passes.
    Exposure.objects.all().delete()
    Exposure.objects.bulk_create(
        Exposure(experiment=experiment, unit_id=unit, variation_position=variation, variation_key=("control", "treatment")[variation])
        for unit in IDS
        for variation in [experiment_run(ExperimentDefinition(key="skewed", weights=[1, 1]), attributes={"id": unit}).variation]
    )
    assert not experiment_analyse(experiment=experiment).srm_flagged
