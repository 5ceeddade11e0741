# Counters and timings that show whether connections are really reused.
#
# Plain requests only writes DEBUG log lines ("Starting new HTTPS connection (2)"), so people
# count TIME_WAIT sockets or run packet captures to find out. keepwarm counts, per session
# and per origin (scheme, host, port):
#
# * ``requests``: requests written to a connection (each retry of the policy counts),
#   except an attempt on a dead reused connection that keepwarm resent: that one counts in
#   ``stale_retries`` only, so ``requests`` does not depend on whether a server's close
#   was noticed before the write (at checkout: ``dropped``) or after it;
# * ``connections_opened``: new TCP connections; ``tls_handshakes``: TLS handshakes;
# * ``reused``: requests sent on a connection that had served a request before (same
#   exception);
# * ``discarded``: connections closed because the pool was full ("Connection pool is full,
#   discarding connection");
# * ``pools_evicted``: whole host pools closed because more hosts were used than
#   ``pool_connections``;
# * ``dropped``: pooled connections found closed by the server before reuse;
# * ``idle_expired``: pooled connections closed by keepwarm for being idle too long;
# * ``retired``: connections closed for reaching ``max_connection_age``;
# * ``retries``: retries made by the retry policy;
# * ``stale_retries``: requests resent once on a fresh connection because the reused one
#   turned out dead (these do not spend the retry policy's retries). The server may or may
#   not have received the abandoned attempt: one that read it and then reset the
#   connection saw it, one that had closed the connection did not;
# * ``pool_wait``: seconds spent waiting for a free connection (``pool_block=True``);
# * ``peak_in_flight``: most requests in flight to one origin at once.
#
# The counters also keep the number of open connections (not a statistic: a gauge that
# ``keepwarm.enable_metrics()`` exports, see ``_metrics``), and :data:`METRICS` holds the
# two hooks the request path calls only while OpenTelemetry metrics are on.
#
# Each response also carries its :class:`Timings` (``keepwarm.timings(response)``).
#
# Cost: a few ``perf_counter()`` calls and one uncontended lock per request; measured in
# ``benchmarks/telemetry_overhead.py`` and recorded in ``docs/PERFORMANCE.md``.

from __future__ import annotations

import threading
import weakref
from array import array
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from keepwarm._urls import origin as origin_of
from keepwarm._values import Mutable

if TYPE_CHECKING:
    from keepwarm._stats import HostStats, Limits, Stats

__all__ = [
    "METRICS",
    "HostCounters",
    "MetricsHooks",
    "Telemetry",
    "Timings",
    "attach_timings",
    "live_telemetry",
    "timings_of",
]

#: The one attribute through which a response (urllib3's and requests') carries its
#: Timings: :func:`attach_timings` sets it and :func:`timings_of` reads it; the request
#: path sets and reads it in place.
TIMINGS_ATTRIBUTE: Final = "_keepwarm_timings"

#: Time-to-first-byte samples kept per origin for percentiles (the most recent ones).
TTFB_SAMPLES: Final = 1024


#: The public fields of Timings, in order (``as_dict()``, the repr).
_TIMINGS_FIELDS: Final = (
    "dns",
    "connect",
    "tls",
    "send",
    "wait",
    "receive",
    "total",
    "reused",
    "http_version",
    "tls_version",
    "retries",
)


