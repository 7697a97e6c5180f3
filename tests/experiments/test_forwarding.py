"""Forwarding the analytics outbox to PostHog, against a real HTTP sink on 127.0.0.1.

The sink speaks PostHog's batch API (`POST /batch/` with `{"api_key", "batch": [...]}`), so the
real `posthog` package and the real network stack are exercised end to end.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections import Counter
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection

from experiments import events, tasks
from experiments.models import Event
from experiments.services import ForwardReport, event_record, events_forward

from ..factories import MembershipFactory

API_KEY = "phc_test_flywheel"  # noqa: S105 - a fake key the sink checks for


class PostHogSink:
    """A local stand-in for PostHog's capture endpoint that records every POSTed body.

    `status` is what it answers. With `pair_requests`, each request waits until a second request
    is in flight too, so two forward runs are forced to overlap; if none comes within
    `PAIR_WAIT_SECONDS` it answers 503 (the client's timeout must be longer than that).
    """

    PAIR_WAIT_SECONDS = 15

    def __init__(self, *, port: int = 0, status: int = 200, pair_requests: bool = False) -> None:
        self.port = port
        self.status = status
        self.requests: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._pair = threading.Barrier(2) if pair_requests else None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PostHogSink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                with sink._lock:
                    sink.requests.append({"path": self.path, "body": json.loads(raw)})
                    sink.in_flight += 1
                    sink.max_in_flight = max(sink.max_in_flight, sink.in_flight)
                status = sink.status
                try:
                    if sink._pair is not None:
                        try:
                            sink._pair.wait(timeout=sink.PAIR_WAIT_SECONDS)
                        except threading.BrokenBarrierError:
                            status = 503
                finally:
                    with sink._lock:
                        sink.in_flight -= 1
                if self.path != "/batch/":
                    status = 404
                payload = {"status": 1} if status == 200 else {"detail": f"sink answered {status}"}
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

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


@pytest.fixture
def posthog_settings(settings):
    settings.POSTHOG_API_KEY = API_KEY
    settings.POSTHOG_TIMEOUT = 5
    return settings


@pytest.fixture
def sink(posthog_settings):
    sink = PostHogSink().start()
    posthog_settings.POSTHOG_HOST = sink.url
    yield sink
    sink.stop()


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
    return list(Event.objects.filter(sent_at__isnull=True).order_by("id"))


@pytest.mark.django_db
def test_unsent_events_go_out_in_batches_of_the_configured_size(sink, posthog_settings):
    posthog_settings.ANALYTICS_BATCH_SIZE = 3
    stored = recorded_events(7)

    # The beat task, run in this process: it forwards with ANALYTICS_BATCH_SIZE.
    assert tasks.events_forward() == 7

    assert [request["path"] for request in sink.requests] == ["/batch/"] * 3
    assert [len(body["batch"]) for body in sink.batches] == [3, 3, 1]
    assert all(body["api_key"] == API_KEY for body in sink.batches)
    # Oldest first, each event exactly once, PostHog's uuid being our public id.
    assert [message["uuid"] for message in sink.messages] == [
        str(event.public_id) for event in stored
    ]
    for message, event in zip(sink.messages, stored, strict=True):
        assert message["type"] == "capture"
        assert message["event"] == event.name
        assert message["distinct_id"] == event.distinct_id
        assert datetime.fromisoformat(message["timestamp"]) == event.occurred_at
        assert message["properties"] == {**event.properties, "$lib": "flywheel"}
        assert message["properties"]["$groups"] == {
            "organization": str(event.organization.public_id)
        }

    assert unsent() == []
    for event in Event.objects.all():
        assert event.sent_at is not None
        assert event.attempts == 0
        assert event.last_error == ""

    # A second run finds nothing to send and sends nothing.
    assert tasks.events_forward() == 0
    assert len(sink.requests) == 3


@pytest.mark.django_db
def test_sink_down_keeps_every_event_and_they_go_out_once_when_it_is_back(posthog_settings):
    # A port that was just listening and is now closed: connections are refused.
    gone = PostHogSink().start()
    port = gone.port
    gone.stop()
    posthog_settings.POSTHOG_HOST = gone.url
    stored = recorded_events(5)

    for attempt in (1, 2):
        report = events_forward(batch_size=10)
        assert report.sent == 0
        assert report.batches == 0
        assert "could not be reached" in report.error
        assert Event.objects.count() == 5
        for event in unsent():
            assert event.attempts == attempt
            assert event.last_error.startswith("PostHog could not be reached")
        assert len(unsent()) == 5

    back = PostHogSink(port=port).start()
    try:
        report = events_forward(batch_size=10)
        assert report == ForwardReport(sent=5, batches=1, error="")
        again = events_forward(batch_size=10)
        assert again == ForwardReport(sent=0, batches=0, error="")
    finally:
        back.stop()

    uuids = Counter(message["uuid"] for message in back.messages)
    assert uuids == Counter(str(event.public_id) for event in stored)
    assert len(back.requests) == 1
    assert unsent() == []
    for event in Event.objects.all():
        assert event.attempts == 2  # how many times it failed before it went out
        assert event.last_error == ""


@pytest.mark.django_db
def test_sink_down_stops_the_run_at_the_first_failed_batch(posthog_settings):
    gone = PostHogSink().start()
    gone.stop()
    posthog_settings.POSTHOG_HOST = gone.url
    stored = recorded_events(5)

    report = events_forward(batch_size=2)

    assert report.sent == 0
    assert [event.attempts for event in unsent()] == [1, 1, 0, 0, 0]
    assert [bool(event.last_error) for event in unsent()] == [True, True, False, False, False]
    assert [event.pk for event in unsent()] == [event.pk for event in stored]


@pytest.mark.django_db
def test_sink_answering_500_keeps_the_events_unsent(sink):
    sink.status = 500
    stored = recorded_events(4)

    report = events_forward(batch_size=10)

    assert report.sent == 0
    assert report.error.startswith("PostHog refused the batch")
    assert "500" in report.error
    # The batch did reach the sink, which refused it: nothing is marked sent.
    assert len(sink.requests) == 1
    assert {message["uuid"] for message in sink.messages} == {
        str(event.public_id) for event in stored
    }
    remaining = unsent()
    assert len(remaining) == 4
    for event in remaining:
        assert event.attempts == 1
        assert "sink answered 500" in event.last_error

    # Once the sink accepts, the same events go out, each once more and then never again.
    sink.status = 200
    assert events_forward(batch_size=10).sent == 4
    assert events_forward(batch_size=10).sent == 0
    assert unsent() == []
    assert len(sink.requests) == 2


@pytest.mark.django_db
@pytest.mark.parametrize("api_key", [None, ""])
def test_without_an_api_key_nothing_is_sent_and_events_stay_stored(sink, posthog_settings, api_key):
    posthog_settings.POSTHOG_API_KEY = api_key
    recorded_events(4)

    assert tasks.events_forward() == 0
    assert events_forward(batch_size=2) == ForwardReport()

    assert sink.requests == []
    assert Event.objects.count() == 4
    for event in unsent():
        assert event.attempts == 0
        assert event.last_error == ""
    assert len(unsent()) == 4


@pytest.mark.django_db(transaction=True)
def test_two_forward_runs_at_once_never_send_an_event_twice(posthog_settings):
    # Each request is held until another one is in flight, so the two runs overlap for certain:
    # while run A holds its batch (rows locked, HTTP call open), run B must claim other rows.
    sink = PostHogSink(pair_requests=True).start()
    posthog_settings.POSTHOG_HOST = sink.url
    posthog_settings.POSTHOG_TIMEOUT = 2 * PostHogSink.PAIR_WAIT_SECONDS
    stored = [
        event_record(name=events.SIGNUP_STARTED, distinct_id=f"anonymous-{index}")
        for index in range(20)
    ]
    start = threading.Barrier(2)
    reports: list[ForwardReport] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            start.wait(timeout=20)
            reports.append(events_forward(batch_size=5))
        except BaseException as error:  # noqa: BLE001 - reported to the test below
            failures.append(error)
        finally:
            connection.close()

    runners = [threading.Thread(target=run) for _ in range(2)]
    try:
        for runner in runners:
            runner.start()
        for runner in runners:
            runner.join(60)
    finally:
        sink.stop()

    assert not any(runner.is_alive() for runner in runners)
    assert failures == []
    assert [report.error for report in reports] == ["", ""]
    assert sum(report.sent for report in reports) == 20
    # Both runs had a batch at the sink at the same time...
    assert sink.max_in_flight == 2
    assert len(sink.requests) == 4
    # ...and still every event arrived exactly once.
    uuids = Counter(message["uuid"] for message in sink.messages)
    assert uuids == Counter(str(event.public_id) for event in stored)
    assert set(uuids.values()) == {1}
    assert Event.objects.filter(sent_at__isnull=True).count() == 0
