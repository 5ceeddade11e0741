"""Property-based: random sequences of requests, server-side closes, client closes,
timeouts and forks against one keepwarm.Session never break it.

A hypothesis state machine drives a ``keepwarm.Session`` against two local servers (HTTP
and HTTPS). After every step:

* nothing raised but what the step documents (``requests.ReadTimeout`` for a request
  whose read timeout is shorter than the server's delay, ``SessionClosedError`` for a
  request on a closed session);
* no slot leaked: with no response open, every pool's free slots equal its size, and at
  most one connection per origin was ever checked out at once;
* file descriptors stay bounded (a leak of one per step would show within one run), and
  drop back to the starting count when the session is closed;
* nothing hung (every request has a timeout and is timed);
* the servers saw every request exactly once (no retry or stale-connection resend
  duplicated one, no POST in particular).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
import requests
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import keepwarm
from servers import LocalServer, ServerRequest, ServerResponse, default_handler

#: Where this process's open file descriptors are listed (Linux; macOS has /dev/fd).
FD_DIR = next((d for d in ("/proc/self/fd", "/dev/fd") if os.path.isdir(d)), None)

pytestmark = [
    pytest.mark.skipif(FD_DIR is None, reason="no /proc/self/fd or /dev/fd to count fds"),
    # Python 3.12+ warns that fork() in a process with threads (the servers) may deadlock
    # the child; the child here makes one request and leaves with os._exit.
    pytest.mark.filterwarnings(
        r"ignore:This process \(pid=\d+\) is multi-threaded, use of fork\(\) may lead to "
        r"deadlocks in the child:DeprecationWarning"
    ),
]

POOL_SIZE = 4
TIMEOUT = (2.0, 5.0)
#: The longest any single request may take (its timeout plus scheduling slack).
STEP_LIMIT = 8.0
SLEEP_SECONDS = 0.3
SHORT_READ_TIMEOUT = 0.1
CHILD_DEADLINE = 10.0
#: fds allowed above the starting count mid-run: a few pooled connections (two fds each,
#: as the servers run in this process) and server threads still finishing a /sleep.
FD_SLACK = 24


def _fd_count() -> int:
    assert FD_DIR is not None
    return len(os.listdir(FD_DIR))


class ControlledHandler:
    """The default routes, plus: ``close_next()`` makes the next answer close the
    connection (``Connection: close``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._close_next = False

    def close_next(self) -> None:
        with self._lock:
            self._close_next = True

    def __call__(self, request: ServerRequest) -> ServerResponse:
        response = default_handler(request)
        with self._lock:
            if self._close_next:
                response.close = True
                self._close_next = False
        return response


def _close_idle_connections(server: LocalServer) -> None:
    """Close the server's end of every open connection, as a server whose keep-alive
    timeout fired would, and wait until it has (bounded).

    LocalServer has no public way to do this, so this reaches into its connection table.
    Between steps no request is in flight, so every open connection is idle (or a /sleep
    whose client already gave up)."""
    with server._lock:
        socks = [conn.sock for conn in server._live.values()]
    for sock in socks:
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
    assert server.wait_for_no_connections(5.0), "the server did not close its connections in 5 s"


class Environment:
    """What the state machine runs against (set by the test before it runs)."""

    def __init__(
        self,
        servers: dict[str, tuple[LocalServer, ControlledHandler]],
        ca_bundle: str,
        fd_baseline: int,
    ) -> None:
        self.servers = servers
        self.ca_bundle = ca_bundle
        self.fd_baseline = fd_baseline
        self.ids = itertools.count()
        #: Request ids sent and answered, per server name (checked against the server).
        self.sent: dict[str, list[str]] = {name: [] for name in servers}
        #: How often each rule ran, and keepwarm's counters summed over all sessions.
        self.rules: Counter[str] = Counter()
        self.counters: Counter[str] = Counter()


SERVER_NAMES = st.sampled_from(["http", "https"])
#: (method, path, body size for a POST)
CALLS = st.tuples(
    st.sampled_from(["GET", "POST", "HEAD"]),
    st.sampled_from(["/", "/echo", "/bytes?n=70000", "/status/204"]),
    st.integers(min_value=0, max_value=20_000),
)
#: Requests sent right after a disruptive rule.
THEN = st.lists(CALLS, max_size=3)


class SessionMachine(RuleBasedStateMachine):
    """Every disruptive rule takes ``then``: requests sent right after the disruption.
    Hypothesis enables a random subset of rules per example (swarm testing), so without
    them many examples would disrupt a session that never sends another request."""

    env: ClassVar[Environment]

    def __init__(self) -> None:
        super().__init__()
        self.session = self._new_session()
        self.closed_session: keepwarm.Session | None = None

    # -- helpers ----------------------------------------------------------------------

    def _new_session(self) -> keepwarm.Session:
        return keepwarm.Session(pool_maxsize=POOL_SIZE, verify=self.env.ca_bundle, timeout=TIMEOUT)

    def _url(self, name: str, path: str) -> tuple[str, str]:
        server, _ = self.env.servers[name]
        request_id = f"r{next(self.env.ids)}"
        sep = "&" if "?" in path else "?"
        return request_id, f"{server.url}{path}{sep}id={request_id}"

    def _count(self, session: keepwarm.Session) -> None:
        stats = session.stats()
        for counter in ("requests", "connections_opened", "reused", "dropped", "stale_retries"):
            self.env.counters[counter] += getattr(stats, counter)

    def _timed(self, call: Callable[[], Any]) -> Any:
        started = time.monotonic()
        try:
            return call()
        finally:
            elapsed = time.monotonic() - started
            assert elapsed < STEP_LIMIT, f"a request took {elapsed:.1f} s"

    def _send(self, name: str, calls: list[tuple[str, str, int]]) -> None:
        for method, path, body_size in calls:
            self._request(name, method, path, body_size)

    def _request(self, name: str, method: str, path: str, body_size: int) -> None:
        request_id, url = self._url(name, path)
        data = b"x" * body_size if method == "POST" else None

        def send() -> requests.Response:
            return self.session.request(method, url, data=data, timeout=TIMEOUT)

        with self._timed(send) as response:
            expected = 204 if path == "/status/204" else 200
            assert response.status_code == expected
            if method == "HEAD" or expected == 204:
                assert response.content == b""
            elif path == "/echo":
                echo = response.json()
                assert echo["method"] == method
                assert echo["query"]["id"] == request_id
                assert len(echo["body"]) == (body_size if method == "POST" else 0)
            elif path.startswith("/bytes"):
                assert len(response.content) == 70_000
            else:
                assert response.text == "ok"
        self.env.sent[name].append(request_id)

    # -- rules ------------------------------------------------------------------------

    @initialize()
    def warm_up(self) -> None:
        # Start with a pooled connection to each server, for the disruptions to act on.
        for name in self.env.servers:
            self._request(name, "GET", "/", 0)

    @rule(name=SERVER_NAMES, calls=st.lists(CALLS, min_size=1, max_size=4))
    def request(self, name: str, calls: list[tuple[str, str, int]]) -> None:
        self.env.rules["request"] += 1
        self._send(name, calls)

    @rule(name=SERVER_NAMES, then=THEN)
    def server_closes_after_next_response(
        self, name: str, then: list[tuple[str, str, int]]
    ) -> None:
        self.env.rules["server_closes_after_next_response"] += 1
        self.env.servers[name][1].close_next()
        self._send(name, then)

    @rule(name=SERVER_NAMES, then=THEN)
    def server_close_idle(self, name: str, then: list[tuple[str, str, int]]) -> None:
        self.env.rules["server_close_idle"] += 1
        _close_idle_connections(self.env.servers[name][0])
        self._send(name, then)

    @rule(name=SERVER_NAMES, then=THEN)
    def client_close_session(self, name: str, then: list[tuple[str, str, int]]) -> None:
        self.env.rules["client_close_session"] += 1
        self._count(self.session)
        self.session.close()
        assert self.session.closed
        self.session.close()  # idempotent
        self.closed_session = self.session
        self.session = self._new_session()
        self._send(name, then)

    @precondition(lambda self: self.closed_session is not None)
    @rule(name=SERVER_NAMES)
    def request_on_closed_session(self, name: str) -> None:
        self.env.rules["request_on_closed_session"] += 1
        closed = self.closed_session
        assert closed is not None
        _, url = self._url(name, "/")
        with pytest.raises(keepwarm.SessionClosedError):
            self._timed(lambda: closed.get(url))

    @rule(name=SERVER_NAMES, then=THEN)
    def timeout_request(self, name: str, then: list[tuple[str, str, int]]) -> None:
        self.env.rules["timeout_request"] += 1
        request_id, url = self._url(name, f"/sleep?s={SLEEP_SECONDS}")
        with pytest.raises(requests.ReadTimeout):
            self._timed(lambda: self.session.get(url, timeout=(2.0, SHORT_READ_TIMEOUT)))
        # The server did receive it (once: read timeouts are not retried).
        self.env.sent[name].append(request_id)
        self._send(name, then)

    @precondition(lambda self: hasattr(os, "fork"))
    @rule(name=SERVER_NAMES, then=THEN)
    def fork(self, name: str, then: list[tuple[str, str, int]]) -> None:
        """The child makes one request through the inherited session and exits; the
        parent waits for it (bounded), then goes on with ``then``."""
        self.env.rules["fork"] += 1
        request_id, url = self._url(name, "/echo")
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; its coverage is not collected
            code = 1
            try:
                with self.session.get(url, timeout=TIMEOUT) as response:
                    ok = response.status_code == 200 and response.json()["query"]["id"]
                    code = 0 if ok == request_id else 1
            finally:
                os._exit(code)
        deadline = time.monotonic() + CHILD_DEADLINE
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail(f"the forked child did not finish within {CHILD_DEADLINE} s")
            time.sleep(0.002)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child status {status}"
        self.env.sent[name].append(request_id)
        self._send(name, then)

    # -- invariants -------------------------------------------------------------------

    @invariant()
    def no_slot_leaked(self) -> None:
        adapters = {id(a): a for a in self.session.adapters.values()}.values()
        for adapter in adapters:
            manager = adapter.poolmanager  # type: ignore[attr-defined]
            # RecentlyUsedContainer refuses iteration; keys() is a locked copy.
            keys = manager.pools.keys()
            for key in keys:
                pool = manager.pools[key]
                assert pool.pool is not None
                assert pool.pool.qsize() == POOL_SIZE, f"{key}: a slot is still checked out"
        for host in self.session.stats().hosts.values():
            assert host.peak_in_flight <= 1, f"{host.origin}: a checkout was never returned"

    @invariant()
    def fds_bounded(self) -> None:
        fds = _fd_count()
        assert fds <= self.env.fd_baseline + FD_SLACK, (
            f"{fds} fds open, {self.env.fd_baseline} at the start"
        )

    def teardown(self) -> None:
        self._count(self.session)
        self.session.close()
        # With the session closed, every connection's two ends go away (the server's end
        # when its thread sees EOF, or when a /sleep it was answering ends).
        deadline = time.monotonic() + 3.0
        while _fd_count() > self.env.fd_baseline and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _fd_count() <= self.env.fd_baseline, "fds left open after the session closed"


# The machine builds a session per example and after every close on purpose: churn by
# design. Whether ten of them land in the churn guard's 10 s window depends on how fast
# the machine runs (it did on a quiet one), so that guard is off here; the others stay.
@pytest.mark.filterwarnings("ignore::keepwarm.SessionChurnWarning")
def test_session_survives_random_closes_timeouts_and_forks(
    make_server: Callable[..., LocalServer], ca_bundle: str
) -> None:
    servers: dict[str, tuple[LocalServer, ControlledHandler]] = {}
    for name, tls in (("http", False), ("https", True)):
        handler = ControlledHandler()
        servers[name] = (make_server(handler, tls=tls), handler)
    # One request to each server first: a server's accept thread creates its selector
    # (an fd) on its own schedule, which must not be counted as a leak.
    with keepwarm.Session(verify=ca_bundle) as session:
        for server, _ in servers.values():
            session.get(server.url + "/", timeout=TIMEOUT).raise_for_status()
    for server, _ in servers.values():
        server.wait_for_no_connections(5.0)
    env = Environment(servers, ca_bundle, _fd_count())
    SessionMachine.env = env
    started = time.monotonic()
    run_state_machine_as_test(
        SessionMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=15,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    elapsed = time.monotonic() - started
    print(f"state machine: {sum(map(len, env.sent.values()))} requests in {elapsed:.1f} s")
    print(f"rules run: {dict(env.rules)}")
    print(f"keepwarm counters over all sessions: {dict(env.counters)}")

    # The run exercised what it claims to: every rule, and pooled connections that the
    # server had closed were noticed and replaced.
    expected_rules = {
        "request",
        "server_closes_after_next_response",
        "server_close_idle",
        "client_close_session",
        "request_on_closed_session",
        "timeout_request",
    }
    if hasattr(os, "fork"):
        expected_rules.add("fork")
    assert set(env.rules) == expected_rules
    assert env.counters["dropped"] > 0

    # Every request the machine sent reached its server exactly once.
    for name, (server, _) in servers.items():
        seen = Counter(r.query.get("id") for r in server.requests)
        sent = env.sent[name]
        duplicated = {i: n for i, n in seen.items() if n > 1}
        assert duplicated == {}, f"{name}: requests received more than once: {duplicated}"
        missing = [i for i in sent if seen[i] != 1]
        assert missing == [], f"{name}: requests never received: {missing}"
