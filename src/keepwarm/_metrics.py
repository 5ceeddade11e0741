"""OpenTelemetry metrics from keepwarm's counters, per the HTTP client semantic conventions.

Off by default; ``keepwarm.enable_metrics()`` or ``KEEPWARM_OTEL_METRICS=1`` turns them on
(docs/metrics.md). This module is imported on first use; opentelemetry-api, which is
optional, only by ``enable_metrics()``.

Three instruments, on the meter ``keepwarm`` (the instrumentation scope):

* ``http.client.request.duration`` (histogram, s): recorded by the transport's ``send``
  when the response headers arrive or the call fails (``MetricsHooks.request``);
* ``http.client.connection.duration`` (histogram, s): recorded when a connection closes
  (``MetricsHooks.connection_closed``), from the end of its handshakes;
* ``http.client.open_connections`` (asynchronous up-down counter, ``{connection}``):
  computed when the reader collects, from the counters every transport keeps anyway, so
  the request path does nothing for it.

Attributes carry the origin's scheme, host and port and nothing of the rest of the URL:
no path, no query, no userinfo.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from keepwarm.__about__ import __version__
from keepwarm._bounded import keepable, remember
from keepwarm._config import OTEL_METRICS_VARIABLE, otel_metrics_from_environment
from keepwarm._exceptions import KeepwarmWarning
from keepwarm._forks import after_fork_in_child
from keepwarm._guards import warn
from keepwarm._telemetry import METRICS, HostCounters, live_telemetry
from keepwarm._urls import DEFAULT_PORTS

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

__all__ = [
    "CONNECTION_DURATION_BUCKETS",
    "KNOWN_METHODS",
    "REQUEST_DURATION_BUCKETS",
    "SCOPE",
    "disable_metrics",
    "enable_from_environment",
    "enable_metrics",
    "error_type",
    "known_methods",
    "metrics_enabled",
    "normalise_method",
]

#: The instrumentation scope (meter name) keepwarm's instruments are created under.
SCOPE: Final = "keepwarm"

#: The semantic conventions' ``ExplicitBucketBoundaries`` advice for each histogram.
REQUEST_DURATION_BUCKETS: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
CONNECTION_DURATION_BUCKETS: Final = (
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
)

#: The methods of RFC 9110 and PATCH (RFC 5789): any other ``http.request.method`` is
#: reported as ``_OTHER``, unless ``OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`` (read by
#: ``enable_metrics()``) lists the methods to know instead.
KNOWN_METHODS: Final = frozenset(
    ("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE")
)
_KNOWN_METHODS_VARIABLE: Final = "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS"

#: urllib3's response ``version`` -> ``network.protocol.version``.
_PROTOCOL_VERSIONS: Final = {10: "1.0", 11: "1.1", 20: "2"}
#: More origins than this and the parsed-origin cache starts over.
_ORIGIN_CACHE_MAX: Final = 1024

_log = logging.getLogger("keepwarm")

_PIP_HINT: Final = "pip install opentelemetry-api (or pip install 'keepwarm[otel]')"


def known_methods(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The methods reported by name: ``OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`` (a
    comma-separated, case-sensitive full list, as the conventions define it) or
    :data:`KNOWN_METHODS`."""
    environ = os.environ if environ is None else environ
    listed = environ.get(_KNOWN_METHODS_VARIABLE, "")
    methods = frozenset(m.strip() for m in listed.split(",") if m.strip())
    return methods or KNOWN_METHODS


def normalise_method(method: str | None, known: frozenset[str] = KNOWN_METHODS) -> str:
    """``http.request.method``: the method if known (exactly: methods are
    case-sensitive), else ``_OTHER``."""
    return method if method is not None and method in known else "_OTHER"


def error_type(error: BaseException) -> str:
    """``error.type`` of a failed call: the exception's fully qualified class name
    (keepwarm's own by their public name, ``keepwarm.PoolTimeout``)."""
    cls = type(error)
    module = cls.__module__
    if module.startswith("keepwarm._"):
        module = "keepwarm"
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


