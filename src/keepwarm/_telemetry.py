"""Counters and timings that show whether connections are really reused.

Plain requests only writes DEBUG log lines ("Starting new HTTPS connection (2)"), so people
count TIME_WAIT sockets or run packet captures to find out. keepwarm counts, per session
and per origin (scheme, host, port):

* ``requests``: requests written to a connection (each retry counts);
* ``connections_opened``: new TCP connections; ``tls_handshakes``: TLS handshakes;
* ``reused``: requests sent on a connection that had served a request before;
* ``discarded``: connections closed because the pool was full ("Connection pool is full,
  discarding connection");
* ``pools_evicted``: whole host pools closed because more hosts were used than
  ``pool_connections``;
* ``dropped``: pooled connections found closed by the server before reuse;
* ``idle_expired``: pooled connections closed by keepwarm for being idle too long;
* ``retired``: connections closed for reaching ``max_connection_age``;
* ``retries``: retries made by the retry policy;
* ``stale_retries``: requests resent once on a fresh connection because the reused one
  turned out dead (these do not spend the retry policy's retries);
* ``pool_wait``: seconds spent waiting for a free connection (``pool_block=True``);
* ``peak_in_flight``: most requests in flight to one origin at once.

Each response also carries its :class:`Timings` (``keepwarm.timings(response)``).

Cost: a few ``perf_counter()`` calls and one uncontended lock per request; measured in
``benchmarks/telemetry_overhead.py`` and recorded in ``docs/PERFORMANCE.md``.
"""

from __future__ import annotations

import collections
import statistics
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Final

__all__ = [
    "HostCounters",
    "HostStats",
    "Stats",
    "Telemetry",
    "Timings",
    "merge_stats",
]

#: Time-to-first-byte samples kept per origin for percentiles (the most recent ones).
TTFB_SAMPLES: Final = 1024

_COUNTER_FIELDS: Final = (
    "requests",
    "connections_opened",
    "reused",
    "tls_handshakes",
    "discarded",
    "pools_evicted",
    "dropped",
    "idle_expired",
    "retired",
    "retries",
    "stale_retries",
)


@dataclass
class Timings:
    """Where the time of one request went, like ``curl -w``; seconds, None if skipped.

    A request on a reused connection has no ``dns``, ``connect`` or ``tls`` phase: that
    is the saving keepwarm is about.
    """

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
    #: "HTTP/1.1", "HTTP/2", ...
    http_version: str | None = None
    #: "TLSv1.3", "TLSv1.2", ... (None for plain HTTP).
    tls_version: str | None = None
    #: Retries the retry policy made before this response.
    retries: int = 0
    # perf_counter() marks, private: where the phases start and end.
    _started: float = field(default=0.0, repr=False)
    _headers_at: float | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

    def finish(self, now: float) -> None:
        """Record the end of the body."""
        if self.total is None:
            self.total = now - self._started
            if self._headers_at is not None:
                self.receive = now - self._headers_at


