"""``keepwarm lint --fix`` and ``--diff``: the safe fixes, applied to the source text.

One fix so far: a KW103 request without a timeout gets ``timeout=10`` as its last
argument (``fix-timeout`` in ``[tool.keepwarm.lint]`` or ``--fix-timeout`` changes the
number). 10 seconds is the value ruff's S113 suggests, and as requests applies one number
to the connection and to each read, it allows every phase at least as long as keepwarm's
own default ``(3, 7)``: the fix bounds a call that could hang forever without cutting
short one that works today.

A call is fixed only when the edit is certain to mean "add a timeout":

* no ``**kwargs`` and no ``*args`` (they may carry one; KW103 already skips them);
* no more positional arguments than requests' own signatures take before their
  ``**kwargs`` (``get(url, params)``, ``post(url, data, json)``, ``put``/``patch(url,
  data)``, ``request(method, url)``, one for the others): ``Session.request`` takes
  ``timeout`` as its 9th positional, and a call with extra positionals is either that or
  not requests at all;
* not a lone generator argument without brackets of its own (``f(x for x in y,
  timeout=10)`` does not parse);
* the finding points at one call only, and its closing bracket is where the tokens say.

The edit is made at token positions, so everything else in the file stays byte for byte:
comments, the encoding (a coding cookie or a BOM), ``\\r\\n`` line endings. After the
last argument comes ``, timeout=10``; after a trailing comma on the same line,
`` timeout=10,``; when the call ends with a trailing comma and its ``)`` on a line of
its own (the "magic trailing comma" layout), a new line ``timeout=10,`` indented like the
last argument. The result must parse, have exactly the fixed KW103 findings fewer and
nothing else changed, or the file is left alone.
"""

from __future__ import annotations

import ast
import difflib
import io
import os
import tokenize
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

from keepwarm.lint._config import ConfigError, find_config
from keepwarm.lint._engine import UsageError, lint_source
from keepwarm.lint._names import Names
from keepwarm.lint._rules import RULES, Finding

__all__ = ["DEFAULT_FIX_TIMEOUT", "FileFix", "Outcome", "fix_files", "fix_source", "unified_diff"]

#: The seconds written into ``timeout=`` (see the module docstring for why 10).
DEFAULT_FIX_TIMEOUT = 10

#: How many positional arguments each request method may have for the fix to be sure none
#: of them is the timeout: requests' module-level signatures (requests/api.py), which take
#: the same or more than ``Session``'s except for ``Session.request``, whose 9th is it.
_POSITIONAL = {
    "get": 2,
    "options": 1,
    "head": 1,
    "post": 3,
    "put": 2,
    "patch": 2,
    "delete": 1,
    "request": 2,
}
_SKIPPED_TOKENS = frozenset({tokenize.NL, tokenize.COMMENT, tokenize.NEWLINE})


@dataclass
class FileFix:
    """What fixing one file gave: its new bytes (``None``: nothing to change), the
    findings fixed, and why the others were left (``(line, reason)``; ``moved`` gives
    their lines in the fixed file, where the fixes may have added lines above them)."""

    path: str
    original: bytes
    fixed: bytes | None = None
    done: list[Finding] = field(default_factory=list)
    left: list[tuple[int, str]] = field(default_factory=list)
    moved: list[tuple[int, str]] = field(default_factory=list)


