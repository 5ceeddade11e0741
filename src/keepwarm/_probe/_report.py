"""Reporting ``keepwarm probe``: what the figures say and how they are shown.

From a measured :class:`~keepwarm._probe._run.ProbeResult`: the summary both outputs
share, keepwarm's advice and the other observations (:func:`advise`,
:func:`observations`), the text report with the waterfalls of the cold request and of
the median warm one (:func:`format_report`), and the plain data of ``--json``
(:func:`result_as_dict`). Request headers (``Authorization``, ``Cookie``) are never shown.
"""

from __future__ import annotations

import shutil
import statistics
import textwrap
from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

from keepwarm._advice import reuse_advice
from keepwarm._probe._options import printable
from keepwarm._probe._run import ALPN_OFFERS, AlpnCheck, ProbeResult
from keepwarm._stats import HostStats
from keepwarm._telemetry import Timings
from keepwarm._upstream.pool import parse_keep_alive_timeout
from keepwarm._urls import is_ip

__all__ = [
    "PHASES",
    "advise",
    "format_report",
    "observations",
    "result_as_dict",
    "slow_warm_advice",
    "terminal_width",
]

PHASES: Final = ("dns", "connect", "tls", "send", "wait", "receive")

#: A warm request's wait + receive this much above the cold one's counts as stalled:
#: below the smallest delayed-ACK timer (40 ms on Linux; 100-200 ms elsewhere), far
#: above loopback and LAN jitter.
STALL_SECONDS: Final = 0.025
#: ... and it must be this many times the cold one's, so a slow server is not taken for it.
STALL_FACTOR: Final = 2.0
#: Share of the reused warm requests that must stall (at least two of them): consistently.
STALL_SHARE: Final = 0.75

_FALLBACK_TERMINAL: Final = (80, 24)
_MIN_WIDTH: Final = 60
_MAX_WIDTH: Final = 160


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


def _server_time(t: Timings) -> float | None:
    """From the request sent to the body read: what the server and the network took."""
    if t.wait is None:
        return None
    return t.wait + (t.receive or 0.0)


def slow_warm_advice(origin: str, cold: Timings, warm: Sequence[Timings]) -> list[str]:
    """Advice when the warm requests on a reused connection consistently wait much longer
    for their answer than the cold one: the pattern of Nagle's algorithm on the server
    meeting delayed ACKs on the client (a response written in several small sends; the
    later ones wait for the ACK of the first, which the client delays by ~40 ms). A new
    connection hides it, because a fresh TCP connection ACKs at once (quick-ACK mode)."""
    cold_time = _server_time(cold)
    reused = [x for x in (_server_time(t) for t in warm if t.reused) if x is not None]
    if cold_time is None or len(reused) < 2:
        return []
    stalled = [
        x for x in reused if x - cold_time >= STALL_SECONDS and x >= STALL_FACTOR * cold_time
    ]
    if len(stalled) < max(2, STALL_SHARE * len(reused)):
        return []
    extra = statistics.median(stalled) - cold_time
    return [
        f"{origin}: the warm requests on a reused connection wait {extra * 1000:.0f} ms "
        f"longer for their answer than the cold one ({len(stalled)} of {len(reused)}; "
        f"{statistics.median(reused) * 1000:.1f} ms against {cold_time * 1000:.1f} ms): "
        "the pattern of Nagle's algorithm on the server meeting delayed ACKs on the client "
        "(~40 ms on Linux, up to 200 ms elsewhere), when the server writes one response in "
        "several small sends; set TCP_NODELAY on the server's sockets (or have it write "
        "each response in one send)"
    ]


def advise(result: ProbeResult) -> list[str]:
    return [*_reuse_advice(result), *_stall_advice(result)]


def _stall_advice(result: ProbeResult) -> list[str]:
    host = _host(result)
    if host is None or len(result.requests) < 3:
        return []
    warm = [r.timings for r in result.requests[1:]]
    return slow_warm_advice(host.origin, result.requests[0].timings, warm)


def _reuse_advice(result: ProbeResult) -> list[str]:
    advice = list(result.stats.advice())
    summary = _summary(result)
    host = _host(result)
    warm = len(result.requests) - 1
    if host is None or summary["warm_reused"] == warm:
        return advice
    opened, n = summary["connections_opened"], summary["requests"]
    tls = " and a TLS handshake" if result.target.scheme == "https" else ""
    generic = reuse_advice(host)
    if summary["http_version"] == "HTTP/1.0" and summary["warm_reused"] == 0:
        # The cause is the protocol, not a keep-alive setting: say that instead of the
        # counters' generic line.
        advice = [line for line in advice if line not in generic]
        advice.append(
            f"{host.origin}: the server speaks HTTP/1.0 and closes the connection after "
            f"every response, so {opened} of {n} requests paid a new connection{tls}; no "
            "keep-alive setting on the client changes that: serve HTTP/1.1 (e.g. "
            "protocol_version = 'HTTP/1.1' for python -m http.server's handler) or put an "
            "HTTP/1.1 reverse proxy in front of it"
        )
        return advice
    if generic:
        return advice  # stats().advice() has said it already
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


def observations(result: ProbeResult) -> list[str]:
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
    verify = result.verify if isinstance(result.verify, bool) else printable(result.verify)
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
        text = "h2, http/1.1 (keepwarm offers h2 with http2=True, --http2 here)"
    elif selected == ["h2"]:
        text = "h2 only (keepwarm offers h2 with http2=True, --http2 here)"
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
    dns_note = "(IP address: no lookup)" if is_ip(result.target.host) else ""
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
        keep_text = f"{seconds:g} s (Keep-Alive: {printable(header or '')})"
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
    if kept is None:  # -n 1: nothing was reused, and nothing could be
        no_advice = "no advice: one request cannot show reuse (use -n 2 or more)"
    elif kept:
        no_advice = "no advice: connections were reused"
    else:
        no_advice = "no advice from keepwarm's counters"
    advice = result.advice or [no_advice]
    for i, item in enumerate(advice):
        wrapped = textwrap.wrap(printable(item), wrap_width) or [""]
        for j, piece in enumerate(wrapped):
            label = "advice" if i == 0 and j == 0 else ""
            prefix = ("- " if j == 0 else "  ") if result.advice else ""
            lines.append(f"{label.ljust(label_width)}{prefix}{piece}")
    return "\n".join(lines) + "\n"
