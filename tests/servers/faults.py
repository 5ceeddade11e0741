"""A scripted raw server for fault injection: a per-request plan of answers and failures.

:func:`scripted` builds a :class:`servers.raw.RawServer` script that serves HTTP/1.1
keep-alive connections request by request and asks a *plan* what to do before each
request: answer with given bytes (and then keep the connection, close it silently, or
reset it), or fail in one of the ways servers and load balancers really fail (reset
after reading the request, close without answering, close with the request unread,
never answer). Every request the server reads is recorded in a :class:`Recorder`, so a
test can assert exactly what the server saw, per method and path, per connection.

Everything is bounded: every read has a timeout, request heads and bodies have size
limits, and a script that holds a connection waits at most until the server closes.
"""

from __future__ import annotations

import enum
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .raw import HOLD_SECONDS, RawServer, Script, read_request_head

__all__ = [
    "OK",
    "Fault",
    "Plan",
    "Recorder",
    "Reply",
    "Seen",
    "chunked_with_bad_size",
    "endless_5xx",
    "oversized_headers",
    "reset",
    "scripted",
]

#: A minimal keep-alive answer.
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

#: Longest wait for one whole request.
_READ_TIMEOUT = 5.0
_MAX_HEAD = 256 * 1024
_MAX_BODY = 64 * 1024 * 1024


@dataclass(frozen=True)
class Seen:
    """One request as the server read it. ``connection`` and ``index`` count from 1 (the
    connection in accept order, the request on that connection); ``complete`` is False
    when only the head was read."""

    connection: int
    index: int
    method: str
    path: str
    body: bytes
    complete: bool = True


class Recorder:
    """Thread-safe record of the connections and requests a scripted server saw."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connections = 0
        self._requests: list[Seen] = []
        #: Connections closed with request bytes unread (:attr:`Fault.CLOSE_UNREAD`).
        self.unread_closes = 0

    def new_connection(self) -> int:
        with self._lock:
            self._connections += 1
            return self._connections

    def record(self, seen: Seen) -> None:
        with self._lock:
            self._requests.append(seen)

    def closed_unread(self) -> None:
        with self._lock:
            self.unread_closes += 1

    @property
    def connections(self) -> int:
        with self._lock:
            return self._connections

    @property
    def requests(self) -> list[Seen]:
        with self._lock:
            return list(self._requests)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests read whose method and path (without query) match (None: any)."""
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method)
            and (path is None or r.path.partition("?")[0] == path)
        )

    def by_route(self) -> dict[str, int]:
        """``{"GET /x": n, ...}``: requests read per method and path."""
        counts: dict[str, int] = {}
        for r in self.requests:
            key = f"{r.method} {r.path.partition('?')[0]}"
            counts[key] = counts.get(key, 0) + 1
        return counts


class Fault(enum.Enum):
    """Ways to fail a request instead of answering it."""

    #: Read the whole request, then reset the connection (SO_LINGER 0: RST).
    RESET = "reset"
    #: Read the whole request, then close (FIN) without answering.
    CLOSE = "close"
    #: Wait until a whole request has arrived, then close without reading it; with
    #: unread data in its receive buffer the kernel answers with an RST.
    CLOSE_UNREAD = "close-unread"
    #: Read only the request head (not the body), then reset the connection.
    RESET_AFTER_HEAD = "reset-after-head"
    #: Read the whole request and never answer (hold the connection until the server
    #: closes).
    HANG = "hang"


@dataclass(frozen=True)
class Reply:
    """Read the whole request and send *data* verbatim; then ``"keep"`` the connection for
    the next request, ``"close"`` it silently (FIN, without ``Connection: close``), or
    ``"reset"`` it (RST) after *pause* seconds."""

    data: bytes = OK
    then: str = "keep"
    pause: float = 0.0

    def __post_init__(self) -> None:
        if self.then not in ("keep", "close", "reset"):
            raise ValueError(f"then must be 'keep', 'close' or 'reset', not {self.then!r}")


#: ``plan(connection, index)`` decides, before the request is read, what to do with the
#: *index*-th request (from 1) on the *connection*-th connection (from 1).
Plan = Callable[[int, int], "Reply | Fault"]


