"""Forwarding the analytics outbox to PostHog, against a real HTTP sink on 127.0.0.1
(tests/experiments/helpers.py: PostHogSink, which speaks PostHog's batch API)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime

import pytest
from django.db import connection

from experiments import events, tasks
from experiments.models import Event
from experiments.services import ForwardReport, event_record, events_forward

from .helpers import API_KEY, PostHogSink, recorded_events, unsent


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
    # A 5xx is an outage, not a refusal: nothing dies, everything waits for the next run.
    assert report.error == "PostHog could not take the batch (500): sink answered 500"
    assert report.dead == 0
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
    # while run A holds its batch (leased, HTTP call open), run B must claim other rows.
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
