"""HTTP/2 behind requests: urllib3's HTTPS pool, whose "connections" are streams.

requests talks to urllib3's pool (``urlopen``), urllib3's pool to connection objects
(``connect``, ``request``, ``getresponse``, ``close``). :class:`H2HTTPSConnectionPool`
keeps urllib3's ``urlopen`` (its retries, redirects-off, timeouts and errors, exactly as
over HTTP/1.1) and hands it a :class:`H2Slot` per request instead of a connection from
its queue: one request on one stream of an :class:`~keepwarm._upstream.h2conn.H2Connection`
the pool shares between every thread, within the server's stream limit. The response is
urllib3's own ``HTTPResponse`` over the stream (:class:`H2Body`), so requests decodes,
streams, extracts cookies and closes it as any other.

The protocol is chosen by ALPN, per origin: the pool's TLS context offers ``h2`` and
``http/1.1`` (:func:`keepwarm._upstream.tls.context_for` with ``http2=True``); a server
that picks HTTP/1.1 answers that request on the connection just opened, and the pool
becomes an ordinary keepwarm HTTP/1.1 pool for good, that connection the first in its
queue (:meth:`H2HTTPSConnectionPool._switch_to_http1`).

What the slot does that urllib3 cannot know to do (RFC 9113): a stream the server refused
without processing it (GOAWAY above it, REFUSED_STREAM) is sent again on another
connection, whatever the method and whatever ``max_retries`` says: like opening a new
connection, this is transport work, not a retry of a request the server saw. A stream on
a reused connection that died before any answer is resent once under the stale-connection
rule of HTTP/1.1 (``pool._request_with_stale_retry``).
"""

from __future__ import annotations

import contextlib
import functools
import http
import threading
import time
import weakref
from collections.abc import Generator, Iterable, Iterator
from typing import Any, Final

import urllib3
from hpack import NeverIndexedHeaderTuple
from urllib3 import HTTPHeaderDict
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.exceptions import ClosedPoolError, EmptyPoolError
from urllib3.response import HTTPResponse
from urllib3.util import SKIP_HEADER
from urllib3.util.request import body_to_chunks

from keepwarm._retry import IDEMPOTENT_METHODS
from keepwarm._telemetry import Timings, attach_timings, new_timings
from keepwarm._upstream.connection import (
    InstrumentedHTTPSConnection,
    connection_closed,
    header_dict,
    log,
)
from keepwarm._upstream.h2conn import (
    ConnectionLost,
    H2Connection,
    StreamRefused,
)
from keepwarm._upstream.pool import _InstrumentedPool, _WatchedPool

__all__ = ["H2HTTPSConnectionPool", "H2Slot"]

_perf = time.perf_counter
_monotonic = time.monotonic

#: Refusals of one request by connections that served nothing else (GOAWAY naming no
#: stream, REFUSED_STREAM) after which the refusal is raised: a server that refuses
#: everything is not in a transient state. Refusals by a GOAWAY that names a last
#: stream (the server working, and rotating its connection) count towards
#: :data:`_RESENDS_AT_MOST` only.
_RESENDS: Final = 5
_RESENDS_AT_MOST: Final = 100
#: Headers that mean something only on an HTTP/1.1 connection (RFC 9113 8.2.2).
_CONNECTION_HEADERS: Final = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host"}
)
#: Sent as HPACK never-indexed fields (RFC 7541 7.1.3), out of the compression context
#: where a party adding guesses to the same connection could recover them: credentials,
#: and cookies short enough to guess. h2 applies this rule when it normalises headers,
#: which keepwarm turns off (requests validated them already); the same rule as h2's
#: (and Firefox's, nghttp2's).
_NEVER_INDEXED: Final = frozenset({"authorization", "proxy-authorization"})
_SHORT_COOKIE: Final = 20
_BLOCKSIZE: Final = 1 << 16
#: What urllib3 sends as User-Agent for a request without one (its
#: ``_get_default_user_agent()``, spelled with the public version).
_DEFAULT_USER_AGENT: Final = f"python-urllib3/{urllib3.__version__}".encode()  # type: ignore[attr-defined]


def _replayable(body: Any) -> bool:
    return body is None or isinstance(body, (bytes, bytearray, str))


