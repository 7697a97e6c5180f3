"""PostHog's refusals and outages, against a local stand-in that answers as PostHog's capture
service does (tests/experiments/helpers.py): a refused event dies with PostHog's reason and
holds nothing back, every good event arrives exactly once, an outage keeps everything, and
no transaction or row lock is held while PostHog is called."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.utils import timezone

from experiments import events, posthog_gateway
from experiments.models import Event
from experiments.selectors import events_claimable
from experiments.services import (
    REFUSED_IN_A_ROW_MAX,
    ForwardReport,
    event_record,
    events_claim,
    events_forward,
)

from .helpers import capture_error, recorded_events, unsent

MISSING_DISTINCT_ID = capture_error(400, "missing_distinct_id", "event submitted without a distinct_id")
REFUSED_REASON = "PostHog refused the event (400): event submitted without a distinct_id [missing_distinct_id]"


def poisoned_event() -> Event:
    """An event PostHog's capture refuses: an empty distinct id (its MissingDistinctId)."""
    return event_record(name=events.SIGNUP_STARTED, distinct_id="")


def refuse_poisoned_batches(request: dict):
    """PostHog refuses a whole batch for one invalid event in it."""
    if any(not message["distinct_id"] for message in request["body"]["batch"]):
        return MISSING_DISTINCT_ID
    return None


def uuids(stored: list[Event]) -> list[str]:
    return [str(event.public_id) for event in stored]


@pytest.mark.django_db
def test_a_refused_event_dies_with_posthogs_reason_and_the_rest_of_its_batch_goes_out_once(sink):
    sink.answer = refuse_poisoned_batches
    good = recorded_events(3)
    first_poison = poisoned_event()  # the oldest unsent event but three: at the head of a batch
    good += recorded_events(5)
    second_poison = poisoned_event()
    good += recorded_events(2)

    report = events_forward(batch_size=4)

    assert report.error == ""
    assert report.dead == 2
    assert report.sent == len(good) == 10
    # Every good event arrived exactly once; the refused ones never did.
    assert sink.accepted_counts() == {uuid: 1 for uuid in uuids(good)}
    # PostHog refused only batches holding a refused event.
    for request, answer in zip(sink.requests, sink.answers, strict=True):
        assert (answer == 200) == all(message["distinct_id"] for message in request["body"]["batch"])
    for poison in (first_poison, second_poison):
        poison.refresh_from_db()
        assert poison.sent_at is None
        assert poison.dead_at is not None
        assert poison.last_error == REFUSED_REASON
        assert poison.claimed_until is None
    for event in Event.objects.filter(pk__in=[event.pk for event in good]):
        assert event.sent_at is not None
        assert (event.dead_at, event.last_error, event.attempts, event.claimed_until) == (None, "", 0, None)
    assert unsent() == []

    # Nothing is left to send: the dead events are never tried again.
    requests_before = len(sink.requests)
    assert events_forward(batch_size=4) == ForwardReport()
    assert len(sink.requests) == requests_before


@pytest.mark.django_db
def test_a_batch_over_posthogs_body_limit_is_split_and_an_event_over_it_alone_dies(sink):
    good = recorded_events(9)
    big = event_record(name=events.SIGNUP_STARTED, distinct_id="anonymous-big", properties={"note": "x" * 4000})
    good += recorded_events(3)
    # The stand-in's body limit: ordinary events take about 400 bytes in a request, so a
    # batch of 13 is over it and a batch of 3 under; the big event is over it alone.
    limit = 2000

    def refuse_large_bodies(request: dict):
        if request["bytes"] > limit:
            # Its body-limit layer answers in text, not in capture's JSON.
            return 413, "Failed to buffer the request body: length limit exceeded"
        return None

    sink.answer = refuse_large_bodies

    report = events_forward(batch_size=13)

    assert report.error == ""
    assert (report.sent, report.dead) == (12, 1)
    assert sink.accepted_counts() == {uuid: 1 for uuid in uuids(good)}
    # A batch of good events was refused for its size, and split.
    assert any(answer == 413 and len(request["body"]["batch"]) > 1 for request, answer in zip(sink.requests, sink.answers, strict=True))
    assert all(request["bytes"] <= limit for request, answer in zip(sink.requests, sink.answers, strict=True) if answer == 200)
    big.refresh_from_db()
    assert big.sent_at is None and big.dead_at is not None
    assert big.last_error == "PostHog refused the event (413): Failed to buffer the request body: length limit exceeded"
    assert unsent() == []


