"""Definitions staff edit in the admin, or load from a file: experiments and feature flags."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from experiments.flags import admin_features_forget, flag_evaluate
from experiments.models import Experiment, Feature

DEFINITIONS = {
    "experiments": [
        {
            "key": "onboarding-emails",
            "name": "Onboarding emails: short vs long, with a holdout",
            "status": "running",
            "activation_events": ["invite_sent"],
            "variations": [
                {"key": "holdout", "weight": 0.2, "holdout": True},
                {"key": "short", "weight": 0.4, "value": "trial-short"},
                {"key": "long", "weight": 0.4, "value": "trial-long"},
            ],
        }
    ],
    "features": {"prompt-copy": {"defaultValue": "upgrade", "rules": [{"force": "passer", "condition": {"country": "FR"}}]}},
}


@pytest.fixture(autouse=True)
def _forget_admin_features():
    """This process caches admin features; other tests must not see this test's."""
    admin_features_forget()
    yield
    admin_features_forget()


@pytest.mark.django_db
def test_experiments_and_features_load_from_a_file_idempotently(tmp_path, settings):
    settings.GROWTHBOOK_ADMIN_FEATURES_SECONDS = 0
    path = tmp_path / "definitions.json"
    path.write_text(json.dumps(DEFINITIONS))
    call_command("experiments_load", str(path))
    call_command("experiments_load", str(path))

    experiment = Experiment.objects.get(key="onboarding-emails")
    assert experiment.status == "running" and experiment.activation_events == ["invite_sent"]
    assert list(experiment.variations.values_list("position", "key", "weight", "value", "holdout")) == [
        (0, "holdout", 0.2, None, True), (1, "short", 0.4, "trial-short", False), (2, "long", 0.4, "trial-long", False)]
    assert flag_evaluate("prompt-copy", attributes={"id": "u1", "country": "FR"}).value == "passer"

    # A new version of the file swaps two variations and drops the holdout.
    DEFINITIONS_V2 = {"experiments": [{**DEFINITIONS["experiments"][0], "variations": [
        {"key": "long", "value": "trial-long"}, {"key": "short", "value": "trial-short"}]}]}
    path.write_text(json.dumps(DEFINITIONS_V2))
    call_command("experiments_load", str(path))
    assert list(experiment.variations.values_list("position", "key", "holdout")) == [(0, "long", False), (1, "short", False)]

    path.write_text(json.dumps({"experiments": [{"key": "broken", "variations": []}]}))
    with pytest.raises(CommandError, match="positive total weight"):
        call_command("experiments_load", str(path))
    assert not Experiment.objects.filter(key="broken").exists()


@pytest.mark.django_db
def test_a_feature_edited_in_the_admin_is_evaluated_in_process(admin_client, settings):
    settings.GROWTHBOOK_FEATURES = {"prompt-copy": {"defaultValue": "from-settings"}}
    attributes = {"id": "u1", "country": "FR"}
    assert flag_evaluate("prompt-copy", attributes=attributes).value == "from-settings"

    response = admin_client.post(
        reverse("admin:experiments_feature_add"),
        {"key": "prompt-copy", "description": "", "enabled": "on",
         "definition": json.dumps({"defaultValue": "upgrade", "rules": [{"force": "passer", "condition": {"country": "FR"}}]})},
    )
    assert response.status_code == 302, response.content[:2000]
    # Saving in the admin makes this process re-read at once (others within the TTL).
    assert flag_evaluate("prompt-copy", attributes=attributes).value == "passer"
    assert flag_evaluate("prompt-copy", attributes={"id": "u2", "country": "DE"}).value == "upgrade"

    feature = Feature.objects.get(key="prompt-copy")
    admin_client.post(reverse("admin:experiments_feature_change", args=[feature.pk]),
                      {"key": "prompt-copy", "description": "", "definition": json.dumps(feature.definition)})
    assert flag_evaluate("prompt-copy", attributes=attributes).value == "from-settings"  # disabled: settings again
