from celery import shared_task
from django.conf import settings


@shared_task(acks_late=True, ignore_result=True)
def events_forward() -> int:
    """Beat: forward unsent analytics events to PostHog (a no-op without POSTHOG_API_KEY)."""
    from .services import events_forward as events_forward_service

    return events_forward_service(batch_size=settings.ANALYTICS_BATCH_SIZE).sent


@shared_task(acks_late=True, ignore_result=True)
def funnel_progress_refresh() -> int:
    """Beat: compute again the funnel progress of the people whose funnel events changed
    (experiments/funnel.py), so the staff funnel page finds at most a minute's worth to do."""
    from .funnel import funnel_progress_refresh as funnel_progress_refresh_service

    return funnel_progress_refresh_service()
