"""A scripted SMTP server on loopback, for the failures aiosmtpd's hooks cannot make (a refused
DATA command, a refused greeting or login on one connection of several): a thread per
connection, the usual answers unless `script(connection_index, line)` returns one (or CLOSE)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

CLOSE = "CLOSE"


class ScriptedServer:
    def __init__(self, script: Callable[[int, str], str | None] = lambda index, line: None) -> None:
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[dict] = []  # per connection: its command lines, whether it is open, its socket
        self.delivered: list[tuple[int, list[str]]] = []  # (connection index, recipients) per message
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            record = {"lines": [], "open": True, "socket": connection}
            self.connections.append(record)
            threading.Thread(target=self._serve, args=(len(self.connections) - 1, connection, record), daemon=True).start()

    def _serve(self, index: int, connection: socket.socket, record: dict) -> None:  # noqa: C901 - one SMTP state machine
        reader = connection.makefile("rb")
        mail, recipients, in_data = None, [], False

        def answer(reply: str) -> bool:
            connection.sendall(reply.encode() + b"\r\n")
            return not reply.startswith("421")

        try:
            if not answer(self.script(index, "GREETING") or "220 scripted"):
                return
            while line := reader.readline():
                if in_data:
                    if line != b".\r\n":
                        continue
                    in_data = False
                    reply = self.script(index, "END") or "250 ok"
                    if reply.startswith("250"):
                        self.delivered.append((index, recipients))
                    mail, recipients = None, []
                    if reply == CLOSE or not answer(reply):
                        return
                    continue
                text = line.decode().rstrip("\r\n")
                record["lines"].append(text)
                verb = text.split(" ")[0].split(":")[0].upper()
                reply = self.script(index, text)
                if reply == CLOSE:
                    return
                if reply is None:
                    if verb == "EHLO":
                        reply = "250-scripted\r\n250-SIZE 100000\r\n250-AUTH PLAIN\r\n250 8BITMIME"
                    elif verb == "MAIL":
                        reply, mail = ("503 nested MAIL", mail) if mail else ("250 ok", text)
                    elif verb == "RCPT":
                        reply = "503 need MAIL" if mail is None else "250 ok"
                        if mail is not None:
                            recipients = [*recipients, text.split("<")[1].split(">")[0]]
                    elif verb == "DATA":
                        reply, in_data = ("354 go ahead", True) if recipients else ("503 need RCPT", False)
                    elif verb == "RSET":
                        reply, mail, recipients = "250 ok", None, []
                    elif verb == "QUIT":
                        answer("221 bye")
                        return
                    elif verb == "AUTH":
                        reply = "235 ok"
                    else:
                        reply = "250 ok"
                if not answer(reply):
                    return
        except OSError:
            pass
        finally:
            record["open"] = False
            connection.close()
