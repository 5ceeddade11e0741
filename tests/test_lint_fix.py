"""``keepwarm lint --fix`` and ``--diff``: the fixture pairs in tests/lint_fixtures/fix/
(``NAME.py`` and what ``--fix`` must make of it, ``NAME.fixed.py``), the command run in a
subprocess on real files, and the cases the fix must leave alone."""

from __future__ import annotations

import ast
import io
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import tokenize
import warnings

import pytest

from keepwarm.lint import lint_source
from keepwarm.lint._fix import DEFAULT_FIX_TIMEOUT, fix_source
from keepwarm.lint._rules import RULES

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "lint_fixtures" / "fix"
PAIRS = sorted(p for p in FIX.glob("*.py") if not p.name.endswith(".fixed.py"))
ALL = frozenset(RULES)


def _lint(cwd: pathlib.Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "keepwarm", "lint", *args],
        capture_output=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        timeout=120,
    )


def _fixed_name(path: pathlib.Path) -> pathlib.Path:
    return path.with_name(path.stem + ".fixed.py")


def _docstring_free(text: bytes) -> bytes:
    """The pair's files differ in their first line only (each says what it is)."""
    return text.split(b"\n", 1)[1]


@pytest.mark.parametrize("path", PAIRS, ids=lambda p: p.stem)
def test_fix_makes_the_expected_file(path: pathlib.Path, tmp_path: pathlib.Path) -> None:
    work = tmp_path / "a.py"
    shutil.copyfile(path, work)
    run = _lint(tmp_path, "--fix", "a.py")
    expected = _fixed_name(path).read_bytes()
    assert _docstring_free(work.read_bytes()) == _docstring_free(expected)
    left = [f for f in lint_source(expected, "a.py", ALL) if f.code == "KW103"]
    assert run.returncode == (1 if left else 0)
    assert run.stdout.decode().count("KW103") == len(left)


def test_the_fixture_covers_the_cases() -> None:
    """What timeouts.py holds, so that the pair keeps testing what it claims to."""
    text = (FIX / "timeouts.py").read_text()
    for case in ("**kwargs", "*args", "# noqa: KW103", ",)", "    )", '"""a multi-line', "é"):
        assert case in text, case
    fixed = (FIX / "timeouts.fixed.py").read_text()
    assert fixed.count("timeout=10") == 18
    assert 'requests.request("GET", url, None)\n' in fixed


def test_a_second_fix_changes_nothing(tmp_path: pathlib.Path) -> None:
    work = tmp_path / "a.py"
    shutil.copyfile(FIX / "timeouts.py", work)
    first = _lint(tmp_path, "--fix", "a.py")
    once = work.read_bytes()
    second = _lint(tmp_path, "--fix", "a.py")
    assert work.read_bytes() == once
    assert second.returncode == first.returncode == 1
    assert second.stdout == first.stdout
    assert b"(0 fixed, 3 remaining)" in second.stderr
    assert _lint(tmp_path, "--diff", "a.py").returncode == 0


def test_the_command_says_what_was_fixed_and_what_remains(tmp_path: pathlib.Path) -> None:
    shutil.copyfile(FIX / "timeouts.py", tmp_path / "a.py")
    run = _lint(tmp_path, "--fix", "a.py")
    err = run.stderr.decode().splitlines()
    assert err[-1] == "keepwarm lint: 21 findings in 1 file (18 fixed, 3 remaining)"
    # Why each remaining one was left, at its line in the fixed file.
    notes = [line for line in err if "not fixed" in line]
    assert notes == [
        "keepwarm lint: a.py:66: KW103 not fixed: a positional argument may be the timeout",
        "keepwarm lint: a.py:67: KW103 not fixed: a positional argument may be the timeout",
        "keepwarm lint: a.py:68: KW103 not fixed: a lone generator argument",
    ]
    lines = [line.split(":")[1] for line in run.stdout.decode().splitlines()]
    assert lines == ["66", "67", "68"]


def test_exit_0_when_everything_was_fixed(tmp_path: pathlib.Path) -> None:
    (tmp_path / "a.py").write_text("import requests\nrequests.get('u')\n")
    run = _lint(tmp_path, "--fix", "a.py")
    assert (run.returncode, run.stdout) == (0, b"")
    assert run.stderr == b"keepwarm lint: 1 finding in 1 file (1 fixed, 0 remaining)\n"
    assert (tmp_path / "a.py").read_text() == "import requests\nrequests.get('u', timeout=10)\n"