class _Origin:
    """The HTTP/2 connections of one pool (one origin and TLS setting), and the place to
    wait for a free stream."""

    def __init__(self, pool: H2HTTPSConnectionPool) -> None:
        self._pool = weakref.proxy(pool)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._conns: list[H2Connection] = []
        #: Connections that take no new streams but still carry some (closed by close()).
        self._retiring: weakref.WeakSet[H2Connection] = weakref.WeakSet()
        self._opening = 0
        self._closed = False
        self.http1 = False

    def acquire(self, slot: H2Slot, timeout: float | None) -> H2Connection | Any:
        """A connection with a stream reserved for ``slot``, or, where the server chose
        HTTP/1.1, a connected urllib3 connection for this one request."""
        pool = self._pool
        state = pool._keepwarm
        wait = state.policy.wait if pool.block else None
        limit = None if wait is None else _monotonic() + wait
        pending: H2Connection | None = None
        with self._cond:
            while True:
                if self._closed:
                    raise ClosedPoolError(pool, "Pool is closed.")
                if self.http1:
                    break
                conn, pending = self._reserve()
                if conn is not None:
                    return conn
                if pending is not None:
                    break
                # Room for another connection: below pool_maxsize, or beyond it when the
                # pool does not block (as HTTP/1.1 opens an extra connection then).
                room = len(self._conns) < pool._h2_max_connections or not pool.block
                if not self._opening and room:
                    self._opening += 1
                    break
                left = None if limit is None else limit - _monotonic()
                if left is not None and left <= 0:
                    raise EmptyPoolError(
                        pool,
                        "every stream of the pool's HTTP/2 connections is busy "
                        f"({len(self._conns)} connections, pool_maxsize)",
                    )
                self._cond.wait(left if left is not None else timeout)
        if pending is not None:
            # A connection just opened, its first stream out, the server's stream limit
            # not known yet: wait for it there, then look again.
            with contextlib.suppress(ConnectionLost):  # the next look drops that one
                pending.wait_ready(timeout)
            return self.acquire(slot, timeout)
        if self.http1:
            # Learned while this request waited: an HTTP/1.1 connection of the pool's.
            return pool._http1_conn()
        opened: H2Connection | None = None
        try:
            result = self._open(slot, timeout)
            if isinstance(result, H2Connection):
                opened = result
            return result
        finally:
            with self._cond:
                self._opening -= 1
                if opened is not None:
                    self._conns.append(opened)
                self._cond.notify_all()

    def _reserve(self) -> tuple[H2Connection | None, H2Connection | None]:
        """A place on a live connection, or else a connection that may have places once
        the server's SETTINGS arrive; connections that can no longer take streams leave
        the list (closed once their last stream ends)."""
        policy = self._pool._keepwarm.policy
        now = _monotonic()
        keep: list[H2Connection] = []
        found = pending = None
        for conn in self._conns:
            if conn.active == 0:
                idle = conn.idle_since
                expired = (
                    policy.keepalive_expiry is not None
                    and idle is not None
                    and now - idle > policy.keepalive_expiry
                ) or (policy.max_age is not None and now - conn.created > policy.max_age)
                if expired or not conn.check():
                    conn.close()
                    self._count("idle_expired" if expired else "dropped")
                    continue
            if not conn.usable():
                if conn.active == 0:
                    conn.close()
                else:
                    # Retiring: it closes itself when its last stream ends, or here.
                    self._retiring.add(conn)
                continue
            keep.append(conn)
            if found is None and conn.reserve():
                found = conn
            elif pending is None and conn.awaiting_settings:
                pending = conn
            elif conn.max_streams == 0 and conn.active == 0:
                pool = self._pool
                raise StreamRefused(
                    f"the server at {pool.host}:{pool.port} accepts no HTTP/2 streams "
                    f"(SETTINGS_MAX_CONCURRENT_STREAMS=0)"
                )
        self._conns = keep
        return found, pending

    def _count(self, name: str) -> None:
        counters = self._pool._keepwarm.counters
        if counters is not None:
            counters.add(name)

    def _open(self, slot: H2Slot, timeout: float | None) -> H2Connection | Any:
        pool = self._pool
        conn = pool._new_conn()
        state = conn._keepwarm
        state.counters = pool._keepwarm.counters
        state.timings = slot.timings
        conn.timeout = timeout
        conn.connect()
        sock: Any = conn.sock
        if sock.selected_alpn_protocol() != "h2":
            # The server speaks HTTP/1.1: this request goes on this connection, and the
            # pool becomes an HTTP/1.1 pool (the connection joins its queue after it).
            self.http1 = True
            pool._switch_to_http1(conn)
            log.debug(
                "http2.fallback origin=%s:%s alpn=%s",
                pool.host,
                pool.port,
                sock.selected_alpn_protocol(),
            )
            return conn
        verified = conn.is_verified
        conn.sock = None  # the socket is the HTTP/2 connection's now
        # The connection's close is the HTTP/2 connection's now: it counts it down.
        h2conn = H2Connection(
            sock,
            f"{pool.host}:{pool.port}",
            on_release=self._released,
            on_close=functools.partial(connection_closed, state, "2"),
        )
        h2conn.verified = verified  # type: ignore[attr-defined]
        # The first stream goes out with the preface, without waiting for the server's
        # SETTINGS (RFC 9113 3.4): HTTP/1.1 sends its request with the TLS handshake's
        # last flight too. Later streams wait for the server's limit (_reserve).
        if not h2conn.reserve():  # pragma: no cover  # a new connection takes one
            h2conn.close()
            raise StreamRefused(f"the HTTP/2 connection to {pool.host}:{pool.port} ended at once")
        self._count("http2_connections")
        log.debug("http2.connected origin=%s:%s", pool.host, pool.port)
        return h2conn

    def _released(self, conn: H2Connection) -> None:
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            conns = [*self._conns, *self._retiring]
            self._conns = []
            self._retiring.clear()
            self._cond.notify_all()
        for conn in conns:
            conn.close()


