"""``keepwarm lint``: the rules on their fixture files, the engine (files, ``.gitignore``,
pyproject.toml, ``# noqa``, parse errors), the outputs and the command's exit codes."""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig
import threading
import time
from typing import Any

import pytest

from keepwarm.cli import build_parser, main
from keepwarm.lint import RULES, lint_paths, lint_source
from keepwarm.lint._config import Patterns
from keepwarm.lint._output import SARIF_SCHEMA

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "lint_fixtures"
DOCS = ROOT / "docs" / "lint"
ALL = frozenset(RULES)
EXPECT = re.compile(r"# expect: (KW\d+(?:, *KW\d+)*)\s*$")
LINE = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<code>KW\d{3}) (?P<msg>.+)$")


def _expected(path: pathlib.Path) -> set[tuple[int, str]]:
    expected = set()
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = EXPECT.search(line)
        if match:
            expected.update((number, code.strip()) for code in match.group(1).split(","))
    return expected


FIXTURE_FILES = sorted(FIXTURES.glob("*.py"))


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.stem)
def test_fixture_findings_are_exactly_the_expect_comments(path: pathlib.Path) -> None:
    """Each offending line of a rule's fixture carries ``# expect: KW1xx``; every other
    line, and every line of a ``clean_*`` file, must produce nothing (all rules on)."""
    expected = _expected(path)
    if path.stem.startswith("clean_"):
        assert expected == set()
    else:
        code = path.stem.split("_", 1)[0]
        assert expected, f"{path.name} expects nothing"
        assert {c for _, c in expected} == {code}, "a rule's fixture is about that rule"
    found = {(f.line, f.code) for f in lint_source(path.read_bytes(), path.name, ALL)}
    assert sorted(found - expected) == [], "false alarms"
    assert sorted(expected - found) == [], "misses"


def test_every_rule_has_a_fixture_a_docs_page_and_a_row_in_the_index() -> None:
    index = (DOCS / "README.md").read_text()
    clean = [p for p in FIXTURE_FILES if p.stem.startswith("clean_")]
    assert len(clean) >= 5
    for code, rule in RULES.items():
        assert re.fullmatch(r"KW\d{3}", code)
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", rule.name)
        if code != "KW001":  # a syntax error cannot sit in a fixture ruff also checks
            fixture = FIXTURES / f"{code}_{rule.name.replace('-', '_')}.py"
            assert fixture.is_file(), fixture
        page = (DOCS / f"{code}.md").read_text()
        assert page.startswith(f"# {code} `{rule.name}`\n")
        headings = re.findall(r"^## (.+)$", page, re.M)
        assert headings[:4] == ["What it does", "Why is this bad?", "Example", "Use instead"]
        default = "on" if rule.default else "off"
        row = f"| [{code}]({code}.md) | `{rule.name}` | {default} |"
        assert row in index, row
    assert len(set(re.findall(r"^\| \[(KW\d+)\]", index, re.M))) == len(RULES)


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_lint_docs_links_and_paths_exist(page: pathlib.Path) -> None:
    text = page.read_text()
    for target in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", text):
        if not re.match(r"[a-z]+:", target):
            assert (page.parent / target).exists(), f"{page.name} links to {target}"
    for path in re.findall(r"`((?:tests|benchmarks|src|docs)/[\w./-]+)`", text):
        assert (ROOT / path).exists(), f"{page.name} names {path}"