class Timings(Mutable):
    """Where the time of one request went, like ``curl -w``; seconds, None if skipped.

    A request on a reused connection has no ``dns``, ``connect`` or ``tls`` phase: that
    is the saving keepwarm is about.
    """

    __match_args__ = (*_TIMINGS_FIELDS, "_started", "_headers_at")

    #: Name resolution (None for an IP address or a reused connection).
    dns: float | None = None
    #: TCP handshake.
    connect: float | None = None
    #: TLS handshake (None for plain HTTP or a reused connection).
    tls: float | None = None
    #: Writing the request line, headers and body.
    send: float | None = None
    #: From the request written to the response headers received (server time + 1 RTT).
    wait: float | None = None
    #: Reading the body (None for ``stream=True`` responses, read after the call returns).
    receive: float | None = None
    #: From the start of the request to the end of the body (None for ``stream=True``).
    total: float | None = None
    #: Whether the connection had served a request before.
    reused: bool = False
    #: The version on the server's status line: "HTTP/1.1", "HTTP/1.0", ...
    http_version: str | None = None
    #: "TLSv1.3", "TLSv1.2", ... (None for plain HTTP).
    tls_version: str | None = None
    #: Retries the retry policy made before this response.
    retries: int = 0
    # perf_counter() marks, private: where the phases start and end.
    _started: float = 0.0
    _headers_at: float | None = None

    def __init__(
        self,
        dns: float | None = None,
        connect: float | None = None,
        tls: float | None = None,
        send: float | None = None,
        wait: float | None = None,
        receive: float | None = None,
        total: float | None = None,
        reused: bool = False,
        http_version: str | None = None,
        tls_version: str | None = None,
        retries: int = 0,
        _started: float = 0.0,
        _headers_at: float | None = None,
    ) -> None:
        self.dns = dns
        self.connect = connect
        self.tls = tls
        self.send = send
        self.wait = wait
        self.receive = receive
        self.total = total
        self.reused = reused
        self.http_version = http_version
        self.tls_version = tls_version
        self.retries = retries
        self._started = _started
        self._headers_at = _headers_at

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _TIMINGS_FIELDS}

    def __repr__(self) -> str:
        # Seconds to the microsecond: perf_counter differences print 17 digits otherwise.
        shown = (
            f"{name}={round(value, 6) if isinstance(value, float) else value!r}"
            for name, value in self.as_dict().items()
        )
        return f"Timings({', '.join(shown)})"

    def finish(self, now: float) -> None:
        """Record the end of the body."""
        if self.total is None:
            self.total = now - self._started
            if self._headers_at is not None:
                self.receive = now - self._headers_at


