from celery import shared_task


@shared_task(acks_late=True, ignore_result=True)
def reports_send_monthly() -> dict:
    """Beat, daily: the past month's staff digest and customer reports, each sent once."""
    from .services import reports_send_monthly as reports_send_monthly_service

    return reports_send_monthly_service()


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
    from .services import digest_delivery_send as digest_delivery_send_service

    digest_delivery_send_service(delivery_id=delivery_id)
