"""urllib3 connections and pools that count and time what they do.

The connection classes time name resolution, the TCP and TLS handshakes, sending the
request and waiting for the response headers; the pool classes count checkouts (and the
wait for them), connections found dropped before reuse, connections discarded because
the pool was full, and bound the wait for a free connection. Everything is reported to
the :class:`keepwarm._telemetry.HostCounters` of the pool's origin, and each response
carries its :class:`keepwarm._telemetry.Timings` as ``response.kw_timings``.

Events are logged to the ``keepwarm`` logger at DEBUG, named in one scheme like
httpcore's: ``connection.connect_tcp.started/complete/failed``,
``connection.start_tls.complete/failed``, ``connection.reused``, ``pool.dropped``,
``pool.idle_expired``, ``pool.retired``, ``pool.discarded``, ``pool.grown``,
``pool.evicted``, ``request.retry``, ``request.stale_retry``. They carry the
origin and durations only: never headers, query strings or credentials.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import queue
import socket
import ssl
import sys
import time
from typing import TYPE_CHECKING, Any, Final

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ClosedPoolError,
    ConnectTimeoutError,
    EmptyPoolError,
    FullPoolError,
    LocationParseError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.response import BaseHTTPResponse
from urllib3.util.connection import _set_socket_options, allowed_gai_family, is_connection_dropped
from urllib3.util.retry import Retry
from urllib3.util.timeout import _DEFAULT_TIMEOUT

from keepwarm._config import IDEMPOTENT_METHODS, SERVER_KEEPALIVE_SHARE
from keepwarm._telemetry import HostCounters, Telemetry, Timings
from keepwarm._upstream.wire import FastHeadersHTTPResponse, write_request

__all__ = [
    "AUTO_POOL_MAXSIZE_CAP",
    "InstrumentedHTTPConnection",
    "InstrumentedHTTPConnectionPool",
    "InstrumentedHTTPSConnection",
    "InstrumentedHTTPSConnectionPool",
    "log",
    "parse_keep_alive_timeout",
    "socks_pool_classes",
]

log = logging.getLogger("keepwarm")
#: urllib3's own logger, so "Connection pool is full" still reaches those who watch it.
_urllib3_log = logging.getLogger("urllib3.connectionpool")
_perf = time.perf_counter

#: The most connections an ``pool_maxsize="auto"`` pool grows to per origin: one file
#: descriptor each, well inside the common 1024 soft limit even with several origins.
AUTO_POOL_MAXSIZE_CAP: Final = 256


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def parse_keep_alive_timeout(value: str | None) -> float | None:
    """The ``timeout=N`` of a ``Keep-Alive`` response header, in seconds."""
    if not value:
        return None
    for part in value.split(","):
        name, _, number = part.strip().partition("=")
        if name.strip().lower() == "timeout":
            try:
                seconds = float(number.strip())
            except ValueError:
                return None
            return seconds if seconds >= 0 else None
    return None


# Connections ------------------------------------------------------------------------------


def _timed_new_conn(conn: HTTPConnection) -> socket.socket:
    """urllib3's ``HTTPConnection._new_conn`` and ``create_connection``, with the name
    resolution and TCP handshake timed apart (urllib3 does both in one call)."""
    host: str = conn._dns_host
    port = conn.port
    if host.startswith("["):
        host = host.strip("[]")
    try:
        host.encode("idna")
    except UnicodeError:
        raise LocationParseError(f"'{host}', label empty or too long") from None
    origin = f"{conn.host}:{port}"
    started = _perf()
    if log.isEnabledFor(logging.DEBUG):
        log.debug("connection.connect_tcp.started origin=%s", origin)
    try:
        infos = socket.getaddrinfo(host, port, allowed_gai_family(), socket.SOCK_STREAM)
    except socket.gaierror as e:
        log.debug("connection.connect_tcp.failed origin=%s error=name_resolution", origin)
        raise NameResolutionError(conn.host, conn, e) from e
    resolved = _perf()
    error: OSError | None = None
    sock: socket.socket | None = None
    for family, socktype, proto, _canonname, address in infos:
        try:
            sock = socket.socket(family, socktype, proto)
            _set_socket_options(sock, conn.socket_options)
            timeout: Any = conn.timeout
            if timeout is not _DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if conn.source_address:
                sock.bind(conn.source_address)
            sock.connect(address)
            error = None
            break
        except OSError as e:
            error = e
            if sock is not None:
                sock.close()
                sock = None
    if sock is None:
        failure = error or OSError("getaddrinfo returns an empty list")
        log.debug(
            "connection.connect_tcp.failed origin=%s error=%s", origin, type(failure).__name__
        )
        if isinstance(failure, TimeoutError):
            raise ConnectTimeoutError(
                conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})"
            ) from failure
        raise NewConnectionError(
            conn, f"Failed to establish a new connection: {failure}"
        ) from failure
    connected = _perf()
    sys.audit("http.client.connect", conn, conn.host, conn.port)
    timings = getattr(conn, "kw_timings", None)
    if timings is not None:
        timings.dns = None if _is_ip(host) else resolved - started
        timings.connect = connected - resolved
    conn.kw_tcp_done = connected  # type: ignore[attr-defined]
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "connection.connect_tcp.complete origin=%s seconds=%.6f", origin, connected - started
        )
    return sock


def _version_name(version: int) -> str:
    return {9: "HTTP/0.9", 10: "HTTP/1.0", 11: "HTTP/1.1", 20: "HTTP/2"}.get(
        version, f"HTTP/{version}"
    )


if TYPE_CHECKING:
    _ConnectionBase = HTTPConnection
    _PoolBase = HTTPConnectionPool
else:
    _ConnectionBase = _PoolBase = object


class _InstrumentedConnection(_ConnectionBase):
    """What both instrumented connection classes add to urllib3's."""

    response_class = FastHeadersHTTPResponse
    #: Whether connecting includes a TLS handshake (set by the concrete class).
    kw_tls: bool = False
    kw_counters: HostCounters | None = None
    kw_timings: Timings | None = None
    kw_fresh: bool = False
    #: Whether the last request was written whole (urllib3 swallows a reset while
    #: writing, to read an early response; the stale-connection retry needs to know).
    kw_written: bool = False
    kw_idle_since: float | None = None
    kw_connected_at: float = 0.0

    def _new_conn(self) -> socket.socket:
        return _timed_new_conn(self)

    def connect(self) -> None:
        started = _perf()
        try:
            super().connect()
        except Exception as exc:
            if self.kw_tls and log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "connection.start_tls.failed origin=%s:%s error=%s",
                    self.host,
                    self.port,
                    type(exc).__name__,
                )
            raise
        self._kw_after_connect(self.kw_tls, started)

    def request(  # type: ignore[override]  # urllib3's signature, as urllib3 calls it
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
        if self.sock is None:
            # http.client would connect inside request(); connect first so a refused
            # connection is not counted as a request written.
            self.connect()
        started = self._kw_before_request()
        self.kw_written = False
        options = {
            "preload_content": preload_content,
            "decode_content": decode_content,
            "enforce_content_length": enforce_content_length,
        }
        if not write_request(self, method, url, body, headers, chunked, options):
            super().request(method, url, body, headers, chunked=chunked, **options)
        self.kw_written = True
        self._kw_after_request(started)

    def getresponse(self) -> Any:
        response = super().getresponse()
        self._kw_after_response(response)
        return response

    def _kw_after_connect(self, tls: bool, started: float) -> None:
        conn: Any = self
        conn.kw_fresh = True
        done = _perf()
        conn.kw_connected_at = done
        counters: HostCounters | None = conn.kw_counters
        if counters is not None:
            counters.on_connect(tls)
        if tls:
            timings: Timings | None = conn.kw_timings
            tls_seconds = done - getattr(conn, "kw_tcp_done", started)
            if timings is not None:
                timings.tls = tls_seconds
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "connection.start_tls.complete origin=%s:%s seconds=%.6f version=%s",
                    conn.host,
                    conn.port,
                    tls_seconds,
                    conn.sock.version() if hasattr(conn.sock, "version") else None,
                )

    def _kw_before_request(self) -> float:
        conn: Any = self
        reused = conn.sock is not None and not conn.kw_fresh
        counters: HostCounters | None = conn.kw_counters
        if counters is not None:
            counters.on_request(reused)
        timings: Timings | None = conn.kw_timings
        if timings is not None:
            timings.reused = reused
            version = getattr(conn.sock, "version", None)
            if version is not None:
                timings.tls_version = version()
        if reused and log.isEnabledFor(logging.DEBUG):
            log.debug("connection.reused origin=%s:%s", conn.host, conn.port)
        return _perf()

    def _kw_after_request(self, started: float) -> None:
        conn: Any = self
        conn.kw_fresh = False
        now = _perf()
        conn.kw_sent_at = now
        timings: Timings | None = conn.kw_timings
        if timings is not None:
            # For plain HTTP the connect happens inside request(): do not count it twice.
            timings.send = now - max(started, getattr(conn, "kw_connected_at", started))

    def _kw_after_response(self, response: BaseHTTPResponse) -> None:
        conn: Any = self
        now = _perf()
        timings: Timings | None = conn.kw_timings
        wait = now - conn.kw_sent_at if getattr(conn, "kw_sent_at", None) else None
        if timings is not None:
            timings.wait = wait
            timings._headers_at = now
            version = getattr(response, "version_string", None)
            timings.http_version = version or _version_name(response.version)
            response.kw_timings = timings  # type: ignore[attr-defined]
            conn.kw_timings = None
        counters: HostCounters | None = conn.kw_counters
        if counters is not None:
            counters.on_response(wait, None)


