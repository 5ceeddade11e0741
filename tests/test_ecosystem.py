"""The tools that hook requests and urllib3 see keepwarm's requests (docs/ecosystem.md).

Every test runs the tool with plain ``requests.Session`` and with each keepwarm entry
point (``keepwarm.Session``, ``keepwarm.session()``, ``install()``-ed ``requests.get``,
``keepwarm.mount()`` on a plain ``requests.Session``) against the same local server, and
asserts the same outcome: the tracer's spans, the mock's answer with no traffic, the
recorder's cassette, the cache's hit. Where the request does reach the network, keepwarm's
counters still count it.
"""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import requests
import requests_cache
import requests_mock
import responses
import urllib3.connection
import urllib3.connectionpool
import vcr
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from requests_oauthlib import OAuth2Session

import keepwarm
from children import run_python
from keepwarm._upstream import hooks
from servers import LocalServer

PLAIN = "requests.Session"
ENTRY_POINTS = (PLAIN, "keepwarm.Session", "keepwarm.session()", "install()", "mount()")


@dataclass
class Client:
    name: str
    request: Callable[..., requests.Response]
    #: keepwarm's counters for this entry point (None for plain requests).
    stats: Callable[[], keepwarm.Stats] | None

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", url, **kwargs)


@contextlib.contextmanager
def entry_point(name: str) -> Iterator[Client]:
    """One way of sending requests, closed (or uninstalled) afterwards."""
    if name == "install()":
        keepwarm.install("ecosystem")
        try:
            yield Client(name, requests.request, keepwarm.session("ecosystem").stats)
        finally:
            keepwarm.uninstall()
        return
    session: requests.Session
    if name == PLAIN:
        session = requests.Session()
    elif name == "keepwarm.Session":
        session = keepwarm.Session()
    elif name == "keepwarm.session()":
        session = keepwarm.session("ecosystem")
    else:
        session = keepwarm.mount(requests.Session())
    stats = None if name == PLAIN else (lambda: keepwarm.stats(session))
    with session:
        yield Client(name, session.request, stats)


def counted(client: Client) -> int | None:
    return None if client.stats is None else client.stats().requests


def assert_fast_path_back() -> None:
    """Nothing hooked any more: keepwarm's own path is taken again."""
    assert hooks.send_hook() is None
    assert not hooks.pools_hooked()


# -- OpenTelemetry (and ddtrace, which wraps Session.send the same way) --------------


# ``tracing`` (tests/conftest.py): OpenTelemetry's requests instrumentation, spans kept in
# memory.


def test_opentelemetry_traces_every_entry_point_as_it_traces_requests(
    tracing: InMemorySpanExporter, http_server: LocalServer
) -> None:
    url = http_server.url + "/redirect?to=/"
    seen: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name in ENTRY_POINTS:
        tracing.clear()
        http_server.reset()
        with entry_point(name) as client:
            assert client.get(url).status_code == 200
            # The redirect and its target: one span each, as requests' send is called
            # once per hop.
            assert counted(client) in (None, 2)
        spans = tracing.get_finished_spans()
        seen[name] = [(span.name, dict(span.attributes or {})) for span in spans]
        parents = [r.headers.get("traceparent") for r in http_server.requests]
        assert len(parents) == 2 and all(parents), (name, parents)
        # The header carries the span of the request that sent it.
        ids = {format(span.context.span_id, "016x") for span in spans}
        assert {p.split("-")[2] for p in parents if p} == ids, name
    for name in ENTRY_POINTS:
        assert seen[name] == seen[PLAIN], name


def test_opentelemetry_instrumented_after_the_session_was_built(http_server: LocalServer) -> None:
    """Instrumenting late (the session already exists and is warm) still traces."""
    with keepwarm.Session() as session:
        session.get(http_server.url)
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        instrumentor = RequestsInstrumentor()
        instrumentor.instrument(tracer_provider=provider)
        try:
            session.get(http_server.url)
        finally:
            instrumentor.uninstrument()
        assert len(exporter.get_finished_spans()) == 1
        assert_fast_path_back()
        session.get(http_server.url)
        assert len(exporter.get_finished_spans()) == 1
        assert session.stats().requests == 3
        assert session.stats().reused == 2


