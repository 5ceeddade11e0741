# urllib3 connections that count and time what they do.
#
# The connection classes time name resolution, the TCP and TLS handshakes, sending the
# request and waiting for the response headers, and report to the
# :class:`keepwarm._telemetry.HostCounters` of their origin. Everything keepwarm keeps on a
# connection is one typed object, :class:`ConnState`, in the ``_keepwarm`` attribute; each
# response carries its :class:`keepwarm._telemetry.Timings` (see
# :func:`keepwarm._telemetry.timings_of`).
#
# Events are logged to the ``keepwarm`` logger at DEBUG, named in one scheme like
# httpcore's: ``connection.connect_tcp.started/complete/failed``,
# ``connection.start_tls.complete/failed``, ``connection.reused``. They carry the origin
# and durations only: never headers, query strings or credentials.

from __future__ import annotations

import heapq
import http.client
import itertools
import logging
import select
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final, TypeVar

import urllib3.connection
from urllib3 import HTTPHeaderDict
from urllib3.connection import HTTPConnection, HTTPSConnection, _url_from_connection
from urllib3.exceptions import (
    ConnectTimeoutError,
    HeaderParsingError,
    LocationParseError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.response import BaseHTTPResponse, BytesQueueBuffer, HTTPResponse
from urllib3.util import connection as _uconn
from urllib3.util import wait as _wait
from urllib3.util.connection import _set_socket_options, is_connection_dropped
from urllib3.util.response import assert_header_parsing
from urllib3.util.timeout import _DEFAULT_TIMEOUT

from keepwarm._deadline import Deadline, current_deadline
from keepwarm._forks import after_fork_in_child
from keepwarm._telemetry import METRICS, TIMINGS_ATTRIBUTE, HostCounters, Timings
from keepwarm._upstream.hooks import getresponse_hooked, urllib3_response_init_hooked
from keepwarm._upstream.wire import (
    FastHeadersHTTPResponse,
    PlainHTTPMessage,
    write_request,
)
from keepwarm._urls import is_ip

__all__ = [
    "ConnState",
    "InstrumentedHTTPConnection",
    "InstrumentedHTTPSConnection",
    "InstrumentedSOCKSConnectionMixin",
    "connection_closed",
    "header_dict",
    "log",
    "named_as",
]

log = logging.getLogger("keepwarm")
_perf = time.perf_counter
_T = TypeVar("_T", bound=type)


class ConnState:
    # What keepwarm keeps on one urllib3 connection (its ``_keepwarm`` attribute).

    __slots__ = (
        "connected_at",
        "counters",
        "fresh",
        "generation",
        "idle_since",
        "open",
        "poller",
        "sent_at",
        "tcp_done",
        "timings",
        "tls",
        "written",
    )

    def __init__(self, tls: bool) -> None:
        #: Whether connecting includes a TLS handshake.
        self.tls = tls
        #: The origin's counters, set by the pool at checkout (None: telemetry off).
        self.counters: HostCounters | None = None
        #: The timings of the request under way (None: telemetry off, or between requests).
        self.timings: Timings | None = None
        #: Connected, and no request written on this connection yet.
        self.fresh = False
        #: Whether the last request was written whole (urllib3 swallows a reset while
        #: writing, to read an early response; the stale-connection retry needs to know).
        self.written = False
        #: When the connection went back to its pool (None: never idle yet).
        self.idle_since: float | None = None
        #: Counted in its counters' open connections (until :func:`connection_closed`),
        #: in that generation of them (see ``HostCounters.generation``).
        self.open = False
        self.generation = 0
        #: perf_counter() marks: connected (TCP and TLS), TCP done, request written.
        self.connected_at = 0.0
        self.tcp_done: float | None = None
        self.sent_at: float | None = None
        #: (socket, ``select.poll`` object watching it for input): see :func:`dropped`.
        self.poller: tuple[socket.socket, Any] | None = None


def dropped(conn: Any) -> bool:
    # urllib3's ``is_connection_dropped(conn)`` (``not conn.is_connected``: no socket, or
    # input waiting on an idle one, which is the server's close or stray bytes), with the
    # ``select.poll`` object kept on the connection for its socket: urllib3's
    # ``poll_wait_for_socket`` builds one and registers the socket on every checkout. Only
    # while urllib3 itself has chosen poll (``wait_for_socket``; under gevent it chooses
    # select) and the connection class has urllib3's own ``is_connected``; otherwise
    # urllib3's check runs.
    sock = conn.sock
    if (
        _wait.wait_for_socket is not _wait.poll_wait_for_socket
        or type(conn).is_connected is not _IS_CONNECTED
        or sock is None
    ):
        return is_connection_dropped(conn)
    state: ConnState = conn._keepwarm
    poller = state.poller
    if poller is None or poller[0] is not sock:
        watch = select.poll()
        watch.register(sock, select.POLLIN)
        poller = state.poller = (sock, watch)
    return bool(poller[1].poll(0))


_IS_CONNECTED: Final = HTTPConnection.__dict__["is_connected"]


def connection_closed(state: ConnState, version: str) -> None:
    # A connection counted open (``state.open``) closed: count it down, and report how
    # long it was open to the metrics hook (when metrics are on). Once per connect.
    if not state.open:
        return
    state.open = False
    counters = state.counters
    if counters is None:
        return
    counters.on_close(state.generation)
    hook = METRICS.connection_closed
    if hook is not None and state.generation == counters.generation:
        hook(counters, _perf() - state.connected_at, version)


def _urllib3_create_connection() -> Callable[..., socket.socket] | None:
    # ``urllib3.util.connection.create_connection`` if it is still urllib3's own function
    # (its code in urllib3's module: not a replacement, nor a wrapper made before keepwarm
    # was imported); None if a DNS recipe had replaced it already.
    create = _uconn.create_connection
    code = getattr(create, "__code__", None)
    if code is not None and code.co_filename == _uconn.__file__:
        return create
    return None


#: urllib3's ``create_connection`` as keepwarm found it: while the module attribute is
#: still this function, keepwarm's copy (:func:`_timed_new_conn`) stands in for it.
_URLLIB3_CREATE_CONNECTION: Final = _urllib3_create_connection()


def _timed_new_conn(conn: HTTPConnection, state: ConnState) -> socket.socket:
    # urllib3's ``HTTPConnection._new_conn`` and ``create_connection``, with the name
    # resolution and TCP handshake timed apart (urllib3 does both in one call).
    #
    # DNS recipes reach it as they reach urllib3: ``allowed_gai_family`` (which reads
    # ``HAS_IPV6``) is looked up on ``urllib3.util.connection`` and ``getaddrinfo`` on
    # ``socket`` at each call, and a replaced ``urllib3.util.connection.create_connection``
    # is called instead of this copy (:func:`_new_conn_by`).
    create = _uconn.create_connection
    if create is not _URLLIB3_CREATE_CONNECTION:
        return _new_conn_by(create, conn, state)
    host: str = conn._dns_host
    port = conn.port
    if host.startswith("["):
        host = host.strip("[]")
    try:
        host.encode("idna")
    except UnicodeError:
        raise LocationParseError(f"'{host}', label empty or too long") from None
    origin = f"{conn.host}:{port}"
    started = _perf()
    if log.isEnabledFor(logging.DEBUG):
        log.debug("connection.connect_tcp.started origin=%s", origin)
    deadline = current_deadline()
    try:
        if deadline is None or is_ip(host):
            infos = socket.getaddrinfo(host, port, _uconn.allowed_gai_family(), socket.SOCK_STREAM)
        else:
            infos = _resolve_by_deadline(conn, host, port, deadline)
    except socket.gaierror as e:
        log.debug("connection.connect_tcp.failed origin=%s error=name_resolution", origin)
        raise NameResolutionError(conn.host, conn, e) from e
    resolved = _perf()
    error: OSError | None = None
    sock: socket.socket | None = None
    for family, socktype, proto, _canonname, address in infos:
        try:
            sock = socket.socket(family, socktype, proto)
            _set_socket_options(sock, conn.socket_options)
            # Resolution took some of the time the attempt was given.
            timeout = _connect_timeout(conn, deadline)
            if timeout is not _DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if conn.source_address:
                sock.bind(conn.source_address)
            sock.connect(address)
            error = None
            break
        except OSError as e:
            error = e
            if sock is not None:
                sock.close()
                sock = None
    if sock is None:
        failure = error or OSError("getaddrinfo returns an empty list")
        log.debug(
            "connection.connect_tcp.failed origin=%s error=%s", origin, type(failure).__name__
        )
        if isinstance(failure, TimeoutError):
            raise ConnectTimeoutError(
                conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})"
            ) from failure
        raise NewConnectionError(
            conn, f"Failed to establish a new connection: {failure}"
        ) from failure
    _connected(conn, state, origin, started, None if is_ip(host) else resolved)
    return sock