class InstrumentedHTTPConnection(_InstrumentedConnection, HTTPConnection):
    """``urllib3.HTTPConnection`` that reports to its origin's counters."""


class InstrumentedHTTPSConnection(_InstrumentedConnection, HTTPSConnection):
    """``urllib3.HTTPSConnection`` that reports to its origin's counters."""

    kw_tls = True


# Pools ------------------------------------------------------------------------------------


def _close_if_unfit(pool: Any, conn: Any, now: float, counters: HostCounters | None) -> None:
    """Close a pooled connection that is too old, idle too long, or closed by the server;
    the connection object then reconnects when it is used."""
    origin = counters.origin if counters is not None else pool.host
    expiry = pool.effective_keepalive_expiry()
    idle_since = conn.kw_idle_since
    reason = None
    if expiry is not None and idle_since is not None and now - idle_since > expiry:
        reason = "idle_expired"
    elif pool.kw_max_age is not None and now - conn.kw_connected_at > pool.kw_max_age:
        reason = "retired"
    elif is_connection_dropped(conn):
        _urllib3_log.debug("Resetting dropped connection: %s", pool.host)
        reason = "dropped"
    if reason is None:
        return
    conn.close()
    if counters is not None:
        counters.add(reason)
    if log.isEnabledFor(logging.DEBUG):
        log.debug("pool.%s origin=%s", reason, origin)


