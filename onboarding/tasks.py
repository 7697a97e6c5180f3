from celery import shared_task

from . import services


@shared_task(acks_late=True, ignore_result=True)
def onboarding_tick() -> int:
    """Beat: claim due onboarding steps and hand their sends to the worker."""
    return services.onboarding_tick().enqueued


@shared_task(acks_late=True, ignore_result=True)
def sends_deliver(send_ids: list[int]) -> dict[str, int]:
    """Deliver a chunk of onboarding sends. Safe to run again: each send is claimed once."""
    return services.sends_deliver(send_ids=send_ids)