def _connect_timeout(conn: HTTPConnection, deadline: Deadline | None) -> Any:
    # The connect timeout of ``conn``, cut to the time a call's deadline leaves.
    timeout: Any = conn.timeout
    if deadline is not None:
        left = max(deadline.remaining(), 0.001)
        timeout = left if timeout in (None, _DEFAULT_TIMEOUT) else min(timeout, left)
    return timeout


def _connected(
    conn: HTTPConnection, state: ConnState, origin: str, started: float, resolved: float | None
) -> None:
    # What follows a TCP connect: urllib3's audit event, the timings (``resolved`` None:
    # no lookup keepwarm could see, so it is all connect time) and the debug event.
    connected = _perf()
    sys.audit("http.client.connect", conn, conn.host, conn.port)
    timings = state.timings
    if timings is not None:
        timings.dns = None if resolved is None else resolved - started
        timings.connect = connected - (started if resolved is None else resolved)
    state.tcp_done = connected
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "connection.connect_tcp.complete origin=%s seconds=%.6f", origin, connected - started
        )


def _new_conn_by(
    create: Callable[..., socket.socket], conn: HTTPConnection, state: ConnState
) -> socket.socket:
    # urllib3's ``HTTPConnection._new_conn`` as it is, for a ``create_connection`` that
    # replaced urllib3's (forced IPv4, custom DNS, a fixed address): called with the same
    # arguments, its errors mapped to the same urllib3 exceptions. The replacement resolves
    # and connects in one call, so that is timed as the connect (``Timings.dns`` is None:
    # keepwarm cannot tell the two apart). Under a deadline the timeout it gets is cut to the
    # time left, as keepwarm's own connect is; a lookup inside it is not bounded (keepwarm
    # does not see it).
    origin = f"{conn.host}:{conn.port}"
    started = _perf()
    if log.isEnabledFor(logging.DEBUG):
        log.debug("connection.connect_tcp.started origin=%s", origin)
    timeout = _connect_timeout(conn, current_deadline())
    try:
        sock = create(
            (conn._dns_host, conn.port),
            timeout,
            source_address=conn.source_address,
            socket_options=conn.socket_options,
        )
    except socket.gaierror as e:
        log.debug("connection.connect_tcp.failed origin=%s error=name_resolution", origin)
        raise NameResolutionError(conn.host, conn, e) from e
    except TimeoutError as e:
        log.debug("connection.connect_tcp.failed origin=%s error=%s", origin, type(e).__name__)
        raise ConnectTimeoutError(
            conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})"
        ) from e
    except OSError as e:
        log.debug("connection.connect_tcp.failed origin=%s error=%s", origin, type(e).__name__)
        raise NewConnectionError(conn, f"Failed to establish a new connection: {e}") from e
    _connected(conn, state, origin, started, None)
    return sock


