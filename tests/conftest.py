"""Shared fixtures: the sample catalog, organizations on a trial, and a real Celery worker."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings

from accounts.models import Membership
from activity.models import ActivityDay
from billing.services.subscriptions import subscription_start_trial
from billing.services.webhooks import webhooks_drain_flag_clear
from catalog.models import Product
from catalog.selectors import edition_get
from catalog.services import catalog_sync

from .factories import MembershipFactory, OrganizationFactory, UserFactory

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _redis_clean():
    """Tests use their own Redis database; start it empty."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield
    client.flushdb()


@pytest.fixture(autouse=True)
def _tasks_reach_the_worker_only_when_asked(request, settings):
    """Tasks of a test that does not use the worker go to a queue nobody consumes, so the
    session's worker never touches the database while such a test is being torn down.

    A webhook drain parked so leaves its Redis flag ("a drain is pending") behind for up to a
    minute, and the next test's webhooks would wait for the sweep instead of nudging a drain:
    every test ends with the flag cleared."""
    if "celery_worker" not in request.fixturenames:
        settings.CELERY_TASK_DEFAULT_QUEUE = f"{settings.CELERY_TASK_DEFAULT_QUEUE}-parked"
    yield
    webhooks_drain_flag_clear()


@pytest.fixture
def catalog(db):
    catalog_sync()


def organization_on(edition_code: str, product_code: str = "tracker", *, members: int = 1):
    """An organization whose first member is its admin, with a subscription of that edition."""
    admin = UserFactory(email=f"admin-{os.urandom(4).hex()}@acme-{os.urandom(2).hex()}.example")
    organization = OrganizationFactory(email_domain=admin.email.rsplit("@", 1)[1], created_by=admin)
    MembershipFactory(organization=organization, user=admin, role=Membership.Role.ADMIN, source="signup")
    for _ in range(members - 1):
        MembershipFactory(organization=organization)
    subscription_start_trial(
        organization=organization,
        edition=edition_get(product_code=product_code, edition_code=edition_code),
        actor=admin,
    )
    return organization, admin


def active_on(organization, user, product_code, *days, counting=True):
    """The person active (a daily rollup row) in the product on each of `days` (UTC dates), in
    that organization; `counting=False` stores events of names the product does not count."""
    product = Product.objects.get(code=product_code)
    ActivityDay.objects.bulk_create(
        [
            ActivityDay(
                organization=organization,
                user=user,
                product=product,
                day=day,
                events=1,
                active_events=1 if counting else 0,
            )
            for day in days
        ]
    )


@pytest.fixture
def free_organization(catalog):
    return organization_on("free")


@pytest.fixture
def trial_organization(catalog):
    return organization_on("standard")


def subprocess_env() -> dict[str, str]:
    """The environment of a process the tests start (the worker, a web server): this run's
    settings, its test database, queue and cache prefix."""
    database = settings.DATABASES["default"]
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "CELERY_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
        "CACHE_KEY_PREFIX": settings.CACHES["default"].get("KEY_PREFIX", ""),
    }


