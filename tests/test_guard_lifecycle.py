"""The lifecycle guards (docs/guards/unclosed-session.md, docs/guards/session-churn.md):
a session collected without close(), and a session per call, on real loopback sockets,
next to plain requests, which says nothing about either."""

from __future__ import annotations

import copy
import gc
import os
import pathlib
import pickle
import subprocess
import sys
import textwrap
import threading
import time
import warnings
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
import requests

import keepwarm
from keepwarm import _guards, _lifecycle
from servers import LocalServer

LIFECYCLE = (keepwarm.UnclosedSessionWarning, keepwarm.SessionChurnWarning)


@pytest.fixture(autouse=True)
def _fresh_sites() -> Iterator[None]:
    _guards.forget_sites()
    yield
    _guards.forget_sites()


@pytest.fixture
def caught() -> Iterator[list[warnings.WarningMessage]]:
    """Every warning issued during the test (garbage collected first at the end)."""
    with warnings.catch_warnings(record=True) as found:
        warnings.simplefilter("always")
        yield found
        gc.collect()


def lifecycle(found: list[warnings.WarningMessage]) -> list[warnings.WarningMessage]:
    gc.collect()
    return [w for w in found if issubclass(w.category, LIFECYCLE)]


def here() -> int:
    """The line of the caller's next line."""
    return sys._getframe(1).f_lineno + 1


def make_and_drop(url: str, **knobs: Any) -> int:
    """Create a session, send one request, drop it unclosed; the creation line."""
    line = here()
    s = keepwarm.Session(**knobs)
    s.get(url).raise_for_status()
    del s
    gc.collect()
    return line


# -- UnclosedSessionWarning ------------------------------------------------------------


@pytest.mark.keepwarm_leaks("off")  # leaves sessions unclosed: the guard under test
def test_an_unclosed_session_warns_with_its_creation_line_and_plain_requests_says_nothing(
    http_server: LocalServer, caught: list[warnings.WarningMessage]
) -> None:
    plain = requests.Session()
    plain.get(http_server.url).raise_for_status()
    del plain
    gc.collect()
    # Plain requests: not a word (urllib3 closes the socket in a finalizer, silently;
    # no ResourceWarning either).
    assert lifecycle(caught) == []
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []

    line = make_and_drop(http_server.url)

    [warning] = lifecycle(caught)
    assert warning.category is keepwarm.UnclosedSessionWarning
    assert (warning.filename, warning.lineno) == (__file__, line)
    message = str(warning.message)
    assert f"created at {__file__}:{line}" in message
    assert "without close()" in message
    assert "with keepwarm.Session() as s:" in message and "s.close()" in message
    assert "keepwarm.session()" in message


@pytest.mark.keepwarm_leaks("off")  # leaves sessions unclosed: the guard under test
def test_the_finalizer_does_not_keep_the_session_alive(
    http_server: LocalServer, caught: list[warnings.WarningMessage]
) -> None:
    gc.disable()
    try:
        s = keepwarm.Session()
        s.get(http_server.url)
        ref = weakref.ref(s)
        del s  # freed by reference counting, at once: no cycle through the finalizer
        assert ref() is None
        assert [w.category for w in caught] == [keepwarm.UnclosedSessionWarning]
    finally:
        gc.enable()


def test_closed_sessions_do_not_warn(
    http_server: LocalServer, caught: list[warnings.WarningMessage]
) -> None:
    with keepwarm.Session() as s:
        s.get(http_server.url)
    other = keepwarm.Session()
    other.get(http_server.url)
    other.close()
    del s, other
    assert lifecycle(caught) == []


@pytest.mark.keepwarm_leaks("off")  # leaves sessions unclosed: the guard under test
def test_a_session_that_sent_nothing_holds_no_connection_and_does_not_warn(
    caught: list[warnings.WarningMessage],
) -> None:
    s = keepwarm.Session(timeout=5)
    assert s.timeout == keepwarm.Timeout(5)
    del s
    assert lifecycle(caught) == []


def test_shared_sessions_do_not_warn(
    http_server: LocalServer, caught: list[warnings.WarningMessage]
) -> None:
    for _ in range(15):
        keepwarm.session().get(http_server.url)
        keepwarm.session("other", timeout=5).get(http_server.url)
    keepwarm.session("closed").get(http_server.url)
    keepwarm.session("closed").close()  # closed, forgotten by the registry, collected
    assert lifecycle(caught) == []
    assert http_server.connections_accepted == 3


