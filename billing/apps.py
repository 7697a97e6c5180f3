from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        from accounts.services import seat_policy_register
        from experiments.events import events_register

        from . import events

        events_register(events.EVENTS)

        from . import (
            documents,  # noqa: F401  (immutability of issued invoices and credit notes)
            receivers,  # noqa: F401
        )
        from .services.seats import seat_limit_enforce

        seat_policy_register(seat_limit_enforce)
