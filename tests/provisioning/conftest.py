"""Provisioning fixtures: a product played by a small local HTTP server, and its secret.

The worker subprocess copies os.environ when it starts. pytest imports every conftest module
while it collects, before any test (and so before the session worker) runs, whatever the
order of the test modules; setting the product's secret here is therefore seen by the worker
as well as by this process.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from catalog.models import Product
from experiments.models import Event
from provisioning.models import Environment

WIKI_SECRET_ENV = "WIKI_PROVISIONING_SECRET"
os.environ.setdefault(WIKI_SECRET_ENV, "wiki-provisioning-secret-for-tests")


@dataclass(frozen=True)
class Reply:
    """What the fake product answers to one provisioning request."""

    status: int
    body: dict | str = ""
    # Seconds to hold the answer back (longer than PROVISIONING_HTTP_TIMEOUT plays "slow").
    delay: float = 0


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class FakeProduct:
    """A product's provisioning endpoint on 127.0.0.1 with an ephemeral port.

    It answers its script of replies in order, repeating the last one, and keeps every
    request it received.
    """

    replies: list[Reply] = field(
        default_factory=lambda: [Reply(200, {"url": "https://wiki.example.test/w/1"})]
    )
    requests: list[SeenRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        # Set at teardown so that a reply held back by `delay` ends at once.
        self._release = threading.Event()
        product = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with product._lock:
                    product.requests.append(
                        SeenRequest(
                            method="POST",
                            path=self.path,
                            headers={key.lower(): value for key, value in self.headers.items()},
                            body=body,
                        )
                    )
                    reply = product.replies[min(len(product.requests), len(product.replies)) - 1]
                if reply.delay:
                    product._release.wait(reply.delay)
                payload = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload.encode())))
                    self.end_headers()
                    self.wfile.write(payload.encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass  # Flywheel gave up waiting (the "slow" scenario).

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/provision"

    def play(self, *replies: Reply) -> None:
        with self._lock:
            self.replies = list(replies)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


@pytest.fixture
def product_server():
    server = FakeProduct()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def wiki_secret() -> str:
    return os.environ[WIKI_SECRET_ENV]


def make_http_product(code: str, url: str) -> Product:
    """Switch a catalog product to the http provisioner with the test secret."""
    Product.objects.filter(code=code).update(
        provisioner=Product.Provisioner.HTTP,
        provisioning_url=url,
        provisioning_secret_env=WIKI_SECRET_ENV,
    )
    return Product.objects.get(code=code)


@pytest.fixture
def wiki_over_http(catalog, product_server) -> Product:
    """The Wiki product, provisioned by the local fake product server."""
    return make_http_product("wiki", product_server.url)


def environment_events(name: str, environment: Environment) -> int:
    """How many `name` events this environment's organization has for its product."""
    return Event.objects.filter(
        name=name,
        organization=environment.organization,
        properties__product=environment.product.code,
    ).count()
