"""The report of ``keepwarm bench``: plain tables, rich tables with a live progress bar,
and JSON.

One description of the tables (:func:`build_report`) feeds both renderers, so the plain
text (for pipes, logs and tests) and the rich version (for a terminal) always agree.
"""

from __future__ import annotations

import json
import math
import textwrap
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

__all__ = [
    "Report",
    "build_report",
    "format_table",
    "make_rich_progress",
    "print_rich",
    "render_lines",
    "rich_available",
    "write_json",
]

#: Short headers, so that the main tables fit an 80-column terminal; LEGEND says what
#: each one means.
_SEQUENTIAL_COLUMNS = ["scenario", "req/s", "p50", "p99", "ratio", "conns", "TLS", "TW"]
_CONCURRENT_COLUMNS = [
    "pattern",
    "scenario",
    "req/s",
    "p50",
    "p99",
    "ratio",
    "conns",
    "disc",
    "TLS",
    "TW",
]

LEGEND = (
    "req/s: median over rounds; p50, p99: latency in ms over every request; "
    "ratio: req/s / requests.Session's (base) in the same round, median over rounds; "
    "conns: connections the server accepted; TLS: TLS handshakes; "
    "TW: sockets left in TIME_WAIT"
)
_DISCARDED_NOTE = (
    "disc: connections closed on return because the pool was full (urllib3's "
    '"Connection pool is full, discarding connection" warnings)'
)
#: Columns between table cells.
_GAP = 2


@dataclass
class Table:
    title: str
    columns: list[str]
    #: How many leading columns are text (left-aligned); the rest are numbers.
    text_columns: int
    rows: list[list[str]] = field(default_factory=list)
    footer: list[str] = field(default_factory=list)

    def width(self) -> int:
        """Columns the table takes laid out horizontally, every cell whole."""
        rows = [self.columns, *self.rows]
        widths = [max(len(row[i]) for row in rows) for i in range(len(self.columns))]
        return sum(widths) + _GAP * (len(widths) - 1)


@dataclass
class Report:
    header: list[str]
    tables: list[Table]
    footer: list[str]
    #: What the short column headers mean (one line, wrapped to the terminal).
    legend: list[str] = field(default_factory=list)