class _HeaderMessage:
    """What requests and http.cookiejar read of ``http.client.HTTPResponse.msg``: the
    ``in`` test and ``get_all`` (``Set-Cookie``), over the response's header dict; an
    email ``Message`` built per response for it would cost more than the lookup."""

    __slots__ = ("_headers",)

    def __init__(self, headers: HTTPHeaderDict) -> None:
        self._headers = headers

    def __contains__(self, name: object) -> bool:
        return name in self._headers

    def get_all(self, name: str, failobj: Any = None) -> Any:
        values = self._headers.getlist(name)
        return values if values else failobj

    def get(self, name: str, failobj: Any = None) -> Any:
        return self._headers.get(name, failobj)

    def items(self) -> list[tuple[str, str]]:
        return list(self._headers.iteritems())


class H2StreamedResponse(HTTPResponse):
    """urllib3's ``HTTPResponse`` for an HTTP/2 body of unknown length (no
    Content-Length: a stream of events, say), whose ``stream()`` (requests'
    ``iter_content`` and ``iter_lines``) hands each piece over as it arrives.

    Over HTTP/1.1 such a body is chunked, and urllib3 hands each chunk over as it comes;
    its ``stream()`` of any other body blocks until ``amt`` bytes arrived, which for
    ``iter_lines()`` (512) holds a line of server-sent events back until more follow."""

    def stream(
        self, amt: int | None = 2**16, decode_content: bool | None = None
    ) -> Generator[bytes, None, None]:
        while True:
            data = self.read1(amt, decode_content=decode_content)
            if not data:
                return
            yield data


