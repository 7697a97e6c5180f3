from celery import shared_task


@shared_task(acks_late=True, ignore_result=True)
def activity_raw_prune() -> int:
    """Beat, nightly: delete raw activity events older than ACTIVITY_RAW_RETENTION_DAYS."""
    from .services import activity_prune

    return activity_prune()
