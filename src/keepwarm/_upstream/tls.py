"""One ``ssl.SSLContext`` per TLS configuration, built once and shared by every connection.

Without it, requests hands urllib3 a CA bundle *path* and urllib3 loads the bundle into a
fresh context for every new HTTPS connection: about 50 ms per connection with certifi's
~140 certificates on OpenSSL 3 here. keepwarm loads each bundle once per process.

A configuration is (verification on or off, the CA file or directory with its size and
modification time, the client certificate and key). Because urllib3 puts the context
object in its pool key, connections made under one configuration are never handed to a
request made under another: a connection opened with ``verify=False`` is never reused for
a verified request (CVE-2024-35195). A CA bundle rewritten on disk (rotation) gets a new
context, and so new connections, within :data:`RECHECK_SECONDS` (the files are looked at
again, one ``stat`` each, at most that often per configuration; requests notices a new
bundle only on its next new connection, and keeps the connections it has).
"""

from __future__ import annotations

import os
import ssl
import threading
import time
from typing import Final

from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.util.ssl_ import create_urllib3_context

from keepwarm._bounded import remember
from keepwarm._forks import after_fork_in_child

__all__ = [
    "CertType",
    "VerifyType",
    "build_context",
    "clear_cache",
    "context_for",
    "resolve_verify",
]

VerifyType = bool | str
CertType = str | tuple[str, str] | None

_CacheKey = tuple[object, ...]
_cache: dict[_CacheKey, ssl.SSLContext] = {}
_lock = threading.Lock()
#: More distinct TLS configurations than this in one process is a bug (a new temp CA file
#: per request, say); the cache starts over rather than growing without bound.
_CACHE_MAX: Final = 64
#: Seconds a configuration's context is handed out without a look at its files.
RECHECK_SECONDS = 1.0
#: (verify, cert, http2) -> (when its files were last looked at, its context).
_recent: dict[tuple[object, ...], tuple[float, ssl.SSLContext]] = {}
_monotonic = time.monotonic


def _default_ca_location() -> str:
    """The default CA bundle (certifi's), as requests >= 2.33 uses it: the path itself.
    requests 2.32 first passed it through ``extract_zipped_paths``, which extracted a
    zipped bundle to a predictable temporary path (CVE-2026-25645); keepwarm does what the
    fixed requests does, whichever requests is installed."""
    return DEFAULT_CA_BUNDLE_PATH


def _missing_ca(location: str) -> OSError:
    # The same words requests uses, so code that matches on them keeps working.
    return OSError(f"Could not find a suitable TLS CA certificate bundle, invalid path: {location}")


def resolve_verify(verify: VerifyType) -> str | None:
    """The CA file or directory a ``verify`` value means; None when not verifying."""
    if verify is False:
        return None
    location = _default_ca_location() if verify is True else str(verify)
    if not location or not os.path.exists(location):
        raise _missing_ca(location)
    return location


def _split_cert(cert: CertType) -> tuple[str | None, str | None]:
    if cert is None or cert == "":
        return None, None
    if isinstance(cert, str):
        return cert, None
    return cert[0], cert[1]


