"""A small HTTP/2 server on the ``h2`` state machine, for client tests down to the frame.

``H2Server(cert, **options)`` listens on 127.0.0.1 port 0 with TLS (the trustme
certificate) and runs one thread per connection (on :class:`servers.raw.RawServer`). ALPN
picks the protocol: ``h2`` gets the HTTP/2 loop below, anything else (``alpn=
("http/1.1",)``, or a client that offers no ``h2``) a minimal HTTP/1.1 keep-alive responder
for the same routes (:mod:`servers.routes`).

One HTTP/2 connection: its thread alone reads and writes the socket (an ``SSLSocket`` must
not be read and written from two threads at once); each request that is processed gets a
worker thread of its own, which drives the shared ``h2`` state machine under the
connection's lock and wakes the connection thread to flush. So streams run concurrently
and multiplexing is observable: :class:`Recorder` keeps, per connection, how many
processed streams overlapped at most.

Options: ``max_concurrent_streams``, ``initial_window_size``, ``max_frame_size`` (the
server's SETTINGS), ``goaway_after=N`` (after the Nth stream of a connection send
GOAWAY(NO_ERROR, last_stream_id=that stream), finish the streams up to it, never process
the later ones (recorded as refused), then close), ``response_delay`` (seconds before each
answer, per stream, without holding up the others).

Fault routes: ``/reset`` RST_STREAM(INTERNAL_ERROR) after the response headers,
``/refuse`` RST_STREAM(REFUSED_STREAM) before any processing, ``/goaway`` GOAWAY whose
last_stream_id is below this stream (the highest earlier stream, or 0) then close once
the earlier streams finished, ``/close`` close the TCP connection (no GOAWAY), ``/silent``
never answer, ``/half`` headers declaring 1000 bytes and 100 of them, then silence.

Every wait is bounded: a connection lives at most ``HOLD_SECONDS`` and ends within
~0.1 s of ``close()``; workers wait on the connection's end event, never plain sleep.
"""

from __future__ import annotations

import contextlib
import http
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from hyperframe.frame import GoAwayFrame

from .raw import HOLD_SECONDS, RawServer
from .routes import HALF_BODY_DECLARED, HALF_BODY_SENT, STREAM_PAUSE_SECONDS, Reply, Request, plan

__all__ = [
    "ConnectionRecord",
    "H2Server",
    "Recorder",
    "StreamRecord",
]

log = logging.getLogger("tests.servers.h2")

_HANDSHAKE_SECONDS = 5.0
_POLL_SECONDS = 0.05
_SEND_SECONDS = 10.0
_JOIN_SECONDS = 5.0
_H1_LIMIT = 64 * 1024 * 1024


# -- the recorder ---------------------------------------------------------------------


@dataclass(frozen=True)
class StreamRecord:
    """One request (an HTTP/2 stream, or an HTTP/1.1 request numbered 1, 2, ... on its
    connection) as the server saw it. ``processed`` and ``refused`` are final once
    ``closed`` is set (``refused``: RST_STREAM REFUSED_STREAM or above a GOAWAY's
    last_stream_id: the server never acted on it)."""

    connection: int
    stream_id: int
    method: str
    path: str
    authority: str
    http_version: str  # "2" or "1.1"
    headers: tuple[tuple[str, str], ...] = ()
    body_length: int = 0
    processed: bool = False
    refused: bool = False
    opened: float = 0.0  # time.monotonic() when the request head arrived
    closed: float | None = None  # when the response ended (or the stream was reset)


@dataclass(frozen=True)
class ConnectionRecord:
    """One accepted connection: ``index`` counts from 1 in accept order."""

    index: int
    alpn: str | None
    http_version: str
    streams: tuple[StreamRecord, ...]
    #: Most processed streams in flight at once (head received, answer not yet done).
    max_open_streams: int
    #: last_stream_id of the GOAWAY the server sent, if it sent one.
    goaway_last_stream_id: int | None
    closed: bool


@dataclass
class _Conn:
    index: int
    alpn: str | None
    http_version: str
    streams: dict[int, StreamRecord] = field(default_factory=dict)
    open_now: int = 0
    max_open: int = 0
    goaway: int | None = None
    closed: bool = False


