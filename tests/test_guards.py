"""How every guard speaks (keepwarm._guards): once per call site, strict, silence."""

from __future__ import annotations

import logging
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import requests.adapters
import requests.structures

import keepwarm
from keepwarm import _guards
from servers import LocalServer, ServerRequest, ServerResponse


@pytest.fixture(autouse=True)
def _fresh_sites() -> Iterator[None]:
    _guards.forget_sites()
    yield
    _guards.forget_sites()


def trip(strict: bool = False) -> None:
    """Stands for a guard deep inside keepwarm: the call site is the caller's line."""
    site = _guards.call_site(sys._getframe(1))  # as if this function were keepwarm's
    _guards.warn(keepwarm.NoTimeoutWarning, "no timeout: pass timeout=", strict=strict, site=site)


def test_warns_once_per_call_site_at_the_callers_line() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            trip()  # one site, three trips
        trip()  # another site
    assert [w.category for w in caught] == [keepwarm.NoTimeoutWarning] * 2
    assert {w.filename for w in caught} == {__file__}
    assert caught[0].lineno != caught[1].lineno
    assert str(caught[0].message) == "no timeout: pass timeout="


def test_strict_raises_every_time() -> None:
    for _ in range(2):
        with pytest.raises(keepwarm.NoTimeoutWarning, match="pass timeout="):
            trip(strict=True)


def test_silence_is_scoped_to_the_block_and_the_thread() -> None:
    seen: list[type[Warning]] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with keepwarm.silence(keepwarm.NoTimeoutWarning):
            trip()
            trip(strict=True)  # strict is silenced too
            other = threading.Thread(target=trip)
            other.start()
            other.join(5)
        with keepwarm.silence():  # every guard
            trip()
        with keepwarm.silence(keepwarm.HeaderOverrideWarning):  # another guard only
            trip()
        seen = [w.category for w in caught]
    # The thread and the last block warned; the silenced code did not.
    assert seen == [keepwarm.NoTimeoutWarning, keepwarm.NoTimeoutWarning]


def test_silence_takes_only_guard_classes() -> None:
    with pytest.raises(TypeError, match="warning classes"), keepwarm.silence(UserWarning):  # type: ignore[arg-type]
        pass


def test_warning_filters_apply_as_to_any_warning() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=keepwarm.NoTimeoutWarning)
        trip()
    assert caught == []
    with warnings.catch_warnings():
        warnings.filterwarnings("error", category=keepwarm.KeepwarmWarning)
        with pytest.raises(keepwarm.NoTimeoutWarning):
            trip()


def test_every_guard_class_is_a_keepwarm_warning_exported() -> None:
    guards = set(_guards._ALL) - {keepwarm.KeepwarmWarning}
    assert len(guards) == 7
    for cls in guards:
        assert getattr(keepwarm, cls.__name__) is cls
        assert issubclass(cls, keepwarm.KeepwarmWarning) and cls.__doc__


# -- HeaderOverrideWarning ----------------------------------------------------------


def test_header_override_warns_where_requests_silently_drops_the_session_header(
    http_server: LocalServer,
) -> None:
    url = http_server.url + "/headers"
    session_auth = {"Authorization": "Bearer SESSION-SECRET"}
    override = {"authorization": "Bearer REQUEST-SECRET"}
    with requests.Session() as plain:  # the pitfall: the session's value is gone, silently
        plain.headers.update(session_auth)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            sent = plain.get(url, headers=override).json()
            assert sent["authorization"].endswith("REQUEST-SECRET")
    with keepwarm.Session(headers=session_auth) as s:
        with pytest.warns(keepwarm.HeaderOverrideWarning) as caught:
            for _ in range(3):  # once per call site
                sent = s.get(url, headers=override).json()
        assert sent["authorization"].endswith("REQUEST-SECRET")  # what requests sends
        assert len(caught) == 1
        message = str(caught[0].message)
        assert "'authorization' header" in message and "session.headers" in message
        assert "SECRET" not in message
        assert caught[0].filename == __file__
        with pytest.warns(keepwarm.HeaderOverrideWarning, match="deletes"):
            s.get(url, headers={"Authorization": None})


def test_header_guard_is_quiet_for_added_same_and_default_headers(
    http_server: LocalServer,
) -> None:
    url = http_server.url + "/headers"
    with keepwarm.Session(headers={"X-Team": "a"}) as s, warnings.catch_warnings():
        warnings.simplefilter("error")
        s.get(url, headers={"X-Request-Id": "1"})  # adds a header the session lacks
        s.get(url, headers={"x-team": "a"})  # the same value
        s.get(url, headers={"User-Agent": "mine/1.0", "Accept": "application/json"})  # defaults
    with (
        keepwarm.Session(headers={"User-Agent": "app/2"}) as s,
        pytest.warns(keepwarm.HeaderOverrideWarning, match="'User-Agent'"),
    ):
        s.get(url, headers={"User-Agent": "other/1"})


