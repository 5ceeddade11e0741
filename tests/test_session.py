"""keepwarm.Session: a requests.Session with base_url, finite timeouts and a strict close.

Everything runs against real local servers (``tests/servers``); the only stand-in is an
adapter subclass that records the timeout it was handed before sending for real.
"""

from __future__ import annotations

import base64
import gc
import pickle
import re
import time
import weakref
from collections.abc import Callable
from typing import Any

import certifi
import pytest
import requests
import urllib3

import keepwarm
from keepwarm import _guards
from keepwarm._upstream.transport import KeepwarmAdapter
from servers import (
    LocalServer,
    RawServer,
    ServerRequest,
    ServerResponse,
    default_handler,
    refused_url,
    silent,
)


def _elapsed(fn: Callable[[], Any]) -> float:
    start = time.monotonic()
    fn()
    return time.monotonic() - start


# -- basics ---------------------------------------------------------------------------


def test_is_a_requests_session() -> None:
    with keepwarm.Session() as s:
        assert isinstance(s, requests.Session)
        assert s.closed is False
    assert s.closed is True


def test_requests_attributes_stay_in_step() -> None:
    plain = requests.Session()
    try:
        with keepwarm.Session() as s:
            # headers and auth are properties (the ConcurrentMutationWarning guard sees them
            # change), stored as _headers and _auth.
            guarded = {"headers", "auth"}
            assert all(isinstance(getattr(keepwarm.Session, n), property) for n in guarded)
            assert {"_headers", "_auth"} <= set(s.__dict__)
            present = set(s.__dict__) | guarded
            missing = set(plain.__dict__) - present
            assert missing == set()
            assert set(requests.Session.__attrs__) <= present
            # Same defaults as requests for the attributes requests owns.
            for name in ("auth", "proxies", "params", "stream", "verify", "cert"):
                assert getattr(s, name) == getattr(plain, name), name
            assert s.max_redirects == plain.max_redirects
            assert s.trust_env is True
            assert dict(s.headers) == dict(plain.headers)
            assert s.hooks == plain.hooks
    finally:
        plain.close()


def test_simple_get(http_server: LocalServer) -> None:
    with keepwarm.Session() as s:
        r = s.get(http_server.url + "/")
        assert r.status_code == 200
        assert r.text == "ok"


# -- base_url -------------------------------------------------------------------------


def test_base_url_joins_relative_paths(http_server: LocalServer, make_server: Any) -> None:
    other = make_server()
    with keepwarm.Session(base_url=http_server.url + "/api") as s:
        assert s.base_url == http_server.url + "/api/"
        for url, expected in [
            ("users", "/api/users"),
            ("/users", "/api/users"),
            ("users/7?x=1", "/api/users/7?x=1"),
            ("", "/api/"),
            (b"bytes", "/api/bytes"),
        ]:
            s.get(url)
            assert http_server.requests[-1].path == expected, url
        # Absolute URLs are used as given, on this server or another one.
        r = s.get(http_server.url + "/echo")
        assert r.json()["path"] == "/echo"
        r = s.get(other.url + "/echo?a=b")
        assert r.json()["path"] == "/echo?a=b"
        assert other.requests_handled == 1
        # Every relative request reused the one connection.
        assert http_server.connections_accepted == 1


def test_base_url_with_methods_and_redirects(http_server: LocalServer) -> None:
    with keepwarm.Session(base_url=http_server.url) as s:
        assert s.post("echo", data=b"hi").json()["body"] == "hi"
        assert s.put("/echo", json={"a": 1}).json()["method"] == "PUT"
        assert s.request("DELETE", "echo").json()["method"] == "DELETE"
        r = s.get("redirect?to=/echo")
        assert r.status_code == 200
        assert r.url == http_server.url + "/echo"


def test_without_base_url_a_relative_url_is_an_error() -> None:
    with keepwarm.Session() as s, pytest.raises(requests.exceptions.MissingSchema):
        s.get("users")


# -- close ----------------------------------------------------------------------------