class HostCounters:
    """The live counters of one origin; updated from many threads under one lock."""

    __slots__ = (
        "_lock",
        "connections_opened",
        "discarded",
        "dropped",
        "idle_expired",
        "in_flight",
        "keep_alive_timeout",
        "origin",
        "peak_in_flight",
        "pool_wait",
        "pools_evicted",
        "requests",
        "retired",
        "retries",
        "reused",
        "stale_retries",
        "tls_handshakes",
        "ttfb",
    )

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self._lock = threading.Lock()
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
        self.pool_wait = 0.0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.keep_alive_timeout: float | None = None
        self.ttfb: collections.deque[float] = collections.deque(maxlen=TTFB_SAMPLES)

    def zero(self) -> None:
        with self._lock:
            for name in _COUNTER_FIELDS:
                setattr(self, name, 0)
            self.pool_wait = 0.0
            self.peak_in_flight = self.in_flight
            self.keep_alive_timeout = None
            self.ttfb.clear()

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def on_request(self, reused: bool) -> None:
        with self._lock:
            self.requests += 1
            if reused:
                self.reused += 1

    def on_connect(self, tls: bool) -> None:
        with self._lock:
            self.connections_opened += 1
            if tls:
                self.tls_handshakes += 1

    def on_checkout(self, waited: float) -> None:
        with self._lock:
            self.in_flight += 1
            if self.in_flight > self.peak_in_flight:
                self.peak_in_flight = self.in_flight
            self.pool_wait += waited

    def on_checkin(self) -> None:
        with self._lock:
            if self.in_flight > 0:
                self.in_flight -= 1

    def on_response(self, ttfb: float | None, keep_alive_timeout: float | None) -> None:
        with self._lock:
            if ttfb is not None:
                self.ttfb.append(ttfb)
            if keep_alive_timeout is not None:
                self.keep_alive_timeout = keep_alive_timeout

    def reset_after_fork(self) -> None:
        self._lock = threading.Lock()
        self.in_flight = 0

    def snapshot(self) -> HostStats:
        with self._lock:
            samples = sorted(self.ttfb)
            counts = {name: getattr(self, name) for name in _COUNTER_FIELDS}
            return HostStats(
                origin=self.origin,
                pool_wait=self.pool_wait,
                peak_in_flight=self.peak_in_flight,
                keep_alive_timeout=self.keep_alive_timeout,
                ttfb_p50=_percentile(samples, 50),
                ttfb_p99=_percentile(samples, 99),
                ttfb_max=samples[-1] if samples else None,
                **counts,
            )


def _percentile(sorted_samples: list[float], pct: float) -> float | None:
    if not sorted_samples:
        return None
    if len(sorted_samples) == 1:
        return sorted_samples[0]
    cuts = statistics.quantiles(sorted_samples, n=100, method="inclusive")
    return cuts[min(98, max(0, int(pct) - 1))]


@dataclass(frozen=True)
class HostStats:
    """The counters of one origin at one moment."""

    origin: str
    requests: int = 0
    connections_opened: int = 0
    reused: int = 0
    tls_handshakes: int = 0
    discarded: int = 0
    pools_evicted: int = 0
    dropped: int = 0
    idle_expired: int = 0
    retired: int = 0
    retries: int = 0
    stale_retries: int = 0
    pool_wait: float = 0.0
    peak_in_flight: int = 0
    keep_alive_timeout: float | None = None
    ttfb_p50: float | None = None
    ttfb_p99: float | None = None
    ttfb_max: float | None = None

    @property
    def reuse_ratio(self) -> float:
        """Share of requests sent on an already used connection."""
        return self.reused / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Limits:
    """The settings advice is measured against."""

    pool_connections: int
    pool_maxsize: int
    read_timeout: float | None
    keepalive_expiry: float | None = None


