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
server's SETTINGS; a stream beyond ``max_concurrent_streams`` gets RST_STREAM
REFUSED_STREAM and is recorded as refused, where h2 alone would end the connection),
``goaway_after=N`` (when the Nth stream's request head arrives, send GOAWAY(NO_ERROR,
last_stream_id=that stream) before answering it, as nginx does with ``keepalive_requests
N``; finish the streams up to it, never process the later ones (recorded as refused),
then close), ``response_delay`` (seconds before each answer, per stream, without holding
up the others), ``hold_settings`` (seconds the server holds back everything it would send,
its SETTINGS first, unless a request arrives sooner: ``requests_before_settings`` says,
per connection, whether the client sent one without waiting for them).

Fault routes: ``/reset`` RST_STREAM(INTERNAL_ERROR) after the response headers,
``/refuse`` RST_STREAM(REFUSED_STREAM) before any processing, ``/goaway`` GOAWAY whose
last_stream_id is below this stream (the highest earlier stream taken for processing, or
0) then close once the earlier streams finished, ``/close`` close the TCP connection (no
GOAWAY), ``/silent`` never answer, ``/half`` headers declaring 1000 bytes and 100 of them,
then silence, ``/short`` the same 100 bytes then the end of the stream (a malformed
response, RFC 9113 8.1.1; over HTTP/1.1, the end of the connection), ``/upper`` a
response "ok" whose head has a field name in upper case, ``X-Upper`` (malformed over
HTTP/2, RFC 9113 8.2.1; over HTTP/1.1, where names are case-insensitive, a plain response).

The recorder lives in :mod:`servers.h2_recorder`, the HTTP/1.1 side in
:mod:`servers.h2_http11`, the routes in :mod:`servers.routes`; :mod:`servers.h2_client` is
a raw h2 client to test it frame by frame.

Every wait is bounded: a connection lives at most ``HOLD_SECONDS`` and ends within
~0.1 s of ``close()``; workers wait on the connection's end event, never plain sleep.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from hpack import NeverIndexedHeaderTuple
from hyperframe.frame import GoAwayFrame

