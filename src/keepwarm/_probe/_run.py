"""Running ``keepwarm probe``: the measurements, and the wording of what made them fail.

N GET requests go through one new :class:`keepwarm.Session` (telemetry on, no retries, so
nothing hides what happened); the first one is cold (DNS, TCP, TLS), the others should
ride the same connection. Over HTTPS without a proxy, two more handshakes ask the server
which protocols it selects by ALPN. :func:`measure` returns all of it as a
:class:`ProbeResult`; judging and showing it is :mod:`keepwarm._probe._report`'s job.

A failure becomes a :class:`~keepwarm._probe._options.ProbeError` whose line is written
here, never taken from urllib3, whose messages include the query string.
"""

from __future__ import annotations

import socket
import ssl
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Final

import requests
from requests.utils import select_proxy
from urllib3.exceptions import InsecureRequestWarning, NameResolutionError, NewConnectionError

from keepwarm._probe._options import (
    DEFAULT_REQUESTS,
    DEFAULT_TIMEOUT,
    EXIT_NETWORK,
    EXIT_USAGE,
    ProbeError,
    Target,
    printable,
    redact_url,
)
from keepwarm._registry import timings as timings_of
from keepwarm._session import Session
from keepwarm._stats import Stats
from keepwarm._telemetry import Timings
from keepwarm._upstream.tls import build_context, resolve_verify

__all__ = ["ALPN_OFFERS", "AlpnCheck", "ProbeResult", "RequestResult", "measure"]

#: What the ALPN check offers, one protocol per handshake.
ALPN_OFFERS: Final = ("h2", "http/1.1")


@dataclass(frozen=True)
class RequestResult:
    """One of the N requests."""

    index: int
    status: int
    timings: Timings
    #: The server's ``Keep-Alive`` header, as sent (None if absent).
    keep_alive: str | None
    #: Whether the response said ``Connection: close``.
    connection_close: bool
    #: The redirect target (redacted) of a 3xx response; redirects are not followed.
    location: str | None = None


@dataclass(frozen=True)
class AlpnCheck:
    """One TLS handshake offering exactly ``offered``."""

    offered: tuple[str, ...]
    selected: str | None
    error: str | None = None


@dataclass
class ProbeResult:
    target: Target
    requests: list[RequestResult]
    stats: Stats
    timeout: tuple[float, float]
    #: What verified the server: True (the default CA bundle), a CA path, or False.
    verify: bool | str
    #: None for http or through a proxy: ALPN not checked.
    alpn: list[AlpnCheck] | None
    advice: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: The proxy the requests went through (redacted), if any.
    proxy: str | None = None


def _ssl_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return str(exc.verify_message)
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).replace("_", " ").lower()
    return printable(str(exc)) or type(exc).__name__


def _check_alpn(
    target: Target, ca_location: str | None, offer: str, timeout: tuple[float, float]
) -> AlpnCheck:
    # A fresh context: _upstream.tls shares its contexts, and ALPN is set per handshake here.
    context = build_context(ca_location)
    context.set_alpn_protocols([offer])
    try:
        with socket.create_connection((target.host, target.port), timeout=timeout[0]) as raw:
            raw.settimeout(timeout[1])
            with context.wrap_socket(raw, server_hostname=target.host) as tls:
                return AlpnCheck((offer,), tls.selected_alpn_protocol())
    except ssl.SSLError as exc:
        return AlpnCheck((offer,), None, f"TLS handshake failed: {_ssl_reason(exc)}")
    except OSError as exc:
        return AlpnCheck((offer,), None, printable(exc.strerror or type(exc).__name__))


def _telemetry_session(timeout: tuple[float, float], verify: bool | str, http2: bool) -> Session:
    # Telemetry on even under KEEPWARM_TELEMETRY=false: the probe is made of its counters.
    try:
        return Session(timeout=timeout, max_retries=0, verify=verify, telemetry=True, http2=http2)
    except ImportError as exc:
        raise ProbeError(f"--http2: {exc}", EXIT_USAGE) from exc


@contextmanager
def _quiet_if_insecure(insecure: bool) -> Iterator[None]:
    with warnings.catch_warnings():
        if insecure:
            warnings.simplefilter("ignore", InsecureRequestWarning)
        yield


def measure(
    target: Target,
    *,
    requests_count: int = DEFAULT_REQUESTS,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    verify: bool | str = True,
    http2: bool = False,
) -> ProbeResult:
    """Send *requests_count* GETs to *target* through one new Session (offering HTTP/2
    with *http2*); raises
    :class:`ProbeError` for network and configuration failures. The result has no advice
    yet, and only the notes on how it was measured (proxy, ``--insecure``)."""
    notes: list[str] = []
    if verify is False and target.scheme == "https":
        notes.append("TLS certificate verification is off (--insecure)")
    with _quiet_if_insecure(verify is False), _telemetry_session(timeout, verify, http2) as session:
        merged = session.merge_environment_settings(target.url, {}, None, None, None)
        proxy = select_proxy(target.url, merged["proxies"])
        effective_verify: bool | str = merged["verify"]
        ca_location = _check_trust(target, verify, effective_verify)
        if proxy:
            notes.append(
                f"requests go through the proxy {redact_url(proxy)} (from the environment): "
                "connections and timings are to the proxy"
            )
        results = [
            _one_request(session, target, index, requests_count, timeout)
            for index in range(1, requests_count + 1)
        ]
        stats = session.stats()
        alpn: list[AlpnCheck] | None = None
        if target.scheme == "https" and not proxy:
            alpn = [_check_alpn(target, ca_location, offer, timeout) for offer in ALPN_OFFERS]
    return ProbeResult(
        target=target,
        requests=results,
        stats=stats,
        timeout=timeout,
        verify=verify,
        alpn=alpn,
        notes=notes,
        proxy=redact_url(proxy) if proxy else None,
    )