def test_installed_calls_neither_warn_nor_count_as_churn(
    http_server: LocalServer, caught: list[warnings.WarningMessage]
) -> None:
    keepwarm.install()
    for _ in range(3 * _lifecycle.CHURN_SESSIONS):
        requests.get(http_server.url).raise_for_status()
    assert lifecycle(caught) == []
    # The per-call sessions ride the shared pool: one connection.
    assert http_server.connections_accepted == 1


def test_sessions_held_until_exit_do_not_warn(http_server: LocalServer) -> None:
    """A session held for the process (a module global) is the fix: the operating system
    closes its sockets at exit, and neither it nor a shared one is reported then."""
    script = textwrap.dedent(
        """
        import sys, keepwarm
        held = keepwarm.Session()
        held.get(sys.argv[1]).raise_for_status()
        keepwarm.session().get(sys.argv[1]).raise_for_status()
        cycle = keepwarm.Session()  # in a reference cycle: collected at shutdown
        cycle.loop = cycle
        cycle.get(sys.argv[1]).raise_for_status()
        print("ok")
        """
    )
    src = str(pathlib.Path(keepwarm.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": src}
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script, http_server.url],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "ok", "")


@pytest.mark.keepwarm_leaks("off")  # leaves sessions unclosed: the guard under test
def test_strict_cannot_raise_from_the_collector_so_it_warns_every_time(
    http_server: LocalServer, caught: list[warnings.WarningMessage]
) -> None:
    lines = [make_and_drop(http_server.url, strict=True) for _ in range(2)]
    found = lifecycle(caught)
    # One creation line, two sessions: strict reports each (not once per site).
    assert len(set(lines)) == 1
    assert [w.category for w in found] == [keepwarm.UnclosedSessionWarning] * 2
    assert "the garbage collector cannot raise" in str(found[0].message)
    assert found[0].lineno == lines[0]


@pytest.mark.keepwarm_leaks("off")  # leaves sessions unclosed: the guard under test
def test_silence_around_creation_quiets_it(
    http_server: LocalServer, caught: list[warnings.WarningMessage]
) -> None:
    with keepwarm.silence(keepwarm.UnclosedSessionWarning):
        s = keepwarm.Session()
    s.get(http_server.url)  # used outside the block: the creation scope is what counts
    del s
    with keepwarm.silence():
        t = keepwarm.Session(strict=True)
    t.get(http_server.url)
    del t
    assert lifecycle(caught) == []


@pytest.mark.keepwarm_leaks("off")  # leaves sessions unclosed: the guard under test
def test_guards_false_quiets_both(
    http_server: LocalServer, caught: list[warnings.WarningMessage]
) -> None:
    for _ in range(2 * _lifecycle.CHURN_SESSIONS):
        keepwarm.Session(guards=False).get(http_server.url)
    keepwarm.configure(guards=False)
    for _ in range(2 * _lifecycle.CHURN_SESSIONS):
        keepwarm.Session().get(http_server.url)
    assert lifecycle(caught) == []


def test_unpickled_and_copied_sessions_are_tracked_from_where_they_were_made(
    http_server: LocalServer, caught: list[warnings.WarningMessage]
) -> None:
    with keepwarm.Session(timeout=5) as original:
        blob = pickle.dumps(original)
        unpickled_line = here()
        unpickled = pickle.loads(blob)
        copied_line = here()
        copied = copy.copy(original)
    for s in (unpickled, copied):
        assert s.timeout == keepwarm.Timeout(5)
        s.get(http_server.url)
    del s, unpickled, copied
    found = lifecycle(caught)
    assert sorted((w.lineno, w.category) for w in found) == [
        (unpickled_line, keepwarm.UnclosedSessionWarning),
        (copied_line, keepwarm.UnclosedSessionWarning),
    ]
    assert all("unpickled at" in str(w.message) for w in found)


@pytest.mark.keepwarm_leaks("off")  # leaves sessions unclosed: the guard under test
def test_a_subclass_is_reported_where_it_was_created_not_in_its_init(
    http_server: LocalServer, caught: list[warnings.WarningMessage]
) -> None:
    class Client(keepwarm.Session):
        def __init__(self, token: str) -> None:
            super().__init__(headers={"Authorization": f"Bearer {token}"})

    line = here()
    client = Client("x")
    client.get(http_server.url)
    del client
    [warning] = lifecycle(caught)
    assert warning.lineno == line


# -- SessionChurnWarning ---------------------------------------------------------------


def fetch_with_a_session_per_call(url: str) -> None:
    with keepwarm.Session() as s:  # the churn site
        s.get(url).raise_for_status()


CHURN_LINE = fetch_with_a_session_per_call.__code__.co_firstlineno + 1