# -- requests-mock ------------------------------------------------------------------


def test_requests_mock_answers_every_entry_point_without_traffic(http_server: LocalServer) -> None:
    url = http_server.url + "/mocked?token=1"
    with requests_mock.Mocker() as mocker:
        mocker.get(url, text="from the mock", status_code=201)
        for name in ENTRY_POINTS:
            with entry_point(name) as client:
                response = client.get(url)
                assert (response.status_code, response.text) == (201, "from the mock"), name
                # An address nobody registered fails; it never reaches the network.
                with pytest.raises(requests_mock.NoMockAddress):
                    client.get(http_server.url + "/not-registered")
                assert counted(client) in (None, 0), name
        assert mocker.call_count == 2 * len(ENTRY_POINTS)
    assert http_server.requests_handled == 0
    assert_fast_path_back()


def test_requests_mock_fixture(
    requests_mock: requests_mock.Mocker, http_server: LocalServer
) -> None:
    """The pytest fixture requests-mock registers is a Mocker() started for the test."""
    requests_mock.post(http_server.url + "/x", json={"ok": True})
    for name in ENTRY_POINTS:
        with entry_point(name) as client:
            assert client.request("POST", http_server.url + "/x").json() == {"ok": True}
    assert http_server.requests_handled == 0


def test_requests_mock_real_http_passes_through_keepwarm(http_server: LocalServer) -> None:
    """``real_http=True``: what is not mocked is really sent, through keepwarm's pools."""
    with requests_mock.Mocker(real_http=True) as mocker:
        mocker.get(http_server.url + "/mocked", text="mocked")
        for name in ENTRY_POINTS:
            http_server.reset()
            with entry_point(name) as client:
                assert client.get(http_server.url + "/mocked").text == "mocked"
                assert client.get(http_server.url + "/").text == "ok"
                assert http_server.requests_handled == 1, name
                assert counted(client) in (None, 1), name


def test_requests_mock_on_one_session(http_server: LocalServer) -> None:
    """``Mocker(session=s)`` patches that session only; the others still send."""
    with keepwarm.Session() as mocked, keepwarm.Session() as other, requests.Session() as plain:
        for session in (mocked, plain):
            with requests_mock.Mocker(session=session) as mocker:
                mocker.get(http_server.url + "/", text="mocked")
                assert session.get(http_server.url + "/").text == "mocked"
                assert other.get(http_server.url + "/").text == "ok"
        assert http_server.requests_handled == 2
        assert mocked.get(http_server.url + "/").text == "ok"
        assert mocked.stats().requests == 1


# -- responses (patches HTTPAdapter.send; keepwarm's adapter then calls the patch) -----


def test_responses_answers_every_entry_point_without_traffic(http_server: LocalServer) -> None:
    url = http_server.url + "/mocked"
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(url, body="from responses")
        for name in ENTRY_POINTS:
            with entry_point(name) as client:
                assert client.get(url).text == "from responses", name
        assert len(mock.calls) == len(ENTRY_POINTS)
    assert http_server.requests_handled == 0


# -- vcrpy --------------------------------------------------------------------------


def test_vcrpy_records_then_replays_every_entry_point(
    http_server: LocalServer, tmp_path: pathlib.Path
) -> None:
    url = http_server.url + "/echo?n=1"
    for index, name in enumerate(ENTRY_POINTS):
        cassette = str(tmp_path / f"{index}.yaml")
        http_server.reset()
        with entry_point(name) as client:
            with vcr.use_cassette(cassette, record_mode="once") as recording:
                recorded = client.get(url)
                assert keepwarm.timings(recorded) is None  # urllib3's own pools sent it
            assert len(recording) == 1, name
            assert http_server.requests_handled == 1, name
            assert counted(client) in (None, 1), name
            assert_fast_path_back()
            # Outside the cassette keepwarm's own pools (timed) are used again.
            after = client.get(http_server.url + "/")
            if client.stats is not None:
                assert keepwarm.timings(after) is not None
        http_server.reset()
        with (
            entry_point(name) as client,
            vcr.use_cassette(cassette, record_mode="none") as replay,
        ):
            replayed = client.get(url)
            assert replay.play_count == 1, name
        assert replayed.text == recorded.text, name
        assert http_server.requests_handled == 0, name