def _resolve_by_deadline(
    conn: HTTPConnection, host: str, port: int, deadline: Deadline
) -> list[Any]:
    # ``socket.getaddrinfo`` bounded by the time the call's deadline leaves.
    #
    # ``getaddrinfo`` takes no timeout and cannot be interrupted (the system resolver
    # retries on its own schedule: glibc waits 5 s per attempt and server, so an
    # unanswered name takes 10 s and more), and urllib3's connect timeout starts after it.
    # With a deadline, the lookup runs in a daemon thread and the call waits for it only
    # as long as the deadline allows; a lookup that outlasts the call finishes in the
    # background and is dropped. Only for names under a deadline: IP literals and calls
    # without a total resolve inline, as before (no thread).
    family = _uconn.allowed_gai_family()
    result: list[Any] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            result.extend(socket.getaddrinfo(host, port, family, socket.SOCK_STREAM))
        except BaseException as e:  # handed to the waiting thread
            failure.append(e)
        finally:
            done.set()

    threading.Thread(target=lookup, name=f"keepwarm-resolve-{host}", daemon=True).start()
    if not done.wait(max(deadline.remaining(), 0.0)):
        deadline.doing = f"resolving {host}"
        raise ConnectTimeoutError(
            conn,
            f"Resolving {host} took longer than the time the call had left "
            f"(total={deadline.total:g} s)",
        )
    if failure:
        raise failure[0]
    return result


