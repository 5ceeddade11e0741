# urllib3 pools that count what they do, expire idle connections and resend stale ones.
#
# The pool classes count checkouts (and the wait for them), connections found dropped
# before reuse, connections discarded because the pool was full, retries, and bound the
# wait for a free connection; their connections are ``keepwarm._upstream.connection``'s.
# What an adapter configures is one frozen :class:`PoolPolicy` on the pool class; what a
# pool learns (its origin's counters, the server's keep-alive timeout) is one
# :class:`PoolState` in the pool's ``_keepwarm`` attribute.
#
# Events are logged to the ``keepwarm`` logger at DEBUG: ``pool.dropped``,
# ``pool.idle_expired``, ``pool.retired``, ``pool.discarded``, ``pool.grown``,
# ``pool.grow_failed``, ``request.retry``, ``request.stale_retry``. They carry the origin
# only: never headers, query strings or credentials.
#
# urllib3 logs each retry to its own loggers with the request's path and query
# (``Retrying (...) after connection broken by ...: /path?token=SECRET`` at WARNING), which
# plain requests never triggers (it makes no retries); :class:`RedactRetryRecords` takes
# the query values out of the records of retries made by keepwarm's ``RetryPolicy``.

from __future__ import annotations

import errno
import functools
import logging
import queue
import ssl
import sys
import threading
import time
from http.client import HTTPException
from socket import getdefaulttimeout
from typing import TYPE_CHECKING, Any, Final

import urllib3
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ClosedPoolError,
    EmptyPoolError,
    FullPoolError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError
from urllib3.util import parse_url
from urllib3.util.retry import Retry
from urllib3.util.ssl_match_hostname import CertificateError
from urllib3.util.timeout import _DEFAULT_TIMEOUT
from urllib3.util.timeout import Timeout as Urllib3Timeout
from urllib3.util.url import _encode_target

from keepwarm._bounded import keepable, remember
from keepwarm._deadline import Deadline, DeadlineStop, current_deadline
from keepwarm._exceptions import PoolSaturationWarning
from keepwarm._guards import warn
from keepwarm._retry import IDEMPOTENT_METHODS, RetryPolicy
from keepwarm._telemetry import HostCounters, Telemetry, new_timings
from keepwarm._upstream.connection import (
    InstrumentedHTTPConnection,
    InstrumentedHTTPSConnection,
    InstrumentedSOCKSConnectionMixin,
    dropped,
    log,
    named_as,
)
from keepwarm._upstream.hooks import (
    RETRY_IS_RETRY,
    U3_HTTPS_VALIDATE_CONN,
    U3_VALIDATE_CONN,
)
from keepwarm._upstream.wire import header_get
from keepwarm._urls import redact_url
from keepwarm._values import Frozen

__all__ = [
    "AUTO_POOL_MAXSIZE_CAP",
    "InstrumentedHTTPConnectionPool",
    "InstrumentedHTTPSConnectionPool",
    "PoolPolicy",
    "PoolState",
    "WatchedHTTPConnectionPool",
    "WatchedHTTPSConnectionPool",
    "flat_ready",
    "parse_keep_alive_timeout",
    "socks_pool_classes",
    "urlopen_first",
]

#: urllib3's own logger, so "Connection pool is full" still reaches those who watch it.
_urllib3_log = logging.getLogger("urllib3.connectionpool")
_perf = time.perf_counter


class RedactRetryRecords(logging.Filter):
    # Redacts the URL in urllib3's log records about a retry made by a ``RetryPolicy``.
    #
    # urllib3 (``connectionpool.urlopen`` and ``Retry.increment``) logs, with the request
    # URL as an argument: ``"Retrying (%r) after connection broken by '%r': %s"`` (WARNING,
    # args ``retries, error, url``) and ``"Incremented Retry for (url='%s'): %r"`` (DEBUG,
    # args ``url, retries``). Records of a plain urllib3 ``Retry`` are left as urllib3
    # wrote them, as plain requests would log them. The record is kept either way.

    #: message template -> (position of the URL, position of the retry object)
    TEMPLATES: Final = {
        "Retrying (%r) after connection broken by '%r': %s": (2, 0),
        "Incremented Retry for (url='%s'): %r": (0, 1),
    }

    def filter(self, record: logging.LogRecord) -> bool:
        where = self.TEMPLATES.get(record.msg) if isinstance(record.msg, str) else None
        args = record.args
        if where is not None and isinstance(args, tuple) and len(args) > max(where):
            url_at, retry_at = where
            url = args[url_at]
            if isinstance(args[retry_at], RetryPolicy) and isinstance(url, str):
                record.args = (*args[:url_at], redact_url(url), *args[url_at + 1 :])
        return True