class _Exporter:
    """keepwarm's instruments on one MeterProvider, and what records into them."""

    def __init__(self, provider: MeterProvider) -> None:
        meter = provider.get_meter(SCOPE, __version__)
        self.request_duration = _histogram(
            meter,
            "http.client.request.duration",
            "Duration of HTTP client requests.",
            REQUEST_DURATION_BUCKETS,
        )
        self.connection_duration = _histogram(
            meter,
            "http.client.connection.duration",
            "The duration of the successfully established outbound HTTP connections.",
            CONNECTION_DURATION_BUCKETS,
        )
        self.open_connections = meter.create_observable_up_down_counter(
            "http.client.open_connections",
            callbacks=[self.observe_open_connections],
            unit="{connection}",
            description=(
                "Number of outbound HTTP connections that are currently active or idle "
                "on the client."
            ),
        )
        self.known = KNOWN_METHODS
        self._origins: dict[str, tuple[str, str, int]] = {}

    # The request path (MetricsHooks) -------------------------------------------------

    def record_request(
        self, request: Any, response: Any, error: BaseException | None, seconds: float
    ) -> None:
        try:
            self._record_request(request, response, error, seconds)
        except Exception as exc:  # a metric never fails the request it measures
            _log.debug("metrics.record_failed metric=request error=%s", type(exc).__name__)

    def _record_request(
        self, request: Any, response: Any, error: BaseException | None, seconds: float
    ) -> None:
        scheme, host, port = self._origin(str(request.url))
        attributes: dict[str, Any] = {
            "http.request.method": normalise_method(request.method, self.known),
            "server.address": host,
            "server.port": port,
            "url.scheme": scheme,
        }
        if response is not None:
            status = response.status_code
            if type(status) is int:
                attributes["http.response.status_code"] = status
                if status >= 400:
                    attributes["error.type"] = str(status)
            version = _PROTOCOL_VERSIONS.get(getattr(response.raw, "version", 0))
            if version is not None:
                attributes["network.protocol.version"] = version
        elif error is not None:
            attributes["error.type"] = error_type(error)
        self.request_duration.record(seconds, attributes)

    def record_connection(self, counters: HostCounters, seconds: float, version: str) -> None:
        try:
            attributes = dict(_origin_attributes(counters))
            attributes["network.protocol.version"] = version
            self.connection_duration.record(seconds, attributes)
        except Exception as exc:  # nor the close it measures
            _log.debug("metrics.record_failed metric=connection error=%s", type(exc).__name__)

    def _origin(self, url: str) -> tuple[str, str, int]:
        """(scheme, host, port) of a URL, the host without userinfo or IPv6 brackets;
        remembered per origin (the part before the path) without userinfo or query."""
        start = url.find("//")
        end = url.find("/", start + 2) if start >= 0 else -1
        key = url if end < 0 else url[:end]
        found = self._origins.get(key)
        if found is None:
            found = _parse_origin(url)
            if keepable(key):  # not an origin with userinfo, nor a query after no path
                remember(self._origins, key, found, _ORIGIN_CACHE_MAX)
        return found

    # Collection ----------------------------------------------------------------------

    def observe_open_connections(self, options: CallbackOptions) -> Iterable[Observation]:
        """Open connections per origin and state, from every live transport's counters.

        ``active``: connections checked out for a request (one per request in flight,
        at most the connections open); ``idle``: the rest of the open ones, pooled.
        Nothing while this exporter is not the one turned on."""
        from opentelemetry.metrics import Observation

        if _state.exporter is not self:
            return []
        # Per origin (the same one may have counters in several transports): its
        # attributes, and [active, idle].
        totals: dict[tuple[str, str, int | None], tuple[dict[str, Any], list[int]]] = {}
        for telemetry in live_telemetry():
            for counters in telemetry.hosts():
                if not counters.scheme:
                    continue
                opened, in_flight = counters.open_connections, counters.in_flight
                active = min(opened, in_flight)
                key = (counters.scheme, counters.host, counters.port)
                entry = totals.get(key)
                if entry is None:
                    entry = totals[key] = (_origin_attributes(counters), [0, 0])
                entry[1][0] += active
                entry[1][1] += opened - active
        observations = []
        for base, (active, idle) in totals.values():
            observations.append(Observation(active, {**base, "http.connection.state": "active"}))
            observations.append(Observation(idle, {**base, "http.connection.state": "idle"}))
        return observations


def _histogram(meter: Any, name: str, description: str, buckets: tuple[float, ...]) -> Any:
    """A histogram in seconds with the conventions' bucket advice; an opentelemetry-api
    older than 1.23 takes no advice, and gets the histogram without it (the SDK's default
    buckets, or a View's)."""
    try:
        return meter.create_histogram(
            name, unit="s", description=description, explicit_bucket_boundaries_advisory=buckets
        )
    except TypeError:
        return meter.create_histogram(name, unit="s", description=description)


def _origin_attributes(counters: HostCounters) -> dict[str, Any]:
    attributes = counters.metric_attributes
    if attributes is None:
        port = counters.port
        attributes = counters.metric_attributes = {
            "server.address": counters.host,
            "server.port": port if port is not None else DEFAULT_PORTS.get(counters.scheme, 80),
            "url.scheme": counters.scheme,
        }
    return attributes


