"""Onboarding's Celery tasks: thin, each imports its service inside the body (the services
queue these tasks, so importing the services here at the top would make a circle)."""

from celery import shared_task


@shared_task(name="onboarding.tasks.onboarding_tick", acks_late=True, ignore_result=True)
def onboarding_tick() -> int:
    """Beat: claim due onboarding steps and hand their sends to the worker."""
    from .services.tick import onboarding_tick as onboarding_tick_service

    return onboarding_tick_service().enqueued


@shared_task(name="onboarding.tasks.sends_deliver", acks_late=True, ignore_result=True)
def sends_deliver(send_ids: list[int]) -> dict[str, int]:
    """Deliver a chunk of onboarding sends. Safe to run again: each send is claimed once."""
    from .services.sending import sends_deliver as sends_deliver_service

    return sends_deliver_service(send_ids=send_ids)