def test_the_options_table_lists_exactly_the_parsers_options() -> None:
    parser = next(
        action.choices["lint"]
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    options = {s for a in parser._actions for s in a.option_strings if s.startswith("--")}
    section = (DOCS / "README.md").read_text().split("\n## Options\n", 1)[1].split("\n## ")[0]
    table = set(re.findall(r"^\| `(--[\w-]+|PATH\.\.\.)", section, re.M))
    assert table == (options - {"--help"}) | {"PATH..."}
    synopsis = (DOCS / "README.md").read_text().split("```text\n", 1)[1].split("```")[0]
    assert set(re.findall(r"(--[\w-]+)", synopsis)) == options - {"--help"}


# -- what names mean ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "codes"),
    [
        ("import requests as r\nr.get('u')\n", ["KW103"]),
        ("from requests import get as fetch\nfetch('u')\n", ["KW103"]),
        ("import requests.api\nrequests.api.post('u')\n", ["KW103"]),
        ("from requests import api\napi.request('GET', 'u')\n", ["KW103"]),
        (
            "from requests.sessions import Session\ndef f(u):\n    s = Session()\n"
            "    return s.get(u, timeout=1)\n",
            ["KW102"],
        ),
        ("import requests\ndef f(s: 'requests.Session'):\n    s.get('u')\n", ["KW103"]),
        (
            "from typing import Optional\nimport requests\n"
            "def f(s: Optional[requests.Session]):\n    s.get('u')\n",
            ["KW103"],
        ),
        (
            "try:\n    import requests\nexcept ImportError:\n    requests = None\n"
            "requests.get('u')\n",
            ["KW103"],
        ),
        # Not requests: a rebound name, a relative import, a name never imported.
        ("import requests\nrequests = object()\nrequests.get('u')\n", []),
        ("from .requests import get\nget('u')\n", []),
        ("import requests\ndef f(requests):\n    requests.get('u')\n", []),
        ("get('u')\nSession().get('u')\n", []),
        # keepwarm.install() in the file: plain requests.get rides keepwarm's pools.
        ("import keepwarm, requests\nkeepwarm.install()\nfor u in []:\n    requests.get(u)\n", []),
    ],
)
def test_names_are_resolved_from_the_imports(source: str, codes: list[str]) -> None:
    assert [f.code for f in lint_source(source, "t.py", ALL)] == codes


def test_a_session_used_by_a_nested_function_is_not_per_call() -> None:
    source = (
        "import requests\n"
        "def f(u):\n"
        "    s = requests.Session()\n"
        "    def g():\n"
        "        return s.get(u, timeout=1)\n"
        "    s.get(u, timeout=1)\n"
        "    return g\n"
        "def h(u):\n"
        "    s = requests.Session()\n"
        "    def g(s):\n"
        "        return s\n"
        "    return s.get(u, timeout=1)\n"
    )
    assert [(f.line, f.code) for f in lint_source(source, "t.py", ALL)] == [(9, "KW102")]


@pytest.mark.parametrize(
    ("path", "codes"),
    [
        ("test_api.py", ["KW109"]),
        ("api_test.py", ["KW109"]),
        ("conftest.py", ["KW109"]),
        ("api.py", []),
        ("tests.py", []),
    ],
)
def test_a_module_level_session_is_never_closed_only_in_tests_and_scripts(
    path: str, codes: list[str]
) -> None:
    source = "import requests\nSESSION = requests.Session()\n"
    # A session that never sends a request has no connection to leave open.
    assert [f.code for f in lint_source(source, path, ALL)] == []
    used = source + "def test_it():\n    SESSION.get('u', timeout=1)\n"
    assert [f.code for f in lint_source(used, path, ALL)] == codes
    script = source + "if __name__ == '__main__':\n    SESSION.get('u', timeout=1)\n"
    assert [f.code for f in lint_source(script, path, ALL)] == ["KW109"]


