"""KW108 use-after-close: a session's request after its ``close()`` or after the ``with``
block that closed it, in the same block of statements.

Only straight-line order inside one block counts: a ``close()`` inside an ``if`` covers
the rest of that ``if`` body, not the statements after the ``if``; a loop's next pass is
not followed; a rebinding of the name (``s = requests.Session()`` again, in any branch)
ends the closed state. That misses some uses after close and never reports one that may
not happen.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator

from keepwarm.lint._names import HTTP_METHODS, scope_nodes

__all__ = ["closed_then_used"]

_USES = HTTP_METHODS | {"request", "send"}

#: A followed session's key ("s", "self.http") for a receiver expression, else None.
KeyOf = Callable[[ast.expr], "str | None"]


def closed_then_used(body: list[ast.stmt], key_of: KeyOf) -> list[tuple[ast.Call, int]]:
    """The request calls on a session already closed in the same block, with the line of
    the ``close()`` (or ``with``) that closed it; the first use after each close only."""
    found: list[tuple[ast.Call, int]] = []
    _block(body, key_of, found)
    return found


def _block(stmts: list[ast.stmt], key_of: KeyOf, found: list[tuple[ast.Call, int]]) -> None:
    closed: dict[str, int] = {}
    for stmt in stmts:
        if closed:
            for node in scope_nodes([stmt]):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in _USES
                ):
                    key = key_of(node.func.value)
                    if key is not None and key in closed:
                        found.append((node, closed.pop(key)))
            for key in [k for k in closed if _rebinds(stmt, k)]:
                del closed[key]
        for key in _closes(stmt, key_of):
            closed[key] = stmt.lineno
        for block in _blocks(stmt):
            _block(block, key_of, found)


def _closes(stmt: ast.stmt, key_of: KeyOf) -> Iterator[str]:
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        func = stmt.value.func
        if isinstance(func, ast.Attribute) and func.attr == "close" and not stmt.value.args:
            key = key_of(func.value)
            if key is not None:
                yield key
    elif isinstance(stmt, (ast.With, ast.AsyncWith)):
        for item in stmt.items:
            target = item.optional_vars if item.optional_vars is not None else item.context_expr
            key = key_of(target)
            if key is not None:
                yield key


def _rebinds(stmt: ast.stmt, key: str) -> bool:
    for node in scope_nodes([stmt]):
        if isinstance(node, ast.Name) and node.id == key and not isinstance(node.ctx, ast.Load):
            return True
        if (
            isinstance(node, ast.Attribute)
            and not isinstance(node.ctx, ast.Load)
            and isinstance(node.value, ast.Name)
            and f"{node.value.id}.{node.attr}" == key
        ):
            return True
    return False


def _blocks(stmt: ast.stmt) -> Iterator[list[ast.stmt]]:
    """The statement lists directly inside a compound statement (not nested functions,
    which are checked as scopes of their own)."""
    if isinstance(stmt, (ast.If, ast.For, ast.AsyncFor, ast.While)):
        yield stmt.body
        yield stmt.orelse
    elif isinstance(stmt, (ast.With, ast.AsyncWith)):
        yield stmt.body
    elif isinstance(stmt, ast.Try) or type(stmt).__name__ == "TryStar":
        yield stmt.body  # type: ignore[attr-defined]
        for handler in stmt.handlers:  # type: ignore[attr-defined]
            yield handler.body
        yield stmt.orelse  # type: ignore[attr-defined]
        yield stmt.finalbody  # type: ignore[attr-defined]
    elif isinstance(stmt, ast.Match):
        for case in stmt.cases:
            yield case.body
