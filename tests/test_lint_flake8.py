"""``flake8 --select KW``: keepwarm lint's rules as a flake8 plugin, run for real.

flake8 finds plugins through the ``flake8.extension`` entry points of installed
distributions, read when it starts. A development checkout is usually not installed with
this pyproject.toml's entry points, so these tests register the same
``keepwarm.lint._flake8:Checker`` through flake8's own ``[flake8:local-plugins]`` section
(with ``paths`` pointing at ``src``): flake8 then loads, classifies and runs it exactly as
it would an installed one. Where the installed keepwarm already declares the ``KW`` entry
point, the tests use that instead (registering it twice would report everything twice).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import inspect
import os
import pathlib
import re
import subprocess
import sys

import pytest

from keepwarm.lint import RULES, lint_paths
from keepwarm.lint._flake8 import ENTRY_POINT, Checker, opted_in

tomllib = pytest.importorskip("tomllib")
flake8_defaults = pytest.importorskip("flake8.defaults")

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "lint_fixtures"
FIXTURE_FILES = sorted(FIXTURES.glob("*.py"))
TARGET = "keepwarm.lint._flake8:Checker"
OUTPUT = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): (?P<code>\w+) (?P<msg>.*)$")

Row = tuple[str, int, int, str, str]


def _installed() -> bool:
    found = importlib.metadata.entry_points(group="flake8.extension", name=ENTRY_POINT)
    return any(ep.value == TARGET for ep in found)


def _flake8(tmp_path: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "flake8.cfg"
    lines = ["[flake8]", "max-line-length = 200"]
    if not _installed():
        lines += [
            "[flake8:local-plugins]",
            f"extension = {ENTRY_POINT} = {TARGET}",
            f"paths = {ROOT / 'src'}",
        ]
    config.write_text("\n".join(lines) + "\n")
    return subprocess.run(
        [sys.executable, "-m", "flake8", "--config", str(config), "--jobs", "1", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        timeout=120,
    )


def _rows(output: str) -> set[Row]:
    rows = set()
    for line in output.splitlines():
        match = OUTPUT.fullmatch(line)
        assert match, line
        rows.add(
            (match["path"], int(match["line"]), int(match["col"]), match["code"], match["msg"])
        )
    return rows


def _keepwarm(paths: list[str], select: set[str] | None = None) -> set[Row]:
    report = lint_paths(paths, select=select)
    return {(f.path, f.line, f.col, f.code, f.message) for f in report.findings}


def test_the_entry_point_names_the_plugin_class() -> None:
    """pyproject.toml declares ``KW = keepwarm.lint._flake8:Checker`` under
    ``flake8.extension``; the name is a code prefix flake8 accepts, the target imports and
    is a tree plugin (an ``__init__`` taking ``tree``, a ``run`` method)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    entry_points = project["entry-points"]["flake8.extension"]
    assert entry_points == {ENTRY_POINT: TARGET}
    assert flake8_defaults.VALID_CODE_PREFIX.match(ENTRY_POINT)
    module, _, name = TARGET.partition(":")
    plugin = getattr(importlib.import_module(module), name)
    assert plugin is Checker
    assert list(inspect.signature(plugin.__init__).parameters) == ["self", "tree", "filename"]
    assert callable(plugin.run)
    assert all(code.startswith(ENTRY_POINT) for code in RULES)


def test_flake8_reports_what_keepwarm_lint_reports_on_every_fixture(
    tmp_path: pathlib.Path,
) -> None:
    """``flake8 --select KW`` gives the same findings (path, line, column, code and
    message) as ``keepwarm lint`` with its default rules, fixture by fixture."""
    paths = [str(p) for p in FIXTURE_FILES]
    run = _flake8(tmp_path, "--select", "KW", *paths)
    assert run.stderr == ""
    expected = _keepwarm(paths)
    assert expected, "the fixtures find something"
    assert run.returncode == 1
    assert _rows(run.stdout) == expected