def test_a_session_per_call_warns_once_with_site_count_and_window_like_plain_requests_churns(
    http_server: LocalServer, caught: list[warnings.WarningMessage]
) -> None:
    calls = 3 * _lifecycle.CHURN_SESSIONS
    for _ in range(calls):
        fetch_with_a_session_per_call(http_server.url)
    [warning] = lifecycle(caught)
    assert warning.category is keepwarm.SessionChurnWarning
    assert (warning.filename, warning.lineno) == (__file__, CHURN_LINE)
    message = str(warning.message)
    assert f"{_lifecycle.CHURN_SESSIONS} keepwarm.Sessions created at {__file__}:{CHURN_LINE}" in (
        message
    )
    assert "window is 10 s" in message
    assert "keepwarm.session()" in message and "keepwarm.install()" in message
    # A connection per call, which is what the warning is about ...
    assert http_server.connections_accepted == calls

    # ... and plain requests does the same, without a word.
    http_server.reset()
    for _ in range(calls):
        with requests.Session() as plain:
            plain.get(http_server.url).raise_for_status()
    assert http_server.connections_accepted == calls
    assert len(lifecycle(caught)) == 1


@pytest.mark.keepwarm_leaks("off")  # leaves sessions unclosed: the guard under test
def test_dropped_per_call_sessions_are_churn_too(
    http_server: LocalServer, caught: list[warnings.WarningMessage]
) -> None:
    for _ in range(_lifecycle.CHURN_SESSIONS):
        line = here()
        keepwarm.Session().get(http_server.url)
    found = lifecycle(caught)
    assert sorted(w.category.__name__ for w in found) == [
        "SessionChurnWarning",
        "UnclosedSessionWarning",
    ]
    assert {w.lineno for w in found} == {line}


def test_a_long_lived_session_does_not_warn(
    http_server: LocalServer, caught: list[warnings.WarningMessage]
) -> None:
    with keepwarm.Session() as s:
        for _ in range(3 * _lifecycle.CHURN_SESSIONS):
            s.get(http_server.url).raise_for_status()
    assert lifecycle(caught) == []
    assert http_server.connections_accepted == 1


def test_sessions_reused_for_more_than_two_requests_are_not_churn(
    http_server: LocalServer, caught: list[warnings.WarningMessage]
) -> None:
    for _ in range(2 * _lifecycle.CHURN_SESSIONS):
        with keepwarm.Session() as s:
            for _ in range(_lifecycle.CHURN_MAX_REQUESTS + 1):
                s.get(http_server.url)
    assert lifecycle(caught) == []


def test_sessions_spread_over_more_than_the_window_are_not_churn(
    http_server: LocalServer,
    caught: list[warnings.WarningMessage],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_lifecycle, "CHURN_WINDOW", 0.05)
    for _ in range(_lifecycle.CHURN_SESSIONS + 2):
        fetch_with_a_session_per_call(http_server.url)
        time.sleep(0.06)
    assert lifecycle(caught) == []


@pytest.mark.keepwarm_leaks("off")  # leaves sessions unclosed: the guard under test
def test_strict_churn_raises_when_the_session_is_closed(http_server: LocalServer) -> None:
    with pytest.raises(keepwarm.SessionChurnWarning, match=r"keepwarm\.session\(\)"):
        for _ in range(_lifecycle.CHURN_SESSIONS):
            with keepwarm.Session(strict=True) as s:
                s.get(http_server.url)
    assert s.closed


def test_silencing_churn_at_creation_and_forget_sites(
    http_server: LocalServer, caught: list[warnings.WarningMessage]
) -> None:
    for _ in range(2 * _lifecycle.CHURN_SESSIONS):
        with keepwarm.silence(keepwarm.SessionChurnWarning):
            s = keepwarm.Session()
        with s:
            s.get(http_server.url)
    assert lifecycle(caught) == []
    # forget_sites() counts from zero: nine, forget, nine more stays quiet.
    for _ in range(2):
        for _ in range(_lifecycle.CHURN_SESSIONS - 1):
            fetch_with_a_session_per_call(http_server.url)
        _guards.forget_sites()
    assert lifecycle(caught) == []


def test_per_call_sessions_from_many_threads_warn_once(
    http_server: LocalServer, caught: list[warnings.WarningMessage]
) -> None:
    def worker() -> None:
        for _ in range(_lifecycle.CHURN_SESSIONS):
            fetch_with_a_session_per_call(http_server.url)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    found = lifecycle(caught)
    assert [(w.category, w.lineno) for w in found] == [(keepwarm.SessionChurnWarning, CHURN_LINE)]
    assert http_server.connections_accepted == 4 * _lifecycle.CHURN_SESSIONS