@pytest.mark.parametrize(
    ("decorator", "codes"),
    [
        ("@periodic_task(run_every=30)", ["KW101"]),
        ("@periodic_task(run_every=timedelta(seconds=45))", ["KW101"]),
        ("@periodic_task(run_every=timedelta(hours=1))", []),
        ("@periodic_task(run_every=interval)", []),
        ("@repeat(every(10).seconds)", ["KW101"]),
        ("@repeat(every().minute)", ["KW101"]),
        ("@repeat(every().hour)", []),
        ("@repeat(every().day.at('10:30'))", []),
        ("@sched.scheduled_job('interval', seconds=5)", ["KW101"]),
        ("@sched.scheduled_job('interval', minutes=2)", []),
        ("@sched.scheduled_job('cron', second=5)", []),
        ("@dramatiq.actor", ["KW101"]),
        ("@huey.task()", ["KW101"]),
        ("@invoke.task", []),
        ("@app.websocket('/ws')", []),
        ("@app.get(path='/items')", ["KW101"]),
    ],
)
def test_which_decorated_functions_run_repeatedly(decorator: str, codes: list[str]) -> None:
    """src/keepwarm/lint/_repeated.py: only literal intervals of a minute or less, tasks
    that take an event, routes with a path."""
    source = f"import requests\n{decorator}\ndef job(item):\n    requests.get(item, timeout=5)\n"
    assert [f.code for f in lint_source(source, "t.py", ALL)] == codes


def test_a_per_call_session_is_reported_once() -> None:
    """KW102 says it all; KW109 (never closed) does not repeat it."""
    source = "import requests\ndef f(u):\n    s = requests.Session()\n    s.get(u, timeout=1)\n"
    assert [f.code for f in lint_source(source, "t.py", ALL)] == ["KW102"]


def test_a_thread_pool_alone_does_not_make_a_file_worth_checking() -> None:
    source = (
        "from concurrent.futures import ThreadPoolExecutor\n"
        "from somewhere import HTTPAdapter\n"
        "a = HTTPAdapter(pool_maxsize=2)\n"
        "ThreadPoolExecutor(max_workers=64)\n"
    )
    assert lint_source(source, "t.py", ALL) == []


# -- noqa and parse errors ---------------------------------------------------------------


def test_noqa_silences_the_codes_it_names_or_all_when_bare() -> None:
    source = (
        "import requests\n"
        "requests.get('a')  # noqa: KW103\n"
        "requests.get('b')  # noqa\n"
        "requests.get('c')  # NOQA:KW101,KW103\n"
        "requests.get('d')  # noqa: KW101\n"
        "requests.get('e')  # a comment, no noqa\n"
    )
    assert [(f.line, f.code) for f in lint_source(source, "t.py", ALL)] == [
        (5, "KW103"),
        (6, "KW103"),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"def f(:\n    pass\n", "cannot parse: invalid syntax"),
        (b"x = (\n", "cannot parse: '(' was never closed"),
        (b"\xff\xfe = 1\n", "cannot parse"),
        (b"x = 1\x00\n", "cannot parse"),
    ],
)
def test_a_file_that_does_not_parse_is_one_finding(data: bytes, message: str) -> None:
    (finding,) = lint_source(data, "bad.py", ALL)
    assert finding.code == "KW001"
    assert finding.message.startswith(message)


def test_a_parse_error_does_not_stop_the_run(tmp_path: pathlib.Path) -> None:
    (tmp_path / "a_bad.py").write_text("def (:\n")
    (tmp_path / "b_good.py").write_text("import requests\nrequests.get('u')\n")
    report = lint_paths([str(tmp_path)])
    assert [(pathlib.Path(f.path).name, f.code) for f in report.findings] == [
        ("a_bad.py", "KW001"),
        ("b_good.py", "KW103"),
    ]
    assert report.files == 2


def test_invalid_escapes_do_not_warn(tmp_path: pathlib.Path) -> None:
    """Warnings are errors in this suite: a file the parser warns about is still linted
    quietly (the warning is for its author's tools, not for ours)."""
    (tmp_path / "w.py").write_text("import re, requests\nre.compile('\\d')\nrequests.get('u')\n")
    assert [f.code for f in lint_paths([str(tmp_path)]).findings] == ["KW103"]


# -- which files ---------------------------------------------------------------------------

BAD = "import requests\nrequests.get('u')\n"


