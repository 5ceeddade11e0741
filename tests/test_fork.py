"""After os.fork() the child opens its own connections; the parent keeps its own.

A pooled connection inherited by a forked child is the same socket (and, for HTTPS, the
same TLS stream with the same sequence numbers and keys) as the parent's: two processes
writing into it corrupt each other's traffic. keepwarm resets the pools in the child
(os.register_at_fork), so the server must see a new client port from the child while the
parent goes on using its original connection.
"""

from __future__ import annotations

import os
import pathlib
import threading
from collections.abc import Callable
from typing import Any

import pytest
import requests
import requests.adapters
import trustme

import keepwarm
import keepwarm._config
import keepwarm._registry
import keepwarm._upstream.tls
from forking import run_in_child
from servers import LocalServer, ServerRequest, ServerResponse

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork() does not exist here"),
    # Python 3.12+ warns that fork() in a process with threads (our servers) may
    # deadlock the child; the child here only uses keepwarm and exits with os._exit.
    pytest.mark.filterwarnings(
        r"ignore:This process \(pid=\d+\) is multi-threaded, use of fork\(\) may lead to "
        r"deadlocks in the child:DeprecationWarning"
    ),
]


def _echo(session: keepwarm.Session, url: str, **kwargs: Any) -> dict[str, Any]:
    with session.get(url + "/echo", **kwargs) as response:
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


def _check_fork(session: keepwarm.Session, server: LocalServer, **kwargs: Any) -> None:
    first = _echo(session, server.url, **kwargs)
    parent_port = first["client_port"]
    assert server.connections_accepted == 1
    assert server.client_ports == [parent_port]

    child = run_in_child(lambda: _echo(session, server.url, **kwargs))

    # The child opened a connection of its own instead of writing into the parent's.
    assert child["client_port"] != parent_port
    assert server.connections_accepted == 2
    assert server.client_ports == [parent_port, child["client_port"]]

    # The parent's pooled connection is intact and still used: same port, no new one.
    for _ in range(3):
        again = _echo(session, server.url, **kwargs)
        assert again["client_port"] == parent_port
        assert again["connection_index"] == first["connection_index"]
    assert server.connections_accepted == 2
    assert len(server.requests) == 5


def test_fork_http_child_opens_its_own_connection(http_server: LocalServer) -> None:
    with keepwarm.Session() as session:
        _check_fork(session, http_server)


def test_fork_https_child_opens_its_own_connection(
    https_server: LocalServer, ca_bundle: str
) -> None:
    with keepwarm.Session(verify=ca_bundle) as session:
        _check_fork(session, https_server)


def test_fork_https_per_request_verify(https_server: LocalServer, ca_bundle: str) -> None:
    with keepwarm.Session() as session:
        _check_fork(session, https_server, verify=ca_bundle)


def test_fork_shared_session_http(http_server: LocalServer) -> None:
    _check_fork(keepwarm.session("forked"), http_server)


def test_fork_shared_session_https(https_server: LocalServer, ca_bundle: str) -> None:
    _check_fork(keepwarm.session("forked-tls", verify=ca_bundle), https_server)


def test_fork_child_sees_the_same_registry_and_can_create_sessions(
    http_server: LocalServer,
) -> None:
    parent_session = keepwarm.session()
    parent = _echo(parent_session, http_server.url)

    def child_work() -> dict[str, Any]:
        inherited = keepwarm.session()
        # The registry survived the fork; its lock was replaced, so creating works too.
        created = keepwarm.session("made-in-child")
        try:
            return {
                "same_object": inherited is parent_session,
                "inherited_port": _echo(inherited, http_server.url)["client_port"],
                "created_port": _echo(created, http_server.url)["client_port"],
            }
        finally:
            created.close()

    child = run_in_child(child_work)
    assert child["same_object"] is True
    assert parent["client_port"] not in (child["inherited_port"], child["created_port"])
    assert child["inherited_port"] != child["created_port"]
    assert http_server.connections_accepted == 3
    assert _echo(parent_session, http_server.url)["client_port"] == parent["client_port"]
    assert http_server.connections_accepted == 3


def test_fork_twice_each_child_gets_a_new_connection(
    https_server: LocalServer, ca_bundle: str
) -> None:
    with keepwarm.Session(verify=ca_bundle) as session:
        parent_port = _echo(session, https_server.url)["client_port"]
        ports = [
            run_in_child(lambda: _echo(session, https_server.url)["client_port"]) for _ in range(2)
        ]
        assert len({parent_port, *ports}) == 3
        assert _echo(session, https_server.url)["client_port"] == parent_port
    assert https_server.connections_accepted == 3


def test_fork_installed_requests_get_in_the_child_opens_its_own_connection(
    http_server: LocalServer,
) -> None:
    keepwarm.install()
    parent = requests.get(http_server.url + "/echo")
    with parent:
        parent_port = parent.json()["client_port"]

    def child_work() -> int:
        with requests.get(http_server.url + "/echo") as response:
            port: int = response.json()["client_port"]
            return port

    assert run_in_child(child_work) != parent_port
    with requests.get(http_server.url + "/echo") as response:
        assert response.json()["client_port"] == parent_port
    assert http_server.connections_accepted == 2


def test_fork_mounted_session_child_opens_its_own_connection(http_server: LocalServer) -> None:
    """keepwarm.mount() on a plain requests.Session: its transport resets itself in the
    child (the contrast with the same session unmounted is the test below)."""
    with keepwarm.mount(requests.Session()) as session:
        _check_fork(session, http_server)  # type: ignore[arg-type]


