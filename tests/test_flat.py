"""The flat first attempt (``pool.urlopen_first``): when it is taken, and that it is the
layers' call.

A plain request on one of keepwarm's own pools skips five layers (keepwarm's and urllib3's
``urlopen`` and ``_make_request`` and the stale resend between them) for one function that
does their steps for that case. Here: which requests take it and which take the layers
(each case against plain requests on the same server); that the wording and the records
urllib3 writes on a retry, a target it encodes, and the response's ties to its pool and
connection are the layers'. tests/test_faults.py runs every fault scenario through both
(its ``keepwarm-layered`` client).
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import urllib3
from hypothesis import given, settings
from hypothesis import strategies as st
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import InsecureRequestWarning
from urllib3.util.retry import Retry
from urllib3.util.url import _encode_target, parse_url

import keepwarm
from keepwarm._upstream import pool as pool_module
from keepwarm._upstream import transport
from replaced import seen_while_replaced
from servers import (
    Flaky,
    LocalServer,
    RawServer,
    ServerRequest,
    ServerResponse,
    reset_after_request,
)


@pytest.fixture
def flat_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The method of every request that took the flat first attempt."""
    calls: list[str] = []
    real = transport.urlopen_first

    def counted(pool: Any, method: str, *args: Any) -> Any:
        calls.append(method)
        return real(pool, method, *args)

    monkeypatch.setattr(transport, "urlopen_first", counted)
    return calls


def _echo(request: ServerRequest) -> ServerResponse:
    return ServerResponse.json(
        {"method": request.method, "path": request.path, "body": request.body.decode()}
    )


@pytest.fixture(params=["http", "https"])
def server(request: pytest.FixtureRequest, make_server: Callable[..., LocalServer]) -> LocalServer:
    return make_server(_echo, tls=request.param == "https")


def _plain(server: LocalServer, ca_bundle: str) -> requests.Session:
    session = requests.Session()
    session.verify = ca_bundle
    return session


def test_plain_requests_take_it(server: LocalServer, ca_bundle: str, flat_calls: list[str]) -> None:
    # GET, HEAD, a POST with a bytes body, a PUT with a str body, a DELETE: each one
    # flat attempt, the same answers as plain requests', over one connection.
    calls: list[tuple[str, dict[str, Any]]] = [
        ("GET", {}),
        ("HEAD", {}),
        ("POST", {"data": b"payload"}),
        ("PUT", {"data": "text"}),
        ("DELETE", {"params": {"q": "1"}}),
        ("POST", {"json": {"a": 1}}),
    ]
    results = {}
    for kind in ("requests", "keepwarm"):
        session = (
            keepwarm.Session(verify=ca_bundle) if kind == "keepwarm" else _plain(server, ca_bundle)
        )
        with session:
            results[kind] = []
            for method, kwargs in calls:
                r = session.request(method, server.url + "/echo", timeout=5, **kwargs)
                results[kind].append((r.status_code, r.content, r.headers.get("Content-Type")))
    assert results["keepwarm"] == results["requests"]
    assert flat_calls == [method for method, _ in calls]
    keepwarm_requests = server.requests[len(calls) :]
    assert {r.connection_index for r in keepwarm_requests} == {
        keepwarm_requests[0].connection_index
    }


#: urllib3 steps the flat path answers in place where they would do nothing or say no.
POOL_STEPS: dict[str, tuple[type, str]] = {
    "HTTPConnectionPool._validate_conn": (HTTPConnectionPool, "_validate_conn"),
    "HTTPSConnectionPool._validate_conn": (HTTPSConnectionPool, "_validate_conn"),
    "Retry.is_retry": (Retry, "is_retry"),
}


@pytest.mark.parametrize("step", sorted(POOL_STEPS))
def test_a_replaced_pool_step_is_called_as_under_requests(
    step: str, server: LocalServer, ca_bundle: str, flat_calls: list[str]
) -> None:
    # urllib3's _validate_conn does nothing for a connected, verified connection, and
    # Retry.is_retry says no for a 200: the flat path does not call them. Replaced (a
    # tool, a subclass's patch), each is called as often as under plain requests, with
    # the same arguments, and the flat path is still taken.
    owner, name = POOL_STEPS[step]
    original = owner.__dict__[name]
    calls: list[tuple[Any, ...]] = []

    def replacement(self: Any, *args: Any) -> Any:
        calls.append(tuple(a if isinstance(a, (str, int)) else type(a).__name__ for a in args))
        return original(self, *args)

    seen = seen_while_replaced(server.url + "/echo", ca_bundle, owner, name, replacement, calls)
    assert seen[1] == seen[0]
    https_only = step == "HTTPSConnectionPool._validate_conn" and server.url.startswith("http:")
    assert len(seen[1][0]) == (0 if https_only else 3)
    assert flat_calls == ["GET"] * 4