def _identity(path: str) -> tuple[object, ...] | None:
    """(path, mtime, size) of a file or directory, None if it does not exist: one
    ``stat``, which is all a request pays to notice a rotated bundle."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (path, st.st_mtime_ns, st.st_size)


def _cert_identity(kind: str, path: str | None) -> tuple[object, ...]:
    if not path:
        return ()
    found = _identity(path)
    if found is None:
        raise OSError(f"Could not find the TLS {kind} file, invalid path: {path}")
    return found


def context_for(
    verify: VerifyType, cert: CertType = None, *, http2: bool = False
) -> ssl.SSLContext:
    """The shared context for this verification setting and client certificate; with
    ``http2``, one that offers ``h2`` before ``http/1.1`` by ALPN (:func:`offer_http2`).
    The files behind it are looked at again (a ``stat`` each) at most every
    :data:`RECHECK_SECONDS`, not on every request."""
    now = _monotonic()
    try:
        settings = (verify, cert, http2)
        recent = _recent.get(settings)
    except TypeError:  # an unhashable cert (a list): looked at every time
        return _context_for_files(verify, cert, http2)
    if recent is not None and now - recent[0] < RECHECK_SECONDS:
        return recent[1]
    context = _context_for_files(verify, cert, http2)
    remember(_recent, settings, (now, context), _CACHE_MAX)
    return context


def _context_for_files(verify: VerifyType, cert: CertType, http2: bool) -> ssl.SSLContext:
    """:func:`context_for`, looking at the files: the cached context for what they are now."""
    if verify is False:
        ca_location: str | None = None
        ca_id: tuple[object, ...] = ()
    else:
        ca_location = _default_ca_location() if verify is True else str(verify)
        found = _identity(ca_location) if ca_location else None
        if found is None:
            raise _missing_ca(ca_location)
        ca_id = found
    cert_file, key_file = _split_cert(cert)
    key: _CacheKey = (
        ca_location is not None,
        ca_id,
        _cert_identity("certificate", cert_file),
        _cert_identity("key", key_file),
        http2,
    )
    context = _cache.get(key)
    if context is not None:
        return context
    # Before the lock, which is not reentrant.
    http1 = _context_for_files(verify, cert, False) if http2 else None
    with _lock:
        context = _cache.get(key)
        if context is None:
            context = build_context(ca_location, cert_file, key_file)
            if http1 is not None:
                offer_http2(context, http1)
            remember(_cache, key, context, _CACHE_MAX)
    return context


def build_context(
    ca_location: str | None, cert_file: str | None = None, key_file: str | None = None
) -> ssl.SSLContext:
    """A new context: verifying against ``ca_location`` (a file or directory), or not at
    all for None; with a client certificate if given. Uncached: see :func:`context_for`."""
    if ca_location is None:
        context = create_urllib3_context(cert_reqs=ssl.CERT_NONE)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
        context.verify_mode = ssl.CERT_REQUIRED
        context.check_hostname = True
        if os.path.isdir(ca_location):
            context.load_verify_locations(capath=ca_location)
        else:
            context.load_verify_locations(cafile=ca_location)
    if cert_file:
        context.load_cert_chain(cert_file, key_file)
    return context


def _keep_alpn(protocols: object) -> None:
    """Stands in for ``set_alpn_protocols`` on an HTTP/2 context: urllib3 sets its own
    list (``http/1.1`` only) on the context of every connection it wraps."""


def offer_http2(context: ssl.SSLContext, http1: ssl.SSLContext) -> None:
    """Make ``context`` offer ``h2`` and ``http/1.1`` by ALPN, for good: urllib3's
    ``ssl_wrap_socket`` calls ``context.set_alpn_protocols(urllib3.util.ssl_.ALPN_PROTOCOLS)``
    on every connection, which would put back ``http/1.1`` alone; the instance attribute
    shadows the method for this context only. ``keepwarm_http2`` marks it for the pools
    (``http2.H2HTTPSConnectionPool``); ``keepwarm_http1`` is the context of the same TLS
    settings without ``h2``, for a pool whose server chose HTTP/1.1."""
    ssl.SSLContext.set_alpn_protocols(context, ["h2", "http/1.1"])
    context.set_alpn_protocols = _keep_alpn  # type: ignore[method-assign,assignment]
    context.keepwarm_http2 = True  # type: ignore[attr-defined]
    context.keepwarm_http1 = http1  # type: ignore[attr-defined]


def _after_fork_in_child() -> None:
    # A thread building a context (tens of ms: it loads a CA bundle) while another forks
    # would leave the child's lock held forever. Contexts themselves are safe to keep.
    global _lock
    _lock = threading.Lock()


after_fork_in_child(_after_fork_in_child)


def clear_cache() -> None:
    """Forget every cached context; the next connection of each configuration rebuilds one."""
    with _lock:
        _cache.clear()
        _recent.clear()