def reset(conn: socket.socket) -> None:
    """Close *conn* with ``SO_LINGER`` 0, so the kernel sends an RST instead of a FIN."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def oversized_headers(total: int = 80 * 1024) -> bytes:
    """A 200 response whose header block is *total* bytes of ordinary header lines."""
    line = b"X-Filler-%05d: " + b"a" * 60 + b"\r\n"
    count = total // (len(line) - 1) + 1
    lines = b"".join(line % i for i in range(count))
    return b"HTTP/1.1 200 OK\r\n" + lines + b"Content-Length: 2\r\n\r\nok"


def chunked_with_bad_size() -> bytes:
    """A chunked 200 response whose first chunk size is not hexadecimal."""
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"


def endless_5xx(endless: int, pause: float = 0.0, header: str = "") -> tuple[Script, list[int]]:
    """A script whose first *endless* connections each read one request and answer it
    ``503`` (with *header*, one more header line) and a chunked body that never ends (a
    4 KiB chunk, then *pause* seconds, again), until the client goes away or the server
    closes (and at most ``HOLD_SECONDS``); later connections read one request, answer
    :data:`OK` and close. Also returns the list the script appends a 1 to per request
    read, in accept order."""
    seen: list[int] = []
    lock = threading.Lock()
    chunk = b"1000\r\n" + b"x" * 4096 + b"\r\n"
    extra = f"{header}\r\n".encode("latin-1") if header else b""
    head = b"HTTP/1.1 503 Unavailable\r\n" + extra + b"Transfer-Encoding: chunked\r\n\r\n"

    def script(conn: socket.socket, server: RawServer) -> None:
        if not read_request_head(conn):
            return
        with lock:
            seen.append(1)
            number = len(seen)
        if number > endless:
            conn.sendall(OK)
            return
        conn.sendall(head)
        deadline = time.monotonic() + HOLD_SECONDS
        conn.settimeout(1.0)
        while not server.closing.is_set() and time.monotonic() < deadline:
            try:
                conn.sendall(chunk)
            except OSError:  # the client closed: the end of the scenario
                return
            if pause:
                server.closing.wait(pause)

    return script, seen


class _Eof(Exception):
    """The client closed the connection (between requests or inside one), or the server
    is closing."""


class _Reader:
    """Reads requests from one connection into a buffer. Every wait is bounded by a
    deadline and checks the server's closing event every 0.1 s, so a script never
    outlives ``RawServer.close()`` by more than that (which matters over TLS, where the
    server's shutdown of the plain socket no longer reaches the wrapped one)."""

    def __init__(self, conn: socket.socket, server: RawServer) -> None:
        self.conn = conn
        self.server = server
        self.buf = bytearray()

    def _recv(self, deadline: float) -> None:
        while True:
            if self.server.closing.is_set():
                raise _Eof
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("request not read in time")
            self.conn.settimeout(min(remaining, 0.1))
            try:
                chunk = self.conn.recv(65536)
            except TimeoutError:
                continue
            except ssl.SSLEOFError:  # a TLS client closed without close_notify
                chunk = b""
            if not chunk:
                raise _Eof
            self.buf += chunk
            return

    def head(self, deadline: float) -> bytes:
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > _MAX_HEAD:
                raise ValueError("request head too large")
            self._recv(deadline)
        end = self.buf.index(b"\r\n\r\n")
        head = bytes(self.buf[:end])
        del self.buf[: end + 4]
        return head

    def _line(self, deadline: float) -> bytes:
        while b"\r\n" not in self.buf:
            if len(self.buf) > 1024:
                raise ValueError("chunk line too long")
            self._recv(deadline)
        end = self.buf.index(b"\r\n")
        line = bytes(self.buf[:end])
        del self.buf[: end + 2]
        return line

    def _exact(self, n: int, deadline: float) -> bytes:
        while len(self.buf) < n:
            self._recv(deadline)
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def body(self, head: bytes, deadline: float) -> bytes:
        headers = {}
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = bytearray()
            while True:
                size = int(self._line(deadline).split(b";")[0], 16)
                if size == 0:
                    while self._line(deadline):
                        pass
                    return bytes(body)
                if len(body) + size > _MAX_BODY:
                    raise ValueError("request body too large")
                body += self._exact(size, deadline)
                self._exact(2, deadline)
        length = int(headers.get("content-length", "0"))
        if length > _MAX_BODY:
            raise ValueError("request body too large")
        return self._exact(length, deadline)


def _whole_request_arrived(conn: socket.socket, server: RawServer) -> bool:
    """Wait (bounded) until a whole request sits in *conn*'s receive buffer, looking with
    ``MSG_PEEK`` only, so nothing is read. True once it has arrived; False on EOF, or if
    the server closes or the time runs out first."""
    deadline = time.monotonic() + HOLD_SECONDS
    while not server.closing.is_set() and time.monotonic() < deadline:
        readable, _, _ = select.select([conn], [], [], 0.05)
        if not readable:
            continue
        data = conn.recv(_MAX_HEAD, socket.MSG_PEEK)
        if not data:
            return False
        if _complete(data):
            return True
        server.closing.wait(0.001)  # more is on its way; select would return at once
    return False


def _complete(data: bytes) -> bool:
    """Whether *data* holds a whole request (head and Content-Length or chunked body)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"transfer-encoding" and b"chunked" in value.lower():
            return body.endswith(b"0\r\n\r\n")
        if name == b"content-length":
            length = int(value.strip())
    return len(body) >= length


def scripted(
    recorder: Recorder, plan: Plan, *, ssl_context: ssl.SSLContext | None = None
) -> Script:
    """A :class:`RawServer` script serving each connection request by request, doing
    what ``plan(connection, index)`` says before each request (see :class:`Reply` and
    :class:`Fault`), and recording every request it reads into *recorder*. With
    *ssl_context* it speaks TLS (not with :attr:`Fault.CLOSE_UNREAD`, which peeks at the
    plain bytes)."""

    def script(raw: socket.socket, server: RawServer) -> None:
        conn = raw
        # Nagle would hold back the second of two small writes (a TLS handshake's last
        # records) for the client's delayed ACK: 40 ms per new connection.
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if ssl_context is not None:
                raw.settimeout(_READ_TIMEOUT)
                conn = ssl_context.wrap_socket(raw, server_side=True)
            _serve(conn, server, recorder.new_connection())
        except _Eof:
            pass  # the client went away inside a request, or the server is closing
        finally:
            conn.close()

    def _serve(conn: socket.socket, server: RawServer, number: int) -> None:
        reader = _Reader(conn, server)
        index = 0
        while not server.closing.is_set():
            index += 1
            step = plan(number, index)
            if step is Fault.CLOSE_UNREAD:
                if ssl_context is not None:
                    raise ValueError("Fault.CLOSE_UNREAD cannot peek into TLS")
                if reader.buf or _whole_request_arrived(conn, server):
                    recorder.closed_unread()
                conn.close()
                return
            deadline = time.monotonic() + _READ_TIMEOUT
            try:
                head = reader.head(deadline)
            except _Eof:
                return  # the client closed the connection: the normal end
            method, _, rest = head.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
            path = rest.partition(" ")[0]
            if step is Fault.RESET_AFTER_HEAD:
                recorder.record(Seen(number, index, method, path, b"", complete=False))
                reset(conn)
                return
            body = reader.body(head, deadline)
            recorder.record(Seen(number, index, method, path, body))
            if step is Fault.RESET:
                reset(conn)
                return
            if step is Fault.CLOSE:
                conn.close()
                return
            if step is Fault.HANG:
                server.wait_closed()
                return
            assert isinstance(step, Reply)
            # sendall's timeout bounds the whole send, and the reader left the socket's at
            # its 0.1 s poll step: a 20 MiB reply to a client that reads slower than
            # 200 MB/s for a moment (a loaded machine) was cut short, the client seeing an
            # IncompleteRead. The reply gets the same bound as reading a request.
            conn.settimeout(_READ_TIMEOUT)
            conn.sendall(step.data)
            if step.then == "close":
                conn.close()
                return
            if step.then == "reset":
                if step.pause:
                    server.closing.wait(step.pause)
                reset(conn)
                return

    return script
