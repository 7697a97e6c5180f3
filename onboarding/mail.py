"""Onboarding emails as bytes, and sending them over one connection of the mail backend.

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
import random
import re
import smtplib
import sys
from dataclasses import dataclass, field
from email import quoprimime
from email.policy import compat32
from email.utils import formatdate, make_msgid
from functools import lru_cache
from time import time as time_now

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

_POLICY = compat32.clone(linesep="\r\n")  # what Django's as_bytes(linesep="\r\n") folds with
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
_PLAIN_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]{{1,63}}(?:\.[A-Za-z0-9-]{{1,63}})*\Z")
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


def _plain(name: str, value: str) -> bool:
    return len(name) + 2 + len(value) <= _PLAIN_LINE and _PLAIN_VALUE.match(value) is not None


def _header(name: str, value: str) -> bytes:
    """One header line as Django's message writes it: forbid_multi_line_headers() (which
    refuses newlines and encodes non-ASCII), then the generator's folding."""
    if _plain(name, value):
        return f"{name}: {value}\r\n".encode("ascii")
    if len(name) + 2 + len(value) > _FOLD_LINE and _ONE_WORD.match(value):
        return f"{name}: \r\n {value}\r\n".encode("ascii")
    return _POLICY.fold_binary(name, forbid_multi_line_headers(name, value, settings.DEFAULT_CHARSET)[1])


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
    if settings.DEFAULT_CHARSET.lower() != "utf-8" or not email.text or not _PLAIN_ADDRESS.match(email.to):
        return _django_bytes(email, boundary)
    text, html = _part("plain", email.text), _part("html", email.html)
    boundary = boundary or _boundary(text, html)
    names = {name.lower() for name in email.headers}
    lines = [
        f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\nMIME-Version: 1.0\r\n'.encode("ascii"),
        _subject(email.subject),
        _header("From", email.headers.get("From", email.from_email)),
        _header("To", email.to),
    ]
    if "date" not in names:
        lines.append(_date_header(int(time_now()), settings.EMAIL_USE_LOCALTIME))
    if "message-id" not in names:
        lines.append(_header("Message-ID", make_msgid(domain=DNS_NAME)))
    lines.extend(_header(name, value) for name, value in email.headers.items() if name.lower() not in _SKIPPED_EXTRA)
    separator = f"\r\n--{boundary}\r\n".encode("ascii")
    lines.append(b"\r\n--" + boundary.encode("ascii") + b"\r\n" + text + separator + html)
    lines.append(f"\r\n--{boundary}--\r\n".encode("ascii"))
    return b"".join(lines)


@lru_cache(maxsize=2)
def _date_header(second: int, localtime: bool) -> bytes:
    # Every email of the same second has the same Date (formatdate costs as much as a header).
    return _header("Date", formatdate(second, localtime=localtime))


def _subject(subject: str) -> bytes:
    # Django encodes every subject with Header() (ASCII ones too), then the generator folds it.
    if _plain("Subject", subject):
        return f"Subject: {subject}\r\n".encode("ascii")
    return _POLICY.fold_binary("Subject", forbid_multi_line_headers("Subject", subject, settings.DEFAULT_CHARSET)[1])


def _django_bytes(email: OutgoingEmail, boundary: str | None) -> bytes:
    message = email.django_message().message()
    if boundary is not None:
        message.set_boundary(boundary)
    return message.as_bytes(linesep="\r\n")


def envelope_address(address: str) -> str:
    """The SMTP envelope's address (sender or recipient), as Django's SMTP backend writes it
    (sanitize_address), which leaves a plain address as it is."""
    return address if _PLAIN_ADDRESS.match(address) else _sanitized_address(address)


@lru_cache(maxsize=64)
def _sanitized_address(address: str) -> str:
    # The sender ("Flywheel <onboarding@...>") is the same for every email of every chunk.
    return sanitize_address(address, settings.DEFAULT_CHARSET)


def _angle_address(address: str) -> str:
    """smtplib.quoteaddr() of an envelope address: `<address>` for a plain one (what
    email.utils.parseaddr, which quoteaddr calls, finds in it), else quoteaddr's own answer."""
    return f"<{address}>" if _PLAIN_ADDRESS.match(address) else _quoted_address(address)


@lru_cache(maxsize=64)
def _quoted_address(address: str) -> str:
    return smtplib.quoteaddr(address)


_LEADING_DOT = re.compile(rb"(?m)^\.")


