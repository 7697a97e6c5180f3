"""The community's Celery tasks: thin, each imports its service inside the body (the services
queue these tasks, so importing the services here at the top would make a circle)."""

from celery import shared_task


@shared_task(name="community.tasks.escalation_tick", acks_late=True, ignore_result=True)
def escalation_tick() -> None:
    """Beat: escalate due questions, assign the queue, flag unanswered assignments to the lead."""
    from .services.escalations import escalation_tick as escalation_tick_service

    escalation_tick_service()


@shared_task(name="community.tasks.escalations_notify", acks_late=True, ignore_result=True)
def escalations_notify(escalation_ids: list[int]) -> None:
    """Tell engineers about the escalations a tick just gave them."""
    from .services.escalations import escalations_notify as escalations_notify_service

    escalations_notify_service(escalation_ids=escalation_ids)
