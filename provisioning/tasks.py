from celery import shared_task

from .backends import attempt_time_limit


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=None, time_limit=attempt_time_limit())
def environment_provision(self, environment_id: int) -> None:
    """One provisioning attempt; the service bounds the attempts and picks the backoff."""
    from .services import environment_provision as environment_provision_service

    attempt = environment_provision_service(environment_id=environment_id)
    if not attempt.done:
        raise self.retry(countdown=attempt.retry_in)


@shared_task(acks_late=True, ignore_result=True)
def environments_resume_stalled() -> int:
    from .services import environments_resume_stalled as environments_resume_stalled_service

    return environments_resume_stalled_service()
