from celery import shared_task

from . import services


@shared_task(acks_late=True, ignore_result=True)
def reports_send_monthly() -> dict:
    """Beat, daily: the past month's staff digest and customer reports, each sent once."""
    return services.reports_send_monthly()


@shared_task(
    acks_late=True,
    ignore_result=True,
    autoretry_for=(OSError,),
    retry_backoff=5,
    retry_backoff_max=600,
    max_retries=8,
)
def digest_delivery_send(delivery_id: int) -> None:
    """Send one staff member's copy of a digest; retried on connection errors only."""
    services.digest_delivery_send(delivery_id=delivery_id)
