"""keepwarm.install(sessions=True): every requests.Session() built afterwards, by anyone,
rides the shared session's transport and keeps its own state.

Each behaviour that differs from plain requests is measured against plain requests on the
same local server in the same test: connections opened, cookies and headers sent, what a
timeout or a failing server does.
"""

from __future__ import annotations

import pickle
import sys
import threading
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import requests.api
import requests.sessions
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

import keepwarm
import keepwarm._install
from forking import run_in_child
from servers import Flaky, LocalServer

ORIGINAL_API_REQUEST = requests.api.request
ORIGINAL_TOP_REQUEST = requests.request


@pytest.fixture(autouse=True)
def _restored() -> Iterator[None]:
    global ORIGINAL_INIT
    # What is there when the test starts (keepwarm's pytest plugin wraps __init__ too,
    # for its leak tracking, while tests run).
    ORIGINAL_INIT = requests.Session.__dict__["__init__"]
    yield
    keepwarm.uninstall()
    assert requests.Session.__dict__["__init__"] is ORIGINAL_INIT
    assert requests.api.request is ORIGINAL_API_REQUEST
    assert requests.request is ORIGINAL_TOP_REQUEST


ORIGINAL_INIT: Any = None


def _json(response: requests.Response) -> Any:
    with response:
        response.raise_for_status()
        return response.json()


