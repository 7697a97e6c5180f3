from celery import shared_task
from django.db import DatabaseError


@shared_task(acks_late=True, ignore_result=True)
def activity_raw_prune() -> int:
    """Beat, nightly: delete raw activity events older than ACTIVITY_RAW_RETENTION_DAYS."""
    from .services import activity_prune

    return activity_prune()


@shared_task(
    acks_late=True,
    ignore_result=True,
    autoretry_for=(DatabaseError,),
    max_retries=5,
    retry_backoff=30,
    retry_jitter=True,
)
def staff_figures_rebuild() -> int:
    """Beat, after midnight UTC, and a few minutes after an event arrives late: store the staff
    figures of yesterday (activity.services.staff_figures_build). The pending key goes first,
    so a late event committed after this build starts asks for the next one; a build that fails
    on the database (a timeout, a lost connection) is tried again, so the late events it was
    asked for are never left out with it."""
    from django.core.cache import cache

    from .services import REBUILD_PENDING_KEY, staff_figures_build

    cache.delete(REBUILD_PENDING_KEY)
    return staff_figures_build()