def _sendmail_start(smtp: smtplib.SMTP, replies: _Replies, sender: str, recipient: str, message: bytes) -> None:
    """smtplib's SMTP.sendmail(sender, [recipient], message) up to the message's final dot,
    without reading the server's answer to it (_sendmail_finish does): the same commands and
    bytes on the wire, the same replies accepted and the same errors raised, with less Python
    around each round trip: each envelope address is put in angle brackets without parsing it
    again (quoteaddr's parseaddr cost as much as the rest of the dialogue), each command is
    written to the socket at once, and each reply is read by `replies`."""
    smtp.ehlo_or_helo_if_needed()
    size = f" size={len(message)}" if smtp.does_esmtp and smtp.has_extn("size") else ""
    code, reply = _command(smtp, replies, f"mail from:{_angle_address(sender)}{size}")
    if code != 250:
        _give_up(smtp, code)
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    code, reply = _command(smtp, replies, f"rcpt to:{_angle_address(recipient)}")
    if code not in (250, 251):
        _give_up(smtp, code)
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
    code, reply = _command(smtp, replies, "data")
    if code != 354:
        raise smtplib.SMTPDataError(code, reply)
    # Dot-stuffing, only when a line starts with a dot (the expression tries every byte).
    data = _LEADING_DOT.sub(b"..", message) if message.startswith(b".") or b"\n." in message else message
    _write(smtp, data + (b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n"))


def _sendmail_finish(smtp: smtplib.SMTP, replies: _Replies) -> None:
    """The server's answer to the message _sendmail_start() wrote: accepted, or raise."""
    code, reply = replies.read(smtp)
    if code != 250:
        _give_up(smtp, code)
        raise smtplib.SMTPDataError(code, reply)


def _command(smtp: smtplib.SMTP, replies: _Replies, command: str) -> tuple[int, bytes]:
    """Send a command and read its reply, as putcmd() and getreply() do."""
    if "\r" in command or "\n" in command:  # as putcmd() refuses them
        raise ValueError(f"command and arguments contain prohibited newline characters: {command!r}")
    _write(smtp, f"{command}\r\n".encode(smtp.command_encoding))
    return replies.read(smtp)


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
    # As sendmail(): a server closing down (421) is left, any other refusal is reset.
    if code == 421:
        smtp.close()
        return
    try:
        smtp.rset()
    except smtplib.SMTPServerDisconnected:
        pass  # the next command says so


class Sender:
    """Sends OutgoingEmails over one connection of the configured mail backend: as bytes
    straight to smtplib when it is Django's SMTP backend (what its send_messages() would do,
    without building an email.message per recipient), else through the backend's
    send_messages() with an EmailMultiAlternatives (files in development, the test outbox).

    A failed send raises (smtplib's or the backend's error); the connection stays usable for
    the next email when the server only refused that one.

    send() is start() then finish(). Between the two, the caller can compose the next email
    while the server takes in this one: over SMTP, start() writes the message up to its final
    dot and finish() reads the server's answer (no command is sent before it: this is not
    pipelining, which the server may not offer), so the time the server spends on the message
    is not time the worker waits.
    """

    def __init__(self, connection=None) -> None:
        self.backend = connection or get_connection()
        self._opened_here = False
        self._replies: _Replies | None = None

    def __enter__(self) -> Sender:
        # True when open() made a new connection, None when it was open already: close only ours.
        self._opened_here = bool(self.backend.open())
        return self

    def __exit__(self, *exc_info) -> None:
        if not self._opened_here:
            return
        try:
            self.backend.close()
        except Exception:  # noqa: BLE001 - every email was accepted or refused already
            logger.warning("could not close the mail connection", exc_info=True)

    def send(self, email: OutgoingEmail) -> None:
        self.start(email)
        self.finish()

    def start(self, email: OutgoingEmail) -> None:
        """Hand the email over; raises when it is refused before its end (finish() tells the rest)."""
        if isinstance(self.backend, SMTPBackend):
            smtp = self.backend.connection
            _sendmail_start(
                smtp, self._replies_of(smtp), envelope_address(email.from_email), envelope_address(email.to), mime_bytes(email)
            )
            return
        self.backend.send_messages([email.django_message()])

    def finish(self) -> None:
        """Wait for the server to accept the email start() handed over; raises if it refuses it."""
        if isinstance(self.backend, SMTPBackend):
            smtp = self.backend.connection
            _sendmail_finish(smtp, self._replies_of(smtp))

    def _replies_of(self, smtp: smtplib.SMTP) -> _Replies:
        # One reader per socket: a connection opened again is read afresh.
        if self._replies is None or self._replies.sock is not smtp.sock:
            self._replies = _Replies(smtp.sock)
        return self._replies
