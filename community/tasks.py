from celery import shared_task

from . import services


@shared_task(acks_late=True, ignore_result=True)
def escalation_tick() -> None:
    """Beat: escalate due questions, assign the queue, flag unanswered assignments to the lead."""
    services.escalation_tick()


@shared_task(acks_late=True, ignore_result=True)
def escalations_notify(escalation_ids: list[int]) -> None:
    """Tell engineers about the escalations a tick just gave them."""
    services.escalations_notify(escalation_ids=escalation_ids)
