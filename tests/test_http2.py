"""HTTP/2: ``keepwarm.Session(http2=True)`` against real HTTP/2 servers on loopback.

Servers: the h2-based :class:`servers.h2.H2Server` (frame-level faults, a recorder of
what it saw), hypercorn, nginx (``keepalive_requests`` forces GOAWAY) and nghttpd where
installed. Behaviour that requests has too is compared with a plain ``requests.Session``
on the same server in the same test (which talks HTTP/1.1 to it).
"""

from __future__ import annotations

import functools
import hashlib
import json
import select
import socket
import ssl
import threading
import time
import types
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
import urllib3

import keepwarm
from children import run_python
from forking import run_in_child
from servers.h2 import H2Server
from servers.routes import deterministic_bytes

pytest.importorskip("h2", reason="the http2 extra (h2) is not installed")

import h2.events

from keepwarm._upstream import h2conn
from keepwarm._upstream.h2conn import STREAM_WINDOW, STREAM_WINDOW_MAX

#: Bounds every test's waits: a hang fails in seconds, not at CI's limit.
TIMEOUT = (5, 5)


@pytest.fixture
def h2session(ca_bundle: str) -> Iterator[Callable[..., keepwarm.Session]]:
    """Factory of ``keepwarm.Session(http2=True, verify=ca_bundle, ...)``, closed after."""
    made: list[keepwarm.Session] = []

    def make(**knobs: Any) -> keepwarm.Session:
        knobs.setdefault("timeout", TIMEOUT)
        session = keepwarm.Session(http2=True, verify=ca_bundle, **knobs)
        made.append(session)
        return session

    yield make
    for session in made:
        session.close()


@pytest.fixture
def plain(ca_bundle: str) -> Iterator[requests.Session]:
    session = requests.Session()
    session.verify = ca_bundle
    yield session
    session.close()


def _record_status(seen: list[int], response: requests.Response, *args: Any, **kwargs: Any) -> None:
    seen.append(response.status_code)


def _version(response: requests.Response) -> str | None:
    timings = keepwarm.timings(response)
    return timings.http_version if timings is not None else None


# -- Responses are requests' own ---------------------------------------------------------


