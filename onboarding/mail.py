"""Onboarding emails as bytes, and sending them over the mail backend's connections.

Why not EmailMultiAlternatives for every recipient: building its email.message tree, folding
each header and flattening the tree with email.generator costs more CPU per email than the
SMTP server takes to accept one (about 0.8 ms of the 1 ms a loopback server needs, profiled
with bench/onboarding.py). mime_bytes() writes the very bytes Django's SMTP backend would
send for the same email (the same headers in the same order, the same body encodings:
7bit, 8bit, or quoted-printable when a line is longer than 998 bytes), with plain string
operations where the standard library would leave a value unchanged, and with the standard
library's own functions everywhere else. tests/onboarding/test_mail.py compares the two
byte for byte; what the fast path does not cover (a non-ASCII address, a long subject)
goes through Django's message, unchanged.
"""

from __future__ import annotations

import logging
import math
import os
import random
import re
import select
import selectors
import smtplib
import sys
import threading
from collections import deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from email import quoprimime
from email.policy import compat32
from email.utils import formatdate, make_msgid
from functools import lru_cache
from time import monotonic
from time import time as time_now
from typing import Generic, TypeVar

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.core.mail.message import (
    RFC5322_EMAIL_LINE_LENGTH_LIMIT,
    forbid_multi_line_headers,
    sanitize_address,
)
from django.core.mail.utils import DNS_NAME

logger = logging.getLogger(__name__)

T = TypeVar("T")

HEADER_POLICY = compat32.clone(linesep="\r\n")  # what Django's as_bytes(linesep="\r\n") folds with
# A header value the standard library writes as it is: printable ASCII words separated by
# single spaces, short enough never to be folded (the limit is 78 with the name; 76 leaves
# room for what Header.encode counts differently for the subject).
_PLAIN_VALUE = re.compile(r"(?:[!-~]+(?: [!-~]+)*)?\Z")
_PLAIN_LINE = 76
# A value the standard library cannot fold (one word: no space, nor the ';' and ',' it would
# break after) goes whole onto a continuation line once it no longer fits on the first.
_ONE_WORD = re.compile(r"[!-+\--:<-~]+\Z")
_FOLD_LINE = 78
# An address sanitize_address() returns unchanged: a dot-atom local part at an ASCII domain.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
PLAIN_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]{{1,63}}(?:\.[A-Za-z0-9-]{{1,63}})*\Z")
_BOUNDARY_WIDTH = len(repr(sys.maxsize - 1))  # as email.generator makes them
_SKIPPED_EXTRA = {"from", "to", "cc", "reply-to"}  # headers Django sets from fields, not from `headers`


@dataclass(frozen=True)
class OutgoingEmail:
    """One email to one recipient: both bodies and the extra headers (Message-ID and so on)."""

    subject: str
    text: str
    html: str
    from_email: str
    to: str
    headers: dict[str, str] = field(default_factory=dict)

    def django_message(self) -> EmailMultiAlternatives:
        """The same email as Django's EmailMultiAlternatives (for every other mail backend)."""
        message = EmailMultiAlternatives(
            subject=self.subject, body=self.text, from_email=self.from_email, to=[self.to], headers=dict(self.headers)
        )
        message.attach_alternative(self.html, "text/html")
        return message


def header_is_plain(name: str, value: str) -> bool:
    """A header line the standard library writes as it is: no encoding, no folding."""
    return len(name) + 2 + len(value) <= _PLAIN_LINE and _PLAIN_VALUE.match(value) is not None


def header_bytes(name: str, value: str) -> bytes:
    """One header line as Django's message writes it: forbid_multi_line_headers() (which
    refuses newlines and encodes non-ASCII), then the generator's folding."""
    if header_is_plain(name, value):
        return f"{name}: {value}\r\n".encode("ascii")
    if len(name) + 2 + len(value) > _FOLD_LINE and _ONE_WORD.match(value):
        return f"{name}: \r\n {value}\r\n".encode("ascii")
    return HEADER_POLICY.fold_binary(name, forbid_multi_line_headers(name, value, settings.DEFAULT_CHARSET)[1])