from .h2_http11 import H1Connection
from .h2_recorder import ConnectionRecord, Recorder, StreamRecord
from .raw import HOLD_SECONDS, RawServer
from .routes import HALF_BODY_DECLARED, HALF_BODY_SENT, Reply, Request, plan

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
_LINGER_SECONDS = 2.0


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
        hold_settings: float = 0.0,
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
        self.hold_settings = hold_settings
        #: Per connection, in accept order, with ``hold_settings``: whether a request
        #: arrived while the server still held its connection preface back.
        self.requests_before_settings: list[bool] = []
        self.recorder = Recorder()
        self._raw = RawServer(self._serve)
        self._live: set[ssl.SSLSocket] = set()
        self._live_lock = threading.Lock()

    def start(self) -> H2Server:
        self._raw.start()
        return self

    def close(self) -> None:
        # The connection threads own TLS sockets RawServer cannot see (wrap_socket
        # detaches the accepted one): shut them down so a blocked read returns at once.
        with self._live_lock:
            live = list(self._live)
        for tls in live:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(tls, socket.SHUT_RDWR)
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
        with self._live_lock:
            self._live.add(tls)
        try:
            with tls:
                alpn = tls.selected_alpn_protocol()
                if alpn == "h2":
                    index = self.recorder._connection(alpn, "2")
                    _H2Connection(self, tls, index, server.closing).run()
                else:
                    index = self.recorder._connection(alpn, "1.1")
                    H1Connection(self, tls, index, server.closing).run()
                self.recorder._closed(index)
        finally:
            with self._live_lock:
                self._live.discard(tls)


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
        # Headers as the client sent them: h2's normalisation would turn every cookie
        # field into a never-indexed one, hiding what the client chose (recorded in
        # StreamRecord.never_indexed); cookie crumbs are joined in _on_request instead.
        config = h2.config.H2Configuration(
            client_side=False, header_encoding="utf-8", normalize_inbound_headers=False
        )
        self.conn = h2.connection.H2Connection(config=config)
        # h2 closes its whole state machine on a GOAWAY from the client, after which the
        # answers to streams still open would raise; RFC 9113 6.8 lets them finish.
        receive_goaway = self.conn._frame_dispatch_table[GoAwayFrame]

        def keep_open(frame: GoAwayFrame) -> Any:
            result = receive_goaway(frame)
            self.conn.state_machine.state = h2.connection.ConnectionState.SERVER_OPEN
            return result

        self.conn._frame_dispatch_table[GoAwayFrame] = keep_open
        self.lock = threading.Condition(threading.RLock())
        self.out = bytearray()
        self.wake_r, self.wake_w = socket.socketpair()
        # Never blocks: a worker wakes the connection thread after every DATA frame, some
        # of them holding the lock the connection thread waits for; a blocking send into a
        # full waker was a deadlock (a 30 MB echo on a loaded machine). A full waker wakes
        # the connection thread anyway.
        self.wake_w.setblocking(False)
        self.workers: list[threading.Thread] = []
        self.requests: dict[int, Request] = {}  # streams whose head arrived, body pending
        self.bodies: dict[int, bytearray] = {}
        self.seen = 0  # streams opened by the client on this connection
        self.highest = 0  # highest stream id opened by the client
        self.last_stream_id: int | None = None  # set once GOAWAY is sent
        self.active: set[int] = set()  # processed streams not finished yet
        self.abort = False  # /close: drop the connection now
        self.accepted: set[int] = set()  # streams taken for processing (head arrived)
        #: hold_settings: nothing is written (our SETTINGS first) until this time passes
        #: or a request arrives.
        self.holding = server.hold_settings > 0
        self.hold_until = time.monotonic() + server.hold_settings

    # output, under self.lock --------------------------------------------------------

    def _queue(self, raw: bytes = b"") -> None:
        self.out += self.conn.data_to_send()
        self.out += raw

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # BlockingIOError: full, a wake is pending
            self.wake_w.send(b"x")

    def _flush(self) -> None:
        if self.holding:
            return
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
                # h2 would make a stream over our SETTINGS_MAX_CONCURRENT_STREAMS a
                # connection error (GOAWAY PROTOCOL_ERROR); RFC 9113 5.1.2 allows a stream
                # error, and a client that opens streams before it has read our SETTINGS
                # deserves REFUSED_STREAM: announce the limit, enforce it ourselves.
                relaxed = dict(self.server.settings)
                relaxed[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = 2**31 - 1
                self.conn.local_settings = h2.settings.Settings(
                    client=False, initial_values=relaxed
                )
            self._flush()
            while not self.closing.is_set() and time.monotonic() < deadline:
                if self.abort or self._finished():
                    break
                if not self.sock.pending():
                    ready, _, _ = select.select([self.sock, self.wake_r], [], [], _POLL_SECONDS)
                    if self.wake_r in ready:
                        self.wake_r.recv(65536)
                    if self.sock not in ready:
                        self._release_settings()
                        self._flush()
                        continue
                self.sock.settimeout(_SEND_SECONDS)
                data = self.sock.recv(65536)
                if not data:
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
                self._release_settings()
                self._flush()
            if not self.abort:
                self._flush()
            if self._finished():
                self._linger()
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

    def _release_settings(self) -> None:
        """hold_settings: stop holding output once a request came or the time is up."""
        if self.holding and (self.seen or time.monotonic() >= self.hold_until):
            self.holding = False
            self.server.requests_before_settings.append(self.seen > 0)

    def _linger(self) -> None:
        """Close gracefully: FIN first, then read and drop what the client still sends
        (frames for streams it opened before our GOAWAY reached it) until it closes too,
        at most ``_LINGER_SECONDS``. Closing with unread data would send an RST, and the
        client could lose the last answers still in its receive buffer."""
        socket.socket.shutdown(self.sock, socket.SHUT_WR)
        deadline = time.monotonic() + _LINGER_SECONDS
        while not self.closing.is_set() and time.monotonic() < deadline:
            if not self.sock.pending():
                ready, _, _ = select.select([self.sock], [], [], _POLL_SECONDS)
                if not ready:
                    continue
            if not self.sock.recv(65536):
                return

    def _finished(self) -> bool:
        """After a GOAWAY: every stream up to last_stream_id is done."""
        with self.lock:
            last = self.last_stream_id
            if last is None or self.active:
                return False
            # A stream up to last_stream_id whose body is still arriving is not done.
            return not any(sid <= last for sid in self.requests)

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
        elif isinstance(event, h2.events.ConnectionTerminated) and self.last_stream_id is None:
            # The client is going away: answer in kind, finish what is open, then close.
            self._goaway(self.highest)

    def _on_request(self, event: h2.events.RequestReceived) -> None:
        sid = event.stream_id
        fields = list(event.headers or ())
        never_indexed = frozenset(
            str(field[0]) for field in fields if isinstance(field, NeverIndexedHeaderTuple)
        )
        # RFC 9113 8.2.3: cookie crumbs are joined into one field, last (as h2 does).
        headers = [(str(k), str(v)) for k, v in fields if k != "cookie"]
        crumbs = [str(v) for k, v in fields if k == "cookie"]
        if crumbs:
            headers.append(("cookie", "; ".join(crumbs)))
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
            never_indexed=never_indexed,
            opened=time.monotonic(),
        )
        self.recorder._stream(record)
        if self.last_stream_id is not None and sid > self.last_stream_id:
            # Above the GOAWAY's last_stream_id: never processed (RFC 9113 6.8).
            self.recorder._update(self.index, sid, refused=True, closed=time.monotonic())
            return
        route = record.path.partition("?")[0]
        limit = self.server.settings.get(h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS)
        # h2's count, which includes this stream: the streams RFC 9113 5.1.2 counts (open
        # or half-closed), not the workers' own bookkeeping, which lags a stream the
        # client already saw end.
        over = limit is not None and self.conn.open_inbound_streams > limit
        if route == "/refuse" or over:
            self.conn.reset_stream(sid, ErrorCodes.REFUSED_STREAM)
            self.recorder._update(self.index, sid, refused=True, closed=time.monotonic())
            return
        if route == "/goaway":
            self.recorder._update(self.index, sid, refused=True, closed=time.monotonic())
            self._goaway(max((s for s in self.accepted if s < sid), default=0))
            return
        if route == "/close":
            self.recorder._update(self.index, sid, closed=time.monotonic())
            self.abort = True
            return
        self.accepted.add(sid)
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
        if reply.fault == "/short":
            headers = [("content-length", str(HALF_BODY_DECLARED))]
            self._headers(sid, 200, headers, end=False)
            self._data(sid, b"h" * HALF_BODY_SENT, end=True)
            return
        if reply.fault == "/upper":
            with self.lock:  # h2 would refuse to send it, or send it in lower case
                config = self.conn.config
                config.validate_outbound_headers = config.normalize_outbound_headers = False
                try:
                    head = [(":status", "200"), ("X-Upper", "1"), ("content-length", "2")]
                    self.conn.send_headers(sid, head)
                finally:
                    config.validate_outbound_headers = config.normalize_outbound_headers = True
            self._data(sid, b"ok", end=True)
            return
        if reply.chunks is not None:
            self._headers(sid, reply.status, reply.headers, end=False)
            for i, chunk in enumerate(reply.chunks):
                if i and self.ended.wait(reply.pause):
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
        offset = widest = 0
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
                if window > widest:
                    widest = window
                    self.recorder._update(self.index, sid, widest_window=widest)
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
