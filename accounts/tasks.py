from celery import shared_task
from django.core.mail import get_connection


@shared_task(
    acks_late=True,
    ignore_result=True,
    autoretry_for=(OSError,),
    retry_backoff=5,
    retry_backoff_max=600,
    max_retries=8,
)
def email_send(payload: dict) -> None:
    """Send one queued email. Retried on connection errors only."""
    from .mail import payload_to_message

    message = payload_to_message(payload)
    message.connection = get_connection()
    message.send()


@shared_task(acks_late=True, ignore_result=True)
def invites_expire() -> int:
    """Beat: mark invites past their expiry as expired, freeing their seats."""
    from .services import invites_expire as invites_expire_service

    return invites_expire_service()