def _parse_origin(url: str) -> tuple[str, str, int]:
    from urllib3.util import parse_url

    try:
        parsed = parse_url(url)
    except ValueError:
        return ("", "", 0)
    scheme = (parsed.scheme or "http").lower()
    host = parsed.host or ""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port = parsed.port if parsed.port is not None else DEFAULT_PORTS.get(scheme, 80)
    return scheme, host, port


class _State:
    """Which exporter is on (None: metrics off), and the exporters made so far, one per
    MeterProvider: an SDK keeps the first instruments made under a name (and their
    callbacks), so turning metrics on again for a provider reuses its exporter."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.exporter: _Exporter | None = None
        self.provider: object = None
        self.exporters: weakref.WeakKeyDictionary[Any, _Exporter] = weakref.WeakKeyDictionary()


_state = _State()


def _after_fork_in_child() -> None:
    # Another thread may have held the lock at fork(); it does not exist here.
    _state.lock = threading.Lock()


after_fork_in_child(_after_fork_in_child)


def enable_metrics(meter_provider: MeterProvider | None = None) -> None:
    """Export keepwarm's counters as OpenTelemetry metrics (HTTP client semantic
    conventions) through ``meter_provider``; None: the global one
    (``opentelemetry.metrics.get_meter_provider()``, which forwards to the provider the
    application sets later). Calling it again with the same provider does nothing; with
    another, metrics go there instead. Needs opentelemetry-api."""
    try:
        from opentelemetry import metrics
    except ImportError as exc:
        raise ImportError(
            f"keepwarm.enable_metrics() needs opentelemetry-api, which could not be "
            f"imported ({exc}): {_PIP_HINT}"
        ) from exc
    if meter_provider is None:
        meter_provider = metrics.get_meter_provider()
    elif not callable(getattr(meter_provider, "get_meter", None)):
        raise TypeError(
            "keepwarm.enable_metrics(meter_provider=...) takes an OpenTelemetry "
            f"MeterProvider (an object with get_meter()), not {type(meter_provider).__name__}; "
            "pass None for the global one"
        )
    known = known_methods()
    with _state.lock:
        if _state.exporter is not None and _state.provider is meter_provider:
            _state.exporter.known = known
            return
        exporter = _exporter_for(meter_provider)
        exporter.known = known
        _state.exporter = exporter
        _state.provider = meter_provider
        METRICS.connection_closed = exporter.record_connection
        METRICS.request = exporter.record_request


def _exporter_for(provider: Any) -> _Exporter:
    try:
        exporter = _state.exporters.get(provider)
    except TypeError:  # a provider that cannot be weakly referenced
        return _Exporter(provider)
    if exporter is None:
        exporter = _Exporter(provider)
        try:
            _state.exporters[provider] = exporter
        except TypeError:
            pass
    return exporter


def disable_metrics() -> None:
    """Stop exporting: requests are no longer timed for metrics, and the open-connection
    gauge reports nothing. Does nothing when metrics are off."""
    with _state.lock:
        METRICS.request = None
        METRICS.connection_closed = None
        _state.exporter = None
        _state.provider = None


def metrics_enabled() -> bool:
    """Whether keepwarm exports OpenTelemetry metrics now."""
    return _state.exporter is not None


def enable_from_environment(*, strict: bool = False) -> None:
    """``KEEPWARM_OTEL_METRICS=1``: metrics on, through the global MeterProvider. Called
    once per process, when the first keepwarm transport is made (``transport``): not at
    ``import keepwarm``, which loads nothing until a name is used.

    Without opentelemetry-api: one ``KeepwarmWarning`` at the user's line that made the
    session (raised instead under ``strict``), and no metrics: a monitoring switch does
    not stop the program. A value that is neither a yes nor a no is left to the session's
    settings, which raise ValueError for it as for any bad ``KEEPWARM_*`` value."""
    try:
        wanted = otel_metrics_from_environment()
    except ValueError:
        return
    if not wanted:
        return
    try:
        enable_metrics()
    except ImportError as exc:
        warn(
            KeepwarmWarning,
            f"{OTEL_METRICS_VARIABLE}={os.environ.get(OTEL_METRICS_VARIABLE)} asks for "
            f"OpenTelemetry metrics, but opentelemetry-api could not be imported "
            f"({exc.__cause__ or exc}): {_PIP_HINT}. keepwarm runs without metrics.",
            strict=strict,
        )
