# The points of requests and urllib3 that tools hook, and whether one is hooked now.
#
# keepwarm's fast path does not run through some of requests' and urllib3's own code:
# ``requests.Session.send`` (``session.RequestsSessionBase._send`` is a trimmed copy), and
# urllib3's pool checkout, connection classes, connection set-up and request writer
# (``pool``, ``connection``, ``wire``). Those are exactly the points tracers
# (OpenTelemetry, ddtrace: ``Session.send``), mocks (requests-mock: ``Session.send``) and
# recorders (vcrpy: the pools' ``ConnectionCls``, ``_get_conn`` and ``_new_conn``) replace.
# So the originals are captured here when keepwarm is imported, and every request compares
# the current ones with them by identity (a few class attribute reads, tens of
# nanoseconds each):
#
# * :data:`REQUESTS_SEND` is not ``requests.Session.send`` any more: keepwarm's
#   ``Session.send`` calls the replacement, which runs requests' own ``send`` (the tool's
#   wrapper sees the request, injects its headers, or answers it itself).
# * :func:`pools_hooked`: a urllib3 point keepwarm's pools and connections skip was
#   replaced; the adapter sends through pools of urllib3's own classes
#   (``pool.WatchedHTTPConnectionPool``), which inherit whatever the tool put on them.
#
# * :func:`adapter_send_hooked`: ``requests.adapters.HTTPAdapter.send`` was replaced
#   (responses answers requests there); keepwarm's transport, which sends through a copy
#   of it (``transport.KeepwarmAdapter._adapter_send``), calls the replacement instead.
# * :func:`session_request_hooked`: ``requests.Session.request``, the ``Request`` class it
#   builds or that class's constructor was replaced; keepwarm's sessions, which run a copy
#   of those steps (``session.RequestsSessionBase._request``), call requests' own then.
# * :func:`body_read_hooked`: a step of urllib3's ``HTTPResponse.read`` was replaced;
#   a body is then read through ``read`` itself, not ``wire.read_whole``.
# * :data:`HC_RESPONSE_INIT`, :data:`SOCKET_MAKEFILE`, :data:`SOCKET_IO_INIT`: one of the
#   steps that make an http.client response and its reader was replaced; keepwarm's
#   response class, which does them in one (``wire.FastHeadersHTTPResponse.__init__``),
#   runs them instead.
# * :data:`SSL_SENDALL`, :data:`SSL_SEND`: ``ssl.SSLSocket.sendall`` or ``send`` was
#   replaced; ``wire._write_head`` then sends a head on a TLS socket through them, not in
#   one ``_sslobj.write``.
# * :data:`U3_VALIDATE_CONN`, :data:`U3_HTTPS_VALIDATE_CONN`, :data:`RETRY_IS_RETRY`:
#   urllib3's ``_validate_conn`` or ``Retry.is_retry`` is not urllib3's own; the flat first
#   attempt (``pool.urlopen_first``) then calls it where it would otherwise answer in place.
# * :func:`head_steps_hooked`: a step of writing a request head (urllib3's or
#   http.client's ``putrequest``, ``putheader``, ``endheaders``, ``send``...) was
#   replaced (sentry-sdk replaces http.client's ``putrequest``); ``wire.write_request``
#   then writes the head through those steps instead of in one pass.
#
# A tool that wraps a point keepwarm calls anyway (``requests.Session.request``;
# ``socket.getaddrinfo``) sees keepwarm's requests on the fast path too. While urllib3's
# ``urlopen`` or ``_make_request`` is wrapped (:func:`urlopen_hooked`: the urllib3
# instrumentations), keepwarm calls them, not its flat first attempt
# (``pool.urlopen_first``), with the request headers as requests passes them, a
# ``CaseInsensitiveDict``, not keepwarm's plain ``dict``.

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import types
from collections.abc import Callable
from typing import Any, Final

import requests.adapters
import requests.models
import requests.sessions
import urllib3.connection
import urllib3.connectionpool
import urllib3.response
import urllib3.util.retry
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.response import HTTPResponse

