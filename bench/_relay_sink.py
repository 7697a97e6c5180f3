"""An SMTP sink that answers like a relay across a network, for bench/onboarding.py
--relay-latency-ms: it accepts and discards every message as aiosmtpd's Sink does, but its
replies to MAIL, RCPT and the message each come that many milliseconds late (a round trip to a
provider, its own checks). Run by aiosmtpd: `python -m aiosmtpd -c _relay_sink.RelaySink 5`."""

from __future__ import annotations

import asyncio


class RelaySink:
    def __init__(self, latency_ms: float) -> None:
        self.delay = latency_ms / 1000

    @classmethod
    def from_cli(cls, parser, *args) -> RelaySink:
        if len(args) != 1:
            parser.error("RelaySink takes one argument: the latency in milliseconds")
        return cls(float(args[0]))

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802 - aiosmtpd's hook name
        await asyncio.sleep(self.delay)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's hook name
        await asyncio.sleep(self.delay)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        await asyncio.sleep(self.delay)
        return "250 OK"
