"""Retries: which failures are retried, for which methods, and what the caller gets at the end.

keepwarm's RetryPolicy retries 429/502/503/504 and dropped connections for idempotent
methods only, connect failures for every method, honours Retry-After up to
``retry_after_max`` and returns the last response when retries run out. Every test runs
against a real local server and counts what that server saw.
"""

from __future__ import annotations

import pickle
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
import requests
from urllib3.exceptions import MaxRetryError, ReadTimeoutError
from urllib3.response import HTTPResponse
from urllib3.util.retry import Retry

import keepwarm
from servers import Flaky, LocalServer, RawServer, read_request, read_request_head
from servers.faults import endless_5xx

FAST = keepwarm.RetryPolicy(backoff_factor=0)


class _Counter:
    """Thread-safe counters for raw-server scripts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.connections = 0
        self.requests: list[bytes] = []

    def connection(self) -> int:
        with self._lock:
            self.connections += 1
            return self.connections

    def request(self, head: bytes) -> None:
        with self._lock:
            self.requests.append(head)


def _reset_first_then_serve(counter: _Counter) -> Callable[[socket.socket, RawServer], None]:
    """Script: the first connection reads the request and resets (RST); every later
    connection answers each request ``200 ok`` and stays open."""

    def script(conn: socket.socket, server: RawServer) -> None:
        number = counter.connection()
        if number == 1:
            head = read_request(conn)
            if head:
                counter.request(head)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            return
        while not server.closing.is_set():
            head = read_request(conn)
            if not head:
                return
            counter.request(head)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    return script


def _counting_silent(counter: _Counter) -> Callable[[socket.socket, RawServer], None]:
    """Script: count the request, never answer, hold the socket until the server closes."""

    def script(conn: socket.socket, server: RawServer) -> None:
        counter.connection()
        head = read_request_head(conn)
        if head:
            counter.request(head)
        server.wait_closed()

    return script


def _refused_url() -> str:
    """A loopback URL nobody listens on (connect gets ECONNREFUSED at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


class _CountingPolicy(keepwarm.RetryPolicy):
    """RetryPolicy that records each increment() (urllib3 builds the copies with
    ``type(self)``, so they all record into the same class-level list)."""

    calls: ClassVar[list[str]] = []

    def increment(self, *args: Any, **kwargs: Any) -> keepwarm.RetryPolicy:
        error = kwargs.get("error")
        type(self).calls.append(type(error).__name__ if error is not None else "response")
        return super().increment(*args, **kwargs)


# -- status retries -------------------------------------------------------------------


@pytest.mark.parametrize("status", [503, 429, 502, 504])
def test_retry_status_then_success(make_server: Callable[..., LocalServer], status: int) -> None:
    flaky = Flaky(times=1, status=status)
    server = make_server(flaky)
    with keepwarm.Session(max_retries=FAST) as s:
        r = s.get(server.url + "/echo")
    assert r.status_code == 200
    assert r.json()["method"] == "GET"
    assert flaky.count("/echo") == 2
    assert server.requests_handled == 2


def test_default_session_retries_a_503(make_server: Callable[..., LocalServer]) -> None:
    """The default policy: the first retry comes without backoff."""
    flaky = Flaky(times=1, status=503)
    server = make_server(flaky)
    with keepwarm.Session() as s:
        start = time.monotonic()
        r = s.get(server.url + "/")
        elapsed = time.monotonic() - start
    assert r.status_code == 200
    assert flaky.count("/") == 2
    assert elapsed < 1.0
    # both attempts went over the same kept-alive connection
    assert server.connections_accepted == 1


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"])
def test_idempotent_methods_are_retried(
    make_server: Callable[..., LocalServer], method: str
) -> None:
    flaky = Flaky(times=1, status=503)
    server = make_server(flaky)
    with keepwarm.Session(max_retries=FAST) as s:
        r = s.request(method, server.url + "/echo", data=b"body" if method == "PUT" else None)
    assert r.status_code == 200
    assert flaky.count("/echo") == 2
    assert [req.method for req in server.requests] == [method, method]


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_post_and_patch_are_not_retried_on_503(
    make_server: Callable[..., LocalServer], method: str
) -> None:
    flaky = Flaky(times=1, status=503)
    server = make_server(flaky)
    with keepwarm.Session(max_retries=FAST) as s:
        r = s.request(method, server.url + "/echo", data=b"payload")
    assert r.status_code == 503
    assert flaky.count("/echo") == 1
    assert server.requests_handled == 1


def test_retry_after_is_honoured(make_server: Callable[..., LocalServer]) -> None:
    flaky = Flaky(times=1, status=503, retry_after=1)
    server = make_server(flaky)
    with keepwarm.Session(max_retries=FAST) as s:
        start = time.monotonic()
        r = s.get(server.url + "/")
        elapsed = time.monotonic() - start
    assert r.status_code == 200
    assert flaky.count("/") == 2
    assert 0.95 <= elapsed < 5.0


def test_retry_after_longer_than_the_maximum_ends_the_retries() -> None:
    """Pure logic, so the default 30 s maximum can be checked without waiting for it: a
    503 asking for Retry-After: 120 makes the default policy give up (urllib3 then hands
    the response back, since raise_on_status is False) instead of sleeping and retrying."""
    response = HTTPResponse(body=b"", status=503, headers={"Retry-After": "120"})
    policy = keepwarm.RetryPolicy()
    assert policy.is_retry("GET", 503, has_retry_after=True)
    with pytest.raises(MaxRetryError, match="retry_after_max"):
        policy.increment(method="GET", url="/", response=response)


def test_retry_after_longer_than_the_maximum_is_returned_at_once(
    make_server: Callable[..., LocalServer],
) -> None:
    """The same against a real server, with a small maximum to keep the test fast."""
    flaky = Flaky(times=1, status=429, retry_after=1)
    server = make_server(flaky)
    policy = keepwarm.RetryPolicy(backoff_factor=0, retry_after_max=0.5)
    with keepwarm.Session(max_retries=policy) as s:
        start = time.monotonic()
        r = s.get(server.url + "/")
        elapsed = time.monotonic() - start
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "1"
    assert flaky.count("/") == 1
    assert elapsed < 0.4


def test_exhausted_retries_return_the_last_response(
    make_server: Callable[..., LocalServer],
) -> None:
    flaky = Flaky(times=100, status=503)
    server = make_server(flaky)
    with keepwarm.Session(max_retries=keepwarm.RetryPolicy(total=2, backoff_factor=0)) as s:
        r = s.get(server.url + "/")
        assert r.status_code == 503
        assert flaky.count("/") == 3
    with keepwarm.Session(max_retries=FAST) as s:  # default total=3
        r = s.get(server.url + "/other")
        assert r.status_code == 503
        assert flaky.count("/other") == 4
    assert server.requests_handled == 7


def test_retries_wait_with_backoff(make_server: Callable[..., LocalServer]) -> None:
    flaky = Flaky(times=2, status=502)
    server = make_server(flaky)
    policy = keepwarm.RetryPolicy(backoff_factor=0.2)  # waits 0, then 0.4 s
    with keepwarm.Session(max_retries=policy) as s:
        start = time.monotonic()
        r = s.get(server.url + "/")
        elapsed = time.monotonic() - start
    assert r.status_code == 200
    assert flaky.count("/") == 3
    assert 0.35 <= elapsed < 3.0


# -- dropped connections --------------------------------------------------------------


def test_get_is_retried_after_a_connection_reset(raw_server: Callable[..., RawServer]) -> None:
    counter = _Counter()
    server = raw_server(_reset_first_then_serve(counter))
    with keepwarm.Session(max_retries=FAST) as s:
        r = s.get(server.url + "/x")
    assert r.status_code == 200
    assert r.text == "ok"
    assert len(counter.requests) == 2
    assert counter.connections == 2
    assert server.errors == []


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_post_is_not_retried_after_a_connection_reset(
    raw_server: Callable[..., RawServer], method: str
) -> None:
    counter = _Counter()
    server = raw_server(_reset_first_then_serve(counter))
    with keepwarm.Session(max_retries=FAST) as s:
        with pytest.raises(requests.exceptions.ConnectionError):
            s.request(method, server.url + "/x", data=b"payload")
        assert len(counter.requests) == 1
        assert counter.connections == 1
        # the session is still usable afterwards
        assert s.request(method, server.url + "/x", data=b"payload").text == "ok"
    assert len(counter.requests) == 2


def test_connection_refused_is_retried_for_post_and_ends_quickly() -> None:
    url = _refused_url()
    _CountingPolicy.calls = []
    policy = _CountingPolicy(total=2, backoff_factor=0)
    with keepwarm.Session(max_retries=policy) as s:
        start = time.monotonic()
        with pytest.raises(requests.exceptions.ConnectionError) as info:
            s.post(url, data=b"payload")
        elapsed = time.monotonic() - start
    assert not isinstance(info.value, requests.exceptions.Timeout)
    assert elapsed < 2.0
    # the request was never sent, so even a POST is tried 1 + total times
    assert _CountingPolicy.calls == ["NewConnectionError"] * 3


def test_connection_refused_with_default_policy_is_bounded() -> None:
    with keepwarm.Session(max_retries=keepwarm.RetryPolicy(total=2, backoff_factor=0)) as s:
        start = time.monotonic()
        with pytest.raises(requests.exceptions.ConnectionError, match="Max retries exceeded"):
            s.get(_refused_url())
    assert time.monotonic() - start < 2.0


def test_connect_timeout_is_retried_for_post(backlog_full_address: tuple[str, int]) -> None:
    host, port = backlog_full_address
    url = f"http://{host}:{port}/"
    policy = keepwarm.RetryPolicy(total=2, backoff_factor=0)
    with keepwarm.Session(timeout=keepwarm.Timeout(connect=0.2, read=5), max_retries=policy) as s:
        start = time.monotonic()
        with pytest.raises(requests.exceptions.ConnectTimeout):
            s.post(url, data=b"payload")
        elapsed = time.monotonic() - start
    assert 0.55 <= elapsed < 3.0  # three connect attempts of 0.2 s


# -- read timeouts --------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_read_timeouts_are_not_retried_by_default(
    raw_server: Callable[..., RawServer], method: str
) -> None:
    counter = _Counter()
    server = raw_server(_counting_silent(counter))
    with keepwarm.Session(timeout=keepwarm.Timeout(connect=1, read=0.3), max_retries=FAST) as s:
        start = time.monotonic()
        with pytest.raises(requests.exceptions.ReadTimeout):
            s.request(method, server.url + "/", data=b"x" if method == "POST" else None)
        elapsed = time.monotonic() - start
    assert 0.25 <= elapsed < 0.9
    assert counter.connections == 1
    assert len(counter.requests) == 1