def _body(payload: str) -> tuple[str, bytes]:
    """(Content-Transfer-Encoding, body) as Django's SafeMIMEText encodes a utf-8 text:
    quoted-printable when a line is longer than RFC 5322 allows, else 7bit or 8bit."""
    encoded = payload.encode("utf-8")
    # A line of splitlines() lies within a line between two b"\n": when none of those is too
    # long, no line is (the exact test, in Python per line, only when one of them is).
    long_lines = (
        len(encoded) > RFC5322_EMAIL_LINE_LENGTH_LIMIT
        and max(map(len, encoded.split(b"\n"))) > RFC5322_EMAIL_LINE_LENGTH_LIMIT
        and any(
            len(line.encode(errors="surrogateescape")) > RFC5322_EMAIL_LINE_LENGTH_LIMIT for line in payload.splitlines()
        )
    )
    if long_lines:
        return "quoted-printable", _crlf(quoprimime.body_encode(encoded.decode("latin-1")).encode("ascii"))
    return ("7bit" if encoded.isascii() else "8bit"), _crlf(encoded)


def _crlf(data: bytes) -> bytes:
    """Every line end (\\r\\n, \\r or \\n) as \\r\\n: what the generator's linesep gives, with
    bytes.replace in C rather than a regular expression stepping through every byte."""
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")


def _part(subtype: str, payload: str) -> bytes:
    encoding, body = _body(payload)
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\nMIME-Version: 1.0\r\n'
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
    ).encode("ascii") + body


def _boundary(*parts: bytes) -> str:
    while True:
        boundary = "=" * 15 + f"{random.randrange(sys.maxsize):0{_BOUNDARY_WIDTH}d}" + "=="  # noqa: S311 - not a secret
        if not any(boundary.encode("ascii") in part for part in parts):
            return boundary


def mime_bytes(email: OutgoingEmail, *, boundary: str | None = None) -> bytes:
    """The message as Django's SMTP backend sends it (EmailMultiAlternatives with the text
    body and the HTML alternative, message().as_bytes(linesep="\\r\\n")), byte for byte but
    for the random MIME boundary (`boundary` fixes it, for tests) and the Date."""
    if settings.DEFAULT_CHARSET.lower() != "utf-8" or not email.text or not PLAIN_ADDRESS.match(email.to):
        return django_mime_bytes(email, boundary)
    text, html = _part("plain", email.text), _part("html", email.html)
    boundary = boundary or _boundary(text, html)
    names = {name.lower() for name in email.headers}
    lines = [
        f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\nMIME-Version: 1.0\r\n'.encode("ascii"),
        _subject(email.subject),
        header_bytes("From", email.headers.get("From", email.from_email)),
        header_bytes("To", email.to),
    ]
    if "date" not in names:
        lines.append(_date_header(int(time_now()), settings.EMAIL_USE_LOCALTIME))
    if "message-id" not in names:
        lines.append(header_bytes("Message-ID", make_msgid(domain=DNS_NAME)))
    lines.extend(header_bytes(name, value) for name, value in email.headers.items() if name.lower() not in _SKIPPED_EXTRA)
    separator = f"\r\n--{boundary}\r\n".encode("ascii")
    lines.append(b"\r\n--" + boundary.encode("ascii") + b"\r\n" + text + separator + html)
    lines.append(f"\r\n--{boundary}--\r\n".encode("ascii"))
    return b"".join(lines)


@lru_cache(maxsize=2)
def _date_header(second: int, localtime: bool) -> bytes:
    # Every email of the same second has the same Date (formatdate costs as much as a header).
    return header_bytes("Date", formatdate(second, localtime=localtime))


def _subject(subject: str) -> bytes:
    # Django encodes every subject with Header() (ASCII ones too), then the generator folds it.
    if header_is_plain("Subject", subject):
        return f"Subject: {subject}\r\n".encode("ascii")
    return HEADER_POLICY.fold_binary("Subject", forbid_multi_line_headers("Subject", subject, settings.DEFAULT_CHARSET)[1])


def django_mime_bytes(email: OutgoingEmail, boundary: str | None) -> bytes:
    message = email.django_message().message()
    if boundary is not None:
        message.set_boundary(boundary)
    return message.as_bytes(linesep="\r\n")


