"""Factories for experiments and their variations."""

from __future__ import annotations

import factory

from experiments.models import Experiment, Variation


class ExperimentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Experiment

    key = factory.Sequence(lambda n: f"experiment-{n}")
    name = factory.Sequence(lambda n: f"Experiment {n}")
    status = Experiment.Status.RUNNING
    minimum_sample = 100


class VariationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Variation

    experiment = factory.SubFactory(ExperimentFactory)
    position = factory.Sequence(lambda n: n)
    key = factory.Sequence(lambda n: f"variation-{n}")
    name = factory.LazyAttribute(lambda o: o.key.capitalize())
    weight = 1.0


def experiment_with(*arms: tuple[str, float], **fields) -> Experiment:
    """A running experiment with variations (key, weight) at positions 0, 1, ..."""
    experiment = ExperimentFactory(**fields)
    for position, (key, weight) in enumerate(arms):
        VariationFactory(experiment=experiment, position=position, key=key, weight=weight)
    return experiment
