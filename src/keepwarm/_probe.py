"""``keepwarm probe URL``: a cold request against warm ones, phase by phase.

Like httpstat, but about connection reuse. N GET requests go through one
:class:`keepwarm.Session` (telemetry on, no retries, so nothing hides what happened); the
first one is cold (DNS, TCP, TLS), the others should ride the same connection. The report
shows the phases of the cold request and the median phases of the warm ones as a text
waterfall, the connections opened for the N requests, whether and for how long the server
keeps connections alive, the HTTP and TLS versions, the protocols the server selects by
ALPN, the status codes and keepwarm's advice.

Nothing printed carries a secret: URL passwords and query-string values are replaced by
``***`` (a user name without a password too, as it is often a token); request headers
(``Authorization``, ``Cookie``) are never printed; error lines are written here, not taken
from urllib3, whose messages include the query string.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import os
import shutil
import socket
import ssl
import statistics
import textwrap
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, TextIO
from urllib.parse import urlsplit

import requests
from requests.utils import select_proxy
from urllib3.exceptions import InsecureRequestWarning, NameResolutionError, NewConnectionError

from keepwarm._registry import timings as timings_of
from keepwarm._session import Session
from keepwarm._stats import HostStats, Stats, reuse_advice
from keepwarm._telemetry import Timings
from keepwarm._upstream.pool import parse_keep_alive_timeout
from keepwarm._upstream.tls import build_context, resolve_verify

__all__ = [
    "DEFAULT_REQUESTS",
    "DEFAULT_TIMEOUT",
    "MAX_REQUESTS",
    "PHASES",
    "ProbeError",
    "ProbeResult",
    "format_report",
    "parse_target",
    "parse_timeout",
    "redact_url",
    "result_as_dict",
    "run_command",
    "run_probe",
]

DEFAULT_REQUESTS: Final = 5
MAX_REQUESTS: Final = 100
#: (connect, read) seconds, keepwarm's own default.
DEFAULT_TIMEOUT: Final = (3.0, 7.0)
MAX_TIMEOUT: Final = 600.0
PHASES: Final = ("dns", "connect", "tls", "send", "wait", "receive")
#: What the ALPN check offers, one protocol per handshake.
ALPN_OFFERS: Final = ("h2", "http/1.1")

#: Exit codes: usage errors (bad URL, option, CA file) and network errors.
EXIT_USAGE: Final = 2
EXIT_NETWORK: Final = 1

_REDACTED: Final = "***"
_FALLBACK_TERMINAL: Final = (80, 24)
_MIN_WIDTH: Final = 60
_MAX_WIDTH: Final = 160


class ProbeError(Exception):
    """A failure reported as one line on stderr with *exit_code*; never a traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_NETWORK) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


# -- URLs and options -----------------------------------------------------------------


def _printable(text: str) -> str:
    """*text* with control and non-ASCII characters escaped, so any terminal prints it."""
    return "".join(
        c if 32 <= ord(c) < 127 else c.encode("unicode_escape").decode("ascii") for c in text
    )


def redact_url(url: str) -> str:
    """*url* for display: the password (or a lone user name), every query-string value
    and the fragment replaced by ``***``; works on malformed URLs too."""
    url, hash_mark, fragment = url.partition("#")
    base, question_mark, query = url.partition("?")
    scheme_end = base.find("://")
    if scheme_end >= 0:
        start = scheme_end + 3
        slash = base.find("/", start)
        end = slash if slash >= 0 else len(base)
        authority = base[start:end]
        if "@" in authority:
            userinfo, _, hostport = authority.rpartition("@")
            user, colon, _password = userinfo.partition(":")
            shown = f"{user}:{_REDACTED}" if colon and user else _REDACTED
            base = f"{base[:start]}{shown}@{hostport}{base[end:]}"
    if question_mark:
        parts = []
        for part in query.split("&"):
            name, equals, _value = part.partition("=")
            parts.append(f"{name}={_REDACTED}" if equals else (_REDACTED if part else ""))
        base = f"{base}?{'&'.join(parts)}"
    if hash_mark:
        base = f"{base}#{_REDACTED}" if fragment else f"{base}#"
    return _printable(base)


