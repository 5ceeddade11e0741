"""DNS recipes reach keepwarm as they reach plain requests.

People force IPv4 or bring their own name resolution by replacing parts of urllib3 or
of ``socket``: ``urllib3.util.connection.allowed_gai_family`` (``lambda:
socket.AF_INET``), ``urllib3.util.connection.HAS_IPV6 = False``, their own
``urllib3.util.connection.create_connection``, or a wrapper of ``socket.getaddrinfo``.
Each test applies a recipe (undone by ``monkeypatch`` after the test) and runs plain
``requests.Session`` and ``keepwarm.Session`` (with and without a total deadline: its
resolution runs in a thread then) against the same server on 127.0.0.1, and asserts
the recipe was used by each.

No test sends a DNS query: ``socket.getaddrinfo`` is wrapped for every test here, so a
lookup of anything but an IP literal fails (:func:`lookups`), and the fake name
``kw-test.invalid`` is answered as 127.0.0.1 by the recipe under test.
"""

from __future__ import annotations

import functools
import itertools
import re
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import urllib3.util.connection
from urllib3.exceptions import NameResolutionError, NewConnectionError

import keepwarm
from keepwarm._upstream import connection as kw_connection
from servers import LocalServer

FAKE_NAME = "kw-test.invalid"
#: urllib3's own create_connection, as the tests found it.
URLLIB3_CREATE_CONNECTION = urllib3.util.connection.create_connection
#: The clients every recipe is tried with: plain requests, keepwarm, and keepwarm under a
#: total deadline (name resolution in a thread, the connect timeout cut to the time left).
CLIENTS = ("requests", "keepwarm", "keepwarm-total")
TOTAL = 5.0


def make_session(kind: str, **settings: Any) -> requests.Session:
    if kind == "requests":
        return requests.Session()
    # Connect and read timeouts of 5 s, as plain requests gets them on each call.
    total = TOTAL if kind == "keepwarm-total" else None
    settings.setdefault("timeout", keepwarm.Timeout(5, 5, total=total))
    return keepwarm.Session(**settings)


def get(session: requests.Session, url: str) -> requests.Response:
    """GET *url* (a 5 s timeout for plain requests, the session's own for keepwarm),
    check the status, read the body, close."""
    kwargs: dict[str, Any] = {} if isinstance(session, keepwarm.Session) else {"timeout": 5}
    with session.get(url, **kwargs) as response:
        response.raise_for_status()
        _ = response.content
    return response


