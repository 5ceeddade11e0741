"""One keepwarm.Session shared by many threads: cookie jar and mount() under pressure.

http.cookiejar locks its writers but not iteration, and requests iterates the session
jar on every request; requests.Session.mount() reorders its adapter dict in place while
other threads iterate it (requests 6366). keepwarm's jar iterates a snapshot taken under
the jar's lock and mount() swaps in a new dict, so neither raises nor loses anything.

No contrast test with plain requests here: its failures need a thread switch at one
exact bytecode, which no bounded test can produce deterministically.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import requests.adapters
import requests.cookies

import keepwarm
import keepwarm._config
from keepwarm._upstream.cookies import ThreadSafeCookieJar
from servers import LocalServer

JOIN_SECONDS = 30.0


def _run_threads(targets: list[Callable[[], None]], errors: list[BaseException]) -> None:
    """Start every target, join them all (bounded), fail if any is still running."""

    def guarded(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # collected and asserted by the caller
                errors.append(exc)

        return run

    threads = [threading.Thread(target=guarded(t), daemon=True) for t in targets]
    for t in threads:
        t.start()
    deadline = time.monotonic() + JOIN_SECONDS
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not [t.name for t in threads if t.is_alive()], "threads did not finish in time"


def test_32_threads_set_and_read_cookies_without_errors_or_losses(
    http_server: LocalServer,
) -> None:
    n_writers = 32
    per_writer = 8
    n_readers = 4
    reader_rounds_max = 20_000
    barrier = threading.Barrier(n_writers + n_readers, timeout=10)
    writers_done = threading.Event()
    errors: list[BaseException] = []
    reads = [0] * n_readers
    url = http_server.url

    with keepwarm.Session() as session:
        assert isinstance(session.cookies, ThreadSafeCookieJar)

        remaining = [n_writers]
        remaining_lock = threading.Lock()

        def writer(t: int) -> Callable[[], None]:
            def run() -> None:
                try:
                    barrier.wait()
                    for i in range(per_writer):
                        params = {f"t{t}_{i}": f"v{t}_{i}"}
                        with session.get(url + "/cookies/set", params=params) as response:
                            assert response.status_code == 200, response.text
                            assert response.cookies.get(f"t{t}_{i}") == f"v{t}_{i}"
                        # Read while the other writers write.
                        names = {cookie.name for cookie in session.cookies}
                        assert f"t{t}_{i}" in names
                        assert session.cookies.get_dict()[f"t{t}_{i}"] == f"v{t}_{i}"
                        assert len(session.cookies) >= i + 1
                finally:
                    with remaining_lock:
                        remaining[0] -= 1
                        if remaining[0] == 0:
                            writers_done.set()

            return run

        def reader(r: int) -> Callable[[], None]:
            def run() -> None:
                barrier.wait()
                previous = 0
                while not writers_done.is_set() and reads[r] < reader_rounds_max:
                    listed = list(session.cookies)
                    as_dict = session.cookies.get_dict()
                    count = len(session.cookies)
                    items = session.cookies.items()
                    # Cookies are only ever added: no read may see fewer than before.
                    assert len(listed) >= previous
                    assert len(as_dict) >= len(listed)
                    assert count >= len(listed)
                    assert len(items) >= len(listed)
                    previous = len(listed)
                    reads[r] += 1

            return run

        _run_threads(
            [writer(t) for t in range(n_writers)] + [reader(r) for r in range(n_readers)],
            errors,
        )

        assert errors == []
        assert all(n > 0 for n in reads), reads
        expected = {f"t{t}_{i}": f"v{t}_{i}" for t in range(n_writers) for i in range(per_writer)}
        # No lost cookies: the jar holds every cookie any response set...
        assert session.cookies.get_dict() == expected
        assert len(session.cookies) == n_writers * per_writer
        # ...and sends them all.
        with session.get(url + "/cookies") as response:
            assert response.json() == expected

    assert http_server.requests_handled == n_writers * per_writer + 1
    # 32 threads fit the default pool of 32: no connection was opened and thrown away.
    assert http_server.connections_accepted <= keepwarm.DEFAULT_POOL_MAXSIZE


def test_iterating_the_jar_while_setting_cookies_is_a_snapshot() -> None:
    # Pure logic: iteration walks a snapshot, so writing during iteration neither raises
    # nor makes the running iteration see the new cookies.
    jar = ThreadSafeCookieJar()
    for i in range(5):
        jar.set(f"c{i}", str(i), domain="example.test", path=f"/p{i}")
    seen = []
    for cookie in jar:
        seen.append(cookie.name)
        jar.set(f"new-{cookie.name}", "x", domain=f"d-{cookie.name}.test", path="/")
    assert sorted(seen) == [f"c{i}" for i in range(5)]
    assert len(jar) == 10
    jar.clear()
    assert len(jar) == 0


def test_mount_while_16_threads_send_requests(http_server: LocalServer) -> None:
    n_senders = 16
    n_mounts = 200
    max_requests_per_sender = 400
    errors: list[BaseException] = []
    mounting_done = threading.Event()
    started = threading.Barrier(n_senders + 1, timeout=10)
    sent = [0] * n_senders
    url = http_server.url
    extra = requests.adapters.HTTPAdapter()

    with keepwarm.Session() as session:
        default_adapter = session.get_adapter(url)

        def sender(k: int) -> Callable[[], None]:
            def run() -> None:
                started.wait()
                while sent[k] < max_requests_per_sender:
                    with session.get(url + "/") as response:
                        assert response.status_code == 200
                    sent[k] += 1
                    if mounting_done.is_set() and sent[k] >= 2:
                        return

            return run

        def mounter() -> None:
            started.wait()
            try:
                for i in range(n_mounts):
                    # Prefixes of the server's own URL, so every request's get_adapter()
                    # walks past them while they are being added.
                    session.mount(f"{url}/mounted/{i}/", extra)
                    if i % 10 == 0:
                        time.sleep(0.001)
            finally:
                mounting_done.set()

        _run_threads([sender(k) for k in range(n_senders)] + [mounter], errors)

        assert errors == []
        assert all(n >= 2 for n in sent), sent
        # Every mount took effect, longest prefixes first as requests requires.
        prefixes = list(session.adapters)
        assert len(prefixes) == n_mounts + 2
        assert prefixes == sorted(prefixes, key=len, reverse=True)
        assert set(prefixes[-2:]) == {"http://", "https://"}
        assert session.get_adapter(f"{url}/mounted/123/x") is extra
        assert session.get_adapter(f"{url}/elsewhere") is default_adapter

    assert http_server.requests_handled == sum(sent)
    # The senders kept using pooled connections throughout.
    assert http_server.connections_accepted <= n_senders


def test_the_jar_iterates_in_the_running_pythons_order() -> None:
    # http.cookiejar orders a jar by domain and path name up to CPython 3.10, by insertion
    # from 3.11; requests builds the Cookie header from that order. keepwarm's thread-safe
    # jar must give the same order as requests' own jar on whichever Python runs.
    theirs, ours = requests.cookies.RequestsCookieJar(), ThreadSafeCookieJar()
    for jar in (theirs, ours):
        jar.set("z", "1", domain="b.example", path="/")
        jar.set("y", "2", domain=".a.example", path="/x")
        jar.set("x", "3", domain="b.example", path="/a")
        jar.set("w", "4", domain="a.example", path="/")
    assert [(c.name, c.domain, c.path) for c in ours] == [
        (c.name, c.domain, c.path) for c in theirs
    ]
    assert sorted(c.name for c in ours) == ["w", "x", "y", "z"]