#: urllib3's logger for a response head it cannot parse (its getresponse logs there).
_urllib3_log: Final = logging.getLogger(urllib3.connection.__name__)
#: urllib3 2.8 unfolds obsolete line folding in header values (``_normalize_header_values``);
#: earlier releases do not.
_normalize_header_values: Final[Callable[[Any], list[tuple[str, str]]] | None] = getattr(
    urllib3.connection, "_normalize_header_values", None
)
#: urllib3 2.3 and later give the response the socket's ``shutdown`` (``sock_shutdown``).
_TAKES_SOCK_SHUTDOWN: Final = "sock_shutdown" in HTTPResponse.__init__.__code__.co_varnames


def _attributes_set_by_init() -> frozenset[str]:
    # The attributes urllib3's ``HTTPResponse.__init__`` sets, read from one it builds
    # (three came in with later releases: ``_sock_shutdown`` 2.3, ``_uncached_read_occurred``
    # 2.7, ``_decoder_initialized`` 2.8).
    return frozenset(vars(HTTPResponse(body=b"", preload_content=False)))


_INIT_SETS: Final = _attributes_set_by_init()
_SETS_UNCACHED_READ: Final = "_uncached_read_occurred" in _INIT_SETS
_SETS_DECODER_INITIALIZED: Final = "_decoder_initialized" in _INIT_SETS
_new_response_object: Final = HTTPResponse.__new__


