"""The ``keepwarm lint`` command: options in, findings out, and the exit code.

Exit codes: 0 nothing found, 1 something found, 2 a usage error (a path that does not
exist, an unknown rule code, a bad ``[tool.keepwarm.lint]``); argparse's own option
errors exit 2 before this runs. As ruff's: with ``--fix``, 0 when every finding was fixed
and 1 when some remain; with ``--diff``, 1 when there is a change to show, else 0.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from typing import TextIO

from keepwarm.lint._engine import Report, UsageError, lint_paths
from keepwarm.lint._fix import Outcome, fix_files, unified_diff
from keepwarm.lint._output import as_json, as_sarif, as_text
from keepwarm.lint._rules import UnknownCode, expand_codes

__all__ = ["EXIT_FOUND", "EXIT_OK", "EXIT_USAGE", "run_command"]

EXIT_OK = 0
EXIT_FOUND = 1
EXIT_USAGE = 2


def _codes(text: str | None, option: str) -> set[str] | None:
    if text is None:
        return None
    return expand_codes(text.split(","), option)


def run_command(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """Run ``keepwarm lint`` with parsed *args*; returns the exit code."""
    try:
        lint = functools.partial(
            lint_paths,
            select=_codes(args.select, "--select"),
            ignore=_codes(args.ignore, "--ignore") or set(),
            jobs=args.jobs,
            force_exclude=args.force_exclude,
        )
        report = lint(args.paths)
        outcome: Outcome | None = None
        if args.fix or args.diff:
            outcome = fix_files(report.findings, args.fix_timeout, write=not args.diff)
            if outcome.written:
                report = _after_fixes(report, outcome, lint)
    except (UsageError, UnknownCode) as exc:
        stderr.write(f"keepwarm lint: error: {exc}\n")
        return EXIT_USAGE
    for note in report.notes:
        stderr.write(f"keepwarm lint: note: {note}\n")
    if outcome is not None:
        for error in outcome.errors:
            stderr.write(f"keepwarm lint: error: {error}\n")
    if args.diff:
        assert outcome is not None
        return _show_diff(outcome, stdout, stderr)
    if args.format == "json":
        stdout.write(as_json(report.findings))
    elif args.format == "sarif":
        stdout.write(as_sarif(report.findings))
    else:
        stdout.write(as_text(report.findings))
        count = len(report.findings)
        files = "file" if report.files == 1 else "files"
        if outcome is None:
            found = "finding" if count == 1 else "findings"
            stderr.write(f"keepwarm lint: {count} {found} in {report.files} {files}\n")
        else:
            _fix_summary(outcome, count, report.files, stderr)
    return EXIT_FOUND if report.findings else EXIT_OK


def _after_fixes(report: Report, outcome: Outcome, lint: Callable[[list[str]], Report]) -> Report:
    """The report once the fixes are saved: the files changed are linted again (their
    lines may have moved, and what remains there is what counts), with the same options."""
    again = lint(outcome.written)
    changed = set(outcome.written)
    kept = [f for f in report.findings if f.path not in changed]
    return Report(sorted([*kept, *again.findings]), report.files)


def _show_diff(outcome: Outcome, stdout: TextIO, stderr: TextIO) -> int:
    for fix in outcome.fixes:
        stdout.write(unified_diff(fix))
    fixed, files = outcome.fixed, len(outcome.fixes)
    stderr.write(
        f"keepwarm lint: would fix {fixed} {'finding' if fixed == 1 else 'findings'} in "
        f"{files} {'file' if files == 1 else 'files'}\n"
    )
    return EXIT_FOUND if outcome.fixes else EXIT_OK


def _fix_summary(outcome: Outcome, remaining: int, checked: int, stderr: TextIO) -> None:
    saved = set(outcome.written)
    for path, line, reason in outcome.left:
        stderr.write(f"keepwarm lint: {path}:{line}: KW103 not fixed: {reason}\n")
    fixed = sum(len(fix.done) for fix in outcome.fixes if fix.path in saved)
    total = fixed + remaining
    files = "file" if checked == 1 else "files"
    found = "finding" if total == 1 else "findings"
    stderr.write(
        f"keepwarm lint: {total} {found} in {checked} {files} "
        f"({fixed} fixed, {remaining} remaining)\n"
    )