_REDACT_RETRY_RECORDS: Final = RedactRetryRecords()
_urllib3_log.addFilter(_REDACT_RETRY_RECORDS)
logging.getLogger("urllib3.util.retry").addFilter(_REDACT_RETRY_RECORDS)

#: The most connections an ``pool_maxsize="auto"`` pool grows to per origin: one file
#: descriptor each, well inside the common 1024 soft limit even with several origins.
AUTO_POOL_MAXSIZE_CAP: Final = 256


def parse_keep_alive_timeout(value: str | None) -> float | None:
    # The ``timeout=N`` of a ``Keep-Alive`` response header, in seconds.
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


class PoolPolicy(Frozen):
    # What one adapter's settings ask of every pool it builds (a pool class attribute).

    __match_args__ = (
        "wait",
        "telemetry",
        "grow_to",
        "keepalive_expiry",
        "max_age",
        "resend_stale",
        "saturation_guard",
    )
    __slots__ = __match_args__

    #: Seconds to wait for a free connection when the pool blocks (None: urllib3's).
    wait: float | None
    #: The adapter's telemetry; None when telemetry is off.
    telemetry: Telemetry | None
    #: ``pool_maxsize="auto"``: grow up to this many connections (0: fixed size).
    grow_to: int
    #: Settings-level idle expiry and maximum connection age (None: off).
    keepalive_expiry: float | None
    max_age: float | None
    #: The stale-connection resend (``RetryPolicy.resend_stale`` of the session's policy).
    resend_stale: bool
    #: Guard against more requests in flight than the pool keeps (None: guards off;
    #: True: strict, the warning raised).
    saturation_guard: bool | None

    def __init__(
        self,
        wait: float | None = None,
        telemetry: Telemetry | None = None,
        grow_to: int = 0,
        keepalive_expiry: float | None = None,
        max_age: float | None = None,
        resend_stale: bool = True,
        saturation_guard: bool | None = None,
    ) -> None:
        set_field = object.__setattr__
        set_field(self, "wait", wait)
        set_field(self, "telemetry", telemetry)
        set_field(self, "grow_to", grow_to)
        set_field(self, "keepalive_expiry", keepalive_expiry)
        set_field(self, "max_age", max_age)
        set_field(self, "resend_stale", resend_stale)
        set_field(self, "saturation_guard", saturation_guard)


class PoolState:
    # What keepwarm keeps on one urllib3 pool (its ``_keepwarm`` attribute).

    __slots__ = (
        "counters",
        "grow_lock",
        "idle_expiry",
        "policy",
        "server_expiry",
        "server_keepalive",
    )

    def __init__(self, policy: PoolPolicy, counters: HostCounters | None) -> None:
        self.policy = policy
        #: The origin's counters (None: telemetry off).
        self.counters = counters
        #: Held while ``pool_maxsize="auto"`` raises the pool queue's maxsize (:func:`_grow`).
        self.grow_lock = threading.Lock()
        #: The server's ``Keep-Alive: timeout=N``, once seen, and the idle time it allows
        #: our connections (:meth:`keepalive_announced`).
        self.server_keepalive: float | None = None
        self.server_expiry: float | None = None
        #: The idle time after which a pooled connection is closed instead of reused: the
        #: policy's ``keepalive_expiry``, shortened to ``server_expiry`` once the server
        #: announces less (worked out when that changes, read at every checkout).
        self.idle_expiry: float | None = policy.keepalive_expiry

    def keepalive_announced(self, seconds: float) -> None:
        # A response's ``Keep-Alive: timeout=N``, usually the same on every response: the
        # share of it our idle connections keep is worked out when it changes, not at
        # every checkout (and keepwarm._stats, which holds the share, loads only then).
        if seconds != self.server_keepalive:
            from keepwarm._stats import SERVER_KEEPALIVE_SHARE

            server = self.server_expiry = seconds * SERVER_KEEPALIVE_SHARE
            self.server_keepalive = seconds
            ours = self.policy.keepalive_expiry
            self.idle_expiry = server if ours is None else min(ours, server)


if TYPE_CHECKING:
    _PoolBase = HTTPConnectionPool
else:
    _PoolBase = object


def _close_if_unfit(pool: Any, conn: Any, now: float, state: PoolState) -> None:
    # Close a pooled connection that is too old, idle too long, or closed by the server;
    # the connection object then reconnects when it is used.
    counters = state.counters
    conn_state = conn._keepwarm
    expiry = state.idle_expiry
    idle_since = conn_state.idle_since
    max_age = state.policy.max_age
    reason = None
    if expiry is not None and idle_since is not None and now - idle_since > expiry:
        reason = "idle_expired"
    elif max_age is not None and now - conn_state.connected_at > max_age:
        reason = "retired"
    elif dropped(conn):
        _urllib3_log.debug("Resetting dropped connection: %s", pool.host)
        reason = "dropped"
    if reason is None:
        return
    conn.close()
    if counters is not None:
        counters.add(reason)
    if log.isEnabledFor(logging.DEBUG):
        log.debug("pool.%s origin=%s", reason, counters.origin if counters else pool.host)


