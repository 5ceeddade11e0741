"""A session's life in one scope: whether it outlives the scope (KW102, KW109), is closed
(KW109), and is used after it was closed (KW108: a request after ``close()`` or after the
``with`` block that closed it, in the same block of statements).

KW108 follows only straight-line order inside one block: a ``close()`` inside an ``if`` covers
the rest of that ``if`` body, not the statements after the ``if``; a loop's next pass is
not followed; a rebinding of the name (``s = requests.Session()`` again, in any branch)
ends the closed state. That misses some uses after close and never reports one that may
not happen.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator

from keepwarm.lint._names import HTTP_METHODS, SCOPES, scope_nodes

__all__ = ["closed_or_handed_over", "closed_then_used", "escaped", "free_names", "is_main_guard"]

_USES = HTTP_METHODS | {"request", "send"}
_RAISES = frozenset({"pytest.raises", "self.assertRaises", "self.assertRaisesRegex", "raises"})

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
        for key in [k for k in closed if _binds_first(stmt, k)]:
            del closed[key]  # ``with Session() as s:`` / ``for s in ...``: a new one
        if closed:
            expected = _expected_to_fail(stmt)
            for node in scope_nodes([stmt]):
                if id(node) in expected:
                    continue
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in _USES
                ):
                    used = key_of(node.func.value)
                    if used is not None and used in closed:
                        found.append((node, closed.pop(used)))
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


def _expected_to_fail(stmt: ast.stmt) -> set[int]:
    """The nodes inside ``with pytest.raises(...)`` / ``self.assertRaises(...)`` blocks of
    *stmt*: a use after close there is a test that it fails, not a mistake."""
    inside: set[int] = set()
    for node in scope_nodes([stmt]):
        if isinstance(node, (ast.With, ast.AsyncWith)) and any(
            isinstance(item.context_expr, ast.Call)
            and _dotted_name(item.context_expr.func) in _RAISES
            for item in node.items
        ):
            inside.update(id(child) for part in node.body for child in ast.walk(part))
    return inside


def _binds_first(stmt: ast.stmt, key: str) -> bool:
    """Whether *stmt* binds *key* before any of its own code can use it: the ``as``
    targets of a ``with``, the target of a ``for``."""
    if isinstance(stmt, (ast.With, ast.AsyncWith)):
        targets = [item.optional_vars for item in stmt.items if item.optional_vars is not None]
    elif isinstance(stmt, (ast.For, ast.AsyncFor)):
        targets = [stmt.target]
    else:
        return False
    return any(_dotted_name(node) == key for target in targets for node in ast.walk(target))


def _dotted_name(node: ast.AST) -> str | None:
    """``s`` or ``self.http`` (one level of attribute), else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return f"{node.value.id}.{node.attr}"
    return None


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


def escaped(body: list[ast.stmt], names: set[str]) -> set[str]:
    """Which of *names* are used other than as ``name.attr`` or ``with name`` in the scope
    itself: returned, stored, passed on... or used at all by a nested function, lambda or
    class (a closure keeps it alive)."""
    receivers: set[int] = set()
    escaped: set[str] = set()
    loads: list[ast.Name] = []
    for child in scope_nodes(body):
        if isinstance(child, SCOPES):
            escaped.update(free_names(child, names))
        elif isinstance(child, ast.Attribute) and isinstance(child.value, ast.Name):
            receivers.add(id(child.value))
        elif isinstance(child, (ast.With, ast.AsyncWith)):
            receivers.update(id(item.context_expr) for item in child.items)
        elif isinstance(child, ast.Name) and child.id in names and isinstance(child.ctx, ast.Load):
            loads.append(child)
    escaped.update(name.id for name in loads if id(name) not in receivers)
    return escaped


def free_names(node: ast.AST, names: set[str]) -> set[str]:
    """Which of *names* the nested function or class *node* uses without binding them
    itself (a name it binds anywhere inside counts as its own)."""
    used: set[str] = set()
    bound: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name) and child.id in names:
            (used if isinstance(child.ctx, ast.Load) else bound).add(child.id)
        elif isinstance(child, ast.arg) and child.arg in names:
            bound.add(child.arg)
    return used - bound


def closed_or_handed_over(body: list[ast.stmt], names: set[str], anywhere: bool) -> set[str]:
    """Which of *names* have a ``.close`` (called or passed, as to ``atexit.register``) or
    a ``with name:``; with *anywhere* (a module's names), nested functions count and so
    does being passed to any call (``contextlib.closing(s)``, ``stack.enter_context(s)``)."""
    found: set[str] = set()
    nodes = (n for stmt in body for n in ast.walk(stmt)) if anywhere else scope_nodes(body)
    for node in nodes:
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "close"
            and isinstance(node.value, ast.Name)
            and node.value.id in names
        ):
            found.add(node.value.id)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            found.update(
                item.context_expr.id
                for item in node.items
                if isinstance(item.context_expr, ast.Name) and item.context_expr.id in names
            )
        elif anywhere and isinstance(node, ast.Call):
            found.update(
                a.id
                for a in (*node.args, *(k.value for k in node.keywords))
                if isinstance(a, ast.Name) and a.id in names
            )
    return found


def is_main_guard(stmt: ast.stmt) -> bool:
    """``if __name__ == "__main__":``"""
    if not isinstance(stmt, ast.If) or not isinstance(stmt.test, ast.Compare):
        return False
    sides = [stmt.test.left, *stmt.test.comparators]
    return any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides) and any(
        isinstance(s, ast.Constant) and s.value == "__main__" for s in sides
    )