def test_an_unverified_request_warns_each_time_as_under_requests(
    make_server: Callable[..., LocalServer], flat_calls: list[str]
) -> None:
    # urllib3's _validate_conn warns of an unverified HTTPS connection on every request:
    # the flat path calls it for one.
    server = make_server(_echo, tls=True)
    counts = []
    for session in (requests.Session(), keepwarm.Session()):
        with session, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(3):
                session.get(server.url + "/echo", verify=False, timeout=5).close()
        counts.append(sum(issubclass(w.category, InsecureRequestWarning) for w in caught))
    assert counts == [3, 3]
    assert flat_calls == ["GET"] * 3


@pytest.mark.parametrize("status", [413, 429, 503])
def test_a_retry_after_status_is_retried_as_under_requests(
    status: int, make_server: Callable[..., LocalServer], flat_calls: list[str]
) -> None:
    # A Retry without a status list still retries a 413, 429 or 503 that carries
    # Retry-After (its RETRY_AFTER_STATUS_CODES), with retries left: the flat path asks it.
    answers = []
    for kind in ("requests", "keepwarm"):
        flaky = Flaky(times=1, status=status, retry_after=0)
        server = make_server(flaky)
        retry = Retry(total=1, backoff_factor=0)
        session = keepwarm.Session(max_retries=retry) if kind == "keepwarm" else requests.Session()
        if kind == "requests":
            session.mount("http://", requests.adapters.HTTPAdapter(max_retries=retry))
        with session:
            r = session.get(server.url + "/", timeout=5)
            answers.append((r.status_code, r.content, flaky.count("/")))
    assert answers == [(200, b"ok", 2), (200, b"ok", 2)]
    assert flat_calls == ["GET"]


def _generator_body() -> Iterator[bytes]:
    yield b"stre"
    yield b"amed"


def _layered_cases() -> dict[str, dict[str, Any]]:
    return {
        # A body urllib3 cannot send twice: the layers keep it from a second send.
        "generator body": {"data": _generator_body},
        "file body": {"data": lambda: io.BytesIO(b"file")},
        # A total deadline: the layers cut each attempt to the time left.
        "total deadline": {"keepwarm_timeout": keepwarm.Timeout(5, total=10)},
        # A urllib3 Timeout with a total of its own: urllib3 times the connect.
        "urllib3 total": {"timeout": urllib3.Timeout(connect=5, read=5, total=10)},
    }


@pytest.mark.parametrize("case", list(_layered_cases()))
def test_other_requests_take_the_layers(
    case: str, server: LocalServer, ca_bundle: str, flat_calls: list[str]
) -> None:
    spec = _layered_cases()[case]
    answers = []
    for kind in ("requests", "keepwarm"):
        kwargs: dict[str, Any] = {"timeout": spec.get("timeout", 5)}
        if "data" in spec:
            kwargs["data"] = spec["data"]()
        if kind == "keepwarm":
            settings: dict[str, Any] = {"verify": ca_bundle}
            if "keepwarm_timeout" in spec:
                settings["timeout"] = spec["keepwarm_timeout"]
                del kwargs["timeout"]
            session: requests.Session = keepwarm.Session(**settings)
        else:
            session = _plain(server, ca_bundle)
        with session, session.post(server.url + "/echo", **kwargs) as r:
            answers.append((r.status_code, r.json()))
    assert answers[0] == answers[1]
    assert flat_calls == []