def _tree(root: pathlib.Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _linted(root: pathlib.Path, *paths: str, **kwargs: object) -> list[str]:
    report = lint_paths([str(root / p) for p in paths] or [str(root)], **kwargs)  # type: ignore[arg-type]
    return sorted({os.path.relpath(f.path, root).replace(os.sep, "/") for f in report.findings})


def test_worker_processes_give_the_same_report_as_one_process(tmp_path: pathlib.Path) -> None:
    """A tree large enough for the worker pool: the same sorted findings as in one
    process (the pool is forked, so no other thread may run while it starts)."""
    from keepwarm.lint import _engine
    from keepwarm.lint._engine import PARALLEL_THRESHOLD

    if threading.active_count() != 1:
        assert not _engine._can_fork()  # one process then: nothing to compare

    for n in range(PARALLEL_THRESHOLD + 20):
        body = BAD if n % 7 == 0 else "x = 1\n" if n % 11 else "def (:\n"
        _tree(tmp_path, {f"pkg{n % 5}/m{n:03}.py": body})
    alone = lint_paths([str(tmp_path)], jobs=1)
    pooled = lint_paths([str(tmp_path)], jobs=2)
    assert alone.files == pooled.files == PARALLEL_THRESHOLD + 20
    assert {f.code for f in alone.findings} == {"KW001", "KW103"}
    assert pooled.findings == alone.findings


def test_gitignore_patterns_exclude_files_and_directories(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("pathspec")
    (tmp_path / ".git").mkdir()
    _tree(
        tmp_path,
        {
            ".gitignore": "# generated\n\nbuild/\n*_gen.py\n/top.py\ndocs/conf.py\n!keep_gen.py\n",
            "build/a.py": BAD,
            "pkg/build/b.py": BAD,
            "pkg/x_gen.py": BAD,
            "keep_gen.py": BAD,
            "top.py": BAD,
            "pkg/top.py": BAD,
            "docs/conf.py": BAD,
            "pkg/docs/conf.py": BAD,
            "pkg/.gitignore": "local.py\n",
            "pkg/local.py": BAD,
            "local.py": BAD,
            "ok.py": BAD,
            "notes.txt": BAD,
            ".venv/lib/x.py": BAD,
            "sub/__pycache__/y.py": BAD,
        },
    )
    linted = ["keep_gen.py", "local.py", "ok.py", "pkg/docs/conf.py", "pkg/top.py"]
    assert _linted(tmp_path) == linted
    # The parents' .gitignore applies to a directory inside the repository...
    assert _linted(tmp_path, "pkg") == ["pkg/docs/conf.py", "pkg/top.py"]
    # ... and a file named on the command line is always linted.
    assert _linted(tmp_path, "build/a.py", "pkg/local.py") == ["build/a.py", "pkg/local.py"]


GITIGNORED = {
    ".gitignore": (
        "build/\n*.gen.py\n!keep.gen.py\n!build/keep.py\nlogs/*.py\n!logs/keep.py\n"
        "/docs/*\n!/docs/conf.py\n"
    ),
    "pkg/.gitignore": "!x.gen.py\nlocal/\n",
    "pkg/sub/.gitignore": "*.py\n!wanted.py\n",
    "build/a.py": BAD,
    "build/keep.py": BAD,  # a file in an excluded directory cannot be re-included
    "pkg/build/b.py": BAD,
    "a.gen.py": BAD,
    "keep.gen.py": BAD,  # re-included by a negation
    "pkg/x.gen.py": BAD,  # re-included by a nested .gitignore
    "pkg/y.gen.py": BAD,
    "logs/a.py": BAD,
    "logs/keep.py": BAD,
    "logs/deep/b.py": BAD,  # `*` does not cross `/`
    "docs/conf.py": BAD,
    "docs/other.py": BAD,
    "pkg/local/c.py": BAD,
    "pkg/local.py": BAD,  # `local/` matches directories only
    "pkg/sub/unwanted.py": BAD,
    "pkg/sub/wanted.py": BAD,
    "ok.py": BAD,
}


def test_gitignore_negations_nesting_and_directories_as_git_reads_them(
    tmp_path: pathlib.Path,
) -> None:
    """With pathspec installed (the ``lint`` extra), the files linted in a real tree are
    exactly the Python files git itself does not ignore."""
    pytest.importorskip("pathspec")
    _tree(tmp_path, GITIGNORED)
    (tmp_path / ".git").mkdir()
    expected = [
        "docs/conf.py",
        "keep.gen.py",
        "logs/deep/b.py",
        "logs/keep.py",
        "ok.py",
        "pkg/local.py",
        "pkg/sub/wanted.py",
        "pkg/x.gen.py",
    ]
    assert _linted(tmp_path) == expected
    assert _linted(tmp_path, "pkg") == [p for p in expected if p.startswith("pkg/")]
    named = sorted(p for p in GITIGNORED if p.endswith(".py"))
    report = lint_paths([str(tmp_path / p) for p in named], force_exclude=True)
    assert sorted({os.path.relpath(f.path, tmp_path) for f in report.findings}) == [
        os.path.join(*p.split("/")) for p in expected
    ]
    assert report.notes == ()
    git = shutil.which("git")
    if git is None:
        return
    (tmp_path / ".git").rmdir()
    subprocess.run([git, "init", "-q", str(tmp_path)], check=True)
    listed = subprocess.run(
        # Only the tree's own .gitignore files: not the machine's global excludes.
        [
            git,
            "-c",
            "core.excludesFile=",
            "-C",
            str(tmp_path),
            "ls-files",
            "--others",
            "--exclude-standard",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert sorted(p for p in listed if p.endswith(".py")) == expected


def test_a_directory_named_on_the_command_line_is_linted_even_if_ignored(
    tmp_path: pathlib.Path,
) -> None:
    """As a named file is: pyenv's repository ignores /versions, where the standard library
    lives, and `keepwarm lint .../lib/python3.11` must still read it. Inside it, its own
    .gitignore files and the other patterns of the parents' still apply."""
    _tree(
        tmp_path,
        {
            ".gitignore": "/versions\n*_gen.py\n",
            "versions/lib/a.py": BAD,
            "versions/lib/b_gen.py": BAD,
            "versions/lib/.gitignore": "skip.py\n",
            "versions/lib/skip.py": BAD,
            "other.py": BAD,
        },
    )
    (tmp_path / ".git").mkdir()
    assert _linted(tmp_path) == ["other.py"]
    assert _linted(tmp_path, "versions/lib") == ["versions/lib/a.py"]
    assert _linted(tmp_path, "versions") == ["versions/lib/a.py"]


def test_without_pathspec_the_built_in_matcher_says_what_it_cannot_follow(
    tmp_path: pathlib.Path,
) -> None:
    """No pathspec: the built-in subset skips negations (what they re-include stays
    excluded) and says so on stderr, once per file, naming it; it never lints or skips
    other files than it reports."""
    _tree(tmp_path, GITIGNORED)
    (tmp_path / ".git").mkdir()
    script = (
        "import sys; sys.modules['pathspec'] = None\n"  # as if it were not installed
        "from keepwarm.cli import main\n"
        f"raise SystemExit(main(['lint', {str(tmp_path)!r}]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 1
    notes = [line for line in done.stderr.splitlines() if "note:" in line]
    gitignores = [tmp_path / ".gitignore", tmp_path / "pkg" / ".gitignore"]
    gitignores.append(tmp_path / "pkg" / "sub" / ".gitignore")
    assert len(notes) == 3, done.stderr
    for note, path in zip(sorted(notes), sorted(str(p) for p in gitignores), strict=True):
        assert note.startswith(f"keepwarm lint: note: {path} uses `!` negations"), note
        assert "pip install 'keepwarm[lint]'" in note
    assert "`*` in a pattern with a `/`" in sorted(notes)[0]
    linted = {line.split(":", 1)[0] for line in done.stdout.splitlines()}
    shown = {os.path.relpath(p, tmp_path).replace(os.sep, "/") for p in linted}
    # The negations are skipped: keep.gen.py, pkg/x.gen.py, logs/keep.py, docs/conf.py and
    # pkg/sub/wanted.py stay excluded; `logs/*.py` also takes logs/deep/b.py.
    assert sorted(shown) == ["ok.py", "pkg/local.py"]


def test_the_built_in_matcher_reads_plain_patterns_without_a_note() -> None:
    patterns = Patterns.parse("/r", ["# c", "", "build/", "*.log", "/top.py", "a/b.py"], False)
    assert patterns.spec is None
    assert patterns.unsupported == ()
    assert patterns.decide("/r/x/build", True) is True
    assert patterns.decide("/r/x/build", False) is None
    assert patterns.decide("/r/top.py", False) is True
    assert patterns.decide("/r/x/top.py", False) is None
    assert patterns.decide("/r/a/b.py", False) is True
    assert patterns.decide("/elsewhere/a/b.py", False) is None
    flagged = Patterns.parse("/r", ["!x", "a\\#b", "src/*.py"], False).unsupported
    assert [f.split()[0] for f in flagged] == ["`!`", "`\\`", "`*`"]


def test_force_exclude_skips_excluded_files_named_on_the_command_line(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What pre-commit needs: it names every file, excluded or not."""
    (tmp_path / ".git").mkdir()
    _tree(
        tmp_path,
        {
            ".gitignore": "gen/\n",
            "pyproject.toml": '[tool.keepwarm.lint]\nexclude = ["legacy_*.py"]\n',
            "gen/a.py": BAD,
            "pkg/legacy_b.py": BAD,
            ".venv/c.py": BAD,
            "pkg/ok.py": BAD,
        },
    )
    named = ["gen/a.py", "pkg/legacy_b.py", ".venv/c.py", "pkg/ok.py"]
    assert _linted(tmp_path, *named) == sorted(named)
    report = lint_paths([str(tmp_path / p) for p in named], force_exclude=True)
    assert [os.path.relpath(f.path, tmp_path) for f in report.findings] == [
        os.path.join("pkg", "ok.py")
    ]
    assert main(["lint", "--force-exclude", str(tmp_path / "gen" / "a.py")]) == 0
    assert capsys.readouterr().err == "keepwarm lint: 0 findings in 0 files\n"


def test_the_pre_commit_hook_runs_the_command_on_python_files() -> None:
    text = (ROOT / ".pre-commit-hooks.yaml").read_text()
    fields = dict(re.findall(r"^(?:- |  )(\w+): (.+)$", text, re.M))
    assert fields["id"] == "keepwarm-lint"
    assert fields["language"] == "python"
    assert fields["types"] == "[python]"
    command = fields["entry"].split()
    assert command[:2] == ["keepwarm", "lint"]
    args = build_parser().parse_args([*command[1:], "a.py", "b.py"])
    assert args.force_exclude
    assert args.paths == ["a.py", "b.py"]


def test_gitignore_of_parents_outside_a_repository_is_not_read(tmp_path: pathlib.Path) -> None:
    _tree(tmp_path, {".gitignore": "*.py\n", "pkg/a.py": BAD})
    assert _linted(tmp_path, "pkg") == ["pkg/a.py"]
    assert _linted(tmp_path) == []


def test_pyproject_exclude_select_ignore_and_per_file_ignores(tmp_path: pathlib.Path) -> None:
    _tree(
        tmp_path,
        {
            "pyproject.toml": "[tool.keepwarm.lint]\n"
            'exclude = ["migrations/", "legacy_*.py"]\n'
            'ignore = ["KW104"]\n'
            '[tool.keepwarm.lint.per-file-ignores]\n"tests/*" = ["KW103"]\n',
            "app/migrations/m.py": BAD,
            "app/legacy_client.py": BAD,
            "app/client.py": BAD + "requests.get('u', timeout=1, verify=False)\n",
            "tests/test_x.py": BAD + "for u in []:\n    requests.get(u)\n",
        },
    )
    report = lint_paths([str(tmp_path)])
    found = [(os.path.relpath(f.path, tmp_path), f.line, f.code) for f in report.findings]
    assert found == [
        (os.path.join("app", "client.py"), 2, "KW103"),
        (os.path.join("tests", "test_x.py"), 4, "KW101"),
    ]
    # --select replaces the configured selection; both ignore lists apply.
    report = lint_paths([str(tmp_path / "app")], select={"KW104", "KW101"})
    assert [f.code for f in report.findings] == []
    report = lint_paths([str(tmp_path / "app")], select={"KW103"}, ignore={"KW103"})
    assert report.findings == []


def test_pyproject_select_turns_rules_on_and_off(tmp_path: pathlib.Path) -> None:
    _tree(
        tmp_path,
        {
            "pyproject.toml": '[tool.keepwarm.lint]\nselect = ["KW101"]\n',
            "a.py": BAD + "for u in []:\n    requests.get(u)\n",
        },
    )
    assert [f.code for f in lint_paths([str(tmp_path)]).findings] == ["KW101"]
    assert [f.code for f in lint_paths([str(tmp_path)], select={"KW103"}).findings] == [
        "KW103",
        "KW103",
    ]


def test_the_nearest_pyproject_with_a_table_wins(tmp_path: pathlib.Path) -> None:
    _tree(
        tmp_path,
        {
            "pyproject.toml": '[tool.keepwarm.lint]\nignore = ["KW103"]\n',
            "inner/pyproject.toml": '[project]\nname = "inner"\n',  # no table: look further
            "inner/a.py": BAD,
            "other/pyproject.toml": "[tool.keepwarm.lint]\n",
            "other/b.py": BAD,
        },
    )
    assert _linted(tmp_path) == ["other/b.py"]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[tool.keepwarm.lint]\nselect = ['KW9']\n", "unknown rule code 'KW9'"),
        ("[tool.keepwarm.lint]\nignroe = []\n", "unknown key 'ignroe'"),
        ("[tool.keepwarm.lint]\nexclude = 'build'\n", "exclude must be a list of strings"),
        ("[tool.keepwarm.lint\n", "pyproject.toml"),
    ],
)
def test_a_bad_pyproject_is_a_usage_error(
    tmp_path: pathlib.Path, toml: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _tree(tmp_path, {"pyproject.toml": toml, "a.py": "x = 1\n"})
    assert main(["lint", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("keepwarm lint: error: ")
    assert message in err


# -- the command ---------------------------------------------------------------------------


def test_exit_code_0_when_clean_and_1_with_sorted_findings(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean = FIXTURES / "clean_shared_session.py"
    assert main(["lint", str(clean)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "keepwarm lint: 0 findings in 1 file\n"
    fixture = FIXTURES / "KW103_missing_timeout.py"
    assert main(["lint", str(fixture), str(clean)]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    parsed = [LINE.fullmatch(line) for line in lines]
    assert all(parsed), lines
    keys = [(m["path"], int(m["line"]), int(m["col"]), m["code"]) for m in parsed if m]
    assert keys == sorted(keys)
    assert {k[0] for k in keys} == {str(fixture)}
    assert len(lines) == len(_expected(fixture))
    assert err == f"keepwarm lint: {len(lines)} findings in 2 files\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["lint", "no/such/path.py"], "no/such/path.py: no such file or directory"),
        (["lint", "--select", "KW103,XX1", "tests"], "--select: unknown rule code 'XX1'"),
        (["lint", "--ignore", "KW7", "tests"], "--ignore: unknown rule code 'KW7'"),
        (["lint", "--format", "xml", "tests"], "invalid choice: 'xml'"),
        (["lint"], "the following arguments are required: PATH"),
        (["lint", "--jobs", "0", "tests"], "must be from 1 to 64"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_select_and_ignore_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    fixture = str(FIXTURES / "KW101_request_in_loop.py")
    assert main(["lint", fixture, "--ignore", "KW101"]) == 0
    assert main(["lint", fixture, "--select", "KW103,KW104"]) == 0
    assert main(["lint", fixture, "--select", "kw1"]) == 1  # prefixes, any case
    codes = {line.split()[1] for line in capsys.readouterr().out.splitlines()}
    assert codes == {"KW101"}


def test_rules_off_by_default_run_only_when_selected(capsys: pytest.CaptureFixture[str]) -> None:
    off = [code for code, rule in RULES.items() if not rule.default]
    assert off == ["KW105", "KW106", "KW109"]
    for code in off:
        fixture = str(next(FIXTURES.glob(f"{code}_*.py")))
        assert main(["lint", fixture]) == 0
        assert main(["lint", fixture, "--select", code]) == 1
        assert main(["lint", fixture, "--select", "ALL", "--ignore", code]) == 0
    capsys.readouterr()


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    fixture = FIXTURES / "KW104_verify_disabled.py"
    assert main(["lint", "--format", "json", str(fixture)]) == 1
    out, err = capsys.readouterr()
    assert err == ""
    rows = json.loads(out)
    assert {(r["line"], r["code"]) for r in rows} == _expected(fixture)
    assert set(rows[0]) == {"path", "line", "column", "code", "name", "message"}
    assert rows[0]["name"] == "verify-disabled"
    assert main(["lint", "--format", "json", str(FIXTURES / "clean_factory.py")]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_sarif_output_has_what_code_scanning_needs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    fixture = FIXTURES / "KW102_session_per_call.py"
    assert main(["lint", "--format", "sarif", os.path.relpath(fixture)]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["version"] == "2.1.0"
    assert document["$schema"] == SARIF_SCHEMA
    (run,) = document["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "keepwarm-lint"
    assert [r["id"] for r in driver["rules"]] == list(RULES)
    assert {(r["physicalLocation"]["region"]["startLine"]) for r in _locations(run)} == {
        line for line, _ in _expected(fixture)
    }
    for result in run["results"]:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"] == "KW102"
        assert result["message"]["text"]
        (location,) = result["locations"]
        artifact = location["physicalLocation"]["artifactLocation"]
        assert artifact == {
            "uri": "tests/lint_fixtures/KW102_session_per_call.py",
            "uriBaseId": "%SRCROOT%",
        }


def _locations(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [loc for result in run["results"] for loc in result["locations"]]


def test_the_command_is_listed_and_runs_as_python_m(tmp_path: pathlib.Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    listed = subprocess.run(
        [sys.executable, "-m", "keepwarm", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert re.search(r"^\s+lint\s+find requests anti-patterns", listed, re.M)
    (tmp_path / "a.py").write_text(BAD)
    run = subprocess.run(
        [sys.executable, "-m", "keepwarm", "lint", "a.py"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert run.returncode == 1
    assert run.stdout.startswith("a.py:2:1: KW103 `requests.get()` without `timeout=`")
    assert run.stderr == "keepwarm lint: 1 finding in 1 file\n"


# -- real code -----------------------------------------------------------------------------


@pytest.mark.slow
def test_the_whole_standard_library_lints_without_an_internal_error() -> None:
    """Every file of the running Python's ``Lib/`` (its site-packages excluded, as by
    default), in worker processes like a real run: no crash, no error line, done within
    a bound. What it finds is printed (``-s`` shows it), not asserted: a new Python
    brings new files."""
    stdlib = sysconfig.get_paths()["stdlib"]
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "keepwarm", "lint", "--format", "json", stdlib],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        timeout=300,
    )
    elapsed = time.monotonic() - started
    assert run.returncode in (0, 1), run.stderr
    assert run.stderr == ""
    findings = json.loads(run.stdout)
    files = sum(1 for _ in pathlib.Path(stdlib).rglob("*.py"))
    assert files > 500
    codes: dict[str, int] = {}
    for finding in findings:
        codes[finding["code"]] = codes.get(finding["code"], 0) + 1
    assert set(codes) <= set(RULES)
    assert elapsed < 120
    print(f"\nstdlib {stdlib}: {len(findings)} findings {codes} in {elapsed:.1f} s")
