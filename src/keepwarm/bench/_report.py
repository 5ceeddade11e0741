"""The report of ``keepwarm bench``: plain tables, rich tables with a live progress bar,
and JSON.

One description of the tables (:func:`build_report`) feeds both renderers, so the plain
text (for pipes, logs and tests) and the rich version (for a terminal) always agree.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

__all__ = [
    "Report",
    "build_report",
    "format_table",
    "make_rich_progress",
    "print_rich",
    "rich_available",
    "write_json",
]

_SEQUENTIAL_COLUMNS = [
    "scheme",
    "scenario",
    "req/s",
    "p50 ms",
    "p99 ms",
    "vs baseline",
    "conns",
    "TLS hs",
    "TIME_WAIT",
]
_CONCURRENT_COLUMNS = [
    "scheme",
    "pattern",
    "scenario",
    "req/s",
    "p50 ms",
    "p99 ms",
    "vs baseline",
    "conns",
    "discarded",
    "TLS hs",
    "TIME_WAIT",
]


_BASELINE_NOTE = (
    "vs baseline: median over rounds of req/s / requests.Session's req/s in the same round"
)


@dataclass
class Table:
    title: str
    columns: list[str]
    #: How many leading columns are text (left-aligned); the rest are numbers.
    text_columns: int
    rows: list[list[str]] = field(default_factory=list)
    footer: list[str] = field(default_factory=list)


@dataclass
class Report:
    header: list[str]
    tables: list[Table]
    footer: list[str]


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
        return "baseline"
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
    if not config["url"]:
        bundle = "certifi's + a throwaway CA"
    else:
        bundle = "certifi's + the --cacert file" if config.get("cacert") else "certifi's"
    versions = ", ".join(
        f"{name} {env[name]}"
        for name in ("requests", "urllib3", "urllib3-future", "httpx", "aiohttp", "keepwarm")
        if env.get(name)
    )
    return [
        f"keepwarm bench: {config['requests']} requests x {config['rounds']} interleaved "
        f"rounds per scenario; {where}",
        f"CA bundle: {config['ca_bundle_certificates']} certificates ({bundle}); every "
        "client verifies against it",
        f"Python {env['python']}, {env['openssl']}, {versions}; {env['cpus']} CPUs",
    ]


def build_report(result: dict[str, Any]) -> Report:
    """The tables and lines of the report, renderer-neutral."""
    tables: list[Table] = []
    results = result["results"]
    sequential = Table(
        "Sequential: one client object per scenario, one request after another",
        list(_SEQUENTIAL_COLUMNS),
        2,
    )
    concurrent: Table | None = None
    for scheme, by_mode in results.items():
        block = by_mode.get("sequential")
        if block:
            baseline = block.get("baseline")
            for key, s in block["scenarios"].items():
                row = [scheme, s["scenario"], *_metrics(s, key, baseline)]
                row += [_count(s["tls_handshakes"]), _count(s["time_wait"])]
                sequential.rows.append(row)
            if baseline and not any("baseline" in line for line in sequential.footer):
                sequential.footer.append(_BASELINE_NOTE)
            if "keepwarm_vs_cold" in block:
                sequential.footer.append(
                    f"{scheme}: keepwarm.Session / requests.get() per call = "
                    f"{block['keepwarm_vs_cold']:.1f}x"
                )
        block = by_mode.get("concurrent")
        if block:
            if concurrent is None:
                concurrent = Table(
                    f"Concurrent: {block['threads']} threads share one session, "
                    f"~{block['requests_per_thread']} requests each per round; the server "
                    f"waits {block['server_latency_ms']:g} ms before answering",
                    list(_CONCURRENT_COLUMNS),
                    3,
                )
            for pattern in ("steady", "bursty"):
                for key, s in block.get(pattern, {}).items():
                    row = [scheme, pattern, s["scenario"], *_metrics(s, key, block["baseline"])]
                    row += [
                        _count(s.get("pool_full_discards")),
                        _count(s["tls_handshakes"]),
                        _count(s["time_wait"]),
                    ]
                    concurrent.rows.append(row)
    if sequential.rows:
        tables.append(sequential)
    if concurrent is not None:
        concurrent.footer += [
            _BASELINE_NOTE,
            "requests.Session keeps requests' default pools (10 hosts x 10 connections); "
            "keepwarm.Session its own",
            "discarded: connections closed on return because the pool was full (urllib3's "
            '"Connection pool is full, discarding connection" warnings)',
        ]
        tables.append(concurrent)
    footer = [f"{name}: skipped ({why})" for name, why in result["skipped"].items()]
    footer += [f"note: {note}" for note in result["notes"]]
    return Report(_header(result), tables, footer)


def _plain_table(table: Table) -> list[str]:
    rows = [table.columns, *table.rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(table.columns))]
    lines = [table.title]
    for row in rows:
        cells = [
            cell.ljust(widths[i]) if i < table.text_columns else cell.rjust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    lines += table.footer
    return lines


def format_table(result: dict[str, Any]) -> str:
    """The plain-text report of :func:`keepwarm.bench._runner.run_bench`'s result."""
    report = build_report(result)
    lines = [*report.header]
    for table in report.tables:
        lines += ["", *_plain_table(table)]
    if report.footer:
        lines += ["", *report.footer]
    return "\n".join(lines) + "\n"


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
    """The report as rich tables on *out* (a terminal)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    console = Console(file=out)
    report = build_report(result)
    rich_tables = []
    for table in report.tables:
        rich_table = RichTable(
            title=table.title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD
        )
        for i, column in enumerate(table.columns):
            justify: Literal["left", "right"] = "left" if i < table.text_columns else "right"
            rich_table.add_column(column, justify=justify, no_wrap=True)
        for row in table.rows:
            rich_table.add_row(*(Text(cell) for cell in row))
        if console.measure(rich_table).maximum > console.width:
            # Too narrow a terminal: rich would cut numbers short; plain lines just wrap.
            out.write(format_table(result))
            return
        rich_tables.append((table, rich_table))
    for line in report.header:
        console.print(Text(line))
    for table, rich_table in rich_tables:
        console.print()
        console.print(rich_table)
        for line in table.footer:
            console.print(Text(line, style="bold"))
    if report.footer:
        console.print()
        for line in report.footer:
            console.print(Text(line, style="dim"))


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
