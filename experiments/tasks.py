from celery import shared_task
from django.conf import settings


@shared_task(acks_late=True, ignore_result=True)
def events_forward() -> int:
    """Beat: forward unsent analytics events to PostHog (a no-op without POSTHOG_API_KEY)."""
    from .services import events_forward as events_forward_service

    return events_forward_service(batch_size=settings.ANALYTICS_BATCH_SIZE).sent
