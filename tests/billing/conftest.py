"""Fixtures of the billing tests (plain helpers are in helpers.py)."""

import pytest

from config.celery import app as celery_app


@pytest.fixture
def eager_tasks():
    """Celery runs tasks in-process (task_always_eager): a charge scheduled on commit happens
    inside the transaction's caller, the lifecycle tick that scheduled it included."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False