def envelope_address(address: str) -> str:
    """The SMTP envelope's address (sender or recipient), as Django's SMTP backend writes it
    (sanitize_address), which leaves a plain address as it is."""
    return address if PLAIN_ADDRESS.match(address) else _sanitized_address(address)


@lru_cache(maxsize=64)
def _sanitized_address(address: str) -> str:
    # The sender ("Flywheel <onboarding@...>") is the same for every email of every chunk.
    return sanitize_address(address, settings.DEFAULT_CHARSET)


def _angle_address(address: str) -> str:
    """smtplib.quoteaddr() of an envelope address: `<address>` for a plain one (what
    email.utils.parseaddr, which quoteaddr calls, finds in it), else quoteaddr's own answer."""
    return f"<{address}>" if PLAIN_ADDRESS.match(address) else _quoted_address(address)


@lru_cache(maxsize=64)
def _quoted_address(address: str) -> str:
    return smtplib.quoteaddr(address)


_LEADING_DOT = re.compile(rb"(?m)^\.")


def _transaction(smtp: smtplib.SMTP, sender: str, recipient: str, message: bytes) -> Generator[bytes, tuple[int, bytes], None]:
    """smtplib's SMTP.sendmail(sender, [recipient], message) as a generator, for a driver that
    keeps one email in flight on each of several connections: it yields each command's bytes
    (the driver writes them) and is sent the server's reply (the driver reads it); it returns
    once the message is accepted and raises smtplib's own error when the server refuses it.
    The same commands and bytes on the wire, the same replies accepted and the same errors
    raised as sendmail(), with less Python around each round trip: each envelope address is
    put in angle brackets without parsing it again (quoteaddr's parseaddr cost as much as the
    rest of the dialogue), and a refusal is reset (RSET) here, on this connection only, at
    every step (sendmail() leaves a refused DATA command unreset)."""
    smtp.ehlo_or_helo_if_needed()
    size = f" size={len(message)}" if smtp.does_esmtp and smtp.has_extn("size") else ""
    code, reply = yield _command_bytes(smtp, f"mail FROM:{_angle_address(sender)}{size}")
    if code != 250:
        _give_up(smtp, code)
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    code, reply = yield _command_bytes(smtp, f"rcpt TO:{_angle_address(recipient)}")
    if code not in (250, 251):
        _give_up(smtp, code)
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
    code, reply = yield b"data\r\n"
    if code != 354:
        _give_up(smtp, code)  # sendmail() would leave the transaction open: the next MAIL would be refused
        raise smtplib.SMTPDataError(code, reply)
    # Dot-stuffing, only when a line starts with a dot (the expression tries every byte).
    data = _LEADING_DOT.sub(b"..", message) if message.startswith(b".") or b"\n." in message else message
    code, reply = yield data + (b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n")
    if code != 250:
        _give_up(smtp, code)
        raise smtplib.SMTPDataError(code, reply)


def _command_bytes(smtp: smtplib.SMTP, command: str) -> bytes:
    """A command as putcmd() writes it, refusing line ends in it as putcmd() does."""
    if "\r" in command or "\n" in command:
        raise ValueError(f"command and arguments contain prohibited newline characters: {command!r}")
    return f"{command}\r\n".encode(smtp.command_encoding)


class _Replies:
    """smtplib's getreply() reading the connection's socket itself: the same codes, texts and
    errors, without the buffered file object and its Python-level readinto() between the
    socket and each line (a third of the dialogue's CPU). Only for replies to commands
    written after smtplib's own last read (the greeting, EHLO): nothing is pipelined, so the
    server sends nothing more until the next command, and neither reader holds bytes the
    other one needs. Bytes after a complete reply (which a server would send only out of
    turn) are kept for the next read."""

    _LIMIT = smtplib._MAXLINE  # noqa: SLF001 - the line limit smtplib enforces

    def __init__(self, sock) -> None:
        self.sock = sock
        self._pending = b""

    @property
    def buffered(self) -> bool:
        return bool(self._pending)

    def read(self, smtp: smtplib.SMTP) -> tuple[int, bytes]:
        if smtp.debuglevel or smtp.sock is not self.sock:
            return smtp.getreply()  # its debug output, or its own error for a closed connection
        data, texts, code = self._pending, [], -1
        while True:
            end = data.find(b"\n") + 1
            if not end:
                if len(data) > self._LIMIT:
                    smtp.close()
                    raise smtplib.SMTPResponseException(500, "Line too long.")
                try:
                    more = self.sock.recv(8192)
                except OSError as error:
                    smtp.close()
                    raise smtplib.SMTPServerDisconnected(f"Connection unexpectedly closed: {error}") from None
                if more:
                    data += more
                    continue
                if not data:
                    smtp.close()
                    raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
                end = len(data)  # the last line, without its end, as readline() returns it
            line, data = data[:end], data[end:]
            if len(line) > self._LIMIT:
                smtp.close()
                raise smtplib.SMTPResponseException(500, "Line too long.")
            texts.append(line[4:].strip(b" \t\r\n"))
            try:
                code = int(line[:3])
            except ValueError:
                code = -1
                break
            if line[3:4] != b"-":
                break
        self._pending = data
        return code, b"\n".join(texts)


def _write(smtp: smtplib.SMTP, data: bytes) -> None:
    """smtp.send(data), without send()'s checks for a debugging level and a closed connection
    but for a debugging SMTP object."""
    if smtp.debuglevel or smtp.sock is None:
        smtp.send(data)
        return
    try:
        smtp.sock.sendall(data)
    except OSError:
        smtp.close()
        raise smtplib.SMTPServerDisconnected("Server not connected") from None


def _give_up(smtp: smtplib.SMTP, code: int) -> None:
    """After a refusal: as sendmail(), a server closing down (421) is left and any other
    refusal is reset; a connection whose RSET is not accepted is left too, so that it takes no
    more emails in a state nobody knows."""
    if code == 421:
        smtp.close()
        return
    try:
        reset, _ = smtp.rset()
    except smtplib.SMTPServerDisconnected:
        return  # closed already
    if reset != 250:
        smtp.close()


_MESSAGE_STEP = 3


class OutcomeUnknown(smtplib.SMTPException):
    """The message was written, and the connection was lost (closed, or no answer in time)
    before the server said whether it took it: it may have been delivered. Not to be sent
    again, lest it arrive twice."""
# A server that defers this many emails in a row (4xx: throttled, over a quota) is given a rest:
# the chunk's other emails are not tried now but failed, to be tried again later.
_DEFERRALS_IN_A_ROW = 5


def _reply_codes(error: Exception) -> list[int]:
    """The SMTP reply codes an error of smtplib carries (none for a lost connection)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return [code for code, _ in error.recipients.values()]
    return [error.smtp_code] if isinstance(error, smtplib.SMTPResponseException) else []


def _deferral(error: Exception) -> bool:
    """A refusal for now (4xx), not for good: what a throttling server answers."""
    return any(400 <= code < 500 for code in _reply_codes(error))


@dataclass(eq=False)
class _Channel:
    """One SMTP connection of a Sender, and the email in flight on it."""

    backend: SMTPBackend
    replies: _Replies | None = None
    item: object = None
    transaction: Generator[bytes, tuple[int, bytes], None] | None = None
    command: bytes = b""  # what to write next
    step: int = 0  # of the email's commands: MAIL, RCPT, DATA, then the message (_MESSAGE_STEP)
    entry: tuple | None = None  # the email in flight as composed (see _Flight.ready)
    deadline: float = math.inf  # when the reply to the command written last is overdue (monotonic)

    @property
    def smtp(self) -> smtplib.SMTP:
        return self.backend.connection

    @property
    def alive(self) -> bool:
        return self.backend.connection is not None and self.backend.connection.sock is not None

    def read(self) -> tuple[int, bytes]:
        # One reader per socket: a connection opened again is read afresh.
        if self.replies is None or self.replies.sock is not self.smtp.sock:
            self.replies = _Replies(self.smtp.sock)
        return self.replies.read(self.smtp)


class Sender:
    """Sends OutgoingEmails through the configured mail backend: as bytes straight to smtplib
    when it is Django's SMTP backend (what its send_messages() would do, without building an
    email.message per recipient), else through the backend's send_messages() with an
    EmailMultiAlternatives (files in development, the test outbox).

    Over SMTP, send_all() keeps one email in flight on each of up to `connections`
    connections to the server, reads their replies as they arrive and answers each at once with that
    connection's next command; the next email is composed while the server takes in a
    message. One connection waits on the server for each of the four steps of every email
    (MAIL, RCPT, DATA, the message) and leaves the server idle while it works on the reply;
    several keep the server busy, which is what makes the server's speed the limit (and,
    against a relay across a network, what keeps its round trips from setting the rate).
    Nothing is pipelined within a connection: the server may not offer PIPELINING.

    A refused or failed email is reported and the others go on; a connection the server
    closes (or answers 421, or refuses to greet, or leaves without a reply for the socket's
    timeout) is left, and its emails go out on the others: the one in flight too (once) when
    its message had not been written, else it fails (the server may have taken it).
    A connection other than the first that cannot be opened (connect, greeting, EHLO,
    STARTTLS, AUTH) is logged and done without (the server may limit connections per client);
    the first one failing to open raises (OSError) from open(), before any email is handed
    over. A connection passed in is the only one used (`connections` is then ignored).

    With `keep_seconds`, close() keeps the connections opened here that are still open and
    idle, and the next Sender of the process (with keep_seconds, to the same server) takes
    them up within that many seconds instead of connecting again (a timer closes them after
    that); those of a send_all() that an error cut short are closed, as a transaction may be
    open on them.
    """

    def __init__(self, connection=None, *, connections: int = 1, keep_seconds: float = 0) -> None:
        self.backend = connection or get_connection()
        self.connections = max(1, connections) if connection is None else 1
        # Only connections made here are kept: one passed in is its caller's to close.
        self.keep_seconds = keep_seconds if connection is None and isinstance(self.backend, SMTPBackend) else 0
        self._opened_here = self._in_flight = False
        self._extra: list[SMTPBackend] = []

    def __enter__(self) -> Sender:
        self.open()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def open(self) -> None:
        """Open the first connection and greet the server (EHLO); raises (OSError) when it
        cannot, leaving nothing open. With `keep_seconds`, connections an earlier Sender of
        this process kept open to the same server are taken up first."""
        if self.keep_seconds and not self._opened_here:
            kept = _kept.take(self.backend, self.connections, self.keep_seconds)
            if kept:
                self.backend, self._extra, self._opened_here = kept[0], kept[1:], True
                return
        # True when open() made a new connection, None when it was open already: close only ours.
        self._opened_here = bool(_open(self.backend)) or self._opened_here

    def close(self) -> None:
        """Close the connections opened here; with `keep_seconds`, those still open and idle
        are kept for the next Sender of this process instead (up to `connections` of them,
        for at most that many seconds)."""
        ours = [*([self.backend] if self._opened_here else []), *self._extra]
        closing = ours
        if self.keep_seconds and not self._in_flight:  # a flight cut short may have left a transaction open
            closing = _kept.put(ours, self.connections, self.keep_seconds)
        for backend in closing:
            _close(backend)
        if self._opened_here and self.backend not in closing:
            self.backend = get_connection()  # that one is kept for the next Sender now, not this one's
        self._extra, self._opened_here, self._in_flight = [], False, False

    def send(self, email: OutgoingEmail) -> None:
        """Send one email; raises smtplib's (or the backend's) error when it is refused."""
        errors: list[Exception] = []
        self.send_all([email], compose=lambda outgoing: outgoing, sent=lambda _: None, failed=lambda _, error: errors.append(error))
        if errors:
            raise errors[0]

    def send_all(
        self,
        items: Sequence[T],
        *,
        compose: Callable[[T], OutgoingEmail],
        sent: Callable[[T], None],
        failed: Callable[[T, Exception], None],
    ) -> None:
        """Compose each item's email and send it; sent(item) once the server accepted it,
        failed(item, error) when composing or sending it failed. Every item gets one of the
        two, exactly once. The first connection must be open (open(), or `with`)."""
        if not isinstance(self.backend, SMTPBackend):
            for item in items:
                try:
                    self.backend.send_messages([compose(item).django_message()])
                except Exception as error:  # noqa: BLE001 - any failure: reported, the others go on
                    failed(item, error)
                else:
                    sent(item)
            return
        self._in_flight = True
        _Flight(self._channels(len(items)), items, compose, sent, failed).run()
        self._in_flight = False

    def _channels(self, wanted: int) -> list[_Channel]:
        while len(self._extra) + 1 < min(self.connections, wanted):
            backend = get_connection()
            try:
                _open(backend)
            except OSError as error:  # refused at connect, greeting, EHLO, STARTTLS or AUTH
                logger.warning("sending over %d SMTP connection(s), could not open another: %s", len(self._extra) + 1, error)
                break
            self._extra.append(backend)
        return [_Channel(backend) for backend in [self.backend, *self._extra]]


def _open(backend) -> bool | None:
    """backend.open(), then EHLO over SMTP (which Django's open() sends only for STARTTLS), so
    that a server refusing this connection says so now, not to its first email. On failure
    whatever was opened is closed (Django keeps a connection that failed after connecting
    until the backend's next open or close) and the error raised."""
    try:
        opened = backend.open()
        if isinstance(backend, SMTPBackend) and backend.connection is not None:
            backend.connection.ehlo_or_helo_if_needed()
    except BaseException:
        _close(backend)
        raise
    return opened


def _close(backend) -> None:
    try:
        backend.close()
    except Exception:  # noqa: BLE001 - every email was accepted or refused already
        logger.warning("could not close the mail connection", exc_info=True)


def _server(backend: SMTPBackend) -> tuple:
    """What a kept connection must have been opened with to be used again."""
    return (
        type(backend), backend.host, backend.port, backend.username, backend.password, backend.use_tls, backend.use_ssl,
        backend.timeout, backend.ssl_keyfile, backend.ssl_certfile,
    )


def _idle_and_open(backend: SMTPBackend) -> bool:
    """The connection is open and the server has said nothing since its last reply: nothing
    to read (a server closing an idle connection makes it readable, with the end of the
    stream or a 421 first)."""
    smtp = backend.connection
    if smtp is None or smtp.sock is None:
        return False
    pending = getattr(smtp.sock, "pending", None)  # bytes TLS has decrypted already
    try:
        poller = select.poll()
        poller.register(smtp.sock, select.POLLIN | select.POLLPRI)
        return not poller.poll(0) and not (pending and pending())
    except (OSError, ValueError):
        return False


class _KeptConnections:
    """SMTP connections a process keeps open between Senders (between the chunks of a burst
    of onboarding emails), so that each chunk does not connect, greet, negotiate TLS and log in
    again. Kept for one server at a time, for at most the Sender's keep_seconds, then closed
    (QUIT) by a timer, so that idle sessions do not count against the server's per-client
    limits for longer; one the server has closed, or spoken on out of turn, is closed rather
    than used. A forked child forgets its parent's (the sockets are the parent's). Safe for a
    worker's threads; the goodbyes are said outside the lock."""

    def __init__(self) -> None:
        self._forget()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._connections: list[tuple[SMTPBackend, float]] = []  # with when each went idle
        self._keep_seconds = 0.0
        self._timer: threading.Timer | None = None

    def take(self, like: SMTPBackend, most: int, keep_seconds: float) -> list[SMTPBackend]:
        """Up to `most` kept connections to the server `like` is for; the others are closed."""
        now, server, taken, stale = time_now(), _server(like), [], []
        with self._lock:
            kept, self._connections = self._connections, []
            for backend, since in kept:
                fresh = _server(backend) == server and now - since <= keep_seconds
                (taken if fresh and len(taken) < most and _idle_and_open(backend) else stale).append(backend)
        for backend in stale:
            _close(backend)
        return taken

    def put(self, backends: list[SMTPBackend], most: int, keep_seconds: float) -> list[SMTPBackend]:
        """Keep those of `backends` still open (up to `most`, and only for their server) for
        `keep_seconds`; returns the others, for the caller to close."""
        if not backends:  # a Sender closed twice: the others' kept connections stay
            return []
        now, rest, server = time_now(), [], _server(backends[0])
        with self._lock:
            rest.extend(backend for backend, _ in self._connections if _server(backend) != server)
            kept = [entry for entry in self._connections if _server(entry[0]) == server]
            for backend in backends:
                if len(kept) < most and _idle_and_open(backend):
                    kept.append((backend, now))
                else:
                    rest.append(backend)
            self._connections, self._keep_seconds = kept, keep_seconds
            if kept and self._timer is None:
                self._expire_in(keep_seconds)
        return rest

    def _expire_in(self, seconds: float) -> None:
        """Run _expire() that much later (with the lock held)."""
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        """The timer: close the connections idle for longer than keep_seconds; come back for
        the others when they will be."""
        with self._lock:
            self._timer = None
            now = time_now()
            expired = [backend for backend, since in self._connections if now - since >= self._keep_seconds]
            self._connections = [entry for entry in self._connections if now - entry[1] < self._keep_seconds]
            if self._connections:
                soonest = min(since for _, since in self._connections) + self._keep_seconds - now
                self._expire_in(max(soonest, 0.01))
        for backend in expired:
            _close(backend)

    def close_all(self) -> None:
        with self._lock:
            kept, self._connections = self._connections, []
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        for backend, _ in kept:
            _close(backend)


_kept = _KeptConnections()


def kept_connections_close() -> None:
    """Close (QUIT) the SMTP connections this process keeps open between Senders."""
    _kept.close_all()


class _Flight(Generic[T]):
    """One send_all() over SMTP: the items' emails, one in flight on each live channel."""

    def __init__(self, channels: list[_Channel], items: Sequence[T], compose, sent, failed) -> None:
        self.channels, self.items = channels, iter(items)
        self.compose, self.sent, self.failed = compose, sent, failed
        # Composed emails: (item, sender, recipient, message, handed on by a lost connection).
        self.ready: deque[tuple[T, str, str, bytes, bool]] = deque()
        self.deferrals = 0  # emails deferred by the server in a row
        self.resting: smtplib.SMTPException | None = None  # why no more emails are started

    def run(self) -> None:
        busy: list[_Channel] = []
        idle: list[_Channel] = []  # open, with no email: for one a lost connection hands on
        for channel in self.channels:
            if self._begin(channel) and self._write(channel):
                busy.append(channel)
            elif channel.alive:
                idle.append(channel)
        with selectors.DefaultSelector() as selector:
            sockets = {channel: channel.smtp.sock for channel in busy}  # as registered, for unregistering
            for channel, sock in sockets.items():
                selector.register(sock, selectors.EVENT_READ, channel)
            while busy:
                # Each reply is answered at once with that connection's next command, so the
                # server has the other connections' commands to work on while this one is
                # handled; replies are taken as they arrive, so that a slow answer on one
                # connection (a relay's check, a long message) holds up no other.
                for channel, overdue in self._answered(selector, busy):
                    if not (self._advance(channel, overdue) and self._write(channel)):
                        selector.unregister(sockets.pop(channel))
                        busy.remove(channel)
                        if channel.alive:
                            idle.append(channel)
                while self.ready and idle:  # an email handed on by a lost connection
                    channel = idle.pop()
                    if self._begin(channel) and self._write(channel):
                        sockets[channel] = channel.smtp.sock
                        selector.register(sockets[channel], selectors.EVENT_READ, channel)
                        busy.append(channel)
                    elif channel.alive:
                        idle.append(channel)
                        break
            for channel in self.channels:
                if channel.alive and channel.replies is not None and channel.replies.buffered:
                    channel.smtp.close()  # the server said more than it was asked: not for another email
        # Every connection was lost, or the server is throttling, with emails left: they fail
        # now, to be tried again later.
        lost = self.resting or smtplib.SMTPServerDisconnected("every SMTP connection was lost before this email could be sent")
        for item, *_ in self.ready:
            self.failed(item, lost)
        for item in self.items:
            self.failed(item, lost)

    @staticmethod
    def _answered(
        selector: selectors.BaseSelector, busy: list[_Channel]
    ) -> list[tuple[_Channel, smtplib.SMTPServerDisconnected | None]]:
        """The channels whose reply has come (or was read already, which only a server
        answering out of turn leaves), and those whose reply is overdue (the connection's
        timeout after its command), closed, with the error a blocking read would have raised."""
        buffered = [(channel, None) for channel in busy if channel.replies is not None and channel.replies.buffered]
        if buffered:
            return buffered
        first = min(channel.deadline for channel in busy)
        answered = [key.data for key, _ in selector.select(None if first == math.inf else max(first - monotonic(), 0))]
        now, overdue = monotonic(), []
        for channel in busy:
            if channel.deadline <= now and channel not in answered:
                channel.smtp.close()
                overdue.append((channel, smtplib.SMTPServerDisconnected("Connection unexpectedly closed: timed out")))
        return [(channel, None) for channel in answered] + overdue

    def _advance(self, channel: _Channel, error: Exception | None = None) -> bool:
        """Read the reply to the channel's command and find its next one (the next step of
        the same email, or the first of the next email); False when it has none."""
        try:
            if error is not None:
                raise error
            channel.command = channel.transaction.send(channel.read())
        except StopIteration:
            self.deferrals = 0
            self.sent(channel.item)
        except Exception as error:  # noqa: BLE001 - refused or lost: this email fails, the others go on
            self._failed(channel, error)
        else:
            channel.step += 1
            return True
        return self._begin(channel)

    def _failed(self, channel: _Channel, error: Exception, *, written: bool = True) -> None:
        """`written`: the channel's current command reached the server whole."""
        if written and channel.step == _MESSAGE_STEP and isinstance(error, smtplib.SMTPServerDisconnected):
            error = OutcomeUnknown(
                "the connection was lost after the message was written, before the server's answer; "
                f"it may have been delivered ({error})"
            )
        lost = isinstance(error, smtplib.SMTPServerDisconnected) or 421 in _reply_codes(error)
        if lost and not channel.alive and channel.step < _MESSAGE_STEP and not channel.entry[4]:
            # The connection was lost (closed, 421, timed out) before the message was written:
            # the email was not sent, and another connection takes it, once (an email that
            # loses its connection again, a recipient the server always times out on, fails
            # then rather than take every connection with it). A refusal is the email's own.
            logger.warning("leaving an SMTP connection, its email goes on another: %s", error)
            self.ready.appendleft((*channel.entry[:4], True))
            return
        self.failed(channel.item, error)
        self.deferrals = self.deferrals + 1 if _deferral(error) else 0
        if self.deferrals >= _DEFERRALS_IN_A_ROW and self.resting is None:
            logger.warning("the SMTP server deferred %d emails in a row (%s): the others are tried again later", self.deferrals, error)
            self.resting = smtplib.SMTPException(
                f"not tried: the SMTP server deferred {self.deferrals} emails in a row, the last with {error}"
            )

    def _write(self, channel: _Channel) -> bool:
        try:
            _write(channel.smtp, channel.command)
        except Exception as error:  # noqa: BLE001 - the connection is closed: this email goes on another or fails
            self._failed(channel, error, written=False)
            return False
        timeout = channel.smtp.sock.gettimeout()
        channel.deadline = math.inf if timeout is None else monotonic() + timeout
        if channel.step == _MESSAGE_STEP and not self.ready:
            self._compose_next()  # the next email, while the server takes in this one
        return True

    def _compose_next(self) -> bool:
        """Compose one more email into `ready`; False when no item is left."""
        for item in self.items:
            try:
                email = self.compose(item)
                self.ready.append((item, envelope_address(email.from_email), envelope_address(email.to), mime_bytes(email), False))
            except Exception as error:  # noqa: BLE001 - any failure: reported, the others go on
                self.failed(item, error)
                continue
            return True
        return False

    def _begin(self, channel: _Channel) -> bool:
        """Start the next email on this channel; False when none is left or the channel is lost."""
        while channel.alive and self.resting is None and (self.ready or self._compose_next()):
            entry = self.ready.popleft()
            item, sender, recipient, message, _ = entry
            channel.item, channel.entry, channel.step = item, entry, 0
            channel.transaction = _transaction(channel.smtp, sender, recipient, message)
            try:
                channel.command = next(channel.transaction)
            except (smtplib.SMTPHeloError, smtplib.SMTPServerDisconnected) as error:
                # The connection is no good (its greeting refused, or gone): nothing of this
                # email was written, another connection takes it.
                logger.warning("leaving an SMTP connection: %s", error)
                channel.smtp.close()
                self.ready.appendleft(entry)
                return False
            except Exception as error:  # noqa: BLE001 - a newline in an address: this one fails
                self.failed(item, error)
                continue
            return True
        return False
