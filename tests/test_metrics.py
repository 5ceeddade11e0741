"""OpenTelemetry metrics (docs/metrics.md): the real SDK, real sockets on loopback.

Every test that turns metrics on passes a MeterProvider of its own with an
``InMemoryMetricReader`` (the ``reader`` fixture) and turns them off after, so no global
OpenTelemetry state leaks between tests; the environment switch is tested in child
processes.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import keepwarm
import keepwarm._metrics as km
from forking import run_in_child
from keepwarm._telemetry import METRICS
from servers import LocalServer
from servers.h2 import H2Server
from servers.raw import refused_url

TIMEOUT = (5, 10)
REQUEST = "http.client.request.duration"
CONNECTION = "http.client.connection.duration"
OPEN = "http.client.open_connections"
SRC = str(pathlib.Path(keepwarm.__file__).resolve().parent.parent)


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    """Metrics on, through a MeterProvider of this test's; off again after."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    keepwarm.enable_metrics(provider)
    try:
        yield reader
    finally:
        keepwarm.disable_metrics()
        provider.shutdown()


def collect(reader: InMemoryMetricReader, scope: str = "keepwarm") -> dict[str, Any]:
    """The metrics of one instrumentation scope, by name."""
    data = reader.get_metrics_data()
    found: dict[str, Any] = {}
    if data is None:
        return found
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            if scope_metrics.scope.name == scope:
                for metric in scope_metrics.metrics:
                    found[metric.name] = metric
    return found


def points(reader: InMemoryMetricReader, name: str, **match: Any) -> list[Any]:
    """The data points of keepwarm's metric ``name`` whose attributes include ``match``
    (dots in attribute names written as ``__``)."""
    metric = collect(reader).get(name)
    if metric is None:
        return []
    wanted = {key.replace("__", "."): value for key, value in match.items()}
    return [
        p
        for p in metric.data.data_points
        if all(p.attributes.get(k) == v for k, v in wanted.items())
    ]


def open_counts(reader: InMemoryMetricReader, port: int) -> dict[str, int]:
    return {
        p.attributes["http.connection.state"]: p.value
        for p in points(reader, OPEN, server__port=port)
    }


def port_of(server: LocalServer | H2Server) -> int:
    return int(server.url.rsplit(":", 1)[1].split("/")[0])


# -- what is recorded -----------------------------------------------------------------


def test_request_duration_per_request_with_the_conventions_attributes(
    reader: InMemoryMetricReader, http_server: LocalServer
) -> None:
    with keepwarm.Session(timeout=TIMEOUT) as session:
        for _ in range(5):
            assert session.get(f"{http_server.url}/").status_code == 200
    metric = collect(reader)[REQUEST]
    assert metric.unit == "s"
    assert metric.description == "Duration of HTTP client requests."
    (point,) = metric.data.data_points
    assert point.count == 5
    assert point.sum > 0
    assert dict(point.attributes) == {
        "http.request.method": "GET",
        "server.address": "127.0.0.1",
        "server.port": port_of(http_server),
        "url.scheme": "http",
        "http.response.status_code": 200,
        "network.protocol.version": "1.1",
    }
    # The conventions' bucket advice reached the SDK's aggregation.
    assert tuple(point.explicit_bounds) == km.REQUEST_DURATION_BUCKETS


def test_status_errors_unknown_methods_and_https(
    reader: InMemoryMetricReader, https_server: LocalServer, ca_bundle: str
) -> None:
    with keepwarm.Session(timeout=TIMEOUT, verify=ca_bundle, max_retries=0) as session:
        assert session.get(f"{https_server.url}/status/404").status_code == 404
        assert session.request("PURGE", f"{https_server.url}/").status_code == 200
    (missing,) = points(reader, REQUEST, http__response__status_code=404)
    assert missing.attributes["error.type"] == "404"
    assert missing.attributes["url.scheme"] == "https"
    assert missing.attributes["server.port"] == port_of(https_server)
    (purge,) = points(reader, REQUEST, http__request__method="_OTHER")
    assert purge.attributes["http.response.status_code"] == 200
    assert "error.type" not in purge.attributes