@pytest.mark.django_db
def test_an_event_over_posthogs_size_limit_is_never_sent_and_dies_with_its_size(sink):
    before = recorded_events(2)
    big = event_record(
        name=events.SIGNUP_STARTED, distinct_id="anonymous-big", properties={"note": "x" * posthog_gateway.MAX_EVENT_BYTES}
    )
    after = recorded_events(2)

    report = events_forward(batch_size=10)

    assert report == ForwardReport(sent=4, batches=1, dead=1, error="")
    assert sink.accepted_counts() == {uuid: 1 for uuid in uuids(before + after)}
    assert str(big.public_id) not in {message["uuid"] for message in sink.messages}
    big.refresh_from_db()
    assert big.dead_at is not None and big.sent_at is None
    match = re.fullmatch(r"too large: (\d+) bytes, PostHog's limit is 921600", big.last_error)
    assert match is not None
    assert int(match.group(1)) > posthog_gateway.MAX_EVENT_BYTES


def test_an_events_size_is_counted_as_the_json_posthog_python_sends():
    # json.dumps escapes "é" as \u00e9: six bytes on the wire, not UTF-8's two.
    assert posthog_gateway.message_size({"note": "é"}) == len(b'{"note": "\\u00e9"}') == 18


@pytest.mark.django_db
def test_an_outage_keeps_everything_unsent_and_the_next_run_sends_each_event_once(sink):
    def unavailable(request: dict):
        return capture_error(503, "service_unavailable", "service unavailable: kafka")

    sink.answer = unavailable
    good = recorded_events(2)
    poison = poisoned_event()
    good += recorded_events(4)

    report = events_forward(batch_size=3)

    # An outage is not a refusal: nothing dies, nothing is split, the run stops at once.
    assert report == ForwardReport(
        sent=0, batches=0, dead=0, error="PostHog could not take the batch (503): service unavailable: kafka [service_unavailable]"
    )
    assert len(sink.requests) == 1
    assert not Event.objects.filter(dead_at__isnull=False).exists()
    waiting = unsent()
    assert len(waiting) == 7
    assert [event.attempts for event in waiting] == [1, 1, 1, 0, 0, 0, 0]
    assert [event.last_error for event in waiting[:3]] == [report.error] * 3
    assert all(event.claimed_until is None for event in waiting)

    # PostHog is back (and still refuses the poisoned event): each good event goes out once.
    sink.answer = refuse_poisoned_batches
    again = events_forward(batch_size=3)

    assert (again.sent, again.dead, again.error) == (6, 1, "")
    assert sink.accepted_counts() == {uuid: 1 for uuid in uuids(good)}
    poison.refresh_from_db()
    assert poison.last_error == REFUSED_REASON
    assert unsent() == []


@pytest.mark.django_db
def test_a_timeout_keeps_everything_unsent_and_the_next_run_sends_the_same_uuids_once(sink, posthog_settings):
    posthog_settings.POSTHOG_TIMEOUT = 0.5
    sink.hold = True
    stored = recorded_events(4)

    report = events_forward(batch_size=10)

    assert report.error.startswith("PostHog did not answer within 0.5 s")
    assert (report.sent, report.dead) == (0, 0)
    assert [event.attempts for event in unsent()] == [1, 1, 1, 1]
    assert all(event.last_error == report.error for event in unsent())
    assert sink.accepted == []

    sink.release()
    sink.hold = False
    posthog_settings.POSTHOG_TIMEOUT = 5
    assert events_forward(batch_size=10) == ForwardReport(sent=4, batches=1)

    # The batch that timed out carried the same uuids: had PostHog taken it, it would count
    # each event once.
    assert [message["uuid"] for message in sink.batches[0]["batch"]] == uuids(stored)
    assert sink.accepted_counts() == {uuid: 1 for uuid in uuids(stored)}
    assert unsent() == []