def _saturated(pool: Any, state: PoolState, counters: HostCounters) -> None:
    # PoolSaturationWarning: this checkout makes more requests in flight to the origin
    # than the pool keeps connections; the extra connections are thrown away after use
    # (urllib3's "Connection pool is full, discarding connection"). A pool that grows
    # (``pool_maxsize="auto"``) is saturated only at its cap.
    maxsize = pool.pool.maxsize
    grow_to = state.policy.grow_to
    if grow_to and maxsize < grow_to:
        return
    setting = f'pool_maxsize="auto" (capped at {grow_to})' if grow_to else f"pool_maxsize={maxsize}"
    warn(
        PoolSaturationWarning,
        f"{counters.in_flight + 1} requests in flight to {counters.origin} at once, but the "
        f"pool keeps {maxsize} connections ({setting}): each request over that opens a "
        "connection that is closed again after one use. Raise pool_maxsize to the "
        'concurrency you run (or pool_maxsize="auto"), or set pool_block=True to wait '
        "for a free connection instead.",
        strict=bool(state.policy.saturation_guard),
    )


def _grow(pool: Any, conn: Any, state: PoolState) -> bool:
    # ``pool_maxsize="auto"``: keep the connection by making room for it, up to the cap.
    #
    # Raises the pool queue's ``maxsize`` under the pool's own lock, never the queue's:
    # urllib3's ``QueueCls`` is whatever ``queue.LifoQueue`` was when urllib3 was imported,
    # the stdlib's (``maxsize`` a plain attribute its ``put`` reads under its ``mutex``) or,
    # under ``gevent.monkey.patch_all()``, gevent's (``maxsize`` a property with a setter,
    # and no ``mutex``). Only growers write ``maxsize`` and they hold the lock, so two
    # cannot both take the last step to the cap; a slot made here may still be filled by
    # another thread's plain ``put`` first, so try again, one more slot each time, until
    # the cap. False (the caller closes the connection, as urllib3 does when a pool is
    # full) when the cap is reached or the queue cannot grow: a failure to grow never
    # reaches the caller, whose response is already read.
    grow_to = state.policy.grow_to
    q = pool.pool
    try:
        with state.grow_lock:
            for _ in range(grow_to):
                size = q.maxsize
                # None: an unbounded queue (it raises no Full); anything else odd: leave it.
                if type(size) is not int or size >= grow_to:
                    return False
                q.maxsize = size + 1
                if q.maxsize != size + 1:  # a queue that ignores the write
                    return False
                try:
                    q.put(conn, block=False)
                except queue.Full:
                    continue
                break
            else:
                return False
    except Exception as exc:
        log.debug("pool.grow_failed origin=%s error=%s", pool.host, type(exc).__name__)
        return False
    log.debug("pool.grown origin=%s maxsize=%d", pool.host, size + 1)
    return True