def test_diff_prints_a_patch_and_changes_nothing(tmp_path: pathlib.Path) -> None:
    work = tmp_path / "a.py"
    shutil.copyfile(FIX / "timeouts.py", work)
    before = work.read_bytes()
    run = _lint(tmp_path, "--diff", "a.py")
    assert run.returncode == 1
    assert work.read_bytes() == before
    assert run.stdout.startswith(b"--- a.py\n+++ a.py\n@@ ")
    lines = run.stdout.splitlines()[2:]
    # 18 fixes: 3 on lines of their own, 2 on one line, 13 on a line each.
    assert sum(line.startswith(b"+") for line in lines) == 3 + 1 + 13
    assert sum(line.startswith(b"-") for line in lines) == 1 + 13
    assert run.stderr == b"keepwarm lint: would fix 18 findings in 1 file\n"
    if shutil.which("patch") is None:
        pytest.skip("no patch program to apply the diff with")
    subprocess.run(["patch", "-p0", "-s"], input=run.stdout, cwd=tmp_path, check=True, timeout=60)
    assert work.read_bytes() == _fixed_name(FIX / "timeouts.py").read_bytes().replace(
        b'"""keepwarm lint --fix: what --fix makes of timeouts.py.',
        b'"""keepwarm lint --fix: the input (timeouts.fixed.py is what --fix must make of it).',
    )


def test_diff_exits_0_when_there_is_nothing_to_fix(tmp_path: pathlib.Path) -> None:
    """Findings the fix cannot touch do not count: as ruff's ``--diff``."""
    (tmp_path / "a.py").write_text("import requests\nrequests.request('GET', 'u', None)\n")
    run = _lint(tmp_path, "--diff", "a.py")
    assert (run.returncode, run.stdout) == (0, b"")
    assert run.stderr == b"keepwarm lint: would fix 0 findings in 0 files\n"


def test_crlf_line_endings_are_kept(tmp_path: pathlib.Path) -> None:
    work = tmp_path / "a.py"
    work.write_bytes((FIX / "timeouts.py").read_bytes().replace(b"\n", b"\r\n"))
    _lint(tmp_path, "--fix", "a.py")
    expected = _fixed_name(FIX / "timeouts.py").read_bytes().replace(b"\n", b"\r\n")
    assert _docstring_free(work.read_bytes()) == _docstring_free(expected)
    assert b"\r\n" in work.read_bytes()
    assert b"\n" not in work.read_bytes().replace(b"\r\n", b"")


def test_an_encoding_and_a_bom_are_kept(tmp_path: pathlib.Path) -> None:
    latin = tmp_path / "latin.py"
    latin.write_bytes(
        b"# -*- coding: latin-1 -*-\nimport requests\nrequests.get('caf\xe9')  # \xe9t\xe9\n"
    )
    bom = tmp_path / "bom.py"
    bom.write_bytes(b"\xef\xbb\xbfimport requests\nrequests.get('\xc3\xa9')\n")
    assert _lint(tmp_path, "--fix", "latin.py", "bom.py").returncode == 0
    assert latin.read_bytes().endswith(b"requests.get('caf\xe9', timeout=10)  # \xe9t\xe9\n")
    fixed = b"\xef\xbb\xbfimport requests\nrequests.get('\xc3\xa9', timeout=10)\n"
    assert bom.read_bytes() == fixed


def test_a_file_that_does_not_parse_is_left_and_the_others_are_fixed(
    tmp_path: pathlib.Path,
) -> None:
    bad = b"import requests\nrequests.get('u')\ndef (:\n"
    (tmp_path / "bad.py").write_bytes(bad)
    (tmp_path / "good.py").write_text("import requests\nrequests.get('u')\n")
    run = _lint(tmp_path, "--fix", ".")
    assert (tmp_path / "bad.py").read_bytes() == bad
    assert "timeout=10" in (tmp_path / "good.py").read_text()
    assert run.returncode == 1
    assert run.stdout.decode().startswith("./bad.py:3:5: KW001 cannot parse")