__all__ = [
    "HC_CHECK_CLOSE",
    "HC_RESPONSE_INIT",
    "REQUESTS_SEND",
    "REQUESTS_SESSION",
    "RETRY_IS_RETRY",
    "SOCKET_IO_INIT",
    "SOCKET_MAKEFILE",
    "SSL_SEND",
    "SSL_SENDALL",
    "U3_HTTPS_VALIDATE_CONN",
    "U3_VALIDATE_CONN",
    "adapter_send_hooked",
    "body_read_hooked",
    "getresponse_hooked",
    "head_steps_hooked",
    "http_read_hooked",
    "pools_hooked",
    "read_status_hooked",
    "response_init_hooked",
    "send_hook",
    "session_request_hooked",
    "urllib3_response_init_hooked",
    "urlopen_hooked",
]


class _Unknown:
    # Stands for an original that was already replaced when keepwarm was imported and
    # cannot be found under the replacement: nothing is ever it, so the point always counts
    # as hooked (the tool's code runs; only speed is lost).

    def __repr__(self) -> str:
        return "<replaced before keepwarm was imported>"


def _own_function(value: Any, module: types.ModuleType) -> Any:
    # ``value`` if its code is ``module``'s, else the function it wraps that is
    # (``__wrapped__``, as functools.wraps and wrapt set it), else :class:`_Unknown`: a
    # tracer that instrumented requests before keepwarm was imported (``opentelemetry-
    # instrument python app.py``) must not be mistaken for requests' own ``send``.
    for _ in range(_MAX_WRAPPERS):
        code = getattr(value, "__code__", None)
        if code is not None and code.co_filename == module.__file__:
            return value
        value = getattr(value, "__wrapped__", None)
        if value is None:
            break
    return _Unknown()


def _own_class(value: Any, module: types.ModuleType) -> Any:
    # ``value`` if it is a class ``module`` defines, else :class:`_Unknown`.
    if isinstance(value, type) and value.__module__ == module.__name__:
        return value
    return _Unknown()


_MAX_WRAPPERS: Final = 16


def _own_context_manager(value: Any, module: types.ModuleType) -> Any:
    # :func:`_own_function` for a ``contextlib.contextmanager`` method: the function
    # ``contextmanager`` made of ``module``'s generator (found under any wrappers, as
    # there), not the generator itself, which is never the class attribute.
    for _ in range(_MAX_WRAPPERS):
        inner = getattr(value, "__wrapped__", None)
        if _code_file(value) == contextlib.__file__ and _code_file(inner) == module.__file__:
            return value
        if inner is None:
            break
        value = inner
    return _Unknown()


def _code_file(value: Any) -> str | None:
    code = getattr(value, "__code__", None)
    return None if code is None else code.co_filename


#: requests' Session class, the one ``requests.get()`` builds unless a tool replaced the
#: module attribute (requests-cache's ``install_cache()`` does).
REQUESTS_SESSION: Final = requests.sessions.Session
#: ``requests.Session.send`` as requests defines it.
REQUESTS_SEND: Final[Callable[..., Any]] = _own_function(REQUESTS_SESSION.send, requests.sessions)

#: ``requests.Session.request`` and ``requests.Request.__init__`` as requests defines them.
_SESSION_REQUEST: Final = _own_function(REQUESTS_SESSION.request, requests.sessions)
_REQUEST_CLASS: Final = requests.models.Request
_REQUEST_INIT: Final = _own_function(_REQUEST_CLASS.__init__, requests.models)

#: ``requests.models.Response.__init__`` as requests defines it.
_RESPONSE_INIT: Final = _own_function(requests.models.Response.__init__, requests.models)
#: ``requests.adapters.HTTPAdapter.send`` as requests defines it.
_ADAPTER_SEND: Final = _own_function(requests.adapters.HTTPAdapter.send, requests.adapters)