def fix_source(
    data: bytes, path: str, findings: Iterable[Finding], timeout: int | float
) -> FileFix:
    """Fix the KW103 *findings* of the file *path* whose content is *data*, giving each
    fixed call ``timeout=<timeout>``. Nothing is written."""
    result = FileFix(path, data)
    wanted = sorted(f for f in findings if f.code == "KW103")
    if not wanted:
        return result
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        text = data.decode(encoding)
        if "\r" in text.replace("\r\n", ""):
            result.left = [(f.line, "a lone carriage return in the file") for f in wanted]
            return result
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(data, path)
        tokens = list(tokenize.generate_tokens(io.StringIO(text, newline="").readline))
    except (SyntaxError, ValueError, UnicodeError, tokenize.TokenError, RecursionError):
        result.left = [(f.line, "the file does not parse") for f in wanted]
        return result
    source = _Source(text, tokens)
    names = Names(tree)
    calls: dict[tuple[int, int], list[tuple[ast.Call, str]]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            method = _method(node, names)
            if method is not None:
                calls.setdefault((node.lineno, node.col_offset + 1), []).append((node, method))
    edits: list[tuple[int, str]] = []
    for finding in wanted:
        candidates = calls.get((finding.line, finding.col), [])
        if len(candidates) != 1:
            result.left.append((finding.line, "not one request call at that position"))
            continue
        call, method = candidates[0]
        reason = _unsafe(call, method)
        edit = None if reason else source.edit(call, f"timeout={timeout!r}")
        if edit is None:
            result.left.append((finding.line, reason or "the call's tokens are not as expected"))
            continue
        edits.append(edit)
        result.done.append(finding)
    if not edits or len({offset for offset, _ in edits}) != len(edits):
        if edits:
            result.left += [(f.line, "two fixes at one place") for f in result.done]
            result.done = []
        return result
    pieces, done = [], 0
    for offset, insert in sorted(edits):
        pieces += [text[done:offset], insert]
        done = offset
    fixed = "".join([*pieces, text[done:]]).encode(encoding)
    problem = _verify(data, fixed, path, len(result.done))
    if problem is not None:
        result.left += [(f.line, problem) for f in result.done]
        result.done = []
        return result
    result.fixed = fixed
    result.moved = [
        (line, reason)
        if line > len(source.starts)
        else (line + sum(i.count("\n") for o, i in edits if o <= source.starts[line - 1]), reason)
        for line, reason in result.left
    ]
    return result


def _method(call: ast.Call, names: Names) -> str | None:
    """The request method *call* makes (``get`` for ``s.get(...)``, and for ``fetch(...)``
    after ``from requests import get as fetch``), or None."""
    func = call.func
    if isinstance(func, ast.Attribute):
        name = func.attr
    elif isinstance(func, ast.Name):
        name = (names.qualname(func) or "").rpartition(".")[2]
    else:
        return None
    return name if name in _POSITIONAL else None


def _unsafe(call: ast.Call, method: str) -> str | None:
    """Why adding ``timeout=`` to *call* might not mean what it says, or None."""
    if any(k.arg == "timeout" for k in call.keywords):
        return "it has a timeout"
    if any(k.arg is None for k in call.keywords):
        return "**kwargs may carry a timeout"
    if any(isinstance(a, ast.Starred) for a in call.args):
        return "*args may carry a timeout"
    if len(call.args) > _POSITIONAL[method]:
        return "a positional argument may be the timeout"
    if any(
        isinstance(a, ast.GeneratorExp)
        and (a.end_lineno, a.end_col_offset) == (call.end_lineno, call.end_col_offset)
        for a in call.args
    ):
        return "a lone generator argument"  # its brackets are the call's
    return None


class _Source:
    """A file's text and tokens, with ``ast`` positions (UTF-8 byte columns) turned into
    offsets into the text."""

    def __init__(self, text: str, tokens: list[tokenize.TokenInfo]) -> None:
        self.text = text
        self.lines = text.split("\n")
        self.starts = [0]
        for line in self.lines[:-1]:
            self.starts.append(self.starts[-1] + len(line) + 1)
        self.tokens = tokens
        self.by_start = {tok.start: i for i, tok in enumerate(tokens) if tok.type == tokenize.OP}

    def column(self, line: int, byte_col: int) -> int:
        return len(self.lines[line - 1].encode("utf-8")[:byte_col].decode("utf-8", "replace"))

    def offset(self, line: int, col: int) -> int:
        return self.starts[line - 1] + col

    def edit(self, call: ast.Call, argument: str) -> tuple[int, str] | None:
        """Where and what to insert so that *call* gets *argument* last, or None when the
        tokens are not what the tree says."""
        if call.end_lineno is None or call.end_col_offset is None:
            return None
        close_at = (call.end_lineno, self.column(call.end_lineno, call.end_col_offset) - 1)
        index = self.by_start.get(close_at)
        if index is None or self.tokens[index].string != ")":
            return None
        before = index - 1
        while before > 0 and self.tokens[before].type in _SKIPPED_TOKENS:
            before -= 1
        prev = self.tokens[before]
        if not call.args and not call.keywords:
            if prev.string != "(":
                return None
            return self.offset(*prev.end), argument
        if prev.string == "(":
            return None
        if prev.string != ",":
            return self.offset(*prev.end), f", {argument}"
        if prev.end[0] == close_at[0]:
            return self.offset(*prev.end), f" {argument},"
        # A trailing comma and ``)`` on a later line: a line of its own, after the comma's.
        comma_line = prev.end[0]
        ending = "\r\n" if self.lines[comma_line - 1].endswith("\r") else "\n"
        starts = [(a.lineno, a.col_offset) for a in call.args]
        starts += [(k.lineno, k.col_offset) for k in call.keywords]
        last_line = max(starts)[0]
        indent = _indent(self.lines[last_line - 1])
        if last_line == call.lineno:
            indent = _indent(self.lines[call.lineno - 1])
            indent += "\t" if indent.startswith("\t") else "    "
        return self.starts[comma_line], f"{indent}{argument},{ending}"


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _verify(before: bytes, after: bytes, path: str, fixed: int) -> str | None:
    """Why the fixed file is not what the fixes promise (it must parse, have *fixed*
    KW103 findings fewer and no other change in findings), or None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(after, path)
    except (SyntaxError, ValueError, RecursionError):
        return "the fixed file would not parse"
    every = frozenset(RULES)
    old = [f.code for f in lint_source(before, path, every)]
    new = [f.code for f in lint_source(after, path, every)]
    if new.count("KW103") != old.count("KW103") - fixed:
        return "the fix would not remove the finding"
    if sorted(c for c in old if c != "KW103") != sorted(c for c in new if c != "KW103"):
        return "the fix would change other findings"
    return None


def unified_diff(fix: FileFix) -> str:
    """The change of *fix* as a unified diff (``--- path`` / ``+++ path``, as ruff
    prints it); lines keep their own endings."""
    if fix.fixed is None:
        return ""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(fix.original).readline)
    before = _lines(fix.original.decode(encoding))
    after = _lines(fix.fixed.decode(encoding))
    out = []
    for line in difflib.unified_diff(before, after, fix.path, fix.path):
        out.append(line)
        if not line.endswith("\n"):
            out.append("\n\\ No newline at end of file\n")
    return "".join(out)


def _lines(text: str) -> list[str]:
    """*text* cut after each ``\\n`` (as the parser and ``patch`` count lines; not
    ``str.splitlines``, which also cuts at form feeds and other separators)."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


@dataclass
class Outcome:
    """What ``fix_files`` did: the files with a change (``written``: those saved), the
    findings left alone and why (``(path, line, reason)``), and the files it could not
    read or write."""

    fixes: list[FileFix] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    left: list[tuple[str, int, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def fixed(self) -> int:
        """How many findings the changes fix (saved or, with ``--diff``, shown)."""
        return sum(len(fix.done) for fix in self.fixes)


def fix_files(findings: list[Finding], timeout: int | float | None, write: bool) -> Outcome:
    """Fix the KW103 *findings* file by file (each file's ``fix-timeout``, or *timeout*
    when given, or ``DEFAULT_FIX_TIMEOUT``); save the changes when *write*. A file that
    cannot be written is left as it was and named in ``errors``."""
    by_path: dict[str, list[Finding]] = {}
    for finding in findings:
        if finding.code == "KW103":
            by_path.setdefault(finding.path, []).append(finding)
    outcome = Outcome()
    for path, found in sorted(by_path.items()):
        absolute = os.path.abspath(path)
        try:
            with open(absolute, "rb") as file:
                data = file.read()
        except OSError as exc:
            outcome.errors.append(f"{path}: cannot read the file: {exc.strerror}")
            continue
        seconds = timeout
        if seconds is None:
            try:
                seconds = find_config(os.path.dirname(absolute)).fix_timeout
            except ConfigError as exc:
                raise UsageError(str(exc)) from None
        fix = fix_source(data, path, found, DEFAULT_FIX_TIMEOUT if seconds is None else seconds)
        if fix.fixed is not None:
            outcome.fixes.append(fix)
            if write:
                try:
                    with open(absolute, "wb") as file:
                        file.write(fix.fixed)
                except OSError as exc:
                    outcome.errors.append(
                        f"{path}: cannot write the fixes: {exc.strerror}; left unchanged"
                    )
                else:
                    outcome.written.append(path)
        saved = bool(outcome.written) and outcome.written[-1] == path
        outcome.left += [(path, line, why) for line, why in (fix.moved if saved else fix.left)]
    return outcome
