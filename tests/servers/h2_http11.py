"""The HTTP/1.1 side of :class:`servers.h2.H2Server`: what a TLS connection gets when ALPN
did not pick ``h2`` (the server offers only ``http/1.1``, or the client offers no ``h2``).

A minimal keep-alive responder for the same routes (:mod:`servers.routes`):
``Content-Length`` or chunked request bodies, ``Content-Length`` answers (chunked for
``/stream/N``). Faults in HTTP/1.1 terms: ``/refuse``, ``/goaway`` and ``/close`` close the
connection unanswered, ``/reset`` sends a head then closes, ``/silent`` never answers,
``/half`` sends the head and 100 of 1000 bytes then holds. Each request is recorded as a
stream numbered 1, 2, ... on its connection with ``http_version`` "1.1".
"""

from __future__ import annotations

import http
import logging
import select
import ssl
import threading
import time
from typing import TYPE_CHECKING

from .h2_recorder import StreamRecord
from .raw import HOLD_SECONDS
from .routes import HALF_BODY_DECLARED, HALF_BODY_SENT, Reply, Request, plan

if TYPE_CHECKING:
    from .h2 import H2Server

__all__ = ["H1Connection"]

log = logging.getLogger("tests.servers.h2")

_POLL_SECONDS = 0.05
_SEND_SECONDS = 10.0
_H1_LIMIT = 64 * 1024 * 1024


class H1Connection:
    """A minimal HTTP/1.1 keep-alive responder for the same routes (no ``h2`` by ALPN)."""

    def __init__(
        self, server: H2Server, sock: ssl.SSLSocket, index: int, closing: threading.Event
    ) -> None:
        self.server = server
        self.sock = sock
        self.index = index
        self.closing = closing
        self.buffer = b""

    def _read(self, deadline: float) -> bool:
        while not self.closing.is_set() and time.monotonic() < deadline:
            if not self.sock.pending():
                ready, _, _ = select.select([self.sock], [], [], _POLL_SECONDS)
                if not ready:
                    continue
            self.sock.settimeout(_SEND_SECONDS)
            data = self.sock.recv(65536)
            if not data:
                return False
            self.buffer += data
            return True
        return False

    def run(self) -> None:
        number = 0
        deadline = time.monotonic() + HOLD_SECONDS
        try:
            while True:
                while b"\r\n\r\n" not in self.buffer:
                    if not self._read(deadline) or len(self.buffer) > 65536:
                        return
                head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = [*lines[0].split(" ", 2), "", ""][:3]
                headers = []
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers.append((name.strip().lower(), value.strip()))
                values = dict(headers)
                body = self._body(values, deadline)
                if body is None:
                    return
                number += 1
                record = StreamRecord(
                    connection=self.index,
                    stream_id=number,
                    method=method,
                    path=target,
                    authority=values.get("host", ""),
                    http_version="1.1",
                    headers=tuple(headers),
                    body_length=len(body),
                    opened=time.monotonic(),
                )
                recorder = self.server.recorder
                recorder._stream(record)
                request = Request(method, target, headers, body, "1.1")
                reply = plan(request)
                if reply.fault in ("/refuse", "/goaway", "/close"):
                    recorder._update(self.index, number, refused=True, closed=time.monotonic())
                    return
                recorder._update(self.index, number, processed=True)
                delay = self.server.response_delay + reply.delay
                if delay and self.closing.wait(delay):
                    return
                keep = self._answer(reply, values.get("connection", "").lower() != "close")
                recorder._update(self.index, number, closed=time.monotonic())
                if not keep:
                    return
        except (OSError, ssl.SSLError, ValueError) as exc:
            log.debug("HTTP/1.1 connection %d ended: %r", self.index, exc)

    def _body(self, values: dict[str, str], deadline: float) -> bytes | None:
        if values.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                while b"\r\n" not in self.buffer:
                    if not self._read(deadline):
                        return None
                size_line, _, self.buffer = self.buffer.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                while len(self.buffer) < size + 2:
                    if not self._read(deadline):
                        return None
                body += self.buffer[:size]
                self.buffer = self.buffer[size + 2 :]
                if size == 0:
                    return body
        length = int(values.get("content-length", "0") or 0)
        if length > _H1_LIMIT:
            return None
        while len(self.buffer) < length:
            if not self._read(deadline):
                return None
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return body

    def _send_head(self, status: int, headers: list[tuple[str, str]]) -> None:
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def _answer(self, reply: Reply, keep_alive: bool) -> bool:
        """Send *reply*; whether the connection stays open for another request."""
        self.sock.settimeout(_SEND_SECONDS)
        if reply.fault == "/silent":
            self.closing.wait(HOLD_SECONDS)
            return False
        if reply.fault == "/reset":
            self._send_head(200, [("content-length", "10")])
            return False
        if reply.fault == "/short":
            self._send_head(200, [("content-length", str(HALF_BODY_DECLARED))])
            self.sock.sendall(b"h" * HALF_BODY_SENT)
            return False
        if reply.fault == "/half":
            self._send_head(200, [("content-length", str(HALF_BODY_DECLARED))])
            self.sock.sendall(b"h" * HALF_BODY_SENT)
            self.closing.wait(HOLD_SECONDS)
            return False
        if reply.fault == "/upper":
            self._send_head(200, [("X-Upper", "1"), ("content-length", "2")])
            self.sock.sendall(b"ok")
            return keep_alive
        connection = [] if keep_alive else [("connection", "close")]
        if reply.chunks is not None:
            self._send_head(reply.status, [*reply.headers, ("transfer-encoding", "chunked")])
            for i, chunk in enumerate(reply.chunks):
                if i and self.closing.wait(reply.pause):
                    return False
                self.sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.sock.sendall(b"0\r\n\r\n")
            return keep_alive
        headers = [*reply.headers, ("content-length", str(len(reply.body))), *connection]
        self._send_head(reply.status, headers)
        if not reply.head_only:
            self.sock.sendall(reply.body)
        return keep_alive
