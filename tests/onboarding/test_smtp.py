"""Onboarding email through a real SMTP server on loopback (aiosmtpd, started by the test)."""

from __future__ import annotations

import email
import email.policy
import re
import smtplib
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from aiosmtpd.controller import Controller
from django.test import Client
from django.utils import timezone

from onboarding import mail, selectors
from onboarding.models import Send, Suppression
from onboarding.services.enrolments import enrolment_create
from onboarding.services.messages import Links, email_of
from onboarding.services.sending import sends_deliver
from onboarding.services.tick import onboarding_tick

from ..conftest import organization_on
from .factories import everyone_enrolled_in
from .scripted_smtp import CLOSE, ScriptedServer


class Inbox:
    def __init__(self) -> None:
        self.messages: list = []
        self.raw: list[bytes] = []
        self.peers: list = []  # the client's address of each message's connection

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content, policy=email.policy.default)))
        self.raw.append(envelope.content)
        self.peers.append(session.peer)
        return "250 OK"


def _free_port() -> int:
    """A port of 127.0.0.1 nothing listens on (once the probe is closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _smtp_to(settings, port: int) -> None:
    """Django's SMTP backend, to 127.0.0.1:port, plain and without a login."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 5
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""


def _serve(handler) -> tuple[Controller, int]:
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, port


def _admins_enrolled(count: int) -> list:
    admins = []
    for _ in range(count):
        organization, admin = organization_on("standard")
        enrolment_create(user=admin, organization=organization)
        admins.append(admin)
    return admins


def _tick_and_deliver_through(handler, settings):
    """Run a tick and deliver its sends through an SMTP server with this handler; the tick's
    report and the outcomes."""
    controller, settings.EMAIL_PORT = _serve(handler)
    try:
        report = onboarding_tick()
        return report, sends_deliver(send_ids=report.send_ids)
    finally:
        controller.stop()


@pytest.fixture
def smtp_server(settings):
    inbox = Inbox()
    controller, port = _serve(inbox)
    _smtp_to(settings, port)
    yield inbox
    controller.stop()


def _first_step_sent_to(first_name: str, *, sequence_key: str, settings, smtp_server):
    """Enrol one admin named `first_name` in a fresh 14-day sequence, run a tick, deliver its
    send over SMTP; return the admin, their organization, the tick's report and the message."""
    everyone_enrolled_in(sequence_key, settings)
    organization, admin = organization_on("standard")
    admin.first_name = first_name
    admin.save(update_fields=["first_name"])
    enrolment_create(user=admin, organization=organization)

    report = onboarding_tick()
    assert sends_deliver(send_ids=report.send_ids) == {"sent": 1}
    [(recipients, message)] = smtp_server.messages
    assert recipients == [admin.email]
    return admin, organization, report, message


