"""The run: find the files, read and parse each one, run the rules, apply ``# noqa`` and
the configuration, and gather the findings in a stable order.

User code is only ever read and parsed (``ast``), never imported or run. A file that cannot
be read or parsed is one KW001 finding and the run goes on. A file that spells neither
``requests`` nor ``keepwarm`` is parsed (a syntax error is still found) but the rules do
not run on it: most files of a large tree, and the reason the linter is fast on them.

Large runs are spread over worker processes (``jobs``); each file is independent, and the
findings are sorted afterwards, so the output is the same for any number of workers.
"""

from __future__ import annotations

import ast
import multiprocessing
import os
import re
import threading
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from keepwarm.lint._checker import Checker, Hit
from keepwarm.lint._config import (
    DEFAULT_EXCLUDED_DIRECTORIES,
    ConfigError,
    Patterns,
    clear_cache,
    find_config,
    gitignore_patterns,
    ignored,
    notes,
)
from keepwarm.lint._names import Names, module_mentions_http
from keepwarm.lint._rules import RULES, Finding

__all__ = ["PARALLEL_THRESHOLD", "Report", "UsageError", "iter_files", "lint_paths", "lint_source"]

#: Below this many files one process is faster than starting workers (~0.2 s each).
PARALLEL_THRESHOLD = 300
#: flake8's suppression comment, bare or with a list of codes (case-insensitive).
_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.I)


class UsageError(ValueError):
    """A path that does not exist, an unknown code, a bad pyproject.toml: exit code 2."""


@dataclass(frozen=True)
class Report:
    """The findings of a run, sorted (path, line, column, code), how many files were
    read, and notes for the user (a ``.gitignore`` the built-in matcher does not read as
    git would)."""

    findings: list[Finding]
    files: int
    notes: tuple[str, ...] = ()


def lint_source(
    source: str | bytes, path: str = "<source>", enabled: frozenset[str] | None = None
) -> list[Finding]:
    """The findings for one file's *source* (all rules unless *enabled* is given), sorted;
    ``# noqa`` comments apply, no configuration is read."""
    data = source.encode() if isinstance(source, str) else source
    codes = frozenset(RULES) if enabled is None else enabled
    return sorted(_check(data, path, codes))


