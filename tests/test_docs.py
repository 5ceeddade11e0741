"""What the docs say about keepwarm's behaviour is what keepwarm does (each check reads
the doc and compares it with the code; no traffic)."""

from __future__ import annotations

import argparse
import ast
import builtins
import inspect
import json
import pathlib
import re
import shlex
import subprocess
import sys
import textwrap
from typing import Any, NoReturn

import pytest
import requests
import urllib3
from urllib3.util.retry import RequestHistory

import keepwarm
import keepwarm._exceptions
from keepwarm._advice import _pool_size
from keepwarm._config import (
    DEFAULT_POOL_MAXSIZE,
    DEFAULT_TIMEOUT,
    ENVIRONMENT_VARIABLES,
    SETTING_NAMES,
    Settings,
    settings_from_environment,
    to_timeout,
)
from keepwarm._probe import _options as po
from keepwarm._probe._report import STALL_FACTOR, STALL_SECONDS, format_report, result_as_dict
from keepwarm._probe._run import ALPN_OFFERS, AlpnCheck, ProbeResult, RequestResult
from keepwarm._retry import (
    DRAIN_MAX_BYTES,
    DRAIN_MAX_SECONDS,
    IDEMPOTENT_METHODS,
    RETRY_STATUSES,
)
from keepwarm._stats import SERVER_KEEPALIVE_SHARE, HostStats, Stats
from keepwarm._upstream.connection import _CUT_OFF_GRACE
from keepwarm._upstream.pool import AUTO_POOL_MAXSIZE_CAP
from keepwarm._upstream.session import ONE_READ_MAX
from keepwarm._upstream.wire import MAX_INTERIM_RESPONSES
from keepwarm.bench import _options as bo
from keepwarm.bench._peers import CLIENTS
from keepwarm.bench._report import format_table
from keepwarm.bench._runner import BenchError, url_request_budget
from keepwarm.bench._scenarios import Measured
from keepwarm.cli import _bench_config, build_parser, main
from servers.raw import refused_url

ROOT = pathlib.Path(__file__).resolve().parent.parent
NUMBERS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
]


def test_configuration_counts_and_lists_every_knob() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    stated = re.search(r"has (\w+) tuning knobs", text)
    assert stated is not None
    assert stated.group(1) == NUMBERS[len(SETTING_NAMES)]
    table = {m.group(1) for m in re.finditer(r"^\| `(\w+)` \|", text, re.M)}
    assert set(SETTING_NAMES) <= table


def test_readme_stats_table_is_what_str_stats_prints() -> None:
    readme = (ROOT / "README.md").read_text()
    shown = [
        line.removeprefix("# ")
        for line in readme.splitlines()
        if line.startswith(("# origin", "# https://api.example.com:443 "))
    ]
    origin = "https://api.example.com:443"
    host = HostStats(
        origin=origin,
        requests=100,
        connections_opened=1,
        reused=99,
        tls_handshakes=1,
        peak_in_flight=1,
    )
    assert shown == str(Stats(hosts={origin: host})).splitlines()


def test_timings_print_seconds_to_the_microsecond() -> None:
    t = keepwarm.Timings(dns=0.000123456789, total=0.1 / 3)
    assert "dns=0.000123," in repr(t)
    assert "total=0.033333," in repr(t)
    assert not re.search(r"\d{8,}", repr(t))