def test_read_timeouts_are_retried_when_asked(raw_server: Callable[..., RawServer]) -> None:
    counter = _Counter()
    server = raw_server(_counting_silent(counter))
    policy = keepwarm.RetryPolicy(total=2, backoff_factor=0, retry_read_timeouts=True)
    with keepwarm.Session(timeout=keepwarm.Timeout(connect=1, read=0.3), max_retries=policy) as s:
        start = time.monotonic()
        # requests reports an exhausted read-timeout retry as a ConnectionError wrapping
        # urllib3's MaxRetryError(reason=ReadTimeoutError)
        with pytest.raises(requests.exceptions.RequestException) as info:
            s.get(server.url + "/")
        elapsed = time.monotonic() - start
    assert isinstance(info.value, requests.exceptions.ConnectionError)
    assert isinstance(info.value.args[0].reason, ReadTimeoutError)
    assert 0.85 <= elapsed < 3.0
    assert server.wait_for_connections(3, timeout=2)
    assert len(counter.requests) == 3


def test_read_timeouts_of_post_are_never_retried(raw_server: Callable[..., RawServer]) -> None:
    counter = _Counter()
    server = raw_server(_counting_silent(counter))
    policy = keepwarm.RetryPolicy(total=2, backoff_factor=0, retry_read_timeouts=True)
    timeout = keepwarm.Timeout(connect=1, read=0.3)
    with (
        keepwarm.Session(timeout=timeout, max_retries=policy) as s,
        pytest.raises(requests.exceptions.ReadTimeout),
    ):
        s.post(server.url + "/", data=b"x")
    assert len(counter.requests) == 1


