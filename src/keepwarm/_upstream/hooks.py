"""The points of requests and urllib3 that tools hook, and whether one is hooked now.

keepwarm's fast path does not run through some of requests' and urllib3's own code:
``requests.Session.send`` (``session.RequestsSessionBase._send`` is a trimmed copy), and
urllib3's pool checkout, connection classes, connection set-up and request writer
(``pool``, ``connection``, ``wire``). Those are exactly the points tracers
(OpenTelemetry, ddtrace: ``Session.send``), mocks (requests-mock: ``Session.send``) and
recorders (vcrpy: the pools' ``ConnectionCls``, ``_get_conn`` and ``_new_conn``) replace.
So the originals are captured here when keepwarm is imported, and every request compares
the current ones with them by identity (a few class attribute reads, tens of
nanoseconds each):

* :data:`REQUESTS_SEND` is not ``requests.Session.send`` any more: keepwarm's
  ``Session.send`` calls the replacement, which runs requests' own ``send`` (the tool's
  wrapper sees the request, injects its headers, or answers it itself).
* :func:`pools_hooked`: a urllib3 point keepwarm's pools and connections skip was
  replaced; the adapter sends through pools of urllib3's own classes
  (``pool.WatchedHTTPConnectionPool``), which inherit whatever the tool put on them.

A tool that wraps a point keepwarm calls anyway (``requests.Session.request``,
``HTTPAdapter.send``: responses; ``HTTPConnectionPool.urlopen`` and ``_make_request``:
the urllib3 instrumentations; ``http.client.HTTPConnection.putrequest``: sentry-sdk;
``socket.getaddrinfo``) sees keepwarm's requests on the fast path too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import requests.sessions
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

__all__ = ["REQUESTS_SEND", "REQUESTS_SESSION", "pools_hooked", "send_hook"]

#: requests' Session class, the one ``requests.get()`` builds unless a tool replaced the
#: module attribute (requests-cache's ``install_cache()`` does).
REQUESTS_SESSION: Final = requests.sessions.Session
#: ``requests.Session.send`` as requests defines it.
REQUESTS_SEND: Final[Callable[..., Any]] = REQUESTS_SESSION.send

# The urllib3 points keepwarm's pools and connections replace without calling them.
_HTTP_CONNECTION_CLS: Final = HTTPConnectionPool.ConnectionCls
_HTTPS_CONNECTION_CLS: Final = HTTPSConnectionPool.ConnectionCls
_GET_CONN: Final = HTTPConnectionPool._get_conn
_PUT_CONN: Final = HTTPConnectionPool._put_conn
_NEW_CONN: Final = HTTPConnection._new_conn
_REQUEST: Final = HTTPConnection.request


def send_hook() -> Callable[..., Any] | None:
    """What replaced ``requests.Session.send``, or None while it is requests' own."""
    send: Callable[..., Any] = REQUESTS_SESSION.send
    return None if send is REQUESTS_SEND else send


def pools_hooked() -> bool:
    """Whether a tool replaced a urllib3 pool or connection point that keepwarm's own
    pools and connections do not run (their connection classes, checkout, check-in,
    connection set-up or request writer)."""
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
