"""Connection pools: reuse you can count on the server, pools big enough for thread pools,
and a bounded wait for a free connection (``pool_block`` / ``pool_timeout``).

The servers count the TCP connections they accept, so "reused" means one accepted
connection, not a guess from timings.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from requests.adapters import HTTPAdapter

import keepwarm
from servers import LocalServer

POOL_FULL = "Connection pool is full, discarding connection"


def _pool_full_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "urllib3.connectionpool" and r.getMessage().startswith(POOL_FULL)
    ]


def _hammer(session: requests.Session, url: str, threads: int, per_thread: int) -> list[int]:
    """*threads* threads start together (barrier) and each sends *per_thread* GETs
    through *session*; returns every status code. Bounded by the barrier and the
    futures' timeouts."""
    barrier = threading.Barrier(threads, timeout=10)

    def work() -> list[int]:
        barrier.wait()
        statuses = []
        for _ in range(per_thread):
            r = session.get(url, timeout=10)
            statuses.append(r.status_code)
            r.close()
        return statuses

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(work) for _ in range(threads)]
        return [status for f in futures for status in f.result(timeout=30)]


def _pool_for(session: requests.Session, url: str) -> Any:
    """The pool the session really used for *url*'s origin. (``connection_from_url``
    would build a new, empty one: HTTPS pools are keyed by their TLS settings too.)"""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    manager = session.get_adapter(url).poolmanager
    pools = [
        manager.pools[key]
        for key in list(manager.pools.keys())
        if (key.key_scheme, key.key_host, key.key_port)
        == (parts.scheme, parts.hostname, parts.port)
    ]
    assert len(pools) == 1, pools
    return pools[0]


# -- reuse ----------------------------------------------------------------------------


def test_sequential_requests_use_one_connection_http(http_server: LocalServer) -> None:
    with keepwarm.Session() as s:
        for i in range(100):
            r = s.get(http_server.url + f"/echo?i={i}")
            assert r.status_code == 200
    assert http_server.requests_handled == 100
    assert http_server.connections_accepted == 1
    assert len(set(http_server.client_ports)) == 1
    assert {req.connection_index for req in http_server.requests} == {0}


def test_sequential_requests_use_one_connection_https(
    https_server: LocalServer, ca_bundle: str
) -> None:
    with keepwarm.Session(verify=ca_bundle) as s:
        for _ in range(100):
            assert s.get(https_server.url + "/").text == "ok"
        # mixing methods and bodies does not cost a connection either
        assert s.post(https_server.url + "/echo", data=b"x" * 10_000).status_code == 200
        assert len(s.get(https_server.url + "/bytes?n=200000").content) == 200_000
    assert https_server.requests_handled == 102
    assert https_server.connections_accepted == 1


def test_streamed_response_read_to_the_end_returns_its_connection(
    http_server: LocalServer,
) -> None:
    with keepwarm.Session() as s:
        for _ in range(5):
            with s.get(http_server.url + "/bytes?n=100000", stream=True) as r:
                assert sum(len(c) for c in r.iter_content(8192)) == 100_000
    assert http_server.connections_accepted == 1


def test_two_hosts_get_one_connection_each(
    http_server: LocalServer, make_server: Callable[..., LocalServer]
) -> None:
    other = make_server()
    with keepwarm.Session() as s:
        for _ in range(10):
            s.get(http_server.url + "/")
            s.get(other.url + "/")
    assert http_server.connections_accepted == 1
    assert other.connections_accepted == 1


@pytest.mark.parametrize("threads", [8, 32])
def test_threads_share_the_default_pool_without_discarding(
    make_server: Callable[..., LocalServer],
    caplog: pytest.LogCaptureFixture,
    threads: int,
) -> None:
    server = make_server()
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    with keepwarm.Session() as s:
        statuses = _hammer(s, server.url + "/sleep?s=0.02", threads, per_thread=4)
        pool = _pool_for(s, server.url)
        assert pool.num_connections <= threads
    assert statuses == [200] * (threads * 4)
    assert server.requests_handled == threads * 4
    assert 1 <= server.connections_accepted <= threads
    assert _pool_full_records(caplog) == []