class H2Body:
    """The response body of one stream, as urllib3's ``HTTPResponse`` reads a body (and
    as requests reads ``_original_response.msg`` for cookies)."""

    version = 20

    def __init__(
        self, slot: H2Slot, status: int, headers: HTTPHeaderDict, whole: bytes | None = None
    ) -> None:
        self._slot = slot
        self.status = status
        self.reason = _reason(status)
        self._headers = headers
        self._done = False
        self._closed = False
        #: The whole body, when the stream had ended by the time its headers were read:
        #: served from here, without the connection.
        self._whole = whole
        #: read(amt) returns amt bytes unless the body ends first when its length is
        #: known, as over HTTP/1.1; otherwise what has arrived (H2Connection.read).
        self._fill = "content-length" in headers

    @property
    def msg(self) -> _HeaderMessage:
        return _HeaderMessage(self._headers)

    def info(self) -> _HeaderMessage:
        return self.msg

    def read(self, amt: int | None = None) -> bytes:
        return self._read(amt, self._fill)

    def read1(self, amt: int | None = None) -> bytes:
        """What has arrived, up to ``amt`` (at least one byte unless the body ended)."""
        return self._read(amt, False)

    def _read(self, amt: int | None, fill: bool) -> bytes:
        if self._done or self._closed:
            return b""
        if amt is not None and amt <= 0:
            return b""
        whole = self._whole
        if whole is not None:
            if amt is None or amt >= len(whole):
                self._whole = None
                self._done = True
                return whole
            self._whole = whole[amt:]
            return whole[:amt]
        data = self._slot._conn_read(amt, fill)
        if not data or (amt is None):
            self._done = True
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def isclosed(self) -> bool:
        return self._closed or self._done

    @property
    def closed(self) -> bool:
        return self.isclosed()

    @property
    def fp(self) -> Any:
        return None if self.isclosed() else self

    def close(self) -> None:
        self._closed = True

    def __del__(self) -> None:
        # A response dropped unread and unclosed: its stream's place goes back. Deferred
        # to the connection's next use: the collector may run this in a thread that holds
        # the connection's (or the counters') lock.
        slot = self._slot
        if not slot._released:
            slot._released = True
            conn, stream = slot._conn, slot._stream
            if conn is not None and stream is not None:
                conn.abandon(stream, slot._pool._keepwarm.counters)

    def readable(self) -> bool:
        return True

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        raise OSError("an HTTP/2 response body has no file descriptor of its own")


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


class _ReadTimeout:
    """What the deadline-bounded body read (``session._read_body_by_deadline``) takes for
    the socket: its timeout is the stream's read timeout."""

    __slots__ = ("_slot",)

    def __init__(self, slot: H2Slot) -> None:
        self._slot = slot

    def gettimeout(self) -> float | None:
        return self._slot.timeout

    def settimeout(self, value: float | None) -> None:
        self._slot.timeout = value


