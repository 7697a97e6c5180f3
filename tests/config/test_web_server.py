"""The production web server of docs/deployment.md (granian, WSGI) serving Flywheel for real:
a page, a static file, a form with its CSRF cookie, and Stripe's webhook, over HTTP."""

import json
import re
import socket
import subprocess
import sys
import time

import pytest
import requests

from billing.models import WebhookEvent

from ..billing.helpers import webhook_event, webhook_signed
from ..conftest import ROOT, subprocess_env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def granian(transactional_db):
    """granian as docs/deployment.md starts it (two processes, two threads each), on the test
    database and Redis."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "2", "--blocking-threads", "2", "--no-ws", "--respawn-failed-workers",
         "config.wsgi:application"],
        cwd=ROOT, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{base}/", timeout=2, allow_redirects=False)
            break
        except requests.RequestException as error:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                output = process.stdout.read() if process.stdout else ""
                raise RuntimeError(f"granian did not start:\n{output}") from error
            time.sleep(0.1)
    yield base
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()


def test_granian_serves_pages_static_files_and_forms(granian):
    session = requests.Session()
    home = session.get(f"{granian}/", timeout=5)
    assert home.status_code == 200 and home.headers["X-Frame-Options"] == "DENY"
    css = re.search(r'href="(/static/[^"]+\.css)"', home.text)
    assert css, "the home page links a stylesheet"
    static = session.get(f"{granian}{css.group(1)}", timeout=5)
    assert static.status_code == 200 and static.headers["Content-Type"].startswith("text/css")

    # A form: the CSRF cookie and token survive the round trip through granian; a POST
    # without them is refused.
    login = session.get(f"{granian}/accounts/login/", timeout=5)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
    wrong = session.post(
        f"{granian}/accounts/login/",
        data={"csrfmiddlewaretoken": token, "login": "nobody@example.com", "password": "wrong-password"},
        timeout=5,
    )
    assert wrong.status_code == 200 and "not correct" in wrong.text
    forged = requests.post(f"{granian}/accounts/login/", data={"login": "a@example.com", "password": "x"}, timeout=5)
    assert forged.status_code == 403


def test_granian_takes_stripe_webhooks_once_and_refuses_bad_signatures(granian):
    payload, signature = webhook_signed(webhook_event("evt_granian", "customer.created", "pi_granian"))
    headers = {"Stripe-Signature": signature, "Content-Type": "application/json"}
    first = requests.post(f"{granian}/stripe/webhook", data=payload, headers=headers, timeout=5)
    again = requests.post(f"{granian}/stripe/webhook", data=payload, headers=headers, timeout=5)
    assert first.status_code == 200 and first.json() == {"received": "evt_granian", "duplicate": False}
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert "Set-Cookie" not in first.headers

    forged, forged_signature = webhook_signed(webhook_event("evt_forged", "customer.created", "pi_x"), secret="whsec_forged")
    refused = requests.post(
        f"{granian}/stripe/webhook", data=forged,
        headers={"Stripe-Signature": forged_signature, "Content-Type": "application/json"}, timeout=5,
    )
    assert refused.status_code == 400 and "signature" in refused.json()["error"].lower()

    stored = WebhookEvent.objects.get()
    assert stored.stripe_event_id == "evt_granian" and stored.payload == json.loads(payload)