def test_64_threads_with_a_pool_of_64(
    make_server: Callable[..., LocalServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server()
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    with keepwarm.Session(pool_maxsize=64) as s:
        statuses = _hammer(s, server.url + "/sleep?s=0.02", 64, per_thread=3)
    assert statuses == [200] * 192
    assert 1 <= server.connections_accepted <= 64
    assert _pool_full_records(caplog) == []


def test_64_threads_overflow_the_default_pool_of_32(
    make_server: Callable[..., LocalServer], caplog: pytest.LogCaptureFixture
) -> None:
    """The documented limit: more threads than pool_maxsize (32) against one host still
    works, but extra connections are thrown away (and urllib3 says so)."""
    server = make_server()
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    # The guard says so too (caught from every thread: catch_warnings is process-wide).
    with keepwarm.Session() as s, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        statuses = _hammer(s, server.url + "/sleep?s=0.05", 64, per_thread=2)
        assert _pool_for(s, server.url).pool.qsize() <= 32
    assert {w.category for w in caught} == {keepwarm.PoolSaturationWarning}
    assert "pool_maxsize=32" in str(caught[0].message)
    assert statuses == [200] * 128
    assert server.connections_accepted > 32
    records = _pool_full_records(caplog)
    assert records
    assert "Connection pool size: 32" in records[0].getMessage()


def test_plain_requests_discards_connections_with_32_threads(
    make_server: Callable[..., LocalServer], caplog: pytest.LogCaptureFixture
) -> None:
    """The control for the tests above: they can see the warning when it happens."""
    server = make_server()
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    plain = requests.Session()
    try:
        statuses = _hammer(plain, server.url + "/sleep?s=0.05", 32, per_thread=2)
    finally:
        plain.close()
    assert statuses == [200] * 64
    records = _pool_full_records(caplog)
    assert records
    assert "Connection pool size: 10" in records[0].getMessage()
    assert server.connections_accepted > 10


# -- bounded pool wait ----------------------------------------------------------------


def _assert_free_slots(session: requests.Session, url: str, expected: int) -> None:
    """Every slot of the (blocking) pool is back: a connection or an empty slot each."""
    pool = _pool_for(session, url)
    assert pool.pool.qsize() == expected


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_pool_timeout_bounds_the_wait(
    make_server: Callable[..., LocalServer], ca_bundle: str, tls: bool
) -> None:
    server = make_server(tls=tls)
    url = server.url + "/"
    with keepwarm.Session(pool_maxsize=1, pool_block=True, pool_timeout=0.5, verify=ca_bundle) as s:
        held = s.get(url, stream=True)  # its connection stays checked out
        try:
            start = time.monotonic()
            with pytest.raises(keepwarm.PoolTimeout) as info:
                s.get(url, timeout=5)
            elapsed = time.monotonic() - start
        finally:
            held.close()
        error = info.value
        assert 0.45 <= elapsed < 2.0
        assert isinstance(error, requests.exceptions.Timeout)
        assert isinstance(error, requests.exceptions.RequestException)
        assert isinstance(error, keepwarm.KeepwarmError)
        assert not isinstance(error, requests.exceptions.ConnectionError)
        message = str(error)
        assert "pool_timeout=0.5" in message
        assert "pool_maxsize" in message
        assert f"127.0.0.1:{server.port}" in message
        assert error.request is not None
        assert error.request.url == url
        # The slot came back: requests succeed again, at once.
        start = time.monotonic()
        for _ in range(5):
            assert s.get(url).text == "ok"
        assert time.monotonic() - start < 0.45
        _assert_free_slots(s, url, 1)
    # held (closed unread) cost its connection; the five later requests shared one
    assert server.connections_accepted == 2
    assert server.requests_handled == 6


def test_pool_timeout_repeatedly_leaks_no_slot(http_server: LocalServer) -> None:
    url = http_server.url + "/"
    with keepwarm.Session(pool_maxsize=2, pool_block=True, pool_timeout=0.2) as s:
        for _ in range(3):
            held = [s.get(url, stream=True) for _ in range(2)]
            try:
                with pytest.raises(keepwarm.PoolTimeout):
                    s.get(url)
            finally:
                for r in held:
                    assert r.content == b"ok"  # read to the end: the connection goes back
                    r.close()
            _assert_free_slots(s, url, 2)
        statuses = [s.get(url).status_code for _ in range(4)]
    assert statuses == [200] * 4
    # reading the held responses to the end returned their connections for reuse
    assert http_server.connections_accepted == 2


def test_pool_wait_ends_when_a_connection_comes_back(http_server: LocalServer) -> None:
    url = http_server.url + "/"
    with keepwarm.Session(pool_maxsize=1, pool_block=True, pool_timeout=5) as s:
        held = s.get(url, stream=True)
        release = threading.Timer(0.3, held.close)
        release.start()
        try:
            start = time.monotonic()
            assert s.get(url).text == "ok"
            elapsed = time.monotonic() - start
        finally:
            release.join(timeout=5)
            held.close()
    assert 0.25 <= elapsed < 3.0


def test_plain_requests_waits_forever_for_a_pooled_connection(http_server: LocalServer) -> None:
    """The contrast: requests passes no pool timeout to urllib3 (requests 3825), so a
    blocking pool waits without end, even when the request has a timeout."""
    url = http_server.url + "/"
    plain = requests.Session()
    plain.mount("http://", HTTPAdapter(pool_maxsize=1, pool_block=True))
    result: dict[str, Any] = {}

    def second_request() -> None:
        try:
            r = plain.get(url, timeout=0.5)
            result["status"] = r.status_code
            r.close()
        except Exception as exc:  # reported by the assertions below
            result["error"] = exc

    try:
        held = plain.get(url, stream=True, timeout=5)
        waiter = threading.Thread(target=second_request, daemon=True)
        try:
            waiter.start()
            waiter.join(1.0)
            assert waiter.is_alive(), result  # still waiting after twice its timeout
        finally:
            held.close()  # gives the slot back, which ends the wait
            waiter.join(5.0)
        assert not waiter.is_alive()
        assert result == {"status": 200}
    finally:
        plain.close()


@pytest.mark.parametrize(
    ("ours", "announced", "expiry"),
    [
        (None, [1.0], 0.8),
        (4.0, [1.0], 0.8),
        (4.0, [10.0], 4.0),
        (None, [1.0, 1.0, 5.0], 4.0),  # a server that changes its mind is followed
        (4.0, [], 4.0),
    ],
)
def test_a_servers_keep_alive_timeout_sets_the_idle_expiry(
    ours: float | None, announced: list[float], expiry: float
) -> None:
    """Pure logic: the share of the server's ``Keep-Alive: timeout=N`` our idle
    connections keep (``SERVER_KEEPALIVE_SHARE``), bounded by ``keepalive_expiry``."""
    from keepwarm._upstream.pool import PoolPolicy, PoolState

    state = PoolState(PoolPolicy(keepalive_expiry=ours), None)
    for seconds in announced:
        state.keepalive_announced(seconds)
    assert state.idle_expiry == pytest.approx(expiry)


# A pooled connection checked for a drop at checkout ------------------------------------------


def _pooled_connection(session: requests.Session, url: str) -> Any:
    pool = session.get_adapter(url).poolmanager.connection_from_url(url)
    conn = pool.pool.queue[-1]  # the last one put back (urllib3 fills the rest with None)
    assert conn is not None
    return conn


@pytest.mark.parametrize("server_closes", [False, True])
def test_the_drop_check_answers_as_urllib3s(
    raw_server: Callable[..., Any], server_closes: bool
) -> None:
    # keepwarm keeps one poll object per connection for the check at checkout (urllib3
    # builds one each time); the answer is urllib3's is_connection_dropped's, for a
    # connection the server keeps and one it closed after answering.
    from urllib3.util import wait
    from urllib3.util.connection import is_connection_dropped

    from keepwarm._upstream.connection import dropped
    from servers import respond_with

    left, right = socket.socketpair()
    with left, right:
        wait.wait_for_read(left, timeout=0.0)  # urllib3 chooses how to wait: poll, here
    assert wait.wait_for_socket is wait.poll_wait_for_socket
    server = raw_server(
        respond_with(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", close=server_closes)
    )
    url = server.url + "/"
    with keepwarm.Session(max_retries=0) as s:
        assert s.get(url).content == b"ok"
        conn = _pooled_connection(s, url)
        deadline = time.monotonic() + 5
        while server_closes and not is_connection_dropped(conn) and time.monotonic() < deadline:
            time.sleep(0.01)  # the server's FIN on its way
        for _ in range(3):  # the poll object kept, asked again
            assert dropped(conn) is is_connection_dropped(conn) is server_closes
        assert conn._keepwarm.poller is not None and conn._keepwarm.poller[0] is conn.sock
        conn.close()
        assert conn._keepwarm.poller is None
        assert dropped(conn) is is_connection_dropped(conn) is True


def test_the_drop_check_watches_the_socket_of_a_reconnected_connection(
    http_server: LocalServer,
) -> None:
    from keepwarm._upstream.connection import dropped

    url = http_server.url + "/"
    with keepwarm.Session(max_retries=0) as s:
        s.get(url).content  # noqa: B018
        conn = _pooled_connection(s, url)
        assert dropped(conn) is False
        first = conn.sock
        conn.close()
        conn.connect()
        assert conn.sock is not first
        assert dropped(conn) is False
        assert conn._keepwarm.poller[0] is conn.sock


def test_the_drop_check_is_urllib3s_when_urllib3_chose_select(
    http_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under gevent's monkey-patching select.poll is gone and urllib3 waits with select:
    # keepwarm then asks urllib3.
    from urllib3.util import wait

    from keepwarm._upstream.connection import dropped

    calls: list[float | None] = []
    select_wait = wait.select_wait_for_socket

    def counted(sock: Any, read: bool = False, write: bool = False, timeout: Any = None) -> bool:
        calls.append(timeout)
        return select_wait(sock, read, write, timeout)

    url = http_server.url + "/"
    with keepwarm.Session(max_retries=0) as s:
        s.get(url).content  # noqa: B018
        conn = _pooled_connection(s, url)
        monkeypatch.setattr(wait, "wait_for_socket", counted)
        assert dropped(conn) is False
        assert calls == [0.0]
        assert conn._keepwarm.poller is None


# The pool's queue: LifoQueue's get and put, the common case taken at once ---------------------


def test_keepwarms_pools_hold_their_connections_in_a_pool_queue(http_server: LocalServer) -> None:
    from keepwarm._upstream.pool import PoolQueue

    url = http_server.url + "/"
    with keepwarm.Session() as s:
        r = s.get(url)
        r.content  # noqa: B018
        assert type(r.raw._pool.pool) is PoolQueue


_QUEUE_OPS = st.lists(
    st.tuples(st.sampled_from(["get", "put"]), st.integers(min_value=0, max_value=99)),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=3), _QUEUE_OPS)
def test_a_pool_queue_answers_as_a_lifo_queue(maxsize: int, ops: list[tuple[str, int]]) -> None:
    # Without blocking: the same items, the same Empty and Full, the same state.
    from keepwarm._upstream.pool import PoolQueue

    outcomes: list[list[Any]] = []
    for queue_cls in (queue.LifoQueue, PoolQueue):
        q: Any = queue_cls(maxsize)
        seen: list[Any] = []
        for op, item in ops:
            try:
                seen.append(q.get(block=False) if op == "get" else q.put(item, block=False))
            except (queue.Empty, queue.Full) as e:
                seen.append(type(e))
        seen.append((list(q.queue), q.qsize(), q.unfinished_tasks, q.empty(), q.full()))
        outcomes.append(seen)
    assert outcomes[1] == outcomes[0]


def test_a_pool_queue_wakes_a_waiting_getter_and_a_waiting_putter() -> None:
    # pool_block=True waits in get(); a put from another thread wakes it. And a put that
    # waits for room (nothing in urllib3 or keepwarm does) is woken by a get.
    from keepwarm._upstream.pool import PoolQueue

    q: Any = PoolQueue(1)
    got: list[Any] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(lambda: got.append(q.get(block=True, timeout=10)))
        deadline = time.monotonic() + 5
        while not q._keepwarm_getters_wait and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(0.05)  # inside Queue.get's wait
        q.put("conn", block=False)
        waiting.result(timeout=10)
        assert got == ["conn"]

        q.put("a", block=False)
        putting = pool.submit(lambda: q.put("b", block=True, timeout=10))
        deadline = time.monotonic() + 5
        while not q._keepwarm_putters_wait and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(0.05)
        assert q.get(block=False) == "a"
        putting.result(timeout=10)
        assert q.get(block=False) == "b"


def test_a_pool_queue_refuses_a_negative_timeout_as_queue_does() -> None:
    from keepwarm._upstream.pool import PoolQueue

    for queue_cls in (queue.LifoQueue, PoolQueue):
        q: Any = queue_cls(2)
        q.put("a", block=False)
        with pytest.raises(ValueError, match="non-negative"):
            q.get(block=True, timeout=-1)


@pytest.mark.skipif(not hasattr(queue.Queue(), "shutdown"), reason="Queue.shutdown is 3.13+")
def test_a_shut_down_pool_queue_refuses_a_put_as_queue_does() -> None:
    from keepwarm._upstream.pool import PoolQueue

    for queue_cls in (queue.LifoQueue, PoolQueue):
        q: Any = queue_cls(2)
        q.put("a", block=False)
        q.shutdown()
        with pytest.raises(queue.ShutDown):  # type: ignore[attr-defined,unused-ignore]
            q.put("b", block=False)
        assert q.get(block=False) == "a"