@pytest.mark.django_db
def test_an_onboarding_email_arrives_with_its_headers_and_both_bodies(catalog, settings, smtp_server):
    admin, organization, report, message = _first_step_sent_to(
        "Grace", sequence_key="smtp-welcome", settings=settings, smtp_server=smtp_server
    )
    assert message["Subject"] == "Step 0 for Grace"
    assert message["To"] == admin.email
    unsubscribe = re.fullmatch(r"<(http://[^>]+/email/unsubscribe/[^/>]+/)>", str(message["List-Unsubscribe"]).strip())
    assert unsubscribe, message["List-Unsubscribe"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    send = Send.objects.get(pk=report.send_ids[0])
    assert message["Message-ID"] == f"<{send.public_id.hex}@127.0.0.1>"  # fixed per send (SITE_URL's host)
    assert message["X-Flywheel-Sequence"] == "smtp-welcome"
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert f"Hello Grace of {organization.name}." in text
    assert f"Unsubscribe: {unsubscribe.group(1)}" in text
    assert "<p>Hello Grace</p>" in html
    assert unsubscribe.group(1) in html
    # Our own link is tracked through the signed redirect; a foreign one is left alone.
    assert re.search(r'href="http://[^"]+/email/click/[^"]+/">Open Flywheel', html)
    assert 'href="https://elsewhere.example/docs"' in html
    assert re.search(r'<img src="http://[^"]+/email/open/[^"]+\.gif"', html)

    # The unsubscribe link from the headers works when a mail client POSTs to it (RFC 8058).
    path = "/" + unsubscribe.group(1).split("://", 1)[1].split("/", 1)[1]
    response = Client(enforce_csrf_checks=True).post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert Suppression.objects.filter(email=admin.email, source="one-click").exists()


def _boundary(message: bytes) -> bytes:
    return re.search(rb'boundary="([^"]+)"', message).group(1)


@pytest.mark.django_db
def test_a_chunk_on_the_wire_is_byte_for_byte_what_django_s_backend_would_send(catalog, settings, smtp_server):
    sequence = everyone_enrolled_in("smtp-chunk", settings)
    sequence.steps.filter(position=0).update(text_body="Your {{ product }} {{ edition }} trial ends {{ trial_ends_at|date:'j F' }}.")
    recipients = []
    with time_machine.travel(datetime(2026, 3, 2, 10, 0, tzinfo=UTC), tick=False):
        for first_name in ("Grace", "Zoë", ""):  # plain, non-ASCII, none (the address's local part)
            organization, admin = organization_on("standard")
            admin.first_name = first_name
            admin.save(update_fields=["first_name"])
            enrolment_create(user=admin, organization=organization)
            recipients.append(admin.email)

        report = onboarding_tick()
        assert sends_deliver(send_ids=report.send_ids) == {"sent": 3}
        # The old way: each send's email as an EmailMultiAlternatives, flattened by Django.
        sends = Send.objects.select_related("step", "enrolment__user", "enrolment__organization", "enrolment__sequence")
        trials = selectors.organization_trials(organization_ids={send.enrolment.organization_id for send in sends})
        expected = {
            send.to_email: email_of(send, links=Links.resolve(), trials=trials).django_message().message().as_bytes(linesep="\r\n")
            for send in sends.filter(pk__in=report.send_ids)
        }

    assert sorted(to for to, _ in smtp_server.messages) == sorted([address] for address in recipients)
    assert {message["Subject"] for _, message in smtp_server.messages} >= {"Step 0 for Grace", "Step 0 for Zoë"}
    for (to, _), raw in zip(smtp_server.messages, smtp_server.raw, strict=True):
        django = expected[to[0]]
        assert raw == django.replace(_boundary(django), _boundary(raw))
    # Each recipient's trial, read for the whole chunk in one query.
    for _, message in smtp_server.messages:
        assert "Your Tracker Standard trial ends 16 March." in message.get_body(preferencelist=("plain",)).get_content()


@pytest.mark.django_db
def test_recipient_data_is_escaped_in_the_html_and_only_there(catalog, settings, smtp_server):
    _, _, _, message = _first_step_sent_to(
        '<b onclick="x()">Bob</b> & Co', sequence_key="smtp-escape", settings=settings, smtp_server=smtp_server
    )
    html = message.get_body(preferencelist=("html",)).get_content()
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "<p>Hello &lt;b onclick=&quot;x()&quot;&gt;Bob&lt;/b&gt; &amp; Co</p>" in html
    assert "<b onclick" not in html
    assert 'Hello <b onclick="x()">Bob</b> & Co of' in text
    assert message["Subject"] == 'Step 0 for <b onclick="x()">Bob</b> & Co'


class RefusingInbox(Inbox):
    """Refuses one recipient at RCPT and another's message at the end of DATA."""

    def __init__(self, refused_recipient: str, refused_message_to: str) -> None:
        super().__init__()
        self.refused_recipient, self.refused_message_to = refused_recipient, refused_message_to

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's hook name
        if address == self.refused_recipient:
            return "550 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        if envelope.rcpt_tos == [self.refused_message_to]:
            return "554 message refused"
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.django_db
@pytest.mark.parametrize("connections", [1, 3])
def test_refusals_in_the_middle_of_a_chunk_fail_only_their_sends(catalog, settings, smtp_server, connections):
    settings.ONBOARDING_SMTP_CONNECTIONS = connections
    everyone_enrolled_in("smtp-refusals", settings)
    ordered = sorted(admin.email for admin in _admins_enrolled(5))  # any two will do
    refusing = RefusingInbox(refused_recipient=ordered[1], refused_message_to=ordered[3])
    report, outcomes = _tick_and_deliver_through(refusing, settings)
    assert outcomes == {"sent": 3, "failed": 2}

    assert sorted(to for [to], _ in refusing.messages) == sorted(set(ordered) - {ordered[1], ordered[3]})
    sends = {send.enrolment.user.email: send for send in Send.objects.filter(pk__in=report.send_ids).select_related("enrolment__user")}
    assert {email for email, send in sends.items() if send.status == Send.Status.PENDING} == {ordered[1], ordered[3]}
    assert "550" in sends[ordered[1]].last_error and "554" in sends[ordered[3]].last_error
    assert all(send.status == Send.Status.SENT for email, send in sends.items() if email not in (ordered[1], ordered[3]))


def test_replies_are_read_as_smtplib_reads_them():
    """The reply reader on the socket gives smtplib's getreply() answers: multi-line replies,
    replies that arrive in pieces, and a connection the server closes."""
    ours, server = socket.socketpair()
    smtp, theirs = smtplib.SMTP(), smtplib.SMTP()
    smtp.sock = ours
    replies = mail._Replies(ours)
    server.sendall(b"250-first\r\n250-second  \r\n250 last\r\n")
    assert replies.read(smtp) == (250, b"first\nsecond\nlast")
    server.sendall(b"35")
    server.sendall(b"4 go ahead\r\n")
    assert replies.read(smtp) == (354, b"go ahead")
    server.sendall(b"xyz broken\r\n")
    theirs_ours, theirs_server = socket.socketpair()
    theirs.sock = theirs_ours
    theirs_server.sendall(b"xyz broken\r\n")
    assert replies.read(smtp) == theirs.getreply() == (-1, b"broken")
    server.close()
    with pytest.raises(smtplib.SMTPServerDisconnected):
        replies.read(smtp)
    assert smtp.sock is None
    theirs.close()
    theirs_server.close()


def test_lines_that_start_with_a_dot_arrive_whole(smtp_server):
    with_dots = mail.OutgoingEmail(
        subject="Dots", text=".\n..two\n.three\nend\n", html="<p>x</p>\n.<br>\n", from_email="a@example.com", to="b@example.com"
    )
    without = mail.OutgoingEmail(subject="None", text="plain\n", html="<p>x</p>\n", from_email="a@example.com", to="b@example.com")
    with mail.Sender() as sender:
        for outgoing in (with_dots, without):
            sender.send(outgoing)
    expected = [mail.mime_bytes(outgoing, boundary="b") for outgoing in (with_dots, without)]
    received = [re.sub(rb'boundary="[^"]+"|--=+\d+==', b"B", raw) for raw in smtp_server.raw]
    assert [b"\r\n".join(line for line in raw.split(b"\r\n") if not line.startswith((b"Date:", b"Message-ID:"))) for raw in received] == [
        b"\r\n".join(line for line in re.sub(rb'boundary="b"|--b', b"B", raw).split(b"\r\n") if not line.startswith((b"Date:", b"Message-ID:")))
        for raw in expected
    ]


@pytest.mark.django_db
def test_a_chunk_goes_out_over_several_connections_each_email_once(catalog, settings, smtp_server, monkeypatch):
    settings.ONBOARDING_SMTP_CONNECTIONS = 3
    everyone_enrolled_in("smtp-connections", settings)
    admins = _admins_enrolled(8)

    report = onboarding_tick()
    assert sends_deliver(send_ids=report.send_ids) == {"sent": 8}

    assert sorted(to for [to], _ in smtp_server.messages) == sorted(admin.email for admin in admins)
    assert len(set(smtp_server.peers)) == 3  # one email in flight on each of three connections
    assert Send.objects.filter(pk__in=report.send_ids, status=Send.Status.SENT).count() == 8

    # A chunk smaller than the setting opens no more connections than it has emails.
    settings.ONBOARDING_SMTP_KEEP_SECONDS = 0
    mail.kept_connections_close()
    opened = []
    real = mail.get_connection
    monkeypatch.setattr(mail, "get_connection", lambda: opened.append(1) or real())
    settings.ONBOARDING_SMTP_CONNECTIONS = 10
    _admins_enrolled(2)
    report = onboarding_tick()
    assert sends_deliver(send_ids=report.send_ids) == {"sent": 2}
    assert len(opened) == 2


class ClosingInbox(Inbox):
    """Answers 421 (closing the connection) to the messages for some recipients."""

    def __init__(self, closing_for: set[str]) -> None:
        super().__init__()
        self.closing_for = closing_for

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        if set(envelope.rcpt_tos) & self.closing_for:
            return "421 shutting down"
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.django_db
def test_a_lost_connection_leaves_its_emails_to_the_others(catalog, settings, smtp_server):
    settings.ONBOARDING_SMTP_CONNECTIONS = 3
    everyone_enrolled_in("smtp-lost", settings)
    admins = _admins_enrolled(9)
    lost = sorted(admin.email for admin in admins)[4]
    closing = ClosingInbox({lost})
    report, outcomes = _tick_and_deliver_through(closing, settings)
    assert outcomes == {"sent": 8, "failed": 1}

    assert sorted(to for [to], _ in closing.messages) == sorted(admin.email for admin in admins if admin.email != lost)
    failed = Send.objects.get(pk__in=report.send_ids, status=Send.Status.PENDING)
    assert failed.to_email == lost and "421" in failed.last_error


@pytest.mark.django_db
def test_when_every_connection_is_lost_the_rest_fail_and_are_tried_again(catalog, settings, smtp_server):
    settings.ONBOARDING_SMTP_CONNECTIONS = 2
    everyone_enrolled_in("smtp-all-lost", settings)
    admins = _admins_enrolled(5)
    report, outcomes = _tick_and_deliver_through(ClosingInbox({admin.email for admin in admins}), settings)
    assert outcomes == {"failed": 5}

    sends = Send.objects.filter(pk__in=report.send_ids)
    assert all(send.status == Send.Status.PENDING and send.claimed_at is None for send in sends)
    errors = sorted(send.last_error for send in sends)
    assert sum("421" in error for error in errors) == 2  # one on each connection
    assert sum("every SMTP connection was lost" in error for error in errors) == 3
    # Each is tried again later, once the server is back.
    assert all(send.enrolment.next_send_at > timezone.now() for send in sends.select_related("enrolment"))


def test_an_extra_connection_that_cannot_be_opened_is_done_without(settings, smtp_server, monkeypatch, caplog):
    closed_port = _free_port()
    real = mail.get_connection
    opened = []

    def get_connection():
        backend = real() if not opened else real(port=closed_port)
        opened.append(backend)
        return backend

    monkeypatch.setattr(mail, "get_connection", get_connection)
    emails = _emails(4)
    sent, failed = _send_all(emails, connections=3)
    assert sent == emails and failed == {}
    assert sorted(message["Subject"] for _, message in smtp_server.messages) == ["n0", "n1", "n2", "n3"]
    assert len(set(smtp_server.peers)) == 1
    assert "could not open another" in caplog.text


def test_a_first_connection_that_cannot_be_opened_raises(settings):
    _smtp_to(settings, _free_port())
    with pytest.raises(OSError), mail.Sender(connections=3):
        pass


@pytest.fixture
def scripted(settings):
    """Start a ScriptedServer with the given script and point the SMTP settings at it."""
    servers = []

    def start(script=lambda index, line: None) -> ScriptedServer:
        server = ScriptedServer(script)
        servers.append(server)
        _smtp_to(settings, server.port)
        return server

    yield start
    for server in servers:
        server.close()


def _send_all(emails, *, connections: int, keep_seconds: float = 0) -> tuple[list, dict]:
    sent, failed = [], {}
    with mail.Sender(connections=connections, keep_seconds=keep_seconds) as sender:
        sender.send_all(emails, compose=lambda outgoing: outgoing, sent=sent.append, failed=lambda item, error: failed.update({item.to: error}))
    return sent, failed


def _emails(count: int) -> list[mail.OutgoingEmail]:
    return [
        mail.OutgoingEmail(subject=f"n{n}", text="plain\n", html="<p>x</p>\n", from_email="a@example.com", to=f"b{n}@example.com")
        for n in range(count)
    ]


def _wait_closed(server: ScriptedServer) -> None:
    _wait_until(lambda: not any(record["open"] for record in server.connections))


def test_a_refused_data_command_is_reset_and_the_connection_goes_on(scripted):
    server = scripted(lambda index, line: "451 try later" if line == "data" and refuse.pop(0) else None)
    refuse = [False, True, False, False]  # the second email's DATA
    sent, failed = _send_all(_emails(4), connections=1)
    assert [email.to for email in sent] == ["b0@example.com", "b2@example.com", "b3@example.com"]
    assert list(failed) == ["b1@example.com"] and isinstance(failed["b1@example.com"], smtplib.SMTPDataError)
    assert "rset" in server.connections[0]["lines"]
    assert len(server.connections) == 1 and [recipients for _, recipients in server.delivered] == [["b0@example.com"], ["b2@example.com"], ["b3@example.com"]]


def test_a_421_to_data_leaves_the_connection_and_the_others_take_its_emails(scripted):
    closed = []

    def script(index, line):
        if line == "data" and index == 0 and not closed:
            closed.append(index)
            return "421 closing"
        return None

    server = scripted(script)
    sent, failed = _send_all(_emails(6), connections=2)
    # The email in flight had not been sent (its message was not written yet): it goes out
    # on the other connection with the rest, and nothing fails.
    assert failed == {} and len(sent) == 6
    assert {index for index, _ in server.delivered} == {1}
    assert sorted(recipient for _, [recipient] in server.delivered) == sorted(email.to for email in sent)


@pytest.mark.parametrize("refusal", ["EHLO", "AUTH"])
def test_an_extra_connection_refused_at_its_greeting_or_login_is_closed_and_done_without(scripted, settings, caplog, refusal):
    def script(index, line):
        if index == 1 and line.upper().startswith(refusal):
            return "421 too many connections" if refusal == "EHLO" else "535 no"
        return None

    server = scripted(script)
    if refusal == "AUTH":
        settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "user", "secret"
    sent, failed = _send_all(_emails(5), connections=2)
    assert failed == {} and len(sent) == 5
    assert {index for index, _ in server.delivered} == {0}
    assert "could not open another" in caplog.text
    _wait_closed(server)
    assert not any(record["open"] for record in server.connections)  # nothing left open, the refused one neither


def test_a_connection_whose_greeting_fails_mid_chunk_hands_its_email_to_another(scripted):
    """A server can refuse EHLO on a connection that was open: the email is not failed for it."""
    server = scripted()
    with mail.Sender(connections=2) as sender:
        channels = sender._channels(2)
        channels[1].smtp.helo_resp = channels[1].smtp.ehlo_resp = None  # EHLO will be sent again...
        server.script = lambda index, line: "554 go away" if index == 1 and line.upper().startswith(("EHLO", "HELO")) else None
        sent, failed = [], []
        mail._Flight(channels, _emails(4), lambda outgoing: outgoing, sent.append, lambda item, error: failed.append(item)).run()
    assert failed == [] and len(sent) == 4 and {index for index, _ in server.delivered} == {0}


def test_a_slow_reply_on_one_connection_holds_up_no_other(scripted):
    """Replies are taken as they arrive: while one connection waits on the server (a relay's
    slow check of one recipient), the others go on sending. The server holds its reply to the
    first connection's RCPT until the other connection has delivered three emails; a client
    reading its connections in a fixed order would wait on it instead, until the hold ran out."""
    released = threading.Event()
    released_by_deliveries = []
    ends = []

    def script(index, line):
        if index == 0 and line.startswith("rcpt") and not released_by_deliveries:
            released_by_deliveries.append(released.wait(10))
        if index == 1 and line == "END":
            ends.append(line)
            if len(ends) == 3:
                released.set()
        return None

    server = scripted(script)
    sent, failed = _send_all(_emails(5), connections=2)
    assert failed == {} and sorted(email.to for email in sent) == sorted(email.to for email in _emails(5))
    assert released_by_deliveries == [True]  # released by the other connection's emails, not by the hold running out
    assert [index for index, _ in server.delivered[:3]] == [1, 1, 1]
    assert 0 in {index for index, _ in server.delivered}


@pytest.mark.django_db
def test_chunks_in_a_row_share_their_connections(catalog, settings, smtp_server):
    """A worker process keeps its SMTP connections open between chunks (greeted, logged in),
    so that a burst of chunks does not connect again for each."""
    settings.ONBOARDING_SMTP_CONNECTIONS, settings.ONBOARDING_SMTP_KEEP_SECONDS = 2, 30
    everyone_enrolled_in("smtp-kept", settings)
    for _ in range(3):
        _admins_enrolled(4)
        report = onboarding_tick()
        assert sends_deliver(send_ids=report.send_ids) == {"sent": 4}
    assert len(smtp_server.messages) == 12
    assert len(set(smtp_server.peers)) == 2  # the first chunk's two connections, for all three

    # Kept connections are closed politely (QUIT) when the worker process stops.
    mail.kept_connections_close()
    assert mail._kept._connections == []


def test_a_kept_connection_the_server_closed_meanwhile_is_replaced(scripted):
    server = scripted()
    sent, failed = _send_all(_emails(4), connections=2, keep_seconds=30)
    assert failed == {} and len(sent) == 4 and len(server.connections) == 2
    # The server times one of them out (or restarts) while it is kept.
    server.connections[0]["socket"].shutdown(socket.SHUT_RDWR)
    _wait_until(lambda: not server.connections[0]["open"])

    sent, failed = _send_all(_emails(4), connections=2, keep_seconds=30)
    assert failed == {} and len(sent) == 4  # no email fails for it
    assert len(server.connections) == 3  # a new one in its place; the other one kept
    assert {index for index, _ in server.delivered[4:]} == {1, 2}


def test_kept_connections_are_used_only_while_fresh_and_only_for_their_server(scripted, settings):
    server = scripted()
    with time_machine.travel(datetime(2026, 3, 2, 10, 0, tzinfo=UTC)) as traveller:
        _send_all(_emails(2), connections=2, keep_seconds=30)
        traveller.shift(timedelta(seconds=31))
        _send_all(_emails(2), connections=2, keep_seconds=30)
    # Older than keep_seconds: said goodbye to and replaced.
    assert len(server.connections) == 4
    assert all("quit" in record["lines"] for record in server.connections[:2])

    other = scripted()  # the settings now point at another server
    _send_all(_emails(2), connections=2, keep_seconds=30)
    assert len(other.connections) == 2 and len(other.delivered) == 2
    _wait_closed(server)
    assert all("quit" in record["lines"] for record in server.connections[2:])

    # And when the worker process stops.
    mail.kept_connections_close()
    _wait_closed(other)
    assert all("quit" in record["lines"] for record in other.connections)


def test_a_sender_without_keep_seconds_closes_its_connections(scripted):
    server = scripted()
    _send_all(_emails(2), connections=2)
    _wait_closed(server)
    assert not any(record["open"] for record in server.connections)
    assert mail._kept._connections == []


def test_the_connections_of_a_flight_cut_short_are_not_kept(scripted):
    """A flight cut short by an error may leave a transaction open on a connection (MAIL
    accepted, no message yet): such a connection must not carry the next chunk's emails."""
    server = scripted()

    def sent(item):
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError), mail.Sender(connections=2, keep_seconds=30) as sender:
        sender.send_all(_emails(4), compose=lambda outgoing: outgoing, sent=sent, failed=lambda item, error: None)
    assert mail._kept._connections == []
    _wait_until(lambda: server.connections and not any(record["open"] for record in server.connections))