class WorkerProcess:
    """A real `celery worker` subprocess on the test Redis and the test database."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.output: list[str] = []

    def start(self) -> None:
        env = subprocess_env()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel=INFO", "--pool=threads",
             "--concurrency=4", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        ready = threading.Event()

        def pump() -> None:
            assert self.process and self.process.stdout
            for line in self.process.stdout:
                self.output.append(line)
                if " ready." in line:
                    ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(60):
            self.stop()
            raise RuntimeError("The Celery worker did not start:\n" + "".join(self.output[-50:]))

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def log(self) -> str:
        return "".join(self.output)


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker):
    """A real worker for the whole session. Tests that use it need `transactional_db`, so the
    worker (its own connections) sees their rows."""
    worker = WorkerProcess()
    worker.start()
    yield worker
    worker.stop()


def wait_for(predicate, *, timeout: float = 20, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def kit_secret_for(product_code: str):
    """A live kit secret issued to the product (inproduct.identity), as `kit_secret issue` does."""
    from catalog.models import Product
    from inproduct.identity import kit_secret_issue

    kit_secret, _value = kit_secret_issue(product=Product.objects.get(code=product_code))
    return kit_secret


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DemoProductProcess:
    """The demo product (`python -m demo_product runserver`) on a free port: its own process and
    origin, with the products' kit secrets in its environment and Flywheel at `flywheel_url`."""

    def __init__(self, *, flywheel_url: str, kit_secrets: list) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {key: value for key, value in os.environ.items() if not key.startswith("FLYWHEEL_KIT_")}
        for secret in kit_secrets:
            env[f"FLYWHEEL_KIT_SECRET_{secret.product.code.upper()}"] = secret.secret
            env[f"FLYWHEEL_KIT_KID_{secret.product.code.upper()}"] = secret.key_id
        env.update({
            "FLYWHEEL_URL": flywheel_url,
            "DEMO_PRODUCT_URL": self.url,
            "DEMO_PRODUCT_ENV_FILE": "/nonexistent/demo-product.env",
            "PYTHONUNBUFFERED": "1",
        })
        env.pop("DJANGO_SETTINGS_MODULE", None)
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "demo_product", "runserver", "--noreload", f"127.0.0.1:{self.port}"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        import requests

        def up() -> bool:
            assert self.process.poll() is None, "the demo product stopped:\n" + self.log()
            try:
                return requests.get(f"{self.url}/", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for(up, timeout=30, interval=0.1, what="the demo product's first page")

    def _pump(self) -> None:
        assert self.process.stdout
        for line in self.process.stdout:
            self.output.append(line)

    def log(self) -> str:
        return "".join(self.output)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def mails_to(address: str) -> list:
    """Messages written to the test mailbox (by this process or the worker) for `address`."""
    import email
    import email.policy

    directory = Path(settings.MAIL_DIR)
    found = []
    for path in sorted(directory.glob("*.eml")) if directory.exists() else []:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if address.lower() in str(message["To"]).lower():
            found.append(message)
    return found


def body_text(message) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part else ""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test that used the worker shows the worker's log."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and "celery_worker" in getattr(item, "funcargs", {}):
        report.sections.append(("celery worker log", item.funcargs["celery_worker"].log()[-8000:]))


class LocalStripe:
    """The test run's localstripe process (billing/localstripe_server.py) on 127.0.0.1."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        import requests

        self.process = subprocess.Popen(
            [sys.executable, "-m", "billing.localstripe_server", "--port", str(self.port)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.url}/js.stripe.com/v3/", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(f"localstripe did not start on port {self.port}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def flush(self) -> None:
        import requests

        requests.delete(f"{self.url}/_config/data", auth=(settings.STRIPE_SECRET_KEY, ""), timeout=5).raise_for_status()

    def register_webhook(self, url: str) -> None:
        import requests

        requests.post(
            f"{self.url}/_config/webhooks/flywheel",
            data={"url": url, "secret": settings.STRIPE_WEBHOOK_SECRET},
            auth=(settings.STRIPE_SECRET_KEY, ""),
            timeout=5,
        ).raise_for_status()

    def enter_card(self, client_secret: str, number: str, *, authenticate: bool = True) -> dict:
        """What Stripe.js does with the card form: confirm the SetupIntent with the card, and
        complete 3-D Secure when the card asks for it (or fail it)."""
        import requests

        setup_intent = client_secret.split("_secret_")[0]
        body = {
            "key": settings.STRIPE_PUBLISHABLE_KEY,
            "client_secret": client_secret,
            "use_stripe_sdk": True,
            "payment_method_data": {
                "type": "card",
                "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
                "billing_details": {"address": {"postal_code": "10001"}},
            },
        }
        response = requests.post(f"{self.url}/v1/setup_intents/{setup_intent}/confirm", json=body, timeout=5)
        result = response.json()
        if response.ok and result.get("status") == "requires_action":
            action = "confirm" if authenticate else "cancel"
            result = requests.post(
                f"{self.url}/v1/setup_intents/{setup_intent}/{action}",
                json={"key": settings.STRIPE_PUBLISHABLE_KEY, "client_secret": client_secret, "use_stripe_sdk": True},
                timeout=5,
            ).json()
        return result


@pytest.fixture(scope="session")
def _localstripe_process():
    server = LocalStripe(int(settings.LOCALSTRIPE_PORT))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def localstripe(_localstripe_process):
    """A clean localstripe for each test (objects flushed; webhook registrations survive)."""
    _localstripe_process.flush()
    return _localstripe_process
