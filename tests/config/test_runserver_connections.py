"""The Procfile's web process (`manage.py runserver`, a thread per request) on PostgreSQL holds
no database connection after its requests are answered: persistent connections
(DATABASE_CONN_MAX_AGE) are for the production server's fixed thread pool, and under runserver
every request thread left one open until a shared PostgreSQL ran out."""

import concurrent.futures
import socket
import subprocess
import sys
import time

import pytest
import requests
from django.conf import settings
from django.db import connection

from ..conftest import ROOT, subprocess_env

BURST = 50


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


APPLICATION_NAME = "flywheel-runserver-under-test"


def _other_connections() -> int:
    """Connections to the test database from the runserver under test (libpq names them from
    PGAPPNAME), not the session's Celery worker's or another test's."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
            [settings.DATABASES["default"]["NAME"], APPLICATION_NAME],
        )
        return cursor.fetchone()[0]


@pytest.fixture
def runserver(transactional_db, catalog):
    port = _free_port()
    env = {**subprocess_env(), "DJANGO_SETTINGS_MODULE": "config.settings", "FLYWHEEL_ENV": "development",
           "DATABASE_CONN_MAX_AGE": "60", "DEBUG": "1", "PGAPPNAME": APPLICATION_NAME}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", "--skip-checks", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            requests.get(f"{base}/", timeout=5)
            break
        except requests.RequestException:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("runserver did not start") from None
            time.sleep(0.2)
    yield base
    process.terminate()
    process.wait(20)


def test_bursts_of_50_requests_leave_runserver_holding_no_connection(runserver):
    def page(_: int) -> int:
        return requests.get(f"{runserver}/", timeout=60).status_code

    with concurrent.futures.ThreadPoolExecutor(BURST) as pool:
        for _ in range(3):
            assert set(pool.map(page, range(BURST))) == {200}

    deadline = time.monotonic() + 10
    while _other_connections() > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _other_connections() == 0