def _rate(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _count(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def _ratio(scenario: dict[str, Any], key: str, baseline: str | None) -> str:
    if key == baseline:
        return "base"
    value = scenario.get("vs_baseline")
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.2f}x"


def _metrics(scenario: dict[str, Any], key: str, baseline: str | None) -> list[str]:
    return [
        _rate(scenario["requests_per_second"]),
        _ms(scenario["p50_ms"]),
        _ms(scenario["p99_ms"]),
        _ratio(scenario, key, baseline),
        _count(scenario["connections"]),
    ]


def _idle_note(where: str, scenario: dict[str, Any]) -> list[str]:
    """Why a keepwarm.Session opened more connections than the others: it closed idle
    ones itself (its keepalive_expiry) while the other scenarios' batches ran."""
    n = scenario.get("idle_expired")
    if not n:
        return []
    s = "" if n == 1 else "s"
    return [
        f"{where}: {scenario['scenario']} reopened {n} connection{s} that its "
        "keepalive_expiry closed while idle between batches"
    ]


def _header(result: dict[str, Any]) -> list[str]:
    config, env = result["config"], result["environment"]
    if config["url"]:
        where = f"client side only, against {config['url']}"
    elif config["server"] == "nginx":
        where = f"nginx {env.get('nginx') or ''} (separate process) on 127.0.0.1".replace("  ", " ")
    else:
        where = "embedded server (separate process) on 127.0.0.1"
    if config["rtt_ms"] is not None:
        where += f", through a latency proxy adding {config['rtt_ms']:g} ms of RTT"
    if "https" not in config["schemes"]:
        trust = "HTTP only: no TLS, so no certificate is verified"
    else:
        if not config["url"]:
            bundle = "certifi's + a throwaway CA"
        else:
            bundle = "certifi's + the --cacert file" if config.get("cacert") else "certifi's"
        trust = (
            f"CA bundle: {config['ca_bundle_certificates']} certificates ({bundle}); every "
            "client verifies against it"
        )
    versions = ", ".join(
        f"{name} {env[name]}"
        for name in ("requests", "urllib3", "urllib3-future", "httpx", "aiohttp", "keepwarm")
        if env.get(name)
    )
    return [
        f"keepwarm bench: {config['requests']} requests x {config['rounds']} interleaved "
        f"rounds per scenario; {where}",
        trust,
        f"Python {env['python']}, {env['openssl']}, {versions}; {env['cpus']} CPUs",
    ]


def build_report(result: dict[str, Any]) -> Report:
    """The tables and lines of the report, renderer-neutral: one table per scheme and
    mode, so that no column repeats the scheme."""
    tables: list[Table] = []
    concurrent_tables: list[Table] = []
    for scheme, by_mode in result["results"].items():
        block = by_mode.get("sequential")
        if block:
            baseline = block.get("baseline")
            table = Table(
                f"Sequential, {scheme}: one client object per scenario, one request after another",
                list(_SEQUENTIAL_COLUMNS),
                1,
            )
            for key, s in block["scenarios"].items():
                row = [s["scenario"], *_metrics(s, key, baseline)]
                row += [_count(s["tls_handshakes"]), _count(s["time_wait"])]
                table.rows.append(row)
                table.footer += _idle_note(scheme, s)
            if "keepwarm_vs_cold" in block:
                table.footer.append(
                    f"{scheme}: keepwarm.Session / requests.get() per call = "
                    f"{block['keepwarm_vs_cold']:.1f}x"
                )
            tables.append(table)
        block = by_mode.get("concurrent")
        if block:
            table = Table(
                f"Concurrent, {scheme}: {block['threads']} threads share one session, "
                f"~{block['requests_per_thread']} requests each per round; the server "
                f"waits {block['server_latency_ms']:g} ms before answering",
                list(_CONCURRENT_COLUMNS),
                2,
            )
            for pattern in ("steady", "bursty"):
                for key, s in block.get(pattern, {}).items():
                    row = [pattern, s["scenario"], *_metrics(s, key, block["baseline"])]
                    row += [
                        _count(s.get("pool_full_discards")),
                        _count(s["tls_handshakes"]),
                        _count(s["time_wait"]),
                    ]
                    table.rows.append(row)
                    table.footer += _idle_note(f"{scheme} {pattern}", s)
            concurrent_tables.append(table)
    if concurrent_tables:
        concurrent_tables[-1].footer += [
            "requests.Session keeps requests' default pools (10 hosts x 10 connections); "
            "keepwarm.Session its own",
        ]
    tables += concurrent_tables
    legend = [LEGEND] if tables else []
    if concurrent_tables:
        legend.append(_DISCARDED_NOTE)
    footer = [f"{name}: skipped ({why})" for name, why in result["skipped"].items()]
    footer += [f"note: {note}" for note in result["notes"]]
    return Report(_header(result), tables, footer, legend)


def _wrap(line: str, width: int | None, indent: str = "") -> list[str]:
    """*line* wrapped to *width* at spaces (None: as it is)."""
    if width is None or len(line) <= width:
        return [line]
    return textwrap.wrap(
        line, width, subsequent_indent=indent, break_long_words=True, break_on_hyphens=False
    )


def _plain_table(table: Table) -> list[str]:
    rows = [table.columns, *table.rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(table.columns))]
    lines = []
    for row in rows:
        cells = [
            cell.ljust(widths[i]) if i < table.text_columns else cell.rjust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append((" " * _GAP).join(cells).rstrip())
    return lines


def _vertical_table(table: Table, width: int) -> list[str]:
    """A table too wide for *width*: one block per row, its name and then its numbers as
    ``header value`` pairs, never split, wrapped to *width*."""
    lines = []
    for row in table.rows:
        lines.append("  ".join(row[: table.text_columns]))
        pairs = [
            f"{column} {cell}"
            for column, cell in zip(
                table.columns[table.text_columns :], row[table.text_columns :], strict=True
            )
        ]
        line = ""
        for pair in pairs:
            if line and len(line) + 2 + len(pair) > width:
                lines.append(line)
                line = ""
            line = f"{line}  {pair}" if line else f"  {pair}"
        lines.append(line)
    return lines


def _table_lines(table: Table, width: int | None) -> tuple[list[str], bool]:
    """The body lines of *table* for *width*, and whether they are the horizontal table
    (header first) rather than the vertical layout."""
    if width is None or table.width() <= width:
        return _plain_table(table), True
    return _vertical_table(table, width), False


def render_lines(report: Report, width: int | None = None) -> list[str]:
    """The report as plain lines; with *width*, every line fits it and no number is cut:
    a table too wide becomes one block per row."""
    lines = [part for line in report.header for part in _wrap(line, width)]
    for table in report.tables:
        lines.append("")
        lines += _wrap(table.title, width)
        lines += _table_lines(table, width)[0]
        lines += [part for line in table.footer for part in _wrap(line, width)]
    if report.legend:
        lines.append("")
        lines += [part for line in report.legend for part in _wrap(line, width)]
    if report.footer:
        lines.append("")
        lines += [part for line in report.footer for part in _wrap(line, width)]
    return lines


def format_table(result: dict[str, Any], width: int | None = None) -> str:
    """The plain-text report of :func:`keepwarm.bench._runner.run_bench`'s result; with
    *width* (a terminal's columns), laid out to fit it."""
    return "\n".join(render_lines(build_report(result), width)) + "\n"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def write_json(result: dict[str, Any], out: TextIO) -> None:
    """Write *result* as one JSON document, in report order (non-finite numbers as null)."""
    json.dump(_finite(result), out, indent=2, allow_nan=False)
    out.write("\n")


# -- rich -----------------------------------------------------------------------------


def rich_available() -> bool:
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


def print_rich(result: dict[str, Any], out: TextIO) -> None:
    """The report on *out* (a terminal) with rich: laid out for the terminal's width like
    :func:`render_lines` (a table too wide becomes one block per row), styled."""
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    console = Console(file=out)
    width = console.width
    report = build_report(result)

    def lines(texts: list[str], style: str = "") -> None:
        for text in texts:
            for part in _wrap(text, width):
                console.print(Text(part, style=style), no_wrap=True, overflow="ignore")

    lines(report.header)
    for table in report.tables:
        console.print()
        lines([table.title], "bold")
        body, horizontal = _table_lines(table, width)
        if horizontal:
            rich_table = RichTable(
                box=None, pad_edge=False, padding=(0, 1), header_style="bold underline"
            )
            for i, column in enumerate(table.columns):
                justify: Literal["left", "right"] = "left" if i < table.text_columns else "right"
                rich_table.add_column(column, justify=justify, no_wrap=True)
            for row in table.rows:
                rich_table.add_row(*(Text(cell) for cell in row))
            console.print(rich_table, width=table.width())
        else:
            lines(body)
        lines(table.footer, "bold")
    if report.legend:
        console.print()
        lines(report.legend, "dim")
    if report.footer:
        console.print()
        lines(report.footer, "dim")


class _RichProgress:
    """A progress bar on the terminal while the benchmark runs (transient)."""

    def __init__(self, out: TextIO, total: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=out),
            transient=True,
        )
        self._task = self._progress.add_task("starting", total=total)

    def __enter__(self) -> _RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def __call__(self, text: str, step: bool) -> None:
        self._progress.update(self._task, description=text, advance=1 if step else 0)


def make_rich_progress(out: TextIO, total: int) -> _RichProgress:
    """A context manager that is also the ``progress(text, step)`` callback."""
    return _RichProgress(out, total)