class Client:
    """A library's client class holding its own session, as SDKs do."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def headers(self) -> dict[str, str]:
        result: dict[str, str] = _json(self.session.get(self.base + "/headers"))
        return result


def _per_call_sessions(url: str, n: int) -> list[int]:
    ports = []
    for _ in range(n):
        with requests.Session() as s:
            ports.append(_json(s.get(url + "/echo"))["client_port"])
    return ports


def test_per_call_sessions_share_one_connection_where_plain_requests_opens_one_each(
    http_server: LocalServer,
) -> None:
    _per_call_sessions(http_server.url, 10)
    assert http_server.connections_accepted == 10  # plain requests: a connection a session

    keepwarm.install(sessions=True)
    ports = _per_call_sessions(http_server.url, 10)
    assert http_server.connections_accepted == 11
    assert len(set(ports)) == 1
    assert keepwarm.stats().requests == 10


def test_https_sessions_share_connections_and_tls_handshakes(
    https_server: LocalServer, ca_bundle: str
) -> None:
    def run() -> None:
        for _ in range(5):
            with requests.Session() as s:
                s.verify = ca_bundle
                assert s.get(https_server.url + "/").text == "ok"
            assert requests.get(https_server.url + "/", verify=ca_bundle).text == "ok"

    run()
    assert https_server.connections_accepted == 10
    keepwarm.install(sessions=True)
    run()
    assert https_server.connections_accepted == 11
    stats = keepwarm.stats()
    assert (stats.requests, stats.tls_handshakes) == (10, 1)


def test_each_session_keeps_its_own_cookies_headers_and_auth(http_server: LocalServer) -> None:
    def run() -> tuple[Any, ...]:
        first, second = Client(http_server.url, "one"), Client(http_server.url, "two")
        with first.session.get(http_server.url + "/cookies/set?sid=first") as response:
            assert response.ok
        first.session.auth = ("user", "secret")
        seen_first = first.headers()
        seen_second = second.headers()
        seen_get = _json(requests.get(http_server.url + "/headers"))
        with requests.Session() as third:
            seen_third = _json(third.get(http_server.url + "/headers"))
        first.session.close()
        second.session.close()
        return seen_first, seen_second, seen_get, seen_third

    plain = run()
    keepwarm.install(sessions=True)
    installed = run()
    assert installed == plain
    seen_first, seen_second, seen_get, seen_third = installed
    assert seen_first["Cookie"] == "sid=first"
    assert seen_first["Authorization"].startswith("Basic ")
    assert seen_second["Authorization"] == "Bearer two"
    assert "Cookie" not in seen_second
    assert "Cookie" not in seen_get and "Authorization" not in seen_get
    assert "Cookie" not in seen_third and "Authorization" not in seen_third
    assert http_server.connections_accepted == 4 + 1  # plain: 4; installed: 1


def test_a_session_built_before_install_is_untouched(http_server: LocalServer) -> None:
    before = requests.Session()
    keepwarm.install(sessions=True)
    after = requests.Session()
    assert type(before.adapters["https://"]) is HTTPAdapter
    assert isinstance(after.adapters["https://"], keepwarm._install.SharedTransport)
    _json(before.get(http_server.url + "/echo"))
    _json(after.get(http_server.url + "/echo"))
    assert http_server.connections_accepted == 2
    assert keepwarm.stats().requests == 1
    before.close()
    after.close()


def test_an_adapter_the_code_mounts_itself_stays_its_own(http_server: LocalServer) -> None:
    keepwarm.install(sessions=True)
    mine = HTTPAdapter(max_retries=Retry(total=2))
    with requests.Session() as s:
        s.mount("http://", mine)
        assert s.get_adapter(http_server.url) is mine
        _json(s.get(http_server.url + "/echo"))
    assert keepwarm.stats().requests == 0
    with requests.Session() as s:
        s.mount(http_server.url + "/special", mine)
        _json(s.get(http_server.url + "/echo"))  # the prefix's adapter is not this one
    assert keepwarm.stats().requests == 1


def test_changing_the_shared_adapter_detaches_that_session_only(
    make_server: Callable[..., LocalServer],
) -> None:
    flaky = make_server(handler=Flaky(times=2, status=503))
    keepwarm.install(sessions=True, requests_defaults=True)
    with requests.Session() as s, requests.Session() as other:
        adapter = s.adapters["http://"]
        assert adapter.max_retries.total == 0  # read: the shared transport's policy
        adapter.max_retries = Retry(total=3, status_forcelist=[503], backoff_factor=0)
        # The change is honoured, as requests would: the session's own adapter retries.
        assert s.get(flaky.url + "/").status_code == 200
        assert "detached" in repr(adapter)
        assert isinstance(other.adapters["http://"], keepwarm._install.SharedTransport)
        assert "detached" not in repr(other.adapters["http://"])
        assert other.adapters["http://"].max_retries.total == 0
    assert keepwarm.stats().requests == 0


def test_closing_a_session_leaves_the_shared_pools_open(http_server: LocalServer) -> None:
    keepwarm.install(sessions=True)
    keep = requests.Session()
    _json(keep.get(http_server.url + "/echo"))
    for _ in range(3):
        with requests.Session() as s:
            _json(s.get(http_server.url + "/echo"))
    _json(keep.get(http_server.url + "/echo"))
    keep.close()
    assert http_server.connections_accepted == 1


def test_subclasses_are_covered_and_keepwarm_sessions_keep_their_own(
    http_server: LocalServer,
) -> None:
    class Sub(requests.Session):
        def __init__(self) -> None:
            super().__init__()
            self.headers["X-Sub"] = "yes"

    keepwarm.install(sessions=True)
    with Sub() as s:
        assert _json(s.get(http_server.url + "/headers"))["X-Sub"] == "yes"
    with keepwarm.Session() as own:
        assert not isinstance(own.adapters["https://"], keepwarm._install.SharedTransport)
        _json(own.get(http_server.url + "/echo"))
    assert keepwarm.stats().requests == 1
    assert http_server.connections_accepted == 2


def test_a_load_tests_sessions_keep_their_own_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # keepwarm looks for locust's HttpSession only when locust.clients is imported.
    clients = types.ModuleType("locust.clients")

    class HttpSession(requests.Session):
        pass

    clients.HttpSession = HttpSession  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "locust.clients", clients)
    keepwarm.install(sessions=True)
    with HttpSession() as user:
        assert type(user.adapters["https://"]) is HTTPAdapter


def test_default_timeout_applies_and_requests_defaults_keeps_none(
    http_server: LocalServer,
) -> None:
    url = http_server.url + "/sleep?s=0.5"
    keepwarm.configure(timeout=(2, 0.1))
    with requests.Session() as s:  # plain requests: no timeout, waits for the answer
        assert s.get(url).text == "ok"
    keepwarm.install(sessions=True)
    with requests.Session() as s, pytest.raises(requests.exceptions.ReadTimeout):
        s.get(url)
    keepwarm.uninstall()
    keepwarm.close_all()
    keepwarm.install(sessions=True, requests_defaults=True)
    with requests.Session() as s:
        assert s.get(url).text == "ok"
    assert requests.get(url).text == "ok"


def test_retries_follow_keepwarms_policy_or_requests_defaults(
    make_server: Callable[..., LocalServer],
) -> None:
    def status() -> tuple[int, int]:
        flaky = Flaky(times=1, status=503)
        server = make_server(handler=flaky)
        with requests.Session() as s:
            return s.get(server.url + "/").status_code, flaky.count("/")

    assert status() == (503, 1)  # requests: no retries
    keepwarm.install(sessions=True)
    assert status() == (200, 2)  # keepwarm's policy retries an idempotent 503
    keepwarm.uninstall()
    keepwarm.close_all()
    keepwarm.install(sessions=True, requests_defaults=True)
    assert status() == (503, 1)


def test_requests_defaults_conflicting_with_an_existing_shared_session_says_so() -> None:
    keepwarm.session(timeout=5)
    with pytest.raises(keepwarm.SessionConflictError, match="timeout"):
        keepwarm.install(sessions=True, requests_defaults=True)
    assert not keepwarm.installed()


def test_installing_again_adds_and_never_takes_away(http_server: LocalServer) -> None:
    keepwarm.install()
    assert requests.Session.__dict__["__init__"] is ORIGINAL_INIT
    keepwarm.install(sessions=True)
    wrapped = requests.Session.__dict__["__init__"]
    assert wrapped is not ORIGINAL_INIT
    keepwarm.install()
    assert requests.Session.__dict__["__init__"] is wrapped
    with pytest.raises(keepwarm.SessionConflictError, match="uninstall"):
        keepwarm.install("other", sessions=True)
    with pytest.raises(keepwarm.SessionConflictError, match="requests_defaults"):
        keepwarm.install(sessions=True, requests_defaults=True)
    with pytest.raises(TypeError, match="sessions=1 is not valid"):
        keepwarm.install(sessions=1)  # type: ignore[arg-type]


def test_uninstall_restores_requests_objects_and_new_sessions_are_plain(
    http_server: LocalServer,
) -> None:
    keepwarm.install(sessions=True)
    covered = requests.Session()
    keepwarm.uninstall()
    assert requests.Session.__init__ is ORIGINAL_INIT
    assert requests.sessions.Session.__init__ is ORIGINAL_INIT
    assert requests.api.request is ORIGINAL_API_REQUEST
    assert requests.request is ORIGINAL_TOP_REQUEST
    fresh = requests.Session()
    assert type(fresh.adapters["https://"]) is HTTPAdapter
    # A session built while installed goes on working, on the shared transport.
    _json(covered.get(http_server.url + "/echo"))
    _json(fresh.get(http_server.url + "/echo"))
    assert keepwarm.stats().requests == 1
    covered.close()
    fresh.close()


def test_uninstall_leaves_a_wrapper_another_tool_added_after_install(
    http_server: LocalServer,
) -> None:
    keepwarm.install(sessions=True)
    ours = requests.Session.__dict__["__init__"]
    built: list[requests.Session] = []

    def tools_init(self: requests.Session) -> None:
        ours(self)
        built.append(self)

    requests.Session.__init__ = tools_init  # type: ignore[method-assign]
    try:
        keepwarm.uninstall()
        assert requests.Session.__dict__["__init__"] is tools_init
        with requests.Session() as s:  # ours passes through: requests' own adapters
            assert type(s.adapters["http://"]) is HTTPAdapter
        assert len(built) == 1
    finally:
        requests.Session.__init__ = ORIGINAL_INIT  # type: ignore[method-assign]


def test_a_covered_session_pickles_and_works_after(http_server: LocalServer) -> None:
    keepwarm.install(sessions=True)
    with requests.Session() as s:
        s.headers["X-Kept"] = "1"
        copy = pickle.loads(pickle.dumps(s))
    with copy:
        assert isinstance(copy.adapters["http://"], keepwarm._install.SharedTransport)
        assert _json(copy.get(http_server.url + "/headers"))["X-Kept"] == "1"
    assert keepwarm.stats(copy).requests == 1


def test_many_threads_building_sessions_share_the_pool(http_server: LocalServer) -> None:
    keepwarm.install(sessions=True)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            _per_call_sessions(http_server.url, 10)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert not any(t.is_alive() for t in threads)
    assert keepwarm.stats().requests == 80
    assert http_server.connections_accepted <= 8


def test_a_forked_child_opens_its_own_connection(http_server: LocalServer) -> None:
    keepwarm.install(sessions=True)
    s = requests.Session()
    parent_port = _json(s.get(http_server.url + "/echo"))["client_port"]

    def child() -> int:
        port: int = _json(s.get(http_server.url + "/echo"))["client_port"]
        return port

    child_port = run_in_child(child)
    assert child_port != parent_port
    assert _json(s.get(http_server.url + "/echo"))["client_port"] == parent_port
    s.close()


# -- the tools that build or hook sessions, with sessions=True -----------------------


def test_requests_cache_sessions_cache_and_ride_the_shared_pools(http_server: LocalServer) -> None:
    import requests_cache

    url = http_server.url + "/bytes?n=10"
    for installed in (False, True):
        if installed:
            keepwarm.install(sessions=True)
        http_server.reset()
        for _ in range(2):  # a cached client object per call, as a library might
            with requests_cache.CachedSession(backend="memory") as session:
                assert [session.get(url).from_cache for _ in range(2)] == [False, True]
        assert http_server.requests_handled == 2
        assert http_server.connections_accepted == (1 if installed else 2)
    assert keepwarm.stats().requests == 2


def test_oauth2_sessions_keep_their_tokens(
    http_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from requests_oauthlib import OAuth2Session

    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # http:// on loopback
    keepwarm.install(sessions=True)
    seen = []
    for token in ("first-token", "second-token"):
        with OAuth2Session("client", token={"access_token": token, "token_type": "Bearer"}) as s:
            seen.append(_json(s.get(http_server.url + "/headers"))["Authorization"])
    assert seen == ["Bearer first-token", "Bearer second-token"]
    assert http_server.connections_accepted == 1


def test_opentelemetry_still_traces_installed_sessions(
    http_server: LocalServer, tracing: Any
) -> None:
    keepwarm.install(sessions=True)
    for _ in range(3):
        with requests.Session() as s:
            s.get(http_server.url + "/").close()
    spans = tracing.get_finished_spans()
    assert [span.attributes["http.status_code"] for span in spans] == [200, 200, 200]
    assert http_server.connections_accepted == 1


def test_requests_mock_still_answers_installed_sessions(http_server: LocalServer) -> None:
    import requests_mock

    keepwarm.install(sessions=True)
    with requests_mock.Mocker() as mocker, requests.Session() as s:
        mocker.get(http_server.url + "/mocked", text="from the mock")
        assert s.get(http_server.url + "/mocked").text == "from the mock"
    assert http_server.requests_handled == 0


def test_responses_still_answers_installed_sessions(http_server: LocalServer) -> None:
    import responses

    keepwarm.install(sessions=True)
    with responses.RequestsMock() as mock, requests.Session() as s:
        mock.get(http_server.url + "/mocked", body="from responses")
        assert s.get(http_server.url + "/mocked").text == "from responses"
    assert http_server.requests_handled == 0