def test_default_off_rules_need_a_prefix_longer_than_kw(tmp_path: pathlib.Path) -> None:
    """KW105, KW106 and KW109 are off by default: ``--select KW`` leaves them off,
    ``--select KW1`` turns every KW1xx on (as ``keepwarm lint --select KW1`` does) and
    ``--extend-select KW109`` turns that one on."""
    off = {code for code, rule in RULES.items() if not rule.default}
    paths = [str(next(FIXTURES.glob(f"{code}_*.py"))) for code in sorted(off)]
    assert _flake8(tmp_path, "--select", "KW", *paths).stdout == ""
    every = _flake8(tmp_path, "--select", "KW1", *paths)
    assert _rows(every.stdout) == _keepwarm(paths, {"KW1"} | set(RULES) - {"KW001"})
    assert {row[3] for row in _rows(every.stdout)} == off
    one = _flake8(tmp_path, "--select", "KW", "--extend-select", "KW109", *paths)
    assert {row[3] for row in _rows(one.stdout)} == {"KW109"}


def test_a_plain_flake8_run_includes_the_default_rules(tmp_path: pathlib.Path) -> None:
    """flake8 adds every extension's entry-point name to its default selection."""
    (tmp_path / "a.py").write_text("import requests\n\nrequests.get('u')\n")
    run = _flake8(tmp_path, "a.py")
    assert run.stdout.startswith("a.py:3:1: KW103 `requests.get()` without `timeout=`")


def test_flake8_handles_noqa_and_ignore_itself(tmp_path: pathlib.Path) -> None:
    """The plugin never reads ``# noqa``: flake8 applies it (once), and
    ``--disable-noqa`` brings the finding back, which shows the plugin did report it.
    Both tools read the comment on the finding's own line (a call's first line): a noqa on
    the last line of a call over two lines silences neither."""
    (tmp_path / "a.py").write_text(
        "import requests\n\n"
        "requests.get('a')  # noqa: KW103\n"
        "requests.get(\n"
        "    'b')  # noqa: KW103\n"
        "requests.get('c')\n"
    )
    found = _rows(_flake8(tmp_path, "--select", "KW", "a.py").stdout)
    assert {(row[1], row[3]) for row in found} == {(4, "KW103"), (6, "KW103")}
    assert {f.line for f in lint_paths([str(tmp_path / "a.py")]).findings} == {4, 6}
    everything = _rows(_flake8(tmp_path, "--select", "KW", "--disable-noqa", "a.py").stdout)
    assert {row[1] for row in everything} == {3, 4, 6}
    ignored = _flake8(tmp_path, "--select", "KW", "--extend-ignore", "KW103", "a.py")
    assert (ignored.returncode, ignored.stdout) == (0, "")


def test_a_file_that_does_not_parse_is_flake8s_e999(tmp_path: pathlib.Path) -> None:
    (tmp_path / "bad.py").write_text("import requests\ndef (:\n")
    run = _flake8(tmp_path, "--select", "KW,E999", "bad.py")
    assert [row[3] for row in _rows(run.stdout)] == ["E999"]


@pytest.mark.parametrize(
    ("chosen", "codes"),
    [
        ([], set()),
        (["KW"], set()),
        (["E", "F", "W", "C90", "KW"], set()),
        (["KW1"], {"KW105", "KW106", "KW109"}),
        (["KW10"], {"KW105", "KW106", "KW109"}),
        (["kw105 "], {"KW105"}),
        (["KW103"], set()),
        (["KW11"], set()),
    ],
)
def test_which_default_off_rules_a_selection_opts_into(chosen: list[str], codes: set[str]) -> None:
    assert opted_in(chosen) == codes


def test_parse_options_reads_select_and_extend_select() -> None:
    try:
        Checker.parse_options(argparse.Namespace(select=None, extend_select=["KW109"]))
        assert Checker.opted_in == {"KW109"}
        Checker.parse_options(argparse.Namespace(select=["KW1"], extend_select=None))
        assert Checker.opted_in == {"KW105", "KW106", "KW109"}
    finally:
        Checker.parse_options(argparse.Namespace(select=None, extend_select=None))
    assert Checker.opted_in == frozenset()