@pytest.mark.parametrize("variable", ["KEEPWARM_POOL_MAXSIZE", "KEEPWARM_NOT_A_KNOB"])
def test_bad_keepwarm_variables_fail_when_a_session_is_created_not_at_import(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """configuration.md: read and checked when a session is created."""
    monkeypatch.setenv(variable, "zero")
    keepwarm.configure()  # configure() alone reads no variable
    with pytest.raises(ValueError, match=variable):
        keepwarm.Session()


# docs/bench.md ----------------------------------------------------------------------------


def _cell(text: str) -> float | None:
    """A number as the bench report prints it (``2,144``, ``0.03x``); None for ``base``."""
    return None if text in ("base", "n/a") else float(text.rstrip("x").replace(",", ""))


def _bench_example() -> tuple[str, dict[str, Any]]:
    """docs/bench.md's example report, and the run result its figures describe."""
    text = (ROOT / "docs" / "bench.md").read_text()
    block = text.split("\n## Example\n", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    command, *lines = block.splitlines()
    assert command.startswith("$ keepwarm bench")
    head = " ".join(lines[: lines.index("")])
    facts = re.fullmatch(
        r"keepwarm bench: (\d+) requests x (\d+) interleaved rounds per scenario; embedded "
        r"server \(separate process\) on 127\.0\.0\.1 CA bundle: (\d+) certificates .* "
        r"Python (\S+), (OpenSSL .*), requests (\S+), urllib3 (\S+), httpx (\S+), "
        r"aiohttp (\S+), keepwarm (\S+); (\d+) CPUs",
        head,
    )
    assert facts is not None, head
    keys = {cls.label: key for key, cls in CLIENTS.items()}
    labels = "|".join(re.escape(label) for label in keys)
    row_re = re.compile(rf"(?:(steady|bursty) +)?({labels}) +((?:(?:[\d.,]+x?|base|n/a) *)+)")
    results: dict[str, dict[str, Any]] = {}
    block_of: dict[str, Any] = {}
    lines_joined = "\n".join(lines)
    for title in re.finditer(
        r"^(Sequential|Concurrent), (https?): (.*?)(?=\n(?:scenario|pattern) )",
        lines_joined,
        re.M | re.S,
    ):
        mode, scheme = title.group(1).lower(), title.group(2)
        if mode == "sequential":
            block_of = {"baseline": "requests", "scenarios": {}}
        else:
            shape = re.search(
                r"(\d+) threads .* ~(\d+) requests .* waits (\d+) ms", title.group(3), re.S
            )
            assert shape is not None
            block_of = {
                "baseline": "requests",
                "threads": int(shape.group(1)),
                "requests_per_thread": int(shape.group(2)),
                "server_latency_ms": float(shape.group(3)),
            }
        results.setdefault(scheme, {})[mode] = block_of
        for line in lines_joined[title.end() :].splitlines()[2:]:
            ratio = re.fullmatch(r"https?: keepwarm\.Session / .* = ([\d.]+)x", line)
            if ratio:
                block_of["keepwarm_vs_cold"] = float(ratio.group(1))
            row = row_re.fullmatch(line)
            if row is None:
                break
            cells = row.group(3).split()
            scenario = {
                "scenario": row.group(2),
                "requests_per_second": _cell(cells[0]),
                "p50_ms": _cell(cells[1]),
                "p99_ms": _cell(cells[2]),
                "vs_baseline": _cell(cells[3]),
                "connections": int(cells[4]),
                "tls_handshakes": int(cells[-2]),
                "time_wait": int(cells[-1]),
                "idle_expired": 0,
            }
            if row.group(1):
                scenario["pool_full_discards"] = int(cells[5])
                block_of.setdefault(row.group(1), {})[keys[row.group(2)]] = scenario
            else:
                block_of["scenarios"][keys[row.group(2)]] = scenario
    skipped = dict(re.findall(r"^(\S+): skipped \((.*)\)$", lines_joined, re.M))
    names = ("python", "openssl", "requests", "urllib3", "httpx", "aiohttp", "keepwarm")
    result = {
        "config": {
            "requests": int(facts.group(1)),
            "rounds": int(facts.group(2)),
            "schemes": list(results),
            "server": "embedded",
            "rtt_ms": None,
            "url": None,
            "ca_bundle_certificates": int(facts.group(3)),
        },
        "environment": {
            **dict(zip(names, facts.groups()[3:10], strict=True)),
            "cpus": int(facts.group(11)),
        },
        "results": results,
        "skipped": skipped,
        "notes": [],
    }
    return "\n".join(lines) + "\n", result


def test_bench_example_is_what_the_report_prints_for_its_figures() -> None:
    """The example in docs/bench.md, figures taken from it, laid out by format_table for
    the 80-column terminal it claims: every title, header, row, legend and footer line."""
    shown, result = _bench_example()
    assert shown == format_table(result, width=80)


def _subcommand(name: str) -> argparse.ArgumentParser:
    subparsers = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    )
    parser: argparse.ArgumentParser = subparsers.choices[name]
    return parser


def _options_table(page: str) -> dict[str, list[str]]:
    """The rows of a page's ``## Options`` table: option name -> the other cells."""
    text = (ROOT / "docs" / page).read_text()
    section = text.split("\n## Options\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        name = re.fullmatch(r"`(-[-\w]+|[A-Z]+)(?: [A-Z.,]+)?`", cells[0])
        if name:
            rows[name.group(1)] = cells[1:]
    return rows


def _option_names(parser: argparse.ArgumentParser) -> set[str]:
    names = (
        {"URL"} if any(a.dest == "url" and not a.option_strings for a in parser._actions) else set()
    )
    for action in parser._actions:
        names.update(
            s
            for s in action.option_strings
            if s.startswith("--") or len(action.option_strings) == 1
        )
    return names - {"--help"}


@pytest.mark.parametrize("command", ["bench", "probe", "run"])
def test_options_tables_and_synopses_list_exactly_the_parsers_options(command: str) -> None:
    parser = _subcommand(command)
    table = _options_table(f"{command}.md")
    assert set(table) == _option_names(parser)
    synopsis = (ROOT / "docs" / f"{command}.md").read_text().split("```text\n", 2)[1]
    shown = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", synopsis.split("```", 1)[0]))
    assert shown == {name for name in _option_names(parser) if name.startswith("-")}


def test_bench_options_table_states_the_defaults_and_bounds_of_the_code() -> None:
    table = _options_table("bench.md")
    defaults = {option: cells[0] for option, cells in table.items()}
    meaning = {option: cells[1] for option, cells in table.items()}
    slow = "with `--rtt` or `--url`"
    assert defaults["--requests"] == f"{bo.DEFAULT_REQUESTS}; {bo.SLOW_DEFAULT_REQUESTS} {slow}"
    assert defaults["--rounds"] == f"{bo.DEFAULT_ROUNDS}; {bo.SLOW_DEFAULT_ROUNDS} {slow}"
    assert defaults["--threads"] == str(bo.DEFAULT_THREADS)
    assert defaults["--server-latency"].startswith(
        bo.format_duration(bo.DEFAULT_SERVER_LATENCY) + " "
    )
    assert defaults["--max-seconds"] == (
        f"{bo.DEFAULT_MAX_SECONDS:g}; {bo.URL_DEFAULT_MAX_SECONDS:g} with `--url`"
    )
    assert f"(1..{bo.MAX_REQUESTS:,})" in meaning["--requests"]
    assert f"(1..{bo.MAX_ROUNDS:,})" in meaning["--rounds"]
    assert f"(1..{bo.MAX_THREADS})" in meaning["--threads"]
    assert f"..{bo.format_duration(bo.MAX_RTT)})" in meaning["--rtt"]
    assert f"..{bo.format_duration(bo.MAX_LATENCY)})" in meaning["--server-latency"]
    assert f"(max {bo.MAX_SECONDS:g})" in meaning["--max-seconds"]
    assert f"`{','.join(CLIENTS)}`" in meaning["--clients"]
    for action in _subcommand("bench")._actions:
        if action.choices:
            option = action.option_strings[0]
            assert defaults[option] == f"`{action.default}`"
            assert re.findall(r"`([\w.]+)`", meaning[option]) == sorted(
                action.choices, key=meaning[option].index
            )


def test_probe_options_table_states_the_defaults_and_bounds_of_the_code() -> None:
    meaning = {option: cells[0] for option, cells in _options_table("probe.md").items()}
    assert f"1..{po.MAX_REQUESTS} (default {po.DEFAULT_REQUESTS})" in meaning["-n"]
    connect, read = po.DEFAULT_TIMEOUT
    assert f"(default `{connect:g},{read:g}`, keepwarm's own)" in meaning["--timeout"]
    assert (connect, read) == (DEFAULT_TIMEOUT.connect, DEFAULT_TIMEOUT.read)
    assert f"each at most {po.MAX_TIMEOUT:g}" in meaning["--timeout"]


# Links and the tests the docs cite ---------------------------------------------------------

PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_points_at_an_existing_file_and_heading(page: pathlib.Path) -> None:
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path) if path else page
        assert linked.is_file(), f"{page.name} links to {target}, which does not exist"
        if anchor:
            headings = re.findall(r"^#+ (.*)$", linked.read_text(), re.M)
            assert anchor in {_anchor(h) for h in headings}, f"{page.name}: {target}"


def _test_names(path: pathlib.Path) -> set[str]:
    return set(re.findall(r"^(?:async )?def (test_\w+)", path.read_text(), re.M))


@pytest.fixture(scope="module")
def fault_test_ids() -> list[str]:
    """The ids pytest collects from tests/test_faults.py (collecting runs nothing)."""
    out = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "--collect-only", "-q"),
            *("-p", "no:cacheprovider", "tests/test_faults.py"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.split("::", 1)[1] for line in out.splitlines() if "::" in line]


def _expand(pattern: str) -> list[str]:
    """``t[{a,b}-{x,y}]`` -> the four ids it stands for (``{0..2}`` is a range)."""
    brace = re.search(r"\{([^{}]*)\}", pattern)
    if brace is None:
        return [pattern]
    span = re.fullmatch(r"(\d+)\.\.(\d+)", brace.group(1))
    alternatives = (
        [str(n) for n in range(int(span.group(1)), int(span.group(2)) + 1)]
        if span
        else brace.group(1).split(",")
    )
    head, tail = pattern[: brace.start()], pattern[brace.end() :]
    return [name for alt in alternatives for name in _expand(head + alt + tail)]


def test_reliability_cites_tests_and_ids_that_exist(fault_test_ids: list[str]) -> None:
    """Each backticked test in RELIABILITY.md exists; a ``[{a,b}-...]`` id stands for the
    ids pytest really collects (``[...]`` for any); the test count is right."""
    text = (ROOT / "docs" / "RELIABILITY.md").read_text()
    ids = set(fault_test_ids)
    names = {i.split("[")[0] for i in ids}
    for file, cited in re.findall(r"`(?:(test_\w+\.py)::)?(test_\w+(?:\[[^`]*\])?)`", text):
        name = cited.split("[")[0]
        if file or name not in names:  # another module's test, named with or without it
            in_file = [ROOT / "tests" / file] if file else (ROOT / "tests").glob("test_*.py")
            assert any(name in _test_names(p) for p in in_file), cited
            continue
        if cited.endswith("[...]") or "[" not in cited:
            continue
        for expected in _expand(cited):
            assert expected in ids, f"RELIABILITY.md cites {cited}: no test {expected}"
    for glob in re.findall(r"`(test_\w+\.py)::(test_\w*)\*`", text):
        assert any(n.startswith(glob[1]) for n in _test_names(ROOT / "tests" / glob[0]))
    count = re.search(r"pytest tests/test_faults\.py` \((\d+) tests", text)
    assert count is not None
    assert int(count.group(1)) == len(fault_test_ids)


def test_compatibility_cites_keepwarm_tests_that_exist() -> None:
    """``file.py::test_name`` in COMPATIBILITY.md, for the files of keepwarm's own suite
    (the others are requests' test files)."""
    text = (ROOT / "docs" / "COMPATIBILITY.md").read_text()
    cited = re.findall(r"`(test_\w+\.py)::(test_\w+)`", text)
    ours = [(f, n) for f, n in cited if (ROOT / "tests" / f).is_file()]
    assert ours
    for file, name in ours:
        assert name in _test_names(ROOT / "tests" / file), f"{file}::{name}"
    for path in re.findall(r"`((?:tests|scripts)/[\w./]+)`", text):
        assert (ROOT / path).exists(), path


# docs/api.md and the docstrings ------------------------------------------------------------


def _tree(text: str) -> list[tuple[int, str, str]]:
    """(depth, class, the rest) for each line of a drawn class tree."""
    rows = []
    for line in text.splitlines():
        m = re.match(r"^([ │]*)([├└]── )?(\w[\w.]*)(.*)$", line)
        if m and (m.group(2) or m.group(3) in ("Exception", "Warning")):
            depth = len(m.group(1)) // 4 + (1 if m.group(2) else 0)
            rows.append((depth, m.group(3), m.group(4).strip()))
    return rows


def _resolve(name: str) -> type:
    if name.startswith("requests."):
        return getattr(requests, name.removeprefix("requests."))  # type: ignore[no-any-return]
    found = getattr(keepwarm, name, None) or getattr(builtins, name)
    assert isinstance(found, type), name
    return found


def test_api_exception_tree_is_the_docstring_tree_and_the_real_classes() -> None:
    api = (ROOT / "docs" / "api.md").read_text()
    drawn = api.split("## Errors and warnings", 1)[1].split("```", 2)[1]
    docstring = keepwarm._exceptions.__doc__ or ""
    doc_tree = textwrap.dedent(docstring.split("::", 1)[1].split("\nInvalid", 1)[0])
    page = [(d, n) for d, n, _ in _tree(drawn)]
    assert page == [(d, n) for d, n, _ in _tree(doc_tree)]
    parents: list[str] = []
    for depth, name, rest in _tree(drawn):
        parents[depth:] = [name]
        cls = _resolve(name)
        if depth:
            assert issubclass(cls, _resolve(parents[depth - 1])), name
        also = re.match(r"\(([\w.]+)\)", rest)
        if also:
            assert issubclass(cls, _resolve(also.group(1))), name
    drawn_names = {name for _, name, _ in _tree(drawn)}
    assert set(keepwarm._exceptions.__all__) <= drawn_names


def test_api_lists_every_public_name() -> None:
    api = (ROOT / "docs" / "api.md").read_text()
    shown = set(re.findall(r"keepwarm\.(\w+)", api)) | set(re.findall(r"`(\w+)[` ]", api))
    assert set(keepwarm.__all__) <= shown


def _api_signatures() -> list[tuple[str, str]]:
    """Every ``keepwarm.name(arguments)`` drawn in an api.md heading."""
    api = (ROOT / "docs" / "api.md").read_text()
    headings = "\n".join(re.findall(r"^### (.*)$", api, re.M))
    return re.findall(r"`keepwarm\.(\w+)\(([^`]*)\)`", headings)


@pytest.mark.parametrize(
    ("name", "arguments"), _api_signatures(), ids=[n for n, _ in _api_signatures()]
)
def test_api_headings_are_the_signatures(name: str, arguments: str) -> None:
    """Names in order (``...`` stands for some left out), and the defaults shown."""
    signature = inspect.signature(getattr(keepwarm, name))
    params = [
        p
        for p in signature.parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]
    shown = [a.strip() for a in arguments.split(",") if a.strip() and a.strip() != "*"]
    names = [a.split("=")[0] for a in shown if a != "..."]
    if "..." in shown:
        real = [p.name for p in params]
        assert names == [n for n in real if n in names]
    else:
        assert names == [p.name for p in params]
    by_name = {p.name: p for p in params}
    for argument in shown:
        key, _, default = argument.partition("=")
        if default and default != "...":
            assert ast.literal_eval(default) == by_name[key].default, f"{name}: {argument}"
        if "*" in shown and key in by_name and shown.index("*") < shown.index(argument):
            assert by_name[key].kind == by_name[key].KEYWORD_ONLY, f"{name}: {key}"


def test_api_defaults_and_retry_policy_heading_are_the_code_s() -> None:
    api = (ROOT / "docs" / "api.md").read_text()
    stated = re.search(
        r"The built-in defaults: `Timeout\(connect=(\d+), read=(\d+)\)`, "
        r"(\d+), (\d+), (\d+) s\.",
        api,
    )
    assert stated is not None
    assert [float(n) for n in stated.groups()] == [
        keepwarm.DEFAULT_TIMEOUT.connect,
        keepwarm.DEFAULT_TIMEOUT.read,
        keepwarm.DEFAULT_POOL_CONNECTIONS,
        keepwarm.DEFAULT_POOL_MAXSIZE,
        keepwarm.DEFAULT_POOL_TIMEOUT,
    ]
    assert keepwarm.DEFAULT_TIMEOUT.total is None


def test_session_docstring_states_every_knob_and_its_default() -> None:
    # cleandoc: CPython 3.13 strips a docstring's indentation when compiling, 3.10-3.12 do not.
    doc = inspect.cleandoc(keepwarm.Session.__doc__ or "")
    params = dict(re.findall(r":param (\w+): (.*?)(?=\n:param |\n\n)", doc, re.S))
    assert list(params) == list(SETTING_NAMES)
    settings = Settings()
    for name, text in params.items():
        default = re.search(r"Default (.*?)(?:[.:;]|$)", " ".join(text.split()))
        if default is None:
            continue
        value = getattr(settings, name)
        shown = default.group(1)
        if isinstance(value, bool):
            assert shown == str(value), name
        elif isinstance(value, (int, float)):
            assert re.fullmatch(rf"{value:g}( s)?", shown), name


def test_readme_advice_example_is_what_advice_says() -> None:
    readme = (ROOT / "README.md").read_text()
    shown = re.search(r"# e\.g\. \['(.*?)\n\s*#\s*(.*?)'\]", readme)
    assert shown is not None
    origin = "https://api.example.com:443"
    host = HostStats(origin=origin, requests=100, discarded=37, peak_in_flight=40)
    assert f"{shown.group(1)} {shown.group(2)}" in _pool_size(host, DEFAULT_POOL_MAXSIZE)


# docs/configuration.md ---------------------------------------------------------------------


def _knob_rows() -> dict[str, list[str]]:
    text = (ROOT / "docs" / "configuration.md").read_text()
    table = text.split("## The knobs", 1)[1].split("\n\n", 2)[1]
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_configuration_knob_table_variables_and_defaults_are_the_code_s() -> None:
    rows = _knob_rows()
    assert list(rows) == list(SETTING_NAMES)
    for setting, (_, variable, _) in rows.items():
        name = re.match(r"`(KEEPWARM_\w+)`", variable)
        assert name is not None
        assert ENVIRONMENT_VARIABLES[name.group(1)][0] == setting
    assert len(rows) == len(ENVIRONMENT_VARIABLES)
    settings = Settings()
    for setting, (default, _, _) in rows.items():
        value = getattr(settings, setting)
        if isinstance(value, bool):
            assert default == f"`{value}`", setting
        elif isinstance(value, (int, float)):
            assert re.fullmatch(rf"{value:g}( s)?", default), setting
        elif value is None:
            assert default == "none", setting
    assert rows["timeout"][0] == (
        f"`({DEFAULT_TIMEOUT.connect:g}, {DEFAULT_TIMEOUT.read:g})` s, no total"
    )
    assert DEFAULT_TIMEOUT.total is None


def test_every_keepwarm_timeout_example_in_the_docs_parses_as_described() -> None:
    """``KEEPWARM_TIMEOUT`` values shown in configuration.md and api.md: one number for
    both phases, ``connect,read``, ``connect,read,total``, ``none``."""
    examples = set()
    for page in ("configuration.md", "api.md"):
        text = (ROOT / "docs" / page).read_text()
        examples |= set(re.findall(r"KEEPWARM_TIMEOUT=([\w.,]+)", text))
    row = _knob_rows()["timeout"][1]
    examples |= set(re.findall(r"`([\w.,]+)`", row.split("(", 1)[1]))
    assert {"5", "3,7", "3,7,30", "none"} <= examples
    for example in examples:
        parsed = settings_from_environment({"KEEPWARM_TIMEOUT": example})["timeout"]
        if example == "none":
            assert parsed is keepwarm.NO_TIMEOUT
            continue
        numbers = [float(n) for n in example.split(",")]
        connect, read = (numbers * 2)[:2]
        total = numbers[2] if len(numbers) == 3 else None
        assert parsed == keepwarm.Timeout(connect=connect, read=read, total=total), example


def test_architecture_names_every_module() -> None:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    package = ROOT / "src" / "keepwarm"
    for path in package.rglob("*.py"):
        assert (
            f"`{path.name}`" in text
            or f"{path.name}` (" in text
            or (f"`{path.relative_to(package).parent}/`" in text and f"`{path.name}`" in text)
        ), path.relative_to(package)


# docs/probe.md -----------------------------------------------------------------------------


def _probe_examples() -> list[str]:
    text = (ROOT / "docs" / "probe.md").read_text()
    section = text.split("\n## Example\n", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"```text\n(\$ keepwarm probe .*?)```", section, re.S)


def _waterfall_of(lines: list[str], title: str) -> dict[str, float | None]:
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    phases: dict[str, float | None] = {}
    for line in lines[start + 1 : start + 8]:
        name, value = re.match(r"  (\w+) +(-|[\d.]+ ms)", line).groups()  # type: ignore[union-attr]
        phases[name] = None if value == "-" else float(value.removesuffix(" ms")) / 1000
    return phases


def _probe_result_of(example: str) -> ProbeResult:
    """A ProbeResult with the figures the example shows (each warm request at the median)."""
    command, *lines = example.splitlines()
    args = _subcommand("probe").parse_args(shlex.split(command.removeprefix("$ keepwarm probe")))
    target = po.parse_target(args.url)
    rows = dict(
        re.findall(
            r"^(connections|reused|keep-alive|HTTP|TLS|ALPN|status) +(.*)$", "\n".join(lines), re.M
        )
    )
    opened, n, reused = map(int, re.findall(r"\d+", rows["connections"]))
    warm_reused = int(re.search(r"(\d+) of \d+ on a reused", example).group(1))  # type: ignore[union-attr]
    keep_alive = re.search(r"\(Keep-Alive: (.*)\)", rows["keep-alive"])
    tls = None if rows["TLS"].startswith("not applicable") else rows["TLS"]
    status = int(rows["status"].split()[0])

    def request(index: int, phases: dict[str, Any], on_reused: bool) -> RequestResult:
        timings = keepwarm.Timings(
            **phases, reused=on_reused, http_version=rows["HTTP"], tls_version=tls
        )
        return RequestResult(
            index,
            status,
            timings,
            keep_alive and keep_alive.group(1),
            rows["keep-alive"].startswith("none: the server sent Connection: close"),
        )

    cold = _waterfall_of(lines, "cold:")
    warm = _waterfall_of(lines, "warm:")
    requests_ = [request(1, cold, False)]
    requests_ += [request(i, warm, i - 2 < warm_reused) for i in range(2, n + 1)]
    origin = f"{target.scheme}://{target.host}:{target.port}"
    host = HostStats(
        origin=origin,
        requests=n,
        connections_opened=opened,
        reused=reused,
        tls_handshakes=opened if tls else 0,
        keep_alive_timeout=float(rows["keep-alive"].split()[0]) if keep_alive else None,
    )
    alpn = None
    if not rows["ALPN"].startswith("not applicable"):
        offered = re.match(r"[\w/.]+(?:, [\w/.]+)?", rows["ALPN"]).group(0).split(", ")  # type: ignore[union-attr]
        alpn = [AlpnCheck((p,), p if p in offered else None) for p in ALPN_OFFERS]
    advice_text = example.split("\nadvice", 1)[1]
    advice = (
        [] if "no advice" in advice_text else [" ".join(advice_text.split()).removeprefix("- ")]
    )
    return ProbeResult(
        target,
        requests_,
        Stats(hosts={origin: host}),
        args.timeout,
        args.cacert or not args.insecure,
        alpn,
        advice,
    )


@pytest.mark.parametrize("example", _probe_examples(), ids=["https", "connection-close"])
def test_probe_examples_are_what_format_report_prints_for_their_figures(example: str) -> None:
    """The examples in probe.md (88 columns), figures taken from them, laid out by
    format_report: every line, with each waterfall bar compared by its presence only
    (a bar's position depends on digits the page rounds away)."""

    def shape(text: str) -> list[str]:
        return [re.sub(r" +#[# ]*$", "  #", line) for line in text.splitlines()]

    shown = example.split("\n", 1)[1]
    assert shape(format_report(_probe_result_of(example), width=88)) == shape(shown)


def test_probe_json_example_has_the_keys_result_as_dict_gives() -> None:
    text = (ROOT / "docs" / "probe.md").read_text()
    shown = json.loads(text.split("### `--json`", 1)[1].split("```json\n", 1)[1].split("```")[0])
    real = result_as_dict(_probe_result_of(_probe_examples()[0]))
    assert list(shown) == list(real)
    for key in ("cold", "warm_median", "summary"):
        assert list(shown[key]) == list(real[key]), key
    assert list(shown["per_request"][0]) == list(real["per_request"][0])
    assert list(shown["alpn_checks"][0]) == list(real["alpn_checks"][0])


def test_configuration_retry_policy_numbers_are_retry_policy_s() -> None:
    text = " ".join((ROOT / "docs" / "configuration.md").read_text().split())
    stated = re.search(
        r"(\d+) retries in all, exponential backoff ([\d, ]+) s "
        r"\(`backoff_factor=([\d.]+)`, `backoff_max=([\d.]+)`\)",
        text,
    )
    assert stated is not None
    policy = keepwarm.RetryPolicy()
    assert int(stated.group(1)) == policy.total
    assert float(stated.group(3)) == policy.backoff_factor
    assert float(stated.group(4)) == policy.backoff_max
    failure = RequestHistory("GET", "/", None, None, None)
    sleeps = [
        policy.new(history=(failure,) * attempt).get_backoff_time()
        for attempt in range(1, policy.total + 1)
    ]
    assert sleeps == [float(s) for s in stated.group(2).split(", ")]
    assert f"`retry_after_max={policy.retry_after_max:g}` s" in text
    assert "| 429, 502, 503, 504 |" in text
    assert sorted(RETRY_STATUSES) == [429, 502, 503, 504]
    assert text.count("GET, HEAD, OPTIONS, PUT, DELETE, TRACE") >= 2
    assert set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]) == IDEMPOTENT_METHODS


def test_bench_url_warning_and_budget_are_what_bench_md_says(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The ``--url`` defaults, cap and warning line; run_bench is stopped before it runs,
    so nothing is sent."""
    text = " ".join((ROOT / "docs" / "bench.md").read_text().split())
    cap = re.search(
        r"At most ([\d,]+) requests in all: .*? defaults (\d+) x (\d+) x (\d+) "
        r"clients = (\d+)\.",
        text,
    )
    assert cap is not None
    assert int(cap.group(1).replace(",", "")) == bo.URL_MAX_TOTAL_REQUESTS
    assert [int(n) for n in cap.groups()[1:]] == [
        bo.SLOW_DEFAULT_REQUESTS,
        bo.SLOW_DEFAULT_ROUNDS,
        len(CLIENTS),
        url_request_budget(bo.SLOW_DEFAULT_REQUESTS, bo.SLOW_DEFAULT_ROUNDS, len(CLIENTS)),
    ]

    def stop(*args: object, **kwargs: object) -> NoReturn:
        raise BenchError("stopped before sending anything")

    monkeypatch.setattr("keepwarm.bench._runner.run_bench", stop)
    url = "https://api.example.com/health"
    assert main(["bench", "--url", url]) == 1
    warning = re.search(r"stderr: `(keepwarm bench: warning: .*?)`", text)
    assert warning is not None
    assert capsys.readouterr().err.splitlines()[0] == warning.group(1).replace("URL", url)


def test_api_attributes_named_exist() -> None:
    """``session.x``, the Stats/HostStats counters and the Timings fields api.md names."""
    api = (ROOT / "docs" / "api.md").read_text()
    with keepwarm.Session() as s:
        for name in set(re.findall(r"`session\.(\w+)", api)):
            assert hasattr(s, name), f"session.{name}"
        stats = s.stats()
    section = api.split("### `keepwarm.stats(session=None)`", 1)[1].split("\n### ", 1)[0]
    section = section.split("* `str(stats)`", 1)[0]
    section = re.sub(r"\([^()]*\)", "", section)  # asides name knobs, not counters
    totals, hosts = section.split("* `hosts`", 1)
    for name in re.findall(r"`(\w+)`", totals.split("* totals as attributes:", 1)[1]):
        assert hasattr(stats, name), name
    host = HostStats(origin="https://api.example.com:443")
    for name in re.findall(r"`(\w+)`", hosts):
        assert hasattr(host, name), name
    timings = api.split("### `keepwarm.timings(response)`", 1)[1].split("\n## ", 1)[0]
    fields = keepwarm.Timings().as_dict()
    named = re.findall(r"`(\w+)`", timings.split("(the body is read", 1)[0])
    assert list(dict.fromkeys(n for n in named if n in fields)) == list(fields)


def test_configuration_error_messages_quoted_are_the_real_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What configuration.md says SessionConflictError and a misspelt KEEPWARM_ name print."""
    text = " ".join((ROOT / "docs" / "configuration.md").read_text().split())
    quoted = re.search(r"lists the names that differ \(`([^`]+)`\)", text)
    assert quoted is not None
    keepwarm.session("docs", headers={"Authorization": "Bearer one"})
    with pytest.raises(keepwarm.SessionConflictError) as conflict:
        keepwarm.session("docs", headers={"Authorization": "Bearer two"}, auth=("u", "p"))
    assert quoted.group(1) in str(conflict.value)
    assert "auth (values not shown)" in str(conflict.value)
    assert "Bearer" not in str(conflict.value)
    misspelt = re.search(r"\(`(KEEPWARM_\w+)` would otherwise be silently ignored\)", text)
    assert misspelt is not None
    monkeypatch.setenv(misspelt.group(1), "64")
    with pytest.raises(ValueError, match="did you mean KEEPWARM_POOL_MAXSIZE"):
        keepwarm.Session()


@pytest.mark.parametrize(
    ("argv", "requests_", "rounds", "latency", "max_seconds"),
    [
        ([], "100", "5", "5ms", "600"),
        (["--rtt", "20ms"], "20", "3", "5ms", "600"),
        (["--url", "https://api.example.com/health"], "20", "3", None, "30"),
        (["--server", "nginx"], "100", "5", "0ms", "600"),
    ],
    ids=["default", "rtt", "url", "nginx"],
)
def test_bench_defaults_in_bench_md_are_what_a_run_is_configured_with(
    argv: list[str], requests_: str, rounds: str, latency: str | None, max_seconds: str
) -> None:
    """The defaults the Options table states (checked against the page by the test
    above), as _bench_config really applies them."""
    config = _bench_config(_subcommand("bench").parse_args(argv))
    assert (str(config.requests), str(config.rounds)) == (requests_, rounds)
    assert f"{config.max_seconds:g}" == max_seconds
    if latency is not None:
        assert bo.format_duration(config.server_latency) == latency
    assert config.threads == bo.DEFAULT_THREADS


def test_limits_the_docs_state_are_the_code_s() -> None:
    """Numbers of internal limits that the pages state in prose."""
    config = " ".join((ROOT / "docs" / "configuration.md").read_text().split())
    changelog = " ".join((ROOT / "CHANGELOG.md").read_text().split())
    reliability = " ".join((ROOT / "docs" / "RELIABILITY.md").read_text().split())
    assert f"up to {AUTO_POOL_MAXSIZE_CAP} connections per host" in config
    assert f"instead of discarding connections, up to {AUTO_POOL_MAXSIZE_CAP}." in changelog
    assert f"at most {SERVER_KEEPALIVE_SHARE:.0%} of N".replace("%", " %") in config
    assert f"at most {_CUT_OFF_GRACE * 1000:g} ms after it" in config
    kib, seconds = DRAIN_MAX_BYTES // 1024, DRAIN_MAX_SECONDS
    assert f"at most {kib} KiB or {seconds:g} s of the body is read before a retry" in reliability
    assert f"up to {ONE_READ_MAX // 2**20} MiB (`ONE_READ_MAX`)" in reliability
    assert f"more than {MAX_INTERIM_RESPONSES} interim responses" in reliability


def test_make_targets_and_version_floors_the_docs_name_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, re.M))
    for page in PAGES:
        for target in re.findall(r"`make ([\w-]+)", page.read_text()):
            assert target in targets, f"{page.name}: make {target}"
    pyproject = (ROOT / "pyproject.toml").read_text()
    python = re.search(r'requires-python = ">=([\d.]+)"', pyproject)
    assert python is not None
    assert f"Python >= {python.group(1)}" in (ROOT / "README.md").read_text()
    changelog = " ".join((ROOT / "CHANGELOG.md").read_text().split())
    floors = dict(re.findall(r'"(requests|urllib3)>=([\d.]+)"', pyproject))
    assert f"(requests {floors['requests']}, urllib3 {floors['urllib3']})" in changelog
    assert f"needs urllib3 {floors['urllib3']} or newer" in changelog
    stall = " ".join((ROOT / "docs" / "probe.md").read_text().split())
    assert f"consistently wait {STALL_SECONDS * 1000:g} ms or more longer" in stall
    assert STALL_FACTOR == 2
    assert "at least twice as long" in stall


def test_changelog_did_you_mean_hints_are_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """CHANGELOG: ``connect_timeout``/``read_timeout`` point at ``timeout=(connect, read)``,
    ``idle_timeout`` at ``keepalive_expiry``, ``max_connections`` at ``pool_maxsize``, for
    keywords and ``KEEPWARM_*`` variables."""
    text = " ".join((ROOT / "CHANGELOG.md").read_text().split())
    claim = re.search(r'"did you mean" hints name the knob people mean: (.*?) \(they', text)
    assert claim is not None
    pairs = re.findall(r"((?:`\w+`/?)+) (?:point )?at `([^`]+)`", claim.group(1))
    assert len(pairs) == 3
    for names, meant in pairs:
        for name in re.findall(r"`(\w+)`", names):
            with pytest.raises(TypeError, match=rf"did you mean '?{re.escape(meant)}'?\?"):
                keepwarm.Session(**{name: 1})  # type: ignore[arg-type]
            variable = f"KEEPWARM_{meant.split('=')[0].upper()}"
            monkeypatch.setenv(f"KEEPWARM_{name.upper()}", "1")
            with pytest.raises(ValueError, match=f"did you mean {variable}"):
                keepwarm.Session()
            monkeypatch.delenv(f"KEEPWARM_{name.upper()}")


def test_bench_json_scenario_fields_are_what_a_scenario_summary_has() -> None:
    text = (ROOT / "docs" / "bench.md").read_text()
    block = text.split("### JSON (`--json`)", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    listed = " ".join(block.split("\nSCENARIO ", 1)[1].split())
    stated = {f.split(" ")[0] for f in listed.split(", ")}
    measured = Measured("keepwarm", "keepwarm.Session", discards=0)
    measured.add([0.001, 0.002], 0.003, None, None, discards=0)
    assert stated == set(measured.summary(measured))


def test_api_timeout_keyword_refuses_what_api_md_says() -> None:
    api = (ROOT / "docs" / "api.md").read_text()
    row = re.search(r"^\| `timeout` \| (.*) \|$", api, re.M)
    assert row is not None
    assert "(not `None`;" in row.group(1)
    with pytest.raises(TypeError, match="NO_TIMEOUT"):
        keepwarm.Session(timeout=None)  # type: ignore[arg-type]
    assert "a `urllib3.Timeout` without `total`" in row.group(1)
    with pytest.raises(ValueError, match="without total="):
        keepwarm.Session(timeout=urllib3.Timeout(total=5))
    with keepwarm.Session(timeout=urllib3.Timeout(connect=2, read=9)) as s:
        assert s.timeout == keepwarm.Timeout(2, 9)


def test_configuration_timeout_table_means_what_it_says() -> None:
    """Each ``you pass | meaning`` row of configuration.md's timeout table, evaluated."""
    text = (ROOT / "docs" / "configuration.md").read_text()
    table = text.split("| you pass | meaning |", 1)[1].split("\n\n", 1)[0]
    default = DEFAULT_TIMEOUT
    checked = 0
    for line in table.splitlines()[2:]:
        given, meaning = (cell.strip() for cell in line.strip("|").split(" | "))
        if meaning == "as given" or given.startswith("nothing"):
            continue
        for expression in re.findall(r"`(?:timeout=)?([^`]+)`", given):
            value = to_timeout(eval(expression, {"keepwarm": keepwarm}))
            if expression == "keepwarm.NO_TIMEOUT":
                assert value is keepwarm.NO_TIMEOUT and "no limit at all" in meaning
                checked += 1
                continue
            assert isinstance(value, keepwarm.Timeout)
            parts = {
                "connect": re.search(r"(\d+) s connect|(default) connect", meaning),
                "read": re.search(
                    r"(\d+) s read|(default)(?: connect and)? read|(no) read", meaning
                ),
                "total": re.search(r"(\d+) s for the whole call", meaning),
            }
            expected = {
                "connect": default.connect,
                "read": default.read,
                "total": None,
            }
            for phase, found in parts.items():
                if found is None:
                    assert getattr(value, phase) == expected[phase], (given, phase)
                    continue
                word = next(g for g in found.groups() if g)
                want = {"default": expected[phase], "no": None}.get(word, word)
                assert getattr(value, phase) == (None if want is None else float(want)), (
                    given,
                    phase,
                )
            checked += 1
    assert checked >= 5


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_repository_path_named_in_backticks_exists(page: pathlib.Path) -> None:
    """``scripts/x.py``, ``tests/test_y.py``, ``src/keepwarm/_upstream/`` and the like."""
    for path in re.findall(
        r"`((?:src|tests|scripts|docs|constraints|benchmarks)/[\w./-]*)`", page.read_text()
    ):
        assert (ROOT / path).exists(), f"{page.name} names {path}, which does not exist"


def test_probe_error_lines_in_probe_md_are_what_probe_prints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The error lines of probe.md that need no server (and a refused loopback port), with
    the exit codes its table gives: 2 for usage errors, 1 for network errors."""
    text = (ROOT / "docs" / "probe.md").read_text()
    block = text.split("## Errors and exit codes", 1)[1].split("```text\n", 1)[1]
    lines = block.split("```", 1)[0].splitlines()
    refused = refused_url()
    port = refused.rsplit(":", 1)[1].strip("/")
    cases = {
        "malformed URL 'http://'": (["http://"], 2),
        "unsupported scheme": (["ftp://127.0.0.1/"], 2),
        "--cacert /tmp/nope.pem": (["http://127.0.0.1/", "--cacert", "/tmp/nope.pem"], 2),
        "connection refused": ([refused], 1),
    }
    for needle, (argv, code) in cases.items():
        shown = next(line for line in lines if needle in line)
        shown = re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{port}", shown)
        assert main(["probe", *argv]) == code, needle
        assert capsys.readouterr().err.strip() == shown


def test_bench_without_nginx_says_what_bench_md_quotes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = " ".join((ROOT / "docs" / "bench.md").read_text().split())
    quoted = re.search(r"Without nginx: `(keepwarm bench: error: [^`]*)`", text)
    assert quoted is not None
    monkeypatch.setattr("shutil.which", lambda name, *args, **kwargs: None)
    assert main(["bench", "--server", "nginx"]) == 1
    assert capsys.readouterr().err.strip() == quoted.group(1)
    assert "`--server-latency` is refused with it" in text
    assert main(["bench", "--server", "nginx", "--server-latency", "5ms"]) == 2
    assert capsys.readouterr().err.startswith("keepwarm bench: error: --server-latency")