def _plain_urllib3_response(
    body: http.client.HTTPResponse,
    headers: HTTPHeaderDict,
    version_string: str,
    options: Any,
    shutdown: Any,
) -> HTTPResponse:
    # ``HTTPResponse(body=body, headers=headers, status=body.status, version=body.version,
    # version_string=version_string, reason=body.reason, preload_content=False,
    # decode_content=..., original_response=body, enforce_content_length=...,
    # request_method=..., request_url=..., sock_shutdown=shutdown)`` as urllib3's
    # ``getresponse`` builds it (2.2.2 to 2.8.0, ``BaseHTTPResponse.__init__`` and
    # ``HTTPResponse.__init__``, fingerprinted), for a body that is http.client's response
    # and not read ahead: the attributes set in the constructors' order to the values they
    # give them, without their thirteen keyword arguments passed on, the ``retries``
    # property (None: nothing but ``_retries``), and the checks whose answers are known
    # (``headers`` is an ``HTTPHeaderDict``; the body is not ``str`` or ``bytes`` and has
    # ``read``). ``_init_length``'s answer is worked out here for a plain Content-Length,
    # by urllib3's method for any other.
    r = _new_response_object(HTTPResponse)
    r.headers = headers
    r.status = body.status
    r.version = body.version
    r.version_string = version_string
    r.reason = body.reason
    r.decode_content = options.decode_content
    r._has_decoded_content = False
    r._request_url = options.request_url
    r._retries = None
    r.chunked = False
    # ``headers`` is header_dict's: its store read directly (``wire.header_get``).
    fields = headers._container
    values = fields.get("transfer-encoding")
    tr_enc = "" if values is None else ", ".join(values[1:]).lower()
    if tr_enc and "chunked" in [enc.strip() for enc in tr_enc.split(",")]:
        r.chunked = True
    r._decoder = None
    if _SETS_DECODER_INITIALIZED:
        r._decoder_initialized = False
    r.enforce_content_length = options.enforce_content_length
    r.auto_close = True
    r._body = None
    if _SETS_UNCACHED_READ:
        r._uncached_read_occurred = False
    r._fp = None
    r._original_response = body
    r._fp_bytes_read = 0
    r.msg = None
    r._pool = None
    r._connection = None
    r._fp = body
    if _TAKES_SOCK_SHUTDOWN:  # urllib3 2.3 takes it and sets it
        r._sock_shutdown = shutdown
    r.chunk_left = None
    # ``_init_length``: a Content-Length of ASCII digits alone (one header, one value) on
    # a response that is not chunked is that number, or 0 for a response that has no body
    # (HEAD, 1xx, 204, 304); anything else is urllib3's to work out (lists of values,
    # signs, spaces, both framings, none).
    values = fields.get("content-length")
    content_length = None if values is None else ", ".join(values[1:])
    if (
        content_length is not None
        and not r.chunked
        and content_length.isascii()
        and content_length.isdigit()
    ):
        status = r.status
        method = options.request_method
        if status in _NO_BODY_STATUSES or 100 <= status < 200 or method == "HEAD":
            r.length_remaining = 0
        else:
            r.length_remaining = int(content_length)
    else:
        r.length_remaining = r._init_length(options.request_method)
    r._decoded_buffer = BytesQueueBuffer()
    return r


#: The statuses besides 1xx whose responses urllib3 gives no body (``_init_length``).
_NO_BODY_STATUSES: Final = (204, 304)


def _head_by_deadline(conn: HTTPConnection, deadline: Deadline, get: Callable[[], Any]) -> Any:
    # Read the response head no later than the call's deadline.
    #
    # Each ``recv`` is bounded by the read timeout (cut to the time left when the attempt
    # started), but a server that drips its status line or headers a byte at a time keeps
    # every ``recv`` inside it, and ``http.client`` reads the head line by line in calls
    # that cannot be cut short. Under a deadline the :class:`_Watchdog` shuts the socket
    # down when the deadline passes; the head read then ends, and a head cut short that
    # way is refused (a read timeout, which the adapter reports as DeadlineExceeded), never
    # parsed as a response. No deadline, no watch.
    left = deadline.remaining()
    if left <= 0:
        deadline.doing = "waiting for the response"
        raise TimeoutError("the call's deadline passed before the response")
    sock = conn.sock
    if sock is None:
        return get()
    # A little after the deadline: a silent server is cut by the socket's own read
    # timeout (cut to the time left), which names the phase better.
    watch = _watchdog.watch(deadline.at + _CUT_OFF_GRACE, sock, deadline)
    try:
        response = get()
    except http.client.RemoteDisconnected:
        # Cut before the first byte: the server was silent, and the watchdog only beat
        # the socket's own read timeout (a busy machine wakes the reader late).
        if watch.fired:
            deadline.doing = "waiting for the response"
        raise
    except BaseException:
        if watch.fired:
            deadline.doing = "reading the response head"
        raise
    finally:
        watch.cancelled = True
    if watch.fired:
        deadline.doing = "reading the response head"
        response.close()
        raise TimeoutError("the call's deadline passed while reading the response head")
    return response


#: How long after the deadline the watchdog shuts a head read's socket down.
_CUT_OFF_GRACE = 0.05
#: The watchdog's heap is cleared of finished watches when it reaches this size (or
#: twice the size it had after the last clearing).
_COMPACT_MIN = 256


class _Watch:
    # One head read under a deadline, as the watchdog holds it.

    __slots__ = ("cancelled", "deadline", "fired", "sock")

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        self.sock = sock
        self.deadline = deadline
        self.cancelled = False
        self.fired = False

    def fire(self) -> None:
        if self.cancelled:
            return
        self.fired = True  # the head read names the phase (_head_by_deadline)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # closed meanwhile
            pass