@dataclass(frozen=True)
class Target:
    """The URL to probe, checked, and how to name it in output."""

    url: str
    scheme: str
    host: str
    port: int
    #: The URL with its secrets redacted.
    display: str

    @property
    def address(self) -> str:
        """``host:port`` (IPv6 in brackets), for messages."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return _printable(f"{host}:{self.port}")


def parse_target(url: str) -> Target:
    """Check *url* (http or https, with a host); :class:`ProbeError` (exit 2) if not."""
    display = redact_url(url)
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise ProbeError(
            f"malformed URL '{display}': it contains spaces or control characters", EXIT_USAGE
        )
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        raise ProbeError(
            f"malformed URL '{display}': no scheme; did you mean 'http://{redact_url(url)}'?",
            EXIT_USAGE,
        )
    scheme = scheme.lower()
    if scheme not in ("http", "https"):
        raise ProbeError(
            f"unsupported scheme '{_printable(scheme)}' in '{display}': only http and https "
            "URLs can be probed",
            EXIT_USAGE,
        )
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError as exc:  # a bad port, or brackets that do not close
        raise ProbeError(f"malformed URL '{display}': {exc}", EXIT_USAGE) from None
    if not host:
        raise ProbeError(f"malformed URL '{display}': no host name", EXIT_USAGE)
    if port == 0:
        raise ProbeError(f"malformed URL '{display}': port 0", EXIT_USAGE)
    default_port = 443 if scheme == "https" else 80
    return Target(url, scheme, host, port or default_port, display)


def parse_timeout(text: str) -> tuple[float, float]:
    """``--timeout``: ``SECONDS`` for both, or ``CONNECT,READ``; an argparse ``type``."""
    pieces = [p.strip() for p in text.split(",")]
    if len(pieces) > 2:
        raise argparse.ArgumentTypeError(f"expected SECONDS or CONNECT,READ, got {text!r}")
    values = []
    for piece in pieces:
        try:
            value = float(piece)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected seconds (SECONDS or CONNECT,READ), got {text!r}"
            ) from None
        if not math.isfinite(value) or not 0 < value <= MAX_TIMEOUT:
            raise argparse.ArgumentTypeError(
                f"seconds must be above 0 and at most {MAX_TIMEOUT:g}, got {piece!r}"
            )
        values.append(value)
    return (values[0], values[-1])


# -- running the probe ----------------------------------------------------------------


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
    return _printable(str(exc)) or type(exc).__name__


def _check_alpn(
    target: Target, ca_location: str | None, offer: str, timeout: tuple[float, float]
) -> AlpnCheck:
    # A fresh context: _tls shares its contexts, and ALPN is set per handshake here.
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
        return AlpnCheck((offer,), None, _printable(exc.strerror or type(exc).__name__))


def _telemetry_session(timeout: tuple[float, float], verify: bool | str) -> Session:
    # Telemetry on even under KEEPWARM_TELEMETRY=false: the probe is made of its counters.
    return Session(timeout=timeout, max_retries=0, verify=verify, telemetry=True)


@contextmanager
def _quiet_if_insecure(insecure: bool) -> Iterator[None]:
    with warnings.catch_warnings():
        if insecure:
            warnings.simplefilter("ignore", InsecureRequestWarning)
        yield


def run_probe(
    target: Target,
    *,
    requests_count: int = DEFAULT_REQUESTS,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    verify: bool | str = True,
) -> ProbeResult:
    """Send *requests_count* GETs to *target* through one new Session; raises
    :class:`ProbeError` for network and configuration failures."""
    notes: list[str] = []
    if verify is False and target.scheme == "https":
        notes.append("TLS certificate verification is off (--insecure)")
    with _quiet_if_insecure(verify is False), _telemetry_session(timeout, verify) as session:
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
    result = ProbeResult(
        target=target,
        requests=results,
        stats=stats,
        timeout=timeout,
        verify=verify,
        alpn=alpn,
        notes=notes,
        proxy=redact_url(proxy) if proxy else None,
    )
    result.advice = _advice(result)
    result.notes.extend(_observations(result))
    return result


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
            f"{source} {_printable(str(effective))} holds no usable CA certificate "
            f"({_ssl_reason(exc)})",
            EXIT_USAGE,
        ) from None
    except OSError:
        raise ProbeError(
            f"{source} {_printable(str(effective))} does not exist or cannot be read",
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
        suffix = f": {_printable(why)}" if why else ""
        return f"cannot resolve the host name '{_printable(target.host)}' (DNS){suffix}"
    if _find(exc, ConnectionRefusedError) is not None:
        return f"connection refused by {address}: is the server running?"
    if _find(exc, TimeoutError) is not None:
        return f"timed out talking to {address}"
    connect_error = _find(exc, NewConnectionError)
    if connect_error is not None:
        os_error = _find(connect_error, OSError)
        why = os_error.strerror if isinstance(os_error, OSError) and os_error.strerror else ""
        return f"cannot connect to {address}{': ' + _printable(why) if why else ''}"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"{address} closed the connection without a complete response"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return f"the response body from {address} was cut off"
    if isinstance(exc, requests.exceptions.ContentDecodingError):
        return f"the response body from {address} could not be decoded"
    return f"request to {address} failed ({type(exc).__name__})"


# -- what the numbers say -------------------------------------------------------------


def _median_phases(rows: Sequence[Timings]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name in (*PHASES, "total"):
        values = [v for v in (getattr(t, name) for t in rows) if v is not None]
        out[name] = statistics.median(values) if values else None
    return out


def _phases(t: Timings) -> dict[str, float | None]:
    return {name: getattr(t, name) for name in (*PHASES, "total")}


def _host(result: ProbeResult) -> HostStats | None:
    return next(iter(result.stats.hosts.values()), None)


def _summary(result: ProbeResult) -> dict[str, Any]:
    """The figures both the table and the JSON show."""
    stats = result.stats
    warm = result.requests[1:]
    warm_reused = sum(1 for r in warm if r.timings.reused)
    kept_alive: bool | None = None if not warm else warm_reused == len(warm)
    header = next((r.keep_alive for r in result.requests if r.keep_alive), None)
    host = _host(result)
    keep_alive_timeout = host.keep_alive_timeout if host is not None else None
    if keep_alive_timeout is None:
        keep_alive_timeout = parse_keep_alive_timeout(header)
    http_versions = sorted(
        {r.timings.http_version for r in result.requests if r.timings.http_version}
    )
    tls_versions = sorted({r.timings.tls_version for r in result.requests if r.timings.tls_version})
    statuses = Counter(r.status for r in result.requests)
    return {
        "requests": len(result.requests),
        "connections_opened": stats.connections_opened,
        "reused": stats.reused,
        "tls_handshakes": stats.tls_handshakes,
        "dropped": stats.dropped,
        "stale_retries": stats.stale_retries,
        "warm_reused": warm_reused,
        "kept_alive": kept_alive,
        "keep_alive_header": header,
        "keep_alive_timeout": keep_alive_timeout,
        "connection_close": any(r.connection_close for r in result.requests),
        "http_version": ", ".join(http_versions) or None,
        "tls_version": ", ".join(tls_versions) or None,
        "status_codes": {str(code): n for code, n in sorted(statuses.items())},
        "ttfb_p50": _seconds(host.ttfb_p50) if host is not None else None,
    }


def _alpn_selected(checks: Sequence[AlpnCheck]) -> list[str]:
    """The protocols the server selected when offered alone."""
    return [c.offered[0] for c in checks if c.selected is not None and c.selected == c.offered[0]]


def _advice(result: ProbeResult) -> list[str]:
    advice = list(result.stats.advice())
    summary = _summary(result)
    host = _host(result)
    warm = len(result.requests) - 1
    if host is None or summary["warm_reused"] == warm:
        return advice
    if reuse_advice(host):
        return advice  # stats().advice() has said it already
    opened, n = summary["connections_opened"], summary["requests"]
    tls = " and a TLS handshake" if result.target.scheme == "https" else ""
    if summary["connection_close"]:
        advice.append(
            f"{host.origin}: the server answered Connection: close, so {opened} of {n} "
            f"requests paid a new connection{tls}: enable HTTP keep-alive on the server "
            "(or on the proxy or load balancer in front of it)"
        )
    else:
        advice.append(
            f"{host.origin}: the server closed connections after responses without "
            f"announcing it (no Connection: close): {opened} connections for {n} requests; "
            "check its keep-alive settings"
        )
    return advice


def _observations(result: ProbeResult) -> list[str]:
    notes = []
    summary = _summary(result)
    if summary["stale_retries"]:
        notes.append(
            f"{summary['stale_retries']} request(s) found the kept connection already closed "
            "by the server and were resent on a new connection"
        )
    redirect = next((r for r in result.requests if r.location), None)
    if redirect is not None:
        notes.append(
            f"the server redirects ({redirect.status}) to {redirect.location}; redirects are "
            "not followed: probe that URL to measure it"
        )
    return notes


# -- output ---------------------------------------------------------------------------


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def result_as_dict(result: ProbeResult) -> dict[str, Any]:
    """Plain data for ``--json``: phases in seconds (None: the phase did not happen)."""
    per_request = []
    for r in result.requests:
        t = r.timings
        per_request.append(
            {
                "index": r.index,
                "status": r.status,
                "reused": t.reused,
                "http_version": t.http_version,
                "tls_version": t.tls_version,
                **{name: _seconds(v) for name, v in _phases(t).items()},
                "keep_alive": r.keep_alive,
                "connection_close": r.connection_close,
                "location": r.location,
            }
        )
    warm = _median_phases([r.timings for r in result.requests[1:]]) if result.requests[1:] else None
    verify = result.verify if isinstance(result.verify, bool) else _printable(result.verify)
    host = _host(result)
    return {
        "url": result.target.display,
        "origin": host.origin if host is not None else None,
        "method": "GET",
        "timeout": {"connect": result.timeout[0], "read": result.timeout[1]},
        "verify": verify,
        "proxy": result.proxy,
        "cold": {name: _seconds(v) for name, v in _phases(result.requests[0].timings).items()},
        "warm_median": None if warm is None else {n: _seconds(v) for n, v in warm.items()},
        "per_request": per_request,
        "summary": _summary(result),
        "alpn": None if result.alpn is None else _alpn_selected(result.alpn),
        "alpn_checks": None
        if result.alpn is None
        else [
            {"offered": list(c.offered), "selected": c.selected, "error": c.error}
            for c in result.alpn
        ],
        "advice": result.advice,
        "notes": result.notes,
    }


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1000
    if ms >= 100:
        return f"{ms:.0f} ms"
    if ms >= 10:
        return f"{ms:.1f} ms"
    return f"{ms:.2f} ms"


def terminal_width() -> int:
    """The terminal's columns (80 when not a terminal), kept within 60..160."""
    columns = shutil.get_terminal_size(_FALLBACK_TERMINAL).columns
    return max(_MIN_WIDTH, min(_MAX_WIDTH, columns))