def test_request_after_close_raises(http_server: LocalServer) -> None:
    s = keepwarm.Session()
    assert s.get(http_server.url + "/").status_code == 200
    s.close()
    s.close()  # idempotent
    assert s.closed
    for call in (
        lambda: s.get(http_server.url + "/"),
        lambda: s.post(http_server.url + "/echo", data=b"x"),
        lambda: s.request("HEAD", http_server.url + "/"),
        lambda: s.send(requests.Request("GET", http_server.url + "/").prepare()),
    ):
        with pytest.raises(keepwarm.SessionClosedError, match="closed") as info:
            call()
        assert isinstance(info.value, RuntimeError)
        assert isinstance(info.value, keepwarm.KeepwarmError)
    # Nothing reconnected behind our back.
    assert http_server.connections_accepted == 1
    assert http_server.requests_handled == 1


def test_context_manager_closes(http_server: LocalServer) -> None:
    with keepwarm.Session() as s:
        s.get(http_server.url + "/")
    with pytest.raises(keepwarm.SessionClosedError):
        s.get(http_server.url + "/")


def test_closed_error_hides_the_password() -> None:
    s = keepwarm.Session()
    s.close()
    with pytest.raises(keepwarm.SessionClosedError) as info:
        s.get("http://alice:s3cret@127.0.0.1:9/")
    assert "s3cret" not in str(info.value)
    assert "alice:***@127.0.0.1:9" in str(info.value)


# -- repr -----------------------------------------------------------------------------


def test_repr_hides_the_password() -> None:
    with keepwarm.Session(base_url="http://alice:s3cret@127.0.0.1:8080/v1") as s:
        text = repr(s)
        assert "s3cret" not in text
        assert "http://alice:***@127.0.0.1:8080/v1/" in text
        assert "open" in text
        assert "timeout=Timeout(connect=3.0, read=7.0)" in text
    assert "closed" in repr(s)
    with keepwarm.Session(base_url="http://:tok3n@127.0.0.1/") as s:
        assert "tok3n" not in repr(s)
    with keepwarm.Session() as s:
        assert "base_url" not in repr(s)


def test_repr_hides_the_password_of_an_ipv6_base_url() -> None:
    with keepwarm.Session(base_url="http://alice:s3cret@[::1]:8080/v1") as s:
        text = repr(s)
        assert "s3cret" not in text
        # The redacted URL must still be a URL: the IPv6 literal keeps its brackets.
        assert "http://alice:***@[::1]:8080/v1/" in text


# -- session state given to the constructor ------------------------------------------


def test_constructor_headers_are_added_to_the_defaults(http_server: LocalServer) -> None:
    with keepwarm.Session(headers={"X-Team": "blue", "Accept": "application/json"}) as s:
        seen = s.get(http_server.url + "/headers").json()
    assert seen["X-Team"] == "blue"
    assert seen["Accept"] == "application/json"
    assert seen["User-Agent"].startswith("python-requests/")
    assert "gzip" in seen["Accept-Encoding"]


def test_constructor_cookies_auth_params(http_server: LocalServer) -> None:
    jar = requests.cookies.RequestsCookieJar()
    jar.set("fromjar", "1")
    with keepwarm.Session(cookies={"flavour": "oat"}, base_url=http_server.url) as s:
        assert s.get("/cookies").json() == {"flavour": "oat"}
        assert {c.domain for c in s.cookies} == {"127.0.0.1"}
    # Without base_url a dict has no host to belong to: requests would make it domain-less,
    # sent to every host, so keepwarm refuses and says what to do instead.
    with pytest.raises(ValueError, match="needs base_url"):
        keepwarm.Session(cookies={"flavour": "oat"})
    with pytest.warns(keepwarm.CookieScopeWarning, match="'fromjar'"):  # domain-less
        s = keepwarm.Session(cookies=jar)
    with s:
        assert s.get(http_server.url + "/cookies").json() == {"fromjar": "1"}
    with keepwarm.Session(auth=("user", "pa55")) as s:
        seen = s.get(http_server.url + "/headers").json()
    assert seen["Authorization"] == "Basic " + base64.b64encode(b"user:pa55").decode()
    with keepwarm.Session(params={"page": "2"}) as s:
        assert s.get(http_server.url + "/echo", params={"q": "x"}).json()["query"] == {
            "page": "2",
            "q": "x",
        }