def test_vcrpy_replay_never_reaches_the_network_for_an_unrecorded_request(
    http_server: LocalServer, tmp_path: pathlib.Path
) -> None:
    cassette = str(tmp_path / "empty.yaml")
    with vcr.use_cassette(cassette, record_mode="once"):
        pass  # an empty cassette on disk
    for name in ENTRY_POINTS:
        with (
            entry_point(name) as client,
            vcr.use_cassette(cassette, record_mode="none"),
            pytest.raises(vcr.errors.CannotOverwriteExistingCassetteException),
        ):
            client.get(http_server.url + "/")
    assert http_server.requests_handled == 0


# -- requests-cache -----------------------------------------------------------------


@contextlib.contextmanager
def installed_cache() -> Iterator[None]:
    requests_cache.install_cache(backend="memory")
    try:
        yield
    finally:
        requests_cache.uninstall_cache()


@pytest.mark.parametrize("order", ["cache first", "keepwarm first"])
def test_requests_cache_install_cache_with_keepwarm_install(
    http_server: LocalServer, order: str
) -> None:
    url = http_server.url + "/bytes?n=10"
    with installed_cache():  # plain requests: the baseline
        first, second = requests.get(url), requests.get(url)
        assert (first.from_cache, second.from_cache) == (False, True)  # type: ignore[attr-defined]
    assert http_server.requests_handled == 1
    http_server.reset()
    with contextlib.ExitStack() as stack:
        if order == "cache first":
            stack.enter_context(installed_cache())
        keepwarm.install("ecosystem")
        stack.callback(keepwarm.uninstall)
        if order == "keepwarm first":
            stack.enter_context(installed_cache())
        first, second = requests.get(url), requests.get(url)
        assert (first.from_cache, second.from_cache) == (False, True)  # type: ignore[attr-defined]
        assert http_server.requests_handled == 1
        # The miss went through keepwarm's shared pools, which stay open.
        assert keepwarm.session("ecosystem").stats().requests == 1
        requests.get(http_server.url + "/")
        assert keepwarm.session("ecosystem").stats().reused == 1
    assert requests.sessions.Session is hooks.REQUESTS_SESSION


def test_requests_cache_cached_session_mounted(http_server: LocalServer) -> None:
    url = http_server.url + "/bytes?n=10"
    for mounted in (False, True):
        http_server.reset()
        session = requests_cache.CachedSession(backend="memory")
        if mounted:
            keepwarm.mount(session)
        with session:
            assert [session.get(url).from_cache for _ in range(3)] == [False, True, True]
            assert http_server.requests_handled == 1
            if mounted:
                assert keepwarm.stats(session).requests == 1


def test_requests_cache_mixin_with_keepwarm_session(http_server: LocalServer) -> None:
    """``class C(CacheMixin, keepwarm.Session)`` caches and rides keepwarm's pools; its
    ``settings`` attribute is requests-cache's (the first base wins)."""

    class CachedKeepwarmSession(requests_cache.CacheMixin, keepwarm.Session):
        pass

    url = http_server.url + "/bytes?n=10"
    with CachedKeepwarmSession(backend="memory") as session:
        assert [session.get(url).from_cache for _ in range(2)] == [False, True]
        assert http_server.requests_handled == 1
        assert session.stats().requests == 1
        assert isinstance(session.settings, requests_cache.CacheSettings)
        assert session.timeout == keepwarm.Timeout(3, 7)


# -- requests-oauthlib and other Session subclasses ---------------------------------


TOKEN = {"access_token": "secret-access-token", "token_type": "Bearer"}