_LABEL = 9  # "  receive"
_TIME = 10  # "  1.71 ms"


def _waterfall(
    phases: dict[str, float | None], scale_max: float, bar_width: int, dns_note: str = ""
) -> list[str]:
    lines = []
    per_second = bar_width / scale_max if scale_max > 0 else 0.0
    offset = 0.0
    for name in (*PHASES, "total"):
        value = phases[name]
        bar = ""
        if value is not None:
            start = 0 if name == "total" else min(bar_width - 1, round(offset * per_second))
            length = max(1, round(value * per_second))
            bar = " " * start + "#" * max(1, min(length, bar_width - start))
            if name != "total":
                offset += value
        if name == "dns" and value is None and dns_note:
            bar = dns_note
        label = f"  {name}".ljust(_LABEL)
        lines.append(f"{label}{_ms(value).rjust(_TIME)}  {bar}".rstrip())
    return lines


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _alpn_text(checks: list[AlpnCheck] | None, scheme: str, proxy: str | None) -> str:
    if checks is None:
        return (
            "not checked (through a proxy)"
            if proxy and scheme == "https"
            else ("not applicable (http)")
        )
    selected = _alpn_selected(checks)
    failed = [c for c in checks if c.error]
    if selected == list(ALPN_OFFERS):
        text = "h2, http/1.1 (keepwarm speaks HTTP/1.1)"
    elif selected == ["h2"]:
        text = "h2 only (keepwarm speaks HTTP/1.1)"
    elif selected == ["http/1.1"]:
        text = "http/1.1 only"
    else:
        text = "none negotiated (the server selects no protocol by ALPN)"
    if failed:
        details = "; ".join(f"offering {c.offered[0]}: {c.error}" for c in failed)
        text = f"{text}; {details}"
    return text


