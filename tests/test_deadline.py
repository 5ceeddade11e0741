"""``keepwarm.Timeout(total=...)``: one deadline for the whole call (issue 11).

Every scenario runs against a real server on 127.0.0.1 that is slow on purpose; where
keepwarm's behaviour differs from plain requests, plain ``requests.Session`` runs on the
same server in the same test and the difference is asserted. Wall time is asserted with
generous margins only (a total of 1 s must end well under 3 s), never tightly; every
server loop is bounded in count and in time (``HOLD_SECONDS``, the server's close).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

import keepwarm
from keepwarm._config import settings_from_environment
from servers import RawServer, read_request_head, refused_url

#: A margin for "ended soon after the deadline": generous, for loaded CI machines.
MARGIN = 1.5
#: One request per connection (the drip scripts serve one and hang up).
CLOSE = b"Connection: close\r\n"


def timed(call: Any) -> tuple[Any, float]:
    """``(result or exception, seconds)`` of *call*."""
    start = time.monotonic()
    try:
        outcome = call()
    except requests.RequestException as exc:
        outcome = exc
    return outcome, time.monotonic() - start


# -- scripts ------------------------------------------------------------------------------


def drip_body(count: int, every: float, *, chunked: bool = False) -> Any:
    """Answer 200 at once, then the body one byte every *every* seconds (*count* bytes):
    every single read gets a byte long before any read timeout."""

    def script(conn: socket.socket, server: RawServer) -> None:
        if not read_request_head(conn):
            return
        if chunked:
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n%s\r\n" % CLOSE)
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (count, CLOSE))
        for _ in range(count):
            if server.closing.wait(every):
                return
            try:
                conn.sendall(b"1\r\nx\r\n" if chunked else b"x")
            except OSError:  # the client gave up: the end of the scenario
                return
        if chunked:
            conn.sendall(b"0\r\n\r\n")
        server.wait_closed(2.0)

    return script


def status_with_retry_after(seen: list[int], lock: threading.Lock) -> Any:
    """Every request: 503 with ``Retry-After: 2`` (keep-alive); counts requests."""

    def script(conn: socket.socket, server: RawServer) -> None:
        for _ in range(20):
            if not read_request_head(conn):
                return
            with lock:
                seen.append(1)
            conn.sendall(
                b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\n"
                b"Content-Length: 4\r\n\r\nbusy"
            )

    return script


def slow_redirects(pause: float, seen: list[str], lock: threading.Lock) -> Any:
    """``/hop/N`` answers after *pause* seconds with a 302 to ``/hop/N-1``; ``/hop/0``
    with 200. One request per connection."""

    def script(conn: socket.socket, server: RawServer) -> None:
        head = read_request_head(conn)
        if not head:
            return
        path = head.split(b" ", 2)[1].decode("ascii")
        with lock:
            seen.append(path)
        if server.closing.wait(pause):
            return
        hop = int(path.rsplit("/", 1)[1])
        if hop == 0:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndone")
        else:
            conn.sendall(
                b"HTTP/1.1 302 Found\r\nLocation: /hop/%d\r\nContent-Length: 0\r\n"
                b"Connection: close\r\n\r\n" % (hop - 1)
            )

    return script


def slow_head(pause: float) -> Any:
    """Read the request, answer nothing for *pause* seconds, then 200."""

    def script(conn: socket.socket, server: RawServer) -> None:
        if not read_request_head(conn):
            return
        if server.closing.wait(pause):
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    return script


def drip_head(count: int, every: float) -> Any:
    """The status line at once, then a header line one byte every *every* seconds
    (*count* bytes), then the end of the head and an empty body."""

    def script(conn: socket.socket, server: RawServer) -> None:
        if not read_request_head(conn):
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n%sX-Drip: " % CLOSE)
        for _ in range(count):
            if server.closing.wait(every):
                return
            try:
                conn.sendall(b"x")
            except OSError:
                return
        conn.sendall(b"\r\n\r\n")
        server.wait_closed(2.0)

    return script


def ok(conn: socket.socket, server: RawServer) -> None:
    for _ in range(20):
        if not read_request_head(conn):
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


@pytest.fixture
def plain() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


# -- the API ------------------------------------------------------------------------------


def test_timeout_total_is_keyword_only_validated_and_compared() -> None:
    t = keepwarm.Timeout(3, total=30)
    assert (t.connect, t.read, t.total) == (3.0, 3.0, 30.0)
    assert keepwarm.Timeout(total=5).as_tuple() == (3.0, 7.0)
    assert keepwarm.Timeout(3, 7) == keepwarm.Timeout(3, 7, total=None)
    assert keepwarm.Timeout(3, 7) != keepwarm.Timeout(3, 7, total=30)
    assert hash(keepwarm.Timeout(1, total=2)) == hash(keepwarm.Timeout(1, total=2))
    assert repr(keepwarm.Timeout(3, 7)) == "Timeout(connect=3.0, read=7.0)"
    assert repr(keepwarm.Timeout(3, 7, total=30)) == "Timeout(connect=3.0, read=7.0, total=30.0)"
    for bad in (0, -1, float("nan"), float("inf"), "30", True):
        with pytest.raises((TypeError, ValueError), match="total timeout"):
            keepwarm.Timeout(total=bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        keepwarm.Timeout(3, 7, 30)  # type: ignore[call-arg]


def test_default_has_no_total_and_session_keeps_the_given_one() -> None:
    assert keepwarm.DEFAULT_TIMEOUT.total is None
    with keepwarm.Session() as s:
        assert s.timeout == keepwarm.Timeout(3, 7)
    with keepwarm.Session(timeout=keepwarm.Timeout(3, 7, total=30)) as s:
        assert s.timeout.total == 30  # type: ignore[union-attr]
        assert "total=30" in repr(s)


def test_environment_variable_takes_a_third_number_for_total() -> None:
    found = settings_from_environment({"KEEPWARM_TIMEOUT": "3, 7, 30"})
    assert found["timeout"] == keepwarm.Timeout(3, 7, total=30)
    assert settings_from_environment({"KEEPWARM_TIMEOUT": "3,7"})["timeout"].total is None
    with pytest.raises(ValueError, match="KEEPWARM_TIMEOUT"):
        settings_from_environment({"KEEPWARM_TIMEOUT": "3,7,0"})
    with pytest.raises(ValueError, match="KEEPWARM_TIMEOUT"):
        settings_from_environment({"KEEPWARM_TIMEOUT": "1,2,3,4"})


def test_deadline_exceeded_is_a_requests_timeout() -> None:
    assert issubclass(keepwarm.DeadlineExceeded, requests.Timeout)
    assert issubclass(keepwarm.DeadlineExceeded, keepwarm.KeepwarmError)


# -- the body -----------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_drip_fed_body_is_cut_at_the_total(plain: requests.Session, chunked: bool) -> None:
    """12 bytes, one every 0.3 s: plain requests with a 1 s read timeout waits ~3.6 s
    (every read gets its byte in time); keepwarm with total=1 stops at ~1 s."""
    with RawServer(drip_body(12, 0.3, chunked=chunked)) as server:
        r, plain_elapsed = timed(lambda: plain.get(server.url, timeout=(1, 1)))
        assert isinstance(r, requests.Response) and r.content == b"x" * 12
        assert plain_elapsed >= 3.0
        with keepwarm.Session(timeout=keepwarm.Timeout(1, 1, total=1)) as s:
            outcome, elapsed = timed(lambda: s.get(server.url + "/?token=SECRET"))
    assert type(outcome) is keepwarm.DeadlineExceeded
    assert elapsed < 1 + MARGIN
    message = str(outcome)
    assert "reading the response body" in message
    assert "total deadline of 1 s" in message and "Raise total=" in message
    assert "SECRET" not in message


def test_body_within_the_total_is_read_whole_and_the_connection_reused() -> None:
    with RawServer(ok) as server, keepwarm.Session(timeout=keepwarm.Timeout(total=5)) as s:
        for _ in range(3):
            assert s.get(server.url).content == b"ok"
        assert server.connections_accepted == 1


def test_watchdog_keeps_only_about_the_head_reads_in_progress() -> None:
    """Finished head reads are dropped from the watchdog's heap now and then, so a busy
    client with a long total does not hold one entry per call of the last `total` s."""
    from keepwarm._upstream import connection

    def many(conn: socket.socket, server: RawServer) -> None:
        for _ in range(700):
            if not read_request_head(conn):
                return
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    with RawServer(many) as server, keepwarm.Session(timeout=keepwarm.Timeout(total=300)) as s:
        for _ in range(600):
            s.get(server.url)
    assert len(connection._watchdog._heap) <= 2 * connection._COMPACT_MIN


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_encoded_body_under_a_total_is_decoded_as_without_one(encoding: str) -> None:
    import zlib

    payload = b"keepwarm " * 500
    packer = zlib.compressobj(wbits=31 if encoding == "gzip" else 15)
    body = packer.compress(payload) + packer.flush()
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n"

    def script(conn: socket.socket, server: RawServer) -> None:
        for _ in range(5):
            if not read_request_head(conn):
                return
            conn.sendall(head % (encoding.encode(), len(body)) + body)

    with RawServer(script) as server, keepwarm.Session() as s:
        with_total = s.get(server.url, timeout=keepwarm.Timeout(total=5)).content
        without = s.get(server.url).content
    assert with_total == without == payload


def test_gzip_cut_short_under_a_total_raises_as_without_one() -> None:
    import gzip

    body = gzip.compress(b"x" * 5000)[:-12]
    data = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"

    def script(conn: socket.socket, server: RawServer) -> None:
        for _ in range(5):
            if not read_request_head(conn):
                return
            conn.sendall(data % len(body) + body)

    with RawServer(script) as server, keepwarm.Session() as s:
        for timeout in (keepwarm.Timeout(total=5), None):
            with pytest.raises(requests.exceptions.ContentDecodingError):
                s.get(server.url, timeout=timeout)


# -- retries ------------------------------------------------------------------------------


def test_retry_after_longer_than_the_time_left_returns_at_once(plain: requests.Session) -> None:
    """503 with Retry-After: 2 and total=1: keepwarm returns the 503 at once instead of
    sleeping 2 s into a deadline it would pass (without a total: three 2 s sleeps).
    Plain requests returns the 503 at once too (it does not retry)."""
    seen: list[int] = []
    with RawServer(status_with_retry_after(seen, threading.Lock())) as server:
        r, _ = timed(lambda: plain.get(server.url, timeout=(1, 1)))
        assert r.status_code == 503
        assert len(seen) == 1
        with keepwarm.Session(timeout=keepwarm.Timeout(1, 1, total=1)) as s:
            r, elapsed = timed(lambda: s.get(server.url))
    assert r.status_code == 503 and r.content == b"busy"
    assert elapsed < 1.0  # never slept the 2 s
    assert len(seen) == 2


def test_retry_after_sleeps_only_while_the_total_allows() -> None:
    """total=5, Retry-After 2: attempts at ~0, ~2, ~4 s; the next sleep would pass 5 s,
    so the third 503 is returned at ~4 s, not at ~6 s."""
    seen: list[int] = []
    with (
        RawServer(status_with_retry_after(seen, threading.Lock())) as server,
        keepwarm.Session(timeout=keepwarm.Timeout(1, 1, total=5)) as s,
    ):
        r, elapsed = timed(lambda: s.get(server.url))
    assert r.status_code == 503
    assert len(seen) == 3
    assert 3.5 <= elapsed < 5.0 + MARGIN


def test_retry_after_with_raise_on_status_raises_deadline_exceeded() -> None:
    seen: list[int] = []
    policy = keepwarm.RetryPolicy(raise_on_status=True)
    with (
        RawServer(status_with_retry_after(seen, threading.Lock())) as server,
        keepwarm.Session(max_retries=policy, timeout=keepwarm.Timeout(total=1)) as s,
    ):
        outcome, elapsed = timed(lambda: s.get(server.url))
    assert type(outcome) is keepwarm.DeadlineExceeded
    assert "retrying after 1 attempt (last: HTTP 503)" in str(outcome)
    assert elapsed < 1.0


def test_refused_connection_stops_retrying_at_the_total(plain: requests.Session) -> None:
    """Nobody listens. Plain requests: ConnectionError at once. keepwarm's default policy
    retries a refused connection (a restarting server) with 0, 1, 2 s of backoff: 3 s
    without a total; with total=0.5 it stops when the next backoff would pass it."""
    url = refused_url()
    outcome, plain_elapsed = timed(lambda: plain.get(url, timeout=(1, 1)))
    assert type(outcome) is requests.ConnectionError
    assert plain_elapsed < 1.0
    with keepwarm.Session(timeout=keepwarm.Timeout(1, 1, total=0.5)) as s:
        outcome, elapsed = timed(lambda: s.get(url))
    assert type(outcome) is keepwarm.DeadlineExceeded
    assert isinstance(outcome, requests.Timeout)
    assert "retrying after 2 attempts (last: NewConnectionError)" in str(outcome)
    assert elapsed < 0.5 + MARGIN


def _listen_later(port: int, delay: float, stop: threading.Event) -> None:
    """After *delay* s, listen on *port* and answer each connection's request with 200
    (a server restarting), until *stop* or 5 s."""
    if stop.wait(delay):
        return
    with socket.create_server(("127.0.0.1", port)) as listener:
        listener.settimeout(0.2)
        end = time.monotonic() + 5.0
        while not stop.is_set() and time.monotonic() < end:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                if read_request_head(conn):
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n%s\r\nok" % CLOSE)


def test_refused_while_a_server_restarts_is_why_refused_is_retried(
    plain: requests.Session,
) -> None:
    """The evidence for keeping refused connections retried by default: a server that
    comes back 0.5 s later. Plain requests fails; keepwarm's third attempt (after 0 + 1 s
    of backoff) gets the 200, inside a total of 3 s too."""
    url = refused_url()
    port = int(url.rsplit(":", 1)[1].strip("/"))
    stop = threading.Event()
    listener = threading.Thread(target=_listen_later, args=(port, 0.5, stop), daemon=True)
    listener.start()
    try:
        outcome, _ = timed(lambda: plain.get(url, timeout=(1, 1)))
        assert type(outcome) is requests.ConnectionError
        with keepwarm.Session(timeout=keepwarm.Timeout(1, 1, total=3)) as s:
            r, elapsed = timed(lambda: s.get(url))
        assert isinstance(r, requests.Response) and r.content == b"ok"
        assert elapsed < 3.0
    finally:
        stop.set()
        listener.join(6.0)


# -- phases of one attempt ----------------------------------------------------------------


def test_slow_response_head_is_cut_at_the_total(plain: requests.Session) -> None:
    """The server answers after 3 s. Plain requests with a 3 s read timeout... waits for
    it (read timeout 4 s); keepwarm's read timeout is cut to the 1 s left."""
    with RawServer(slow_head(3.0)) as server:
        r, plain_elapsed = timed(lambda: plain.get(server.url, timeout=(1, 4)))
        assert isinstance(r, requests.Response) and r.status_code == 200
        assert plain_elapsed >= 2.5
        with keepwarm.Session(timeout=keepwarm.Timeout(1, 4, total=1)) as s:
            outcome, elapsed = timed(lambda: s.get(server.url))
    assert type(outcome) is keepwarm.DeadlineExceeded
    assert "waiting for the response" in str(outcome)
    assert elapsed < 1 + MARGIN