@pytest.fixture
def insecure_oauth(monkeypatch: pytest.MonkeyPatch) -> None:
    # oauthlib refuses http:// URLs; the local server is plain HTTP on loopback.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.mark.usefixtures("insecure_oauth")
def test_oauth2_session_mounted(http_server: LocalServer) -> None:
    for mounted in (False, True):
        http_server.reset()
        session = OAuth2Session("client-id", token=TOKEN)
        if mounted:
            keepwarm.mount(session)
        with session:
            response = session.get(http_server.url + "/headers")
            assert response.json()["Authorization"] == "Bearer secret-access-token"
            if mounted:
                assert keepwarm.stats(session).requests == 1


@pytest.mark.usefixtures("insecure_oauth")
def test_oauth2_session_subclass_order(http_server: LocalServer) -> None:
    class Good(OAuth2Session, keepwarm.Session):
        pass

    with Good("client-id", token=TOKEN, base_url=http_server.url) as session:
        # OAuth2Session looks at the URL before keepwarm joins base_url: absolute URLs.
        response = session.get(http_server.url + "/headers")
        assert response.json()["Authorization"] == "Bearer secret-access-token"
        assert session.stats().requests == 1

    class Bad(keepwarm.Session, OAuth2Session):
        pass

    with pytest.raises(TypeError, match=r"does not pass keywords on to OAuth2Session.*mount"):
        Bad(client_id="client-id")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"Bad\(OAuth2Session, keepwarm.Session\)"):
        Bad(client_id="client-id", token=TOKEN)  # type: ignore[call-arg]


def test_base_url_is_settable_and_checked(http_server: LocalServer) -> None:
    with keepwarm.Session() as session:
        session.base_url = http_server.url + "/"
        assert len(session.get("bytes?n=3").content) == 3
        assert http_server.requests[-1].path == "/bytes?n=3"
        with pytest.raises(ValueError, match="base_url"):
            session.base_url = "ftp://example.invalid/"
        assert session.base_url == http_server.url + "/"


# -- keepwarm.mount() ---------------------------------------------------------------


def test_mount_gives_the_default_timeout_where_plain_requests_has_none(
    raw_server: Callable[..., Any],
) -> None:
    """A mounted session's ``timeout=None`` gets keepwarm's default (the adapter used to
    drop it); a total bounds the send."""
    from servers import silent

    server = raw_server(silent)
    with (
        keepwarm.mount(requests.Session(), timeout=keepwarm.Timeout(1, 0.3)) as session,
        pytest.raises(requests.exceptions.ReadTimeout),
    ):
        session.get(server.url)
    with (
        keepwarm.mount(requests.Session(), timeout=keepwarm.Timeout(1, 5, total=0.3)) as session,
        pytest.raises(keepwarm.DeadlineExceeded),
    ):
        session.get(server.url)


def test_mount_rejects_what_it_cannot_do() -> None:
    with pytest.raises(TypeError, match=r"requests\.Session"):
        keepwarm.mount(object())  # type: ignore[type-var]
    with keepwarm.Session() as session, pytest.raises(TypeError, match="already"):
        keepwarm.mount(session)
    with requests.Session() as plain:
        with pytest.raises(TypeError, match="base_url"):
            keepwarm.mount(plain, base_url="http://127.0.0.1/")  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="did you mean 'pool_maxsize'"):
            keepwarm.mount(plain, pool_max_size=4)  # type: ignore[call-arg]
        with pytest.raises(ValueError, match="timeout"):
            keepwarm.mount(plain, timeout=-1)


def test_mount_reuses_connections_and_counts(http_server: LocalServer) -> None:
    for mounted in (False, True):
        http_server.reset()
        session = requests.Session()
        if mounted:
            keepwarm.mount(session, pool_maxsize=4)
        with session:
            for _ in range(5):
                assert session.get(http_server.url + "/").text == "ok"
        assert http_server.connections_accepted == 1
        if mounted:
            stats = keepwarm.stats(session)
            assert (stats.requests, stats.reused, stats.connections_opened) == (5, 4, 1)