def test_a_refused_connection_records_error_type_and_no_status(
    reader: InMemoryMetricReader,
) -> None:
    url = refused_url()
    with (
        keepwarm.Session(timeout=TIMEOUT, max_retries=0) as session,
        pytest.raises(requests.ConnectionError),
    ):
        session.get(url)
    (point,) = points(reader, REQUEST, server__port=int(url.rsplit(":", 1)[1].strip("/")))
    assert point.count == 1
    assert point.attributes["error.type"] == "requests.exceptions.ConnectionError"
    assert "http.response.status_code" not in point.attributes
    assert "network.protocol.version" not in point.attributes
    # No connection was established: none is open, none had a duration.
    assert not points(reader, CONNECTION, server__port=point.attributes["server.port"])


def test_a_pool_timeout_is_reported_by_keepwarm_s_public_name(
    reader: InMemoryMetricReader, http_server: LocalServer
) -> None:
    session = keepwarm.Session(timeout=TIMEOUT, pool_maxsize=1, pool_block=True, pool_timeout=0.1)
    with (
        session,
        session.get(f"{http_server.url}/bytes?n=10", stream=True),
        pytest.raises(keepwarm.PoolTimeout),
    ):
        session.get(f"{http_server.url}/")
    (failed,) = points(reader, REQUEST, error__type="keepwarm.PoolTimeout")
    assert failed.sum >= 0.1  # the wait for a free connection is part of the request
    assert "http.response.status_code" not in failed.attributes