def test_kept_connections_are_closed_once_idle_for_keep_seconds(scripted):
    """Kept connections are not left open until the next chunk: idle sessions count against
    the server's limits per client."""
    server = scripted()
    _send_all(_emails(2), connections=2, keep_seconds=0.2)
    assert all(record["open"] for record in server.connections)
    _wait_closed(server)
    assert all("quit" in record["lines"] for record in server.connections)
    assert mail._kept._connections == []


def test_a_connection_lost_before_its_message_hands_the_email_on(scripted):
    """A kept connection the server drops as the next chunk begins (or one answering 421 to
    MAIL): the message was never written, so the email goes out on another connection."""
    server, dropped, sent, failed = _kept_then_dropped_at_first_mail(scripted, kept=2, emails=4, on=0)
    assert dropped == [0] and failed == {} and len(sent) == 4
    assert len(server.connections) == 2  # no new connection: the other kept one took it
    assert [index for index, _ in server.delivered[2:]] == [1, 1, 1, 1]


def _kept_then_dropped_at_first_mail(scripted, *, kept: int, emails: int, on: int | None = None):
    """Keep `kept` connections, then send `emails` while the server drops the connection of
    the first MAIL (on connection `on`, or any); the server, which connection it dropped, and
    the outcomes."""
    server = scripted()
    _send_all(_emails(kept), connections=kept, keep_seconds=30)
    dropped = []

    def script(index, line):
        if line.startswith("mail") and not dropped and on in (None, index):
            dropped.append(index)
            return CLOSE
        return None

    server.script = script
    return server, dropped, *_send_all(_emails(emails), connections=kept, keep_seconds=30)