def _check_trust(target: Target, verify: bool | str, effective: bool | str) -> str | None:
    """The CA file or directory that verifies *target* (None: not verifying), loaded
    once here so a missing or unreadable bundle is a clear usage error up front."""
    if target.scheme != "https" or effective is False:
        return None
    source = "--cacert" if isinstance(verify, str) else "the CA bundle"
    if effective is not True and verify is True:
        source = "the CA bundle from REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE"
    try:
        location = resolve_verify(effective)
        build_context(location)
    except ssl.SSLError as exc:
        raise ProbeError(
            f"{source} {printable(str(effective))} holds no usable CA certificate "
            f"({_ssl_reason(exc)})",
            EXIT_USAGE,
        ) from None
    except OSError:
        raise ProbeError(
            f"{source} {printable(str(effective))} does not exist or cannot be read",
            EXIT_USAGE,
        ) from None
    return location


def _one_request(
    session: Session, target: Target, index: int, total: int, timeout: tuple[float, float]
) -> RequestResult:
    try:
        response = session.get(target.url, allow_redirects=False)
    except requests.RequestException as exc:
        where = f" (request {index} of {total})" if index > 1 else ""
        raise ProbeError(_network_message(exc, target, timeout) + where, _exit_code(exc)) from None
    timings = timings_of(response)
    if timings is None:  # pragma: no cover - telemetry is forced on above
        raise ProbeError("no timings were recorded for the response (telemetry is off)")
    connection = {t.strip().lower() for t in response.headers.get("Connection", "").split(",")}
    location = response.headers.get("Location") if response.is_redirect else None
    return RequestResult(
        index=index,
        status=response.status_code,
        timings=timings,
        keep_alive=response.headers.get("Keep-Alive"),
        connection_close="close" in connection,
        location=redact_url(location) if location else None,
    )


# -- errors ---------------------------------------------------------------------------


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        reason = getattr(current, "reason", None)  # urllib3's MaxRetryError
        if isinstance(reason, BaseException) and id(reason) not in seen:
            current = reason
        else:
            current = current.__cause__ or current.__context__


def _find(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    return next((e for e in _causes(exc) if isinstance(e, kind)), None)


def _exit_code(exc: requests.RequestException) -> int:
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema)):
        return EXIT_USAGE
    return EXIT_NETWORK


def _network_message(
    exc: requests.RequestException, target: Target, timeout: tuple[float, float]
) -> str:
    """One line naming the problem; never ``str(exc)``, which holds the query string."""
    address = target.address
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema)):
        return f"malformed URL '{target.display}'"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return (
            f"timed out connecting to {address} after {timeout[0]:g} s "
            "(no answer to the TCP handshake; raise it with --timeout CONNECT,READ)"
        )
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return (
            f"{address} sent no response within {timeout[1]:g} s (read timeout; raise it "
            "with --timeout CONNECT,READ)"
        )
    if isinstance(exc, requests.exceptions.SSLError):
        verify_error = _find(exc, ssl.SSLCertVerificationError)
        if verify_error is not None:
            return (
                f"TLS certificate of {address} is not trusted ({_ssl_reason(verify_error)}): "
                "pass --cacert PATH with the CA that signed it, or --insecure to skip "
                "verification"
            )
        ssl_error = _find(exc, ssl.SSLError)
        reason = _ssl_reason(ssl_error) if ssl_error is not None else "unknown reason"
        hint = " - is it an HTTPS server? try http://" if "wrong version" in reason else ""
        return f"TLS handshake with {address} failed: {reason}{hint}"
    if _find(exc, NameResolutionError) is not None or _find(exc, socket.gaierror) is not None:
        gai = _find(exc, socket.gaierror)
        why = gai.strerror if isinstance(gai, socket.gaierror) and gai.strerror else ""
        suffix = f": {printable(why)}" if why else ""
        return f"cannot resolve the host name '{printable(target.host)}' (DNS){suffix}"
    if _find(exc, ConnectionRefusedError) is not None:
        return f"connection refused by {address}: is the server running?"
    if _find(exc, TimeoutError) is not None:
        return f"timed out talking to {address}"
    connect_error = _find(exc, NewConnectionError)
    if connect_error is not None:
        os_error = _find(connect_error, OSError)
        why = os_error.strerror if isinstance(os_error, OSError) and os_error.strerror else ""
        return f"cannot connect to {address}{': ' + printable(why) if why else ''}"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"{address} closed the connection without a complete response"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return f"the response body from {address} was cut off"
    if isinstance(exc, requests.exceptions.ContentDecodingError):
        return f"the response body from {address} could not be decoded"
    return f"request to {address} failed ({type(exc).__name__})"