def test_urllib3_debug_logging_takes_the_layers(
    server: LocalServer,
    ca_bundle: str,
    flat_calls: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # urllib3 logs each request at DEBUG in words that changed between its releases;
    # while someone reads them, the layers write them, as for plain requests.
    lines = {}
    with caplog.at_level(logging.DEBUG, logger="urllib3.connectionpool"):
        for kind in ("requests", "keepwarm"):
            caplog.clear()
            session = (
                keepwarm.Session(verify=ca_bundle)
                if kind == "keepwarm"
                else _plain(server, ca_bundle)
            )
            with session:
                session.get(server.url + "/echo?x=1", timeout=5).close()
            lines[kind] = [
                r.getMessage().split("://", 1)[1]
                for r in caplog.records
                if r.name == "urllib3.connectionpool" and '"GET /echo' in r.getMessage()
            ]
    assert lines["keepwarm"] == lines["requests"]
    assert len(lines["keepwarm"]) == 1
    assert flat_calls == []


def test_a_wrapped_urlopen_takes_the_layers(
    server: LocalServer,
    ca_bundle: str,
    flat_calls: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A urllib3 instrumentation (OpenTelemetry's, ddtrace's) wraps urlopen: it sees
    # every request.
    seen = []
    real = HTTPConnectionPool.urlopen

    def wrapped(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        seen.append((method, url))
        return real(self, method, url, *args, **kwargs)

    monkeypatch.setattr(HTTPConnectionPool, "urlopen", wrapped)
    with keepwarm.Session(verify=ca_bundle) as session:
        assert session.get(server.url + "/echo", timeout=5).json()["path"] == "/echo"
    assert seen == [("GET", "/echo")]
    assert flat_calls == []


def test_a_proxy_takes_the_layers(
    make_server: Callable[..., LocalServer], flat_calls: list[str]
) -> None:
    proxy = make_server(lambda request: ServerResponse.json({"target": request.path}))
    proxies = {"http": proxy.url}
    answers = []
    for session in (requests.Session(), keepwarm.Session()):
        with session, session.get("http://example.invalid/x?y=1", proxies=proxies) as r:
            answers.append(r.json())
    assert answers[0] == answers[1] == {"target": "http://example.invalid/x?y=1"}
    assert flat_calls == []


def test_http2_pools_take_their_own_path(
    h2_server: Callable[..., Any], ca_bundle: str, flat_calls: list[str]
) -> None:
    server = h2_server()
    with keepwarm.Session(verify=ca_bundle, http2=True) as session:
        r = session.get(server.url + "/get?a=1", timeout=5)
        assert r.status_code == 200
        assert r.raw.version == 20
    assert flat_calls == []


def test_a_target_urllib3_encodes_is_encoded(
    server: LocalServer, ca_bundle: str, flat_calls: list[str]
) -> None:
    # requests leaves "[", "]", "|" in a path; urllib3's urlopen percent-encodes what a
    # request target may not hold.
    paths = []
    for kind in ("requests", "keepwarm"):
        session = (
            keepwarm.Session(verify=ca_bundle) if kind == "keepwarm" else _plain(server, ca_bundle)
        )
        with session, session.get(server.url + "/a[1]|b?q=[x]|y", timeout=5) as r:
            paths.append(r.json()["path"])
    assert paths[0] == paths[1]
    assert paths[0] != "/a[1]|b?q=[x]|y"
    assert flat_calls == ["GET"]


def _target_outcome(encode: Callable[[str], str], path: str) -> Any:
    try:
        if encode is _encode_target and pool_module._PARSES_PATH:
            parse_url(path)
        return encode(path)
    except Exception as e:  # the exception is what is compared
        return type(e), str(e)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=24).map(lambda s: "/" + s))
def test_a_remembered_target_is_the_one_urllib3_encodes(path: str) -> None:
    # pool._request_target remembers urllib3's _encode_target of a path (the request
    # line's target): asked once or again, the answer is urllib3's; a query is not kept.
    expected = _target_outcome(_encode_target, path)
    assert _target_outcome(pool_module._request_target, path) == expected
    assert _target_outcome(pool_module._request_target, path) == expected
    if "?" in path:
        assert path not in pool_module._TARGETS


def test_the_response_is_tied_as_the_layers_tie_it(
    server: LocalServer, ca_bundle: str, flat_calls: list[str]
) -> None:
    with keepwarm.Session(verify=ca_bundle) as session:
        r = session.get(server.url + "/echo", stream=True, timeout=5)
        raw = r.raw
        pool = raw._pool
        assert isinstance(pool, pool_module._InstrumentedPool)
        assert raw._connection is not None
        assert raw.retries is session.get_adapter(server.url).max_retries
        assert pool.num_requests == 1
        assert pool.pool.qsize() == pool.pool.maxsize - 1  # checked out with the response
        r.content  # noqa: B018
        r.close()
        assert pool.pool.qsize() == pool.pool.maxsize
    assert flat_calls == ["GET"]


def test_a_retry_after_an_error_is_logged_as_urllib3_logs_it(
    raw_server: Callable[..., RawServer],
    flat_calls: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The first attempt's connection is reset after the request: urllib3's Retry retries
    # the GET and warns "Retrying (...) after connection broken by ...", with the path.
    # The retry itself goes through the layers.
    records: dict[str, list[tuple[Any, ...]]] = {}
    for kind in ("requests", "keepwarm"):
        server = raw_server(reset_after_request)
        url = f"http://{server.host}:{server.port}/p?token=SECRET"
        retry = Retry(total=1, backoff_factor=0)
        session: requests.Session
        if kind == "keepwarm":
            session = keepwarm.Session(max_retries=retry, timeout=5)
        else:
            session = requests.Session()
            session.mount("http://", requests.adapters.HTTPAdapter(max_retries=retry))
        caplog.clear()
        with session, pytest.raises(requests.ConnectionError) as caught:
            session.get(url, timeout=5)
        records[kind] = [
            (
                r.levelno,
                r.msg,
                repr(r.args[0]),
                type(r.args[1]).__name__,
                r.args[2],
                getattr(r, "__urllib3-retry-warning", None),
            )
            for r in caplog.records
            if r.name == "urllib3.connectionpool" and r.levelno >= logging.WARNING
        ]
        records[kind].append(("raised", type(caught.value.args[0].reason).__name__))
    assert records["keepwarm"] == records["requests"]
    assert len(records["keepwarm"]) == 2
    assert flat_calls == ["GET"]


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://a.example/x/y", "http://a.example"),
        ("https://a.example:8443", "https://a.example:8443"),
        ("http://a.example?q=1", "http://a.example"),
        ("http://a.example/p?token=secret", "http://a.example"),
        ("http://user:pw@a.example/p", "http://user:pw@a.example"),
        ("a.example/p", "a.example/p"),
    ],
)
def test_an_origin_is_remembered_without_its_query_or_userinfo(url: str, expected: str) -> None:
    # transport._origin (the pool-key cache's key) remembers URLs it sliced, but never
    # one with a query or userinfo: query values and passwords are not kept.
    transport._ORIGINS.clear()
    assert transport._origin(url) == transport._origin(url) == expected
    assert (url in transport._ORIGINS) is ("?" not in url and "@" not in url)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["http://a.example", "https://a.example:8443", "http://[::1]:80", ""]),
    st.text(alphabet="/ab%?#=&;:@~", max_size=16),
)
def test_a_remembered_path_is_requests_path_url(origin: str, rest: str) -> None:
    # transport._path_url remembers requests' PreparedRequest.path_url per URL; asked once
    # and again, the answer is requests'. A URL with a query or userinfo is not kept.
    request = requests.PreparedRequest()
    request.url = origin + rest
    expected = request.path_url
    assert transport._path_url(request) == transport._path_url(request) == expected
    if "?" in request.url or "@" in request.url:
        assert request.url not in transport._PATHS