def lint_paths(
    paths: Sequence[str],
    select: set[str] | None = None,
    ignore: set[str] | frozenset[str] = frozenset(),
    jobs: int | None = None,
    force_exclude: bool = False,
) -> Report:
    """Lint the files and directories *paths*: ``select`` (codes) replaces the configured
    selection, ``ignore`` adds to it; ``jobs`` worker processes (default: one per CPU for
    runs of ``PARALLEL_THRESHOLD`` files or more, where forking is safe); with
    ``force_exclude`` the exclusions apply to files named in *paths* too. Raises
    :class:`UsageError` for a missing path or a bad configuration."""
    clear_cache()
    tasks: list[tuple[str, str, frozenset[str]]] = []
    try:
        for display, absolute in iter_files(paths, force_exclude):
            config = find_config(os.path.dirname(absolute))
            enabled = config.enabled(select, set(ignore)) - config.ignored_for(absolute)
            tasks.append((absolute, display, enabled))
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    workers = jobs if jobs is not None else (os.cpu_count() or 1)
    findings: list[Finding] = []
    if workers > 1 and len(tasks) >= PARALLEL_THRESHOLD and _can_fork():
        chunk = max(1, len(tasks) // (workers * 8))
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            for found in pool.map(_lint_file, tasks, chunksize=chunk):
                findings.extend(found)
    else:
        for task in tasks:
            findings.extend(_lint_file(task))
    findings.sort()
    return Report(findings, len(tasks), tuple(notes()))


def _can_fork() -> bool:
    """Worker processes are forked, and only where that is safe: on a platform with
    ``fork`` and with no other thread running, whose locks the children would inherit
    (the command line; not a threaded program calling :func:`lint_paths`). ``spawn`` and
    ``forkserver`` would re-run the caller's main module, which fails for a REPL or a
    script on stdin; one process is slower but always works."""
    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


def iter_files(paths: Sequence[str], force_exclude: bool = False) -> Iterator[tuple[str, str]]:
    """``(shown path, absolute path)`` of every Python file under *paths*, once each, in a
    stable order. Inside directories the default exclusions, ``.gitignore`` and ``exclude``
    apply; a file named on the command line is linted anyway, unless *force_exclude* (what
    pre-commit needs: it names every file)."""
    seen: set[str] = set()
    for path in paths:
        absolute = os.path.abspath(path)
        if os.path.isfile(absolute):
            if force_exclude and _excluded(absolute):
                continue
            if absolute not in seen:
                seen.add(absolute)
                yield path, absolute
        elif os.path.isdir(absolute):
            # A directory named here is linted even if a .gitignore above excludes it, as
            # a named file is (the standard library inside pyenv's repository, whose
            # .gitignore has /versions): the lines that exclude it do not apply in it.
            parents = [
                p.without_matches_of(absolute) if p.match(absolute, True) else p
                for p in _parent_gitignores(absolute)
            ]
            for found in _walk(absolute, path, parents):
                if found[1] not in seen:
                    seen.add(found[1])
                    yield found
        else:
            raise UsageError(f"{path}: no such file or directory")


def _excluded(absolute: str) -> bool:
    """Whether a walk would have skipped the file *absolute*: it, or a directory above it,
    is a default exclusion or matches ``.gitignore`` or the configuration's ``exclude``."""
    directory = os.path.dirname(absolute)
    patterns = _parent_gitignores(directory)
    own = gitignore_patterns(directory)
    if own is not None:
        patterns.append(own)
    exclude = find_config(directory).exclude
    path, is_dir = absolute, False
    while True:
        if is_dir and os.path.basename(path) in DEFAULT_EXCLUDED_DIRECTORIES:
            return True
        if ignored(patterns, path, is_dir) or (exclude is not None and exclude.match(path, is_dir)):
            return True
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path, is_dir = parent, True


def _parent_gitignores(directory: str) -> list[Patterns]:
    """The ``.gitignore`` patterns above *directory*, up to its repository's root."""
    found: list[Patterns] = []
    current = directory
    while True:
        parent = os.path.dirname(current)
        if os.path.exists(os.path.join(current, ".git")) or parent == current:
            break
        current = parent
        patterns = gitignore_patterns(current)
        if patterns is not None:
            found.append(patterns)
    # Only inside a repository do the parents' .gitignore files mean anything.
    return found if os.path.exists(os.path.join(current, ".git")) else []


def _walk(directory: str, shown: str, patterns: list[Patterns]) -> Iterator[tuple[str, str]]:
    own = gitignore_patterns(directory)
    if own is not None:
        patterns = [*patterns, own]
    exclude = find_config(directory).exclude
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return  # unreadable directory: nothing to lint in it
    for entry in entries:
        is_dir = entry.is_dir(follow_symlinks=False)
        if is_dir and entry.name in DEFAULT_EXCLUDED_DIRECTORIES:
            continue
        if not is_dir and not (entry.name.endswith(".py") and entry.is_file()):
            continue
        if ignored(patterns, entry.path, is_dir) or (
            exclude is not None and exclude.match(entry.path, is_dir)
        ):
            continue
        child = os.path.join(shown, entry.name)
        if is_dir:
            yield from _walk(entry.path, child, patterns)
        else:
            yield child, entry.path


def _lint_file(task: tuple[str, str, frozenset[str]]) -> list[Finding]:
    absolute, display, enabled = task
    if not enabled:
        return []
    try:
        with open(absolute, "rb") as file:
            data = file.read()
    except OSError as exc:
        return [Finding(display, 1, 1, "KW001", f"cannot read the file: {exc.strerror}")]
    return _check(data, display, enabled)


def _check(data: bytes, display: str, enabled: frozenset[str]) -> list[Finding]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes and the like: not ours to say
            tree = ast.parse(data, display)
    except SyntaxError as exc:
        if "KW001" not in enabled:
            return []
        line, col = exc.lineno or 1, exc.offset or 1
        return [Finding(display, line, max(col, 1), "KW001", f"cannot parse: {exc.msg}")]
    except (ValueError, RecursionError, MemoryError) as exc:
        if "KW001" not in enabled:
            return []
        return [Finding(display, 1, 1, "KW001", f"cannot parse: {exc}")]
    if not module_mentions_http(data):
        return []
    names = Names(tree)
    if not names.relevant:
        return []
    try:
        hits = Checker(tree, names, display).run()
    except RecursionError:
        if "KW001" not in enabled:
            return []
        return [Finding(display, 1, 1, "KW001", "cannot analyse: the code is nested too deeply")]
    hits = [hit for hit in hits if hit[2] in enabled]
    if not hits:
        return []
    return [Finding(display, *hit) for hit in _without_noqa(hits, data)]


def _without_noqa(hits: list[Hit], data: bytes) -> list[Hit]:
    lines = data.split(b"\n")  # as the parser counts lines (not str.splitlines)
    kept = []
    for hit in hits:
        line = lines[hit[0] - 1].decode("utf-8", "replace") if 0 < hit[0] <= len(lines) else ""
        match = _NOQA.search(line) if "#" in line else None
        if match is None:
            kept.append(hit)
            continue
        codes = match.group("codes")
        if codes is not None and hit[2] not in re.split(r"[,\s]+", codes.upper()):
            kept.append(hit)
    return kept