def test_header_guard_strict_silenced_and_off(http_server: LocalServer) -> None:
    url = http_server.url + "/headers"
    with keepwarm.Session(headers={"X-Team": "a"}, strict=True) as s:
        with pytest.raises(keepwarm.HeaderOverrideWarning):
            s.get(url, headers={"X-Team": "b"})
        assert http_server.requests_handled == 0  # raised before anything was sent
        with keepwarm.silence(keepwarm.HeaderOverrideWarning):
            assert s.get(url, headers={"X-Team": "b"}).json()["X-Team"] == "b"
    with keepwarm.Session(headers={"X-Team": "a"}, guards=False) as s, warnings.catch_warnings():
        warnings.simplefilter("error")
        s.get(url, headers={"X-Team": "b"})


# -- NoTimeoutWarning -------------------------------------------------------------


def test_no_timeout_warns_for_every_way_of_disabling_timeouts(http_server: LocalServer) -> None:
    url = http_server.url + "/?token=SECRET"
    with requests.Session() as plain, warnings.catch_warnings():
        warnings.simplefilter("error")
        plain.get(url)  # plain requests: no timeout at all, and not a word
    with keepwarm.Session() as s:
        with pytest.warns(keepwarm.NoTimeoutWarning) as caught:
            s.get(url, timeout=keepwarm.NO_TIMEOUT)
        message = str(caught[0].message)
        assert "GET http://127.0.0.1" in message and "SECRET" not in message
        assert "timeout=" in message
    with (
        keepwarm.Session(timeout=keepwarm.NO_TIMEOUT) as s,
        pytest.warns(keepwarm.NoTimeoutWarning),
    ):
        s.get(url)
    with (
        keepwarm.mount(requests.Session(), timeout=keepwarm.NO_TIMEOUT) as mounted,
        pytest.warns(keepwarm.NoTimeoutWarning),
    ):
        mounted.get(url)
    with keepwarm.Session() as s, warnings.catch_warnings():
        warnings.simplefilter("error")
        s.get(url, timeout=keepwarm.Timeout(connect=3, read=None))  # a connect bound stays


def test_no_timeout_strict_raises_before_sending(http_server: LocalServer) -> None:
    with keepwarm.Session(strict=True) as s:
        with pytest.raises(keepwarm.NoTimeoutWarning):
            s.get(http_server.url, timeout=keepwarm.NO_TIMEOUT)
        assert http_server.requests_handled == 0


# -- PoolSaturationWarning --------------------------------------------------------


def slow(request: ServerRequest) -> ServerResponse:
    return ServerResponse(200, [], b"ok", delay=0.2)


def _concurrently(session: requests.Session, url: str, threads: int) -> list[int]:
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda _: session.get(url, timeout=10).status_code, range(threads)))


def test_pool_saturation_warns_where_requests_discards_quietly(
    make_server: Callable[..., LocalServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server(slow)
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    with requests.Session() as plain:
        plain.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=2))
        assert _concurrently(plain, server.url, 6) == [200] * 6
    # requests: a log record of urllib3's, if logging is configured at all.
    assert any("pool is full" in r.getMessage() for r in caplog.records)
    with keepwarm.Session(pool_maxsize=2) as s, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _concurrently(s, server.url, 6) == [200] * 6
        discarded = s.stats().discarded
    assert discarded > 0
    saturation = [w for w in caught if w.category is keepwarm.PoolSaturationWarning]
    assert len(saturation) == 1  # once per call site
    message = str(saturation[0].message)
    assert f"in flight to {server.url}" in message and "pool_maxsize=2" in message
    assert "pool_block=True" in message


def test_pool_saturation_quiet_when_the_pool_waits_grows_or_guards_are_off(
    make_server: Callable[..., LocalServer],
) -> None:
    server = make_server(slow)
    for session in (
        keepwarm.Session(pool_maxsize=2, pool_block=True),
        keepwarm.Session(pool_maxsize="auto"),
        keepwarm.Session(pool_maxsize=2, guards=False),
    ):
        with session, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert _concurrently(session, server.url, 6) == [200] * 6
        assert [w.category for w in caught] == [], session


# -- ConcurrentMutationWarning ----------------------------------------------------


def test_session_state_changed_under_another_threads_request(
    make_server: Callable[..., LocalServer],
) -> None:
    server = make_server(slow)
    with keepwarm.Session() as s:
        # Alone: changing state is quiet (no other thread is sending).
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            s.headers["X-Team"] = "a"
            s.auth = ("user", "pass")
        started = threading.Event()

        def hold() -> None:
            started.set()
            s.get(server.url, timeout=10)

        worker = threading.Thread(target=hold)
        worker.start()
        try:
            assert started.wait(5)
            assert server.wait_for_connections(1)
            with pytest.warns(keepwarm.ConcurrentMutationWarning, match="1 other thread"):
                s.headers["X-Team"] = "b"
            with pytest.warns(keepwarm.ConcurrentMutationWarning, match="session.auth"):
                s.auth = ("user", "other")
            with pytest.warns(keepwarm.ConcurrentMutationWarning, match="session.headers"):
                s.headers = requests.structures.CaseInsensitiveDict({"X": "y"})
        finally:
            worker.join(10)
        # Its request is done: quiet again.
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            s.headers["X-Team"] = "c"
