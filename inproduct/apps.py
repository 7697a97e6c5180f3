from django.apps import AppConfig


class InproductConfig(AppConfig):
    """The in-product kit: the script products embed, its signed per-user token, per-product
    origins, and the messages it shows (billing prompts, the NPS survey, invite nudges, products
    to try) under one contact budget. docs/in-product.md."""

    name = "inproduct"

    def ready(self) -> None:
        from experiments.events import events_register

        from . import events

        events_register(events.EVENTS)
