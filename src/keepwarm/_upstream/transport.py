# The transport: requests' ``HTTPAdapter`` with keepwarm's pools, TLS cache and limits.
#
# What it changes, and why:
#
# * **Bounded pool wait.** requests never passes a pool timeout to urllib3, so with
#   ``pool_block=True`` a request waits forever for a free connection (requests 3825). Here
#   the wait is bounded by ``pool_timeout`` and ends in :class:`keepwarm.PoolTimeout`.
# * **Shared SSL contexts.** See ``_tls``: the CA bundle is loaded once per process instead
#   of once per connection, and the context is part of the pool key, so connections made
#   with one TLS configuration never serve a request made with another (CVE-2024-35195).
# * **Fork safety.** :meth:`KeepwarmAdapter.reset_after_fork` drops, without closing, every
#   pool inherited from the parent: the child's first request opens its own connection
#   instead of writing into the parent's TLS stream (requests 1906, 4323; urllib3 850).

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar
from requests.exceptions import (
    ConnectionError,
    ConnectTimeout,
    InvalidHeader,
    InvalidSchema,
    InvalidURL,
    ProxyError,
    ReadTimeout,
    RequestException,
    RetryError,
    SSLError,
)
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers, select_proxy
from urllib3 import HTTPHeaderDict
from urllib3._collections import RecentlyUsedContainer
from urllib3.connectionpool import HTTPConnectionPool, port_by_scheme
from urllib3.exceptions import (
    ClosedPoolError,
    ConnectTimeoutError,
    EmptyPoolError,
    LocationValueError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    ResponseError,
    URLSchemeUnknown,
)
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.exceptions import InvalidHeader as Urllib3InvalidHeader
from urllib3.exceptions import ProxyError as Urllib3ProxyError
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.poolmanager import PoolManager, ProxyManager
from urllib3.response import HTTPResponse as Urllib3Response
from urllib3.util import Timeout as Urllib3Timeout

from keepwarm._bounded import keepable, remember
from keepwarm._config import (
    NO_LIMIT,
    OTEL_METRICS_VARIABLE,
    Settings,
    call_timeout,
    urllib3_timeout,
)
from keepwarm._deadline import (
    Deadline,
    DeadlineStop,
    current_deadline,
    doing_when,
    enter_deadline,
    leave_deadline,
)
from keepwarm._exceptions import DeadlineExceeded, NoTimeoutWarning, PoolTimeout
from keepwarm._forks import after_fork_in_child
from keepwarm._guards import warn
from keepwarm._telemetry import METRICS, TIMINGS_ATTRIBUTE, Telemetry, Timings
from keepwarm._upstream.connection import log
from keepwarm._upstream.cookies import extract_cookies
from keepwarm._upstream.hooks import (
    adapter_send_hooked,
    pools_hooked,
    response_init_hooked,
    urlopen_hooked,
)
from keepwarm._upstream.pool import (
    AUTO_POOL_MAXSIZE_CAP,
    InstrumentedHTTPConnectionPool,
    InstrumentedHTTPSConnectionPool,
    PoolPolicy,
    PoolState,
    WatchedHTTPConnectionPool,
    WatchedHTTPSConnectionPool,
    _InstrumentedPool,
    flat_ready,
    parse_keep_alive_timeout,
    socks_pool_classes,
    urlopen_first,
)
from keepwarm._upstream.prepare import case_insensitive_dict
from keepwarm._upstream.session import load_machinery, read_body
from keepwarm._urls import redact_url

if TYPE_CHECKING:
    from keepwarm._stats import Stats
    from keepwarm._upstream import tls as _tls
else:
    # The shared TLS contexts, loaded with the first HTTPS pool key
    # (build_connection_pool_key_attributes): a plain-HTTP program never needs them.
    _tls = None

# read_body runs for every response, whether a keepwarm.Session or keepwarm.mount() on a
# plain requests.Session made this transport: what it uses loads with the transport.
load_machinery()

__all__ = ["KeepwarmAdapter"]

_perf = time.perf_counter


class _PoolDisposer:
    # urllib3's ``dispose_func`` for one adapter's pool managers: counts an evicted pool,
    # then closes it. It holds the adapter weakly: a bound method would close the cycle
    # adapter -> pool manager -> pool container -> method -> adapter, and a session dropped
    # without ``close()`` would keep its sockets open until the cyclic garbage collector
    # ran, not free them at once as requests' own sessions are.

    __slots__ = ("_adapter",)

    def __init__(self, adapter: KeepwarmAdapter) -> None:
        self._adapter = weakref.ref(adapter)

    def __call__(self, pool: Any) -> None:
        adapter = self._adapter()
        state = getattr(pool, "_keepwarm", None)
        counters = state.counters if isinstance(state, PoolState) else None
        if counters is not None and adapter is not None and not adapter._closing:
            counters.add("pools_evicted")
            log.debug("pool.evicted origin=%s", counters.origin)
        pool.close()