# The urllib3 points keepwarm's pools and connections replace without calling them.
_HTTP_CONNECTION_CLS: Final = _own_class(HTTPConnectionPool.ConnectionCls, urllib3.connection)
_HTTPS_CONNECTION_CLS: Final = _own_class(HTTPSConnectionPool.ConnectionCls, urllib3.connection)
_GET_CONN: Final = _own_function(HTTPConnectionPool._get_conn, urllib3.connectionpool)
_PUT_CONN: Final = _own_function(HTTPConnectionPool._put_conn, urllib3.connectionpool)
_NEW_CONN: Final = _own_function(HTTPConnection._new_conn, urllib3.connection)
_REQUEST: Final = _own_function(HTTPConnection.request, urllib3.connection)
_GETRESPONSE: Final = _own_function(HTTPConnection.getresponse, urllib3.connection)
# The steps of urllib3's ``HTTPResponse.read`` that keepwarm's whole-body read
# (``wire.read_whole``) does not run.
_READ: Final = _own_function(HTTPResponse.read, urllib3.response)
_RAW_READ: Final = _own_function(HTTPResponse._raw_read, urllib3.response)
_FP_READ: Final = _own_function(HTTPResponse._fp_read, urllib3.response)
_INIT_DECODER: Final = _own_function(HTTPResponse._init_decoder, urllib3.response)
_DECODE: Final = _own_function(HTTPResponse._decode, urllib3.response)
_ERROR_CATCHER: Final = _own_context_manager(HTTPResponse._error_catcher, urllib3.response)
# The steps of a request head that ``wire.write_request`` writes in one pass: urllib3's
# ``putrequest`` and ``putheader`` (which call http.client's), and http.client's own.
_U3_PUTREQUEST: Final = _own_function(HTTPConnection.putrequest, urllib3.connection)
_U3_PUTHEADER: Final = _own_function(HTTPConnection.putheader, urllib3.connection)
_HC: Any = http.client.HTTPConnection
_HC_PUTREQUEST: Final = _own_function(_HC.putrequest, http.client)
_HC_PUTHEADER: Final = _own_function(_HC.putheader, http.client)
_HC_ENDHEADERS: Final = _own_function(_HC.endheaders, http.client)
_HC_SEND_OUTPUT: Final = _own_function(_HC._send_output, http.client)
_HC_SEND: Final = _own_function(_HC.send, http.client)
_HC_OUTPUT: Final = _own_function(_HC._output, http.client)
_HC_VALIDATE_METHOD: Final = _own_function(_HC._validate_method, http.client)
_HC_VALIDATE_PATH: Final = _own_function(_HC._validate_path, http.client)
_HC_ENCODE_REQUEST: Final = _own_function(_HC._encode_request, http.client)
_HR: Any = http.client.HTTPResponse
_HR_READ: Final = _own_function(_HR.read, http.client)
_HR_SAFE_READ: Final = _own_function(_HR._safe_read, http.client)
_HR_CLOSE_CONN: Final = _own_function(_HR._close_conn, http.client)
#: The steps that make an http.client response's reader (its constructor, the socket's
#: ``makefile("rb")`` and the ``SocketIO`` it builds), which keepwarm's response class
#: does in one step (``wire.FastHeadersHTTPResponse.__init__``); it calls them while a
#: tool has replaced any.
HC_RESPONSE_INIT: Final = _own_function(_HR.__init__, http.client)
SOCKET_MAKEFILE: Final = _own_function(socket.socket.makefile, socket)
SOCKET_IO_INIT: Final = _own_function(socket.SocketIO.__init__, socket)
#: ``ssl.SSLSocket.sendall`` and the ``send`` it calls, which ``wire._write_head`` stands
#: for with one write of a head on an open TLS socket; it calls them while either is
#: replaced.
SSL_SENDALL: Final = _own_function(ssl.SSLSocket.sendall, ssl)
SSL_SEND: Final = _own_function(ssl.SSLSocket.send, ssl)
#: http.client's ``_check_close``, whose HTTP/1.1 answer keepwarm's response class works out
#: in place (``wire.FastHeadersHTTPResponse.begin``); it calls a replacement instead.
HC_CHECK_CLOSE: Final = _own_function(_HR._check_close, http.client)
_HC_READ_STATUS: Final = _own_function(
    http.client.HTTPResponse._read_status,  # type: ignore[attr-defined]
    http.client,
)
# urllib3's response constructors, which ``connection._plain_urllib3_response`` stands for.
_U3_RESPONSE_INIT: Final = _own_function(HTTPResponse.__init__, urllib3.response)
_U3_BASE_RESPONSE_INIT: Final = _own_function(
    urllib3.response.BaseHTTPResponse.__init__, urllib3.response
)
_U3_INIT_LENGTH: Final = _own_function(HTTPResponse._init_length, urllib3.response)
#: The pool steps the flat path (``pool.urlopen_first``, ``pool._InstrumentedPool.
#: _keepwarm_make_request``) answers in place where they would do nothing or answer False
#: (``_validate_conn``, ``Retry.is_retry``); it calls a replacement.
U3_VALIDATE_CONN: Final = _own_function(HTTPConnectionPool._validate_conn, urllib3.connectionpool)
U3_HTTPS_VALIDATE_CONN: Final = _own_function(
    HTTPSConnectionPool._validate_conn, urllib3.connectionpool
)
RETRY_IS_RETRY: Final = _own_function(urllib3.util.retry.Retry.is_retry, urllib3.util.retry)
# Points keepwarm calls, whose callers see the request headers keepwarm passes.
_URLOPEN: Final = _own_function(HTTPConnectionPool.urlopen, urllib3.connectionpool)
_MAKE_REQUEST: Final = _own_function(HTTPConnectionPool._make_request, urllib3.connectionpool)


