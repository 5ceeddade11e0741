"""What the HTTP/2 test server saw: connections, streams, refusals, concurrency.

:class:`Recorder` is written by :class:`servers.h2.H2Server`'s connection threads and read
by tests; every reader returns frozen snapshots, and :meth:`Recorder.wait_for` waits,
bounded, for a condition on them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["ConnectionRecord", "Recorder", "StreamRecord"]


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
    #: Names of the fields the client sent HPACK never-indexed (RFC 7541 7.1.3).
    never_indexed: frozenset[str] = frozenset()
    #: The most the client's flow-control windows let the server send at once on this
    #: stream (the smaller of its stream and connection windows), while it sent the body.
    widest_window: int = 0
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