def fake_url(server: LocalServer) -> str:
    return f"http://{FAKE_NAME}:{server.port}/"


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int]]]:
    """``socket.getaddrinfo`` wrapped for the test (itself a recipe): records ``(host,
    family)`` of every lookup, answers :data:`FAKE_NAME` as 127.0.0.1, passes IP literals
    through (no query leaves the machine for those) and refuses every other name."""
    real = socket.getaddrinfo
    seen: list[tuple[str, int]] = []

    def getaddrinfo(host: Any, port: Any, family: int = 0, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        seen.append((name, int(family)))
        if name == FAKE_NAME:
            if family not in (socket.AF_UNSPEC, socket.AF_INET):
                return []
            return real("127.0.0.1", port, family, *args, **kwargs)
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in name else socket.AF_INET, name)
        except OSError:
            raise socket.gaierror(socket.EAI_NONAME, f"test: no DNS lookup of {name}") from None
        return real(host, port, family, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield seen


def run_each(
    server: LocalServer, url: str, before_each: Callable[[], None] | None = None
) -> dict[str, list[requests.Response]]:
    """Two GETs of *url* with each of :data:`CLIENTS` (the second on the connection the
    first opened); the responses by client."""
    responses: dict[str, list[requests.Response]] = {}
    for kind in CLIENTS:
        if before_each is not None:
            before_each()
        with make_session(kind) as session:
            responses[kind] = [get(session, url), get(session, url)]
            if isinstance(session, keepwarm.Session):
                stats = session.stats()
                assert (stats.requests, stats.connections_opened, stats.reused) == (2, 1, 1)
    assert server.requests_handled == 2 * len(CLIENTS)
    return responses


def test_socket_getaddrinfo_wrapper_answers_a_fake_name(
    http_server: LocalServer, lookups: list[tuple[str, int]]
) -> None:
    seen: dict[str, list[tuple[str, int]]] = {}

    def next_client() -> None:
        if lookups:
            seen[CLIENTS[len(seen)]] = list(lookups)
        lookups.clear()

    responses = run_each(http_server, fake_url(http_server), next_client)
    next_client()
    family = urllib3.util.connection.allowed_gai_family()
    for kind in CLIENTS:
        assert seen[kind] == [(FAKE_NAME, family)], kind
        assert all(r.status_code == 200 for r in responses[kind])
    # keepwarm times the lookup it made through the wrapper.
    for kind in ("keepwarm", "keepwarm-total"):
        timings = keepwarm.timings(responses[kind][0])
        assert timings is not None and timings.dns is not None and timings.connect is not None


def test_allowed_gai_family_replaced_forces_ipv4(
    http_server: LocalServer,
    lookups: list[tuple[str, int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []

    def ipv4_only() -> socket.AddressFamily:
        asked.append("asked")
        return socket.AF_INET

    monkeypatch.setattr(urllib3.util.connection, "allowed_gai_family", ipv4_only)
    counts: list[int] = []

    def next_client() -> None:
        counts.append(len(asked))

    run_each(http_server, fake_url(http_server), next_client)
    counts.append(len(asked))
    # Each client asked once, for its one connection, and looked up IPv4 only.
    assert [b - a for a, b in itertools.pairwise(counts)] == [1] * len(CLIENTS)
    assert lookups == [(FAKE_NAME, socket.AF_INET)] * len(CLIENTS)


@pytest.mark.parametrize("has_ipv6", [False, True])
def test_has_ipv6_sets_the_family_of_the_lookup(
    http_server: LocalServer,
    lookups: list[tuple[str, int]],
    monkeypatch: pytest.MonkeyPatch,
    has_ipv6: bool,
) -> None:
    monkeypatch.setattr(urllib3.util.connection, "HAS_IPV6", has_ipv6)
    run_each(http_server, fake_url(http_server))
    family = socket.AF_UNSPEC if has_ipv6 else socket.AF_INET
    assert lookups == [(FAKE_NAME, family)] * len(CLIENTS)


class Recorder:
    """A ``create_connection`` replacement: records how it was called, answers
    :data:`FAKE_NAME` as 127.0.0.1 itself and connects with urllib3's own function."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(
        self,
        address: tuple[str, int],
        timeout: Any = urllib3.util.connection._DEFAULT_TIMEOUT,
        source_address: tuple[str, int] | None = None,
        socket_options: Any = None,
    ) -> socket.socket:
        self.calls.append(
            {
                "address": address,
                "timeout": timeout,
                "source_address": source_address,
                "socket_options": socket_options,
            }
        )
        host, port = address
        if host == FAKE_NAME:
            host = "127.0.0.1"
        return URLLIB3_CREATE_CONNECTION((host, port), timeout, source_address, socket_options)


def test_create_connection_replaced_resolves_a_fake_name(
    http_server: LocalServer,
    lookups: list[tuple[str, int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = Recorder()
    monkeypatch.setattr(urllib3.util.connection, "create_connection", recorder)
    calls: list[list[dict[str, Any]]] = []

    def next_client() -> None:
        calls.append(list(recorder.calls))
        recorder.calls.clear()

    responses = run_each(http_server, fake_url(http_server), next_client)
    next_client()
    by_client = dict(zip(CLIENTS, calls[1:], strict=True))
    for kind, made in by_client.items():
        # One connection each, asked for by name as urllib3 asks, with the same options.
        assert [c["address"] for c in made] == [(FAKE_NAME, http_server.port)], kind
        assert made[0]["source_address"] is None
        assert made[0]["socket_options"] == by_client["requests"][0]["socket_options"]
    assert by_client["requests"][0]["timeout"] == by_client["keepwarm"][0]["timeout"] == 5
    # Under a total deadline, the time left (never more than the connect timeout).
    assert 0 < by_client["keepwarm-total"][0]["timeout"] <= 5
    # The replacement resolved the name: only the literal it connected to was looked up.
    family = urllib3.util.connection.allowed_gai_family()
    assert lookups == [("127.0.0.1", family)] * len(CLIENTS)
    for kind in ("keepwarm", "keepwarm-total"):
        timings = keepwarm.timings(responses[kind][0])
        assert timings is not None
        # Resolution and connect happened in one call keepwarm cannot see into.
        assert timings.dns is None and timings.connect is not None and timings.connect > 0


def test_create_connection_restored_is_keepwarms_own_again(
    http_server: LocalServer,
    lookups: list[tuple[str, int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = Recorder()
    monkeypatch.setattr(urllib3.util.connection, "create_connection", recorder)
    try:
        with keepwarm.Session() as s:
            replaced = keepwarm.timings(get(s, fake_url(http_server)))
    finally:
        monkeypatch.setattr(urllib3.util.connection, "create_connection", URLLIB3_CREATE_CONNECTION)
    assert len(recorder.calls) == 1
    assert replaced is not None and replaced.dns is None
    with keepwarm.Session() as s, requests.Session() as plain:
        timings = keepwarm.timings(get(s, fake_url(http_server)))
        get(plain, fake_url(http_server))
    assert len(recorder.calls) == 1
    # keepwarm's own path again: the lookup went through getaddrinfo, timed apart.
    assert timings is not None and timings.dns is not None
    assert [host for host, _ in lookups] == ["127.0.0.1", FAKE_NAME, FAKE_NAME]


@pytest.mark.parametrize(
    ("error", "expected", "reason"),
    [
        (
            socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
            requests.exceptions.ConnectionError,
            NameResolutionError,
        ),
        (TimeoutError("timed out"), requests.exceptions.ConnectTimeout, None),
        (
            ConnectionRefusedError(111, "Connection refused"),
            requests.exceptions.ConnectionError,
            NewConnectionError,
        ),
    ],
    ids=["gaierror", "timeout", "refused"],
)
def test_create_connection_errors_map_as_in_urllib3(
    http_server: LocalServer,
    lookups: list[tuple[str, int]],
    monkeypatch: pytest.MonkeyPatch,
    error: OSError,
    expected: type[Exception],
    reason: type[Exception] | None,
) -> None:
    calls: list[tuple[str, int]] = []

    def failing(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        calls.append(address)
        raise error

    monkeypatch.setattr(urllib3.util.connection, "create_connection", failing)
    outcomes: dict[str, BaseException] = {}
    for kind in CLIENTS:
        settings: dict[str, Any] = {} if kind == "requests" else {"max_retries": 0}
        with make_session(kind, **settings) as session:
            with pytest.raises(requests.RequestException) as raised:
                get(session, fake_url(http_server))
            outcomes[kind] = raised.value
    assert len(calls) == len(CLIENTS)
    for kind, outcome in outcomes.items():
        assert type(outcome) is expected, (kind, outcome)
        cause = outcome.args[0]
        seen = getattr(cause, "reason", cause)
        if reason is not None:
            assert isinstance(seen, reason), (kind, seen)
    # The same words (but for object addresses, and the connect timeout a deadline cut).
    messages = {
        re.sub(r" at 0x[0-9a-f]+|(?<=timeout=)[\d.]+", "", str(o)) for o in outcomes.values()
    }
    assert len(messages) == 1, messages
    assert http_server.requests_handled == 0
    assert lookups == []


def test_a_replacement_made_before_keepwarm_was_imported_is_seen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """keepwarm recognises urllib3's own function by its code, not by what the module
    attribute was when keepwarm was imported: a recipe applied earlier is not mistaken
    for urllib3's function, not even a ``functools.wraps`` wrapper."""
    assert kw_connection._urllib3_create_connection() is URLLIB3_CREATE_CONNECTION
    assert kw_connection._URLLIB3_CREATE_CONNECTION is URLLIB3_CREATE_CONNECTION

    @functools.wraps(URLLIB3_CREATE_CONNECTION)
    def wrapper(*args: Any, **kwargs: Any) -> socket.socket:
        return URLLIB3_CREATE_CONNECTION(*args, **kwargs)

    for replacement in (wrapper, Recorder(), lambda *a, **k: None):
        monkeypatch.setattr(urllib3.util.connection, "create_connection", replacement)
        assert kw_connection._urllib3_create_connection() is None