def test_contrast_plain_requests_child_reuses_the_parents_socket(
    http_server: LocalServer,
) -> None:
    # What keepwarm prevents: a plain requests.Session hands the child the parent's
    # pooled socket (harmless here only because the two processes take turns on plain
    # HTTP; with TLS, or concurrently, the stream is corrupted).
    with requests.Session() as session:
        parent_port = _echo(session, http_server.url)["client_port"]
        child_port = run_in_child(lambda: _echo(session, http_server.url)["client_port"])
    assert child_port == parent_port
    assert http_server.connections_accepted == 1


def test_fork_resets_a_plain_http_adapter_mounted_on_a_keepwarm_session(
    http_server: LocalServer,
) -> None:
    with keepwarm.Session() as session:
        session.mount(http_server.url + "/", requests.adapters.HTTPAdapter())
        _check_fork(session, http_server)


def _proxy_handler(request: ServerRequest) -> ServerResponse:
    return ServerResponse.json({"target": request.path, "client_port": request.client_port})


def test_fork_child_opens_its_own_proxy_connection(
    make_server: Callable[..., LocalServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = make_server(_proxy_handler)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    target = "http://origin.invalid/echo"
    with keepwarm.Session() as session:
        with session.get(target) as response:
            first = response.json()
        assert first["target"] == target

        def child_work() -> int:
            with session.get(target) as response:
                port: int = response.json()["client_port"]
                return port

        child_port = run_in_child(child_work)
        assert child_port != first["client_port"]
        with session.get(target) as response:
            assert response.json()["client_port"] == first["client_port"]
    assert proxy.connections_accepted == 2


# -- locks held by another thread at the moment of fork ----------------------------------------
#
# fork() copies every lock in its current state, but only the forking thread survives: a
# lock another thread held at that moment stays held forever in the child. Each case
# below has a parent thread hold one of keepwarm's locks across the fork (as a thread that
# is creating a session, building an SSL context or setting a cookie would), then has the
# child do the operation that needs that lock. A lock keepwarm does not replace after fork
# makes the child hang until the test's deadline kills it.

LOCK_CHILD_TIMEOUT = 3.0


class _HeldByAnotherThread:
    """Hold *lock* in another thread for the duration of the ``with`` block (bounded)."""

    def __init__(self, lock: Any) -> None:
        self._lock = lock
        self._held = threading.Event()
        self._release = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self._lock:
            self._held.set()
            self._release.wait(timeout=LOCK_CHILD_TIMEOUT * 4)

    def __enter__(self) -> None:
        self._thread.start()
        assert self._held.wait(timeout=5)

    def __exit__(self, *exc_info: object) -> None:
        self._release.set()
        self._thread.join(timeout=5)
        assert not self._thread.is_alive()


def test_fork_while_another_thread_holds_the_registry_lock(http_server: LocalServer) -> None:
    with _HeldByAnotherThread(keepwarm._registry._lock):
        child = run_in_child(
            lambda: _echo(keepwarm.session("child-only"), http_server.url)["method"],
            timeout=LOCK_CHILD_TIMEOUT,
        )
    assert child == "GET"


def test_fork_while_another_thread_holds_the_cookie_jar_lock(http_server: LocalServer) -> None:
    with keepwarm.Session() as session:
        with pytest.warns(keepwarm.CookieScopeWarning, match="'before'"):  # domain-less
            session.cookies.set("before", "fork")

        def child_work() -> dict[str, str]:
            with session.get(http_server.url + "/cookies/set", params={"child": "1"}):
                pass
            return session.cookies.get_dict()

        with _HeldByAnotherThread(session.cookies._cookies_lock):
            jar = run_in_child(child_work, timeout=LOCK_CHILD_TIMEOUT)
    assert jar == {"before": "fork", "child": "1"}


def test_fork_while_another_thread_holds_the_mount_lock(http_server: LocalServer) -> None:
    with keepwarm.Session() as session:

        def child_work() -> str:
            session.mount(http_server.url + "/child/", requests.adapters.HTTPAdapter())
            return str(_echo(session, http_server.url)["method"])

        with _HeldByAnotherThread(session._mount_lock):
            assert run_in_child(child_work, timeout=LOCK_CHILD_TIMEOUT) == "GET"


def test_fork_while_another_thread_holds_the_environment_lock(
    http_server: LocalServer,
) -> None:
    with keepwarm.Session() as session, _HeldByAnotherThread(session._environment._lock):
        # A (host, port, no_proxy) the snapshot has not decided about yet, so the child
        # must record its proxy-bypass decision under the snapshot's lock.
        proxies = {"no_proxy": "example.invalid"}
        child = run_in_child(
            lambda: _echo(session, http_server.url, proxies=proxies)["method"],
            timeout=LOCK_CHILD_TIMEOUT,
        )
        assert child == "GET"


def test_fork_while_another_thread_holds_the_configuration_lock(
    http_server: LocalServer,
) -> None:
    # e.g. a thread in keepwarm.configure() or creating a Session at the moment of fork.
    def child_work() -> str:
        with keepwarm.Session() as session:
            return str(_echo(session, http_server.url)["method"])

    with _HeldByAnotherThread(keepwarm._config._configured_lock):
        assert run_in_child(child_work, timeout=LOCK_CHILD_TIMEOUT) == "GET"


def test_fork_while_another_thread_holds_the_tls_context_lock(
    https_server: LocalServer, ca: trustme.CA, tmp_path: pathlib.Path
) -> None:
    # e.g. a thread making the first request of a new TLS configuration (loading a CA
    # bundle takes tens of milliseconds, all of it under this lock) at the moment of fork.
    bundle = tmp_path / "child-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))

    def child_work() -> str:
        with keepwarm.Session(verify=str(bundle)) as session:
            return str(_echo(session, https_server.url)["method"])

    with _HeldByAnotherThread(keepwarm._upstream.tls._lock):
        assert run_in_child(child_work, timeout=LOCK_CHILD_TIMEOUT) == "GET"
