from celery import shared_task


@shared_task(acks_late=True, ignore_result=True)
def kit_token_uses_prune() -> int:
    """Beat: forget the used kit tokens that have expired (inproduct.identity)."""
    from .identity import kit_token_uses_prune as kit_token_uses_prune_service

    return kit_token_uses_prune_service()
