"""keepwarm.install(): plain requests.get() and friends ride the shared session's pools.

Each installed call keeps requests.get()'s stateless semantics (no cookies, auth or
headers carried from one call to the next, nothing stored in the shared session), but
reuses pooled connections and gets the shared session's default timeout.
uninstall() puts requests' own functions back, identical objects.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import requests.api

import keepwarm
import keepwarm._config
from servers import LocalServer, RawServer, ServerResponse, silent

ORIGINAL_API_REQUEST = requests.api.request
ORIGINAL_TOP_REQUEST = requests.request


@pytest.fixture(autouse=True)
def _reset_keepwarm() -> Iterator[None]:
    yield
    keepwarm.uninstall()
    keepwarm.close_all()
    keepwarm._config.reset_configuration()
    assert requests.api.request is ORIGINAL_API_REQUEST
    assert requests.request is ORIGINAL_TOP_REQUEST


def _json(response: requests.Response) -> Any:
    with response:
        response.raise_for_status()
        return response.json()


def test_plain_requests_get_opens_a_connection_per_call(http_server: LocalServer) -> None:
    assert not keepwarm.installed()
    for _ in range(50):
        with requests.get(http_server.url + "/") as response:
            assert response.text == "ok"
    assert http_server.connections_accepted == 50


def test_installed_requests_get_reuses_one_connection(http_server: LocalServer) -> None:
    keepwarm.install()
    assert keepwarm.installed()
    ports = set()
    for _ in range(50):
        ports.add(_json(requests.get(http_server.url + "/echo"))["client_port"])
    assert http_server.connections_accepted == 1
    assert len(ports) == 1
    assert len(http_server.requests) == 50


def test_installed_covers_requests_request_and_post(http_server: LocalServer) -> None:
    keepwarm.install()
    url = http_server.url + "/echo"
    assert _json(requests.request("GET", url))["method"] == "GET"
    posted = _json(requests.post(url, data=b"payload"))
    assert posted["method"] == "POST"
    assert posted["body"] == "payload"
    assert _json(requests.put(url, json={"a": 1}))["body"] == '{"a": 1}'
    assert _json(requests.api.request("DELETE", url))["method"] == "DELETE"
    with requests.head(url) as response:
        assert response.status_code == 200
    assert http_server.connections_accepted == 1
    assert len(http_server.requests) == 5


def test_installed_calls_share_the_named_sessions_pools(http_server: LocalServer) -> None:
    keepwarm.install("api")
    first = _json(requests.get(http_server.url + "/echo"))
    with keepwarm.session("api").get(http_server.url + "/echo") as response:
        assert response.json()["connection_index"] == first["connection_index"]
    assert http_server.connections_accepted == 1


def test_installed_calls_from_16_threads_share_the_pool(http_server: LocalServer) -> None:
    keepwarm.install()
    n_threads, per_thread = 16, 10
    barrier = threading.Barrier(n_threads, timeout=10)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                with requests.get(http_server.url + "/cookies/set", params={"n": str(i)}) as r:
                    assert r.status_code == 200
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert http_server.requests_handled == n_threads * per_thread
    # At most one connection per concurrent caller, kept and reused.
    assert http_server.connections_accepted <= n_threads
    assert len(keepwarm.session().cookies) == 0


def test_streamed_installed_response_returns_its_connection_on_close(
    http_server: LocalServer,
) -> None:
    keepwarm.install()
    response = requests.get(http_server.url + "/bytes", params={"n": "100000"}, stream=True)
    with response:
        assert len(response.content) == 100_000
    assert _json(requests.get(http_server.url + "/echo"))["connection_index"] == 0
    assert http_server.connections_accepted == 1


# -- stateless, like requests.get --------------------------------------------------------------


def test_cookies_are_not_carried_to_the_next_call(http_server: LocalServer) -> None:
    keepwarm.install()
    with requests.get(http_server.url + "/cookies/set", params={"a": "1"}) as response:
        assert response.cookies.get("a") == "1"
    assert _json(requests.get(http_server.url + "/cookies")) == {}
    # Nothing landed in the shared session either.
    assert len(keepwarm.session().cookies) == 0
    assert keepwarm.session().cookies.get_dict() == {}
    # Cookies passed to a call are sent on that call only.
    assert _json(requests.get(http_server.url + "/cookies", cookies={"b": "2"})) == {"b": "2"}
    assert _json(requests.get(http_server.url + "/cookies")) == {}
    assert http_server.connections_accepted == 1


def test_auth_and_headers_are_not_carried_to_the_next_call(http_server: LocalServer) -> None:
    keepwarm.install()
    url = http_server.url + "/headers"
    with_auth = _json(requests.get(url, auth=("user", "pw"), headers={"X-Call": "one"}))
    assert with_auth["Authorization"].startswith("Basic ")
    assert with_auth["X-Call"] == "one"
    plain = _json(requests.get(url))
    assert "Authorization" not in plain
    assert "X-Call" not in plain
    assert keepwarm.session().auth is None
    assert "X-Call" not in keepwarm.session().headers


def test_the_shared_sessions_own_state_is_not_applied_to_installed_calls(
    http_server: LocalServer,
) -> None:
    shared = keepwarm.session()
    shared.headers["X-Shared"] = "yes"
    # A domain-less cookie, the kind that would reach every host: the guard says so.
    with pytest.warns(keepwarm.CookieScopeWarning, match="'shared'"):
        shared.cookies.set("shared", "1")
    keepwarm.install()
    assert "X-Shared" not in _json(requests.get(http_server.url + "/headers"))
    assert _json(requests.get(http_server.url + "/cookies")) == {}


def test_installed_calls_use_the_shared_sessions_environment_snapshot(
    http_server: LocalServer,
    make_server: Callable[..., LocalServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Unlike plain requests.get(), which reads proxy variables on every call, installed
    # calls see the environment as the shared session captured it, until it reloads.
    proxy = make_server(lambda request: ServerResponse.json({"via": "proxy"}))
    keepwarm.install()
    assert _json(requests.get(http_server.url + "/echo"))["method"] == "GET"
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    assert _json(requests.get(http_server.url + "/echo"))["method"] == "GET"
    keepwarm.session().reload_environment()
    assert _json(requests.get(http_server.url + "/echo")) == {"via": "proxy"}
    assert len(http_server.requests) == 2


# -- default timeout -------------------------------------------------------------------------


def test_installed_calls_get_the_configured_default_timeout(
    raw_server: Callable[..., RawServer],
) -> None:
    server = raw_server(silent)
    keepwarm.configure(timeout=0.3)
    keepwarm.install()
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(server.url + "/")
    # The configured 0.3 s, not keepwarm's 7 s default read timeout (nor forever).
    assert time.monotonic() - started < 3.0
    assert server.connections_accepted == 1


# -- uninstall, idempotence, conflicts --------------------------------------------------------


def test_uninstall_restores_the_original_functions_and_behaviour(
    http_server: LocalServer,
) -> None:
    keepwarm.install()
    assert requests.api.request is not ORIGINAL_API_REQUEST
    assert requests.request is not ORIGINAL_TOP_REQUEST
    for _ in range(3):
        with requests.get(http_server.url + "/") as response:
            assert response.status_code == 200
    assert http_server.connections_accepted == 1

    keepwarm.uninstall()
    assert not keepwarm.installed()
    assert requests.api.request is ORIGINAL_API_REQUEST
    assert requests.request is ORIGINAL_TOP_REQUEST
    for _ in range(5):
        with requests.get(http_server.url + "/") as response:
            assert response.status_code == 200
    # Plain behaviour again: a new connection per call.
    assert http_server.connections_accepted == 1 + 5

    keepwarm.uninstall()  # a second uninstall is a no-op
    assert requests.api.request is ORIGINAL_API_REQUEST


def test_install_twice_is_idempotent() -> None:
    keepwarm.install()
    replacement = requests.api.request
    assert requests.request is replacement
    keepwarm.install()
    keepwarm.install("default")
    assert requests.api.request is replacement
    assert requests.request is replacement
    # One uninstall undoes it: the originals, not the first replacement, come back.
    keepwarm.uninstall()
    assert requests.api.request is ORIGINAL_API_REQUEST
    assert requests.request is ORIGINAL_TOP_REQUEST


def test_install_with_another_name_while_installed_conflicts() -> None:
    keepwarm.install("first")
    replacement = requests.api.request
    with pytest.raises(keepwarm.SessionConflictError, match="uninstall") as info:
        keepwarm.install("second")
    assert isinstance(info.value, ValueError)
    assert "'first'" in str(info.value)
    assert "'second'" in str(info.value)
    assert requests.api.request is replacement
    keepwarm.uninstall()
    keepwarm.install("second")
    assert keepwarm.installed()


@pytest.mark.parametrize("bad", ["", None])
def test_install_with_a_bad_name_raises_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match="name"):
        keepwarm.install(bad)  # type: ignore[arg-type]
    assert not keepwarm.installed()


def test_a_closed_shared_session_does_not_break_installed_calls(
    http_server: LocalServer,
) -> None:
    keepwarm.install()
    assert _json(requests.get(http_server.url + "/echo"))["method"] == "GET"
    closed = keepwarm.session()
    closed.close()
    # The next call builds a fresh shared session instead of raising SessionClosedError.
    assert _json(requests.get(http_server.url + "/echo"))["method"] == "GET"
    fresh = keepwarm.session()
    assert fresh is not closed
    assert not fresh.closed
    assert http_server.connections_accepted == 2
    keepwarm.close_all()
    assert _json(requests.get(http_server.url + "/echo"))["method"] == "GET"
    assert http_server.connections_accepted == 3