def format_report(result: ProbeResult, width: int | None = None) -> str:
    """The table: waterfalls of the cold and warm requests, then the summary."""
    width = terminal_width() if width is None else max(_MIN_WIDTH, width)
    bar_width = width - _LABEL - _TIME - 2 - 1
    summary = _summary(result)
    n = len(result.requests)
    cold = _phases(result.requests[0].timings)
    warm_rows = [r.timings for r in result.requests[1:]]
    warm = _median_phases(warm_rows) if warm_rows else None
    totals = [v for v in (cold["total"], warm["total"] if warm else None) if v is not None]
    scale_max = max(totals, default=0.0)

    t = result.timeout
    timeout = f"{t[0]:g} s" if t[0] == t[1] else f"connect {t[0]:g} s, read {t[1]:g} s"
    lines = [
        f"keepwarm probe {result.target.display}",
        f"{n} GET request{'s' if n != 1 else ''} on one keepwarm.Session "
        f"(timeout {timeout}, no retries)",
    ]
    lines.extend(f"note: {note}" for note in result.notes)
    lines.append("")
    axis = f"0 ms{_ms(scale_max).rjust(bar_width - 4)}" if bar_width > 12 else ""
    lines.append(f"{' ' * (_LABEL + _TIME + 2)}{axis}")
    first = result.requests[0].timings
    lines.append(f"cold: request 1, {'reused connection' if first.reused else 'new connection'}")
    dns_note = "(IP address: no lookup)" if _is_ip(result.target.host) else ""
    lines.extend(_waterfall(cold, scale_max, bar_width, dns_note))
    lines.append("")
    if warm is not None:
        span = "request 2" if n == 2 else f"requests 2-{n}"
        lines.append(
            f"warm: median of {span}, {summary['warm_reused']} of {n - 1} on a reused connection"
        )
        lines.extend(_waterfall(warm, scale_max, bar_width))
    else:
        lines.append("warm: none (-n 1); use -n 2 or more to see reuse")
    lines.append("")

    reused = summary["reused"]
    rows: list[tuple[str, str]] = [
        (
            "connections",
            f"{summary['connections_opened']} opened for {n} request{'s' if n != 1 else ''} "
            f"({reused} reused a connection)",
        )
    ]
    kept = summary["kept_alive"]
    if kept is None:
        kept_text = "unknown: one request only (use -n 2 or more)"
    elif kept:
        kept_text = "yes: the warm requests reused the connection"
    elif summary["warm_reused"]:
        kept_text = f"partly: {summary['warm_reused']} of {n - 1} warm requests reused one"
    else:
        kept_text = "no: every request opened a new connection"
    rows.append(("reused", kept_text))
    header, seconds = summary["keep_alive_header"], summary["keep_alive_timeout"]
    if seconds is not None:
        keep_text = f"{seconds:g} s (Keep-Alive: {_printable(header or '')})"
    elif summary["connection_close"]:
        keep_text = "none: the server sent Connection: close"
    else:
        keep_text = "not announced (no Keep-Alive header)"
    if seconds is not None and summary["connection_close"]:
        keep_text += "; Connection: close also sent"
    rows.append(("keep-alive", keep_text))
    rows.append(("HTTP", summary["http_version"] or "unknown"))
    tls = summary["tls_version"]
    rows.append(
        ("TLS", tls or ("not applicable (http)" if result.target.scheme == "http" else "-"))
    )
    rows.append(("ALPN", _alpn_text(result.alpn, result.target.scheme, result.proxy)))
    statuses = summary["status_codes"]
    if len(statuses) == 1:
        code, count = next(iter(statuses.items()))
        status_text = f"{code} (all {count})" if count > 1 else code
    else:
        status_text = ", ".join(f"{code} x{count}" for code, count in statuses.items())
    rows.append(("status", status_text))

    label_width = max(len(label) for label, _ in rows) + 2
    wrap_width = max(20, width - label_width)
    for label, text in rows:
        lines.append(f"{label.ljust(label_width)}{text}")
    advice = result.advice or [
        "no advice: connections were reused"
        if kept is not False
        else "no advice from keepwarm's counters"
    ]
    for i, item in enumerate(advice):
        wrapped = textwrap.wrap(_printable(item), wrap_width) or [""]
        for j, piece in enumerate(wrapped):
            label = "advice" if i == 0 and j == 0 else ""
            prefix = ("- " if j == 0 else "  ") if result.advice else ""
            lines.append(f"{label.ljust(label_width)}{prefix}{piece}")
    return "\n".join(lines) + "\n"


# -- the command ----------------------------------------------------------------------


def run_command(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """``keepwarm probe``: print the report (or JSON); one line on stderr on failure."""
    try:
        target = parse_target(args.url)
        verify: bool | str = True
        if args.insecure:
            verify = False
        elif args.cacert is not None:
            if not os.path.exists(args.cacert):
                raise ProbeError(
                    f"--cacert {_printable(args.cacert)}: no such file or directory", EXIT_USAGE
                )
            verify = args.cacert
        result = run_probe(target, requests_count=args.n, timeout=args.timeout, verify=verify)
    except ProbeError as exc:
        stderr.write(f"keepwarm probe: {exc.message}\n")
        return exc.exit_code
    if args.json:
        json.dump(result_as_dict(result), stdout, indent=2)
        stdout.write("\n")
    else:
        stdout.write(format_report(result))
    return 0
