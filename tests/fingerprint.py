"""A fingerprint of one function's source: what it does, not how it is written down.

Used by tests/test_upstream.py (the drift test) and scripts/upstream_fingerprints.py
(which computes the table for a list of released versions). The fingerprint covers the
function's code with its docstring, comments, type annotations and all white space left
out: a change to what the function does changes it; a reflowed docstring, a new comment,
added type hints (requests 2.34 annotated its whole code base) or re-indentation do not.
It is computed from the source text, cut at ``ast`` and ``tokenize`` positions, so the
same file gives the same fingerprint under every Python version.
"""

from __future__ import annotations

import ast
import hashlib
import io
import re
import tokenize

__all__ = ["find_definition", "fingerprint", "fingerprint_file"]


def find_definition(tree: ast.Module, qualname: str) -> ast.FunctionDef | ast.ClassDef:
    """The definition of ``qualname`` (``Class.method`` or ``function``) in ``tree``.

    For a property the getter is taken (the first definition of that name); ``@overload``
    stubs are passed over (requests 2.34 types some functions that way)."""
    body: list[ast.stmt] = tree.body
    node: ast.FunctionDef | ast.ClassDef | None = None
    for part in qualname.split("."):
        node = next(
            (
                n
                for n in body
                if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                and n.name == part
                and not any(_is_overload(d) for d in n.decorator_list)
            ),
            None,
        )  # type: ignore[assignment]
        if node is None:
            raise LookupError(f"{qualname}: no definition of {part!r}")
        body = node.body
    assert node is not None
    return node


def _is_overload(decorator: ast.expr) -> bool:
    name = decorator.attr if isinstance(decorator, ast.Attribute) else getattr(decorator, "id", "")
    return name == "overload"


def fingerprint(source: str, qualname: str) -> str:
    """16 hex digits identifying the code of ``qualname`` in ``source``."""
    tree = ast.parse(source)
    node = find_definition(tree, qualname)
    # Lines as ast numbers them: str.splitlines() also breaks at form feeds and other
    # separators (CPython 3.10's email/message.py has form feeds between sections).
    lines = re.split(r"\r\n|\r|\n", source)
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    end = node.end_lineno or node.lineno
    cuts: list[tuple[int, int, int, int]] = []  # (line, col, end line, end col), 1-based lines
    first = node.body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        cuts.append((first.lineno, 0, first.end_lineno or first.lineno, 10**6))
    for n in ast.walk(node):
        if isinstance(n, ast.arg) and n.annotation is not None:
            a = n.annotation
            cuts.append(
                (n.lineno, n.col_offset + len(n.arg), a.end_lineno or 0, a.end_col_offset or 0)
            )
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.returns is not None:
            r = n.returns
            line, col = _arrow_before(lines, r.lineno, r.col_offset)
            cuts.append((line, col, r.end_lineno or 0, r.end_col_offset or 0))
        elif isinstance(n, ast.AnnAssign):
            tgt, a = n.target, n.annotation
            cuts.append(
                (
                    tgt.end_lineno or 0,
                    tgt.end_col_offset or 0,
                    a.end_lineno or 0,
                    a.end_col_offset or 0,
                )
            )
    segment = "\n".join(lines[start - 1 : end]) + "\n"
    for tok in tokenize.generate_tokens(io.StringIO(segment).readline):
        if tok.type == tokenize.COMMENT:
            (l0, c0), (l1, c1) = tok.start, tok.end
            cuts.append((l0 + start - 1, c0, l1 + start - 1, c1))
    kept = [list(line) for line in lines[start - 1 : end]]
    for l0, c0, l1, c1 in cuts:
        for number in range(l0, l1 + 1):
            row = kept[number - start]
            lo = c0 if number == l0 else 0
            hi = c1 if number == l1 else len(row)
            row[lo:hi] = [""] * (min(hi, len(row)) - lo)
    code = re.sub(r"\s+", "", "".join("".join(row) for row in kept))
    return hashlib.sha256(code.encode()).hexdigest()[:16]


def _arrow_before(lines: list[str], line: int, col: int) -> tuple[int, int]:
    """Where the ``->`` before a return annotation starts."""
    while line >= 1:
        at = lines[line - 1].rfind("->", 0, col)
        if at >= 0:
            return line, at
        line -= 1
        col = len(lines[line - 1]) if line >= 1 else 0
    raise LookupError("no '->' before a return annotation")


def fingerprint_file(path: str, qualname: str) -> str:
    with open(path, encoding="utf-8") as f:
        return fingerprint(f.read(), qualname)