class Recorder:
    """What an :class:`H2Server` saw, thread-safe. Readers get frozen snapshots;
    :meth:`wait_for` waits (bounded) for a condition on them."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._conns: list[_Conn] = []

    # writers (the server) --------------------------------------------------------

    def _connection(self, alpn: str | None, http_version: str) -> int:
        with self._lock:
            self._conns.append(_Conn(len(self._conns) + 1, alpn, http_version))
            self._changed.notify_all()
            return len(self._conns)

    def _stream(self, record: StreamRecord) -> None:
        with self._lock:
            self._conns[record.connection - 1].streams[record.stream_id] = record
            self._changed.notify_all()

    def _update(self, connection: int, stream_id: int, **changes: Any) -> None:
        with self._lock:
            conn = self._conns[connection - 1]
            old = conn.streams[stream_id]
            new = replace(old, **changes)
            if new.processed and not old.processed:
                conn.open_now += 1
                conn.max_open = max(conn.max_open, conn.open_now)
            if old.processed and new.closed is not None and old.closed is None:
                conn.open_now -= 1
            conn.streams[stream_id] = new
            self._changed.notify_all()

    def _goaway(self, connection: int, last_stream_id: int) -> None:
        with self._lock:
            self._conns[connection - 1].goaway = last_stream_id
            self._changed.notify_all()

    def _closed(self, connection: int) -> None:
        with self._lock:
            self._conns[connection - 1].closed = True
            self._changed.notify_all()

    # readers (the tests) ---------------------------------------------------------

    @property
    def connections(self) -> list[ConnectionRecord]:
        with self._lock:
            return [
                ConnectionRecord(
                    c.index,
                    c.alpn,
                    c.http_version,
                    tuple(c.streams[k] for k in sorted(c.streams)),
                    c.max_open,
                    c.goaway,
                    c.closed,
                )
                for c in self._conns
            ]

    @property
    def connections_accepted(self) -> int:
        """Connections that completed the TLS handshake."""
        with self._lock:
            return len(self._conns)

    @property
    def streams(self) -> list[StreamRecord]:
        """Every stream (request) seen, by connection then stream id."""
        return [s for c in self.connections for s in c.streams]

    @property
    def processed(self) -> list[StreamRecord]:
        return [s for s in self.streams if s.processed]

    @property
    def refused(self) -> list[StreamRecord]:
        return [s for s in self.streams if s.refused]

    @property
    def max_open_streams(self) -> int:
        """The most processed streams in flight at once on any one connection."""
        with self._lock:
            return max((c.max_open for c in self._conns), default=0)

    def http_versions(self) -> list[str]:
        """The HTTP version of every request seen ("2" or "1.1"), in record order."""
        return [s.http_version for s in self.streams]

    def paths(self) -> list[str]:
        return [s.path for s in self.streams]

    def wait_for(self, predicate: Callable[[Recorder], bool], timeout: float = 5.0) -> bool:
        """Wait until ``predicate(recorder)`` holds; False if *timeout* passes first."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)

    def wait_for_streams(self, n: int, timeout: float = 5.0, *, closed: bool = True) -> bool:
        """Wait until *n* streams were seen (and, by default, are closed)."""
        return self.wait_for(
            lambda r: sum(1 for s in r.streams if s.closed or not closed) >= n, timeout
        )

    def wait_for_connections(self, n: int, timeout: float = 5.0) -> bool:
        return self.wait_for(lambda r: r.connections_accepted >= n, timeout)


# -- the server -----------------------------------------------------------------------