@dataclass(frozen=True)
class Stats:
    """A snapshot of keepwarm's counters: totals over every origin, and per origin.

    ``str(stats)`` is a readable table; ``as_dict()`` is for machines; ``advice()`` turns
    what was observed into concrete settings.
    """

    hosts: Mapping[str, HostStats] = field(default_factory=dict)
    limits: Limits | None = None
    distinct_hosts: int = 0

    def _total(self, name: str) -> Any:
        return sum(getattr(h, name) for h in self.hosts.values())

    @property
    def requests(self) -> int:
        return int(self._total("requests"))

    @property
    def connections_opened(self) -> int:
        return int(self._total("connections_opened"))

    @property
    def reused(self) -> int:
        return int(self._total("reused"))

    @property
    def tls_handshakes(self) -> int:
        return int(self._total("tls_handshakes"))

    @property
    def discarded(self) -> int:
        return int(self._total("discarded"))

    @property
    def pools_evicted(self) -> int:
        return int(self._total("pools_evicted"))

    @property
    def dropped(self) -> int:
        return int(self._total("dropped"))

    @property
    def idle_expired(self) -> int:
        return int(self._total("idle_expired"))

    @property
    def retired(self) -> int:
        return int(self._total("retired"))

    @property
    def retries(self) -> int:
        return int(self._total("retries"))

    @property
    def stale_retries(self) -> int:
        return int(self._total("stale_retries"))

    @property
    def pool_wait(self) -> float:
        return float(self._total("pool_wait"))

    @property
    def peak_in_flight(self) -> int:
        return max((h.peak_in_flight for h in self.hosts.values()), default=0)

    def as_dict(self) -> dict[str, Any]:
        totals = {name: getattr(self, name) for name in (*_COUNTER_FIELDS, "pool_wait")}
        totals["peak_in_flight"] = self.peak_in_flight
        return {
            **totals,
            "hosts": {origin: asdict(h) for origin, h in self.hosts.items()},
            "advice": self.advice(),
        }

    def advice(self) -> list[str]:
        """Recommendations with numbers, from what was observed."""
        from keepwarm._advice import advise

        return advise(self)

    def __str__(self) -> str:
        columns = (
            ("origin", "origin"),
            ("requests", "requests"),
            ("opened", "connections_opened"),
            ("reused", "reused"),
            ("tls", "tls_handshakes"),
            ("discarded", "discarded"),
            ("dropped", "dropped"),
            ("expired", "idle_expired"),
            ("retries", "retries"),
            ("stale", "stale_retries"),
            ("peak", "peak_in_flight"),
        )
        rows = [[title for title, _ in columns]]
        for h in self.hosts.values():
            rows.append([str(getattr(h, name)) for _, name in columns])
        if len(self.hosts) != 1:
            rows.append(["total"] + [str(getattr(self, name)) for _, name in columns[1:]])
        widths = [max(len(r[i]) for r in rows) for i in range(len(columns))]
        lines = [
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
            for row in rows
        ]
        return "\n".join(lines)


def merge_stats(parts: Iterable[Stats]) -> Stats:
    """Stats of several sessions as one (counters of the same origin are added)."""
    hosts: dict[str, HostStats] = {}
    limits: Limits | None = None
    distinct = 0
    for part in parts:
        limits = limits or part.limits
        distinct += part.distinct_hosts
        for origin, h in part.hosts.items():
            hosts[origin] = _add(hosts[origin], h) if origin in hosts else h
    return Stats(hosts=hosts, limits=limits, distinct_hosts=max(distinct, len(hosts)))


def _add(a: HostStats, b: HostStats) -> HostStats:
    summed = {name: getattr(a, name) + getattr(b, name) for name in (*_COUNTER_FIELDS, "pool_wait")}
    return HostStats(
        origin=a.origin,
        peak_in_flight=max(a.peak_in_flight, b.peak_in_flight),
        keep_alive_timeout=a.keep_alive_timeout
        if a.keep_alive_timeout is not None
        else b.keep_alive_timeout,
        ttfb_p50=_max_opt(a.ttfb_p50, b.ttfb_p50),
        ttfb_p99=_max_opt(a.ttfb_p99, b.ttfb_p99),
        ttfb_max=_max_opt(a.ttfb_max, b.ttfb_max),
        **summed,
    )


def _max_opt(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


class Telemetry:
    """The counters of one transport (adapter), by origin."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._hosts: dict[str, HostCounters] = {}

    def host(self, scheme: str, host: str, port: int | None) -> HostCounters:
        origin = _origin(scheme, host, port)
        counters = self._hosts.get(origin)
        if counters is None:
            with self._lock:
                counters = self._hosts.setdefault(origin, HostCounters(origin))
        return counters

    def snapshot(self) -> Stats:
        with self._lock:
            hosts = list(self._hosts.values())
        return Stats(
            hosts={h.origin: h.snapshot() for h in hosts},
            limits=self.limits,
            distinct_hosts=len(hosts),
        )

    def reset(self) -> None:
        """Start counting from zero (pools and connections are untouched).

        Counters are zeroed in place: every pool holds on to its origin's counters, so
        replacing them would leave later traffic counted nowhere."""
        with self._lock:
            hosts = list(self._hosts.values())
        for counters in hosts:
            counters.zero()

    def reset_after_fork(self) -> None:
        self._lock = threading.Lock()
        for counters in self._hosts.values():
            counters.reset_after_fork()


_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def _origin(scheme: str, host: str, port: int | None) -> str:
    port = port or _DEFAULT_PORTS.get(scheme)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"
