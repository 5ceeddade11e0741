"""``keepwarm bench --plot FILE``: requests/s per scenario as bar charts.

``.png`` and ``.svg`` are drawn by matplotlib (the ``plot`` extra), without pyplot, so no
global backend state changes. ``.html`` needs nothing: one self-contained file with the
report's tables and inline SVG bars, no script and nothing fetched from anywhere.
"""

from __future__ import annotations

import html
import importlib
import os
from dataclasses import dataclass
from typing import Any

from keepwarm.bench._child import BenchError
from keepwarm.bench._report import build_report

__all__ = ["PLOT_FORMATS", "check_plot_path", "write_plot"]

PLOT_FORMATS = (".png", ".svg", ".html")
_MATPLOTLIB_FORMATS = (".png", ".svg")
_COLOR = "#4878a8"
_KEEPWARM_COLOR = "#d1762f"


@dataclass(frozen=True)
class _Panel:
    title: str
    labels: list[str]
    values: list[float]
    notes: list[str]


def check_plot_path(path: str) -> str:
    """The format of *path* (``.png``, ``.svg``, ``.html``).

    ValueError for another extension or a missing folder (a usage error); BenchError when
    the format needs matplotlib and it is not installed (checked before the run starts).
    """
    ext = os.path.splitext(path)[1].lower()
    if ext not in PLOT_FORMATS:
        raise ValueError(f"--plot writes .png, .svg or .html, not {path!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"--plot: no folder {folder!r}")
    if ext in _MATPLOTLIB_FORMATS:
        try:  # imported by name: the plot extra is optional, also for the type checker
            importlib.import_module("matplotlib")
        except ImportError:
            raise BenchError(
                f"--plot {ext} needs matplotlib: pip install 'keepwarm[plot]' "
                "(an .html plot needs nothing extra)"
            ) from None
    return ext


def _conns(count: int | None) -> str:
    if count is None:
        return ""
    return f"{count:,} connection" + ("" if count == 1 else "s")


def _color(label: str) -> str:
    return _KEEPWARM_COLOR if label.startswith("keepwarm") else _COLOR


def _panels(result: dict[str, Any]) -> list[_Panel]:
    panels = []
    for scheme, by_mode in result["results"].items():
        block = by_mode.get("sequential")
        if block:
            scenarios = block["scenarios"].values()
            panels.append(
                _Panel(
                    f"{scheme.upper()} sequential: requests/s",
                    [s["scenario"] for s in scenarios],
                    [s["requests_per_second"] for s in scenarios],
                    [_conns(s["connections"]) for s in scenarios],
                )
            )
        block = by_mode.get("concurrent")
        if block:
            labels, values, notes = [], [], []
            for pattern in ("steady", "bursty"):
                for s in block.get(pattern, {}).values():
                    labels.append(f"{s['scenario']} ({pattern})")
                    values.append(s["requests_per_second"])
                    discards = s.get("pool_full_discards") or 0
                    notes.append(f"{_conns(s['connections'])}, {discards} discarded")
            panels.append(
                _Panel(
                    f"{scheme.upper()} {block['threads']} threads: requests/s",
                    labels,
                    values,
                    notes,
                )
            )
    return panels


def _title(result: dict[str, Any]) -> str:
    return build_report(result).header[0]


def _write_matplotlib(result: dict[str, Any], path: str) -> None:
    figure: Any = importlib.import_module("matplotlib.figure")
    Figure = figure.Figure

    panels = _panels(result)
    heights = [0.6 + 0.35 * len(p.labels) for p in panels]
    fig = Figure(figsize=(10, sum(heights) + 0.8), layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False, height_ratios=heights)[:, 0]
    for ax, panel in zip(axes, panels, strict=True):
        positions = list(range(len(panel.labels)))[::-1]
        colors = [_color(label) for label in panel.labels]
        bars = ax.barh(positions, panel.values, color=colors)
        ax.set_yticks(positions, panel.labels)
        ax.set_title(panel.title, loc="left", fontsize=10)
        ax.set_xlim(0, max(panel.values) * 1.35 if panel.values else 1)
        labels = [
            f"{v:,.0f}  {note}".rstrip() for v, note in zip(panel.values, panel.notes, strict=True)
        ]
        ax.bar_label(bars, labels=labels, padding=3, fontsize=8)
        ax.tick_params(axis="both", labelsize=8)
    fig.suptitle(_title(result), fontsize=8)
    fig.savefig(path)


def _svg_panel(panel: _Panel) -> str:
    label_width, bar_width, row, pad = 260, 420, 22, 6
    width = label_width + bar_width + 220
    height = row * len(panel.labels) + 2 * pad
    top = max(panel.values) if panel.values else 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{html.escape(panel.title)}">'
    ]
    for i, (label, value, note) in enumerate(
        zip(panel.labels, panel.values, panel.notes, strict=True)
    ):
        y = pad + i * row
        length = max(1.0, bar_width * value / top) if top > 0 else 1.0
        text = f"{value:,.0f} req/s" + (f", {note}" if note else "")
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 15}" text-anchor="end" '
            f'font-size="13">{html.escape(label)}</text>'
            f'<rect x="{label_width}" y="{y + 3}" width="{length:.1f}" height="{row - 6}" '
            f'fill="{_color(label)}"/>'
            f'<text x="{label_width + length + 6:.1f}" y="{y + 15}" '
            f'font-size="12">{html.escape(text)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _write_html(result: dict[str, Any], path: str) -> None:
    report = build_report(result)
    body = [f"<p>{html.escape(line)}</p>" for line in report.header]
    for panel in _panels(result):
        body.append(f"<h2>{html.escape(panel.title)}</h2>")
        body.append(_svg_panel(panel))
    for table in report.tables:
        body.append(f"<h2>{html.escape(table.title)}</h2><table><tr>")
        body.extend(f"<th>{html.escape(c)}</th>" for c in table.columns)
        body.append("</tr>")
        for row in table.rows:
            cells = "".join(
                f'<td class="{"t" if i < table.text_columns else "n"}">{html.escape(c)}</td>'
                for i, c in enumerate(row)
            )
            body.append(f"<tr>{cells}</tr>")
        body.append("</table>")
        body.extend(f"<p>{html.escape(line)}</p>" for line in table.footer)
    body.extend(f"<p>{html.escape(line)}</p>" for line in report.legend)
    body.extend(f'<p class="dim">{html.escape(line)}</p>' for line in report.footer)
    document = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>keepwarm bench</title><style>"
        "body{font-family:sans-serif;margin:2em;max-width:75em}"
        "table{border-collapse:collapse;font-size:13px}"
        "th,td{padding:2px 8px;border-bottom:1px solid #ddd}"
        "td.n{text-align:right;font-variant-numeric:tabular-nums}"
        "h2{font-size:15px;margin-top:1.5em}.dim{color:#666}"
        "</style></head><body><h1>keepwarm bench</h1>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    with open(path, "w", encoding="utf-8") as out:
        out.write(document)


def write_plot(result: dict[str, Any], path: str) -> None:
    """Write the plot of *result* to *path*, in the format its extension names."""
    ext = check_plot_path(path)
    try:
        if ext == ".html":
            _write_html(result, path)
        else:
            _write_matplotlib(result, path)
    except OSError as exc:
        raise BenchError(f"cannot write {path}: {exc}") from None
