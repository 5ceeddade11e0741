"""``keepwarm run``'s report: each process's counters as a file, merged into one report.

Every Python process under ``keepwarm run`` writes one *process document* when it ends
(:func:`process_document`, JSON: its ``keepwarm.stats()`` per origin and the limits
the advice is measured against). The ``keepwarm run`` process reads them all
(:func:`read_documents`), adds them up (:func:`merge_documents`) and prints
:func:`format_report` to stderr or writes :func:`report_document` as JSON.

The report names origins only (``scheme://host:port``): never a path, query or user
name, so no token in a URL can reach it.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from keepwarm.__about__ import __version__
from keepwarm._stats import COUNTER_FIELDS, HostStats, Limits, Stats, merge_stats
from keepwarm._urls import printable
from keepwarm._values import fields_of

__all__ = [
    "DOCUMENT_VERSION",
    "REPORT_SUFFIX",
    "STARTED_SUFFIX",
    "Collected",
    "collect",
    "format_report",
    "merge_documents",
    "process_document",
    "report_document",
    "stats_from_document",
]

#: The version of a process document; a reader skips documents of another version.
DOCUMENT_VERSION: Final = 1
#: A process's document: ``<token>.json`` in the run directory.
REPORT_SUFFIX: Final = ".json"
#: Written when a process installs keepwarm (or is forked from one that did), so the
#: report can say how many processes never reported (killed, or ended with ``os._exit``).
STARTED_SUFFIX: Final = ".started"
#: Origins the text report lists (the JSON report lists every origin).
TOP_ORIGINS: Final = 5
#: The text report fits a terminal this wide.
WIDTH: Final = 80
#: The origin column of the text report (longer origins are shortened; JSON has them whole).
ORIGIN_WIDTH: Final = WIDTH - 4 - 47

_HOST_FIELDS: Final = frozenset(HostStats.__match_args__)
_LIMIT_FIELDS: Final = frozenset(Limits.__match_args__)


def process_document(stats: Stats, pid: int) -> dict[str, Any]:
    """What one process writes: its counters per origin, and the limits of its sessions."""
    return {
        "version": DOCUMENT_VERSION,
        "pid": pid,
        "hosts": {origin: fields_of(h) for origin, h in stats.hosts.items()},
        "limits": fields_of(stats.limits) if stats.limits else None,
        "distinct_hosts": stats.distinct_hosts,
    }


def stats_from_document(document: Mapping[str, Any]) -> Stats:
    """The :class:`Stats` a process document holds (unknown keys are ignored, so a
    document from a newer keepwarm in another interpreter still reads)."""
    hosts: dict[str, HostStats] = {}
    raw_hosts = document.get("hosts")
    if not isinstance(raw_hosts, Mapping):
        raise ValueError("a process document needs a 'hosts' mapping")
    for origin, values in raw_hosts.items():
        if not isinstance(values, Mapping):
            raise ValueError(f"host {origin!r} of a process document is not a mapping")
        known = {k: v for k, v in values.items() if k in _HOST_FIELDS}
        known["origin"] = str(origin)
        hosts[str(origin)] = HostStats(**known)
    raw_limits = document.get("limits")
    limits = None
    if isinstance(raw_limits, Mapping):
        limits = Limits(**{k: v for k, v in raw_limits.items() if k in _LIMIT_FIELDS})
    distinct = document.get("distinct_hosts")
    return Stats(
        hosts=hosts,
        limits=limits,
        distinct_hosts=distinct if isinstance(distinct, int) else len(hosts),
    )


def merge_documents(documents: Iterable[Mapping[str, Any]]) -> Stats:
    """Every process's counters as one :class:`Stats` (origins' counts added up)."""
    return merge_stats(stats_from_document(d) for d in documents)


@dataclass(frozen=True)
class Collected:
    """What the processes of one run left in the run directory."""

    stats: Stats
    #: Processes that installed keepwarm (started markers).
    started: int
    #: Processes that wrote a document.
    reported: int
    #: Documents that could not be read (cut short, or of another version).
    unreadable: int
    #: Process ids with a started marker and no document yet.
    waiting: frozenset[str] = frozenset()


def _pid_of(name: str) -> str:
    """The process id a run-directory file name starts with (``<pid>-<random>.<kind>``)."""
    return name.partition("-")[0]


def collect(directory: pathlib.Path) -> Collected:
    """Read the run directory: every process document, and the started markers.

    A marker is answered by a document of the same process id: a forked child that
    ``exec``s Python again (``subprocess`` with ``preexec_fn``) starts over under a new
    token in the same process, and that process did report."""
    documents: list[Mapping[str, Any]] = []
    unreadable = 0
    started: set[str] = set()
    reported: set[str] = set()
    for path in sorted(directory.iterdir()):
        if path.name.endswith(STARTED_SUFFIX):
            started.add(_pid_of(path.name))
        elif path.name.endswith(REPORT_SUFFIX):
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(document, Mapping) or document.get("version") != 1:
                    raise ValueError("not a version 1 process document")
                stats_from_document(document)
            except (OSError, ValueError, TypeError):
                unreadable += 1
                continue
            documents.append(document)
            reported.add(_pid_of(path.name))
    return Collected(
        stats=merge_documents(documents),
        started=len(documents) + len(started - reported),
        reported=len(documents),
        unreadable=unreadable,
        waiting=frozenset(started - reported),
    )


def tls_saved(h: HostStats) -> int:
    """HTTPS requests that needed no TLS handshake of their own."""
    if not h.origin.startswith("https://"):
        return 0
    return max(0, h.requests - h.tls_handshakes)


def _origins(stats: Stats) -> list[HostStats]:
    return sorted(stats.hosts.values(), key=lambda h: (-h.requests, h.origin))


def report_document(collected: Collected, exit_status: int) -> dict[str, Any]:
    """The JSON ``--report FILE`` gets; its keys are documented in docs/run.md."""
    stats = collected.stats
    origins = [
        {
            "origin": h.origin,
            "requests": h.requests,
            "connections_opened": h.connections_opened,
            "reused": h.reused,
            "tls_handshakes": h.tls_handshakes,
            "tls_handshakes_saved": tls_saved(h),
            "discarded": h.discarded,
            "peak_in_flight": h.peak_in_flight,
        }
        for h in _origins(stats)
    ]
    totals = {name: getattr(stats, name) for name in COUNTER_FIELDS}
    return {
        "keepwarm_version": __version__,
        "exit_status": exit_status,
        "processes": {
            "started": collected.started,
            "reported": collected.reported,
            "unreadable": collected.unreadable,
        },
        **totals,
        "tls_handshakes_saved": sum(tls_saved(h) for h in stats.hosts.values()),
        "origins": origins,
        "advice": stats.advice(),
    }


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _percent(part: int, whole: int) -> str:
    return f"{math.floor(100 * part / whole)} %" if whole else "-"


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def format_report(collected: Collected, *, sigterm: bool = False) -> str:
    """The report ``keepwarm run`` prints to stderr: at most :data:`WIDTH` columns.
    ``sigterm``: whether processes were asked to report when SIGTERM ends them (without
    it, a process that did not report brings a line saying how they could have)."""
    stats = collected.stats
    saved = sum(tls_saved(h) for h in stats.hosts.values())
    https_requests = sum(h.requests for h in stats.hosts.values() if h.origin.startswith("https"))
    lines = [
        f"keepwarm run: {_count(stats.requests, 'request')}, "
        f"{_count(stats.connections_opened, 'connection')} opened, {stats.reused} reused "
        f"({_percent(stats.reused, stats.requests)})",
        f"  TLS handshakes: {stats.tls_handshakes} made, {saved} saved "
        f"(of {_count(https_requests, 'HTTPS request')})",
        f"  pool-full discards: {stats.discarded}",
        "  " + _processes_line(collected),
    ]
    if collected.started > collected.reported and not sigterm:
        lines.append(SIGTERM_HINT)
    if stats.hosts:
        lines.append(
            f"  {'top origins':<{ORIGIN_WIDTH + 2}}{'requests':>9}{'opened':>8}{'reused':>8}"
            f"{'tls saved':>11}{'discarded':>11}"
        )
        for h in _origins(stats)[:TOP_ORIGINS]:
            name = _shorten(printable(h.origin), ORIGIN_WIDTH)
            lines.append(
                f"    {name:<{ORIGIN_WIDTH}}{h.requests:>9}{h.connections_opened:>8}"
                f"{h.reused:>8}{tls_saved(h):>11}{h.discarded:>11}"
            )
        more = len(stats.hosts) - TOP_ORIGINS
        if more > 0:
            lines.append(f"    ... and {more} more origins (--report FILE lists them all)")
    advice = stats.advice()
    if advice:
        lines.append("  advice:")
        for item in advice:
            lines.extend(
                textwrap.wrap(
                    printable(item),
                    WIDTH,
                    initial_indent="  - ",
                    subsequent_indent="    ",
                    break_long_words=True,
                    break_on_hyphens=False,
                )
            )
    return "\n".join(lines)


#: Under the processes line when some did not report and ``--sigterm`` was not given.
SIGTERM_HINT: Final = "    (a process ended by SIGTERM reports first with keepwarm run --sigterm)"


def _processes_line(collected: Collected) -> str:
    if collected.reported == 0:
        return "processes: none reported (none imported requests, or none ended normally)"
    missing = collected.started - collected.reported
    line = f"processes: {collected.reported} reported"
    if missing > 0:
        line += f", {missing} did not (killed, or os._exit): counts are partial"
    if collected.unreadable:
        line += f", {collected.unreadable} unreadable"
    return line


def write_json(path: pathlib.Path, document: Mapping[str, Any]) -> None:
    """Write ``document`` to ``path`` whole or not at all (a temporary file renamed)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