def test_an_unwritable_file_is_a_clear_error_and_the_rest_goes_on(tmp_path: pathlib.Path) -> None:
    """Root writes to read-only files, so for root the command runs without the
    capability that lets it (``setpriv``, util-linux)."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv to drop CAP_DAC_OVERRIDE")
        prefix = ["setpriv", "--bounding-set=-dac_override", "--"]
    locked = tmp_path / "locked.py"
    locked.write_text("import requests\nrequests.get('u')\n")
    locked.chmod(0o444)
    (tmp_path / "open.py").write_text("import requests\nrequests.get('u')\n")
    run = subprocess.run(
        [*prefix, sys.executable, "-m", "keepwarm", "lint", "--fix", "locked.py", "open.py"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        timeout=120,
    )
    assert run.returncode == 1
    assert (
        "keepwarm lint: error: locked.py: cannot write the fixes: Permission denied; "
        "left unchanged\n" in run.stderr
    )
    assert locked.read_text() == "import requests\nrequests.get('u')\n"
    assert "timeout=10" in (tmp_path / "open.py").read_text()
    assert run.stdout.startswith("locked.py:2:1: KW103")
    assert run.stderr.endswith("(1 fixed, 1 remaining)\n")


def test_the_timeout_comes_from_the_option_then_the_configuration(tmp_path: pathlib.Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.keepwarm.lint]\nfix-timeout = 30\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "pyproject.toml").write_text("[tool.keepwarm.lint]\nselect = ['KW1']\n")
    for name in ("a.py", "b.py", "sub/c.py"):
        (tmp_path / name).write_text("import requests\nrequests.get('u')\n")
    assert _lint(tmp_path, "--fix", "a.py", "sub/c.py").returncode == 0
    assert "timeout=30)" in (tmp_path / "a.py").read_text()
    assert f"timeout={DEFAULT_FIX_TIMEOUT})" in (tmp_path / "sub" / "c.py").read_text()
    assert _lint(tmp_path, "--fix", "--fix-timeout", "2.5", "b.py").returncode == 0
    assert "timeout=2.5)" in (tmp_path / "b.py").read_text()


@pytest.mark.parametrize("value", ["0", "-1", "ten", "nan", "inf", "1e400", ""])
def test_a_bad_fix_timeout_option_exits_2(tmp_path: pathlib.Path, value: str) -> None:
    (tmp_path / "a.py").write_text("import requests\nrequests.get('u')\n")
    run = _lint(tmp_path, "--fix", "--fix-timeout", value, "a.py")
    assert run.returncode == 2
    assert b"--fix-timeout: expected a number of seconds above 0" in run.stderr
    assert (tmp_path / "a.py").read_text() == "import requests\nrequests.get('u')\n"


@pytest.mark.parametrize("value", ["0", "-3", "true", '"10"', "[10]"])
def test_a_bad_fix_timeout_setting_exits_2(tmp_path: pathlib.Path, value: str) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.keepwarm.lint]\nfix-timeout = {value}\n")
    (tmp_path / "a.py").write_text("import requests\nrequests.get('u')\n")
    run = _lint(tmp_path, "--fix", "a.py")
    assert run.returncode == 2
    assert b"[tool.keepwarm.lint] fix-timeout: expected a number of seconds above 0" in run.stderr


def test_ignored_and_noqa_findings_are_not_fixed(tmp_path: pathlib.Path) -> None:
    source = "import requests\nrequests.get('u')\nrequests.get('v')  # noqa: KW103\n"
    (tmp_path / "a.py").write_text(source)
    assert _lint(tmp_path, "--fix", "--ignore", "KW103", "a.py").returncode == 0
    assert (tmp_path / "a.py").read_text() == source
    assert _lint(tmp_path, "--fix", "a.py").returncode == 0
    assert (tmp_path / "a.py").read_text() == source.replace("'u')", "'u', timeout=10)")


# -- the edit itself (pure logic) ----------------------------------------------------------


def _fix(source: str) -> tuple[str | None, list[str]]:
    findings = [f for f in lint_source(source, "t.py", ALL) if f.code == "KW103"]
    result = fix_source(source.encode(), "t.py", findings, 10)
    fixed = None if result.fixed is None else result.fixed.decode()
    return fixed, [reason for _, reason in result.left]


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        ("requests.request('GET', u, None)", "a positional argument may be the timeout"),
        ("requests.get(u, None, None)", "a positional argument may be the timeout"),
        ("requests.post(u, None, None, None)", "a positional argument may be the timeout"),
        ("requests.head(u, None)", "a positional argument may be the timeout"),
        ("requests.post(x for x in u)", "a lone generator argument"),
    ],
)
def test_calls_that_are_left_alone(call: str, reason: str) -> None:
    assert _fix(f"import requests\nu = 'x'\n{call}\n") == (None, [reason])


def test_a_session_request_with_every_positional_up_to_the_timeout_is_left_alone() -> None:
    source = (
        "import requests\ndef f(s: requests.Session, u: str) -> None:\n"
        "    s.request('GET', u, None, None, None, None, None, None)\n"
    )
    assert _fix(source) == (None, ["a positional argument may be the timeout"])


@pytest.mark.parametrize(
    ("call", "fixed"),
    [
        ("requests.get(u)", "requests.get(u, timeout=10)"),
        ("requests.get(u, params={})", "requests.get(u, params={}, timeout=10)"),
        ("requests.post(u, b'', {})", "requests.post(u, b'', {}, timeout=10)"),
        ("requests.get((u))", "requests.get((u), timeout=10)"),
        ("requests.get(u)[0]", "requests.get(u, timeout=10)[0]"),
        ("(requests.get)(u)", "(requests.get)(u, timeout=10)"),
        ("requests.get(u) if u else None", "requests.get(u, timeout=10) if u else None"),
        ("requests.post((x for x in u))", "requests.post((x for x in u), timeout=10)"),
        ("requests.get(\tu\t)", "requests.get(\tu, timeout=10\t)"),
        ("requests.get(u, \\\n    )", "requests.get(u, \\\n    timeout=10,\n    )"),
        ("fetch(u)", "fetch(u, timeout=10)"),
        ("api.request('GET', u)", "api.request('GET', u, timeout=10)"),
    ],
)
def test_where_the_argument_goes(call: str, fixed: str) -> None:
    prefix = "import requests\nfrom requests import api, get as fetch\nu = 'x'\n"
    assert _fix(prefix + call + "\n") == (prefix + fixed + "\n", [])


def test_a_lone_carriage_return_leaves_the_file_alone() -> None:
    source = "import requests\r\nrequests.get('u')\r# old Mac line end\nx = 1\n"
    assert _fix(source) == (None, ["a lone carriage return in the file"])


@pytest.mark.parametrize(
    ("after", "problem"),
    [
        (b"import requests\nrequests.get('u', timeout=1,,)\n", "the fixed file would not parse"),
        (b"import requests\nrequests.get('u', tmeout=1)\n", "the fix would not remove the finding"),
        (
            b"import requests\nrequests.get('u', timeout=10, verify=False)\n",
            "the fix would change other findings",
        ),
    ],
)
def test_a_fix_that_does_not_check_out_is_refused(after: bytes, problem: str) -> None:
    """The last guard before a file is written: parse the result and lint it again."""
    from keepwarm.lint._fix import _verify

    before = b"import requests\nrequests.get('u')\n"
    assert _verify(before, after, "t.py", 1) == problem
    assert _verify(before, before.replace(b"')", b"', timeout=10)"), "t.py", 1) is None


@pytest.mark.slow
def test_the_edit_parses_on_a_call_of_every_standard_library_file() -> None:
    """The edit alone (no finding needed, so no requests call needed): one call from the
    middle of each file of the running Python's ``Lib/``, in whatever layout it is
    written, gets ``timeout=10`` as its last keyword and the file still parses, or the
    edit is refused (a call inside an f-string before Python 3.12 has no tokens of its
    own). Bounded: every third file, one call each (tokenizing is the slow part).
    A larger sample is recorded in docs/lint/README.md, "Fixing"."""
    from keepwarm.lint._fix import _Source, _unsafe

    stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"])
    edited = refused = 0
    for path in sorted(stdlib.rglob("*.py"))[::3]:
        if "site-packages" in path.parts:
            continue
        data = path.read_bytes()
        try:
            encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
            text = data.decode(encoding)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tree = ast.parse(data)
            tokens = list(tokenize.generate_tokens(io.StringIO(text, newline="").readline))
        except (SyntaxError, ValueError, UnicodeError, tokenize.TokenError):
            continue  # lib2to3's and the test suite's deliberately broken files
        if "\r" in text.replace("\r\n", ""):
            continue
        calls = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and _unsafe(node, "request") is None
        ]
        if not calls:
            continue
        call = calls[len(calls) // 2]
        edit = _Source(text, tokens).edit(call, "timeout=10")
        if edit is None:
            refused += 1
            continue
        offset, insert = edit
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fixed = ast.parse(text[:offset] + insert + text[offset:], str(path))
        (same,) = (
            node
            for node in ast.walk(fixed)
            if isinstance(node, ast.Call)
            and (node.lineno, node.col_offset, node.func.__class__)
            == (call.lineno, call.col_offset, ast.Name)
            and node.func.id == call.func.id  # type: ignore[attr-defined]
        )
        assert same.keywords[-1].arg == "timeout", (path, call.lineno)
        edited += 1
    assert edited > 300
    assert refused < edited // 20
