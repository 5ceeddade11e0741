"""The advice drawn from :class:`~keepwarm._stats.Stats`: each finding with its numbers
and the setting to change (``Stats.advice()``, ``keepwarm probe``, ``keepwarm run``).

Loaded when advice is first asked for, not with the counters: a process that never asks
does not keep this code in memory (issue 16). It imports nothing of keepwarm's (``_stats``
imports it, when asked): the snapshots arrive as arguments, read by attribute, and the
share of a server's keep-alive timeout keepwarm keeps to with them.
"""

from __future__ import annotations

import math
from typing import Any, Final

#: What is read here: ``keepwarm._stats.HostStats`` (origin, requests, reused,
#: connections_opened, discarded, peak_in_flight, reuse_ratio, idle_expired,
#: keep_alive_timeout, ttfb_p99, ttfb_max) and ``Stats`` (hosts, limits, pools_evicted,
#: distinct_hosts); tests/test_advice.py builds them.
HostStats = Any
Stats = Any

__all__ = ["MIN_TTFB_SAMPLES", "TIMEOUT_EXCESS", "TIMEOUT_HEADROOM", "advise", "reuse_advice"]

#: Fewer samples than this say too little about latency to advise a read timeout.
MIN_TTFB_SAMPLES: Final = 20
#: A read timeout below this multiple of the p99 time to first byte cuts off the slow tail.
TIMEOUT_HEADROOM: Final = 2.0
#: A read timeout above this multiple of the worst observed wait is needlessly generous.
TIMEOUT_EXCESS: Final = 50.0


def _seconds(value: float) -> str:
    if value >= 10:
        return f"{value:.0f} s"
    if value >= 1:
        return f"{value:.1f} s"
    return f"{value * 1000:.0f} ms"


def _round_up(value: float) -> int:
    return max(1, math.ceil(value))


def advise(stats: Stats, keepalive_share: float) -> list[str]:
    """Every finding for ``stats``; ``keepalive_share`` is ``SERVER_KEEPALIVE_SHARE``."""
    advice: list[str] = []
    limits = stats.limits
    for h in stats.hosts.values():
        advice.extend(_pool_size(h, limits.pool_maxsize if limits else None))
        advice.extend(reuse_advice(h))
        advice.extend(_read_timeout(h, limits.read_timeout if limits else None, limits))
        advice.extend(_keep_alive(h, limits.keepalive_expiry if limits else None, keepalive_share))
    evicted = stats.pools_evicted
    if evicted:
        needed = max(stats.distinct_hosts, len(stats.hosts))
        current = f" (now {limits.pool_connections})" if limits else ""
        advice.append(
            f"{evicted} host pools evicted, {needed} distinct hosts: "
            f"set pool_connections >= {needed}{current}"
        )
    return advice


def _pool_size(h: HostStats, pool_maxsize: int | None) -> list[str]:
    if not h.discarded:
        return []
    current = f" (now {pool_maxsize})" if pool_maxsize is not None else ""
    return [
        f"{h.origin}: {h.discarded} connections discarded because the pool was full, "
        f"peak {h.peak_in_flight} in flight: set pool_maxsize >= {h.peak_in_flight}{current}"
    ]


def reuse_advice(h: HostStats) -> list[str]:
    if h.requests < MIN_TTFB_SAMPLES or h.discarded or h.reuse_ratio >= 0.5:
        return []
    if h.connections_opened <= h.peak_in_flight:
        # Every connection was needed at once (a cold burst): concurrency, not the server.
        return []
    return [
        f"{h.origin}: only {h.reused} of {h.requests} requests reused a connection "
        f"({h.connections_opened} opened): the server closes connections after responses "
        "(Connection: close, or a short keep-alive), or responses are left unread "
        "(read or close every streamed response)"
    ]


def _read_timeout(h: HostStats, read_timeout: float | None, limits: object) -> list[str]:
    if h.ttfb_p99 is None or h.requests < MIN_TTFB_SAMPLES or limits is None:
        return []
    p99 = h.ttfb_p99
    worst = h.ttfb_max or p99
    suggested = _round_up(max(p99 * TIMEOUT_HEADROOM * 2, worst * TIMEOUT_HEADROOM))
    if read_timeout is None:
        return [
            f"{h.origin}: no read timeout; time to first byte p99 {_seconds(p99)}, max "
            f"{_seconds(worst)}: set timeout=(connect, {suggested}) so a stalled server "
            "cannot hang the caller"
        ]
    if read_timeout < p99 * TIMEOUT_HEADROOM:
        return [
            f"{h.origin}: read timeout {_seconds(read_timeout)} is close to the time to "
            f"first byte p99 {_seconds(p99)}: slow responses will time out; set the read "
            f"timeout >= {suggested} s"
        ]
    if read_timeout > max(worst * TIMEOUT_EXCESS, 10.0):
        return [
            f"{h.origin}: read timeout {_seconds(read_timeout)} is far above the slowest "
            f"time to first byte seen ({_seconds(worst)}, p99 {_seconds(p99)}): a dead "
            f"server holds the caller that long; a read timeout of {suggested} s would do"
        ]
    return []


def _keep_alive(h: HostStats, keepalive_expiry: float | None, share: float) -> list[str]:
    """Advice only when idle expiry cost reconnects: keepwarm already keeps a host's idle
    connections at most ``share`` (80 %) of the server's announced ``Keep-Alive: timeout=N``."""
    server = h.keep_alive_timeout
    if server is None or not h.idle_expired:
        return []
    allowed = server * share
    announced = f"Keep-Alive: timeout={server:g}"
    if keepalive_expiry is not None and keepalive_expiry < allowed:
        return [
            f"{h.origin}: {h.idle_expired} idle connections closed by keepalive_expiry="
            f"{keepalive_expiry:g} s while the server keeps them {_seconds(server)} "
            f"({announced}): set keepalive_expiry up to {allowed:g} s to reuse them"
        ]
    return [
        f"{h.origin}: {h.idle_expired} idle connections closed after {allowed:g} s, "
        f"{share * 100:g} % of "
        f"the server's {_seconds(server)} ({announced}): requests further apart open a new "
        "connection; only a longer keep-alive timeout on the server avoids that"
    ]