@pytest.mark.django_db
def test_a_refused_api_key_is_an_outage_and_no_event_dies(sink):
    sink.answer = lambda request: capture_error(403, "ingest_key_unknown", "API key is not valid: unknown")
    recorded_events(3)

    report = events_forward(batch_size=10)

    assert report.error == "PostHog refused Flywheel's API key or host (403): API key is not valid: unknown [ingest_key_unknown]"
    assert report.dead == 0
    assert len(sink.requests) == 1
    assert [event.attempts for event in unsent()] == [1, 1, 1]


@pytest.mark.django_db
def test_posthog_refusing_every_event_kills_a_bounded_few_then_is_handled_as_an_outage(sink):
    # Something refuses every request as malformed (a proxy in front of PostHog, say).
    sink.answer = lambda request: capture_error(400, "request_parsing_error", "failed to parse request")
    stored = recorded_events(REFUSED_IN_A_ROW_MAX + 10)

    report = events_forward(batch_size=10)

    assert report.dead == REFUSED_IN_A_ROW_MAX
    assert report.sent == 0
    assert report.error.startswith(f"PostHog refused {REFUSED_IN_A_ROW_MAX} events in a row and took none")
    waiting = unsent()
    assert len(waiting) == 10
    assert [event.attempts for event in waiting] == [1] * 10
    # The events that died are the oldest ones, each with PostHog's reason.
    dead = list(Event.objects.filter(dead_at__isnull=False).order_by("id"))
    assert [event.pk for event in dead] == [event.pk for event in stored[:REFUSED_IN_A_ROW_MAX]]
    assert {event.last_error for event in dead} == {
        "PostHog refused the event (400): failed to parse request [request_parsing_error]"
    }

    # Once requests go through, the waiting ones are sent once, and a refused event dies on
    # its own again (the count is per run, and an accepted batch resets it).
    sink.answer = refuse_poisoned_batches
    poison = poisoned_event()
    again = events_forward(batch_size=10)
    assert (again.sent, again.dead, again.error) == (10, 1, "")
    assert sink.accepted_counts() == {uuid: 1 for uuid in uuids(stored[REFUSED_IN_A_ROW_MAX:])}
    poison.refresh_from_db()
    assert poison.last_error == REFUSED_REASON


@pytest.mark.django_db(transaction=True)
def test_no_transaction_is_open_and_no_row_locked_while_posthog_is_called(sink):
    seen: list = []

    def look_from_another_connection(body: dict) -> None:
        # The stand-in's thread has its own database connection.
        try:
            with transaction.atomic():
                rows = list(
                    Event.objects.select_for_update(nowait=True)
                    .filter(public_id__in=[message["uuid"] for message in body["batch"]])
                    .values_list("claimed_until", "sent_at")
                )
            seen.append(rows)
        except Exception as error:  # noqa: BLE001 - reported to the test below
            seen.append(error)
        finally:
            connection.close()

    sink.on_request = look_from_another_connection
    recorded_events(7)

    started = timezone.now()
    report = events_forward(batch_size=3)

    assert report == ForwardReport(sent=7, batches=3)
    assert [len(rows) for rows in seen] == [3, 3, 1]  # an exception would have no len
    for rows in seen:
        for claimed_until, sent_at in rows:
            # The lease was committed before the call, and the outcome recorded after it.
            assert claimed_until is not None and claimed_until > started
            assert sent_at is None
    assert not Event.objects.filter(claimed_until__isnull=False).exists()


@pytest.mark.django_db
def test_a_crashed_runs_events_wait_for_its_lease_to_end_then_go_out_once(sink):
    stored = recorded_events(3)
    # A run that claimed these events and died before calling PostHog.
    assert events_claim(limit=10, lease_seconds=120) == stored

    assert events_forward(batch_size=10) == ForwardReport()
    assert sink.requests == []

    with time_machine.travel(timezone.now() + timedelta(seconds=121)):
        assert events_forward(batch_size=10) == ForwardReport(sent=3, batches=1)
    assert sink.accepted_counts() == {uuid: 1 for uuid in uuids(stored)}
    assert unsent() == []


@pytest.mark.django_db
def test_the_claim_is_served_by_the_unsent_index():
    recorded_events(3)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = events_claimable(now=timezone.now())[:500].explain()

    assert "event_unsent_idx" in plan