class _Watchdog:
    # One daemon thread for every head read under a deadline in the process: a heap of
    # watches by time, so a call pays a heap push and an attribute write, not a thread.

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, _Watch]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._compact_at = _COMPACT_MIN

    def watch(self, at: float, sock: socket.socket, deadline: Deadline) -> _Watch:
        watch = _Watch(sock, deadline)
        with self._cond:
            heap = self._heap
            if len(heap) >= self._compact_at:
                # Finished head reads stay in the heap until their time comes (a cancel
                # is an attribute write, outside the lock): drop them now and then, so
                # the heap holds about the reads in progress, not every call of the last
                # `total` seconds. Amortised O(1) per watch.
                heap[:] = [entry for entry in heap if not entry[2].cancelled]
                heapq.heapify(heap)
                self._compact_at = max(_COMPACT_MIN, 2 * len(heap))
            heapq.heappush(heap, (at, next(self._seq), watch))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="keepwarm-deadline-watchdog", daemon=True
                )
                self._thread.start()
            elif self._heap[0][2] is watch:
                self._cond.notify()  # earlier than what the thread waits for
        return watch

    def _run(self) -> None:
        heap = self._heap
        while True:
            with self._cond:
                while True:
                    while heap and heap[0][2].cancelled:
                        heapq.heappop(heap)
                    if not heap:
                        self._cond.wait()
                        continue
                    wait = heap[0][0] - time.monotonic()
                    if wait <= 0:
                        due = heapq.heappop(heap)[2]
                        break
                    self._cond.wait(wait)
            due.fire()

    def reset_after_fork(self) -> None:
        # The thread did not survive fork(), and another thread may have held the lock.
        self._cond = threading.Condition(threading.Lock())
        self._heap = []
        self._thread = None
        self._compact_at = _COMPACT_MIN


_watchdog = _Watchdog()
after_fork_in_child(_watchdog.reset_after_fork)


_VERSION_NAMES: Final = {9: "HTTP/0.9", 10: "HTTP/1.0", 11: "HTTP/1.1", 20: "HTTP/2"}


def _version_name(version: int) -> str:
    # The server's version as http.client read it from the status line (urllib3's
    # ``version_string`` is the version the client sent).
    name = _VERSION_NAMES.get(version)
    return name if name is not None else f"HTTP/{version}"


if TYPE_CHECKING:
    _ConnectionBase = HTTPConnection
else:
    _ConnectionBase = object