# -- keepwarm's timeouts, retries and counters while a tool watches ------------------


def test_deadline_and_retries_hold_while_traced(
    tracing: InMemorySpanExporter,
    make_server: Callable[..., LocalServer],
    raw_server: Callable[..., Any],
) -> None:
    """The traced path (requests' own send) keeps keepwarm's total deadline and retry
    policy; plain requests, traced the same, gets the 503 (it does not retry)."""
    from servers import Flaky, silent

    flaky = make_server(Flaky(times=1, status=503))
    with requests.Session() as plain:
        assert plain.get(flaky.url + "/").status_code == 503
    with keepwarm.Session() as session:
        assert session.get(flaky.url + "/echo").status_code == 200
        assert session.stats().retries == 1
    server = raw_server(silent)
    with (
        keepwarm.Session(timeout=keepwarm.Timeout(1, 5, total=0.3)) as session,
        pytest.raises(keepwarm.DeadlineExceeded),
    ):
        session.get(server.url)
    assert tracing.get_finished_spans()


def test_a_wrapt_wrapper_of_session_send_sees_keepwarm(http_server: LocalServer) -> None:
    """ddtrace (and others) wrap ``requests.Session.send`` with wrapt, as here."""
    import wrapt

    calls: list[str] = []

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        request = args[0]
        request.headers["x-traced"] = "1"
        calls.append(type(instance).__name__)
        return wrapped(*args, **kwargs)

    original = requests.Session.send
    wrapt.wrap_function_wrapper("requests.sessions", "Session.send", wrapper)
    try:
        for name in ENTRY_POINTS:
            http_server.reset()
            with entry_point(name) as client:
                client.get(http_server.url + "/")
            assert http_server.requests[0].headers.get("x-traced") == "1", name
    finally:
        requests.sessions.Session.send = original  # type: ignore[method-assign]
    assert len(calls) == len(ENTRY_POINTS)
    assert_fast_path_back()


class _RecordingConnection(urllib3.connection.HTTPConnection):
    """What a recorder puts on urllib3's pool (as vcrpy does): its own connection class."""

    seen: ClassVar[list[str]] = []

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self.seen.append(f"{method} {url}")
        super().request(method, url, *args, **kwargs)


