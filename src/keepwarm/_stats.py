"""The read side of telemetry: :class:`Stats` snapshots, and the advice drawn from them.

``keepwarm.stats()``, ``session.stats()`` and ``adapter.stats()`` return a :class:`Stats`:
totals over every origin and a :class:`HostStats` per origin, frozen at one moment.
``str()`` makes it a table, ``as_dict()`` a document for machines, and ``advice()``
turns what was observed into concrete settings: each rule names the origin, what was seen
(with the numbers) and the setting to change, so the advice can be acted on without
reading keepwarm's docs.

The write side (live counters, per-response timings) is ``keepwarm._telemetry``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from keepwarm._values import Frozen, fields_of

#: Share of a server's announced keep-alive timeout (``Keep-Alive: timeout=N``) that
#: keepwarm keeps a connection idle: the rest is margin for the request to reach the
#: server before it closes. (Here, not in ``_config``, so the report code of ``keepwarm
#: run``'s supervisor reads stats without loading requests.)
SERVER_KEEPALIVE_SHARE: Final = 0.8

__all__ = [
    "COUNTER_FIELDS",
    "SERVER_KEEPALIVE_SHARE",
    "HostStats",
    "Limits",
    "Stats",
    "merge_stats",
    "percentile",
]

#: The counters that add up across origins and sessions.
COUNTER_FIELDS: Final = (
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
    "http2_connections",
    "refused_resends",
)


def percentile(sorted_samples: list[float], pct: float) -> float | None:
    if not sorted_samples:
        return None
    if len(sorted_samples) == 1:
        return sorted_samples[0]
    import statistics  # on demand: with fractions and decimal, ~3 ms of `import keepwarm`

    cuts = statistics.quantiles(sorted_samples, n=100, method="inclusive")
    return cuts[min(98, max(0, int(pct) - 1))]


_set = object.__setattr__


class HostStats(Frozen):
    """The counters of one origin at one moment."""

    __match_args__ = (
        "origin",
        *COUNTER_FIELDS,
        "pool_wait",
        "peak_in_flight",
        "keep_alive_timeout",
        "ttfb_p50",
        "ttfb_p99",
        "ttfb_max",
    )

    origin: str
    requests: int
    connections_opened: int
    reused: int
    tls_handshakes: int
    discarded: int
    pools_evicted: int
    dropped: int
    idle_expired: int
    retired: int
    retries: int
    stale_retries: int
    #: Connections that negotiated HTTP/2 (also counted in connections_opened).
    http2_connections: int
    #: HTTP/2 streams the server refused unprocessed (GOAWAY, REFUSED_STREAM), sent again
    #: on another connection; not retries, and not counted in requests.
    refused_resends: int
    pool_wait: float
    peak_in_flight: int
    keep_alive_timeout: float | None
    ttfb_p50: float | None
    ttfb_p99: float | None
    ttfb_max: float | None

    def __init__(
        self,
        origin: str,
        requests: int = 0,
        connections_opened: int = 0,
        reused: int = 0,
        tls_handshakes: int = 0,
        discarded: int = 0,
        pools_evicted: int = 0,
        dropped: int = 0,
        idle_expired: int = 0,
        retired: int = 0,
        retries: int = 0,
        stale_retries: int = 0,
        http2_connections: int = 0,
        refused_resends: int = 0,
        pool_wait: float = 0.0,
        peak_in_flight: int = 0,
        keep_alive_timeout: float | None = None,
        ttfb_p50: float | None = None,
        ttfb_p99: float | None = None,
        ttfb_max: float | None = None,
    ) -> None:
        # The instance's __dict__ at once: the constructor's arguments are its fields (a
        # copy: the frame's locals dict is refreshed by anything that reads it again).
        fields = dict(locals())
        del fields["self"]
        _set(self, "__dict__", fields)

    @property
    def reuse_ratio(self) -> float:
        """Share of requests sent on an already used connection."""
        return self.reused / self.requests if self.requests else 0.0


class Limits(Frozen):
    """The settings advice is measured against."""

    __slots__ = ("keepalive_expiry", "pool_connections", "pool_maxsize", "read_timeout")
    __match_args__ = ("pool_connections", "pool_maxsize", "read_timeout", "keepalive_expiry")

    pool_connections: int
    pool_maxsize: int
    read_timeout: float | None
    keepalive_expiry: float | None

    def __init__(
        self,
        pool_connections: int,
        pool_maxsize: int,
        read_timeout: float | None,
        keepalive_expiry: float | None = None,
    ) -> None:
        _set(self, "pool_connections", pool_connections)
        _set(self, "pool_maxsize", pool_maxsize)
        _set(self, "read_timeout", read_timeout)
        _set(self, "keepalive_expiry", keepalive_expiry)


class Stats(Frozen):
    """A snapshot of keepwarm's counters: totals over every origin, and per origin.

    ``str(stats)`` is a readable table; ``as_dict()`` is for machines; ``advice()`` turns
    what was observed into concrete settings.
    """

    __match_args__ = ("hosts", "limits", "distinct_hosts")

    hosts: Mapping[str, HostStats]
    limits: Limits | None
    distinct_hosts: int

    def __init__(
        self,
        hosts: Mapping[str, HostStats] | None = None,
        limits: Limits | None = None,
        distinct_hosts: int = 0,
    ) -> None:
        _set(self, "hosts", {} if hosts is None else hosts)
        _set(self, "limits", limits)
        _set(self, "distinct_hosts", distinct_hosts)

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
    def http2_connections(self) -> int:
        return int(self._total("http2_connections"))

    @property
    def refused_resends(self) -> int:
        return int(self._total("refused_resends"))

    @property
    def pool_wait(self) -> float:
        return float(self._total("pool_wait"))

    @property
    def peak_in_flight(self) -> int:
        return max((h.peak_in_flight for h in self.hosts.values()), default=0)

    def as_dict(self) -> dict[str, Any]:
        totals = {name: getattr(self, name) for name in (*COUNTER_FIELDS, "pool_wait")}
        totals["peak_in_flight"] = self.peak_in_flight
        return {
            **totals,
            "hosts": {origin: fields_of(h) for origin, h in self.hosts.items()},
            "advice": self.advice(),
        }

    def advice(self) -> list[str]:
        """Recommendations with numbers, from what was observed
        (:func:`keepwarm._advice.advise`)."""
        from keepwarm._advice import advise  # loaded when advice is asked for

        return advise(self, SERVER_KEEPALIVE_SHARE)

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
    summed = {name: getattr(a, name) + getattr(b, name) for name in (*COUNTER_FIELDS, "pool_wait")}
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
