from django.apps import AppConfig


class OnboardingConfig(AppConfig):
    name = "onboarding"

    def ready(self) -> None:
        from experiments.events import events_register

        from . import events, receivers  # noqa: F401

        events_register(events.EVENTS)
