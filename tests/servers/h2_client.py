"""A raw HTTP/2 client on the ``h2`` state machine, to test the servers frame by frame.

``RawH2Client(port, ca_bundle)`` connects over TLS (ALPN ``h2`` unless told otherwise),
sends requests with :meth:`request` and reads with :meth:`run_until`, which records per
stream the status, headers, body and any RST_STREAM, plus the GOAWAY and whether the peer
closed. Everything is bounded by explicit timeouts; single-threaded by design.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from h2.connection import ConnectionState
from hyperframe.frame import GoAwayFrame

__all__ = ["RawH2Client", "StreamResult"]


@dataclass
class StreamResult:
    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    ended: bool = False
    reset: int | None = None  # the RST_STREAM error code


class RawH2Client:
    def __init__(
        self,
        port: int,
        ca_bundle: str,
        *,
        alpn: Iterable[str] = ("h2",),
        timeout: float = 5.0,
    ) -> None:
        context = ssl.create_default_context(cafile=ca_bundle)
        context.set_alpn_protocols(list(alpn))
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        # Without it, Nagle holds a second small request for the server's delayed ACK.
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
        except BaseException:
            raw.close()
            raise
        self.alpn = self.sock.selected_alpn_protocol()
        self.port = port
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        # h2 (4.4) moves its whole state machine to CLOSED on any GOAWAY, after which the
        # HEADERS and DATA of streams up to last_stream_id raise ProtocolError; RFC 9113
        # 6.8 lets those streams finish, so reopen it (this client sends nothing new).
        receive_goaway = self.conn._frame_dispatch_table[GoAwayFrame]

        def keep_open(frame: GoAwayFrame) -> Any:
            result = receive_goaway(frame)
            self.conn.state_machine.state = ConnectionState.CLIENT_OPEN
            return result

        self.conn._frame_dispatch_table[GoAwayFrame] = keep_open
        self.streams: dict[int, StreamResult] = {}
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.closed = False
        #: Every event in arrival order: ``(event class name, stream id or 0)``.
        self.events: list[tuple[str, int]] = []
        self.settings: dict[int, int] = {}
        if self.alpn == "h2":
            self.conn.initiate_connection()
            self._flush()

    def __enter__(self) -> RawH2Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.closed:
            self.sock.sendall(data)

    def request(
        self,
        path: str,
        *,
        method: str = "GET",
        body: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
    ) -> int:
        """Open a stream for *path* and send the request; a *body* goes out within the
        server's flow-control windows, reading frames while it waits for them (bounded;
        it stops early if the stream is reset or ended)."""
        sid: int = self.conn.get_next_available_stream_id()
        head = [
            (":method", method),
            (":authority", f"127.0.0.1:{self.port}"),
            (":scheme", "https"),
            (":path", path),
            *headers,
        ]
        if body:
            head.append(("content-length", str(len(body))))
        self.conn.send_headers(sid, head, end_stream=not body)
        self.streams[sid] = StreamResult()
        self._flush()
        offset = 0
        while offset < len(body):
            if not self.run_until(lambda c: c._window(sid) != 0):
                break  # no window within the timeout: the test sees the body unsent
            window = self._window(sid)
            if window < 0:
                break  # the stream was reset
            size = min(window, self.conn.max_outbound_frame_size, len(body) - offset)
            last = offset + size == len(body)
            self.conn.send_data(sid, body[offset : offset + size], end_stream=last)
            self._flush()
            offset += size
        return sid

    def _window(self, sid: int) -> int:
        if self.closed or self.streams[sid].reset is not None or self.streams[sid].ended:
            return -1
        try:
            return int(self.conn.local_flow_control_window(sid))
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            return -1

    def run_until(self, done: Callable[[RawH2Client], bool], timeout: float = 5.0) -> bool:
        """Read and handle frames until ``done(self)``, EOF, or *timeout*."""
        deadline = time.monotonic() + timeout
        while not done(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.closed:
                return done(self)
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return done(self)
            except (ConnectionError, ssl.SSLError):
                data = b""
            if not data:
                self.closed = True
                continue
            for event in self.conn.receive_data(data):
                self._on_event(event)
            self._flush()
        return True

    def _on_event(self, event: h2.events.Event) -> None:
        self.events.append((type(event).__name__, getattr(event, "stream_id", 0) or 0))
        if isinstance(event, h2.events.ResponseReceived):
            result = self.streams[event.stream_id]
            result.headers = [(str(k), str(v)) for k, v in event.headers or ()]
            result.status = int(dict(result.headers)[":status"])
        elif isinstance(event, h2.events.DataReceived):
            self.streams[event.stream_id].body += event.data
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self.streams[event.stream_id].ended = True
        elif isinstance(event, h2.events.StreamReset):
            self.streams[event.stream_id].reset = int(event.error_code)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            for code, setting in event.changed_settings.items():
                self.settings[int(code)] = setting.new_value

    def done(self, *sids: int) -> Callable[[RawH2Client], bool]:
        """A predicate for :meth:`run_until`: every stream in *sids* ended or was reset."""
        return lambda c: all(c.streams[s].ended or c.streams[s].reset is not None for s in sids)
