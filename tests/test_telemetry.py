"""Telemetry against real local servers: counters (``stats()``) and per-request timings.

Every counter is checked three ways where it applies: the session's totals, the per-origin
``stats.hosts[origin]`` entry, and what the server itself saw (connections accepted,
requests handled), so "reused" means one accepted TCP connection and not a guess.
Shared sessions (``keepwarm.session()``, ``install()``-ed ``requests.get``) are checked
through ``keepwarm.stats()``.
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

import keepwarm
from forking import run_in_child
from servers import (
    Flaky,
    LocalServer,
    RawServer,
    ServerRequest,
    ServerResponse,
    default_handler,
    reset_after_request,
    respond_with,
)

ServerFactory = Callable[..., LocalServer]

#: Counter totals every Stats snapshot has as attributes (and in as_dict()).
COUNTERS = (
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
    "pool_wait",
    "peak_in_flight",
)
TIMING_KEYS = {
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
}


def fetch(session: requests.Session, url: str, **kwargs: Any) -> requests.Response:
    """GET *url*, check the status, read the body and close the response."""
    with session.get(url, timeout=10, **kwargs) as response:
        response.raise_for_status()
        _ = response.content
    return response


def origin(server: LocalServer) -> str:
    return f"{server.scheme}://127.0.0.1:{server.port}"


def burst(session: requests.Session, url: str, threads: int = 40) -> None:
    """*threads* threads released together by a barrier, one GET each; bounded in time."""
    barrier = threading.Barrier(threads, timeout=10)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            fetch(session, url)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    workers = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=20)
    assert not any(w.is_alive() for w in workers), "a burst thread did not finish"
    assert errors == []


def delayed(seconds: float) -> Callable[[ServerRequest], ServerResponse]:
    """A handler answering 200 ``ok`` after *seconds* (so a burst's requests overlap)."""

    def handler(request: ServerRequest) -> ServerResponse:
        return ServerResponse(200, [("Content-Type", "text/plain")], b"ok", delay=seconds)

    return handler


def keep_alive_header(value: str) -> Callable[[ServerRequest], ServerResponse]:
    def handler(request: ServerRequest) -> ServerResponse:
        return ServerResponse(200, [("Keep-Alive", value)], b"ok")

    return handler


# -- reuse counters -----------------------------------------------------------------------


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_sequential_requests_reuse_one_connection(
    make_server: ServerFactory, ca_bundle: str, tls: bool
) -> None:
    server = make_server(default_handler, tls=tls)
    with keepwarm.Session(verify=ca_bundle) as s:
        for _ in range(100):
            fetch(s, server.url)
        stats = s.stats()
    handshakes = 1 if tls else 0
    for counters in (stats, stats.hosts[origin(server)]):
        assert counters.requests == 100
        assert counters.connections_opened == 1
        assert counters.reused == 99
        assert counters.tls_handshakes == handshakes
        assert counters.discarded == 0
        assert counters.dropped == 0
        assert counters.retries == 0
        assert counters.peak_in_flight == 1
    assert list(stats.hosts) == [origin(server)]
    assert stats.hosts[origin(server)].reuse_ratio == pytest.approx(0.99)
    assert server.connections_accepted == 1
    assert server.requests_handled == 100


def test_shared_session_and_installed_requests_get_count_in_keepwarm_stats(
    http_server: LocalServer,
) -> None:
    for _ in range(5):
        fetch(keepwarm.session(), http_server.url)
    keepwarm.install()
    for _ in range(5):
        with requests.get(http_server.url, timeout=10) as r:
            assert r.status_code == 200
            assert keepwarm.timings(r) is not None
    with requests.request("GET", http_server.url, timeout=10) as r:
        assert r.status_code == 200

    stats = keepwarm.stats()
    for counters in (stats, stats.hosts[origin(http_server)]):
        assert counters.requests == 11
        assert counters.connections_opened == 1
        assert counters.reused == 10
        assert counters.tls_handshakes == 0
        assert counters.discarded == 0
    assert keepwarm.session().stats().requests == 11
    assert http_server.connections_accepted == 1


def test_keepwarm_stats_merges_every_shared_session(http_server: LocalServer) -> None:
    fetch(keepwarm.session(), http_server.url)
    fetch(keepwarm.session("other"), http_server.url)
    fetch(keepwarm.session("other"), http_server.url)
    stats = keepwarm.stats()
    host = stats.hosts[origin(http_server)]
    assert (stats.requests, stats.connections_opened, stats.reused) == (3, 2, 1)
    assert (host.requests, host.connections_opened, host.reused) == (3, 2, 1)
    # A private Session is not a shared one.
    with keepwarm.Session() as private:
        fetch(private, http_server.url)
    assert keepwarm.stats().requests == 3


def test_server_closing_after_each_response_is_not_a_drop(make_server: ServerFactory) -> None:
    server = make_server(lambda request: ServerResponse(200, [], b"ok", close=True))
    with keepwarm.Session() as s:
        for _ in range(10):
            fetch(s, server.url)
        stats = s.stats()
    for counters in (stats, stats.hosts[origin(server)]):
        assert counters.requests == 10
        assert counters.connections_opened == 10
        assert counters.reused == 0
        assert counters.dropped == 0
        assert counters.stale_retries == 0
        assert counters.discarded == 0
    assert server.connections_accepted == 10


def test_connection_closed_by_an_idle_server_counts_as_dropped(
    make_server: ServerFactory,
) -> None:
    server = make_server(default_handler, idle_timeout=0.2)
    with keepwarm.Session() as s:
        fetch(s, server.url)
        # Wait (bounded) until the server has closed the idle connection.
        assert server.wait_for_no_connections(5.0)
        time.sleep(0.05)  # let the FIN reach the client's socket
        second = fetch(s, server.url)
        stats = s.stats()
    assert second.status_code == 200
    for counters in (stats, stats.hosts[origin(server)]):
        assert counters.requests == 2
        assert counters.dropped >= 1
        assert counters.connections_opened == 2
        assert counters.reused == 0
    assert server.connections_accepted == 2


# -- pool size ------------------------------------------------------------------------------


def test_burst_beyond_a_fixed_pool_discards_and_advises(make_server: ServerFactory) -> None:
    server = make_server(delayed(0.1))
    # guards=False: the burst saturates the pool on purpose (the guard: test_guards_load.py).
    with keepwarm.Session(pool_maxsize=10, guards=False) as s:
        burst(s, server.url)
        stats = s.stats()
    host = stats.hosts[origin(server)]
    peak = stats.peak_in_flight
    assert 10 < peak <= 40
    for counters in (stats, host):
        assert counters.requests == 40
        assert counters.discarded > 0
        assert counters.peak_in_flight == peak
    # Every connection beyond the 10 kept was closed after its request.
    assert stats.discarded == stats.connections_opened - 10
    advice = stats.advice()
    assert any(f"set pool_maxsize >= {peak} (now 10)" in a for a in advice), advice
    assert any(
        a.startswith(f"{origin(server)}: {host.discarded} connections discarded") for a in advice
    )


def test_auto_pool_maxsize_grows_so_later_bursts_discard_nothing(
    make_server: ServerFactory,
) -> None:
    server = make_server(delayed(0.1))
    discards: list[int] = []
    opened: list[int] = []
    with keepwarm.Session(pool_maxsize="auto") as s:
        for _ in range(3):
            before = s.stats()
            burst(s, server.url)
            after = s.stats()
            discards.append(after.discarded - before.discarded)
            opened.append(after.connections_opened - before.connections_opened)
        stats = s.stats()
        assert stats.peak_in_flight > keepwarm.DEFAULT_POOL_MAXSIZE
        # The pool kept more connections than its starting size: every one opened is
        # still open on the server, and later bursts opened none.
        assert server.open_connections == stats.connections_opened
        assert stats.connections_opened > keepwarm.DEFAULT_POOL_MAXSIZE
    assert discards[-1] == 0, discards
    assert opened[1:] == [0, 0], opened
    assert stats.requests == 120
    assert stats.hosts[origin(server)].discarded == stats.discarded == sum(discards)
    assert not any("pool_maxsize" in a for a in stats.advice())


def test_auto_pool_maxsize_cannot_block() -> None:
    with pytest.raises(ValueError, match="pool_block"):
        keepwarm.Session(pool_maxsize="auto", pool_block=True)


def test_more_hosts_than_pool_connections_evicts_pools(make_server: ServerFactory) -> None:
    servers = [make_server(default_handler) for _ in range(4)]
    with keepwarm.Session(pool_connections=2) as s:
        for _ in range(3):
            for server in servers:
                fetch(s, server.url)
        stats = s.stats()
    # Round-robin over 4 hosts with room for 2 pools: every request after the first two
    # finds its pool evicted, so it opens a new connection.
    assert stats.pools_evicted == 10
    assert stats.connections_opened == 12
    assert stats.reused == 0
    assert sum(stats.hosts[origin(srv)].pools_evicted for srv in servers) == 10
    assert all(stats.hosts[origin(srv)].requests == 3 for srv in servers)
    assert stats.distinct_hosts == 4
    assert f"{stats.pools_evicted} host pools evicted, 4 distinct hosts: " in "\n".join(
        stats.advice()
    )
    assert any("set pool_connections >= 4 (now 2)" in a for a in stats.advice())


def test_the_pool_in_use_is_the_last_evicted(make_server: ServerFactory) -> None:
    # A pool found again by its remembered key is marked recently used in urllib3's
    # container, as its own lookup marks it: with room for two pools, A B A C evicts B.
    a, b, c = (make_server(default_handler) for _ in range(3))
    with keepwarm.Session(pool_connections=2) as s:
        for server in (a, b, a, c, a):
            fetch(s, server.url)
        stats = s.stats()
    assert stats.hosts[origin(b)].pools_evicted == 1
    assert stats.hosts[origin(a)].pools_evicted == 0
    assert stats.hosts[origin(a)].reused == 2
    assert stats.hosts[origin(a)].connections_opened == 1


def test_the_pool_last_used_is_not_handed_out_once_closed(make_server: ServerFactory) -> None:
    # The pool found last is handed out again without asking urllib3's container while
    # it is the most recently used there; once the container's pools are cleared (closed),
    # the next request gets a new pool.
    server = make_server(default_handler)
    with keepwarm.Session() as s:
        first = fetch(s, server.url).raw._pool
        assert fetch(s, server.url).raw._pool is first
        s.get_adapter(server.url).poolmanager.clear()
        again = fetch(s, server.url).raw._pool
        stats = s.stats()
    assert again is not first and first.pool is None
    assert stats.hosts[origin(server)].connections_opened == 2


def test_closing_a_session_is_not_an_eviction(make_server: ServerFactory) -> None:
    servers = [make_server(default_handler) for _ in range(2)]
    s = keepwarm.Session(pool_connections=2)
    with s:
        for server in servers:
            fetch(s, server.url)
    assert s.stats().pools_evicted == 0


# -- retries and waits ----------------------------------------------------------------------


def test_retries_are_counted(make_server: ServerFactory) -> None:
    flaky = Flaky(times=2, status=503)
    server = make_server(flaky)
    with keepwarm.Session(max_retries=keepwarm.RetryPolicy(backoff_factor=0)) as s:
        response = fetch(s, server.url)
        stats = s.stats()
    assert response.status_code == 200
    for counters in (stats, stats.hosts[origin(server)]):
        assert counters.retries == 2
        assert counters.requests == 3
        assert counters.connections_opened == 1
        assert counters.reused == 2
    timings = keepwarm.timings(response)
    assert timings is not None
    assert timings.retries == 2
    assert flaky.count("/") == 3


def test_pool_wait_is_measured(http_server: LocalServer) -> None:
    with keepwarm.Session(pool_maxsize=1, pool_block=True, pool_timeout=2) as s:
        holding = threading.Event()
        errors: list[BaseException] = []

        def hold() -> None:
            try:
                with s.get(http_server.url, stream=True, timeout=10) as r:
                    holding.set()
                    time.sleep(0.3)
                    _ = r.content
            except BaseException as exc:
                errors.append(exc)
                holding.set()

        holder = threading.Thread(target=hold, daemon=True)
        holder.start()
        assert holding.wait(5)
        started = time.monotonic()
        fetch(s, http_server.url)
        waited = time.monotonic() - started
        holder.join(5)
        assert not holder.is_alive()
        assert errors == []
        stats = s.stats()
    for counters in (stats, stats.hosts[origin(http_server)]):
        assert counters.pool_wait >= 0.2
        assert counters.pool_wait <= waited + 0.05
        assert counters.requests == 2
        assert counters.discarded == 0
        assert counters.peak_in_flight == 1
    assert http_server.connections_accepted == 1


# -- Keep-Alive -----------------------------------------------------------------------------


def test_keep_alive_timeout_is_recorded_and_advised(make_server: ServerFactory) -> None:
    # The server keeps idle connections 0.5 s: keepwarm closes them after 0.4 s, so a
    # request 0.6 s later opens a new connection, and the advice says why.
    server = make_server(keep_alive_header("timeout=0.5"))
    with keepwarm.Session() as s:
        fetch(s, server.url)
        time.sleep(0.6)
        fetch(s, server.url)
        stats = s.stats()
    host_stats = stats.hosts[origin(server)]
    assert host_stats.keep_alive_timeout == 0.5
    assert host_stats.idle_expired == 1
    assert server.connections_accepted == 2
    assert [a for a in stats.advice() if "Keep-Alive" in a] == [
        f"{origin(server)}: 1 idle connections closed after 0.4 s, 80 % of the server's "
        "500 ms (Keep-Alive: timeout=0.5): requests further apart open a new connection; "
        "only a longer keep-alive timeout on the server avoids that"
    ]


def test_a_short_keepalive_expiry_is_advised_up_to_the_servers(
    make_server: ServerFactory,
) -> None:
    server = make_server(keep_alive_header("timeout=5, max=100"))
    with keepwarm.Session(keepalive_expiry=0.2) as s:
        fetch(s, server.url)
        time.sleep(0.35)
        fetch(s, server.url)
        stats = s.stats()
    assert stats.idle_expired == 1
    assert [a for a in stats.advice() if "Keep-Alive" in a] == [
        f"{origin(server)}: 1 idle connections closed by keepalive_expiry=0.2 s while the "
        "server keeps them 5.0 s (Keep-Alive: timeout=5): set keepalive_expiry up to 4 s to "
        "reuse them"
    ]


def test_keep_alive_longer_than_keepalive_expiry_needs_no_advice(
    make_server: ServerFactory,
) -> None:
    server = make_server(keep_alive_header("timeout=5, max=100"))
    with keepwarm.Session() as s:  # keepalive_expiry defaults to 4 s, shorter than 5 s
        assert s.settings.keepalive_expiry is not None
        assert s.settings.keepalive_expiry < 5
        fetch(s, server.url)
        stats = s.stats()
    assert stats.hosts[origin(server)].keep_alive_timeout == 5
    assert [a for a in stats.advice() if "Keep-Alive" in a] == []


def test_no_keep_alive_header_no_keep_alive_timeout(http_server: LocalServer) -> None:
    with keepwarm.Session() as s:
        fetch(s, http_server.url)
        assert s.stats().hosts[origin(http_server)].keep_alive_timeout is None


# -- time to first byte ---------------------------------------------------------------------


def test_ttfb_percentiles(http_server: LocalServer) -> None:
    with keepwarm.Session() as s:
        for _ in range(20):
            fetch(s, http_server.url + "/sleep?s=0.01")
        host = s.stats().hosts[origin(http_server)]
    assert host.ttfb_p50 is not None
    assert host.ttfb_p99 is not None
    assert host.ttfb_max is not None
    assert 0.005 <= host.ttfb_p50 <= host.ttfb_p99 <= host.ttfb_max < 5


def test_no_ttfb_before_any_request(http_server: LocalServer) -> None:
    with keepwarm.Session() as s:
        assert s.stats().hosts == {}
        assert s.stats().requests == 0


# -- reset and switching telemetry off ------------------------------------------------------


def test_reset_stats_zeroes(http_server: LocalServer) -> None:
    with keepwarm.Session() as s:
        for _ in range(3):
            fetch(s, http_server.url)
        assert s.stats().requests == 3
        s.reset_stats()
        stats = s.stats()
    # Whether a zeroed origin is still listed is the implementation's choice.
    for counters in (stats, *stats.hosts.values()):
        for name in COUNTERS:
            assert getattr(counters, name) == 0, name


def test_reset_stats_counts_again_afterwards(http_server: LocalServer) -> None:
    # Only the counters start over: the pooled connection is kept and reused.
    with keepwarm.Session() as s:
        fetch(s, http_server.url)
        s.reset_stats()
        fetch(s, http_server.url)
        fetch(s, http_server.url)
        stats = s.stats()
    assert stats.requests == 2
    assert stats.reused == 2
    assert stats.connections_opened == 0
    host = stats.hosts[origin(http_server)]
    assert (host.requests, host.reused, host.connections_opened) == (2, 2, 0)
    assert http_server.connections_accepted == 1


def _check_telemetry_off(session: requests.Session, server: LocalServer) -> None:
    accepted = server.connections_accepted
    responses = [fetch(session, server.url) for _ in range(5)]
    assert all(r.status_code == 200 for r in responses)
    assert all(keepwarm.timings(r) is None for r in responses)
    stats = session.stats()  # type: ignore[attr-defined]
    assert stats.hosts == {}
    assert stats.requests == 0
    assert stats.advice() == []
    # Still keepwarm's pools: the connection is reused even though nothing is counted.
    assert server.connections_accepted == accepted + 1


def test_telemetry_false_session_keyword(http_server: LocalServer) -> None:
    with keepwarm.Session(telemetry=False) as s:
        assert s.settings.telemetry is False
        _check_telemetry_off(s, http_server)


def test_telemetry_false_for_a_shared_session(http_server: LocalServer) -> None:
    s = keepwarm.session("quiet", telemetry=False)
    assert s.settings.telemetry is False
    _check_telemetry_off(s, http_server)


def test_keepwarm_telemetry_variable_false(
    http_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEPWARM_TELEMETRY", "false")
    with keepwarm.Session() as s:
        assert s.settings.telemetry is False
        _check_telemetry_off(s, http_server)
    # The shared session (and install()) see the variable too.
    _check_telemetry_off(keepwarm.session(), http_server)
    assert keepwarm.stats().hosts == {}


def test_configure_telemetry_false(http_server: LocalServer) -> None:
    keepwarm.configure(telemetry=False)
    with keepwarm.Session() as s:
        _check_telemetry_off(s, http_server)


# -- threads and fork -----------------------------------------------------------------------


def test_counters_are_exact_under_threads(http_server: LocalServer) -> None:
    threads, per_thread = 16, 50
    barrier = threading.Barrier(threads, timeout=10)
    errors: list[BaseException] = []
    with keepwarm.Session() as s:

        def work() -> None:
            try:
                barrier.wait()
                for _ in range(per_thread):
                    fetch(s, http_server.url)
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=30)
        assert not any(w.is_alive() for w in workers)
        assert errors == []
        stats = s.stats()
    for counters in (stats, stats.hosts[origin(http_server)]):
        assert counters.requests == threads * per_thread
        assert 1 <= counters.connections_opened <= threads
        assert counters.reused == counters.requests - counters.connections_opened
        assert counters.discarded == 0
        assert counters.dropped == 0
        assert 1 <= counters.peak_in_flight <= threads
    assert http_server.requests_handled == threads * per_thread
    assert http_server.connections_accepted == stats.connections_opened


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork() does not exist here")
@pytest.mark.filterwarnings(
    r"ignore:This process \(pid=\d+\) is multi-threaded, use of fork\(\) may lead to "
    r"deadlocks in the child:DeprecationWarning"
)
def test_forked_child_counts_from_zero(http_server: LocalServer) -> None:
    shared = keepwarm.session()
    with keepwarm.Session() as s:
        for _ in range(3):
            fetch(s, http_server.url)
            fetch(shared, http_server.url)

        def child() -> dict[str, Any]:
            before = (s.stats().as_dict(), keepwarm.stats().as_dict())
            fetch(s, http_server.url)
            return {"before": before, "after": s.stats().as_dict()}

        result = run_in_child(child)
        parent = s.stats()
    session_before, shared_before = result["before"]
    for before in (session_before, shared_before):
        for counters in (before, *before["hosts"].values()):
            assert all(counters[name] == 0 for name in COUNTERS), counters
    after = result["after"]
    assert (after["requests"], after["connections_opened"], after["reused"]) == (1, 1, 0)
    assert after["hosts"][origin(http_server)]["requests"] == 1
    # The parent's counters are untouched by the child's traffic.
    assert (parent.requests, parent.connections_opened, parent.reused) == (3, 1, 2)
    assert keepwarm.stats().requests == 3


# -- the Stats API ---------------------------------------------------------------------------


def test_stats_api(make_server: ServerFactory) -> None:
    first, second = make_server(default_handler), make_server(default_handler)
    for _ in range(3):
        fetch(keepwarm.session(), first.url)
    fetch(keepwarm.session(), second.url)
    stats = keepwarm.stats()
    assert isinstance(stats, keepwarm.Stats)
    assert stats.connections_opened == 2
    assert stats.requests == 4
    assert stats.reused == 2
    assert all(isinstance(h, keepwarm.HostStats) for h in stats.hosts.values())
    assert set(stats.hosts) == {origin(first), origin(second)}

    data = stats.as_dict()
    json.dumps(data)
    assert set(COUNTERS) <= set(data)
    assert {"hosts", "advice"} <= set(data)
    assert data["requests"] == 4
    assert data["hosts"][origin(first)]["requests"] == 3
    assert data["hosts"][origin(second)]["connections_opened"] == 1
    assert data["advice"] == stats.advice()

    lines = str(stats).splitlines()
    assert lines[0].split()[:4] == ["origin", "requests", "opened", "reused"]
    assert len(lines) == 4  # header, one row per origin, total
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {origin(first), origin(second), "total"}
    assert rows[origin(first)][1:4] == ["3", "1", "2"]
    assert rows[origin(second)][1:4] == ["1", "1", "0"]
    assert rows["total"][1:4] == ["4", "2", "2"]
    header_width = len(lines[0])
    assert all(len(line) == header_width for line in lines)


def test_stats_table_of_one_origin_has_no_total_row(http_server: LocalServer) -> None:
    with keepwarm.Session() as s:
        fetch(s, http_server.url)
        lines = str(s.stats()).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("origin")
    assert lines[1].split()[:4] == [origin(http_server), "1", "1", "0"]


# -- timings --------------------------------------------------------------------------------


def test_cold_then_warm_https_timings(https_server: LocalServer, ca_bundle: str) -> None:
    with keepwarm.Session(verify=ca_bundle) as s:
        cold = keepwarm.timings(fetch(s, https_server.url))
        warm = keepwarm.timings(fetch(s, https_server.url))
    assert cold is not None and warm is not None
    assert cold.dns is None  # 127.0.0.1 needs no name resolution
    assert cold.connect is not None and cold.connect > 0
    assert cold.tls is not None and cold.tls > 0
    assert cold.send is not None and cold.send > 0
    assert cold.wait is not None and cold.wait > 0
    assert cold.receive is not None and cold.receive > 0
    assert cold.total is not None and cold.total > 0
    assert cold.total >= cold.wait
    # The phases do not overlap: together they fit in the total.
    assert cold.connect + cold.tls + cold.send + cold.wait + cold.receive <= cold.total
    assert cold.reused is False
    assert cold.http_version == "HTTP/1.1"
    assert cold.tls_version is not None and cold.tls_version.startswith("TLS")
    assert cold.retries == 0

    assert warm.reused is True
    assert warm.dns is None
    assert warm.connect is None
    assert warm.tls is None
    assert warm.tls_version == cold.tls_version
    assert warm.wait is not None and warm.total is not None
    assert warm.total >= warm.wait > 0
    assert warm.http_version == "HTTP/1.1"


def test_http_timings_have_no_tls(http_server: LocalServer) -> None:
    with keepwarm.Session() as s:
        cold = keepwarm.timings(fetch(s, http_server.url))
        warm = keepwarm.timings(fetch(s, http_server.url))
    assert cold is not None and warm is not None
    assert cold.tls is None
    assert cold.tls_version is None
    assert cold.dns is None
    assert cold.connect is not None and cold.connect > 0
    assert cold.reused is False
    assert cold.http_version == "HTTP/1.1"
    assert cold.total is not None and cold.wait is not None and cold.total >= cold.wait
    assert warm.reused is True
    assert warm.tls is None and warm.tls_version is None and warm.connect is None


def test_wait_includes_the_server_time(http_server: LocalServer) -> None:
    with keepwarm.Session() as s:
        t = keepwarm.timings(fetch(s, http_server.url + "/sleep?s=0.2"))
    assert t is not None
    assert t.wait is not None and t.wait >= 0.18
    assert t.total is not None and t.total >= t.wait


@pytest.mark.parametrize("version", ["HTTP/1.0", "HTTP/1.1"])
def test_http_version_is_the_servers(version: str) -> None:
    # The client always sends HTTP/1.1; the timings name what the server answered with.
    answer = f"{version} 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    with RawServer(respond_with(answer.encode())) as server, keepwarm.Session() as s:
        t = keepwarm.timings(fetch(s, server.url + "/"))
    assert t is not None
    assert t.http_version == version


def test_streamed_response_has_no_total(http_server: LocalServer) -> None:
    with (
        keepwarm.Session() as s,
        s.get(http_server.url + "/bytes?n=1000", stream=True, timeout=10) as r,
    ):
        t = keepwarm.timings(r)
        assert t is not None
        assert t.total is None
        assert t.receive is None
        assert t.wait is not None and t.wait > 0
        assert len(r.content) == 1000


def test_redirected_response_has_timings(http_server: LocalServer) -> None:
    with keepwarm.Session() as s:
        response = fetch(s, http_server.url + "/redirect?to=/echo")
        stats = s.stats()
    assert len(response.history) == 1
    final = keepwarm.timings(response)
    first = keepwarm.timings(response.history[0])
    assert final is not None and first is not None
    assert final is not first
    assert final.reused is True  # the redirect's connection went back to the pool
    assert first.reused is False
    assert final.total is not None and final.total > 0
    assert stats.requests == 2
    assert stats.reused == 1


def test_timings_as_dict(http_server: LocalServer) -> None:
    with keepwarm.Session() as s:
        t = keepwarm.timings(fetch(s, http_server.url))
    assert t is not None
    data = t.as_dict()
    assert set(data) == TIMING_KEYS
    json.dumps(data)
    assert data["reused"] is False
    assert data["http_version"] == "HTTP/1.1"
    assert isinstance(t, keepwarm.Timings)


def test_timings_of_a_plain_requests_response_is_none(http_server: LocalServer) -> None:
    with requests.Session() as plain, plain.get(http_server.url, timeout=10) as r:
        assert keepwarm.timings(r) is None


def _refused_port() -> int:
    """A loopback port nothing listens on (bound, then closed: connecting is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_refused_connection_counts_no_request(scheme: str) -> None:
    # "requests: requests written to a connection": nothing was written here.
    port = _refused_port()
    with keepwarm.Session(max_retries=0) as s:
        with pytest.raises(requests.ConnectionError):
            s.get(f"{scheme}://127.0.0.1:{port}/", timeout=5)
        stats = s.stats()
    host = stats.hosts[f"{scheme}://127.0.0.1:{port}"]
    for counters in (stats, host):
        assert counters.connections_opened == 0
        assert counters.requests == 0
        assert counters.reused == 0


def test_retries_after_connection_refused_are_counted() -> None:
    port = _refused_port()
    policy = keepwarm.RetryPolicy(total=2, backoff_factor=0)
    with keepwarm.Session(max_retries=policy) as s:
        with pytest.raises(requests.ConnectionError):
            s.get(f"http://127.0.0.1:{port}/", timeout=5)
        stats = s.stats()
    assert stats.retries == 2
    assert stats.hosts[f"http://127.0.0.1:{port}"].retries == 2
    assert stats.connections_opened == 0


def test_retries_after_a_reset_are_counted(raw_server: Callable[..., Any]) -> None:
    server = raw_server(reset_after_request)
    policy = keepwarm.RetryPolicy(total=2, backoff_factor=0)
    with keepwarm.Session(max_retries=policy) as s:
        with pytest.raises(requests.ConnectionError):
            s.get(server.url + "/", timeout=5)
        stats = s.stats()
    assert server.connections_accepted == 3
    host = stats.hosts[f"http://127.0.0.1:{server.port}"]
    for counters in (stats, host):
        assert counters.requests == 3
        assert counters.connections_opened == 3
        assert counters.retries == 2


def test_time_to_first_byte_percentiles_are_of_the_latest_samples() -> None:
    """Pure logic: each origin keeps the latest TTFB_SAMPLES times, 8 bytes each."""
    from keepwarm._telemetry import TTFB_SAMPLES, HostCounters

    counters = HostCounters("http://127.0.0.1:1")
    for _ in range(TTFB_SAMPLES):
        counters.on_response(100.0, None)
    for _ in range(TTFB_SAMPLES // 2 - 1):
        counters.on_response(1.0, None)
    most_old = counters.snapshot()
    assert (most_old.ttfb_p50, most_old.ttfb_p99, most_old.ttfb_max) == (100.0, 100.0, 100.0)
    for _ in range(TTFB_SAMPLES // 2):
        counters.on_response(1.0, None)
    one_old_left = counters.snapshot()
    assert (one_old_left.ttfb_p50, one_old_left.ttfb_max) == (1.0, 100.0)
    counters.on_response(2.0, None)
    counters.on_response(None, 4.0)  # no head timing: nothing recorded
    latest = counters.snapshot()
    assert (latest.ttfb_p50, latest.ttfb_max) == (1.0, 2.0)
    assert latest.keep_alive_timeout == 4.0
    assert len(counters.ttfb) == TTFB_SAMPLES
    assert counters.ttfb.itemsize == 8
    counters.zero()
    empty = counters.snapshot()
    assert (empty.ttfb_p50, empty.ttfb_p99, empty.ttfb_max) == (None, None, None)
    counters.on_response(3.0, None)
    assert counters.snapshot().ttfb_max == 3.0


def test_timings_made_for_a_request_are_the_constructors() -> None:
    """The request path makes its Timings without the keyword constructor
    (``new_timings``): equal, alike in repr, fields and a pickle round trip, and as
    mutable, as ``Timings(_started=...)``."""
    from keepwarm._telemetry import Timings, new_timings

    made, built = new_timings(12.5), Timings(_started=12.5)
    assert made == built
    assert repr(made) == repr(built)
    assert made.as_dict() == built.as_dict()
    assert made._started == built._started == 12.5
    assert pickle.loads(pickle.dumps(made)) == built
    made.wait = built.wait = 0.25
    made.finish(13.0)
    built.finish(13.0)
    assert made == built and made.total == 0.5
    assert Timings().as_dict() == {name: getattr(Timings, name) for name in Timings().as_dict()}


def test_tls_version_is_the_current_sockets(server_cert: Any, ca_bundle: str) -> None:
    """A connection's TLS version is asked of its socket once; a reconnect (here after the
    server closed the connection) asks the new socket, whose handshake may differ."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)
    server = LocalServer(default_handler, ssl_context=context)
    server.start()
    try:
        with keepwarm.Session(verify=ca_bundle) as s:
            url = server.url + "/"
            first = keepwarm.timings(fetch(s, url))
            again = keepwarm.timings(fetch(s, url, headers={"Connection": "close"}))
            context.maximum_version = ssl.TLSVersion.TLSv1_2
            after = keepwarm.timings(fetch(s, url))
        assert first is not None and again is not None and after is not None
        assert first.tls_version == again.tls_version == "TLSv1.3"
        assert again.reused is True
        assert after.reused is False and after.tls is not None
        assert after.tls_version == "TLSv1.2"
        assert server.connections_accepted == 2
    finally:
        server.close()
