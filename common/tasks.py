"""Scheduling Celery tasks from services."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction


def enqueue_on_commit(task: Any, *args: Any, countdown: float = 0) -> None:
    """Send `task` once the current transaction commits, never before (the worker must see
    the rows it is handed). A broker outage is logged, not raised: the change is already
    committed, and each scheduler has a sweep that picks up what was not sent."""
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    transaction.on_commit(lambda: task.apply_async(args, countdown=countdown, queue=queue), robust=True)