class H2Slot:
    """What urllib3's pool takes for a connection: one request, on one stream.

    urllib3 calls ``connect`` (through ``_validate_conn``), ``request``, ``getresponse``
    and, on errors, ``close``; the response calls ``close`` when closed, and the pool's
    ``_put_conn`` (``release``) when done with.
    """

    proxy = None
    proxy_is_verified = None
    has_connected_to_proxy = False

    def __init__(self, pool: H2HTTPSConnectionPool, timings: Timings | None) -> None:
        self._pool = pool
        self.host = pool.host
        self.port = pool.port
        self._timeout: float | None = None
        self.timings = timings
        self._conn: H2Connection | None = None
        self._http1: Any = None
        self._stream: int | None = None
        self._request: tuple[str, str, Any, Any] | None = None
        self._connect_timeout: float | None = None
        self._reused = False
        self._stale_resent = False
        self._refusals = 0
        self._resends = 0
        self._sent_at = 0.0
        self._released = False
        self.sock: Any = _ReadTimeout(self)

    # What urllib3 reads --------------------------------------------------------------

    @property
    def timeout(self) -> float | None:
        return self._timeout

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        # urllib3 sets the connect timeout, then the read timeout before getresponse.
        self._timeout = value
        if self._http1 is not None:
            self._http1.timeout = value

    @property
    def is_closed(self) -> bool:
        return self._conn is None and self._http1 is None

    @property
    def is_connected(self) -> bool:
        return not self.is_closed

    @property
    def is_verified(self) -> bool:
        if self._http1 is not None:
            return bool(self._http1.is_verified)
        return bool(getattr(self._conn, "verified", False))

    def connect(self) -> None:
        self._connect_timeout = self.timeout
        self._attach(self._pool._h2_origin.acquire(self, self.timeout))

    def _attach(self, got: Any) -> None:
        if isinstance(got, H2Connection):
            self._conn = got
            self._reused = got.streams_opened > 0
        else:
            self._http1 = got
            got.timeout = self._timeout

    def request(
        self,
        method: str,
        url: str,
        body: Any = None,
        headers: Any = None,
        *,
        chunked: bool = False,
        preload_content: bool = True,
        decode_content: bool = True,
        enforce_content_length: bool = True,
    ) -> None:
        if self.is_closed:
            self.connect()
        self._request = (method, url, body, headers)
        if self._http1 is not None:
            self._http1.request(
                method,
                url,
                body,
                headers,
                chunked=chunked,
                preload_content=preload_content,
                decode_content=decode_content,
                enforce_content_length=enforce_content_length,
            )
            return
        try:
            self._send()
        except StreamRefused as refused:
            self._resend_after_refusal(refused)

    def getresponse(self) -> HTTPResponse:
        while True:  # bounded: every pass resends, and resends are counted
            if self._http1 is not None:
                return self._http1.getresponse()  # type: ignore[no-any-return]
            conn, stream = self._conn, self._stream
            assert conn is not None and stream is not None
            try:
                block, body = conn.response_headers(stream, self.timeout)
            except StreamRefused as refused:
                self._resend_after_refusal(refused)
            except ConnectionLost:
                if not self._stale():
                    raise
                self._resend_stale()
            else:
                return self._response(block, body)

    def close(self) -> None:
        """urllib3 gives up on this request (an error) or the response was closed: the
        stream is reset if unfinished, its place given back. An HTTP/1.1 connection is
        closed and stays with the slot: urllib3 returns its place to the pool (its
        ``_put_conn(None)`` after an error; the response's ``release_conn`` otherwise)."""
        if self._http1 is not None:
            self._http1.close()
        self._finish()

    def release(self) -> None:
        """Back from the response (urllib3's ``_put_conn``)."""
        http1, self._http1 = self._http1, None
        self._finish()
        if http1 is not None:
            self._pool._put_http1(http1)

    # Inside --------------------------------------------------------------------------

    def _finish(self) -> None:
        if self._released:
            return
        self._released = True
        conn, self._conn = self._conn, None
        if conn is not None:
            if self._stream is not None:
                conn.release(self._stream)
            else:
                conn.unreserve()
        counters = self._pool._keepwarm.counters
        if counters is not None:
            counters.on_checkin()

    def _send(self) -> None:
        conn = self._conn
        assert conn is not None and self._request is not None
        method, url, body, headers = self._request
        counters = self._pool._keepwarm.counters
        block = self._header_block(method, url, headers)
        started = _perf()
        stream = conn.open_stream(block, method, end_stream=body is None)
        self._stream = stream
        if counters is not None:
            counters.on_request(self._reused)
        timings = self.timings
        if timings is not None:
            timings.reused = self._reused
            timings.http_version = "HTTP/2"
            timings.tls_version = conn.tls_version
        if body is not None:
            chunks = body_to_chunks(body, method=method, blocksize=_BLOCKSIZE).chunks
            conn.send_body(stream, _as_bytes(chunks), self.timeout)
        self._sent_at = now = _perf()
        if timings is not None:
            timings.send = now - started

    def _header_block(self, method: str, url: str, headers: Any) -> list[tuple[bytes, bytes]]:
        authority = None
        agent = False
        rest: list[tuple[bytes, bytes]] = []
        for name, value in (headers or {}).items():
            key = name.lower() if isinstance(name, str) else name.decode("latin-1").lower()
            if key == "user-agent":
                agent = True  # given, or SKIP_HEADER: urllib3 adds its own only if absent
            if value is SKIP_HEADER or value == SKIP_HEADER:
                continue
            # RFC 9113 8.2.1: no whitespace around a value (HTTP/1.1 servers strip it as
            # optional whitespace; a strict HTTP/2 server rejects the request).
            data = (value.encode("latin-1") if isinstance(value, str) else bytes(value)).strip(
                b" \t"
            )
            if key == "host":
                authority = data
                continue
            if key in _CONNECTION_HEADERS or (key == "te" and data.lower() != b"trailers"):
                continue
            if key in _NEVER_INDEXED or (key == "cookie" and len(data) < _SHORT_COOKIE):
                rest.append(NeverIndexedHeaderTuple(key.encode("latin-1"), data))
            else:
                rest.append((key.encode("latin-1"), data))
        if not agent:
            # urllib3 sends its own User-Agent when the request has none (requests drops a
            # header set to None: headers={"User-Agent": None}); so does HTTP/2 here.
            rest.append((b"user-agent", _DEFAULT_USER_AGENT))
        if authority is None:
            port = self.port
            authority = (self.host if port in (None, 443) else f"{self.host}:{port}").encode(
                "idna" if not self.host.isascii() else "ascii"
            )
        return [
            (b":method", method.encode("ascii")),
            (b":scheme", b"https"),
            (b":authority", authority),
            (b":path", url.encode("latin-1") if url else b"/"),
            *rest,
        ]

    def _response(self, block: list[tuple[bytes, bytes]], whole: bytes | None) -> HTTPResponse:
        status = 0
        fields: list[tuple[str, str]] = []
        for name, value in block:
            if name[:1] == b":":
                if name == b":status":
                    status = int(value)
                continue
            fields.append((name.decode("latin-1"), value.decode("latin-1")))
        headers = header_dict(fields)
        now = _perf()
        wait = now - self._sent_at
        counters = self._pool._keepwarm.counters
        if counters is not None:
            counters.on_response(wait, None)
        body = H2Body(self, status, headers, whole)
        assert self._conn is not None and self._stream is not None
        method, url, _, _ = self._request or ("GET", "/", None, None)
        known = body._fill or method == "HEAD" or status in (204, 304) or whole is not None
        response = (HTTPResponse if known else H2StreamedResponse)(
            body=body,  # type: ignore[arg-type]  # a file object: read(), close()
            headers=headers,
            status=status,
            version=20,
            version_string="HTTP/2",
            reason=body.reason,
            preload_content=False,
            decode_content=False,
            original_response=body,  # type: ignore[arg-type]
            request_method=method,
            request_url=url,
        )
        timings = self.timings
        if timings is not None:
            timings.wait = wait
            timings._headers_at = now
            attach_timings(response, timings)
        return response

    def _conn_read(self, amount: int | None, fill: bool = False) -> bytes:
        conn, stream = self._conn, self._stream
        if conn is None or stream is None:
            return b""
        return conn.read(stream, amount, self.timeout, fill=fill)

    def _stale(self) -> bool:
        """Whether a stream lost with its connection may be sent again: a reused
        connection (it may have died idle), no answer yet, and the HTTP/1.1 rule for what
        was written (pool._request_with_stale_retry)."""
        assert self._request is not None
        method, _, body, _ = self._request
        return (
            self._reused
            and not self._stale_resent
            and self._pool._keepwarm.policy.resend_stale
            and _replayable(body)
            and method.upper() in IDEMPOTENT_METHODS
        )

    def _drop_stream(self) -> None:
        conn, stream = self._conn, self._stream
        self._conn = self._stream = None
        if conn is not None:
            if stream is not None:
                conn.release(stream)
            else:
                conn.unreserve()

    def _resend_stale(self) -> None:
        self._stale_resent = True
        counters = self._pool._keepwarm.counters
        if counters is not None:
            counters.on_stale_resend()
        self._drop_stream()
        log.debug("request.stale_retry origin=%s:%s http2=True", self.host, self.port)
        try:
            self._send_again()
        except StreamRefused as refused:
            self._resend_after_refusal(refused)

    def _resend_after_refusal(self, refused: StreamRefused) -> None:
        """Send the request again on another connection, as long as the server refuses
        it unseen and that is not a server refusing everything (:data:`_RESENDS`)."""
        assert self._request is not None
        body = self._request[2]
        while True:
            self._resends += 1
            if not refused.progress:
                self._refusals += 1
            why = None
            if not _replayable(body):
                why = "and its body is a stream or file that cannot be sent twice"
            elif self._refusals >= _RESENDS or self._resends >= _RESENDS_AT_MOST:
                why = f"refused {self._resends} times"
            if why is not None:
                raise StreamRefused(
                    f"the server refused the request to {self.host}:{self.port} without "
                    f"processing it ({why}): {refused}; it is safe to send again"
                ) from refused
            counters = self._pool._keepwarm.counters
            if counters is not None and self._stream is not None:
                counters.on_refused_resend(self._reused)
            self._drop_stream()
            log.debug("http2.refused_resend origin=%s:%s", self.host, self.port)
            try:
                self._send_again()
                return
            except StreamRefused as again:
                refused = again

    def _send_again(self) -> None:
        """The request on another connection (or stream), as it was first sent."""
        self._attach(self._pool._h2_origin.acquire(self, self._connect_timeout))
        assert self._request is not None
        if self._http1 is not None:
            method, url, body, headers = self._request
            self._http1.request(method, url, body, headers)
            return
        self._send()