class H2Server:
    """An HTTP/2 (and HTTP/1.1 fallback) TLS server on 127.0.0.1 port 0; see module doc.

    *cert* is anything with ``configure_cert(context)`` (a ``trustme.LeafCert``).
    """

    def __init__(
        self,
        cert: Any,
        *,
        alpn: Iterable[str] = ("h2", "http/1.1"),
        max_concurrent_streams: int | None = None,
        initial_window_size: int | None = None,
        max_frame_size: int | None = None,
        goaway_after: int | None = None,
        response_delay: float = 0.0,
    ) -> None:
        self.alpn = tuple(alpn)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        cert.configure_cert(context)
        context.set_alpn_protocols(list(self.alpn))
        self._context = context
        self.settings: dict[h2.settings.SettingCodes, int] = {}
        if max_concurrent_streams is not None:
            self.settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = max_concurrent_streams
        if initial_window_size is not None:
            self.settings[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] = initial_window_size
        if max_frame_size is not None:
            self.settings[h2.settings.SettingCodes.MAX_FRAME_SIZE] = max_frame_size
        self.goaway_after = goaway_after
        self.response_delay = response_delay
        self.recorder = Recorder()
        self._raw = RawServer(self._serve)

    def start(self) -> H2Server:
        self._raw.start()
        return self

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> H2Server:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        return self._raw.port

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def errors(self) -> list[BaseException]:
        """Unexpected exceptions raised while serving (a test may assert it is empty)."""
        return self._raw.errors

    def _serve(self, raw: socket.socket, server: RawServer) -> None:
        raw.settimeout(_HANDSHAKE_SECONDS)
        try:
            tls = self._context.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            log.debug("TLS handshake failed: %r", exc)
            return
        with tls:
            alpn = tls.selected_alpn_protocol()
            if alpn == "h2":
                index = self.recorder._connection(alpn, "2")
                _H2Connection(self, tls, index, server.closing).run()
            else:
                index = self.recorder._connection(alpn, "1.1")
                _H1Connection(self, tls, index, server.closing).run()
            self.recorder._closed(index)