class HostCounters:
    # The live counters of one origin; updated from many threads under one lock.

    __slots__ = (
        "_lock",
        "connections_opened",
        "discarded",
        "dropped",
        "generation",
        "host",
        "http2_connections",
        "idle_expired",
        "in_flight",
        "keep_alive_timeout",
        "metric_attributes",
        "open_connections",
        "origin",
        "peak_in_flight",
        "pool_wait",
        "pools_evicted",
        "port",
        "refused_resends",
        "requests",
        "retired",
        "retries",
        "reused",
        "scheme",
        "stale_retries",
        "tls_handshakes",
        "ttfb",
        "ttfb_at",
    )

    def __init__(
        self, origin: str, scheme: str = "", host: str = "", port: int | None = None
    ) -> None:
        self.origin = origin
        #: The origin's parts, for metric attributes (``host`` without IPv6 brackets).
        self.scheme = scheme
        self.host = host
        self.port = port
        #: The metric attributes of this origin, built by ``_metrics`` on first use.
        self.metric_attributes: dict[str, Any] | None = None
        self._lock = threading.Lock()
        #: Connections open now (a gauge: ``zero()`` keeps it, a fork clears it).
        self.open_connections = 0
        #: Bumped in a forked child: a connection opened before the fork (the parent's)
        #: closing in the child does not count down the child's open connections.
        self.generation = 0
        self.requests = 0
        self.connections_opened = 0
        self.reused = 0
        self.tls_handshakes = 0
        self.discarded = 0
        self.pools_evicted = 0
        self.dropped = 0
        self.idle_expired = 0
        self.retired = 0
        self.retries = 0
        self.stale_retries = 0
        self.refused_resends = 0
        self.http2_connections = 0
        self.pool_wait = 0.0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.keep_alive_timeout: float | None = None
        #: The latest TTFB_SAMPLES times to first byte, a ring of C doubles: 8 bytes a
        #: sample, where a deque of floats held a float object and a pointer for each
        #: (33 KB an origin when full, 8 KB now). Order does not matter: read sorted.
        self.ttfb = array("d")
        #: Where the next sample goes once the ring is full.
        self.ttfb_at = 0

    def zero(self) -> None:
        from keepwarm._stats import COUNTER_FIELDS

        with self._lock:
            for name in COUNTER_FIELDS:
                setattr(self, name, 0)
            self.pool_wait = 0.0
            self.peak_in_flight = self.in_flight
            self.keep_alive_timeout = None
            self.ttfb = array("d")
            self.ttfb_at = 0

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def on_stale_resend(self) -> None:
        # An attempt counted by :meth:`on_request` on a reused connection found dead is
        # abandoned and resent: it moves from ``requests``/``reused`` to ``stale_retries``.
        with self._lock:
            self.requests -= 1
            self.reused -= 1
            self.stale_retries += 1

    def on_refused_resend(self, reused: bool) -> None:
        # An HTTP/2 stream the server refused unprocessed (GOAWAY, REFUSED_STREAM) is
        # sent again on another connection: transport work, not a retry. The attempt
        # :meth:`on_request` counted moves to ``refused_resends``.
        with self._lock:
            self.requests -= 1
            if reused:
                self.reused -= 1
            self.refused_resends += 1

    # The four methods below run on every request: they take the lock with ``acquire`` and
    # ``release`` in ``try``/``finally`` (the same guarantee as ``with``, without looking up
    # ``__enter__``/``__exit__`` and binding ``__exit__`` each time).

    def on_request(self, reused: bool) -> None:
        lock = self._lock
        lock.acquire()
        try:
            self.requests += 1
            if reused:
                self.reused += 1
        finally:
            lock.release()

    def on_connect(self, tls: bool) -> None:
        with self._lock:
            self.connections_opened += 1
            if tls:
                self.tls_handshakes += 1

    def on_open(self) -> int:
        # A connection opened (and will report its close): the generation to pass to
        # :meth:`on_close`.
        with self._lock:
            self.open_connections += 1
            return self.generation

    def on_close(self, generation: int) -> None:
        with self._lock:
            if generation == self.generation and self.open_connections > 0:
                self.open_connections -= 1

    def on_checkout(self, waited: float) -> None:
        lock = self._lock
        lock.acquire()
        try:
            in_flight = self.in_flight = self.in_flight + 1
            if in_flight > self.peak_in_flight:
                self.peak_in_flight = in_flight
            if waited:
                self.pool_wait += waited
        finally:
            lock.release()

    def on_checkin(self) -> None:
        lock = self._lock
        lock.acquire()
        try:
            if self.in_flight > 0:
                self.in_flight -= 1
        finally:
            lock.release()

    def on_response(self, ttfb: float | None, keep_alive_timeout: float | None) -> None:
        lock = self._lock
        lock.acquire()
        try:
            if ttfb is not None:
                samples = self.ttfb
                if len(samples) < TTFB_SAMPLES:
                    samples.append(ttfb)
                else:
                    at = self.ttfb_at
                    samples[at] = ttfb
                    self.ttfb_at = (at + 1) % TTFB_SAMPLES
            if keep_alive_timeout is not None:
                self.keep_alive_timeout = keep_alive_timeout
        finally:
            lock.release()

    def reset_after_fork(self) -> None:
        self._lock = threading.Lock()
        self.in_flight = 0
        # The parent's connections are not this process's to report.
        self.open_connections = 0
        self.generation += 1

    def snapshot(self) -> HostStats:
        from keepwarm._stats import COUNTER_FIELDS, HostStats, percentile

        with self._lock:
            samples = sorted(self.ttfb)
            counts = {name: getattr(self, name) for name in COUNTER_FIELDS}
            return HostStats(
                origin=self.origin,
                pool_wait=self.pool_wait,
                peak_in_flight=self.peak_in_flight,
                keep_alive_timeout=self.keep_alive_timeout,
                ttfb_p50=percentile(samples, 50),
                ttfb_p99=percentile(samples, 99),
                ttfb_max=samples[-1] if samples else None,
                **counts,
            )


