"""``keepwarm bench`` in a real terminal (a tmux pane of a given width): every number is
shown whole and every line fits, at 80 and 100 columns (the horizontal tables) and at 50
(one block per row)."""

from __future__ import annotations

import os
import pathlib
import shlex
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from test_bench_extras import EXTRA, without_command

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")

#: A small run: seconds, not minutes; both modes so that both tables are drawn.
ARGS = [
    *("--requests", "3", "--rounds", "1", "--scheme", "http", "--threads", "2"),
    *("--clients", "cold,requests,keepwarm,http.client"),
]
KEEPWARM = str(pathlib.Path(sys.executable).parent / "keepwarm")


def run_in_terminal(
    columns: int, args: list[str], timeout: float = 60.0, argv: list[str] | None = None
) -> str:
    """Run ``keepwarm bench *args*`` (or *argv*) in a detached tmux pane *columns* wide;
    the pane's text once it exits, wrapped lines joined (so a line wider than the pane
    shows)."""
    name = f"kw-{uuid.uuid4().hex[:8]}"
    command = " ".join(shlex.quote(a) for a in (argv or [KEEPWARM, "bench", *args]))
    # Wait on the pane after the command so that it stays around to be read.
    script = f"{command}; echo KW-EXIT=$?; sleep {timeout:g}"
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "xterm-256color"}
    for variable in [v for v in env if v.upper().startswith("KEEPWARM_")]:
        del env[variable]
    env.pop("TMUX", None)
    tmux = ["tmux", "-L", name]  # its own server: nothing shared with a user's tmux
    subprocess.run(
        [*tmux, "new-session", "-d", "-s", name, "-x", str(columns), "-y", "80", script],
        env=env,
        check=True,
        timeout=10,
    )
    try:
        deadline = time.monotonic() + timeout
        text = ""
        for _ in range(int(timeout / 0.2) + 1):  # bounded in count and in time
            text = subprocess.run(
                [*tmux, "capture-pane", "-p", "-J", "-S", "-", "-t", name],
                capture_output=True,
                text=True,
                check=True,
                timeout=10,
            ).stdout
            if "KW-EXIT=" in text or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        subprocess.run([*tmux, "kill-server"], timeout=10, check=False)
    assert "KW-EXIT=0" in text, text
    return text.split("KW-EXIT=", 1)[0].rstrip() + "\n"


def assert_fits(text: str, columns: int) -> None:
    assert "…" not in text, text  # no cell cut short
    too_wide = [line for line in text.splitlines() if len(line.rstrip()) > columns]
    assert not too_wide, text
    for label in ("requests.get() per call", "keepwarm.Session", "http.client keep-alive"):
        assert label in text, text


@pytest.mark.parametrize("columns", [80, 100])
def test_tables_are_whole_at_80_and_100_columns(columns: int) -> None:
    text = run_in_terminal(columns, ARGS)
    assert_fits(text, columns)
    lines = text.splitlines()
    # The horizontal tables, with their headers, and the legend that explains them.
    assert any(
        line.split() == ["scenario", "req/s", "p50", "p99", "ratio", "conns", "TLS", "TW"]
        for line in lines
    ), text
    assert any(line.split()[:3] == ["pattern", "scenario", "req/s"] for line in lines), text
    assert "TW: sockets left in TIME_WAIT" in " ".join(text.split())
    rows = {line.split("  ")[0]: line.split() for line in lines if line.startswith("requests.get")}
    assert rows["requests.get() per call"][-3] == "3"  # conns: 3 requests, whole


def test_narrow_terminal_gets_one_block_per_row() -> None:
    text = run_in_terminal(50, [*ARGS, "--mode", "sequential"])
    assert_fits(text, 50)
    lines = text.splitlines()
    at = lines.index("requests.get() per call")
    numbers = " ".join(lines[at + 1 : at + 3])
    assert "conns 3" in numbers and "req/s " in numbers, text


def test_plain_report_without_rich_fits_the_terminal_too() -> None:
    # No [bench] extra: no rich (plain text on the terminal), no trustme (HTTP only).
    argv = without_command(EXTRA, *ARGS, "--scheme", "both")
    text = run_in_terminal(80, [], argv=argv)
    assert_fits(text, 80)
    assert "https: skipped (HTTPS needs trustme" in " ".join(text.split())
    assert any(line.split()[:2] == ["scenario", "req/s"] for line in text.splitlines()), text