# -- switching retries off, custom policies -------------------------------------------


def test_max_retries_zero_disables_every_retry(
    make_server: Callable[..., LocalServer], raw_server: Callable[..., RawServer]
) -> None:
    flaky = Flaky(times=1, status=503)
    server = make_server(flaky)
    counter = _Counter()
    raw = raw_server(_reset_first_then_serve(counter))
    with keepwarm.Session(max_retries=0) as s:
        assert s.get(server.url + "/").status_code == 503
        assert flaky.count("/") == 1
        with pytest.raises(requests.exceptions.ConnectionError):
            s.get(raw.url + "/")
        assert len(counter.requests) == 1
        # the next request is a fresh attempt and succeeds
        assert s.get(server.url + "/").status_code == 200
        assert s.get(raw.url + "/").text == "ok"


def test_resend_stale_is_kept_compared_and_shown() -> None:
    """``RetryPolicy(resend_stale=False)`` turns off the stale-connection resend, which
    ``max_retries=0`` leaves on (tests/test_faults.py has both on a real server, next to
    plain requests); the setting survives urllib3's ``new()`` on every retry."""
    off = keepwarm.RetryPolicy(total=0, resend_stale=False)
    assert off.resend_stale is False
    assert keepwarm.RetryPolicy().resend_stale is True
    assert off.new(total=1).resend_stale is False
    assert pickle.loads(pickle.dumps(off)).resend_stale is False
    assert off.signature() != keepwarm.RetryPolicy(total=0).signature()
    assert repr(off).endswith("resend_stale=False)")
    assert "resend_stale" not in repr(keepwarm.RetryPolicy())
    with pytest.raises(TypeError, match="resend_stale must be True or False"):
        keepwarm.RetryPolicy(resend_stale="no")  # type: ignore[arg-type]
    with keepwarm.Session(max_retries=off) as s:
        assert s.settings.max_retries.resend_stale is False  # type: ignore[attr-defined]
    keepwarm.session("stale", max_retries=keepwarm.RetryPolicy(total=0))
    with pytest.raises(keepwarm.SessionConflictError, match="resend_stale=False"):
        keepwarm.session("stale", max_retries=off)