class _H2Connection:
    """One HTTP/2 connection (module doc): the socket's owner thread plus stream workers."""

    def __init__(
        self, server: H2Server, sock: ssl.SSLSocket, index: int, closing: threading.Event
    ) -> None:
        self.server = server
        self.recorder = server.recorder
        self.sock = sock
        self.index = index
        self.closing = closing
        self.ended = threading.Event()  # set when this connection ends: workers return
        config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=config)
        self.lock = threading.Condition(threading.RLock())
        self.out = bytearray()
        self.wake_r, self.wake_w = socket.socketpair()
        self.workers: list[threading.Thread] = []
        self.requests: dict[int, Request] = {}  # streams whose head arrived, body pending
        self.bodies: dict[int, bytearray] = {}
        self.seen = 0  # streams opened by the client on this connection
        self.highest = 0  # highest stream id opened by the client
        self.last_stream_id: int | None = None  # set once GOAWAY is sent
        self.active: set[int] = set()  # processed streams not finished yet
        self.abort = False  # /close: drop the connection now
        self.peer_done = False

    # output, under self.lock --------------------------------------------------------

    def _queue(self, raw: bytes = b"") -> None:
        self.out += self.conn.data_to_send()
        self.out += raw

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self.wake_w.send(b"x")

    def _flush(self) -> None:
        with self.lock:
            self._queue()
            data, self.out = bytes(self.out), bytearray()
        if data:
            self.sock.settimeout(_SEND_SECONDS)
            self.sock.sendall(data)

    # the connection thread ------------------------------------------------------------

    def run(self) -> None:
        deadline = time.monotonic() + HOLD_SECONDS
        try:
            with self.lock:
                self.conn.local_settings = h2.settings.Settings(
                    client=False, initial_values=self.server.settings
                )
                self.conn.initiate_connection()
            self._flush()
            while not self.closing.is_set() and time.monotonic() < deadline:
                if self.abort or self._finished():
                    break
                if not self.sock.pending():
                    ready, _, _ = select.select([self.sock, self.wake_r], [], [], _POLL_SECONDS)
                    if self.wake_r in ready:
                        self.wake_r.recv(65536)
                    if self.sock not in ready:
                        self._flush()
                        continue
                self.sock.settimeout(_SEND_SECONDS)
                data = self.sock.recv(65536)
                if not data:
                    self.peer_done = True
                    break
                with self.lock:
                    try:
                        events = self.conn.receive_data(data)
                    except h2.exceptions.ProtocolError as exc:
                        log.debug("protocol error from the client: %r", exc)
                        self.conn.close_connection(ErrorCodes.PROTOCOL_ERROR)
                        self.abort = True
                        events = []
                    for event in events:
                        self._on_event(event)
                    self.lock.notify_all()
                self._flush()
            if not self.abort:
                self._flush()
        except (OSError, ssl.SSLError) as exc:
            log.debug("connection %d ended: %r", self.index, exc)
        finally:
            self.ended.set()
            with self.lock:
                self.lock.notify_all()
            deadline = time.monotonic() + _JOIN_SECONDS
            for worker in self.workers:
                worker.join(timeout=max(0.0, deadline - time.monotonic()))
            with self.lock:
                for stream_id in list(self.active):
                    self._close_stream(stream_id)
            self.wake_r.close()
            self.wake_w.close()

    def _finished(self) -> bool:
        """After a GOAWAY: every stream up to last_stream_id is done."""
        with self.lock:
            return self.last_stream_id is not None and not self.active

    def _on_event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self._on_request(event)
        elif isinstance(event, h2.events.DataReceived):
            sid = event.stream_id
            self.conn.acknowledge_received_data(event.flow_controlled_length, sid)
            if sid in self.bodies:
                self.bodies[sid] += event.data
        elif isinstance(event, h2.events.StreamEnded):
            request = self.requests.pop(event.stream_id, None)
            body = self.bodies.pop(event.stream_id, bytearray())
            if request is not None:
                request.body = bytes(body)
                self._start(event.stream_id, request)
        elif isinstance(event, h2.events.StreamReset):
            self.requests.pop(event.stream_id, None)
            self.bodies.pop(event.stream_id, None)
            if event.stream_id in self.active:
                self._close_stream(event.stream_id)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.peer_done = True
            if self.last_stream_id is None:
                self._goaway(self.highest)

    def _on_request(self, event: h2.events.RequestReceived) -> None:
        sid = event.stream_id
        headers = [(str(k), str(v)) for k, v in event.headers or ()]
        values = dict(headers)
        self.seen += 1
        self.highest = max(self.highest, sid)
        record = StreamRecord(
            connection=self.index,
            stream_id=sid,
            method=values.get(":method", ""),
            path=values.get(":path", ""),
            authority=values.get(":authority", ""),
            http_version="2",
            headers=tuple(headers),
            opened=time.monotonic(),
        )
        self.recorder._stream(record)
        if self.last_stream_id is not None and sid > self.last_stream_id:
            # Above the GOAWAY's last_stream_id: never processed (RFC 9113 6.8).
            self.recorder._update(self.index, sid, refused=True, closed=time.monotonic())
            return
        route = record.path.partition("?")[0]
        if route == "/refuse":
            self.conn.reset_stream(sid, ErrorCodes.REFUSED_STREAM)
            self.recorder._update(self.index, sid, refused=True, closed=time.monotonic())
            return
        if route == "/goaway":
            self.recorder._update(self.index, sid, refused=True, closed=time.monotonic())
            self._goaway(max((s for s in self.active if s < sid), default=0))
            return
        if route == "/close":
            self.recorder._update(self.index, sid, closed=time.monotonic())
            self.abort = True
            return
        self.requests[sid] = Request(record.method, record.path, headers, b"", "2")
        self.bodies[sid] = bytearray()
        if self.server.goaway_after is not None and self.seen == self.server.goaway_after:
            self._goaway(sid)

    def _goaway(self, last_stream_id: int) -> None:
        """Send GOAWAY(NO_ERROR, last_stream_id) as a raw frame: h2's own
        ``close_connection`` would close its state machine to the streams still to finish."""
        if self.last_stream_id is not None:
            return
        self.last_stream_id = last_stream_id
        self.recorder._goaway(self.index, last_stream_id)
        frame = GoAwayFrame(stream_id=0, last_stream_id=last_stream_id, error_code=0)
        self._queue(frame.serialize())
        # Streams above it whose head arrived before now are refused too.
        for sid in [s for s in self.requests if s > last_stream_id]:
            del self.requests[sid]
            self.bodies.pop(sid, None)
            self.recorder._update(self.index, sid, refused=True, closed=time.monotonic())

    def _start(self, sid: int, request: Request) -> None:
        self.active.add(sid)
        self.recorder._update(self.index, sid, processed=True, body_length=len(request.body))
        worker = threading.Thread(
            target=self._work,
            args=(sid, request),
            name=f"h2-server-{self.server.port}-conn-{self.index}-stream-{sid}",
            daemon=True,
        )
        self.workers.append(worker)
        worker.start()

    def _close_stream(self, sid: int) -> None:
        if sid in self.active:
            self.active.discard(sid)
            self.recorder._update(self.index, sid, closed=time.monotonic())
            self._wake()

    # stream workers ---------------------------------------------------------------

    def _work(self, sid: int, request: Request) -> None:
        reply = plan(request)
        try:
            delay = self.server.response_delay + reply.delay
            if delay and self.ended.wait(delay):
                return
            self._answer(sid, reply)
        except (h2.exceptions.H2Error, KeyError) as exc:
            log.debug("stream %d ended: %r", sid, exc)
        except Exception as exc:
            log.exception("stream %d failed", sid)
            self.server.errors.append(exc)
        finally:
            if reply.fault not in ("/silent", "/half"):  # those stay open to the end
                with self.lock:
                    self._close_stream(sid)

    def _answer(self, sid: int, reply: Reply) -> None:
        if reply.fault == "/silent":
            return
        if reply.fault == "/reset":
            self._headers(sid, 200, [("content-type", "text/plain")], end=False)
            with self.lock:
                self.conn.reset_stream(sid, ErrorCodes.INTERNAL_ERROR)
            self._wake()
            return
        if reply.fault == "/half":
            headers = [("content-length", str(HALF_BODY_DECLARED))]
            self._headers(sid, 200, headers, end=False)
            self._data(sid, b"h" * HALF_BODY_SENT, end=False)
            return
        if reply.chunks is not None:
            self._headers(sid, reply.status, reply.headers, end=False)
            for i, chunk in enumerate(reply.chunks):
                if i and self.ended.wait(STREAM_PAUSE_SECONDS):
                    return
                self._data(sid, chunk, end=False)
            self._data(sid, b"", end=True)
            return
        headers = [*reply.headers, ("content-length", str(len(reply.body)))]
        body = b"" if reply.head_only else reply.body
        self._headers(sid, reply.status, headers, end=not body)
        if body:
            self._data(sid, body, end=True)

    def _headers(self, sid: int, status: int, headers: list[tuple[str, str]], end: bool) -> None:
        with self.lock:
            self.conn.send_headers(sid, [(":status", str(status)), *headers], end_stream=end)
        self._wake()

    def _data(self, sid: int, data: bytes, end: bool) -> bool:
        """Send *data* within the client's flow-control windows; False if the stream or
        the connection went away first."""
        if not data:
            with self.lock:
                if self._window(sid) < 0 or self.ended.is_set():
                    return False
                self.conn.send_data(sid, b"", end_stream=end)
            self._wake()
            return True
        view = memoryview(data)
        offset = 0
        deadline = time.monotonic() + HOLD_SECONDS
        while offset < len(data):
            with self.lock:
                if not self.lock.wait_for(
                    lambda: self.ended.is_set() or self._window(sid) != 0,
                    timeout=max(0.0, deadline - time.monotonic()),
                ):
                    return False
                window = self._window(sid)
                if self.ended.is_set() or window < 0:
                    return False
                size = min(window, self.conn.max_outbound_frame_size, len(data) - offset)
                last = end and offset + size == len(data)
                chunk = bytes(view[offset : offset + size])
                self.conn.send_data(sid, chunk, end_stream=last)
                offset += size
            self._wake()
        return True

    def _window(self, sid: int) -> int:
        """The window to send on *sid* (-1 if the stream is closed)."""
        try:
            return int(self.conn.local_flow_control_window(sid))
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
            return -1


# -- HTTP/1.1 ---------------------------------------------------------------------------


class _H1Connection:
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
        if reply.fault == "/half":
            self._send_head(200, [("content-length", str(HALF_BODY_DECLARED))])
            self.sock.sendall(b"h" * HALF_BODY_SENT)
            self.closing.wait(HOLD_SECONDS)
            return False
        connection = [] if keep_alive else [("connection", "close")]
        if reply.chunks is not None:
            self._send_head(reply.status, [*reply.headers, ("transfer-encoding", "chunked")])
            for i, chunk in enumerate(reply.chunks):
                if i and self.closing.wait(STREAM_PAUSE_SECONDS):
                    return False
                self.sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.sock.sendall(b"0\r\n\r\n")
            return keep_alive
        headers = [*reply.headers, ("content-length", str(len(reply.body))), *connection]
        self._send_head(reply.status, headers)
        if not reply.head_only:
            self.sock.sendall(reply.body)
        return keep_alive