def test_a_failing_recording_never_fails_the_request(
    reader: InMemoryMetricReader, http_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Broken:
        def record(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("exporter bug")

    exporter = km._state.exporter
    assert exporter is not None
    monkeypatch.setattr(exporter, "request_duration", Broken())
    monkeypatch.setattr(exporter, "connection_duration", Broken())
    with keepwarm.Session(timeout=TIMEOUT) as session:
        assert session.get(f"{http_server.url}/").status_code == 200
    # close() closed the connection: its recording failed quietly as well.


def test_no_path_query_or_credentials_reach_an_attribute(
    reader: InMemoryMetricReader, http_server: LocalServer
) -> None:
    host_port = http_server.url.removeprefix("http://")
    url = f"http://alice:hunter2@{host_port}/echo?token=SECRET#frag"
    with keepwarm.Session(timeout=TIMEOUT) as session:
        assert session.get(url).status_code == 200
    values = [
        str(value)
        for metric in collect(reader).values()
        for point in metric.data.data_points
        for value in point.attributes.values()
    ]
    assert values
    text = " ".join(values)
    for secret in ("alice", "hunter2", "SECRET", "token", "echo", "frag"):
        assert secret not in text
    (point,) = points(reader, REQUEST)
    assert point.attributes["server.address"] == "127.0.0.1"
    # Nor does the exporter's cache of origins keep the credentials.
    from keepwarm import _metrics

    exporter = _metrics._state.exporter
    assert exporter is not None
    assert not any("hunter2" in key for key in exporter._origins)


def test_open_connections_match_the_pool(
    reader: InMemoryMetricReader, http_server: LocalServer
) -> None:
    port = port_of(http_server)
    with keepwarm.Session(timeout=TIMEOUT) as session:
        held = [session.get(f"{http_server.url}/bytes?n=10", stream=True) for _ in range(3)]
        assert open_counts(reader, port) == {"active": 3, "idle": 0}
        assert len(held[0].content) == 10  # read to the end: back to the pool
        assert open_counts(reader, port) == {"active": 2, "idle": 1}
        held[1].close()  # closed unread: urllib3 closes its connection
        assert open_counts(reader, port) == {"active": 1, "idle": 1}
        assert len(held[2].content) == 10
        assert open_counts(reader, port) == {"active": 0, "idle": 2}
        assert session.stats().hosts[f"http://127.0.0.1:{port}"].connections_opened == 3
        metric = collect(reader)[OPEN]
        assert metric.unit == "{connection}"
        assert metric.data.is_monotonic is False
        (idle,) = points(reader, OPEN, server__port=port, http__connection__state="idle")
        assert dict(idle.attributes) == {
            "server.address": "127.0.0.1",
            "server.port": port,
            "url.scheme": "http",
            "http.connection.state": "idle",
        }
    # The one closed unread, then close() closed the pool's other two.
    assert open_counts(reader, port) == {"active": 0, "idle": 0}
    (closed,) = points(reader, CONNECTION, server__port=port)
    assert closed.count == 3


def test_connection_duration_when_the_pool_drops_an_idle_connection(
    reader: InMemoryMetricReader, http_server: LocalServer
) -> None:
    port = port_of(http_server)
    with keepwarm.Session(timeout=TIMEOUT, keepalive_expiry=0.05) as session:
        session.get(f"{http_server.url}/")
        assert not points(reader, CONNECTION, server__port=port)
        time.sleep(0.2)
        session.get(f"{http_server.url}/")  # the idle one is expired, a new one opened
        assert session.stats().hosts[f"http://127.0.0.1:{port}"].idle_expired == 1
        metric = collect(reader)[CONNECTION]
        (point,) = points(reader, CONNECTION, server__port=port)
        assert metric.unit == "s"
        assert point.count == 1
        assert point.sum >= 0.2
        assert tuple(point.explicit_bounds) == km.CONNECTION_DURATION_BUCKETS
        assert dict(point.attributes) == {
            "server.address": "127.0.0.1",
            "server.port": port,
            "url.scheme": "http",
            "network.protocol.version": "1.1",
        }
        assert open_counts(reader, port) == {"active": 0, "idle": 1}


def test_a_server_that_closes_the_connection(
    reader: InMemoryMetricReader, make_server: Callable[..., LocalServer]
) -> None:
    """``Connection: close`` from the server: the connection is counted closed at once."""
    server = make_server()
    port = port_of(server)
    with keepwarm.Session(timeout=TIMEOUT) as session:
        for _ in range(2):
            assert session.get(f"{server.url}/close").content == b"ok"
        assert open_counts(reader, port) == {"active": 0, "idle": 0}
        (point,) = points(reader, CONNECTION, server__port=port)
        assert point.count == 2


def test_http2_reports_protocol_version_2(
    reader: InMemoryMetricReader, h2_server: Callable[..., H2Server], ca_bundle: str
) -> None:
    server = h2_server()
    port = port_of(server)
    with keepwarm.Session(http2=True, verify=ca_bundle, timeout=TIMEOUT) as session:
        for _ in range(3):
            assert session.get(f"{server.url}/get").status_code == 200
        (point,) = points(reader, REQUEST, server__port=port)
        assert point.count == 3
        assert point.attributes["network.protocol.version"] == "2"
        assert point.attributes["url.scheme"] == "https"
        assert open_counts(reader, port) == {"active": 0, "idle": 1}
    (closed,) = points(reader, CONNECTION, server__port=port)
    assert closed.count == 1
    assert closed.attributes["network.protocol.version"] == "2"
    assert open_counts(reader, port) == {"active": 0, "idle": 0}


def test_http2_streams_in_flight_make_one_connection_active(
    reader: InMemoryMetricReader, h2_server: Callable[..., H2Server], ca_bundle: str
) -> None:
    server = h2_server()
    port = port_of(server)
    with keepwarm.Session(http2=True, verify=ca_bundle, timeout=TIMEOUT) as session:
        first = session.get(f"{server.url}/bytes/100", stream=True)
        second = session.get(f"{server.url}/bytes/100", stream=True)
        with first, second:
            assert session.stats().connections_opened == 1
            assert open_counts(reader, port) == {"active": 1, "idle": 0}
            assert len(first.content) == 100
            assert open_counts(reader, port) == {"active": 1, "idle": 0}
            assert len(second.content) == 100
        assert open_counts(reader, port) == {"active": 0, "idle": 1}


# -- which sessions -------------------------------------------------------------------


def test_every_kind_of_keepwarm_session_is_exported(
    reader: InMemoryMetricReader, http_server: LocalServer
) -> None:
    url = f"{http_server.url}/"
    keepwarm.session().get(url, timeout=TIMEOUT)
    with keepwarm.mount(requests.Session(), timeout=TIMEOUT) as mounted:
        mounted.get(url)
    keepwarm.install()
    try:
        requests.get(url, timeout=TIMEOUT)
    finally:
        keepwarm.uninstall()
    keepwarm.install(sessions=True)
    try:
        with requests.Session() as library_session:  # a library's own Session
            library_session.get(url, timeout=TIMEOUT)
    finally:
        keepwarm.uninstall()
    with keepwarm.Session(timeout=TIMEOUT) as own:
        own.get(url)
    (point,) = points(reader, REQUEST, server__port=port_of(http_server))
    assert point.count == 5  # each once, whichever way it came


def test_telemetry_false_sessions_are_not_exported(
    reader: InMemoryMetricReader, http_server: LocalServer
) -> None:
    with keepwarm.Session(timeout=TIMEOUT, telemetry=False) as session:
        session.get(f"{http_server.url}/")
        assert not points(reader, REQUEST, server__port=port_of(http_server))
        assert open_counts(reader, port_of(http_server)) == {}


def test_a_forked_child_does_not_export_the_parent_s_connections(
    reader: InMemoryMetricReader, http_server: LocalServer
) -> None:
    port = port_of(http_server)
    with keepwarm.Session(timeout=TIMEOUT) as session:
        held = session.get(f"{http_server.url}/bytes?n=10", stream=True)
        session.get(f"{http_server.url}/")
        assert open_counts(reader, port) == {"active": 1, "idle": 1}

        def child() -> dict[str, Any]:
            before = open_counts(reader, port)
            session.get(f"{http_server.url}/")
            return {"before": before, "after": open_counts(reader, port)}

        seen = run_in_child(child)
        assert seen["before"] == {"active": 0, "idle": 0}
        assert seen["after"] == {"active": 0, "idle": 1}
        # The parent's own counts are untouched by the child.
        assert open_counts(reader, port) == {"active": 1, "idle": 1}
        held.close()


# -- the switch -----------------------------------------------------------------------


def test_off_by_default_nothing_is_recorded(http_server: LocalServer) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        assert not km.metrics_enabled()
        assert METRICS.request is None and METRICS.connection_closed is None
        with keepwarm.Session(timeout=TIMEOUT) as session:
            session.get(f"{http_server.url}/")
        assert collect(reader) == {}
    finally:
        provider.shutdown()


def test_enable_is_idempotent_and_disable_stops_recording(http_server: LocalServer) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    url = f"{http_server.url}/"
    port = port_of(http_server)
    try:
        with keepwarm.Session(timeout=TIMEOUT) as session:
            keepwarm.enable_metrics(provider)
            keepwarm.enable_metrics(provider)
            session.get(url)
            keepwarm.disable_metrics()
            keepwarm.disable_metrics()
            assert not km.metrics_enabled()
            session.get(url)
            # Off: the gauge reports nothing (an SDK keeps the instrument).
            assert open_counts(reader, port) == {}
            keepwarm.enable_metrics(provider)
            session.get(url)
            (point,) = points(reader, REQUEST, server__port=port)
            assert point.count == 2
            assert open_counts(reader, port) == {"active": 0, "idle": 1}
    finally:
        keepwarm.disable_metrics()
        provider.shutdown()


def test_enable_with_another_provider_moves_the_metrics(http_server: LocalServer) -> None:
    first, second = InMemoryMetricReader(), InMemoryMetricReader()
    providers = [MeterProvider(metric_readers=[r]) for r in (first, second)]
    port = port_of(http_server)
    try:
        with keepwarm.Session(timeout=TIMEOUT) as session:
            keepwarm.enable_metrics(providers[0])
            session.get(f"{http_server.url}/")
            keepwarm.enable_metrics(providers[1])
            session.get(f"{http_server.url}/")
            assert points(reader=first, name=REQUEST, server__port=port)[0].count == 1
            assert points(reader=second, name=REQUEST, server__port=port)[0].count == 1
            assert open_counts(first, port) == {}
            assert open_counts(second, port) == {"active": 0, "idle": 1}
    finally:
        keepwarm.disable_metrics()
        for provider in providers:
            provider.shutdown()


def test_known_methods_can_be_listed_in_the_conventions_variable(
    http_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS", "GET,PURGE")
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        keepwarm.enable_metrics(provider)  # reads the variable
        with keepwarm.Session(timeout=TIMEOUT) as session:
            session.request("PURGE", f"{http_server.url}/")
            session.request("POST", f"{http_server.url}/")  # a full override: not known now
        methods = {p.attributes["http.request.method"] for p in points(reader, REQUEST)}
        assert methods == {"PURGE", "_OTHER"}
    finally:
        keepwarm.disable_metrics()
        provider.shutdown()


def test_a_bad_meter_provider_is_refused_with_the_fix() -> None:
    with pytest.raises(TypeError, match=r"MeterProvider.*not str.*None for the global one"):
        keepwarm.enable_metrics("console")  # type: ignore[arg-type]
    assert not km.metrics_enabled()


def test_method_normalisation_and_error_type_names() -> None:
    assert km.normalise_method("GET") == "GET"
    assert km.normalise_method("get") == "_OTHER"  # methods are case-sensitive
    assert km.normalise_method("PURGE") == "_OTHER"
    assert km.normalise_method(None) == "_OTHER"
    assert km.known_methods({"OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS": "GET, PURGE"}) == {
        "GET",
        "PURGE",
    }
    assert km.known_methods({}) == km.KNOWN_METHODS
    assert km.error_type(keepwarm.PoolTimeout("x")) == "keepwarm.PoolTimeout"
    assert km.error_type(requests.ReadTimeout()) == "requests.exceptions.ReadTimeout"
    assert km.error_type(TimeoutError()) == "TimeoutError"


def test_an_api_without_bucket_advice_still_gets_the_histograms() -> None:
    """opentelemetry-api before 1.23 has no ``explicit_bucket_boundaries_advisory``."""

    class OldMeter:
        def __init__(self) -> None:
            self.made: list[str] = []

        def create_histogram(self, name: str, unit: str = "", description: str = "") -> str:
            self.made.append(name)
            return name

    meter = OldMeter()
    assert km._histogram(meter, REQUEST, "d", km.REQUEST_DURATION_BUCKETS) == REQUEST
    assert meter.made == [REQUEST]


def test_a_bad_environment_value_fails_at_the_first_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KEEPWARM_OTEL_METRICS", "maybe")
    km.enable_from_environment()  # what the first transport calls: leaves it to the settings
    assert not km.metrics_enabled()
    with pytest.raises(ValueError, match=r"KEEPWARM_OTEL_METRICS='maybe' is not valid"):
        keepwarm.Session()


def _child(script: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **env, "PYTHONPATH": SRC}
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        check=False,
    )


ENV_SCRIPT = """
import json, sys
import keepwarm  # KEEPWARM_OTEL_METRICS read here
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))  # after the import
with keepwarm.Session(timeout=5) as session:
    session.get(sys.argv[1])
data = reader.get_metrics_data()
names = sorted(
    m.name
    for rm in (data.resource_metrics if data is not None else [])
    for sm in rm.scope_metrics
    if sm.scope.name == "keepwarm"
    for m in sm.metrics
)
print(json.dumps(names))
"""


def test_the_environment_switch_uses_the_global_provider_set_later(
    http_server: LocalServer,
) -> None:
    done = _child(ENV_SCRIPT, {"KEEPWARM_OTEL_METRICS": "1"}, f"{http_server.url}/")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == [CONNECTION, OPEN, REQUEST]
    off = _child(ENV_SCRIPT, {"KEEPWARM_OTEL_METRICS": "0"}, f"{http_server.url}/")
    assert off.returncode == 0, off.stderr
    assert json.loads(off.stdout.splitlines()[-1]) == []


RUN_PROGRAM = """
import json, sys
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
import requests  # plain requests: keepwarm run installs keepwarm under it

reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
with requests.Session() as session:  # a library's own Session
    for _ in range(3):
        session.get(sys.argv[1], timeout=5)
counts = {
    m.name: sum(getattr(p, "count", 0) for p in m.data.data_points)
    for rm in reader.get_metrics_data().resource_metrics
    for sm in rm.scope_metrics
    if sm.scope.name == "keepwarm"
    for m in sm.metrics
}
print(json.dumps(counts))
"""


def test_keepwarm_run_otel_metrics_exports_an_unmodified_program_s_requests(
    http_server: LocalServer,
) -> None:
    """Part 2's ``keepwarm run --otel-metrics``: the program neither imports keepwarm nor
    turns anything on; its requests reach the MeterProvider it sets up."""
    environment = {**os.environ, "PYTHONPATH": SRC, "PYTHONDONTWRITEBYTECODE": "1"}
    program = [sys.executable, "-W", "error", "-c", RUN_PROGRAM, f"{http_server.url}/"]
    done = subprocess.run(
        [sys.executable, "-m", "keepwarm", "run", "--otel-metrics", "--", *program],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout.splitlines()[-1])
    assert counts[REQUEST] == 3
    assert OPEN in counts


WITHOUT_OTEL = """
import json, sys, warnings
sys.modules["opentelemetry"] = None  # as if opentelemetry-api were not installed
import keepwarm
failure = None
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        with keepwarm.Session(timeout=5) as session:  # the first transport reads the switch
            status = session.get(sys.argv[1]).status_code
        keepwarm.Session(timeout=5).close()  # read once per process: no second warning
    except keepwarm.KeepwarmWarning as exc:  # KEEPWARM_STRICT=1
        status, failure = None, str(exc)
try:
    keepwarm.enable_metrics()
    error = None
except ImportError as exc:
    error = str(exc)
print(json.dumps({
    "status": status,
    "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
    "failure": failure,
    "error": error,
}))
"""


@pytest.mark.parametrize("switch", ["", "1", "strict"])
def test_keepwarm_runs_without_opentelemetry(switch: str, http_server: LocalServer) -> None:
    env = {"KEEPWARM_OTEL_METRICS": "1" if switch else ""}
    if switch == "strict":
        env["KEEPWARM_STRICT"] = "1"
    done = _child(WITHOUT_OTEL, env, f"{http_server.url}/")
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert "pip install opentelemetry-api" in seen["error"]
    assert "keepwarm.enable_metrics() needs opentelemetry-api" in seen["error"]
    if switch == "strict":  # strict mode raises what would have been the warning
        assert seen["status"] is None
        assert seen["failure"].startswith("KEEPWARM_OTEL_METRICS=1 asks for")
        return
    assert seen["status"] == 200
    if switch:
        (warning,) = seen["warnings"]
        assert warning.startswith("KeepwarmWarning: KEEPWARM_OTEL_METRICS=1 asks for")
        assert "pip install opentelemetry-api" in warning
        assert "keepwarm runs without metrics" in warning
    else:
        assert seen["warnings"] == []


IMPORTS = """
import json, sys
seen = lambda: sorted(m for m in sys.modules if m.startswith(("opentelemetry", "keepwarm._")))
import keepwarm
loaded = [seen()]
keepwarm.enable_metrics
loaded.append(seen())
print(json.dumps(loaded))
"""


@pytest.mark.parametrize("switch", ["", "1"])
def test_importing_keepwarm_loads_neither_metrics_nor_opentelemetry(switch: str) -> None:
    """``import keepwarm`` loads nothing (issue 16), the switch on or off: it is read by
    the first transport. ``keepwarm.enable_metrics`` loads the module, not OpenTelemetry."""
    done = _child(IMPORTS, {"KEEPWARM_OTEL_METRICS": switch})
    assert done.returncode == 0, done.stderr
    at_import, after = json.loads(done.stdout.splitlines()[-1])
    # Nothing but the package itself: __version__ is loaded on first use too.
    assert at_import == []
    assert "keepwarm._metrics" in after
    assert not [m for m in after if m.startswith("opentelemetry")]


# -- with opentelemetry-instrumentation-requests --------------------------------------


def test_with_the_requests_instrumentation_both_scopes_report(
    reader: InMemoryMetricReader, http_server: LocalServer
) -> None:
    """The instrumentation's metrics come from its own scope; keepwarm's are not counted
    twice, and the instrumentation still sees every call."""
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    instrumentor = RequestsInstrumentor()
    provider = MeterProvider(metric_readers=[reader_ := InMemoryMetricReader()])
    instrumentor.instrument(meter_provider=provider)
    try:
        with keepwarm.Session(timeout=TIMEOUT) as session:
            for _ in range(3):
                session.get(f"{http_server.url}/")
    finally:
        instrumentor.uninstrument()
    try:
        (ours,) = points(reader, REQUEST, server__port=port_of(http_server))
        assert ours.count == 3
        theirs = collect(reader_, "opentelemetry.instrumentation.requests")
        # Old conventions by default (http.client.duration, ms); the new name with
        # OTEL_SEMCONV_STABILITY_OPT_IN=http; both with http/dup.
        names = set(theirs) & {"http.client.duration", REQUEST}
        assert names
        for name in names:
            assert sum(p.count for p in theirs[name].data.data_points) == 3
        assert collect(reader_) == {}  # keepwarm's are in the provider keepwarm was given
    finally:
        provider.shutdown()


def test_threads_record_every_request(
    reader: InMemoryMetricReader, http_server: LocalServer
) -> None:
    with keepwarm.Session(timeout=TIMEOUT) as session:

        def work() -> None:
            for _ in range(10):
                session.get(f"{http_server.url}/")

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        (point,) = points(reader, REQUEST, server__port=port_of(http_server))
        assert point.count == 40
        counts = open_counts(reader, port_of(http_server))
        assert counts["active"] == 0
        assert counts["idle"] == session.stats().hosts[
            f"http://127.0.0.1:{port_of(http_server)}"
        ].connections_opened - (
            session.stats().hosts[f"http://127.0.0.1:{port_of(http_server)}"].discarded
        )