def test_custom_urllib3_retry_is_used_as_given(make_server: Callable[..., LocalServer]) -> None:
    # allowed_methods=None: every method, POST included; 500 is not in keepwarm's list.
    retry = Retry(total=1, status_forcelist=[500], allowed_methods=None, backoff_factor=0)
    flaky = Flaky(times=1, status=500)
    server = make_server(flaky)
    with keepwarm.Session(max_retries=retry) as s:
        assert s.get_adapter(server.url).max_retries is retry
        r = s.post(server.url + "/echo", data=b"x")
        assert r.status_code == 200
        assert flaky.count("/echo") == 2
        # urllib3's own default raise_on_status=True: exhausted retries raise RetryError
        flaky.times = 100
        with pytest.raises(requests.exceptions.RetryError):
            s.get(server.url + "/again")
        assert flaky.count("/again") == 2
        # ... and 503 is not retried by this Retry at all
        flaky.status = 503
        assert s.get(server.url + "/third").status_code == 503
        assert flaky.count("/third") == 1


def test_integer_max_retries_is_a_keepwarm_policy(make_server: Callable[..., LocalServer]) -> None:
    flaky = Flaky(times=100, status=503)
    server = make_server(flaky)
    with keepwarm.Session(max_retries=1) as s:
        r = s.get(server.url + "/")  # one retry (no backoff before the first), then the 503
        assert r.status_code == 503
        assert flaky.count("/") == 2
        r = s.post(server.url + "/p")
        assert flaky.count("/p") == 1


@pytest.mark.parametrize("retry_after", [None, "3600"])
def test_endless_5xx_with_raise_on_status_ends(
    raw_server: Callable[..., RawServer], retry_after: str | None
) -> None:
    """``raise_on_status=True``: urllib3 drains the last response before raising
    RetryError; with a body that never ends keepwarm bounds that drain too (also when a
    long ``Retry-After`` ends the retries at once)."""
    script, seen = endless_5xx(99, header=f"Retry-After: {retry_after}" if retry_after else "")
    server = raw_server(script)
    policy = keepwarm.RetryPolicy(backoff_factor=0, raise_on_status=True)
    start = time.monotonic()
    with (
        keepwarm.Session(timeout=(2, 5), max_retries=policy) as s,
        pytest.raises(requests.exceptions.RetryError),
    ):
        s.get(server.url + "/", stream=True)
    assert time.monotonic() - start < 6.0
    assert len(seen) == (4 if retry_after is None else 1)