def send_hook() -> Callable[..., Any] | None:
    # What replaced ``requests.Session.send``, or None while it is requests' own.
    send: Callable[..., Any] = REQUESTS_SESSION.send
    return None if send is REQUESTS_SEND else send


def getresponse_hooked() -> bool:
    # Whether a tool replaced urllib3's ``HTTPConnection.getresponse``, which keepwarm's
    # connections run a copy of (``connection._InstrumentedConnection``).
    return (
        HTTPConnection.getresponse is not _GETRESPONSE
        or HTTPSConnection.getresponse is not _GETRESPONSE
    )


def head_steps_hooked(cls: type) -> bool:
    # Whether a tool (sentry-sdk replaces http.client's ``putrequest``) or a subclass
    # replaced a step of writing a request head on connections of class ``cls``:
    # ``wire.write_request`` then writes the head through those steps.
    conn_cls: Any = cls
    return (
        conn_cls.putrequest is not _U3_PUTREQUEST
        or conn_cls.putheader is not _U3_PUTHEADER
        or _HC.putrequest is not _HC_PUTREQUEST
        or _HC.putheader is not _HC_PUTHEADER
        or conn_cls.endheaders is not _HC_ENDHEADERS
        or conn_cls._send_output is not _HC_SEND_OUTPUT
        or conn_cls.send is not _HC_SEND
        or conn_cls._output is not _HC_OUTPUT
        or conn_cls._validate_method is not _HC_VALIDATE_METHOD
        or conn_cls._validate_path is not _HC_VALIDATE_PATH
        or conn_cls._encode_request is not _HC_ENCODE_REQUEST
    )


def urlopen_hooked() -> bool:
    # Whether a tool wrapped urllib3's ``urlopen`` or ``_make_request`` (the urllib3
    # instrumentations of OpenTelemetry and ddtrace): it reads and adds request headers,
    # so it gets them as requests passes them, a ``CaseInsensitiveDict``.
    return (
        HTTPConnectionPool.urlopen is not _URLOPEN
        or HTTPSConnectionPool.urlopen is not _URLOPEN
        or HTTPConnectionPool._make_request is not _MAKE_REQUEST
        or HTTPSConnectionPool._make_request is not _MAKE_REQUEST
    )