def test_a_connection_that_does_not_answer_is_left_after_the_timeout(scripted, settings):
    """No reply within EMAIL_TIMEOUT: the connection is closed, and the email (whose message
    was not written yet) goes out on another one, while the others go on meanwhile."""
    release = threading.Event()

    def script(index, line):
        if index == 0 and line.startswith("mail"):
            release.wait(10)  # never answers in time
        return None

    server = scripted(script)
    settings.EMAIL_TIMEOUT = 1  # after scripted(), which sets 5
    try:
        sent, failed = _send_all(_emails(4), connections=2)
    finally:
        release.set()
    assert failed == {} and len(sent) == 4
    assert {index for index, _ in server.delivered} == {1}


def test_a_server_deferring_email_after_email_is_given_a_rest(scripted):
    """A throttling server (451 to every email) is not sent the whole chunk: after a few
    deferrals in a row the other emails fail untried, to be tried again later."""
    server = scripted(lambda index, line: "451 4.7.0 slow down" if line.startswith("mail") else None)
    sent, failed = _send_all(_emails(30), connections=2)
    assert sent == [] and len(failed) == 30
    tried = sum(line.startswith("mail") for record in server.connections for line in record["lines"])
    assert mail._DEFERRALS_IN_A_ROW <= tried <= mail._DEFERRALS_IN_A_ROW + 1  # plus the one in flight on the other connection
    untried = [error for error in failed.values() if "not tried" in str(error)]
    assert len(untried) == 30 - tried and "deferred 5 emails in a row" in str(untried[0]) and "451" in str(untried[0])

    # Deferrals between accepted emails, or refusals for good, are not a throttling server.
    answers = iter(["451 4.2.2 mailbox full", None] * 20)
    server = scripted(lambda index, line: next(answers) if line.startswith("mail") else None)
    sent, failed = _send_all(_emails(12), connections=1)
    assert len(sent) == 6 and len(failed) == 6 and not any("not tried" in str(error) for error in failed.values())
    server = scripted(lambda index, line: "550 no such user" if line.startswith("rcpt") else None)
    sent, failed = _send_all(_emails(12), connections=1)
    assert len(failed) == 12 and not any("not tried" in str(error) for error in failed.values())


