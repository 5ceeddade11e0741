"""The ``keepwarm lint`` command: options in, findings out, and the exit code.

Exit codes: 0 nothing found, 1 something found, 2 a usage error (a path that does not
exist, an unknown rule code, a bad ``[tool.keepwarm.lint]``); argparse's own option
errors exit 2 before this runs.
"""

from __future__ import annotations

import argparse
from typing import TextIO

from keepwarm.lint._engine import UsageError, lint_paths
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
        select = _codes(args.select, "--select")
        ignore = _codes(args.ignore, "--ignore") or set()
        report = lint_paths(
            args.paths,
            select=select,
            ignore=ignore,
            jobs=args.jobs,
            force_exclude=args.force_exclude,
        )
    except (UsageError, UnknownCode) as exc:
        stderr.write(f"keepwarm lint: error: {exc}\n")
        return EXIT_USAGE
    for note in report.notes:
        stderr.write(f"keepwarm lint: note: {note}\n")
    if args.format == "json":
        stdout.write(as_json(report.findings))
    elif args.format == "sarif":
        stdout.write(as_sarif(report.findings))
    else:
        stdout.write(as_text(report.findings))
        count = len(report.findings)
        files = "file" if report.files == 1 else "files"
        found = "finding" if count == 1 else "findings"
        stderr.write(f"keepwarm lint: {count} {found} in {report.files} {files}\n")
    return EXIT_FOUND if report.findings else EXIT_OK