@pytest.fixture
def recording_pools(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    _RecordingConnection.seen = []
    monkeypatch.setattr(
        urllib3.connectionpool.HTTPConnectionPool, "ConnectionCls", _RecordingConnection
    )
    assert hooks.pools_hooked()
    return _RecordingConnection.seen


def test_a_replaced_connection_class_sees_keepwarm_with_its_counters_retries_and_deadline(
    recording_pools: list[str],
    make_server: Callable[..., LocalServer],
    raw_server: Callable[..., Any],
) -> None:
    from servers import Flaky, silent

    flaky = make_server(Flaky(times=1, status=503))
    with requests.Session() as plain:
        assert plain.get(flaky.url + "/").status_code == 503  # requests does not retry
    with keepwarm.Session() as session:
        for _ in range(3):
            assert session.get(flaky.url + "/echo").status_code == 200
        stats = session.stats()
        assert (stats.requests, stats.retries, stats.reused, stats.connections_opened) == (
            4,
            1,
            3,
            1,
        )
    assert recording_pools == ["GET /", "GET /echo", "GET /echo", "GET /echo", "GET /echo"]
    server = raw_server(silent)
    with (
        keepwarm.Session(timeout=keepwarm.Timeout(1, 5, total=0.3)) as session,
        pytest.raises(keepwarm.DeadlineExceeded),
    ):
        session.get(server.url)


def test_the_watched_pools_are_built_only_once_a_tool_hooks_urllib3(
    http_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pools of urllib3's own classes (for a hooked urllib3) cost two classes, ~5 KiB,
    per session: built when first needed, and then the tool sees the requests."""
    from keepwarm._session import transports_of

    _RecordingConnection.seen = []
    with keepwarm.Session() as session:
        assert session.get(http_server.url + "/").status_code == 200
        (transport,) = transports_of(session)
        assert transport._watched_pool_classes is None
        monkeypatch.setattr(
            urllib3.connectionpool.HTTPConnectionPool, "ConnectionCls", _RecordingConnection
        )
        assert session.get(http_server.url + "/echo").status_code == 200
        assert _RecordingConnection.seen == ["GET /echo"]
        built = transport._watched_pool_classes
        assert built is not None
        assert [cls.__name__ for cls in built.values()] == [
            "HTTPConnectionPool",
            "HTTPSConnectionPool",
        ]
        monkeypatch.undo()
        assert session.get(http_server.url + "/echo").status_code == 200
        assert _RecordingConnection.seen == ["GET /echo"]
        assert transport._watched_pool_classes is built


def test_vcrpy_records_requests_sent_through_a_proxy(
    make_server: Callable[..., LocalServer], tmp_path: pathlib.Path
) -> None:
    """Through a proxy, urllib3 builds its pools in a ProxyManager: those are urllib3's
    own while a recorder is active, as without a proxy."""
    from servers import ServerRequest, ServerResponse

    def forward_proxy(request: ServerRequest) -> ServerResponse:  # answers itself
        return ServerResponse.json({"via": "proxy", "target": request.path})

    proxy = make_server(forward_proxy)
    target = "http://service.invalid/data?x=1"
    for index, name in enumerate((PLAIN, "keepwarm.Session", "mount()")):
        cassette = str(tmp_path / f"proxied-{index}.yaml")
        proxy.reset()
        with entry_point(name) as client:
            proxies = {"http": proxy.url}
            with vcr.use_cassette(cassette, record_mode="once") as recording:
                recorded = client.get(target, proxies=proxies).json()
            assert recorded == {"via": "proxy", "target": target}, name
            assert len(recording) == 1 and proxy.requests_handled == 1, name
            # Outside the cassette the same proxy is used through keepwarm's own pools.
            assert client.get(target, proxies=proxies).json() == recorded
            assert counted(client) in (None, 2), name
            if name == PLAIN:
                # Plain requests pooled that real connection in urllib3's pool, which the
                # replay below reuses: vcrpy would take it out and drop it unclosed (a
                # ResourceWarning on CPython 3.10). keepwarm sent it through its own pools.
                client.request.__self__.close()  # type: ignore[attr-defined]  # the Session
            with vcr.use_cassette(cassette, record_mode="none") as replay:
                assert client.get(target, proxies=proxies).json() == recorded
                assert replay.play_count == 1, name
        assert proxy.requests_handled == 2, name


# -- tools set up before keepwarm is imported ----------------------------------------

BEFORE_IMPORT = r"""
import json, sys
import requests, urllib3.connectionpool
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
instrumentor = RequestsInstrumentor()
instrumentor.instrument(tracer_provider=provider)  # as opentelemetry-instrument does

import keepwarm  # after the tracer wrapped requests.Session.send

url = sys.argv[1]
with keepwarm.Session() as session:
    session.get(url).raise_for_status()
    traced = len(exporter.get_finished_spans())
    instrumentor.uninstrument()
    session.get(url).raise_for_status()
    after = len(exporter.get_finished_spans())
    print(json.dumps({
        "traced": traced,
        "after": after,
        "requests": session.stats().requests,
        "timed": keepwarm.timings(session.get(url)) is not None,
    }))
provider.shutdown()
"""


def test_a_tracer_installed_before_keepwarm_is_imported_still_sees_it(
    http_server: LocalServer,
) -> None:
    """``opentelemetry-instrument python app.py`` wraps ``Session.send`` before the app
    imports keepwarm: the wrapper must not be taken for requests' own ``send``."""
    report = run_python(BEFORE_IMPORT, http_server.url + "/")
    # Traced while instrumented; the fast path (timed by keepwarm) once uninstrumented.
    assert report == {"traced": 1, "after": 1, "requests": 2, "timed": True}


# -- sentry-sdk (patches http.client, which keepwarm's connections call) --------------

SENTRY = r"""
import json, sys
import requests, sentry_sdk
from sentry_sdk.transport import Transport
import keepwarm

envelopes = []


class Keep(Transport):  # nothing leaves the process
    def capture_envelope(self, envelope):
        envelopes.append(envelope)


sentry_sdk.init(dsn="http://public@127.0.0.1:9/1", traces_sample_rate=1.0, transport=Keep)
report = {}
for session in (requests.Session(), keepwarm.Session()):
    with session, sentry_sdk.start_transaction(name="job"):
        session.get(sys.argv[1] + "/headers").raise_for_status()
        headers = session.get(sys.argv[1] + "/headers").json()
        sent = {name.lower(): value for name, value in headers.items()}.get("sentry-trace")
    sentry_sdk.flush()
    spans = [
        (span["op"], span["description"].rsplit("/", 1)[-1])
        for envelope in envelopes
        for item in envelope.items
        for span in (item.payload.json or {}).get("spans", [])
    ]
    envelopes.clear()
    report[type(session).__module__.split(".")[0]] = {"spans": spans, "traced": bool(sent)}
print(json.dumps(report))
"""


def test_sentry_sdk_spans_and_trace_header(http_server: LocalServer) -> None:
    report = run_python(SENTRY, http_server.url)
    assert report["keepwarm"] == report["requests"]
    assert report["keepwarm"] == {"spans": [["http.client", "headers"]] * 2, "traced": True}


def test_a_total_deadline_cuts_a_dripped_body_on_the_traced_and_mounted_paths(
    tracing: InMemorySpanExporter,
) -> None:
    """12 body bytes, one every 0.3 s, each read well inside the read timeout: plain
    requests (traced too) takes ~3.6 s; keepwarm's total of 1 s holds where requests'
    own send reads the body (a tracer wraps Session.send; a mounted session)."""
    from servers import RawServer
    from test_deadline import drip_body, timed

    timeout = keepwarm.Timeout(1, 1, total=1)
    with RawServer(drip_body(12, 0.3)) as server:
        with requests.Session() as plain:
            response, plain_elapsed = timed(lambda: plain.get(server.url, timeout=(1, 1)))
        assert isinstance(response, requests.Response) and response.content == b"x" * 12
        assert plain_elapsed >= 3.0
        for session in (
            keepwarm.Session(timeout=timeout),
            keepwarm.mount(requests.Session(), timeout=timeout),
        ):
            with session:
                outcome, elapsed = timed(lambda s=session: s.get(server.url))
            assert type(outcome) is keepwarm.DeadlineExceeded, outcome
            assert "reading the response body" in str(outcome)
            assert elapsed < 2.5
    assert len(tracing.get_finished_spans()) == 3


# -- ddtrace (wraps Session.send; patches the process for good) -----------------------

DDTRACE = r"""
import json, sys
from ddtrace import patch

patch(requests=True)
from ddtrace.trace import tracer
import requests
import keepwarm

report = {}
for session in (requests.Session(), keepwarm.Session()):
    with session, tracer.trace("job") as job:
        headers = session.get(sys.argv[1] + "/headers").json()
    sent = {name.lower(): value for name, value in headers.items()}
    report[type(session).__module__.split(".")[0]] = {
        "names": sorted(name for name in sent if name.startswith("x-datadog-")),
        "same_trace": sent.get("x-datadog-trace-id") == str(job.trace_id & (2**64 - 1)),
    }
print(json.dumps(report))
"""


def test_ddtrace_propagates_through_keepwarm(
    http_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing leaves loopback: the agent address is a closed local port, and ddtrace's
    # telemetry and remote configuration are off.
    monkeypatch.setenv("DD_TRACE_AGENT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("DD_INSTRUMENTATION_TELEMETRY_ENABLED", "false")
    monkeypatch.setenv("DD_REMOTE_CONFIGURATION_ENABLED", "false")
    report = run_python(DDTRACE, http_server.url)
    assert report["keepwarm"] == report["requests"]
    assert report["keepwarm"]["same_trace"] is True
    assert "x-datadog-trace-id" in report["keepwarm"]["names"]