def _as_bytes(chunks: Iterable[Any] | None) -> Iterator[bytes]:
    for chunk in chunks or ():
        if isinstance(chunk, str):
            yield chunk.encode("utf-8")
        elif chunk:
            yield bytes(chunk)


class H2HTTPSConnectionPool(_InstrumentedPool, HTTPSConnectionPool):
    """urllib3's HTTPS pool over HTTP/2 where the server offers it.

    Built for every HTTPS origin of an ``http2=True`` transport; one whose TLS context
    does not offer ``h2`` (an origin known to speak HTTP/1.1 only) is an ordinary
    keepwarm pool."""

    ConnectionCls = InstrumentedHTTPSConnection

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        context = self.conn_kw.get("ssl_context")
        self._h2_on = bool(getattr(context, "keepwarm_http2", False))
        self._h2_origin = _Origin(self)
        self._h2_max_connections = max(1, self.pool.maxsize if self.pool is not None else 1)

    def _get_conn(self, timeout: float | None = None) -> Any:
        if not self._h2_on:
            return super()._get_conn(timeout)
        if self.pool is None:
            raise ClosedPoolError(self, "Pool is closed.")
        counters = self._keepwarm.counters
        timings = None
        if counters is not None:
            counters.on_checkout(0.0)
            timings = new_timings(_perf())
        return H2Slot(self, timings)

    def _put_conn(self, conn: Any) -> None:
        if type(conn) is H2Slot:
            conn.release()
        elif conn is not None or not self._h2_on:
            if conn is None and self.pool is not None and self.pool.full():
                # A slot handed out before the pool turned HTTP/1.1 failed: it held no
                # place in the queue to give back.
                return
            super()._put_conn(conn)
        # None while HTTP/2: urllib3 gave up on a slot it closed; the slot gave its
        # stream back then.

    def _make_request(self, conn: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if type(conn) is not H2Slot:
            return super()._make_request(conn, method, url, *args, **kwargs)
        # urllib3's own: the slot resends refused and stale streams itself.
        return super(_WatchedPool, self)._make_request(conn, method, url, *args, **kwargs)  # type: ignore[arg-type]

    def _switch_to_http1(self, conn: Any) -> None:
        """The server chose HTTP/1.1 for this origin: from now on this is an ordinary
        keepwarm pool. ``conn``, the connection that learned it, takes a place in the
        queue (returned by :meth:`_put_http1` after its request), and new connections
        offer only ``http/1.1`` (so a server that adds HTTP/2 later never meets an
        HTTP/1.1 client that offered it)."""
        http1_context = getattr(self.conn_kw.get("ssl_context"), "keepwarm_http1", None)
        if http1_context is not None:
            self.conn_kw["ssl_context"] = http1_context
            conn.ssl_context = http1_context
        queue = self.pool
        if queue is not None:
            with contextlib.suppress(Exception):  # empty: the connection is extra
                queue.get(block=False)
        self._h2_on = False

    def _http1_conn(self) -> Any:
        """A connection from the queue, for a slot whose origin turned HTTP/1.1."""
        conn = super()._get_conn()
        counters = self._keepwarm.counters
        if counters is not None:
            counters.on_checkin()  # the slot counted this checkout already
        return conn

    def _put_http1(self, conn: Any) -> None:
        super()._put_conn(conn)
        counters = self._keepwarm.counters
        if counters is not None:
            counters.on_checkout(0.0)  # the slot counted this checkin already

    def close(self) -> None:
        super().close()
        self._h2_origin.close()