def http_read_hooked(cls: type) -> bool:
    # Whether response class ``cls``'s whole-body read steps are not http.client's own
    # (``read``, ``_safe_read``, ``_close_conn``: a tool replaced one), which
    # ``wire.read_whole`` runs a copy of.
    return (
        cls.read is not _HR_READ  # type: ignore[attr-defined]
        or cls._safe_read is not _HR_SAFE_READ  # type: ignore[attr-defined]
        or cls._close_conn is not _HR_CLOSE_CONN  # type: ignore[attr-defined]
    )


def read_status_hooked(cls: type) -> bool:
    # Whether the status-line reader of response class ``cls`` is not http.client's own
    # (a tool replaced it, or ``cls`` has its own), which keepwarm's response class runs a
    # copy of (``wire._read_status``).
    return cls._read_status is not _HC_READ_STATUS  # type: ignore[attr-defined]


def urllib3_response_init_hooked() -> bool:
    # Whether a tool replaced urllib3's ``HTTPResponse.__init__``,
    # ``BaseHTTPResponse.__init__`` or ``HTTPResponse._init_length``, which keepwarm's
    # connections build responses without (``connection._plain_urllib3_response``).
    return (
        HTTPResponse.__init__ is not _U3_RESPONSE_INIT
        or urllib3.response.BaseHTTPResponse.__init__ is not _U3_BASE_RESPONSE_INIT
        or HTTPResponse._init_length is not _U3_INIT_LENGTH
    )


def session_request_hooked() -> bool:
    # Whether a tool replaced ``requests.Session.request`` (on the class keepwarm's
    # sessions extend), the ``Request`` class it builds, or ``Request.__init__``, which
    # keepwarm's sessions run a copy of (``session.RequestsSessionBase._request``).
    return (
        REQUESTS_SESSION.request is not _SESSION_REQUEST
        or requests.sessions.Request is not _REQUEST_CLASS  # type: ignore[attr-defined]
        or _REQUEST_CLASS.__init__ is not _REQUEST_INIT
    )


def response_init_hooked() -> bool:
    # Whether a tool replaced ``requests.Response.__init__`` (keepwarm's transport
    # builds responses without calling requests' own: ``transport._new_response``).
    return requests.models.Response.__init__ is not _RESPONSE_INIT


def adapter_send_hooked() -> bool:
    # Whether a tool replaced ``requests.adapters.HTTPAdapter.send``.
    return requests.adapters.HTTPAdapter.send is not _ADAPTER_SEND


def body_read_hooked() -> bool:
    # Whether a tool replaced a step of urllib3's ``HTTPResponse.read`` that keepwarm's
    # whole-body read skips (a recorder or tracer that sees bodies there).
    return (
        HTTPResponse.read is not _READ
        or HTTPResponse._raw_read is not _RAW_READ
        or HTTPResponse._fp_read is not _FP_READ
        or HTTPResponse._init_decoder is not _INIT_DECODER
        or HTTPResponse._decode is not _DECODE
        or HTTPResponse._error_catcher is not _ERROR_CATCHER
    )


def pools_hooked() -> bool:
    # Whether a tool replaced a urllib3 pool or connection point that keepwarm's own
    # pools and connections do not run (their connection classes, checkout, check-in,
    # connection set-up or request writer).
    return (
        HTTPConnectionPool.ConnectionCls is not _HTTP_CONNECTION_CLS
        or HTTPSConnectionPool.ConnectionCls is not _HTTPS_CONNECTION_CLS
        or HTTPConnectionPool._get_conn is not _GET_CONN
        or HTTPSConnectionPool._get_conn is not _GET_CONN
        or HTTPConnectionPool._put_conn is not _PUT_CONN
        or HTTPSConnectionPool._put_conn is not _PUT_CONN
        or HTTPConnection._new_conn is not _NEW_CONN
        or HTTPSConnection._new_conn is not _NEW_CONN
        or HTTPConnection.request is not _REQUEST
        or HTTPSConnection.request is not _REQUEST
    )