class _InstrumentedConnection(_ConnectionBase):
    # What both instrumented connection classes add to urllib3's.

    response_class = FastHeadersHTTPResponse
    _keepwarm: ConnState

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._keepwarm = ConnState(isinstance(self, HTTPSConnection))

    def _new_conn(self) -> socket.socket:
        return _timed_new_conn(self, self._keepwarm)

    def connect(self) -> None:
        started = _perf()
        try:
            super().connect()
        except Exception as exc:
            if self._keepwarm.tls and log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "connection.start_tls.failed origin=%s:%s error=%s",
                    self.host,
                    self.port,
                    type(exc).__name__,
                )
            raise
        self._keepwarm_connected(started)

    def close(self) -> None:
        # Every way urllib3 and http.client drop a connection goes through close():
        # expiry, a full pool, an error, "Connection: close", the pool closing.
        connection_closed(self._keepwarm, "1.1")
        self._keepwarm.poller = None
        super().close()

    def request(  # type: ignore[override]  # urllib3's signature, as urllib3 calls it
        self,
        method: str,
        url: str,
        body: Any = None,
        headers: Any = None,
        *,
        chunked: bool = False,
        preload_content: bool = True,
        decode_content: bool = True,
        enforce_content_length: bool = True,
    ) -> None:
        if self.sock is None:
            # http.client would connect inside request(); connect first so a refused
            # connection is not counted as a request written.
            self.connect()
        started = self._keepwarm_sending()
        state = self._keepwarm
        state.written = False
        options = {
            "preload_content": preload_content,
            "decode_content": decode_content,
            "enforce_content_length": enforce_content_length,
        }
        if not write_request(self, method, url, body, headers, chunked, options):
            super().request(method, url, body, headers, chunked=chunked, **options)
        state.written = True
        self._keepwarm_sent(started)

    def getresponse(self) -> Any:
        deadline = current_deadline()
        # While a tool has replaced urllib3's getresponse (a tracer, a recorder), the
        # replacement runs, not keepwarm's copy of urllib3's.
        get = super().getresponse if getresponse_hooked() else self._keepwarm_getresponse
        response = get() if deadline is None else _head_by_deadline(self, deadline, get)
        self._keepwarm_answered(response)
        return response

    def _keepwarm_getresponse(self) -> Any:
        # urllib3's ``HTTPConnection.getresponse`` (2.2 to 2.8), step for step, with the
        # headers of a plain head (``wire.PlainHTTPMessage``: ``Name: value`` lines only, no
        # payload, no defects, no folded line) put in urllib3's ``HTTPHeaderDict``
        # directly: urllib3 would check the message for defects and payload that it cannot
        # have, unfold values that have no line breaks, and add each header through
        # ``extend`` and ``add``. Any other message gets urllib3's steps.
        if self._response_options is None:
            raise http.client.ResponseNotReady()
        resp_options = self._response_options
        self._response_options = None
        self.sock.settimeout(self.timeout)
        shutdown = getattr(self.sock, "shutdown", None)
        httplib_response = http.client.HTTPConnection.getresponse(self)
        message = httplib_response.msg
        if type(message) is PlainHTTPMessage:
            headers = header_dict(message._headers)  # type: ignore[attr-defined]
        else:
            try:
                assert_header_parsing(message)
            except (HeaderParsingError, TypeError) as hpe:
                _urllib3_log.warning(
                    "Failed to parse headers (url=%s): %s",
                    _url_from_connection(self, resp_options.request_url),
                    hpe,
                    exc_info=True,
                )
            items = message.items()
            if _normalize_header_values is not None:  # urllib3 2.8: obsolete line folding
                items = _normalize_header_values(message)
            headers = HTTPHeaderDict(items)
        if (
            type(message) is PlainHTTPMessage
            and not resp_options.preload_content
            and not urllib3_response_init_hooked()
        ):
            return _plain_urllib3_response(
                httplib_response,
                headers,
                getattr(self, "_http_vsn_str", "HTTP/?"),
                resp_options,
                shutdown,
            )
        extra: dict[str, Any] = {"sock_shutdown": shutdown} if _TAKES_SOCK_SHUTDOWN else {}
        return HTTPResponse(
            body=httplib_response,
            headers=headers,
            status=httplib_response.status,
            version=httplib_response.version,
            version_string=getattr(self, "_http_vsn_str", "HTTP/?"),
            reason=httplib_response.reason,
            preload_content=resp_options.preload_content,
            decode_content=resp_options.decode_content,
            original_response=httplib_response,
            enforce_content_length=resp_options.enforce_content_length,
            request_method=resp_options.request_method,
            request_url=resp_options.request_url,
            **extra,
        )

    def _keepwarm_connected(self, started: float) -> None:
        state = self._keepwarm
        state.fresh = True
        done = _perf()
        state.connected_at = done
        counters = state.counters
        if counters is not None:
            counters.on_connect(state.tls)
            if not state.open:
                state.generation = counters.on_open()
                state.open = True
        if state.tls:
            tls_seconds = done - (state.tcp_done or started)
            if state.timings is not None:
                state.timings.tls = tls_seconds
            if log.isEnabledFor(logging.DEBUG):
                sock: Any = self.sock
                log.debug(
                    "connection.start_tls.complete origin=%s:%s seconds=%.6f version=%s",
                    self.host,
                    self.port,
                    tls_seconds,
                    sock.version() if hasattr(sock, "version") else None,
                )

    def _keepwarm_sending(self) -> float:
        state = self._keepwarm
        reused = self.sock is not None and not state.fresh
        if state.counters is not None:
            state.counters.on_request(reused)
        timings = state.timings
        if timings is not None:
            timings.reused = reused
            version = getattr(self.sock, "version", None)
            if version is not None:
                timings.tls_version = version()
        if reused and log.isEnabledFor(logging.DEBUG):
            log.debug("connection.reused origin=%s:%s", self.host, self.port)
        return _perf()

    def _keepwarm_sent(self, started: float) -> None:
        state = self._keepwarm
        state.fresh = False
        now = _perf()
        state.sent_at = now
        if state.timings is not None:
            # For plain HTTP the connect happens inside request(): do not count it twice.
            state.timings.send = now - max(started, state.connected_at)

    def _keepwarm_answered(self, response: BaseHTTPResponse) -> None:
        state = self._keepwarm
        now = _perf()
        wait = now - state.sent_at if state.sent_at else None
        timings = state.timings
        if timings is not None:
            timings.wait = wait
            timings._headers_at = now
            # The server's status-line version, as http.client parsed it (10, 11; HTTP/0.9
            # counts as 10 there). Not urllib3's ``version_string``: that is the version
            # the client sent (the connection's ``_http_vsn_str``), always "HTTP/1.1".
            version = _VERSION_NAMES.get(response.version)
            timings.http_version = (
                version if version is not None else _version_name(response.version)
            )
            setattr(response, TIMINGS_ATTRIBUTE, timings)  # attach_timings, in place
            state.timings = None
        if state.counters is not None:
            state.counters.on_response(wait, None)