class KeepwarmAdapter(HTTPAdapter):
    # An ``HTTPAdapter`` built from :class:`keepwarm._config.Settings`.

    def __init__(self, settings: Settings) -> None:
        if not _metrics_switch.read:
            _metrics_switch.act(settings.strict)
        self.settings = settings
        self._default_timeout = urllib3_timeout(settings.timeout)
        self._default_total = settings.timeout.total
        self.telemetry: Telemetry | None = (
            Telemetry(
                pool_connections=settings.pool_connections,
                pool_maxsize=settings.initial_pool_maxsize,
                read_timeout=settings.read_timeout,
                keepalive_expiry=settings.keepalive_expiry,
            )
            if settings.telemetry
            else None
        )
        self._pool_policy = PoolPolicy(
            wait=settings.pool_timeout if settings.pool_block else None,
            telemetry=self.telemetry,
            grow_to=AUTO_POOL_MAXSIZE_CAP if settings.pool_maxsize == "auto" else 0,
            keepalive_expiry=settings.keepalive_expiry,
            max_age=settings.max_connection_age,
            resend_stale=getattr(settings.max_retries, "resend_stale", True) is not False,
            saturation_guard=settings.strict if settings.guards else None,
        )
        #: HTTP/1.1 pools: for proxies, and everything when HTTP/2 is off.
        self._http1_pool_classes = self._with_policy(
            InstrumentedHTTPConnectionPool, InstrumentedHTTPSConnectionPool
        )
        self._pool_classes = (
            self._with_policy(InstrumentedHTTPConnectionPool, _http2_pool_class())
            if settings.http2
            else self._http1_pool_classes
        )
        self._http2 = settings.http2
        self._socks_pool_classes: dict[str, type[HTTPConnectionPool]] | None = None
        #: Pools of urllib3's own classes, for while a tool hooks urllib3 (see hooks),
        #: built on first use: two classes are ~5 KiB, which most sessions never need.
        self._watched_pool_classes: dict[str, type[HTTPConnectionPool]] | None = None
        self._watched_manager: PoolManager | None = None
        self._watched_proxies: dict[str, PoolManager] = {}
        self._proxy_lock = threading.Lock()
        self._closing = False
        super().__init__(
            pool_connections=settings.pool_connections,
            pool_maxsize=settings.initial_pool_maxsize,
            max_retries=settings.max_retries,
            pool_block=settings.pool_block,
        )
        _live_adapters.add(self)

    def _with_policy(
        self, http_pool: type[HTTPConnectionPool], https_pool: type[HTTPConnectionPool]
    ) -> dict[str, type[HTTPConnectionPool]]:
        # ``pool_classes_by_scheme``: subclasses of the two pools carrying this
        # adapter's :class:`PoolPolicy` (its wait bound, growth cap, expiry and telemetry;
        # urllib3 builds every pool, direct or through a proxy, from the manager's
        # ``pool_classes_by_scheme``), named as urllib3's own pool classes (error messages
        # show the name: ``SOCKSHTTPConnectionPool(host=...)``, as in requests). With
        # telemetry off the connections still track reuse, idleness and whether a request
        # was written (for expiry and the stale-connection retry) but neither time nor
        # count anything.
        attrs = {"_keepwarm_policy": self._pool_policy}
        return {
            scheme: type(_upstream_name(pool), (pool,), attrs)
            for scheme, pool in (("http", http_pool), ("https", https_pool))
        }

    def __getstate__(self) -> dict[str, Any]:
        return {"settings": self.settings}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Rebuilt from its settings: pools, locks and pool classes are not picklable.
        self.__init__(state["settings"])  # type: ignore[misc]

    # Pools ---------------------------------------------------------------------------

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self._instrument(self.poolmanager)
        #: (origin, verify, cert) -> (urllib3 pool key, pool context).
        self._pool_keys: dict[tuple[Any, ...], tuple[Any, dict[str, Any]]] = {}
        #: (urllib3 pool key, pool) of the last pool found by a remembered key.
        self._recent_pool: tuple[Any, Any] | None = None

    def _instrument(self, manager: PoolManager, *, watched: bool = False) -> None:
        if "_socks_options" in manager.connection_pool_kw:
            # urllib3's SOCKSProxyManager: its pools hand every connection the SOCKS
            # options, which only SOCKS connections take; they connect through PySocks.
            # Watched, they stay urllib3's own SOCKS pools (a tool patches those too).
            if not watched:
                manager.pool_classes_by_scheme = self._socks_pools()
        elif watched:
            manager.pool_classes_by_scheme = self._watched_classes()
        else:
            # HTTP/2 goes direct only: through a proxy, HTTP/1.1 (docs/http2.md).
            proxied = isinstance(manager, ProxyManager)
            manager.pool_classes_by_scheme = (
                self._http1_pool_classes if proxied else self._pool_classes
            )
        # urllib3 closes the least recently used host pool when there are more hosts than
        # pool_connections; count those evictions (but not the pools closed by close()).
        manager.pools.dispose_func = _PoolDisposer(self)

    def _socks_pools(self) -> dict[str, type[HTTPConnectionPool]]:
        if self._socks_pool_classes is None:
            self._socks_pool_classes = self._with_policy(*socks_pool_classes())
        return self._socks_pool_classes

    def _watched_classes(self) -> dict[str, type[HTTPConnectionPool]]:
        if self._watched_pool_classes is None:
            self._watched_pool_classes = self._with_policy(
                WatchedHTTPConnectionPool, WatchedHTTPSConnectionPool
            )
        return self._watched_pool_classes

    def _watched_pools(self) -> PoolManager:
        # The pool manager used while a tool hooks a urllib3 point keepwarm's own pools
        # skip: same sizes and policy (counters, pool wait bound, deadline), urllib3's own
        # checkout and connection classes, so whatever the tool put on them runs.
        manager = self._watched_manager
        if manager is None:
            with self._proxy_lock:
                manager = self._watched_manager
                if manager is None:
                    manager = PoolManager(
                        num_pools=self._pool_connections,
                        maxsize=self._pool_maxsize,
                        block=self._pool_block,
                    )
                    self._instrument(manager, watched=True)
                    self._watched_manager = manager
        return manager

    def close(self) -> None:
        self._closing = True
        try:
            with self._proxy_lock:  # proxy_manager_for swaps self.proxy_manager under it
                super().close()
                if self._watched_manager is not None:
                    self._watched_manager.clear()
                for manager in self._watched_proxies.values():
                    manager.clear()
        finally:
            self._closing = False

    def stats(self) -> Stats:
        # A snapshot of this transport's counters (empty when telemetry is off).
        if self.telemetry is not None:
            return self.telemetry.snapshot()
        from keepwarm._stats import Stats  # the read side loads when first read

        return Stats()

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        watched = pools_hooked()
        # requests checks and fills its proxy dict without a lock; two threads meeting
        # the same new proxy would each build a manager and leak one. While a tool hooks
        # urllib3 the managers are built into a dict of their own, with urllib3's pool
        # classes, so the two kinds never serve each other's requests.
        with self._proxy_lock:
            managers = self.proxy_manager
            if watched:
                self.proxy_manager = self._watched_proxies
            try:
                manager = super().proxy_manager_for(proxy, **proxy_kwargs)
            except InvalidSchema as exc:
                if not proxy.lower().startswith("socks"):
                    raise
                # requests says only "Missing dependencies for SOCKS support."
                raise InvalidSchema(
                    f"{exc} socks5:// and socks5h:// proxies need PySocks: "
                    "pip install 'keepwarm[socks]'"
                ) from exc
            finally:
                self.proxy_manager = managers
        if isinstance(manager, PoolManager) and not isinstance(
            manager.pools.dispose_func, _PoolDisposer
        ):
            self._instrument(manager, watched=watched)
        return manager

    def reset_after_fork(self) -> None:
        # Forget the parent's pools without closing them (closing could shut down the
        # parent's TLS sessions); the child opens its own connections from here on.
        self._proxy_lock = threading.Lock()
        self._closing = False
        self.proxy_manager = {}
        self._watched_manager = None
        self._watched_proxies = {}
        if self.telemetry is not None:
            # The child counts its own traffic, from zero.
            self.telemetry.reset_after_fork()
            self.telemetry.reset()
        self.init_poolmanager(self._pool_connections, self._pool_maxsize, self._pool_block)

    def get_connection_with_tls_context(
        self,
        request: PreparedRequest,
        verify: bool | str | None,
        proxies: Mapping[str, str] | None = None,
        cert: Any = None,
    ) -> HTTPConnectionPool:
        # requests' pool lookup, with the pool key remembered per origin and TLS setting.
        #
        # requests parses the URL and normalises a 30-field pool key on every request. Here
        # the key is remembered, and the pool fetched from urllib3's container by it (which
        # keeps its least-recently-used order right). For HTTPS the remembered key is used
        # only while its SSL context is still the current one for the TLS settings (a CA
        # bundle rewritten on disk gets a new context, so new connections at once).
        # Requests through a proxy take requests' own path.
        url = str(request.url)
        if proxies and select_proxy(url, dict(proxies)):
            with _http11_only():
                return super().get_connection_with_tls_context(request, verify, proxies, cert)  # type: ignore[arg-type]
        if pools_hooked():
            with _http11_only():  # urllib3's own pools
                host_params, pool_kwargs = self._pool_key_attributes(request, verify, cert)
            return self._watched_pools().connection_from_host(
                **host_params, pool_kwargs=pool_kwargs
            )
        try:
            cache_key = (_ORIGINS.get(url) or _origin(url), verify, cert)
            entry = self._pool_keys.get(cache_key)
        except TypeError:  # an unhashable cert (a list): no caching
            return super().get_connection_with_tls_context(request, verify, proxies, cert)  # type: ignore[arg-type]
        manager = self.poolmanager
        if entry is not None and (
            "ssl_context" not in entry[1]
            # _tls is loaded once a pool key has keepwarm's context (a subclass's own
            # build_connection_pool_key_attributes may put another there without it).
            or (
                _tls is not None
                and entry[1]["ssl_context"] is _tls.context_for(verify, cert, http2=self._http2)  # type: ignore[arg-type]
            )
        ):
            pool_key = entry[0]
            pools = manager.pools
            recent = self._recent_pool
            if (
                recent is not None
                and recent[0] is pool_key
                and recent[1].pool is not None  # not closed (evicted, replaced, cleared)
                and type(pools) is RecentlyUsedContainer
            ):
                # Already the most recently used in urllib3's container: marking it again
                # (under its lock, hashing the 30-field key twice) would change nothing.
                try:
                    if next(reversed(pools._container)) is pool_key:
                        found: HTTPConnectionPool = recent[1]
                        return found
                except (StopIteration, RuntimeError):  # emptied, or changed meanwhile
                    pass
            try:
                # urllib3's container: marked most recently used, as its get() marks it.
                pool = pools[pool_key]
            except KeyError:
                pool = manager.connection_from_pool_key(pool_key, request_context=dict(entry[1]))
            self._recent_pool = (pool_key, pool)
            return pool
        host_params, pool_kwargs = self._pool_key_attributes(request, verify, cert)
        # urllib3's PoolManager.connection_from_host, keeping the key it computes.
        if not host_params["host"]:
            raise LocationValueError("No host specified.")
        context = manager._merge_pool_kwargs(pool_kwargs)
        context["scheme"] = host_params["scheme"] or "http"
        port = host_params["port"]
        context["port"] = port if port is not None else port_by_scheme.get(context["scheme"], 80)
        context["host"] = host_params["host"]
        scheme = context["scheme"].lower()
        key_fn = manager.key_fn_by_scheme.get(scheme)
        if key_fn is None:
            raise URLSchemeUnknown(scheme)
        pool_key = key_fn(context)
        if keepable(cache_key[0]):  # an origin with userinfo is not kept
            remember(self._pool_keys, cache_key, (pool_key, dict(context)), _POOL_KEY_CACHE_MAX)
        return manager.connection_from_pool_key(pool_key, request_context=context)

    def _pool_key_attributes(
        self, request: PreparedRequest, verify: bool | str | None, cert: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        # :meth:`build_connection_pool_key_attributes`, a bad URL raised as requests
        # raises it (InvalidURL).
        try:
            return self.build_connection_pool_key_attributes(
                request,
                verify,  # type: ignore[arg-type]
                cert,
            )
        except ValueError as e:
            raise InvalidURL(e, request=request) from e

    def request_url(self, request: PreparedRequest, proxies: Mapping[str, str] | None) -> str:
        # _path_url's remembered answer, without the call, for requests' own path_url.
        url = _PATHS.get(request.url) if type(request).path_url is _PATH_URL else None  # type: ignore[arg-type]
        if url is None:
            url = _path_url(request)
        if proxies or url.startswith("//"):
            # A proxy, or a path requests versions treat differently (older ones made
            # "//x" into "/x"): requests' own answer.
            return super().request_url(request, proxies)  # type: ignore[arg-type]
        # Without a proxy, requests sends the path as it is.
        return url

    def build_response(self, req: PreparedRequest, resp: Any) -> Response:
        # requests' ``build_response``, without cookie work for responses that set none,
        # and with the ``Response`` built by :func:`_new_response`.
        headers = _response_headers(getattr(resp, "headers", {}))
        url = req.url.decode("utf-8") if isinstance(req.url, bytes) else req.url
        if not response_init_hooked():
            response = _new_response(
                getattr(resp, "status", None), headers, resp, url, resp.reason, req
            )
        else:  # something replaced requests' own constructor: it runs
            response = Response()
            response.status_code = getattr(resp, "status", None)  # type: ignore[assignment]
            response.headers = headers
            response.encoding = get_encoding_from_headers(headers)
            response.raw = resp
            response.reason = resp.reason
            response.url = url  # type: ignore[assignment]
            response.request = req
        extract_cookies(response.cookies, req, resp)
        response.connection = self
        return response

    # TLS -----------------------------------------------------------------------------

    def build_connection_pool_key_attributes(
        self, request: PreparedRequest, verify: bool | str, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        global _tls
        host_params, _ = super().build_connection_pool_key_attributes(request, verify, cert)
        if host_params["scheme"] != "https":
            return host_params, {}
        if _tls is None:
            from keepwarm._upstream import tls as _tls
        # The context already holds the CA bundle and client certificate: leaving their
        # paths in the pool kwargs would make urllib3 load them again for every connection.
        # HTTP/2 is offered on direct connections (a pool whose server chooses HTTP/1.1
        # stays that origin's pool: http2.H2HTTPSConnectionPool._switch_to_http1).
        http2 = self._http2 and not _PROXIED.get()
        return host_params, {
            "ssl_context": _tls.context_for(verify, cert, http2=http2),
            "cert_reqs": "CERT_REQUIRED" if verify is not False else "CERT_NONE",
        }

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        # requests would copy the CA path and client cert onto the pool here; the pool's
        # context carries them already (see build_connection_pool_key_attributes).
        conn.cert_reqs = "CERT_REQUIRED" if verify is not False else "CERT_NONE"
        conn.ca_certs = None
        conn.ca_cert_dir = None
        conn.cert_file = None
        conn.key_file = None

    # Sending -------------------------------------------------------------------------

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: dict[str, str] | None = None,
    ) -> Response:
        total = None
        if type(timeout) is not Urllib3Timeout:
            # Mounted on a session that is not keepwarm's (keepwarm.mount()), the call's
            # timeout arrives as given: None means this transport's default, and a
            # total bounds this send (a keepwarm.Session resolves both before, and its
            # deadline spans redirects as well).
            timeout, total = call_timeout(timeout, self._default_timeout, self._default_total)
        if timeout is NO_LIMIT and self.settings.guards:
            _no_timeout(request, self.settings.strict)
        # OpenTelemetry metrics on (keepwarm.enable_metrics()): one attribute read when off.
        send = (
            self._send_measured
            if METRICS.request is not None and self.telemetry is not None
            else self._send
        )
        if total is None:
            return send(request, stream, timeout, verify, cert, proxies)
        token = enter_deadline(total, str(request.url))
        try:
            return send(request, stream, timeout, verify, cert, proxies)
        finally:
            leave_deadline(token)

    def _send_measured(
        self,
        request: PreparedRequest,
        stream: bool,
        timeout: Any,
        verify: bool | str,
        cert: Any,
        proxies: dict[str, str] | None,
    ) -> Response:
        # :meth:`_send`, timed for ``http.client.request.duration``: from the call to
        # the response headers, or to the error the caller sees.
        started = _perf()
        try:
            response = self._send(request, stream, timeout, verify, cert, proxies)
        except BaseException as exc:
            record = METRICS.request
            if record is not None:  # metrics may have been turned off meanwhile
                record(request, None, exc, _perf() - started)
            raise
        record = METRICS.request
        if record is not None:
            record(request, response, None, _perf() - started)
        return response

    def _adapter_send(
        self,
        request: PreparedRequest,
        stream: bool,
        timeout: Any,
        verify: bool | str,
        cert: Any,
        proxies: dict[str, str] | None,
    ) -> Response:
        # requests' ``HTTPAdapter.send``, step for step, with three steps cheaper:
        #
        # * the headers go to keepwarm's own pools as a plain ``dict`` of the same pairs
        #   (urllib3's ``urlopen`` copies a ``CaseInsensitiveDict`` key by key through the
        #   Mapping ABCs, then the head is written from the copy); a pool with proxy
        #   headers to merge (an HTTP proxy's), or a pool that is not keepwarm's (urllib3's
        #   own while a tracer or recorder watches them), or a pool whose ``urlopen`` a
        #   tracer wrapped (it reads the headers case-insensitively), gets
        #   ``request.headers`` as requests passes it;
        # * ``add_headers`` (requests' no-op hook) is called only when a subclass overrides it;
        # * a ``urllib3.Timeout`` (what a keepwarm session passes) is recognised first.
        #
        # The exceptions are requests' own, mapped from the same urllib3 errors in the same
        # order (tests/test_faults.py, tests/test_parity.py).
        try:
            conn = self.get_connection_with_tls_context(request, verify, proxies=proxies, cert=cert)
        except LocationValueError as e:
            raise InvalidURL(e, request=request)  # noqa: B904  (as requests raises it)
        self.cert_verify(conn, request.url, verify, cert)  # type: ignore[arg-type]
        url = self.request_url(request, proxies)
        if type(self).add_headers is not HTTPAdapter.add_headers:
            self.add_headers(
                request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies
            )
        request_headers: Any = request.headers
        chunked = not (request.body is None or "Content-Length" in request_headers)
        if type(timeout) is Urllib3Timeout:
            resolved_timeout = timeout
        elif isinstance(timeout, tuple):
            try:
                connect, read = timeout
                resolved_timeout = Urllib3Timeout(connect=connect, read=read)
            except ValueError:
                raise ValueError(  # noqa: B904  (as requests raises it)
                    f"Invalid timeout {timeout}. Pass a (connect, read) timeout tuple, "
                    f"or a single float to set both timeouts to the same value."
                )
        elif isinstance(timeout, Urllib3Timeout):
            resolved_timeout = timeout
        else:
            resolved_timeout = Urllib3Timeout(connect=timeout, read=timeout)
        headers: Any = request_headers
        flat = False
        if (
            type(request_headers) is CaseInsensitiveDict
            and isinstance(conn, _InstrumentedPool)
            and not conn.proxy_headers
            and not urlopen_hooked()
        ):
            headers = dict(request_headers._store.values())
            flat = flat_ready(conn, resolved_timeout, request.body, self.max_retries)
        try:
            if flat:  # the same call, without the layers (pool.urlopen_first)
                resp = urlopen_first(
                    conn,
                    request.method,  # type: ignore[arg-type]
                    url,
                    request.body,
                    headers,
                    self.max_retries,
                    resolved_timeout,
                    chunked,
                )
            else:
                resp = conn.urlopen(
                    method=request.method,  # type: ignore[arg-type]
                    url=url,
                    body=request.body,  # type: ignore[arg-type]
                    headers=headers,
                    redirect=False,
                    assert_same_host=False,
                    preload_content=False,
                    decode_content=False,
                    retries=self.max_retries,
                    timeout=resolved_timeout,
                    chunked=chunked,
                )
        except (ProtocolError, OSError) as err:
            raise ConnectionError(err, request=request)  # noqa: B904  (as requests raises it)
        except MaxRetryError as e:
            if isinstance(e.reason, ConnectTimeoutError) and not isinstance(
                e.reason, NewConnectionError
            ):
                raise ConnectTimeout(e, request=request)  # noqa: B904  (as requests raises it)
            if isinstance(e.reason, ResponseError):
                raise RetryError(e, request=request)  # noqa: B904  (as requests raises it)
            if isinstance(e.reason, Urllib3ProxyError):
                raise ProxyError(e, request=request)  # noqa: B904  (as requests raises it)
            if isinstance(e.reason, Urllib3SSLError):
                raise SSLError(e, request=request)  # noqa: B904  (as requests raises it)
            raise ConnectionError(e, request=request)  # noqa: B904  (as requests raises it)
        except ClosedPoolError as e:
            raise ConnectionError(e, request=request)  # noqa: B904  (as requests raises it)
        except Urllib3ProxyError as e:
            raise ProxyError(e)  # noqa: B904  (as requests raises it)
        except (Urllib3SSLError, Urllib3HTTPError) as e:
            if isinstance(e, Urllib3SSLError):
                raise SSLError(e, request=request)  # noqa: B904  (as requests raises it)
            elif isinstance(e, ReadTimeoutError):
                raise ReadTimeout(e, request=request)  # noqa: B904  (as requests raises it)
            elif isinstance(e, Urllib3InvalidHeader):
                raise InvalidHeader(e, request=request)  # noqa: B904  (as requests raises it)
            else:
                raise
        return self.build_response(request, resp)

    def _send(
        self,
        request: PreparedRequest,
        stream: bool,
        timeout: Any,
        verify: bool | str,
        cert: Any,
        proxies: dict[str, str] | None,
    ) -> Response:
        deadline = current_deadline()
        if deadline is not None and deadline.remaining() <= 0:
            # A redirect hop (or a hook's request) after the deadline passed.
            raise deadline.exceeded("following a redirect", request)
        try:
            if adapter_send_hooked():  # responses' mock, a tracer: theirs runs
                response = super().send(
                    request,
                    stream=stream,
                    timeout=timeout,
                    verify=verify,
                    cert=cert,
                    proxies=proxies,
                )
            else:
                response = self._adapter_send(request, stream, timeout, verify, cert, proxies)
        except DeadlineExceeded:
            raise
        except EmptyPoolError as exc:
            if deadline is not None and deadline.remaining() <= 0:
                raise deadline.exceeded("waiting for a free pooled connection", request) from exc
            if getattr(exc.pool, "_h2_on", False):
                what = "HTTP/2 stream"
                busy = f"every stream the server allows on all {self._pool_maxsize} connections is"
            else:
                what = "connection"
                busy = f"all {self._pool_maxsize} connections of the pool are"
            raise PoolTimeout(
                f"no {what} to {exc.pool.host}:{exc.pool.port} became free within "
                f"pool_timeout={self.settings.pool_timeout:g} s: {busy} busy "
                f"(pool_block=True). Raise pool_maxsize, raise pool_timeout, close "
                f"streamed responses sooner, or set pool_block=False to open extra "
                f"connections instead of waiting.",
                request=request,
            ) from exc
        except RequestException as exc:
            redact_max_retry_error(exc)
            if deadline is not None:
                doing = _deadline_doing(exc, deadline)
                if doing is not None:
                    raise deadline.exceeded(doing, request) from exc
            raise
        keep_alive_header = response.headers._store.get("keep-alive")
        keep_alive = parse_keep_alive_timeout(keep_alive_header[1]) if keep_alive_header else None
        if keep_alive is not None:
            # The server says how long it keeps idle connections: expire ours before.
            state = getattr(getattr(response.raw, "_pool", None), "_keepwarm", None)
            if isinstance(state, PoolState):
                state.keepalive_announced(keep_alive)
                if state.counters is not None:
                    state.counters.on_response(None, keep_alive)
        raw = response.raw
        timings = getattr(raw, TIMINGS_ATTRIBUTE, None)  # timings_of(raw), in place
        if isinstance(timings, Timings):
            retries = (
                raw._retries if type(raw) is Urllib3Response else getattr(raw, "retries", None)
            )
            history = getattr(retries, "history", None)
            timings.retries = len(history) if history else 0
            setattr(response, TIMINGS_ATTRIBUTE, timings)
        if deadline is not None and not stream and not response.is_redirect:
            # Under a total deadline the body is read here, in steps cut to the time
            # left, whoever called: keepwarm's own send would (read_body), but requests'
            # send (a tracer or mock wrapping Session.send, a mounted session) reads it
            # after this returns, each read bounded by the read timeout only. Redirect
            # bodies are left to requests, which ignores their read errors.
            read_body(response)
        return response


def _no_timeout(request: PreparedRequest, strict: bool) -> None:
    warn(
        NoTimeoutWarning,
        f"{request.method} {redact_url(str(request.url))} was sent with timeouts disabled "
        "(keepwarm.NO_TIMEOUT): a server that stops answering holds this thread forever. "
        "Give it a timeout (timeout=(3, 60), or keepwarm.Timeout(connect=3, read=None) to "
        "wait for a slow answer but not for a dead connect), or wrap the call in "
        "keepwarm.silence(keepwarm.NoTimeoutWarning) where waiting forever is meant.",
        strict=strict,
    )


def _deadline_doing(exc: RequestException, deadline: Deadline) -> str | None:
    # What was in progress when *exc* ended a call because its deadline passed; None
    # when the deadline had nothing to do with it (time is left: the error stands).
    inner = exc.args[0] if exc.args else None
    reason = getattr(inner, "reason", None)
    if isinstance(reason, DeadlineStop):
        return reason.doing
    if deadline.remaining() > 0:
        return None
    # requests made exc a ConnectTimeout or ReadTimeout from the same urllib3 error.
    return doing_when(reason if reason is not None else inner, deadline)


def redact_max_retry_error(exc: RequestException) -> None:
    # Take the query values and credentials out of the text of the urllib3
    # ``MaxRetryError`` that requests wraps in ``exc`` (``ConnectionError``, ``RetryError``,
    # ``ProxyError``, ``SSLError``, ``ConnectTimeout``).
    #
    # urllib3 words it ``Max retries exceeded with url: /path?token=SECRET``, and requests
    # shows that text as its own; keepwarm retries where requests does not, so this is the
    # message most keepwarm users see after an outage. The text (``args``, and so ``str``
    # and ``repr``) gets :func:`redact_url`'s form; ``.url`` and ``exc.request`` keep the
    # real URL for code that needs it.
    inner = exc.args[0] if exc.args else None
    if not isinstance(inner, MaxRetryError) or not inner.url:
        return
    url = inner.url
    shown = redact_url(url)
    if shown != url:
        inner.args = tuple(a.replace(url, shown) if isinstance(a, str) else a for a in inner.args)


class _MetricsSwitch:
    # ``KEEPWARM_OTEL_METRICS``, acted on once per process, by the first transport made
    # (whatever made it: a Session, ``keepwarm.session()``, ``install()``, ``mount()``):
    # ``import keepwarm`` loads nothing, and a process that never sends a request through
    # keepwarm (``keepwarm run``'s supervisor) never loads the metrics or OpenTelemetry.

    __slots__ = ("read",)

    def __init__(self) -> None:
        self.read = False

    def act(self, strict: bool) -> None:
        self.read = True
        if os.environ.get(OTEL_METRICS_VARIABLE, "").strip():
            from keepwarm._metrics import enable_from_environment

            enable_from_environment(strict=strict)


_metrics_switch = _MetricsSwitch()


#: Every keepwarm transport alive in this process, mounted on a keepwarm.Session or, by
#: keepwarm.mount(), on any requests.Session: a forked child resets each one.
_live_adapters: weakref.WeakSet[KeepwarmAdapter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for adapter in list(_live_adapters):
        adapter.reset_after_fork()


after_fork_in_child(_after_fork_in_child)


def _upstream_name(pool: type) -> str:
    # The name of the urllib3 pool class ``pool`` extends (shown in error messages).
    return pool.__name__.removeprefix("Instrumented").removeprefix("Watched")


_NO_TIME: Final = timedelta(0)


def _new_response(
    status: Any, headers: CaseInsensitiveDict[str], raw: Any, url: Any, reason: Any, request: Any
) -> Response:
    # ``Response()`` with what ``build_response`` then sets, in one step: requests'
    # ``Response.__init__`` builds a ``CaseInsensitiveDict`` (through the Mapping ABCs)
    # that ``build_response`` replaces at once, and a cookie jar through
    # ``cookiejar_from_dict({})``. The attributes are set in ``__init__``'s order, to the
    # values ``__init__`` and ``build_response`` give them (``elapsed``, a ``timedelta``,
    # is immutable and shared; ``Session.send`` replaces it).
    response: Response = Response.__new__(Response)
    response._content = False
    response._content_consumed = False
    response._next = None
    response.status_code = status
    response.headers = headers
    response.raw = raw
    response.url = url
    item = headers._store.get("content-type")  # _encoding's remembered answer, in place
    encoding = (
        _ENCODINGS.get(item[1], _UNKNOWN_ENCODING)
        if item is not None and type(item[1]) is str
        else _UNKNOWN_ENCODING
    )
    response.encoding = encoding if encoding is not _UNKNOWN_ENCODING else _encoding(headers)
    response.history = []
    response.reason = reason
    response.cookies = RequestsCookieJar()
    response.elapsed = _NO_TIME
    response.request = request
    return response


#: Content-Type value -> requests' ``get_encoding_from_headers`` for it (a pure function of
#: that one value; servers send the same few). Bounded.
_ENCODINGS: dict[str, str | None] = {}
_ENCODINGS_MAX: Final = 256
_UNKNOWN_ENCODING: Final[Any] = object()


def _encoding(headers: CaseInsensitiveDict[str]) -> str | None:
    # ``get_encoding_from_headers(headers)``, remembered per Content-Type value.
    item = headers._store.get("content-type")
    if item is None or type(item[1]) is not str:
        return get_encoding_from_headers(headers)
    content_type = item[1]
    try:
        return _ENCODINGS[content_type]
    except KeyError:
        pass
    encoding = get_encoding_from_headers(headers)
    remember(_ENCODINGS, content_type, encoding, _ENCODINGS_MAX)
    return encoding


def _response_headers(headers: Any) -> CaseInsensitiveDict[str]:
    # ``CaseInsensitiveDict(headers)``, built from urllib3's header store directly when
    # ``headers`` is urllib3's own ``HTTPHeaderDict``: the generic copy goes through the
    # Mapping ABCs, joining each header's values through ``__getitem__``. The result is the
    # same (repeated headers joined with ", ", the first spelling of the name kept).
    if type(headers) is not HTTPHeaderDict:
        return CaseInsensitiveDict(headers)
    store: OrderedDict[str, tuple[str, Any]] = OrderedDict()
    for lower, values in headers._container.items():
        store[lower] = (values[0], ", ".join(values[1:]))
    return case_insensitive_dict(store)


#: Set while the pool for a proxied request (or a watched urllib3 pool) is looked up:
#: those go over HTTP/1.1, so their TLS context must not offer h2.
_PROXIED: contextvars.ContextVar[bool] = contextvars.ContextVar("keepwarm_proxied", default=False)


@contextlib.contextmanager
def _http11_only() -> Iterator[None]:
    # Pools looked up inside get a TLS context that does not offer h2.
    token = _PROXIED.set(True)
    try:
        yield
    finally:
        _PROXIED.reset(token)


def _http2_pool_class() -> type[HTTPConnectionPool]:
    # The HTTP/2 pool class, imported on first use: h2 is an optional extra.
    try:
        from keepwarm._upstream.http2 import H2HTTPSConnectionPool
    except ImportError as exc:
        raise ImportError(
            f"http2=True needs the h2 package, which could not be imported ({exc}): "
            "pip install 'keepwarm[http2]', or leave http2 off"
        ) from exc
    return H2HTTPSConnectionPool


#: More (origin, TLS setting) pairs than this and the cache starts over.
_POOL_KEY_CACHE_MAX = 1024


#: URL -> requests' ``PreparedRequest.path_url`` for it, for URLs without a query or
#: userinfo (``_bounded.keepable``). Bounded.
_PATHS: dict[str, str] = {}
_PATHS_MAX: Final = 256
_PATH_URL: Final = PreparedRequest.path_url


def _path_url(request: PreparedRequest) -> str:
    # ``request.path_url`` (the URL split, its path and query joined again), a pure
    # function of the URL string, remembered for a URL without a query, while the request
    # class has requests' own ``path_url``.
    url = request.url
    if type(url) is not str or type(request).path_url is not _PATH_URL:
        return request.path_url
    path = _PATHS.get(url)
    if path is None:
        path = request.path_url
        if keepable(url):
            remember(_PATHS, url, path, _PATHS_MAX)
    return path


#: URL -> :func:`_origin` of it, for URLs without a query or userinfo (query values and
#: passwords are not kept: ``_bounded.keepable``). Bounded.
_ORIGINS: dict[str, str] = {}
_ORIGINS_MAX: Final = 256


def _origin(url: str) -> str:
    # ``scheme://host:port`` of a URL, by slicing (the key of the pool-key cache),
    # remembered in :data:`_ORIGINS`.
    start = url.find("//")
    end = url.find("/", start + 2) if start >= 0 else -1
    origin = url if end < 0 else url[:end]
    query = origin.find("?")
    if query >= 0:
        return origin[:query]
    if keepable(url):
        remember(_ORIGINS, url, origin, _ORIGINS_MAX)
    return origin
