import pytest
from django.conf import settings
from django.core.management import call_command

from experiments.models import Experiment
from onboarding.models import Sequence, Step


@pytest.mark.django_db
def test_onboarding_demo_is_idempotent(catalog):
    call_command("demo_data")
    call_command("onboarding_demo")
    call_command("onboarding_demo")
    sequence = Sequence.objects.get(key="trial-welcome")
    assert Step.objects.filter(sequence=sequence).count() == 3
    experiment = Experiment.objects.get(key=settings.ONBOARDING_EXPERIMENT_KEY)
    assert experiment.status == Experiment.Status.RUNNING
    assert [(v.value, v.holdout) for v in experiment.variations.order_by("position")] == [
        ("trial-welcome", False),
        (None, True),
    ]