def header_dict(fields: Iterable[tuple[str, str]]) -> HTTPHeaderDict:
    # urllib3's ``HTTPHeaderDict`` of ``fields`` (name, value), filled as its ``add`` fills
    # it (each name as given, its values in order, under the lower-cased name) without a
    # method call per field: for the heads of the HTTP/1.1 and HTTP/2 response paths.
    container: dict[str, list[str]] = {}
    for name, value in fields:
        lower = name.lower()
        values = container.get(lower)
        if values is None:
            container[lower] = [name, value]
        else:
            values.append(value)
    headers = HTTPHeaderDict.__new__(HTTPHeaderDict)
    headers._container = container
    return headers


def named_as(upstream: type) -> Callable[[_T], _T]:
    # Give a class urllib3's class name and module: urllib3 puts them in error messages
    # (``HTTPConnection(host=..., port=...): Failed to establish a new connection``, or
    # ``<urllib3.connection.HTTPConnection object at 0x...>`` before urllib3 2.6), and users
    # read, log and match those; a keepwarm name there says nothing to them. The class's
    # ``__mro__`` still shows what it is.

    def rename(cls: _T) -> _T:
        cls.__name__ = cls.__qualname__ = upstream.__name__
        cls.__module__ = upstream.__module__
        return cls

    return rename


@named_as(HTTPConnection)
class InstrumentedHTTPConnection(_InstrumentedConnection, HTTPConnection):
    # ``urllib3.HTTPConnection`` that reports to its origin's counters.
    pass


@named_as(HTTPSConnection)
class InstrumentedHTTPSConnection(_InstrumentedConnection, HTTPSConnection):
    # ``urllib3.HTTPSConnection`` that reports to its origin's counters.
    pass


class InstrumentedSOCKSConnectionMixin(_InstrumentedConnection):
    # For urllib3's ``SOCKSConnection`` classes (``socks5://`` proxies): the socket is
    # opened through PySocks as urllib3 does (name resolution, the TCP handshake to the
    # proxy and the SOCKS negotiation are one step there, timed together as the connect).

    def _new_conn(self) -> socket.socket:
        from urllib3.contrib.socks import SOCKSConnection

        started = _perf()
        sock: socket.socket = SOCKSConnection._new_conn(self)  # type: ignore[arg-type]
        done = _perf()
        state = self._keepwarm
        if state.timings is not None:
            state.timings.dns = None
            state.timings.connect = done - started
        state.tcp_done = done
        return sock
