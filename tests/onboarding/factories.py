"""Factories for onboarding sequences and steps."""

from __future__ import annotations

from datetime import timedelta

import factory

from onboarding.models import Sequence, Step


class SequenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sequence

    key = factory.Sequence(lambda n: f"sequence-{n}")
    name = factory.Sequence(lambda n: f"Sequence {n}")


class StepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Step

    sequence = factory.SubFactory(SequenceFactory)
    position = factory.Sequence(lambda n: n)
    delay = timedelta(0)
    subject = factory.LazyAttribute(lambda o: f"Step {o.position} for {{{{ first_name }}}}")
    text_body = "Hello {{ first_name }} of {{ organization_name }}. Open {{ app_url }}"
    html_body = '<html><body><p>Hello {{ first_name }}</p><p><a href="{{ app_url }}">Open Flywheel</a> or <a href="https://elsewhere.example/docs">read elsewhere</a></p></body></html>'


def fourteen_day_sequence(key: str = "trial-welcome") -> Sequence:
    """Day 0 welcome, day 1 invite (skipped once a colleague is invited), day 3 tips,
    4 days after the tips a case study (day 7), day 13 the trial-end reminder."""
    sequence = SequenceFactory(key=key)
    StepFactory(sequence=sequence, position=0, name="welcome", delay=timedelta(0))
    StepFactory(sequence=sequence, position=1, name="invite", delay=timedelta(days=1), skip_condition=Step.SkipCondition.INVITED_COLLEAGUE)
    StepFactory(sequence=sequence, position=2, name="tips", delay=timedelta(days=3))
    StepFactory(sequence=sequence, position=3, name="case-study", delay=timedelta(days=4), delay_from=Step.DelayFrom.PREVIOUS)
    StepFactory(sequence=sequence, position=4, name="trial-ending", delay=timedelta(days=13))
    return sequence


def everyone_enrolled_in(key: str, settings) -> Sequence:
    """From now on every new user is enrolled in a fresh fourteen_day_sequence(key), with no
    experiment deciding and no quiet hours (emails go out whatever the hour)."""
    settings.ONBOARDING_DEFAULT_SEQUENCE = key
    settings.ONBOARDING_EXPERIMENT_KEY = "no-such-experiment"
    settings.ONBOARDING_QUIET_HOURS_START = settings.ONBOARDING_QUIET_HOURS_END = 0
    return fourteen_day_sequence(key)
