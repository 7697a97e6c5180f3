"""onboarding.mail writes the bytes Django's SMTP backend would send, byte for byte."""

from __future__ import annotations

import random
import re
import string
from datetime import UTC, datetime

import pytest
import time_machine
from django.core.mail.message import BadHeaderError, forbid_multi_line_headers, sanitize_address

from onboarding import mail
from onboarding.mail import (
    HEADER_POLICY,
    PLAIN_ADDRESS,
    OutgoingEmail,
    django_mime_bytes,
    envelope_address,
    header_bytes,
    header_is_plain,
    mime_bytes,
)

BOUNDARY = "=" * 15 + "1234567890123456789=="
UNSUBSCRIBE = "<http://127.0.0.1:8000/email/unsubscribe/InVzZXIxQGJlbmNoLmV4YW1wbGUi:1xYjr9:YiRySuYvOTcqLMpnB8ySdzyd0K9ykBUkUvG6NtwYJtk/>"
EMAIL = {
    "subject": "Ada, day 0 of your Tracker trial",
    "text": "Hello Ada,\n\nOpen http://127.0.0.1:8000/app/ and invite your team.\n",
    "html": '<html><body><p>Hello Ada,</p><p><a href="http://127.0.0.1:8000/email/click/x/">open</a></p></body></html>',
    "from_email": "Flywheel <hello@flywheel.localhost>",
    "to": "ada@example.com",
    "headers": {
        "List-Unsubscribe": UNSUBSCRIBE,
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "Message-ID": "<0123456789abcdef0123456789abcdef@127.0.0.1>",
        "X-Flywheel-Sequence": "trial-welcome",
    },
}


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"html": "<p>" + "Hello there. " * 100 + "</p>"},  # a line over 998 bytes: quoted-printable
        {"html": "<p>Grüße, " + "é" * 600 + "</p>"},  # non-ASCII and long
        {"html": "a\x85b" * 400},  # \x85 is a line break to str.splitlines() after latin-1
        {"html": ""},
        {"text": "Grüße\r\nfrom Zürich\rbye\n"},  # 8bit, every kind of line end
        {"text": "line\n" + "y" * 1200 + "\n"},
        {"text": "From the start\n.a dot line\n"},
        {"subject": "Grüße, Ada"},  # encoded word
        {"subject": "A long subject " * 8},  # folded
        {"subject": "  spaced   out "},
        {"subject": ""},
        {"to": "Ädä@example.com"},  # not a plain address: Django's own message
        {"to": "ada@exämple.com"},
        {"to": "UPPER.Case+tag@Example.COM"},
        {"from_email": "Flywheel Ünïcode <hello@flywheel.localhost>"},
        {"headers": {**EMAIL["headers"], "X-Flywheel-Sequence": ""}},
        {"headers": {**EMAIL["headers"], "List-Unsubscribe": "<" + "http://127.0.0.1:8000/" + "x" * 1000 + ">"}},
        {"headers": {"Date": "Mon, 02 Mar 2026 10:00:00 -0000"}},  # no Message-ID given: one is made
    ],
    ids=lambda change: ",".join(change) or "bench-like",
)
def test_the_bytes_are_those_django_would_send(change):
    email = OutgoingEmail(**{**EMAIL, **change})
    with time_machine.travel(datetime(2026, 3, 2, 10, 0, tzinfo=UTC), tick=False):
        ours, django = mime_bytes(email, boundary=BOUNDARY), django_mime_bytes(email, BOUNDARY)
    if "Message-ID" not in email.headers:
        ours, django = (_without_line(value, b"Message-ID: ") for value in (ours, django))
    assert ours == django


def _without_line(message: bytes, start: bytes) -> bytes:
    return b"".join(line for line in message.splitlines(keepends=True) if not line.startswith(start))


def test_a_header_with_a_newline_is_refused_as_django_refuses_it():
    email = OutgoingEmail(**{**EMAIL, "subject": "Hello\r\nBcc: everyone@example.com"})
    with pytest.raises(BadHeaderError):
        mime_bytes(email)


def test_the_boundary_is_random_and_never_in_a_body():
    email = OutgoingEmail(**EMAIL)
    first, second = mime_bytes(email), mime_bytes(email)
    boundary = first.split(b'boundary="', 1)[1].split(b'"', 1)[0]
    assert boundary != second.split(b'boundary="', 1)[1].split(b'"', 1)[0]
    assert first.count(b"--" + boundary) == 3  # two parts and the end


def test_header_values_written_as_they_are_are_those_the_standard_library_leaves_alone():
    # The fast path's rule (header_is_plain) against the real thing, on random values.
    generator = random.Random(4)
    alphabet = string.printable[:-5] + "  é"  # without \t\n\r\x0b\x0c; runs of spaces, non-ASCII
    checked = 0
    for _ in range(5000):
        value = "".join(generator.choice(alphabet) for _ in range(generator.randrange(0, 90)))
        for name in ("Subject", "To", "X-Flywheel-Sequence"):
            if header_is_plain(name, value):
                checked += 1
                expected = HEADER_POLICY.fold_binary(name, forbid_multi_line_headers(name, value, "utf-8")[1])
                assert header_bytes(name, value) == expected, (name, value)
    assert checked > 1000


def test_plain_addresses_are_their_own_envelope_address():
    generator = random.Random(5)
    checked = 0
    for _ in range(20000):
        address = "".join(generator.choice(string.ascii_letters + string.digits + ".-+_@!#") for _ in range(generator.randrange(3, 40)))
        if PLAIN_ADDRESS.match(address):
            checked += 1
            assert envelope_address(address) == sanitize_address(address, "utf-8") == address
    assert checked > 500
    assert envelope_address("ada@exämple.com") == sanitize_address("ada@exämple.com", "utf-8") == "ada@xn--exmple-cua.com"


def test_long_one_word_values_are_folded_as_the_standard_library_folds_them():
    generator = random.Random(6)
    alphabet = [character for character in string.printable[:94] if character not in ",;"] + ["=?utf-8?q?", "?="]
    for _ in range(3000):
        value = "<" + "".join(generator.choice(alphabet) for _ in range(generator.randrange(40, 400))) + ">"
        for name in ("List-Unsubscribe", "To", "X-Flywheel-Sequence", "Message-ID"):
            expected = HEADER_POLICY.fold_binary(name, forbid_multi_line_headers(name, value, "utf-8")[1])
            assert header_bytes(name, value) == expected, (name, value)


@pytest.mark.parametrize("text", [b"", b"a\nb", b"a\r\nb\r", b"\r\r\n\n\r", b".\n..\r\n.x", b"no end"])
def test_line_ends_become_crlf_as_the_generator_writes_them(text):
    assert mail._crlf(text) == re.sub(rb"\r\n|\r|\n", b"\r\n", text)
