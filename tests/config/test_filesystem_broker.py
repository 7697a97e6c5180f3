"""The embedded broker of `make run` (kombu's filesystem transport, config/filesystem_broker.py):
a worker never reads a message the web process has not finished writing."""

import multiprocessing
import os
import queue as queue_module
import subprocess
import sys
import time

from kombu import Connection
from kombu.transport import filesystem

from config.filesystem_broker import Transport

from ..conftest import ROOT

WRITERS, MESSAGES = 4, 400
PAYLOAD = {"body": "x" * 20_000, "headers": {"task": "accounts.tasks.mail_send"}}


def _options(folder) -> dict:
    return {"data_folder_in": str(folder), "data_folder_out": str(folder), "control_folder": str(folder)}


def _write(transport, folder, start) -> None:
    with Connection("filesystem://", transport=transport, transport_options=_options(folder)) as connection:
        channel = connection.default_channel
        start.wait()
        for number in range(MESSAGES):
            channel._put("flywheel", {**PAYLOAD, "number": number})


def _hammer(transport, folder) -> tuple[int, list[str]]:
    """WRITERS processes put MESSAGES each while this process takes them as fast as it can;
    (messages read whole, errors)."""
    context = multiprocessing.get_context("fork")
    start = context.Event()
    writers = [context.Process(target=_write, args=(transport, folder, start)) for _ in range(WRITERS)]
    for writer in writers:
        writer.start()
    read, errors = 0, []
    with Connection("filesystem://", transport=transport, transport_options=_options(folder)) as connection:
        channel = connection.default_channel
        start.set()
        deadline = time.monotonic() + 120
        while read + len(errors) < WRITERS * MESSAGES and time.monotonic() < deadline:
            try:
                message = channel._get("flywheel")
            except queue_module.Empty:
                continue
            except ValueError as error:  # json.JSONDecodeError: an empty or half-written file
                errors.append(repr(error))
                continue
            assert message["body"] == PAYLOAD["body"]
            read += 1
    for writer in writers:
        writer.join(30)
    return read, errors


def test_a_reader_never_takes_a_message_file_before_it_is_written_whole(tmp_path):
    read, errors = _hammer(Transport, tmp_path)
    assert errors == []
    assert read == WRITERS * MESSAGES
    assert [path.name for path in tmp_path.iterdir() if path.name.endswith(".tmp")] == []


def _reader_at(monkeypatch, module, name, transport, folder) -> str:
    """What a reader gets from the queue when it looks at the moment the writer calls
    `module.name` in the middle of a put (made to happen every time, instead of once in a few
    thousand puts): "nothing", "a whole message", or the error it fails with."""
    seen: list[str] = []
    real = getattr(module, name)

    def read_then_go_on(*args, **kwargs):
        if not seen:
            seen.append("reading")
            try:
                channel._get("flywheel")
                seen.append("a whole message")
            except queue_module.Empty:
                seen.append("nothing")
            except ValueError as error:  # json.JSONDecodeError
                seen.append(repr(error))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, read_then_go_on)
    with Connection("filesystem://", transport=transport, transport_options=_options(folder)) as connection:
        channel = connection.default_channel
        channel._put("flywheel", PAYLOAD)
    monkeypatch.undo()
    assert seen, f"the writer never called {name}"
    return seen[-1]


def test_kombus_own_transport_lets_a_reader_take_an_empty_message_file(tmp_path, monkeypatch):
    """What the subclass fixes, shown on kombu's class: kombu's writer locks its message file
    after creating it under its final name and before writing; a reader then takes the empty
    file and fails on it (the worker's JSONDecodeError)."""
    assert "Expecting value" in _reader_at(monkeypatch, filesystem, "lock", filesystem.Transport, tmp_path)


def test_the_subclass_shows_a_message_only_once_it_is_whole(tmp_path, monkeypatch):
    """The subclass's writer has written the whole message, under a temporary name, before it
    renames it into place: a reader looking just before the rename finds nothing, then the
    whole message."""
    assert _reader_at(monkeypatch, os, "replace", Transport, tmp_path) == "nothing"
    with Connection("filesystem://", transport=Transport, transport_options=_options(tmp_path)) as connection:
        assert connection.default_channel._get("flywheel")["body"] == PAYLOAD["body"]


def test_a_new_exchange_table_is_never_read_empty(tmp_path):
    with Connection("filesystem://", transport=Transport, transport_options=_options(tmp_path)) as connection:
        channel = connection.default_channel
        channel._queue_bind("celery.pidbox", "", "", "worker-1.pidbox")
        channel._queue_bind("celery.pidbox", "", "", "worker-2.pidbox")
        assert sorted(binding.queue for binding in channel.get_table("celery.pidbox")) == [
            "worker-1.pidbox",
            "worker-2.pidbox",
        ]


def test_the_embedded_default_broker_is_the_one_that_writes_files_whole(tmp_path):
    """Without REDIS_URL (make run), every process's Celery app uses the transport above."""
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "CELERY_BROKER_URL", "DATABASE_URL")}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings", "FLYWHEEL_ENV": "development", "FLYWHEEL_VAR_DIR": str(tmp_path)})
    printed = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from config.celery import app; "
         "connection = app.connection_for_write(); print(connection.transport_cls, connection.transport.__class__.__module__)"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert printed.split() == ["config.filesystem_broker:Transport", "config.filesystem_broker"]
