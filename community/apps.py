from django.apps import AppConfig


class CommunityConfig(AppConfig):
    name = "community"

    def ready(self) -> None:
        from experiments.events import events_register

        from . import events, receivers  # noqa: F401  (receivers: billing's addon_grants_changed)

        events_register(events.EVENTS)