def test_constructor_verify(https_server: LocalServer, ca_bundle: str) -> None:
    with keepwarm.Session(verify=ca_bundle) as s:
        assert s.verify == ca_bundle
        assert s.get(https_server.url + "/").text == "ok"
    with keepwarm.Session() as s, pytest.raises(requests.exceptions.SSLError):
        s.get(https_server.url + "/")


def test_constructor_rejects_bad_state() -> None:
    with pytest.raises(TypeError, match="verify"):
        keepwarm.Session(verify=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="trust_env"):
        keepwarm.Session(trust_env="yes")  # type: ignore[arg-type]


# -- behaves like requests -----------------------------------------------------------


def test_response_hooks_are_called(http_server: LocalServer) -> None:
    def run(s: requests.Session) -> list[tuple[str, int]]:
        calls: list[tuple[str, int]] = []

        def session_hook(r: requests.Response, *args: Any, **kwargs: Any) -> None:
            calls.append(("session", r.status_code))

        def request_hook(r: requests.Response, *args: Any, **kwargs: Any) -> None:
            calls.append(("request", r.status_code))

        def replace(r: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
            r.status_code = 299
            return r

        with s:
            s.hooks["response"].append(session_hook)
            s.get(http_server.url + "/status/204")
            # as in requests, a per-request "response" hook list replaces the session's
            s.get(http_server.url + "/", hooks={"response": request_hook})
            # a hook's return value replaces the response
            assert s.get(http_server.url + "/", hooks={"response": [replace]}).status_code == 299
        return calls

    calls = run(keepwarm.Session())
    assert calls == [("session", 204), ("request", 200)]
    assert calls == run(requests.Session())


def test_cookies_set_by_the_server_are_sent_back(http_server: LocalServer) -> None:
    with keepwarm.Session() as s:
        s.get(http_server.url + "/cookies/set?name=value&other=2")
        assert s.cookies.get("name") == "value"
        assert s.get(http_server.url + "/cookies").json() == {"name": "value", "other": "2"}
        # per-request cookies are merged, not stored
        r = s.get(http_server.url + "/cookies", cookies={"once": "1"})
        assert r.json() == {"name": "value", "other": "2", "once": "1"}
        assert "once" not in s.cookies


def _redirect_setting_a_cookie(request: ServerRequest) -> ServerResponse:
    if request.route == "/hop":
        return ServerResponse(302, [("Location", "/headers"), ("Set-Cookie", "hop=server")], b"")
    return default_handler(request)


def test_request_cookies_replace_session_cookies_through_a_same_host_redirect(
    make_server: Callable[..., LocalServer],
) -> None:
    server = make_server(_redirect_setting_a_cookie)
    with keepwarm.Session() as s:
        with pytest.warns(keepwarm.CookieScopeWarning, match="'foo'"):  # domain-less
            s.cookies["foo"] = "session"
        r = s.get(server.url + "/hop", cookies={"foo": "request", "hop": "request"})
        # The request's value of foo all the way; the server's Set-Cookie on the 302
        # replaces the request's hop, as a browser would. One value per name.
        assert [q.headers["Cookie"] for q in server.requests] == [
            "foo=request; hop=request",
            "foo=request; hop=server",
        ]
        assert r.json()["Cookie"] == "foo=request; hop=server"
        assert s.cookies.get("foo") == "session"  # the session jar is left alone
    # Plain requests merges the session jar back over the redirected request's cookies,
    # so the session's foo comes back, and both hop values are sent (documented here).
    server.reset()
    with requests.Session() as plain:
        plain.cookies["foo"] = "session"
        plain.get(server.url + "/hop", cookies={"foo": "request", "hop": "request"}, timeout=5)
    redirected = sorted(server.requests[1].headers["Cookie"].split("; "))
    assert redirected == ["foo=session", "hop=request", "hop=server"]


def test_a_request_cookie_replaces_the_session_cookie_also_on_a_cross_host_redirect(
    make_server: Callable[..., LocalServer],
) -> None:
    a = make_server(default_handler)
    b = make_server(default_handler)
    to_b = b.url.replace("://127.0.0.1:", "://localhost:", 1) + "/headers"
    with keepwarm.Session() as s, pytest.warns(keepwarm.CookieScopeWarning) as record:
        s.cookies["foo"] = "session"
        s.cookies["other"] = "session"
        r = s.get(a.url + "/redirect", params={"to": to_b}, cookies={"foo": "request"})
    # The request's foo is bound to a's host; the session's foo was replaced for this
    # request and its redirects, so b gets neither, only the untouched domain-less cookie
    # (the guard warned about each of the two, at its line).
    assert r.json()["Cookie"] == "other=session"
    assert [str(w.message).split(" was ")[0] for w in record] == [
        "the cookie 'foo'",
        "the cookie 'other'",
    ]


def test_redirects_are_followed_with_history(http_server: LocalServer) -> None:
    with keepwarm.Session() as s:
        r = s.get(http_server.url + "/redirect?to=/echo")
        assert r.status_code == 200
        assert r.url == http_server.url + "/echo"
        assert [h.status_code for h in r.history] == [302]
        assert r.history[0].headers["Location"] == "/echo"
        r = s.get(http_server.url + "/redirect?to=/echo&status=307", allow_redirects=False)
        assert r.status_code == 307
        assert r.is_redirect
        # A 303 turns a POST into a GET, as in requests.
        r = s.post(http_server.url + "/redirect?to=/echo&status=303", data=b"x")
        assert r.json()["method"] == "GET"
        # max_redirects is honoured.
        s.max_redirects = 0
        with pytest.raises(requests.exceptions.TooManyRedirects):
            s.get(http_server.url + "/redirect?to=/echo")


def test_request_header_replaces_session_header(http_server: LocalServer) -> None:
    with keepwarm.Session(headers={"X-Token": "session", "X-Keep": "k"}) as s:
        with pytest.warns(keepwarm.HeaderOverrideWarning, match="'x-token' header"):
            s.get(http_server.url + "/headers", headers={"x-token": "request"})
        headers = http_server.requests[-1].headers
        assert headers.get_all("X-Token") == ["request"]
        assert headers["X-Keep"] == "k"
        # None removes a session header for one request, as in requests.
        with pytest.warns(keepwarm.HeaderOverrideWarning, match="deletes"):
            s.get(http_server.url + "/headers", headers={"X-Keep": None})
        assert "X-Keep" not in http_server.requests[-1].headers
        s.get(http_server.url + "/headers")
        assert http_server.requests[-1].headers["X-Keep"] == "k"


def test_pickle_round_trip(http_server: LocalServer) -> None:
    original = keepwarm.Session(
        timeout=keepwarm.Timeout(connect=2, read=4),
        base_url=http_server.url,
        headers={"X-Team": "blue"},
    )
    try:
        original.get("/cookies/set?c=1")
        copy = pickle.loads(pickle.dumps(original))
        try:
            assert isinstance(copy, keepwarm.Session)
            assert copy.timeout == keepwarm.Timeout(connect=2, read=4)
            assert copy.base_url == http_server.url + "/"
            seen = copy.get("headers").json()
            assert seen["X-Team"] == "blue"
            assert seen["Cookie"] == "c=1"
        finally:
            copy.close()
    finally:
        original.close()


# -- TLS: session.verify wins over REQUESTS_CA_BUNDLE ---------------------------------


def test_session_verify_wins_over_requests_ca_bundle(
    monkeypatch: pytest.MonkeyPatch, https_server: LocalServer, ca_bundle: str
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    with keepwarm.Session() as s:
        s.verify = ca_bundle
        assert s.get(https_server.url + "/").text == "ok"
    # Plain requests lets the variable override session.verify (requests 3829).
    plain = requests.Session()
    try:
        plain.verify = ca_bundle
        with pytest.raises(requests.exceptions.SSLError):
            plain.get(https_server.url + "/", timeout=5)
    finally:
        plain.close()


def test_requests_ca_bundle_applies_when_verify_is_left_alone(
    monkeypatch: pytest.MonkeyPatch, https_server: LocalServer, ca_bundle: str
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_bundle)
    with keepwarm.Session() as s:
        assert s.get(https_server.url + "/").text == "ok"
    with keepwarm.Session(trust_env=False) as s, pytest.raises(requests.exceptions.SSLError):
        s.get(https_server.url + "/")


# -- timeouts -------------------------------------------------------------------------


class _RecordingAdapter(KeepwarmAdapter):
    """The real adapter, recording the timeout each send() is handed."""

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.timeouts: list[Any] = []

    def send(self, request: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.timeouts.append(kwargs.get("timeout"))
        return super().send(request, **kwargs)


def _recording(s: keepwarm.Session) -> _RecordingAdapter:
    old = s.get_adapter("http://127.0.0.1/")
    adapter = _RecordingAdapter(s.settings)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    old.close()
    return adapter


def _pair(timeout: Any) -> tuple[Any, Any]:
    assert isinstance(timeout, urllib3.Timeout), timeout
    return (timeout.connect_timeout, timeout.read_timeout)


def test_default_timeout_is_3_7() -> None:
    with keepwarm.Session() as s:
        assert s.timeout == keepwarm.Timeout(connect=3, read=7)
        assert s.timeout == keepwarm.DEFAULT_TIMEOUT


def test_default_timeout_reaches_the_adapter_and_the_socket(http_server: LocalServer) -> None:
    with keepwarm.Session() as s:
        adapter = _recording(s)
        r = s.get(http_server.url + "/", stream=True)
        try:
            # the socket the response is read from waits at most 7 s per read
            assert r.raw.connection.sock.gettimeout() == 7.0
        finally:
            r.close()
        s.get(http_server.url + "/", timeout=None)
        s.get(http_server.url + "/redirect?to=/")  # and the redirected request too
    assert [_pair(t) for t in adapter.timeouts] == [(3.0, 7.0)] * 4


def test_per_request_timeouts_reach_the_adapter(http_server: LocalServer) -> None:
    url = http_server.url + "/"
    with keepwarm.Session(timeout=keepwarm.Timeout(connect=1, read=2)) as s:
        adapter = _recording(s)
        s.get(url)
        s.get(url, timeout=5)
        s.get(url, timeout=(4, 6))
        s.get(url, timeout=keepwarm.Timeout(connect=0.5, read=8))
        s.get(url, timeout=keepwarm.Timeout(connect=0.5))
        with pytest.warns(keepwarm.NoTimeoutWarning):
            s.get(url, timeout=keepwarm.NO_TIMEOUT)
        s.get(url, timeout=urllib3.Timeout(connect=2, read=3))
    got = [t if isinstance(t, (int, float, tuple)) else _pair(t) for t in adapter.timeouts]
    assert got == [(1.0, 2.0), 5, (4, 6), (0.5, 8.0), (0.5, 7.0), (None, None), (2, 3)]


def test_no_timeout_reaches_the_socket(http_server: LocalServer) -> None:
    with keepwarm.Session() as s:
        with pytest.warns(keepwarm.NoTimeoutWarning, match="timeouts disabled"):
            r = s.get(http_server.url + "/", stream=True, timeout=keepwarm.NO_TIMEOUT)
        try:
            assert r.raw.connection.sock.gettimeout() is None
        finally:
            r.close()


def test_configured_read_timeout_fires(raw_server: Callable[..., RawServer]) -> None:
    server = raw_server(silent)
    with keepwarm.Session(timeout=keepwarm.Timeout(connect=1, read=0.5)) as s:
        start = time.monotonic()
        with pytest.raises(requests.exceptions.ReadTimeout):
            s.get(server.url + "/")
        elapsed = time.monotonic() - start
    assert 0.45 <= elapsed < 3.0


def test_configure_timeout_fires_on_a_silent_server(raw_server: Callable[..., RawServer]) -> None:
    server = raw_server(silent)
    keepwarm.configure(timeout=0.3)
    with keepwarm.Session() as s:
        assert s.timeout == keepwarm.Timeout(0.3)
        start = time.monotonic()
        with pytest.raises(requests.exceptions.ReadTimeout):
            s.get(server.url + "/")
        elapsed = time.monotonic() - start
    assert 0.25 <= elapsed < 2.0


def test_timeout_none_means_the_session_default(raw_server: Callable[..., RawServer]) -> None:
    server = raw_server(silent)
    with keepwarm.Session(timeout=keepwarm.Timeout(connect=1, read=0.3)) as s:
        start = time.monotonic()
        with pytest.raises(requests.exceptions.ReadTimeout):
            s.get(server.url + "/", timeout=None)
        assert 0.25 <= time.monotonic() - start < 2.0
        start = time.monotonic()
        with pytest.raises(requests.exceptions.ReadTimeout):
            s.request("GET", server.url + "/", timeout=None)
        assert 0.25 <= time.monotonic() - start < 2.0


@pytest.mark.parametrize(
    "timeout",
    [0.3, (1, 0.3), keepwarm.Timeout(connect=1, read=0.3), keepwarm.Timeout(read=0.3)],
    ids=["float", "tuple", "Timeout", "Timeout-read-only"],
)
def test_per_request_timeout_wins(raw_server: Callable[..., RawServer], timeout: Any) -> None:
    server = raw_server(silent)
    with keepwarm.Session(timeout=keepwarm.Timeout(connect=5, read=20)) as s:
        start = time.monotonic()
        with pytest.raises(requests.exceptions.ReadTimeout):
            s.get(server.url + "/", timeout=timeout)
        elapsed = time.monotonic() - start
    assert 0.25 <= elapsed < 2.0


def test_no_timeout_disables_the_session_default(http_server: LocalServer) -> None:
    url = http_server.url + "/sleep?s=0.5"
    with keepwarm.Session(timeout=keepwarm.Timeout(connect=1, read=0.1)) as s:
        with pytest.raises(requests.exceptions.ReadTimeout):
            s.get(url)  # the control: the default really is 0.1 s
        with pytest.warns(keepwarm.NoTimeoutWarning):
            r = s.get(url, timeout=keepwarm.NO_TIMEOUT)
        assert r.status_code == 200
        assert r.text == "ok"
    with (
        keepwarm.Session(timeout=keepwarm.NO_TIMEOUT) as s,
        pytest.warns(keepwarm.NoTimeoutWarning),
    ):
        assert s.get(url).text == "ok"


def test_connect_timeout(backlog_full_address: tuple[str, int]) -> None:
    host, port = backlog_full_address
    url = f"http://{host}:{port}/"
    with keepwarm.Session(timeout=keepwarm.Timeout(connect=0.3, read=5), max_retries=0) as s:
        start = time.monotonic()
        with pytest.raises(requests.exceptions.ConnectTimeout):
            s.get(url)
        assert 0.25 <= time.monotonic() - start < 2.0
        start = time.monotonic()
        with pytest.raises(requests.exceptions.ConnectTimeout):
            s.get(url, timeout=(0.2, 30))
        assert 0.15 <= time.monotonic() - start < 2.0


@pytest.mark.keepwarm_leaks("off")  # drops the session unclosed: the point of the test
@pytest.mark.parametrize("scenario", ["http", "https", "http-proxy", "telemetry-off", "stream"])
def test_a_session_dropped_without_close_frees_its_connections_at_once(
    make_server: Callable[..., LocalServer], ca_bundle: str, scenario: str
) -> None:
    # As a plain requests.Session is: freed by reference counting the moment the last
    # reference goes, its pooled sockets closed. Found with requests' own suite: an
    # unclosed keepwarm session held its keep-alive connection until the cyclic garbage
    # collector ran, and pytest-httpbin's single-threaded server stalled on it.
    server = make_server(default_handler, tls=scenario == "https")
    kwargs: dict[str, Any] = {"verify": ca_bundle} if scenario == "https" else {}
    if scenario == "telemetry-off":
        kwargs["telemetry"] = False
    gc.disable()
    try:
        session = keepwarm.Session(**kwargs)
        if scenario == "http-proxy":
            # The local server plays the proxy: it gets the absolute-form request (and
            # answers 404 to that path); the adapter made a proxy pool manager for it.
            session.proxies = {"http": server.url}
            response = session.get("http://127.0.0.1:9/echo")
            assert server.requests[-1].path == "http://127.0.0.1:9/echo"
        elif scenario == "stream":
            # Not read: the response still holds the connection when both are dropped.
            response = session.get(server.url + "/bytes?n=100", stream=True)
            assert response.status_code == 200
        else:
            response = session.get(server.url + "/echo")
            assert response.status_code == 200
        assert server.open_connections == 1
        adapter = weakref.ref(session.get_adapter(server.url))
        _guards.forget_sites()  # each scenario drops one from the same line
        with pytest.warns(keepwarm.UnclosedSessionWarning, match=r"test_session\.py:\d+"):
            del session, response  # on purpose: the guard says so (docs/guards/)
        assert adapter() is None, "the adapter outlived its session: a reference cycle"
        assert server.wait_for_no_connections(3.0)
    finally:
        gc.enable()


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_connection_errors_read_like_plain_requests(scheme: str) -> None:
    """urllib3 names the connection class in its messages: keepwarm's classes carry
    urllib3's names, so users read (and match) what plain requests would show them."""
    url = refused_url().replace("http:", f"{scheme}:") + "x"
    messages = []
    for session in (requests.Session(), keepwarm.Session(max_retries=0)):
        with session, pytest.raises(requests.exceptions.ConnectionError) as raised:
            session.get(url, timeout=5)
        messages.append(re.sub(r"0x[0-9a-f]+", "0x…", str(raised.value)))
    plain, kept = messages
    assert "Instrumented" not in kept and "keepwarm" not in kept
    assert kept == plain


@pytest.mark.parametrize(
    "url",
    [
        "http://a.example/",
        "HTTPS://A.example/x",
        "https://api.example/v2/x",
        "ftp://a/",
        "hTtP://x",
    ],
)
def test_get_adapter_finds_what_requests_finds(url: str) -> None:
    # keepwarm's sessions mount adapters in their own way (thread-safe): the same adapter
    # is found, or the same InvalidSchema raised, as by requests' for the same mounts.
    special = requests.adapters.HTTPAdapter()
    outcomes = []
    for session in (requests.Session(), keepwarm.Session()):
        with session:
            session.mount("HTTPS://API.example/V2", special)
            try:
                adapter = session.get_adapter(url)
                outcomes.append("special" if adapter is special else type(adapter).__name__)
            except requests.exceptions.InvalidSchema as e:
                outcomes.append(str(e))
    plain, ours = outcomes
    assert ours == plain or (plain == "HTTPAdapter" and ours == "KeepwarmAdapter")


class _Built(Exception):
    """Raised by a recording prepare_request, once it has the Request: nothing is sent."""


_REQUEST_ARGUMENTS: list[dict[str, Any]] = [
    {},
    {"data": {}},
    {"data": ""},
    {"data": b"x=1"},
    {"data": {"a": "1"}, "params": {"q": "1"}},
    {"data": [("a", "1")], "params": []},
    {"headers": {"X-A": "1"}, "cookies": {"c": "1"}, "auth": ("u", "p")},
    {"files": {"f": ("a.txt", b"x")}, "json": None},
    {"json": {"a": 1}, "params": "q=1"},
    {"hooks": {}},
    {"hooks": {"response": [lambda r, **kwargs: r]}},
]


def _built_request(
    session: requests.Session, owner: type, monkeypatch: pytest.MonkeyPatch, **kwargs: Any
) -> tuple[dict[str, Any], bool]:
    # The Request ``session.request("get", ...)`` hands prepare_request (its attributes, in
    # order), and whether requests' own Session.request ran to build it.
    import sys

    seen: list[dict[str, Any]] = []
    ran = []
    requests_code = requests.Session.request.__code__

    def recording(self: Any, request: requests.Request) -> Any:
        seen.append(dict(vars(request)))
        raise _Built

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code is requests_code:
            ran.append(True)

    monkeypatch.setattr(owner, "prepare_request", recording)
    sys.setprofile(profile)
    try:
        with pytest.raises(_Built):
            session.request("get", "http://127.0.0.1:1/p", **kwargs)
    finally:
        sys.setprofile(None)
    monkeypatch.undo()
    return seen[0], bool(ran)


@pytest.mark.parametrize("arguments", _REQUEST_ARGUMENTS)
def test_the_request_built_is_requests(
    arguments: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # keepwarm.Session.request builds the Request requests' Session.request builds (the
    # same attributes, in the same order), without running requests' Session.request
    # unless hooks are given (session.RequestsSessionBase._request).
    from keepwarm._upstream.session import RequestsSessionBase

    with requests.Session() as plain, keepwarm.Session() as session:
        expected, _ = _built_request(plain, requests.Session, monkeypatch, **arguments)
        built, ran = _built_request(session, RequestsSessionBase, monkeypatch, **arguments)
    assert list(built) == list(expected)
    hooks = built.pop("hooks"), expected.pop("hooks")
    assert built == expected
    assert [list(h) for h in hooks[0].values()] == [list(h) for h in hooks[1].values()]
    assert ran is (arguments.get("hooks") is not None)


@pytest.mark.parametrize("point", ["request", "Request", "Request.__init__"])
def test_a_replaced_request_step_is_called(
    point: str, monkeypatch: pytest.MonkeyPatch, http_server: LocalServer
) -> None:
    # While a tool has replaced requests' Session.request, the Request class it builds or
    # that class's constructor, keepwarm's sessions call the replacement, as a plain
    # Session does.
    calls: list[str] = []
    if point == "request":
        original = requests.Session.request

        def request(self: Any, *args: Any, **kwargs: Any) -> Any:
            calls.append(point)
            return original(self, *args, **kwargs)

        monkeypatch.setattr(requests.Session, "request", request)
    elif point == "Request":

        class Traced(requests.Request):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                calls.append(point)
                super().__init__(*args, **kwargs)

        monkeypatch.setattr(requests.sessions, "Request", Traced)
    else:
        init = requests.Request.__init__

        def traced(self: Any, *args: Any, **kwargs: Any) -> None:
            calls.append(point)
            init(self, *args, **kwargs)

        monkeypatch.setattr(requests.Request, "__init__", traced)
    with requests.Session() as plain, keepwarm.Session(timeout=5) as session:
        assert plain.get(http_server.url + "/").status_code == 200
        assert calls == [point]
        assert session.get(http_server.url + "/").status_code == 200
    assert calls == [point, point]


def test_a_mixins_request_runs_as_super_finds_it(http_server: LocalServer) -> None:
    # A session class that puts another requests.Session subclass after keepwarm.Session
    # gets that class's request from keepwarm.Session.request, as super() finds it.
    calls: list[str] = []

    class Other(requests.Session):
        def request(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            calls.append("other")
            return super().request(*args, **kwargs)

    class Both(keepwarm.Session, Other):
        pass

    with Both(timeout=5) as session:
        assert session.get(http_server.url + "/").status_code == 200
    assert calls == ["other"]