def test_a_get_over_http2_is_the_response_requests_gives_over_http11(
    h2_server: Callable[..., H2Server], h2session: Callable[..., keepwarm.Session], plain: Any
) -> None:
    server = h2_server()
    ours = h2session().get(f"{server.url}/get?a=1")
    theirs = plain.get(f"{server.url}/get?a=1", timeout=TIMEOUT)
    assert ours.status_code == theirs.status_code == 200
    assert ours.reason == theirs.reason == "OK"
    assert {**ours.json(), "http": None} == {**theirs.json(), "http": None}
    assert (ours.json()["http"], theirs.json()["http"]) == ("2", "1.1")
    assert ours.headers["Content-Type"] == theirs.headers["Content-Type"]
    assert ours.raw.version == 20
    assert _version(ours) == "HTTP/2"
    assert ours.url == theirs.url
    assert server.recorder.http_versions() == ["2", "1.1"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/status/404", {}),
        ("GET", "/status/503", {}),
        ("HEAD", "/get", {}),
        ("GET", "/bytes/200000", {}),
        ("GET", "/gzip", {}),
        ("GET", "/redirect?to=/get", {}),
        ("GET", "/redirect?to=/status/204", {}),
        ("POST", "/echo", {"data": b"x" * 100_000}),
        ("POST", "/echo", {"json": {"k": ["v", 1]}}),
        ("POST", "/echo", {"data": {"a": "1", "b": "2"}}),
        ("POST", "/echo", {"files": {"f": ("name.txt", b"file body")}}),
        ("PUT", "/echo", {"data": "text body é"}),
        ("POST", "/echo", {"data": iter([b"chunk-1;", b"chunk-2"])}),
        ("DELETE", "/get", {}),
    ],
)
def test_every_response_matches_requests_over_http11(
    h2_server: Callable[..., H2Server],
    h2session: Callable[..., keepwarm.Session],
    plain: Any,
    method: str,
    path: str,
    kwargs: dict[str, Any],
) -> None:
    server = h2_server()
    results = []
    # No retries on either side: keepwarm's default policy retries a 503, requests not.
    for client in (h2session(max_retries=0), plain):
        args = dict(kwargs)
        if isinstance(args.get("data"), Iterator):
            args["data"] = iter([b"chunk-1;", b"chunk-2"])
        r = client.request(method, f"{server.url}{path}", timeout=TIMEOUT, **args)
        body = r.content.replace(b'"http": "2"', b'"http": "1.1"')
        boundary = r.request.headers.get("Content-Type", "").partition("boundary=")[2]
        if boundary:  # multipart: a random boundary per request
            body = body.replace(boundary.encode(), b"BOUNDARY")
        try:
            r.raise_for_status()
            error = None
        except requests.HTTPError as exc:
            error = str(exc)
        results.append(
            (
                r.status_code,
                r.reason,
                body,
                [h.status_code for h in r.history],
                r.url,
                r.headers.get("content-type"),
                error,
            )
        )
    assert results[0] == results[1]
    versions = server.recorder.http_versions()
    assert set(versions[: len(versions) // 2]) == {"2"}
    assert set(versions[len(versions) // 2 :]) == {"1.1"}


def test_streaming_cookies_and_headers_as_over_http11(
    h2_server: Callable[..., H2Server], h2session: Callable[..., keepwarm.Session], plain: Any
) -> None:
    server = h2_server()
    seen = []
    for client in (h2session(), plain):
        # Two Set-Cookie fields: requests' headers join them, urllib3's keep both.
        set_cookie = client.get(f"{server.url}/set-cookie?a=1&b=2", timeout=TIMEOUT)
        with client.get(f"{server.url}/stream/5", stream=True, timeout=TIMEOUT) as r:
            lines = [json.loads(line) for line in r.iter_lines()]
        hooked: list[int] = []
        echoed = client.get(
            f"{server.url}/headers",
            headers={"X-Custom": "yes", "Connection": "keep-alive"},
            auth=("user", "secret"),
            hooks={"response": [functools.partial(_record_status, hooked)]},
            timeout=TIMEOUT,
        ).json()
        seen.append(
            (
                dict(client.cookies),
                lines,
                echoed.get("x-custom"),
                echoed.get("cookie"),
                echoed.get("authorization"),
                hooked,
                set_cookie.headers["Set-Cookie"],
                set_cookie.raw.headers.getlist("set-cookie"),
                sorted(set_cookie.raw.headers.keys()),
                dict(set_cookie.cookies),
            )
        )
        # HTTP/2 carries no connection-specific headers (RFC 9113 8.2.2).
        if client is not plain:
            assert "connection" not in echoed
            assert echoed[":authority"] == server.url.removeprefix("https://")
    assert seen[0] == seen[1]
    assert seen[0][0] == {"a": "1", "b": "2"}
    assert seen[0][4] == "Basic dXNlcjpzZWNyZXQ="
    assert seen[0][5] == [200]
    assert seen[0][7] == ["a=1; Path=/", "b=2; Path=/"]


def test_user_agent_given_removed_or_skipped_as_over_http11(
    h2_server: Callable[..., H2Server], h2session: Callable[..., keepwarm.Session], plain: Any
) -> None:
    from urllib3.util import SKIP_HEADER

    server = h2_server()
    seen = []
    for client in (h2session(), plain):
        agents = []
        for headers in ({}, {"User-Agent": "mine/1"}, {"User-Agent": None}):
            echoed = client.get(f"{server.url}/headers", headers=headers, timeout=TIMEOUT)
            agents.append(echoed.json().get("user-agent"))
        # urllib3's way to send none at all, through a prepared request's headers.
        request = requests.Request("GET", f"{server.url}/headers").prepare()
        request.headers["User-Agent"] = SKIP_HEADER
        agents.append(client.send(request, timeout=TIMEOUT).json().get("user-agent"))
        seen.append(agents)
    assert seen[0] == seen[1]
    assert seen[0][0].startswith("python-requests/")
    assert seen[0][1:] == ["mine/1", f"python-urllib3/{urllib3.__version__}", None]


def test_credentials_stay_out_of_the_hpack_tables(
    h2_server: Callable[..., H2Server], h2session: Callable[..., keepwarm.Session]
) -> None:
    # RFC 7541 7.1.3: a field in the compression context can be recovered by whoever
    # can add guesses to the same connection. h2 keeps Authorization, Proxy-Authorization
    # and short cookies out of it when it normalises headers; keepwarm sends headers
    # requests already validated, without h2's normalisation, and must keep the rule.
    server = h2_server()
    session = h2session()
    long_cookie = "session=" + "x" * 40
    for cookie in ("id=42", long_cookie):
        response = session.get(
            f"{server.url}/headers",
            headers={
                "Authorization": "Bearer t0ken",
                "Proxy-Authorization": "Basic cHJveHk6cHc=",
                "Cookie": cookie,
                "X-Trace": "abc",
            },
            timeout=TIMEOUT,
        )
        assert response.json()["authorization"] == "Bearer t0ken"
    short, long_ = server.recorder.streams
    assert short.never_indexed == {"authorization", "proxy-authorization", "cookie"}
    # h2's rule: cookies of 20 bytes or more are indexed (each crumb is long enough
    # that guessing it is out of reach, and sessions resend them on every request).
    assert long_.never_indexed == {"authorization", "proxy-authorization"}
    assert dict(long_.headers)["cookie"] == long_cookie


def test_values_with_surrounding_whitespace_arrive_as_over_http11(
    h2_server: Callable[..., H2Server],
    h1_tls_server: H2Server,
    h2session: Callable[..., keepwarm.Session],
    plain: Any,
) -> None:
    # requests accepts a value that ends in whitespace (not one that starts with it);
    # HTTP/1.1 servers strip it as optional whitespace, while RFC 9113 8.2.1 makes it a
    # malformed HTTP/2 request that a strict server (h2's, hypercorn's) rejects with
    # GOAWAY, failing every stream on the connection: keepwarm strips it, as h2 would.
    h2, session = h2_server(), h2session()
    headers = {"X-Padded": "value \t", "X-Plain": "value"}
    over_h2 = session.get(f"{h2.url}/headers", headers=headers, timeout=TIMEOUT)
    over_h11 = plain.get(f"{h1_tls_server.url}/headers", headers=headers, timeout=TIMEOUT)
    assert over_h2.status_code == over_h11.status_code == 200
    assert over_h2.json()["x-padded"] == over_h11.json()["x-padded"] == "value"
    assert keepwarm.timings(over_h2).http_version == "HTTP/2"  # type: ignore[union-attr]
    assert h2.errors == []


def test_a_large_response_head_is_read_as_over_http11(
    h2_server: Callable[..., H2Server],
    h1_tls_server: H2Server,
    h2session: Callable[..., keepwarm.Session],
    plain: Any,
) -> None:
    # 200 KiB of response headers (50 lines of 4 KiB): http.client takes up to 100 lines
    # of 64 KiB. h2's default limit (64 KiB in all) made it a protocol error that ended
    # the connection, and every other stream on it.
    over_h2 = h2session().get(f"{h2_server().url}/big-head/200", timeout=TIMEOUT)
    over_h11 = plain.get(f"{h1_tls_server.url}/big-head/200", timeout=TIMEOUT)
    assert over_h2.status_code == over_h11.status_code == 200
    assert over_h2.headers["x-big-49"] == over_h11.headers["x-big-49"] == "v" * 4000
    assert len(over_h2.headers) == len(over_h11.headers)
    assert keepwarm.timings(over_h2).http_version == "HTTP/2"  # type: ignore[union-attr]


def test_the_server_sees_http2_from_hypercorn_too(
    hypercorn_server: Any, h2session: Callable[..., keepwarm.Session]
) -> None:
    session = h2session()
    for _ in range(3):
        assert session.get(f"{hypercorn_server.url}/get").status_code == 200
    assert hypercorn_server.seen_versions() == ["2", "2", "2"]
    stats = session.stats()
    assert (stats.connections_opened, stats.http2_connections, stats.reused) == (1, 1, 2)


# -- Negotiation ---------------------------------------------------------------------------


def test_an_http11_only_server_is_answered_on_one_connection_like_requests(
    h1_tls_server: H2Server, h2session: Callable[..., keepwarm.Session], plain: Any
) -> None:
    session = h2session()
    ours = [session.get(f"{h1_tls_server.url}/get") for _ in range(4)]
    assert [r.status_code for r in ours] == [200] * 4
    assert {_version(r) for r in ours} == {"HTTP/1.1"}
    ours_connections = h1_tls_server.recorder.connections_accepted
    for _ in range(4):
        plain.get(f"{h1_tls_server.url}/get", timeout=TIMEOUT)
    theirs_connections = h1_tls_server.recorder.connections_accepted - ours_connections
    # The connection that learned "HTTP/1.1" serves the rest, as requests' one does.
    assert ours_connections == theirs_connections == 1
    assert session.stats().http2_connections == 0


def test_http2_from_the_environment(
    h2_server: Callable[..., H2Server], ca_bundle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = h2_server()
    monkeypatch.setenv("KEEPWARM_HTTP2", "1")
    with keepwarm.Session(verify=ca_bundle, timeout=TIMEOUT) as session:
        assert _version(session.get(f"{server.url}/get")) == "HTTP/2"
    monkeypatch.setenv("KEEPWARM_HTTP2", "maybe")
    with pytest.raises(ValueError, match="KEEPWARM_HTTP2='maybe' is not valid"):
        keepwarm.Session()


def test_without_h2_the_error_says_what_to_install() -> None:
    result = run_python(
        """
import json, sys
sys.modules["h2"] = None  # as if not installed
import keepwarm
try:
    keepwarm.Session(http2=True)
except ImportError as exc:
    print(json.dumps(str(exc)))
"""
    )
    assert "keepwarm[http2]" in result
    assert "h2" in result


# -- Multiplexing and flow control ------------------------------------------------------------


def test_threads_share_one_connection_with_concurrent_streams(
    h2_server: Callable[..., H2Server], h2session: Callable[..., keepwarm.Session]
) -> None:
    server = h2_server()
    session = h2session()
    session.get(f"{server.url}/get")  # the connection exists before the threads start
    with ThreadPoolExecutor(16) as pool:
        statuses = list(
            pool.map(lambda _: session.get(f"{server.url}/delay/300").status_code, range(16))
        )
    assert statuses == [200] * 16
    (connection,) = server.recorder.connections
    assert connection.max_open_streams >= 8  # they overlapped on the one connection
    assert session.stats().connections_opened == 1


@pytest.fixture
def h2connection(
    h2_server: Callable[..., H2Server], ca_bundle: str
) -> Iterator[tuple[h2conn.H2Connection, H2Server]]:
    """An ``H2Connection`` of its own to a fresh server, for the sleeper and waking logic
    (threads and their timing are not reproducible; the connection's state is)."""
    server = h2_server()
    context = ssl.create_default_context(cafile=ca_bundle)
    context.set_alpn_protocols(["h2"])
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
    assert sock.selected_alpn_protocol() == "h2"
    conn = h2conn.H2Connection(sock, server.url)
    conn.wait_ready(5)
    yield conn, server
    conn.close()


def _open_get(conn: h2conn.H2Connection, server: H2Server, path: str) -> int:
    assert conn.reserve()
    headers = [
        (b":method", b"GET"),
        (b":scheme", b"https"),
        (b":authority", f"127.0.0.1:{server.port}".encode()),
        (b":path", path.encode()),
    ]
    return conn.open_stream(headers, "GET", end_stream=True)


def test_a_sleeper_is_woken_only_once_the_connections_lock_is_let_go(
    h2connection: tuple[h2conn.H2Connection, H2Server],
) -> None:
    # Woken while the lock is held, it would only wake to sleep again on the lock.
    conn, _ = h2connection
    waiter = h2conn._Waiter(lambda: True, None)
    with conn._lock:
        conn._lock.wake(waiter)
        conn._lock.wake(waiter)  # a second wake is not a second release (RuntimeError)
        assert waiter.woken
        assert waiter.gate.locked()
    assert not waiter.gate.locked()


def _check_until_head(conn: h2conn.H2Connection, stream: Any) -> None:
    # Read the connection with the pool's check(), nobody else reading, until ``stream``
    # has its head (SETTINGS and WINDOW_UPDATE frames may come first); 5 s at most.
    deadline = time.monotonic() + 5
    while stream.headers is None:
        left = deadline - time.monotonic()
        assert left > 0, "the server did not answer within 5 s"
        select.select([conn._sock], [], [], left)
        assert conn.check()


@pytest.mark.parametrize("by_stream", [False, True])
def test_a_response_read_while_nobody_reads_wakes_its_sleeper(
    h2connection: tuple[h2conn.H2Connection, H2Server], by_stream: bool
) -> None:
    # Between a reader's leaving and the next reader's start, the pool's check() of the
    # connection may read a sleeper's response: it must wake it, or the sleeper waits for
    # whatever next arrives on the connection (another stream's response, or its timeout).
    conn, server = h2connection
    stream_id = _open_get(conn, server, "/get")
    stream = conn._streams[stream_id]
    waiter = h2conn._Waiter(lambda: stream.headers is not None, stream, by_stream)
    conn._waiters.append(waiter)
    _check_until_head(conn, stream)
    assert waiter.gate.acquire(timeout=0)  # woken, the lock let go
    conn._waiters.remove(waiter)
    assert conn.response_headers(stream_id, 5)[0] == stream.headers
    conn.release(stream_id)


def test_a_sleeper_on_a_stream_is_asked_again_only_when_its_stream_received(
    h2connection: tuple[h2conn.H2Connection, H2Server],
) -> None:
    # Sixteen threads asleep on sixteen streams: each read would otherwise ask all of
    # them whether their wait is over, when one stream's frames came.
    conn, server = h2connection
    slow, fast = _open_get(conn, server, "/delay/1000"), _open_get(conn, server, "/get")
    slow_stream, fast_stream = conn._streams[slow], conn._streams[fast]
    asked: list[bool] = []

    def slow_ready() -> bool:
        asked.append(slow_stream.headers is not None)
        return asked[-1]

    sleeper = h2conn._Waiter(slow_ready, slow_stream, by_stream=True)
    other = h2conn._Waiter(lambda: fast_stream.headers is not None, fast_stream, by_stream=True)
    conn._waiters += [sleeper, other]
    _check_until_head(conn, fast_stream)
    assert other.woken and other.gate.acquire(timeout=0)
    assert asked == [] and not sleeper.woken  # nothing came for its stream
    _check_until_head(conn, slow_stream)
    assert asked[-1] is True and sleeper.gate.acquire(timeout=0)
    conn._waiters.clear()
    conn.release(fast)
    conn.release(slow)


def _event(kind: type, **fields: Any) -> Any:
    event = kind.__new__(kind)  # h2 4.1's events take no arguments, 4.2's fields
    for name, value in fields.items():
        setattr(event, name, value)
    return event


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(
            lambda i: _event(
                h2.events.ResponseReceived, stream_id=i, headers=[(b":status", b"200")]
            ),
            id="head",
        ),
        pytest.param(
            lambda i: _event(
                h2.events.ResponseReceived,
                stream_id=i,
                headers=[(b":status", b"200"), (b"X-Upper", b"1")],
            ),
            id="malformed-head",
        ),
        pytest.param(
            lambda i: _event(
                h2.events.DataReceived, stream_id=i, data=b"x", flow_controlled_length=1
            ),
            id="data",
        ),
        pytest.param(lambda i: _event(h2.events.StreamEnded, stream_id=i), id="end"),
        pytest.param(
            lambda i: _event(h2.events.StreamReset, stream_id=i, error_code=2, remote_reset=True),
            id="reset",
        ),
        pytest.param(
            lambda i: _event(
                h2.events.ConnectionTerminated,
                error_code=0,
                last_stream_id=i - 2,
                additional_data=None,
            ),
            id="goaway",
        ),
        pytest.param(lambda i: h2conn._Malformed(i, "bad", 0), id="malformed"),
    ],
)
def test_what_may_end_a_wait_on_a_stream_counts_as_its_event(
    h2connection: tuple[h2conn.H2Connection, H2Server], event: Callable[[int], Any]
) -> None:
    # A by-stream sleeper is asked again only when its stream's count moved: an event
    # that changes what it waits for (head, body, end, error) and does not count would
    # leave it asleep until its timeout.
    conn, server = h2connection
    stream_id = _open_get(conn, server, "/delay/1000")
    stream = conn._streams[stream_id]
    before = stream.events
    conn._dispatch(event(stream_id))
    assert stream.events > before
    assert stream.headers is not None or stream.data or stream.ended or stream.error
    conn.release(stream_id)


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, f"not within 5 s: {what}"
        time.sleep(0.005)


def test_the_sleeper_on_the_oldest_stream_takes_over_reading(
    h2connection: tuple[h2conn.H2Connection, H2Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the reader leaves, the sleeper whose stream went out first reads next, not
    the first to fall asleep: its response is likely the next to come in, and it reads
    it itself instead of waking for it (over HTTP/1.1, the kernel wakes the thread whose
    socket has data; each hand-over here is one more thread wake per response)."""
    conn, server = h2connection
    first = _open_get(conn, server, "/delay/500")  # the reader's
    older = _open_get(conn, server, "/delay/1500")
    newer = _open_get(conn, server, "/delay/2500")
    read_by: dict[int, int] = {}
    dispatch = conn._dispatch

    def recording(event: Any) -> None:
        # The head: what each thread waits for. Not the stream's end, which the server
        # may write after the head, once its thread has taken the head and gone.
        if type(event).__name__ == "ResponseReceived":
            read_by[event.stream_id] = threading.get_ident()
        dispatch(event)

    monkeypatch.setattr(conn, "_dispatch", recording)
    waited_by: dict[int, int] = {}

    def wait(stream_id: int) -> None:
        waited_by[stream_id] = threading.get_ident()
        conn.response_headers(stream_id, 10)
        conn.release(stream_id)

    threads = [threading.Thread(target=wait, args=(s,)) for s in (first, newer, older)]
    threads[0].start()
    _wait_until(lambda: conn._reading, "the first thread reads")
    threads[1].start()  # falls asleep first, on the newer stream
    _wait_until(lambda: len(conn._waiters) == 1, "the newer stream's thread sleeps")
    threads[2].start()
    _wait_until(lambda: len(conn._waiters) == 2, "the older stream's thread sleeps")
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()
    assert read_by == waited_by  # each response read by the thread that waited for it


@pytest.mark.parametrize(
    "field",
    [
        (b"set-cookie", b" session=SECRET"),  # h2: "surrounded by whitespace", with the value
        (b"set-cookie", b"session=SECRET\nx-injected: 1"),  # let through by h2 before 4.3
        (b"X-Token", b"SECRET"),
    ],
)
def test_a_malformed_head_fails_its_stream_without_quoting_a_value(
    h2connection: tuple[h2conn.H2Connection, H2Server], field: tuple[bytes, bytes]
) -> None:
    conn, server = h2connection
    stream_id = _open_get(conn, server, "/delay/2000")
    # What h2's ResponseReceived carries (its constructor differs between releases).
    event = types.SimpleNamespace(stream_id=stream_id, headers=[(b":status", b"200"), field])
    with conn._lock:
        assert conn._malformed_head(event, trailers=False)
        error = conn._streams[stream_id].error
    assert isinstance(error, h2conn.MalformedResponse)
    assert f"malformed HTTP/2 response on stream {stream_id}" in str(error)
    assert "SECRET" not in str(error)
    with pytest.raises(h2conn.MalformedResponse):
        conn.response_headers(stream_id, 5)
    conn.release(stream_id)
    # The stream was reset; the connection goes on.
    assert conn.check()
    other = _open_get(conn, server, "/get")
    assert conn.response_headers(other, 5)[0][0] == (b":status", b"200")
    conn.release(other)


def test_threads_that_start_together_open_one_connection(
    h2_server: Callable[..., H2Server], h2session: Callable[..., keepwarm.Session]
) -> None:
    server = h2_server()
    session = h2session()
    start = threading.Barrier(16, timeout=10)

    def one(_: int) -> int:
        start.wait()
        return session.get(f"{server.url}/delay/100").status_code

    with ThreadPoolExecutor(16) as pool:
        assert list(pool.map(one, range(16))) == [200] * 16
    assert server.recorder.connections_accepted == 1


def test_a_new_connections_first_request_does_not_wait_for_the_servers_settings(
    h2_server: Callable[..., H2Server], h2session: Callable[..., keepwarm.Session]
) -> None:
    # RFC 9113 3.4: the client may send requests right after its connection preface.
    # Waiting for the server's SETTINGS first costs a round trip on every new connection
    # (the server sends them once its TLS handshake is over, when the client's last
    # flight arrives), a round trip HTTP/1.1 does not pay: its request goes out with it.
    # The server here holds its SETTINGS back until a request arrives (or 3 s pass).
    server = h2_server(hold_settings=3.0)
    session = h2session()
    response = session.get(f"{server.url}/headers", timeout=TIMEOUT)
    assert response.status_code == 200
    assert keepwarm.timings(response).http_version == "HTTP/2"  # type: ignore[union-attr]
    assert server.requests_before_settings == [True]


def test_threads_wait_for_the_servers_settings_before_a_second_stream(
    h2_server: Callable[..., H2Server], h2session: Callable[..., keepwarm.Session]
) -> None:
    # Until the server's SETTINGS arrive its stream limit is unknown: one stream goes
    # out at once, the others wait for the limit (instead of opening more connections
    # or sending streams the server would refuse).
    server = h2_server(hold_settings=0.3, max_concurrent_streams=2)
    session = h2session(pool_maxsize=1, pool_block=True, pool_timeout=10)
    start = threading.Barrier(8, timeout=10)

    def one(_: int) -> int:
        start.wait()
        return session.get(f"{server.url}/delay/20", timeout=TIMEOUT).status_code

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(one, range(8))) == [200] * 8
    assert server.recorder.connections_accepted == 1
    assert server.requests_before_settings == [True]
    # The server refuses a stream over its limit by h2's count of open streams (its
    # recorder's own count lags a stream the client already saw end): none was.
    assert not server.recorder.refused
    assert session.stats().refused_resends == 0


def test_the_servers_stream_limit_is_kept(
    h2_server: Callable[..., H2Server], h2session: Callable[..., keepwarm.Session]
) -> None:
    server = h2_server(max_concurrent_streams=2)
    # Blocking: beyond the limit, more connections up to pool_maxsize, then a queue.
    session = h2session(pool_maxsize=3, pool_block=True, pool_timeout=10)
    with ThreadPoolExecutor(12) as pool:
        statuses = list(
            pool.map(lambda _: session.get(f"{server.url}/delay/50").status_code, range(36))
        )
    assert statuses == [200] * 36
    connections = server.recorder.connections
    assert 1 <= len(connections) <= 3  # beyond the limit: more connections, up to pool_maxsize
    # The server refuses (REFUSED_STREAM) any stream over its limit by h2's count of open
    # streams: none was, so the client never had more than two open on a connection.
    assert not server.recorder.refused
    assert session.stats().refused_resends == 0


@pytest.mark.parametrize("window", [None, 65535, 16384])
def test_ten_megabytes_each_way_arrive_intact(
    h2_server: Callable[..., H2Server],
    h2session: Callable[..., keepwarm.Session],
    window: int | None,
) -> None:
    server = h2_server(initial_window_size=window, max_frame_size=16384)
    session = h2session()
    size = 10_000_000
    down = session.get(f"{server.url}/bytes/{size}")
    assert down.content == deterministic_bytes(size)
    payload = deterministic_bytes(size)[::-1]
    up = session.post(f"{server.url}/echo", data=payload)
    assert up.headers["x-body-length"] == str(size)
    assert up.headers["x-body-sha256"] == hashlib.sha256(payload).hexdigest()
    assert up.content == payload


def test_reads_of_a_known_length_body_return_what_was_asked_as_over_http11(
    h2_server: Callable[..., H2Server],
    h1_tls_server: H2Server,
    h2session: Callable[..., keepwarm.Session],
    plain: Any,
) -> None:
    # HTTP/1.1's buffered reader returns raw.read(n) whole unless the body ends: code
    # that reads a fixed-size record (raw.read(4)) or counts on iter_content's chunk
    # size gets the same over HTTP/2, whose DATA frames are 16 KiB here.
    size = 300_000
    seen = []
    for client, server in ((h2session(), h2_server()), (plain, h1_tls_server)):
        with client.get(f"{server.url}/bytes/{size}", stream=True, timeout=TIMEOUT) as r:
            first, second = r.raw.read(4), r.raw.read(65536)
            chunks = [len(c) for c in r.iter_content(100_000)]
        seen.append((len(first), len(second), chunks))
    assert seen[0] == seen[1] == (4, 65536, [100_000, 100_000, size - 4 - 65536 - 200_000])


def test_a_body_of_unknown_length_is_handed_over_as_it_arrives(
    h2_server: Callable[..., H2Server],
    h1_tls_server: H2Server,
    h2session: Callable[..., keepwarm.Session],
    plain: Any,
) -> None:
    # A stream of events has no Content-Length: over HTTP/1.1 it is chunked and urllib3
    # hands each chunk over as it comes, without waiting to fill the read; so does HTTP/2.
    # The server pauses 3 s after the first chunk: a read that waited to fill would wait.
    for client, server in ((h2session(), h2_server()), (plain, h1_tls_server)):
        url = f"{server.url}/stream/2?pause=3000"
        with client.get(url, stream=True, timeout=TIMEOUT) as r:
            assert "content-length" not in r.headers
            started = time.monotonic()
            first = next(r.iter_content(65536))
            waited = time.monotonic() - started
        assert first == b'{"chunk": 0}\n'
        assert waited < 1.5


@pytest.mark.parametrize("stream", [False, True])
def test_the_read_timeout_is_between_arrivals_not_for_the_whole_body(
    h2_server: Callable[..., H2Server],
    h1_tls_server: H2Server,
    h2session: Callable[..., keepwarm.Session],
    plain: Any,
    stream: bool,
) -> None:
    # A reader asleep until the whole body (or the read's amount) has come is not woken
    # for each DATA frame; its read timeout still runs from the last bytes that came, as
    # over HTTP/1.1: a body that trickles in with pauses under the timeout is read whole,
    # however long it takes (one ``raw.read()`` of it, or ``.content``); a pause over it
    # fails the read.
    for client, server in ((h2session(max_retries=0), h2_server()), (plain, h1_tls_server)):
        url = f"{server.url}/stream/5?pause=250"
        if stream:
            with client.get(url, stream=True, timeout=(5, 0.6)) as r:
                body = r.raw.read()  # one read of the whole body
        else:
            body = client.get(url, timeout=(5, 0.6)).content
        assert body.count(b"chunk") == 5
        with pytest.raises(requests.exceptions.ConnectionError):  # ReadTimeoutError inside
            client.get(f"{server.url}/stream/2?pause=1500", timeout=(5, 0.6)).content  # noqa: B018


def test_a_reader_that_keeps_up_gets_a_wider_window(
    h2_server: Callable[..., H2Server], h2session: Callable[..., keepwarm.Session]
) -> None:
    # A stream's window caps what the server may send per round trip: 1 MiB is 50 MB/s
    # at 20 ms, where HTTP/1.1's TCP window grows to several MB. A stream whose reader
    # had to wait for data (the window, not the reader, held the body back) gets a wider
    # one, up to STREAM_WINDOW_MAX, as TCP's receive window grows.
    server, session = h2_server(), h2session()
    size = 12 << 20
    body = session.get(f"{server.url}/bytes/{size}", timeout=TIMEOUT).content
    assert len(body) == size
    assert body[:3] == b"\x00\x01\x02" and body[-1] == (size - 1) % 256
    (record,) = server.recorder.streams
    assert STREAM_WINDOW < record.widest_window <= STREAM_WINDOW_MAX


def test_a_stream_nobody_reads_keeps_the_initial_window(
    h2_server: Callable[..., H2Server], h2session: Callable[..., keepwarm.Session]
) -> None:
    # What an unread response may buffer stays bounded by the initial window: only a
    # reader that drains what arrived and waits for more widens it.
    server, session = h2_server(), h2session()
    with session.get(f"{server.url}/bytes/{12 << 20}", stream=True, timeout=TIMEOUT) as r:
        assert len(r.raw.read(65536)) == 65536
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and server.recorder.streams[0].widest_window == 0:
            time.sleep(0.01)
        time.sleep(0.3)  # the server sends what the window allows, then waits
        (record,) = server.recorder.streams
        assert 0 < record.widest_window <= STREAM_WINDOW


def test_a_streamed_response_closed_early_frees_its_stream(
    h2_server: Callable[..., H2Server], h2session: Callable[..., keepwarm.Session]
) -> None:
    server = h2_server(max_concurrent_streams=1)
    session = h2session()
    for _ in range(3):
        r = session.get(f"{server.url}/bytes/5000000", stream=True)
        assert len(next(r.iter_content(1024))) == 1024
        r.close()  # reset: the server stops, the place is free for the next request
    assert session.get(f"{server.url}/get").status_code == 200
    assert server.recorder.connections_accepted == 1


@pytest.mark.keepwarm_leaks("off")  # drops the response unclosed: the point of the test
def test_a_streamed_response_dropped_unclosed_frees_its_stream(
    h2_server: Callable[..., H2Server], h2session: Callable[..., keepwarm.Session]
) -> None:
    import gc

    server = h2_server(max_concurrent_streams=1)
    session = h2session()
    r = session.get(f"{server.url}/bytes/5000000", stream=True)
    del r
    gc.collect()
    assert session.get(f"{server.url}/get").status_code == 200
    assert server.recorder.connections_accepted == 1


# -- GOAWAY, refusals, resets, dead peers -------------------------------------------------------


def test_goaway_every_three_streams_loses_nothing_sequentially(
    h2_server: Callable[..., H2Server], h2session: Callable[..., keepwarm.Session]
) -> None:
    server = h2_server(goaway_after=3)
    session = h2session(max_retries=0)
    statuses = [session.get(f"{server.url}/get").status_code for _ in range(12)]
    assert statuses == [200] * 12
    assert len(server.recorder.processed) == 12
    assert server.recorder.connections_accepted == 4


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_streams_refused_by_goaway_are_sent_again_whatever_the_method(
    h2_server: Callable[..., H2Server], h2session: Callable[..., keepwarm.Session], method: str
) -> None:
    server = h2_server(goaway_after=5, response_delay=0.02)
    session = h2session(max_retries=0)

    def one(i: int) -> int:
        return session.request(method, f"{server.url}/echo", data=f"request {i}").status_code

    with ThreadPoolExecutor(16) as pool:
        assert list(pool.map(one, range(80))) == [200] * 80
    processed = server.recorder.processed
    # Every request processed exactly once: refused ones were not, then were, once.
    assert len(processed) == 80
    stats = session.stats()
    # Every refusal the server recorded was resent; the client may count a few more: streams
    # written after the server stopped reading, which it never saw.
    assert stats.refused_resends >= len(server.recorder.refused) > 0
    assert stats.retries == 0
    assert stats.requests == 80


@pytest.mark.parametrize("route", ["/goaway", "/refuse"])
def test_a_server_that_refuses_every_time_gets_a_clear_error(
    h2_server: Callable[..., H2Server], h2session: Callable[..., keepwarm.Session], route: str
) -> None:
    server = h2_server()
    with pytest.raises(requests.ConnectionError, match=r"refused .* without processing it"):
        h2session(max_retries=0).post(f"{server.url}{route}", data=b"body")
    assert not [s for s in server.recorder.processed if s.path == route]


def test_a_body_that_cannot_be_sent_twice_is_not_resent_after_a_refusal(
    h2_server: Callable[..., H2Server], h2session: Callable[..., keepwarm.Session]
) -> None:
    server = h2_server()
    with pytest.raises(requests.ConnectionError, match="cannot be sent twice"):
        h2session(max_retries=0).post(f"{server.url}/refuse", data=iter([b"a", b"b"]))


def test_rst_stream_fails_that_request_alone(
    h2_server: Callable[..., H2Server], h2session: Callable[..., keepwarm.Session]
) -> None:
    server = h2_server()
    session = h2session(max_retries=0)
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(session.get, f"{server.url}/delay/300")
        time.sleep(0.05)
        with pytest.raises(
            requests.RequestException, match=r"reset HTTP/2 stream \d+: INTERNAL_ERROR"
        ):
            session.get(f"{server.url}/reset")
        assert slow.result(timeout=10).status_code == 200
    assert session.get(f"{server.url}/get").status_code == 200
    assert server.recorder.connections_accepted == 1


def _fails_alone(session: keepwarm.Session, server: H2Server, route: str) -> BaseException:
    """What the request to ``route`` raised, while another stream was open on the same
    connection; that one, and the connection, went on."""
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(session.get, f"{server.url}/delay/300", timeout=TIMEOUT)
        time.sleep(0.1)  # the slow stream is open when the malformed response arrives
        with pytest.raises(requests.RequestException) as caught:
            session.get(f"{server.url}{route}", timeout=TIMEOUT).content  # noqa: B018
        assert slow.result().status_code == 200
    assert session.get(f"{server.url}/headers", timeout=TIMEOUT).status_code == 200
    assert session.stats().connections_opened == 1
    return caught.value


def test_a_malformed_response_fails_that_request_alone(
    h2_server: Callable[..., H2Server],
    h1_tls_server: H2Server,
    h2session: Callable[..., keepwarm.Session],
    plain: Any,
) -> None:
    # A body shorter than its Content-Length is a malformed response, a stream error
    # (RFC 9113 8.1.1). h2 raises it as a connection error: every other stream on the
    # connection failed with it, where over HTTP/1.1 each request has its own connection
    # and only that one fails. Here it fails alone, with the error requests raises (no
    # retries: a retry would hide the other stream's failure).
    error = _fails_alone(h2session(max_retries=0), h2_server(), "/short")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        plain.get(f"{h1_tls_server.url}/short", timeout=TIMEOUT).content  # noqa: B018
    assert type(error) is requests.exceptions.ChunkedEncodingError


def test_a_malformed_head_fails_that_request_alone(
    h2_server: Callable[..., H2Server],
    h1_tls_server: H2Server,
    h2session: Callable[..., keepwarm.Session],
    plain: Any,
) -> None:
    # An upper-case field name is malformed over HTTP/2 (RFC 9113 8.2.1), a stream error
    # (8.1.1). h2 raised it as a connection error, failing every stream on the connection;
    # over HTTP/1.1 the name is case-insensitive and the response an ordinary one.
    theirs = plain.get(f"{h1_tls_server.url}/upper", timeout=TIMEOUT)
    assert (theirs.status_code, theirs.headers["x-upper"], theirs.text) == (200, "1", "ok")
    error = _fails_alone(h2session(max_retries=0), h2_server(), "/upper")
    assert type(error) is requests.ConnectionError
    assert "malformed HTTP/2 response" in str(error)
    assert "uppercase header name b'X-Upper'" in str(error)  # h2's own words


@pytest.mark.parametrize(
    ("route", "error"),
    [
        ("/close", requests.ConnectionError),
        ("/silent", requests.exceptions.ReadTimeout),
        ("/half", requests.exceptions.ConnectionError),
    ],
)
def test_a_peer_that_closes_or_goes_silent_fails_within_the_read_timeout_as_with_requests(
    h2_server: Callable[..., H2Server],
    h2session: Callable[..., keepwarm.Session],
    plain: Any,
    route: str,
    error: type[Exception],
) -> None:
    server = h2_server()
    for client in (h2session(max_retries=0), plain):
        started = time.monotonic()
        with pytest.raises(error):
            client.get(f"{server.url}{route}", timeout=(5, 0.5)).content  # noqa: B018
        assert time.monotonic() - started < 4  # a hang guard, not a speed target


def test_a_total_deadline_bounds_a_silent_http2_server(
    h2_server: Callable[..., H2Server], h2session: Callable[..., keepwarm.Session]
) -> None:
    server = h2_server()
    session = h2session()
    with pytest.raises(keepwarm.DeadlineExceeded):
        session.get(f"{server.url}/silent", timeout=keepwarm.Timeout(connect=5, read=5, total=0.5))


def test_retries_follow_the_policy_over_http2_as_over_http11(
    h2_server: Callable[..., H2Server], h2session: Callable[..., keepwarm.Session], plain: Any
) -> None:
    from urllib3.util.retry import Retry

    server = h2_server()
    policy = keepwarm.RetryPolicy(total=2, status_forcelist=[503], backoff_factor=0)
    assert h2session(max_retries=policy).get(f"{server.url}/status/503").status_code == 503
    ours = len([s for s in server.recorder.processed if s.path == "/status/503"])
    plain.mount(
        "https://", requests.adapters.HTTPAdapter(max_retries=Retry(**policy_kwargs(policy)))
    )
    plain.get(f"{server.url}/status/503", timeout=TIMEOUT)
    theirs = len([s for s in server.recorder.processed if s.path == "/status/503"]) - ours
    assert ours == theirs == 3


def policy_kwargs(policy: Any) -> dict[str, Any]:
    return {
        "total": policy.total,
        "status_forcelist": policy.status_forcelist,
        "backoff_factor": 0,
        "raise_on_status": False,
    }


def test_an_idle_connection_past_keepalive_expiry_is_replaced(
    h2_server: Callable[..., H2Server], h2session: Callable[..., keepwarm.Session]
) -> None:
    server = h2_server()
    session = h2session(keepalive_expiry=0.2)
    session.get(f"{server.url}/get")
    time.sleep(0.4)
    session.get(f"{server.url}/get")
    assert server.recorder.connections_accepted == 2
    assert session.stats().idle_expired == 1


def test_a_forked_child_never_touches_the_parents_connection(
    h2_server: Callable[..., H2Server], h2session: Callable[..., keepwarm.Session]
) -> None:
    server = h2_server()
    session = h2session()
    streamed = session.get(f"{server.url}/bytes/3000000", stream=True)  # open in the parent

    def child() -> int:
        del streamed_holder[0]  # the child drops the parent's open stream
        import gc

        gc.collect()
        return session.get(f"{server.url}/get").status_code

    streamed_holder = [streamed]
    assert run_in_child(child) == 200
    # The parent's stream and connection were not disturbed by the child.
    assert len(streamed.content) == 3_000_000
    assert session.get(f"{server.url}/get").status_code == 200
    assert server.recorder.connections_accepted == 2
    assert not [
        s for s in server.recorder.streams if s.path.startswith("/bytes") and not s.processed
    ]


# -- nginx: GOAWAY every 10 requests (the pass bar) ----------------------------------------


def test_nginx_goaway_every_ten_requests_500_sequential_gets(
    nginx_h2: Callable[..., Any], h2session: Callable[..., keepwarm.Session]
) -> None:
    server = nginx_h2(keepalive_requests=10)
    session = h2session(max_retries=0)
    statuses = [session.get(f"{server.url}/").status_code for _ in range(500)]
    assert statuses == [200] * 500
    log = server.requests(expect=500)
    assert len(log) == 500
    assert {entry.protocol for entry in log} == {"HTTP/2.0"}
    assert server.connections(expect=500) == 50


def test_nginx_goaway_every_ten_requests_500_gets_from_16_threads(
    nginx_h2: Callable[..., Any], h2session: Callable[..., keepwarm.Session]
) -> None:
    server = nginx_h2(keepalive_requests=10)
    session = h2session(max_retries=0)
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda _: session.get(f"{server.url}/").status_code, range(500)))
    assert statuses == [200] * 500
    log = server.requests(expect=500)
    assert len(log) == 500
    assert {entry.protocol for entry in log} == {"HTTP/2.0"}


# -- Everything else still applies: probe, tracers, mocks, recorders, proxies, mount ----------


def test_probe_shows_the_server_offers_h2_and_measures_over_it(
    h2_server: Callable[..., H2Server], ca_bundle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from keepwarm.cli import main

    server = h2_server()
    url = f"{server.url}/get"
    assert main(["probe", url, "--cacert", ca_bundle, "-n", "3", "--json"]) == 0
    plain_run = json.loads(capsys.readouterr().out)
    assert main(["probe", url, "--cacert", ca_bundle, "-n", "3", "--json", "--http2"]) == 0
    http2_run = json.loads(capsys.readouterr().out)
    assert plain_run["alpn"] == http2_run["alpn"] == ["h2", "http/1.1"]
    assert plain_run["summary"]["http_version"] == "HTTP/1.1"
    assert http2_run["summary"]["http_version"] == "HTTP/2"
    assert http2_run["summary"]["connections_opened"] == 1
    assert http2_run["summary"]["warm_reused"] == 2


def test_a_tracer_sees_every_http2_request_as_it_sees_http11_ones(
    h2_server: Callable[..., H2Server],
    h2session: Callable[..., keepwarm.Session],
    plain: Any,
    tracing: Any,
) -> None:
    server = h2_server()
    names = []
    for client in (h2session(), plain):
        tracing.clear()
        assert client.get(f"{server.url}/redirect?to=/get", timeout=TIMEOUT).ok
        names.append([span.name for span in tracing.get_finished_spans()])
    assert names[0] == names[1]
    assert names[0]
    for version in ("2", "1.1"):
        sent = [s for s in server.recorder.streams if s.http_version == version]
        assert len(sent) == 2  # the redirect and its target
        assert [bool(dict(s.headers).get("traceparent")) for s in sent] == [True, True]


def test_requests_mock_answers_http2_sessions(h2session: Callable[..., keepwarm.Session]) -> None:
    import requests_mock

    with requests_mock.Mocker() as mocker:
        mocker.get("https://h2.invalid/x", text="mocked")
        assert h2session().get("https://h2.invalid/x").text == "mocked"


def test_a_recorder_hooking_urllib3_records_http2_sessions_over_http11(
    h2_server: Callable[..., H2Server],
    h2session: Callable[..., keepwarm.Session],
    tmp_path: Any,
) -> None:
    import vcr

    server = h2_server()
    session = h2session()
    with vcr.use_cassette(str(tmp_path / "h2.yaml"), record_mode="once") as cassette:
        assert session.get(f"{server.url}/get").status_code == 200
    assert len(cassette) == 1
    assert server.recorder.http_versions() == ["1.1"]  # urllib3's own pools: HTTP/1.1
    assert _version(session.get(f"{server.url}/get")) == "HTTP/2"  # and back after


def test_through_a_proxy_http2_sessions_speak_http11(
    h2_server: Callable[..., H2Server],
    h2session: Callable[..., keepwarm.Session],
    raw_server: Callable[..., Any],
) -> None:
    from servers import Socks5Proxy

    pytest.importorskip("socks", reason="PySocks (the socks extra) is not installed")
    server = h2_server()
    proxy = raw_server(Socks5Proxy())
    proxies = {"https": f"socks5://{proxy.host}:{proxy.port}"}
    r = h2session().get(f"{server.url}/get", proxies=proxies)
    assert r.status_code == 200
    assert _version(r) == "HTTP/1.1"
    assert server.recorder.http_versions() == ["1.1"]


def test_mount_and_shared_sessions_take_http2(
    h2_server: Callable[..., H2Server], ca_bundle: str
) -> None:
    server = h2_server()
    with keepwarm.mount(requests.Session(), http2=True, timeout=TIMEOUT) as mounted:
        assert _version(mounted.get(f"{server.url}/get", verify=ca_bundle)) == "HTTP/2"
    shared = keepwarm.session("h2-test", http2=True, verify=ca_bundle, timeout=TIMEOUT)
    assert _version(shared.get(f"{server.url}/get")) == "HTTP/2"
    assert keepwarm.stats(shared).http2_connections == 1


def test_no_timeout_is_warned_about_over_http2_as_over_http11(
    h2_server: Callable[..., H2Server], h2session: Callable[..., keepwarm.Session]
) -> None:
    server = h2_server()
    session = h2session(timeout=keepwarm.NO_TIMEOUT)
    with pytest.warns(keepwarm.NoTimeoutWarning):
        assert session.get(f"{server.url}/get").status_code == 200


def test_close_ends_the_http2_connection(
    h2_server: Callable[..., H2Server], h2session: Callable[..., keepwarm.Session]
) -> None:
    server = h2_server()
    session = h2session()
    assert session.get(f"{server.url}/get").status_code == 200
    session.close()
    assert server.recorder.wait_for(lambda r: all(c.closed for c in r.connections))
    with pytest.raises(keepwarm.SessionClosedError):
        session.get(f"{server.url}/get")


GEVENT_SCRIPT = r"""
from gevent import monkey

monkey.patch_all()

import json
import sys

import gevent

import keepwarm

url, bundle = sys.argv[1], sys.argv[2]
errors = []
with keepwarm.Session(http2=True, verify=bundle, timeout=(5, 5)) as session:

    def get():
        try:
            session.get(url).raise_for_status()
        except Exception as exc:
            errors.append(repr(exc))

    gevent.joinall([gevent.spawn(get) for _ in range(100)], timeout=60)
    stats = session.stats()
print(json.dumps({"errors": errors[:3], "requests": stats.requests,
                  "connections": stats.connections_opened}))
"""


def test_greenlets_share_one_http2_connection_under_gevent(
    h2_server: Callable[..., H2Server], ca_bundle: str
) -> None:
    pytest.importorskip("gevent")
    server = h2_server()
    result = run_python(GEVENT_SCRIPT, f"{server.url}/delay/50", ca_bundle)
    assert result == {"errors": [], "requests": 100, "connections": 1}
    assert server.recorder.connections[0].max_open_streams > 10


# -- nghttpd: nghttp2's reference server, small windows and a stream limit ----------------------


def test_nghttpd_small_windows_and_two_streams_ten_megabytes_each_way(
    nghttpd_server: Callable[..., Any], h2session: Callable[..., keepwarm.Session]
) -> None:
    size = 10_000_000
    blob = deterministic_bytes(size)
    server = nghttpd_server(
        files={"blob": blob, "small": b"small"},
        max_concurrent_streams=2,
        window_bits=14,  # 16 KiB stream windows
        connection_window_bits=16,
    )
    session = h2session()
    assert session.get(f"{server.url}/blob").content == blob
    assert session.post(f"{server.url}/small", data=blob[::-1]).content == blob[::-1]
    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda _: session.get(f"{server.url}/small").content, range(40)))
    assert bodies == [b"small"] * 40
    stats = session.stats()
    assert stats.refused_resends == 0
    assert stats.http2_connections >= 1


def test_an_upload_is_not_held_up_by_a_thread_waiting_for_a_slow_response(
    h2_server: Callable[..., H2Server], h2session: Callable[..., keepwarm.Session]
) -> None:
    # A wide stream window: the upload is limited by the socket more than by flow
    # control. Bytes the socket does not take are written by the reader, asleep in poll()
    # for the slow response; the uploading thread wakes it (the connection's waker). This
    # server's connection-level WINDOW_UPDATEs wake the reader too, so the test guards
    # against a hang rather than reproducing the one the waker prevents.
    server = h2_server(initial_window_size=2**31 - 1)
    session = h2session(timeout=(5, 10))
    session.get(f"{server.url}/get")
    payload = deterministic_bytes(30_000_000)
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(session.get, f"{server.url}/delay/4000")
        time.sleep(0.2)  # the slow request's thread is the reader now
        upload = pool.submit(session.post, f"{server.url}/echo", data=payload)
        done = upload.result(timeout=15)
        assert not slow.done()  # the upload did not wait for the slow response
        assert done.headers["x-body-length"] == str(len(payload))
        assert slow.result(timeout=15).status_code == 200


def test_beyond_the_servers_stream_limit_a_pool_that_does_not_block_opens_more_connections(
    h2_server: Callable[..., H2Server], h2session: Callable[..., keepwarm.Session]
) -> None:
    server = h2_server(max_concurrent_streams=1)
    session = h2session(pool_maxsize=2)  # pool_block=False: never wait for a stream
    with ThreadPoolExecutor(6) as pool:
        statuses = list(
            pool.map(lambda _: session.get(f"{server.url}/delay/300").status_code, range(6))
        )
    assert statuses == [200] * 6
    assert server.recorder.connections_accepted == 6  # as HTTP/1.1 opens extra connections


def test_a_blocking_pool_waits_for_a_stream_within_pool_timeout(
    h2_server: Callable[..., H2Server], h2session: Callable[..., keepwarm.Session]
) -> None:
    server = h2_server(max_concurrent_streams=1)
    session = h2session(pool_maxsize=1, pool_block=True, pool_timeout=0.2)
    session.get(f"{server.url}/get")
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(session.get, f"{server.url}/delay/1500")
        time.sleep(0.2)
        with pytest.raises(keepwarm.PoolTimeout, match=r"no HTTP/2 stream .* became free"):
            session.get(f"{server.url}/get")
        assert slow.result(timeout=10).status_code == 200
    assert server.recorder.connections_accepted == 1
