"""Fixtures of the kit's message tests: a trial organization with an admin, and the survey's
tenure rule at zero days unless a test says otherwise."""

import pytest

from config.celery import app as celery_app

from ..conftest import organization_on


@pytest.fixture
def organization(catalog):
    """An organization on a Tracker Standard trial (14 days left: no prompt due) and its admin."""
    return organization_on("standard")


@pytest.fixture
def no_survey(settings):
    """Nobody is drawn for the survey."""
    settings.FEEDBACK_SAMPLING_RATE = 0.0


@pytest.fixture
def eager_tasks():
    """Celery runs tasks in-process, so an email queued on commit is in mail.outbox after it."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False