def test_a_head_read_cut_by_the_watchdog_is_named_by_what_had_arrived(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pure logic: the watchdog shuts a head read's socket down 50 ms after the deadline,
    and a silent server's wait ends at the deadline by the socket's read timeout; on a
    busy machine the watchdog can win that race. Nothing had arrived (http.client's
    RemoteDisconnected) still names the wait for the response; part of a head names the
    head."""
    import http.client

    from keepwarm._deadline import Deadline
    from keepwarm._upstream import connection as kw_connection

    ours, theirs = socket.socketpair()
    try:
        conn: Any = type("Conn", (), {"sock": ours})()
        for error, phase in (
            (http.client.RemoteDisconnected("Remote end closed connection"), "waiting"),
            (http.client.BadStatusLine("HTTP/1.1 2"), "reading the response head"),
            (http.client.IncompleteRead(b"X-Dr"), "reading the response head"),
        ):
            deadline = Deadline(1.0, "http://127.0.0.1/")
            watch = kw_connection._Watch(ours, deadline)
            watch.fired = True
            monkeypatch.setattr(kw_connection._watchdog, "watch", lambda *args, w=watch: w)

            def cut(error: Exception = error) -> Any:
                raise error

            with pytest.raises(type(error)):
                kw_connection._head_by_deadline(conn, deadline, cut)
            assert deadline.doing is not None and deadline.doing.startswith(phase)
    finally:
        ours.close()
        theirs.close()


def test_drip_fed_head_is_cut_at_the_total(plain: requests.Session) -> None:
    """A header line dripped a byte every 0.3 s: plain requests with a 1 s read timeout
    waits for all of it (~3.6 s); keepwarm with total=1 stops at ~1 s."""
    with RawServer(drip_head(12, 0.3)) as server:
        r, plain_elapsed = timed(lambda: plain.get(server.url, timeout=(1, 1)))
        assert isinstance(r, requests.Response) and r.headers["X-Drip"] == "x" * 12
        assert plain_elapsed >= 3.0
        with keepwarm.Session(timeout=keepwarm.Timeout(1, 1, total=1)) as s:
            outcome, elapsed = timed(lambda: s.get(server.url))
    assert type(outcome) is keepwarm.DeadlineExceeded
    assert "reading the response head" in str(outcome)
    assert elapsed < 1 + MARGIN


# -- redirects ----------------------------------------------------------------------------


def test_redirect_chain_of_slow_hops_shares_one_deadline(plain: requests.Session) -> None:
    """Six hops of 0.4 s each: every hop is well inside the 1 s read timeout, so plain
    requests follows them all (~2.4 s); keepwarm's total=1 covers the chain, not a hop."""
    seen: list[str] = []
    lock = threading.Lock()
    with RawServer(slow_redirects(0.4, seen, lock)) as server:
        r, plain_elapsed = timed(lambda: plain.get(server.url + "/hop/5", timeout=(1, 1)))
        assert r.status_code == 200 and len(r.history) == 5
        assert plain_elapsed >= 2.0
        with lock:
            seen.clear()
        with keepwarm.Session(timeout=keepwarm.Timeout(1, 1, total=1)) as s:
            outcome, elapsed = timed(lambda: s.get(server.url + "/hop/5"))
    assert type(outcome) is keepwarm.DeadlineExceeded
    assert elapsed < 1 + MARGIN
    with lock:
        assert 2 <= len(seen) <= 4  # the deadline ended the chain part way


def test_redirect_chain_inside_the_total_completes_and_history_is_kept() -> None:
    seen: list[str] = []
    lock = threading.Lock()
    with (
        RawServer(slow_redirects(0.05, seen, lock)) as server,
        keepwarm.Session(timeout=keepwarm.Timeout(1, 1, total=5)) as s,
    ):
        r = s.get(server.url + "/hop/3")
        assert r.status_code == 200 and r.content == b"done"
        assert [h.status_code for h in r.history] == [302, 302, 302]
        # The deadline ends with the call: a later call has its own.
        assert s.get(server.url + "/hop/0").status_code == 200


# -- stream=True --------------------------------------------------------------------------


def test_stream_true_total_covers_the_call_until_the_response_is_returned() -> None:
    """With stream=True the call ends when the head is in: the total bounds that, and
    the body read afterwards is bounded by the read timeout only (as in requests)."""
    with (
        RawServer(drip_body(6, 0.3)) as server,
        keepwarm.Session(timeout=keepwarm.Timeout(1, 1, total=0.5)) as s,
    ):
        r, elapsed = timed(lambda: s.get(server.url, stream=True))
        assert isinstance(r, requests.Response) and r.status_code == 200
        assert elapsed < 0.5
        with r:
            body = b"".join(r.iter_content(1))
    assert body == b"x" * 6  # read past the 0.5 s total: ~1.8 s


# -- name resolution ----------------------------------------------------------------------


@pytest.fixture
def slow_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolving "localhost" takes 2 s (a resolver that waits for an unanswered server);
    everything else resolves as usual."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "localhost":
            time.sleep(2.0)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_slow_name_resolution_is_cut_at_the_total(
    plain: requests.Session, slow_localhost: None
) -> None:
    """Plain requests' connect timeout starts after the name is resolved: with timeout
    (0.5, 0.5) it waits the whole 2 s lookup. keepwarm with total=0.5 gives up at 0.5 s."""
    with RawServer(ok) as server:
        url = f"http://localhost:{server.port}/"
        r, plain_elapsed = timed(lambda: plain.get(url, timeout=(0.5, 0.5)))
        assert isinstance(r, requests.Response) and r.status_code == 200
        assert plain_elapsed >= 1.9
        with keepwarm.Session(timeout=keepwarm.Timeout(0.5, 0.5, total=0.5)) as s:
            outcome, elapsed = timed(lambda: s.get(url))
    assert type(outcome) is keepwarm.DeadlineExceeded
    assert "resolving localhost" in str(outcome)
    assert elapsed < 0.5 + MARGIN


def test_name_resolution_under_a_total_still_connects() -> None:
    """The worker-thread lookup (a name, a deadline) returns the real addresses."""
    with RawServer(ok) as server, keepwarm.Session(timeout=keepwarm.Timeout(total=5)) as s:
        assert s.get(f"http://localhost:{server.port}/").content == b"ok"


# -- what stays as it was -----------------------------------------------------------------


def test_per_request_timeouts_none_and_no_timeout_keep_their_meaning() -> None:
    """``timeout=None``: the session's timeout, its total included. ``NO_TIMEOUT`` and a
    per-call number or pair replace the whole timeout: no total."""
    with RawServer(drip_body(6, 0.2)) as server:
        with keepwarm.Session(timeout=keepwarm.Timeout(1, 1, total=0.5)) as s:
            outcome, _ = timed(lambda: s.get(server.url, timeout=None))
            assert type(outcome) is keepwarm.DeadlineExceeded
            with pytest.warns(keepwarm.NoTimeoutWarning):
                assert s.get(server.url, timeout=keepwarm.NO_TIMEOUT).content == b"x" * 6
            assert s.get(server.url, timeout=(1, 1)).content == b"x" * 6
            assert s.get(server.url, timeout=keepwarm.Timeout(1, 1)).content == b"x" * 6
            r = s.get(server.url, timeout=keepwarm.Timeout(total=5))
            assert r.content == b"x" * 6
        with keepwarm.Session() as s:
            outcome, _ = timed(lambda: s.get(server.url, timeout=keepwarm.Timeout(total=0.5)))
            assert type(outcome) is keepwarm.DeadlineExceeded
            assert s.get(server.url).content == b"x" * 6  # the default: no total


def test_message_shows_no_credentials_or_query_values() -> None:
    with RawServer(drip_body(6, 0.3)) as server:
        url = server.url.replace("http://", "http://user:hunter2@") + "/p?token=SECRET"
        with keepwarm.Session(timeout=keepwarm.Timeout(total=0.3)) as s:
            outcome, _ = timed(lambda: s.get(url))
    assert type(outcome) is keepwarm.DeadlineExceeded
    text = str(outcome) + repr(outcome)
    assert "SECRET" not in text and "hunter2" not in text
    assert "/p?token=" in text
