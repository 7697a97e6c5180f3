"""A local stand-in for PostHog's capture endpoint, on 127.0.0.1, for the forwarding tests.

It speaks PostHog's batch API (`POST /batch/` with `{"api_key", "batch": [...]}`), so the real
`posthog` package and the real network stack are exercised end to end, and it answers the
way PostHog's capture service does: 200 `{"status": 1}`, or an error with its JSON body
`{"status": 400, "code": "...", "error": "..."}`.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from experiments import events
from experiments.models import Event
from experiments.services import event_record

from ..factories import MembershipFactory

API_KEY = "phc_test_flywheel"  # noqa: S105 - a fake key the sink checks for

# What an `answer` hook returns: (status, body), the body a dict (sent as JSON) or text.
Answer = tuple[int, "dict[str, Any] | str"]


def capture_error(status: int, code: str, error: str) -> Answer:
    """An error as PostHog's capture service words it (rust/capture/src/api.rs, ErrorBody)."""
    return status, {"status": status, "code": code, "error": error}


class PostHogSink:
    """Records every POSTed body, and the uuids of the batches it accepted.

    `status` is what it answers, unless `answer(request)` returns another answer for a request
    (`request` holds the decoded `body` and the size of the raw body in `bytes`).
    With `pair_requests`, each request waits until a second request is in flight too, so two
    forward runs are forced to overlap; if none comes within `PAIR_WAIT_SECONDS` it answers
    503 (the client's timeout must be longer than that). With `hold`, each request is held
    until `release()` (or `stop()`) and then answered 504: the client times out first.
    `on_request(body)` runs in the server's thread while the request is being handled.
    """

    PAIR_WAIT_SECONDS = 15
    HOLD_SECONDS = 30

    def __init__(
        self,
        *,
        port: int = 0,
        status: int = 200,
        pair_requests: bool = False,
        answer: Callable[[dict], Answer | None] | None = None,
        on_request: Callable[[dict], None] | None = None,
    ) -> None:
        self.port = port
        self.status = status
        self.answer = answer
        self.on_request = on_request
        self.hold = False
        self.requests: list[dict] = []
        self.answers: list[int] = []
        self.accepted: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._pair = threading.Barrier(2) if pair_requests else None
        self._released = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def release(self) -> None:
        self._released.set()

    def _respond(self, request: dict) -> Answer:
        if request["path"] != "/batch/":
            return 404, "not found"
        if self.hold:
            self._released.wait(self.HOLD_SECONDS)
            return capture_error(504, "gateway_timeout", "held by the test")
        status = self.status
        if self._pair is not None:
            try:
                self._pair.wait(timeout=self.PAIR_WAIT_SECONDS)
            except threading.BrokenBarrierError:
                status = 503
        answer = self.answer(request) if self.answer is not None else None
        if answer is not None:
            return answer
        if status == 200:
            return 200, {"status": 1}
        return status, {"detail": f"sink answered {status}"}

    def start(self) -> PostHogSink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                body = json.loads(raw)
                request = {"path": self.path, "body": body, "bytes": len(raw)}
                with sink._lock:
                    sink.requests.append(request)
                    sink.in_flight += 1
                    sink.max_in_flight = max(sink.max_in_flight, sink.in_flight)
                try:
                    if sink.on_request is not None:
                        sink.on_request(body)
                    status, payload = sink._respond(request)
                finally:
                    with sink._lock:
                        sink.in_flight -= 1
                with sink._lock:
                    sink.answers.append(status)
                    if status == 200:
                        sink.accepted.extend(message["uuid"] for message in body["batch"])
                text = json.dumps(payload) if isinstance(payload, dict) else payload
                content_type = "application/json" if isinstance(payload, dict) else "text/plain"
                encoded = text.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(encoded)))
                    self.end_headers()
                    self.wfile.write(encoded)
                except OSError:
                    pass  # the client gave up (its timeout): nobody to answer

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self.release()
        if self._pair is not None:
            self._pair.abort()
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join(10)
        self._server = None

    @property
    def batches(self) -> list[dict]:
        return [request["body"] for request in self.requests]

    @property
    def messages(self) -> list[dict]:
        return [message for body in self.batches for message in body["batch"]]

    def accepted_counts(self) -> Counter:
        """How many times each uuid was in a batch the sink answered 200 to."""
        return Counter(self.accepted)


def recorded_events(count: int) -> list[Event]:
    """`count` events of one organization's journey, oldest first (some user, some org-only)."""
    membership = MembershipFactory()
    organization, user = membership.organization, membership.user
    recorded = []
    for index in range(count):
        if index % 3 == 2:
            recorded.append(
                event_record(
                    name=events.SEAT_LIMIT_REACHED,
                    organization=organization,
                    properties={"attempted": "invite"},
                )
            )
        else:
            recorded.append(
                event_record(
                    name=events.INVITE_SENT,
                    user=user,
                    organization=organization,
                    properties={"role": "member"},
                )
            )
    return recorded


def unsent() -> list[Event]:
    """Events waiting to be sent (neither sent nor dead), oldest first."""
    return list(Event.objects.filter(sent_at__isnull=True, dead_at__isnull=True).order_by("id"))