class Telemetry:
    # The counters of one transport (adapter), by origin.

    def __init__(
        self,
        *,
        pool_connections: int,
        pool_maxsize: int,
        read_timeout: float | None,
        keepalive_expiry: float | None,
    ) -> None:
        # The settings advice is measured against, made a Limits by snapshot(): the read
        # side (keepwarm._stats) loads when the counters are first read, not with every
        # session (issue 16: memory).
        self._limits = (pool_connections, pool_maxsize, read_timeout, keepalive_expiry)
        self._lock = threading.Lock()
        self._hosts: dict[str, HostCounters] = {}
        _live.add(self)

    def host(self, scheme: str, host: str, port: int | None) -> HostCounters:
        origin = origin_of(scheme, host, port)
        counters = self._hosts.get(origin)
        if counters is None:
            bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
            with self._lock:
                counters = self._hosts.setdefault(origin, HostCounters(origin, scheme, bare, port))
        return counters

    def hosts(self) -> list[HostCounters]:
        # The counters of every origin this transport has talked to.
        with self._lock:
            return list(self._hosts.values())

    @property
    def limits(self) -> Limits:
        from keepwarm._stats import Limits

        return Limits(*self._limits)

    def snapshot(self) -> Stats:
        from keepwarm._stats import Stats

        with self._lock:
            hosts = list(self._hosts.values())
        return Stats(
            hosts={h.origin: h.snapshot() for h in hosts},
            limits=self.limits,
            distinct_hosts=len(hosts),
        )

    def reset(self) -> None:
        # Start counting from zero (pools and connections are untouched).
        #
        # Counters are zeroed in place: every pool holds on to its origin's counters, so
        # replacing them would leave later traffic counted nowhere.
        with self._lock:
            hosts = list(self._hosts.values())
        for counters in hosts:
            counters.zero()

    def reset_after_fork(self) -> None:
        self._lock = threading.Lock()
        for counters in self._hosts.values():
            counters.reset_after_fork()


_new_object: Final = object.__new__


def new_timings(started: float) -> Timings:
    # ``Timings(_started=started)`` for a request starting now, without the constructor's
    # thirteen keyword arguments: every other field reads its class default until set.
    timings: Timings = _new_object(Timings)
    timings._started = started
    return timings


def attach_timings(response: object, timings: Timings) -> None:
    # Let ``response`` (urllib3's or requests') carry ``timings``.
    setattr(response, TIMINGS_ATTRIBUTE, timings)


def timings_of(response: object) -> Timings | None:
    # The Timings ``response`` carries; None when it came through no keepwarm
    # connection with telemetry on.
    value = getattr(response, TIMINGS_ATTRIBUTE, None)
    return value if isinstance(value, Timings) else None


#: Every Telemetry alive in this process (one per keepwarm transport with telemetry on).
_live: weakref.WeakSet[Telemetry] = weakref.WeakSet()


def live_telemetry() -> list[Telemetry]:
    # The telemetry of every live keepwarm transport (for metrics collected on demand).
    return list(_live)


class MetricsHooks:
    # What the request path calls while OpenTelemetry metrics are on; both None (one
    # attribute read per request, per closed connection) while they are off.
    #
    # * ``request(request, response, error, seconds)``: a transport's ``send`` returned
    #   ``response`` or raised ``error`` after ``seconds``;
    # * ``connection_closed(counters, seconds, version)``: a connection to ``counters``'
    #   origin closed after ``seconds`` open, having spoken HTTP ``version`` ("1.1", "2").

    __slots__ = ("connection_closed", "request")

    def __init__(self) -> None:
        self.request: Callable[[Any, Any, BaseException | None, float], None] | None = None
        self.connection_closed: Callable[[HostCounters, float, str], None] | None = None


#: The one set of hooks (set and cleared by ``keepwarm.enable_metrics()`` and
#: ``keepwarm.disable_metrics()``).
METRICS: Final = MetricsHooks()
