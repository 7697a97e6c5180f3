from django.apps import AppConfig


class CommunityConfig(AppConfig):
    name = "community"

    def ready(self) -> None:
        from experiments.events import events_register

        from . import events

        events_register(events.EVENTS)