def _grow(pool: Any, conn: Any) -> bool:
    """``pool_maxsize="auto"``: keep the connection by making room for it, up to the cap."""
    q = pool.pool
    with q.mutex:
        if q.maxsize >= pool.kw_grow_to:
            return False
        q.maxsize += 1
        size = q.maxsize
    try:
        q.put(conn, block=False)
    except queue.Full:
        return False
    log.debug("pool.grown origin=%s maxsize=%d", pool.host, size)
    return True


class _InstrumentedPool(_PoolBase):
    """What both instrumented pool classes add to urllib3's."""

    #: Seconds to wait for a free connection when the pool blocks; set per adapter.
    pool_wait: float | None = None
    #: The adapter's telemetry; None when telemetry is off.
    telemetry: Telemetry | None = None
    #: ``pool_maxsize="auto"``: grow up to this many connections (0: fixed size).
    kw_grow_to: int = 0
    #: Settings-level idle expiry and maximum connection age (None: off).
    kw_keepalive_expiry: float | None = None
    kw_max_age: float | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        t = self.telemetry
        self.kw_counters = None if t is None else t.host(self.scheme, self.host, self.port)
        #: The server's ``Keep-Alive: timeout=N``, once seen.
        self.kw_server_keepalive: float | None = None

    def effective_keepalive_expiry(self) -> float | None:
        return _effective_expiry(self.kw_keepalive_expiry, self.kw_server_keepalive)

    def _get_conn(self, timeout: float | None = None) -> Any:
        pool: Any = self
        if timeout is None:
            timeout = pool.pool_wait
        started = _perf()
        conn = None
        if pool.pool is None:
            raise ClosedPoolError(pool, "Pool is closed.")
        try:
            conn = pool.pool.get(block=pool.block, timeout=timeout)
        except AttributeError:  # the pool was closed meanwhile
            raise ClosedPoolError(pool, "Pool is closed.") from None
        except queue.Empty:
            if pool.block:
                raise EmptyPoolError(
                    pool,
                    "Pool is empty and a new connection can't be opened due to blocking mode.",
                ) from None
        now = _perf()
        waited = now - started if pool.block else 0.0
        counters: HostCounters | None = pool.kw_counters
        # A slot whose connection was closed (say by "Connection: close") holds a
        # connection object without a socket: reconnecting it is not a drop.
        if conn is not None and conn.sock is not None:
            _close_if_unfit(pool, conn, now, counters)
        conn = conn or pool._new_conn()
        if counters is not None:
            counters.on_checkout(waited)
            conn.kw_counters = counters
            conn.kw_timings = Timings(_started=started)
        return conn

    def _put_conn(self, conn: Any) -> None:
        pool: Any = self
        counters: HostCounters | None = pool.kw_counters
        if counters is not None:
            counters.on_checkin()
        if conn is not None:
            # Stamped before the put: once in the queue another thread may take it.
            conn.kw_idle_since = _perf()
        if pool.pool is not None:
            try:
                pool.pool.put(conn, block=False)
                return
            except AttributeError:
                pass
            except queue.Full:
                if conn is not None and pool.kw_grow_to and _grow(pool, conn):
                    return
                if conn is not None:
                    conn.close()
                if counters is not None:
                    counters.add("discarded")
                log.debug("pool.discarded origin=%s", counters.origin if counters else pool.host)
                if pool.block:
                    raise FullPoolError(
                        pool, "Pool reached maximum size and no more connections are allowed."
                    ) from None
                _urllib3_log.warning(
                    "Connection pool is full, discarding connection: %s. Connection pool size: %s",
                    pool.host,
                    pool.pool.qsize(),
                )
        if conn is not None:
            conn.close()

    def urlopen(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = _prepare_urlopen(self, args, kwargs)
        return super().urlopen(method, url, *args, **kwargs)

    def _make_request(self, conn: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        return _request_with_stale_retry(
            super()._make_request, self, conn, method, url, *args, **kwargs
        )


class InstrumentedHTTPConnectionPool(_InstrumentedPool, HTTPConnectionPool):
    ConnectionCls = InstrumentedHTTPConnection


class InstrumentedHTTPSConnectionPool(_InstrumentedPool, HTTPSConnectionPool):
    ConnectionCls = InstrumentedHTTPSConnection


@functools.cache
def socks_pool_classes() -> tuple[type[HTTPConnectionPool], type[HTTPConnectionPool]]:
    """Instrumented pools for urllib3's ``SOCKSProxyManager`` (``socks5://`` proxies).

    Their connections open the socket through PySocks, as urllib3's ``SOCKSConnection``
    does (name resolution, the TCP handshake to the proxy and the SOCKS negotiation are
    one step there, timed together as the connect), and count, time, expire and retry
    like every other keepwarm connection. Imported on first use: PySocks is optional
    (``pip install keepwarm[socks]``, as ``requests[socks]``).
    """
    from urllib3.contrib.socks import SOCKSConnection, SOCKSHTTPSConnection

    class _SOCKSNewConn(_InstrumentedConnection):
        def _new_conn(self) -> socket.socket:
            started = _perf()
            sock: socket.socket = SOCKSConnection._new_conn(self)  # type: ignore[arg-type]
            done = _perf()
            timings = self.kw_timings
            if timings is not None:
                timings.dns = None
                timings.connect = done - started
            self.kw_tcp_done = done
            return sock

    class InstrumentedSOCKSConnection(_SOCKSNewConn, SOCKSConnection):
        """``urllib3.contrib.socks.SOCKSConnection`` that reports to its counters."""

    class InstrumentedSOCKSHTTPSConnection(_SOCKSNewConn, SOCKSHTTPSConnection):
        """``urllib3.contrib.socks.SOCKSHTTPSConnection`` that reports to its counters."""

        kw_tls = True

    class InstrumentedSOCKSHTTPConnectionPool(_InstrumentedPool, HTTPConnectionPool):
        ConnectionCls = InstrumentedSOCKSConnection

    class InstrumentedSOCKSHTTPSConnectionPool(_InstrumentedPool, HTTPSConnectionPool):
        ConnectionCls = InstrumentedSOCKSHTTPSConnection

    return InstrumentedSOCKSHTTPConnectionPool, InstrumentedSOCKSHTTPSConnectionPool


def _prepare_urlopen(
    pool: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Count a retry, and keep a body that cannot be sent twice from being sent twice.

    urllib3 passes ``body, headers, retries`` by keyword on the first call and by
    position when it calls itself again after an error.
    """
    positional = len(args) > 2
    retries = args[2] if positional else kwargs.get("retries")
    _count_retry(pool, retries)
    body = args[0] if args else kwargs.get("body")
    if (
        isinstance(retries, Retry)
        and not retries.history
        and not isinstance(body, _REPLAYABLE_BODIES)
        and not (hasattr(body, "seek") and hasattr(body, "tell"))
    ):
        # A generator or iterator is used up by the first attempt: urllib3 cannot rewind
        # it and would resend it empty, so the caller would see the server's answer to an
        # empty upload. Only connect retries stay (they happen before the body is read).
        retries = retries.new(read=0, status=0, other=0)
        if positional:
            args = (*args[:2], retries, *args[3:])
        else:
            kwargs["retries"] = retries
    return args, kwargs


def _count_retry(pool: Any, retries: Any) -> None:
    # urllib3 calls urlopen again for every retry, with the history grown by one.
    history = getattr(retries, "history", None)
    if history and pool.kw_counters is not None:
        pool.kw_counters.add("retries")
        if log.isEnabledFor(logging.DEBUG):
            last = history[-1]
            log.debug(
                "request.retry origin=%s attempt=%d status=%s error=%s",
                pool.kw_counters.origin,
                len(history),
                last.status,
                type(last.error).__name__ if last.error else None,
            )


def _effective_expiry(ours: float | None, server: float | None) -> float | None:
    if server is None:
        return ours
    announced = server * SERVER_KEEPALIVE_SHARE
    return announced if ours is None else min(ours, announced)


#: What a reused connection that the server has closed or reset raises while the request
#: is written or before the status line arrives (RemoteDisconnected is a
#: ConnectionResetError; a TLS peer's close shows as SSLEOFError or SSLZeroReturnError).
_STALE_ERRORS: Final = (
    ConnectionResetError,
    BrokenPipeError,
    ConnectionAbortedError,
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
)
_REPLAYABLE_BODIES: Final = (bytes, bytearray, str, type(None))


def _request_with_stale_retry(
    make_request: Any, pool: Any, conn: Any, method: str, url: str, *args: Any, **kwargs: Any
) -> Any:
    """urllib3's ``_make_request``, retried once on a fresh connection when a *reused*
    connection turns out to be dead, without spending one of the user's retries.

    A keep-alive connection the server closed a moment ago looks healthy until it is used
    (urllib3 #944, requests #4664). Retried: idempotent methods whose request got no
    response at all; any method whose request could not be written whole (the server
    cannot have acted on a request it did not receive). Not retried: a POST or PATCH that
    was written whole (the server may have received and acted on it), and any body that
    cannot be sent again (a stream or file).
    """
    reused = conn.sock is not None and not conn.kw_fresh
    if not reused:
        return make_request(conn, method, url, *args, **kwargs)
    conn.kw_written = False
    try:
        return make_request(conn, method, url, *args, **kwargs)
    except _STALE_ERRORS as exc:
        body = kwargs.get("body", args[0] if args else None)
        written = conn.kw_written
        if not isinstance(body, _REPLAYABLE_BODIES):
            raise
        if written and method.upper() not in IDEMPOTENT_METHODS:
            raise
        conn.close()
        counters: HostCounters | None = pool.kw_counters
        if counters is not None:
            counters.add("stale_retries")
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "request.stale_retry origin=%s method=%s written=%s error=%s",
                counters.origin if counters is not None else pool.host,
                method,
                written,
                type(exc).__name__,
            )
        return make_request(conn, method, url, *args, **kwargs)
