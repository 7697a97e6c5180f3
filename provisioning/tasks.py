from celery import shared_task

from . import services


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=None)
def environment_provision(self, environment_id: int) -> None:
    """One provisioning attempt; the service bounds the attempts and picks the backoff."""
    attempt = services.environment_provision(environment_id=environment_id)
    if not attempt.done:
        raise self.retry(countdown=attempt.retry_in)


@shared_task(acks_late=True, ignore_result=True)
def environments_resume_stalled() -> int:
    return services.environments_resume_stalled()
