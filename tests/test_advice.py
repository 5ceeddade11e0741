"""``stats().advice()``: each rule's exact text and numbers, from hand-built snapshots.

Pure logic: :class:`keepwarm.Stats`, :class:`keepwarm.HostStats` and ``Limits`` are built by
hand (the counters a real session would have produced), so every number in the advice is
known in advance. The end-to-end path (real servers producing the counters) is covered in
``test_telemetry.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

import keepwarm
from keepwarm._advice import MIN_TTFB_SAMPLES, advise
from keepwarm._stats import SERVER_KEEPALIVE_SHARE, Limits

A = "https://api.example.com:443"
B = "http://127.0.0.1:8080"

#: A healthy origin: plenty of requests, almost all reused, fast answers.
HEALTHY: dict[str, Any] = {
    "requests": 100,
    "connections_opened": 1,
    "reused": 99,
    "ttfb_p50": 0.004,
    "ttfb_p99": 0.01,
    "ttfb_max": 0.02,
}


def limits(
    pool_connections: int = 32,
    pool_maxsize: int = 32,
    read_timeout: float | None = 7.0,
    keepalive_expiry: float | None = 4.0,
) -> Limits:
    return Limits(
        pool_connections=pool_connections,
        pool_maxsize=pool_maxsize,
        read_timeout=read_timeout,
        keepalive_expiry=keepalive_expiry,
    )


def host(origin: str = A, **counters: Any) -> keepwarm.HostStats:
    return keepwarm.HostStats(origin=origin, **{**HEALTHY, **counters})


def stats(*hosts: keepwarm.HostStats, lim: Limits | None = None, distinct: int = 0) -> Any:
    return keepwarm.Stats(
        hosts={h.origin: h for h in hosts},
        limits=lim if lim is not None else limits(),
        distinct_hosts=distinct or len(hosts),
    )


# -- no advice --------------------------------------------------------------------------


def test_no_advice_when_everything_is_fine() -> None:
    assert stats(host(), host(B)).advice() == []


def test_no_advice_for_an_empty_snapshot() -> None:
    assert keepwarm.Stats().advice() == []
    assert stats().advice() == []


def test_advice_is_the_advise_function() -> None:
    s = stats(host(discarded=3, peak_in_flight=12), lim=limits(pool_maxsize=10))
    assert s.advice() == advise(s, SERVER_KEEPALIVE_SHARE)


# -- pool full ----------------------------------------------------------------------------


def test_pool_full_names_peak_and_current_size() -> None:
    s = stats(host(discarded=30, peak_in_flight=40), lim=limits(pool_maxsize=10))
    assert s.advice() == [
        f"{A}: 30 connections discarded because the pool was full, peak 40 in flight: "
        "set pool_maxsize >= 40 (now 10)"
    ]


def test_pool_full_without_limits_omits_the_current_size() -> None:
    s = keepwarm.Stats(hosts={A: host(discarded=1, peak_in_flight=33)})
    assert s.advice() == [
        f"{A}: 1 connections discarded because the pool was full, peak 33 in flight: "
        "set pool_maxsize >= 33"
    ]


def test_pool_full_is_per_origin() -> None:
    s = stats(
        host(A, discarded=5, peak_in_flight=15),
        host(B),
        lim=limits(pool_maxsize=10),
    )
    advice = s.advice()
    assert len(advice) == 1
    assert advice[0].startswith(f"{A}: 5 connections discarded")
    assert B not in advice[0]


# -- evictions ------------------------------------------------------------------------------


def test_evictions_name_distinct_hosts_and_current_setting() -> None:
    s = stats(
        host(A, pools_evicted=2),
        host(B, pools_evicted=1),
        lim=limits(pool_connections=2),
        distinct=5,
    )
    assert s.advice() == [
        "3 host pools evicted, 5 distinct hosts: set pool_connections >= 5 (now 2)"
    ]


def test_evictions_count_at_least_the_hosts_in_the_snapshot() -> None:
    # distinct_hosts lower than the hosts seen (merged snapshots): the hosts seen win.
    s = keepwarm.Stats(
        hosts={A: host(A, pools_evicted=4), B: host(B)},
        limits=limits(pool_connections=1),
        distinct_hosts=1,
    )
    assert s.advice() == [
        "4 host pools evicted, 2 distinct hosts: set pool_connections >= 2 (now 1)"
    ]


def test_evictions_come_after_the_per_origin_advice() -> None:
    s = stats(
        host(A, discarded=2, peak_in_flight=12, pools_evicted=1),
        lim=limits(pool_maxsize=10, pool_connections=1),
        distinct=3,
    )
    advice = s.advice()
    assert len(advice) == 2
    assert advice[0].endswith("set pool_maxsize >= 12 (now 10)")
    assert advice[1] == "1 host pools evicted, 3 distinct hosts: set pool_connections >= 3 (now 1)"


# -- low reuse ------------------------------------------------------------------------------


def test_low_reuse() -> None:
    s = stats(host(requests=40, reused=5, connections_opened=35))
    assert s.advice() == [
        f"{A}: only 5 of 40 requests reused a connection (35 opened): the server closes "
        "connections after responses (Connection: close, or a short keep-alive), or "
        "responses are left unread (read or close every streamed response)"
    ]


@pytest.mark.parametrize(
    "counters",
    [
        # too few requests to judge
        {"requests": MIN_TTFB_SAMPLES - 1, "reused": 0, "connections_opened": 19},
        # exactly half reused is fine
        {"requests": 40, "reused": 20, "connections_opened": 20},
    ],
    ids=["too-few-requests", "half-reused"],
)
def test_no_low_reuse_advice(counters: dict[str, int]) -> None:
    assert stats(host(**counters)).advice() == []


def test_low_reuse_is_not_repeated_when_the_pool_was_full() -> None:
    # The pool-full advice explains the low reuse already.
    s = stats(
        host(requests=40, reused=0, connections_opened=40, discarded=30, peak_in_flight=40),
        lim=limits(pool_maxsize=10),
    )
    advice = s.advice()
    assert len(advice) == 1
    assert "set pool_maxsize >= 40 (now 10)" in advice[0]


# -- read timeout ---------------------------------------------------------------------------


def test_read_timeout_too_tight() -> None:
    # 1 s < 2 x p99 (0.6 s); suggested = ceil(max(0.6 * 4, 0.9 * 2)) = 3.
    s = stats(host(ttfb_p50=0.3, ttfb_p99=0.6, ttfb_max=0.9), lim=limits(read_timeout=1.0))
    assert s.advice() == [
        f"{A}: read timeout 1.0 s is close to the time to first byte p99 600 ms: slow "
        "responses will time out; set the read timeout >= 3 s"
    ]


def test_read_timeout_too_tight_worst_case_drives_the_suggestion() -> None:
    # suggested = ceil(max(1.5 * 4, 4.2 * 2)) = ceil(8.4) = 9.
    s = stats(host(ttfb_p50=1.0, ttfb_p99=1.5, ttfb_max=4.2), lim=limits(read_timeout=2.5))
    assert s.advice() == [
        f"{A}: read timeout 2.5 s is close to the time to first byte p99 1.5 s: slow "
        "responses will time out; set the read timeout >= 9 s"
    ]


def test_read_timeout_too_generous() -> None:
    # 60 s > max(50 x 0.1 s, 10 s); suggested = ceil(max(0.05 * 4, 0.1 * 2)) -> at least 1.
    s = stats(host(ttfb_p50=0.02, ttfb_p99=0.05, ttfb_max=0.1), lim=limits(read_timeout=60.0))
    assert s.advice() == [
        f"{A}: read timeout 60 s is far above the slowest time to first byte seen (100 ms, "
        "p99 50 ms): a dead server holds the caller that long; a read timeout of 1 s would do"
    ]


def test_no_read_timeout() -> None:
    # suggested = ceil(max(0.25 * 4, 1.5 * 2)) = 3.
    s = stats(host(ttfb_p50=0.1, ttfb_p99=0.25, ttfb_max=1.5), lim=limits(read_timeout=None))
    assert s.advice() == [
        f"{A}: no read timeout; time to first byte p99 250 ms, max 1.5 s: set "
        "timeout=(connect, 3) so a stalled server cannot hang the caller"
    ]


def test_no_read_timeout_without_max_uses_p99() -> None:
    s = stats(host(ttfb_p50=2.0, ttfb_p99=12.0, ttfb_max=None), lim=limits(read_timeout=None))
    assert s.advice() == [
        f"{A}: no read timeout; time to first byte p99 12 s, max 12 s: set "
        "timeout=(connect, 48) so a stalled server cannot hang the caller"
    ]


@pytest.mark.parametrize(
    ("read_timeout", "ttfb"),
    [
        (7.0, (0.001, 0.002, 0.003)),  # the default: under the 10 s floor of "too generous"
        (10.0, (0.001, 0.002, 0.003)),  # exactly the floor
        (1.2, (0.3, 0.6, 0.9)),  # exactly 2 x p99: not "too tight"
        (60.0, (1.0, 1.1, 1.2)),  # exactly 50 x the worst: not "too generous"
    ],
    ids=["default", "floor", "tight-boundary", "generous-boundary"],
)
def test_read_timeout_within_bounds(read_timeout: float, ttfb: tuple[float, ...]) -> None:
    p50, p99, worst = ttfb
    s = stats(
        host(ttfb_p50=p50, ttfb_p99=p99, ttfb_max=worst), lim=limits(read_timeout=read_timeout)
    )
    assert s.advice() == []


def test_no_read_timeout_advice_from_too_few_requests() -> None:
    s = stats(
        host(requests=MIN_TTFB_SAMPLES - 1, reused=18, ttfb_p99=5.0, ttfb_max=6.0),
        lim=limits(read_timeout=None),
    )
    assert s.advice() == []


def test_no_read_timeout_advice_without_samples_or_limits() -> None:
    assert stats(host(ttfb_p50=None, ttfb_p99=None, ttfb_max=None)).advice() == []
    unlimited = keepwarm.Stats(hosts={A: host(ttfb_p99=5.0, ttfb_max=6.0)})
    assert unlimited.advice() == []


# -- Keep-Alive -----------------------------------------------------------------------------


def test_no_keep_alive_advice_without_idle_expiries() -> None:
    """keepwarm already keeps idle connections at most 80 % of the announced timeout, so an
    announced timeout alone needs no advice, whatever keepalive_expiry is."""
    for expiry in (None, 2.5, 4.0, 10.0):
        s = stats(host(keep_alive_timeout=5.0), lim=limits(keepalive_expiry=expiry))
        assert s.advice() == []


def test_keep_alive_expiry_shorter_than_the_server_allows() -> None:
    s = stats(host(keep_alive_timeout=5.0, idle_expired=7), lim=limits(keepalive_expiry=1.0))
    assert s.advice() == [
        f"{A}: 7 idle connections closed by keepalive_expiry=1 s while the server keeps them "
        "5.0 s (Keep-Alive: timeout=5): set keepalive_expiry up to 4 s to reuse them"
    ]


def test_keep_alive_short_on_the_server() -> None:
    for expiry in (None, 4.0):
        s = stats(host(keep_alive_timeout=0.5, idle_expired=3), lim=limits(keepalive_expiry=expiry))
        assert s.advice() == [
            f"{A}: 3 idle connections closed after 0.4 s, 80 % of the server's 500 ms "
            "(Keep-Alive: timeout=0.5): requests further apart open a new connection; only a "
            "longer keep-alive timeout on the server avoids that"
        ]


def test_no_keep_alive_advice_without_an_announced_timeout() -> None:
    s = stats(host(idle_expired=9), lim=limits(keepalive_expiry=4.0))
    assert s.advice() == []


# -- several rules at once ------------------------------------------------------------------


def test_rules_combine_per_origin_in_order() -> None:
    s = stats(
        host(
            A,
            discarded=3,
            peak_in_flight=14,
            ttfb_p50=0.5,
            ttfb_p99=0.9,
            ttfb_max=1.0,
            keep_alive_timeout=2.0,
            idle_expired=2,
        ),
        host(B, requests=30, reused=3, connections_opened=27),
        lim=limits(pool_maxsize=10, read_timeout=1.0, keepalive_expiry=None),
    )
    advice = s.advice()
    assert [a.startswith(f"{A}: ") for a in advice] == [True, True, True, False]
    assert "set pool_maxsize >= 14 (now 10)" in advice[0]
    assert "set the read timeout >= 4 s" in advice[1]
    assert "Keep-Alive: timeout=2" in advice[2]
    assert advice[3].startswith(f"{B}: only 3 of 30 requests reused a connection (27 opened)")