def test_a_refused_email_is_not_handed_on_even_when_the_server_hangs_up_after(scripted):
    """A refusal is the email's own: when the server closes the connection after refusing a
    recipient (its RSET unanswered), that email fails with its refusal and is not tried on
    the other connections, which go on with the rest."""
    refused = []

    def script(index, line):
        if line.startswith("rcpt") and "b0@" in line:
            refused.append(index)
            return "550 5.1.1 no such user"
        return CLOSE if line == "rset" and index in refused else None

    scripted(script)
    sent, failed = _send_all(_emails(10), connections=3)
    assert len(sent) == 9 and list(failed) == ["b0@example.com"] and "550" in str(failed["b0@example.com"])
    assert len(refused) == 1


def test_an_email_is_handed_on_once(scripted, settings):
    """A recipient the server never answers for: its email is tried on a second connection,
    then fails, rather than take every connection with it."""
    release, tried = threading.Event(), []

    def script(index, line):
        if line.startswith("rcpt") and "b0@" in line:
            tried.append(index)
            release.wait(5)
        return None

    scripted(script)
    settings.EMAIL_TIMEOUT = 1  # after scripted(), which sets 5
    try:
        sent, failed = _send_all(_emails(10), connections=3)
    finally:
        release.set()
    assert len(sent) == 9 and list(failed) == ["b0@example.com"] and "timed out" in str(failed["b0@example.com"])
    assert len(tried) == 2


def test_a_kept_connection_without_an_email_takes_one_handed_on(scripted):
    """More kept connections than the chunk has emails: those left without one still take an
    email whose connection was lost before its message."""
    server, dropped, sent, failed = _kept_then_dropped_at_first_mail(scripted, kept=3, emails=1)
    assert dropped and failed == {} and len(sent) == 1
    assert len(server.connections) == 3  # another kept one took it


def test_closing_a_sender_twice_leaves_the_other_kept_connections(scripted):
    scripted()
    sender = mail.Sender(connections=2, keep_seconds=30)
    with sender:
        sender.send_all(_emails(2), compose=lambda outgoing: outgoing, sent=lambda _: None, failed=lambda *_: None)
    assert len(mail._kept._connections) == 2
    sender.close()
    assert len(mail._kept._connections) == 2


def _wait_until(condition) -> None:
    for _ in range(250):
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("the condition did not come true within 5 s")