class _WatchedPool(_PoolBase):
    # What keepwarm adds to a urllib3 pool without taking any of its points away from
    # a tool that hooks them: the policy's counters, the retry bookkeeping and the call's
    # deadline. Used as it is while a tool has replaced one of the urllib3 points that
    # :class:`_InstrumentedPool` skips (see ``hooks.pools_hooked``): the connection class,
    # checkout, check-in and the connections themselves are then urllib3's (or the tool's),
    # so requests are counted here, a connection as reused when it already had a socket.

    #: Set per adapter on the classes it builds (see transport.KeepwarmAdapter).
    _keepwarm_policy: PoolPolicy = PoolPolicy()
    _keepwarm: PoolState

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        policy = self._keepwarm_policy
        t = policy.telemetry
        counters = None if t is None else t.host(self.scheme, self.host, self.port)
        self._keepwarm = PoolState(policy, counters)

    def urlopen(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = _prepare_urlopen(self._keepwarm, args, kwargs)
        deadline = current_deadline()
        if deadline is not None:
            _fit_attempt(self, deadline, url, kwargs)
        return super().urlopen(method, url, *args, **kwargs)

    def _make_request(self, conn: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        counters = self._keepwarm.counters
        if counters is None:
            return super()._make_request(conn, method, url, *args, **kwargs)
        reused = getattr(conn, "sock", None) is not None
        counters.on_request(reused)
        response = super()._make_request(conn, method, url, *args, **kwargs)
        if not reused and getattr(conn, "sock", None) is not None:
            counters.on_connect(self.scheme == "https")
        counters.on_response(None, None)
        return response


class WatchedHTTPConnectionPool(_WatchedPool, HTTPConnectionPool):
    pass


class WatchedHTTPSConnectionPool(_WatchedPool, HTTPSConnectionPool):
    pass


class PoolQueue(queue.LifoQueue):  # type: ignore[type-arg]
    # The queue of connections of keepwarm's own pools: the standard library's
    # ``LifoQueue`` (what urllib3's ``QueueCls`` is) whose ``get`` and ``put`` (CPython 3.10
    # to 3.13, fingerprinted) take the common case under the queue's lock at once: a
    # connection on the stack to take, a free slot to give one back to.
    #
    # ``Queue.get`` and ``put`` then wake one thread waiting on the other condition
    # (``not_full.notify()``, ``not_empty.notify()``), through ``Condition.notify``'s
    # Python-level steps, also when nobody waits; and nobody does in a pool that never
    # blocks (urllib3 and keepwarm give connections back without blocking, and take them
    # without blocking unless ``pool_block=True``). So a queue notes, once a ``get`` or a
    # ``put`` may wait (before it takes the queue's own path, which waits under the lock),
    # that the other side must wake it from then on. Anything else (an empty stack, a
    # full queue, a shut-down queue on 3.13, a negative timeout) takes ``Queue``'s own path.

    _keepwarm_getters_wait = False
    _keepwarm_putters_wait = False

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if not block or timeout is None or timeout >= 0:
            with self.mutex:
                stack = self.queue
                if stack:
                    item = stack.pop()
                    if self._keepwarm_putters_wait:
                        self.not_full.notify()
                    return item
        if block:
            self._keepwarm_getters_wait = True
        return super().get(block, timeout)

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        with self.mutex:
            maxsize = self.maxsize
            shut = _QUEUE_SHUTS_DOWN and self.is_shutdown  # type: ignore[attr-defined,unused-ignore]
            if (maxsize <= 0 or len(self.queue) < maxsize) and not shut:
                self.queue.append(item)
                self.unfinished_tasks += 1
                if self._keepwarm_getters_wait:
                    self.not_empty.notify()
                return
        if block:
            self._keepwarm_putters_wait = True
        super().put(item, block, timeout)


#: Python 3.13's queues can be shut down (``Queue.shutdown``).
_QUEUE_SHUTS_DOWN: Final = hasattr(queue.Queue(), "is_shutdown")


def _stdlib_queue(cls: type) -> bool:
    # Whether ``cls`` is the standard library's ``LifoQueue``, which :class:`PoolQueue`
    # extends (gevent's ``patch_all()``, run before urllib3 is imported, puts its own in
    # the ``queue`` module).
    code = getattr(getattr(cls, "get", None), "__code__", None)
    return (
        cls is PoolQueue.__mro__[1]
        and cls is queue.LifoQueue
        and code is not None
        and code.co_filename == queue.__file__
    )


class _QueueClass:
    # ``QueueCls`` of keepwarm's pools, read by urllib3's pool constructor: :class:`PoolQueue`
    # while urllib3's own is the standard library's ``LifoQueue``; urllib3's (a tool's
    # replacement, gevent's) otherwise.

    def __get__(self, obj: object, owner: type) -> type:
        upstream: type = (
            HTTPSConnectionPool.QueueCls
            if issubclass(owner, HTTPSConnectionPool)
            else HTTPConnectionPool.QueueCls
        )
        return PoolQueue if _stdlib_queue(upstream) else upstream


class _InstrumentedPool(_WatchedPool):
    # What both instrumented pool classes add to urllib3's: keepwarm's own connections
    # (timed and counted), checkout with idle expiry and growth, and the stale resend.

    QueueCls = _QueueClass()  # type: ignore[assignment]

    def _get_conn(self, timeout: float | None = None) -> Any:
        pool: Any = self
        state = self._keepwarm
        if timeout is None:
            timeout = state.policy.wait
        started = _perf()
        conn = None
        if pool.pool is None:
            raise ClosedPoolError(pool, "Pool is closed.")
        counters = state.counters
        if (
            counters is not None
            and counters.in_flight >= pool.pool.maxsize
            and state.policy.saturation_guard is not None
            and not pool.block
        ):
            _saturated(pool, state, counters)
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
        # A slot whose connection was closed (say by "Connection: close") holds a
        # connection object without a socket: reconnecting it is not a drop.
        if conn is not None and conn.sock is not None:
            _close_if_unfit(pool, conn, now, state)
        conn = conn or pool._new_conn()
        if counters is not None:
            counters.on_checkout(waited)
            conn_state = conn._keepwarm
            conn_state.counters = counters
            conn_state.timings = new_timings(started)
        return conn

    def _put_conn(self, conn: Any) -> None:
        pool: Any = self
        state = self._keepwarm
        counters = state.counters
        if counters is not None:
            counters.on_checkin()
        if conn is not None:
            # Stamped before the put: once in the queue another thread may take it.
            conn._keepwarm.idle_since = _perf()
        if pool.pool is not None:
            try:
                pool.pool.put(conn, block=False)
                return
            except AttributeError:
                pass
            except queue.Full:
                if conn is not None and state.policy.grow_to and _grow(pool, conn, state):
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

    def _keepwarm_make_request(
        self,
        conn: Any,
        method: str,
        url: str,
        body: Any,
        headers: dict[str, str],
        retries: Retry,
        timeout: Urllib3Timeout,
        chunked: bool,
    ) -> Any:
        # urllib3's ``HTTPConnectionPool._make_request`` for a connection without a proxy and
        # a timeout without a total (whose connect and read timeouts are then fixed, so the
        # clone urllib3 makes to time the connect is not needed): urlopen_first's exchange,
        # under the stale resend as urllib3's is under _make_request's. Not logged: see
        # flat_ready.
        self.num_requests += 1
        # The timeout's connect and read values, as its properties give them without a
        # total (flat_ready), with urllib3's default resolved (resolve_default_timeout).
        connect_timeout = timeout._connect
        if connect_timeout is _DEFAULT_TIMEOUT:
            connect_timeout = getdefaulttimeout()
        conn.timeout = connect_timeout
        # urllib3's _validate_conn does nothing for HTTP, and for HTTPS nothing for a
        # connected connection verified directly or through its proxy (it connects a new
        # one and warns of an unverified one): called unless that is so, or while it is
        # not urllib3's own.
        validate = type(self)._validate_conn
        if not (
            validate is U3_VALIDATE_CONN
            or (
                validate is U3_HTTPS_VALIDATE_CONN
                and HTTPConnectionPool._validate_conn is U3_VALIDATE_CONN
                and conn.sock is not None  # not is_closed
                and (conn.is_verified or conn.proxy_is_verified)
            )
        ):
            try:
                try:
                    self._validate_conn(conn)
                except (TimeoutError, ssl.SSLError) as e:
                    self._raise_timeout(err=e, url=url, timeout_value=conn.timeout)
                    raise
            except _SETUP_ERRORS as e:
                new_e: Exception = e
                if isinstance(e, (ssl.SSLError, CertificateError)):
                    new_e = SSLError(e)
                raise new_e  # noqa: B904  (as urllib3 raises it)
        try:
            conn.request(
                method,
                url,
                body=body,
                headers=headers,
                chunked=chunked,
                preload_content=False,
                decode_content=False,
                enforce_content_length=True,
            )
        except BrokenPipeError:
            pass
        except OSError as e:
            if e.errno != errno.EPROTOTYPE and e.errno != errno.ECONNRESET:
                raise
        read_timeout = timeout._read
        if read_timeout is _DEFAULT_TIMEOUT:
            read_timeout = getdefaulttimeout()
        if conn.sock is not None:
            if read_timeout == 0:
                raise ReadTimeoutError(self, url, f"Read timed out. (read timeout={read_timeout})")
            conn.timeout = read_timeout
        try:
            response = conn.getresponse()
        except (ssl.SSLError, OSError) as e:
            self._raise_timeout(err=e, url=url, timeout_value=read_timeout)
            raise
        response.retries = retries
        response._connection = conn
        response._pool = self
        return response

    def _make_request(self, conn: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        # The connection counts the request (it knows when it was written); urllib3's
        # _make_request, not _WatchedPool's, runs under the stale resend.
        return _request_with_stale_retry(
            super(_WatchedPool, self)._make_request, self, conn, method, url, *args, **kwargs
        )


class InstrumentedHTTPConnectionPool(_InstrumentedPool, HTTPConnectionPool):
    ConnectionCls = InstrumentedHTTPConnection


class InstrumentedHTTPSConnectionPool(_InstrumentedPool, HTTPSConnectionPool):
    ConnectionCls = InstrumentedHTTPSConnection


@functools.cache
def socks_pool_classes() -> tuple[type[HTTPConnectionPool], type[HTTPConnectionPool]]:
    # Instrumented pools for urllib3's ``SOCKSProxyManager`` (``socks5://`` proxies).
    #
    # Their connections open the socket through PySocks, as urllib3's ``SOCKSConnection``
    # does, and count, time, expire and retry like every other keepwarm connection.
    # Imported on first use: PySocks is optional (``pip install keepwarm[socks]``, as
    # ``requests[socks]``).
    from urllib3.contrib.socks import SOCKSConnection, SOCKSHTTPSConnection

    @named_as(SOCKSConnection)
    class InstrumentedSOCKSConnection(InstrumentedSOCKSConnectionMixin, SOCKSConnection):
        """``urllib3.contrib.socks.SOCKSConnection`` that reports to its counters."""

    @named_as(SOCKSHTTPSConnection)
    class InstrumentedSOCKSHTTPSConnection(InstrumentedSOCKSConnectionMixin, SOCKSHTTPSConnection):
        """``urllib3.contrib.socks.SOCKSHTTPSConnection`` that reports to its counters."""

    class InstrumentedSOCKSHTTPConnectionPool(_InstrumentedPool, HTTPConnectionPool):
        ConnectionCls = InstrumentedSOCKSConnection

    class InstrumentedSOCKSHTTPSConnectionPool(_InstrumentedPool, HTTPSConnectionPool):
        ConnectionCls = InstrumentedSOCKSHTTPSConnection

    return InstrumentedSOCKSHTTPConnectionPool, InstrumentedSOCKSHTTPSConnectionPool


def _prepare_urlopen(
    state: PoolState, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    # Count a retry, and keep a body that cannot be sent twice from being sent twice.
    #
    # urllib3 passes ``body, headers, retries`` by keyword on the first call and by
    # position when it calls itself again after an error.
    positional = len(args) > 2
    retries = args[2] if positional else kwargs.get("retries")
    _count_retry(state.counters, retries)
    body = args[0] if args else kwargs.get("body")
    if isinstance(retries, Retry) and not retries.history and not _replayable(body):
        # A generator or iterator is used up by the first attempt: urllib3 cannot rewind
        # it and would resend it empty, so the caller would see the server's answer to an
        # empty upload; a file that cannot seek (a pipe, another response's ``raw``)
        # makes urllib3's rewind raise UnrewindableBodyError instead of returning the
        # server's answer. Only connect retries stay (they happen before the body is read).
        retries = retries.new(read=0, status=0, other=0)
        if positional:
            args = (*args[:2], retries, *args[3:])
        else:
            kwargs["retries"] = retries
    return args, kwargs


def _fit_attempt(pool: Any, deadline: Deadline, url: str, kwargs: dict[str, Any]) -> None:
    # Cut one attempt's connect, read and pool-wait timeouts to the time the call's
    # deadline leaves; none left: stop before the attempt. urllib3 calls ``urlopen`` again
    # for every retry (``timeout`` and ``pool_timeout`` by keyword, as requests does), so
    # every attempt is cut to what is left at its start.
    left = deadline.remaining()
    if left <= 0:
        doing = deadline.retrying() if deadline.attempts else "connecting"
        raise MaxRetryError(pool, url, DeadlineStop(doing))
    timeout = kwargs.get("timeout")
    if isinstance(timeout, Urllib3Timeout):
        kwargs["timeout"] = deadline.clamp(timeout)
    elif isinstance(timeout, (int, float)) and timeout > left:
        kwargs["timeout"] = left
    if pool.block:
        wait = kwargs.get("pool_timeout") or pool._keepwarm.policy.wait
        if wait is None or wait > left:
            kwargs["pool_timeout"] = left


def _replayable(body: Any) -> bool:
    # Whether urllib3 can send *body* again: bytes and str, or a file object that really
    # rewinds. Decided by trying, not by the attributes: a pipe opened with ``open(fd,
    # "rb")`` and a urllib3 response have ``seek`` and ``tell`` but cannot seek (the pipe's
    # ``tell`` raises; the response's ``seekable()`` is False). ``seek`` to the current
    # position moves nothing where it works.
    if isinstance(body, _REPLAYABLE_BODIES):
        return True
    seek, tell = getattr(body, "seek", None), getattr(body, "tell", None)
    if not (callable(seek) and callable(tell)):
        return False
    try:
        seekable = getattr(body, "seekable", None)
        if seekable is not None and not seekable():
            return False
        position = tell()
        if type(position) is not int:  # urllib3 rewinds to an int position only
            return False
        seek(position)
    except Exception:  # OSError, ValueError (closed file), io.UnsupportedOperation, ...
        return False
    return True


def _count_retry(counters: HostCounters | None, retries: Any) -> None:
    # urllib3 calls urlopen again for every retry, with the history grown by one.
    history = getattr(retries, "history", None)
    if history and counters is not None:
        counters.add("retries")
        if log.isEnabledFor(logging.DEBUG):
            last = history[-1]
            log.debug(
                "request.retry origin=%s attempt=%d status=%s error=%s",
                counters.origin,
                len(history),
                last.status,
                type(last.error).__name__ if last.error else None,
            )


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
    # urllib3's ``_make_request``, retried once on a fresh connection when a *reused*
    # connection turns out to be dead, without spending one of the user's retries (unless
    # the policy says ``resend_stale=False``).
    #
    # A keep-alive connection the server closed a moment ago looks healthy until it is used
    # (urllib3 #944, requests #4664). Retried: idempotent methods whose request got no
    # response at all; any method whose request could not be written whole (the server
    # cannot have acted on a request it did not receive). Not retried: a POST or PATCH that
    # was written whole (the server may have received and acted on it), and any body that
    # cannot be sent again (a stream or file).
    conn_state = conn._keepwarm
    reused = conn.sock is not None and not conn_state.fresh
    if not reused or not pool._keepwarm.policy.resend_stale:
        return make_request(conn, method, url, *args, **kwargs)
    conn_state.written = False
    try:
        return make_request(conn, method, url, *args, **kwargs)
    except _STALE_ERRORS as exc:
        body = kwargs.get("body", args[0] if args else None)
        if not _resend_stale(pool, conn, method, body, exc):
            raise
        return make_request(conn, method, url, *args, **kwargs)


def _resend_stale(pool: Any, conn: Any, method: str, body: Any, exc: BaseException) -> bool:
    # Whether a request that failed on a reused connection with one of ``_STALE_ERRORS``
    # is sent again (see :func:`_request_with_stale_retry`); if so, the connection is
    # closed (it reconnects when used) and the resend counted and logged.
    written = conn._keepwarm.written
    if not isinstance(body, _REPLAYABLE_BODIES):
        return False
    if written and method.upper() not in IDEMPOTENT_METHODS:
        return False
    conn.close()
    counters = pool._keepwarm.counters
    if counters is not None:
        counters.on_stale_resend()
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "request.stale_retry origin=%s method=%s written=%s error=%s",
            counters.origin if counters is not None else pool.host,
            method,
            written,
            type(exc).__name__,
        )
    return True


# The first attempt of a plain request, flat ------------------------------------------
#
# requests' adapter calls ``pool.urlopen``; for keepwarm's own pools that is five layers
# deep before a byte is written (keepwarm's ``urlopen``, urllib3's, keepwarm's
# ``_make_request`` and stale resend, urllib3's ``_make_request``), each passing a dozen
# arguments on and most doing nothing for the request at hand: no proxy, no redirect
# (requests follows those itself), no retry yet, a body that can be sent again, a
# timeout without a total. :func:`urlopen_first` is those layers as one function for
# that case: urllib3's ``urlopen`` and ``_make_request`` (2.2.2 to 2.8.0, fingerprinted;
# INVENTORY.md) step for step with the branches that cannot apply left out, and keepwarm's
# stale resend around the exchange. Its exceptions, the connection's release on each,
# and every retry are urllib3's: a retry (an error, or a status the policy retries) goes
# to ``pool.urlopen``, the layered path, with the retry object urllib3 would pass.
# :func:`flat_ready` says when it applies; anything else takes the layers.

#: What urllib3's ``urlopen`` catches around the exchange, retries by its policy and then
#: raises wrapped (``ssl.SSLError`` is urllib3's ``BaseSSLError``; ``TimeoutError`` there
#: is urllib3's, the built-in one is its ``SocketTimeout``).
_URLOPEN_ERRORS: Final = (
    Urllib3TimeoutError,
    HTTPException,
    OSError,
    ProtocolError,
    ssl.SSLError,
    SSLError,
    CertificateError,
    ProxyError,
)
#: What urllib3's ``_make_request`` wraps when the connection is set up.
_SETUP_ERRORS: Final = (
    OSError,
    NewConnectionError,
    Urllib3TimeoutError,
    ssl.SSLError,
    CertificateError,
    SSLError,
)
_URLLIB3_VERSION: Final = tuple(
    int(p)
    for p in urllib3.__version__.split(".")[:2]  # type: ignore[attr-defined]
)
#: urllib3 before 2.7 parses a path-only URL too (for a scheme it does not have); what
#: that may raise is raised here as well.
_PARSES_PATH: Final = _URLLIB3_VERSION < (2, 7)
#: urllib3 2.8 gives its retry warning an ``extra`` with the pool's host (for pip).
_RETRY_WARNING_EXTRA: Final = _URLLIB3_VERSION >= (2, 8)


def flat_ready(pool: Any, timeout: Any, body: Any, retries: Any) -> bool:
    # Whether :func:`urlopen_first` may stand for ``pool.urlopen``: one of keepwarm's own
    # pools, neither it nor its ``_make_request`` overridden (HTTP/2 pools are), no proxy,
    # a body that can be sent again, a first attempt, a timeout without a total, no
    # deadline to cut it to, and urllib3's logger not logging DEBUG lines (whose wording
    # changed between releases; the layers write them). The caller has checked that no
    # tool wrapped ``urlopen`` or ``_make_request`` (``hooks.urlopen_hooked``).
    cls = type(pool)
    return (
        cls.urlopen is _WatchedPool.urlopen
        and cls._make_request is _InstrumentedPool._make_request
        and pool.proxy is None
        and type(timeout) is Urllib3Timeout
        and timeout.total is None
        and type(body) in _REPLAYABLE_BODIES
        and isinstance(retries, Retry)
        and not retries.history
        and current_deadline() is None
        and not _urllib3_log.isEnabledFor(logging.DEBUG)
    )


def urlopen_first(
    pool: Any,
    method: str,
    url: str,
    body: Any,
    headers: dict[str, str],
    retries: Retry,
    timeout: Urllib3Timeout,
    chunked: bool,
) -> Any:
    # ``pool.urlopen(method, url, body, headers, retries, redirect=False,
    # assert_same_host=False, timeout=timeout, preload_content=False,
    # decode_content=False, chunked=chunked)`` as requests' adapter calls it, for a
    # request :func:`flat_ready` accepts; ``headers`` is the caller's own copy (urllib3
    # copies it before merging proxy headers, and there are none).
    if not url.startswith("/"):
        return _layered(pool, method, url, body, headers, retries, timeout, chunked)
    target = _TARGETS.get(url)  # _request_target's remembered answer, without the call
    url = target if target is not None else _request_target(url)
    conn = None
    clean_exit = False
    err = None
    try:
        conn = pool._get_conn(timeout=None)
        conn.timeout = timeout._connect  # connect_timeout without a total (flat_ready)
        # As in _InstrumentedPool._make_request: the exchange under the stale resend.
        response = _request_with_stale_retry(
            pool._keepwarm_make_request,
            pool,
            conn,
            method,
            url,
            body,
            headers,
            retries,
            timeout,
            chunked,
        )
        clean_exit = True
    except EmptyPoolError:
        clean_exit = True
        raise
    except _URLOPEN_ERRORS as e:
        clean_exit = False
        new_e: Exception = e
        if isinstance(e, (ssl.SSLError, CertificateError)):
            new_e = SSLError(e)
        if isinstance(new_e, (OSError, HTTPException)):
            new_e = ProtocolError("Connection aborted.", new_e)
        retries = retries.increment(
            method, url, error=new_e, _pool=pool, _stacktrace=sys.exc_info()[2]
        )
        retries.sleep()
        err = e
    finally:
        if not clean_exit:
            if conn:
                conn.close()
                conn = None
            pool._put_conn(conn)
    if not conn:
        _urllib3_log.warning(
            "Retrying (%r) after connection broken by '%r': %s",
            retries,
            err,
            url,
            extra={"__urllib3-retry-warning": {"host": pool.host}}
            if _RETRY_WARNING_EXTRA
            else None,
        )
        return _layered(pool, method, url, body, headers, retries, timeout, chunked)
    # urllib3's Retry.is_retry is True only for a status in the retry's status list or in
    # its RETRY_AFTER_STATUS_CODES (413, 429, 503): for any other (a 200) it is not asked,
    # unless it is not urllib3's own.
    status = response.status
    forcelist = retries.status_forcelist
    if (
        (forcelist and status in forcelist)
        or status in retries.RETRY_AFTER_STATUS_CODES
        or type(retries).is_retry is not RETRY_IS_RETRY
    ) and retries.is_retry(method, status, bool(header_get(response.headers, "retry-after"))):
        try:
            retries = retries.increment(method, url, response=response, _pool=pool)
        except MaxRetryError:
            if retries.raise_on_status:
                response.drain_conn()
                raise
            return response
        response.drain_conn()
        retries.sleep(response)
        return _layered(pool, method, url, body, headers, retries, timeout, chunked)
    return response


#: Request target -> urllib3's ``_encode_target`` of it, for targets without a query (a
#: client asks for the same few paths; query values are not kept: ``_bounded.keepable``).
#: Bounded.
_TARGETS: dict[str, str] = {}
_TARGETS_MAX: Final = 256


def _request_target(url: str) -> str:
    # What urllib3's ``urlopen`` makes of a path-only ``url``: parsed (before urllib3 2.7,
    # to raise what parsing raises) and percent-encoded (``_encode_target``), a pure
    # function of the string, remembered for a path without a query.
    target = _TARGETS.get(url)
    if target is not None:
        return target
    if _PARSES_PATH:
        parse_url(url)
    target = _encode_target(url)
    if keepable(url):
        remember(_TARGETS, url, target, _TARGETS_MAX)
    return target


def _layered(
    pool: Any,
    method: str,
    url: str,
    body: Any,
    headers: dict[str, str],
    retries: Retry,
    timeout: Urllib3Timeout,
    chunked: bool,
) -> Any:
    # ``pool.urlopen`` as urllib3 calls itself again for a retry.
    return pool.urlopen(
        method,
        url,
        body,
        headers,
        retries,
        False,
        False,
        timeout=timeout,
        pool_timeout=None,
        release_conn=False,
        chunked=chunked,
        body_pos=None,
        preload_content=False,
        decode_content=False,
    )