def test_a_request_class_with_its_own_path_url_is_asked() -> None:
    class Routed(requests.PreparedRequest):
        @property
        def path_url(self) -> str:
            return "/routed"

    request = Routed()
    request.url = "http://a.example/x"
    assert transport._path_url(request) == "/routed"


def test_no_cache_keeps_a_password_or_a_query_value(server: LocalServer, ca_bundle: str) -> None:
    # The caches keyed by a URL (prepared URLs, paths, origins, request targets, pool keys)
    # never keep one with userinfo or a query: the request is answered as plain requests
    # answers it, and afterwards no cache holds the password or the query's value.
    from keepwarm._upstream import prepare

    scheme, host_port = server.url.split("://")
    url = f"{scheme}://alice:hunter2@{host_port}/echo?token=SECRET"
    with _plain(server, ca_bundle) as plain, keepwarm.Session(verify=ca_bundle) as session:
        expected = plain.get(url).json()
        assert session.get(url).json() == session.get(url).json() == expected
        adapter: Any = session.get_adapter(url)
        caches: list[Any] = [
            prepare._prepared_urls,
            transport._PATHS,
            transport._ORIGINS,
            pool_module._TARGETS,
            adapter._pool_keys,
        ]
    assert expected["path"] == "/echo?token=SECRET"
    kept = repr([list(cache.items()) for cache in caches])
    for secret in ("hunter2", "SECRET"):
        assert secret not in kept
