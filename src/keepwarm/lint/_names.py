"""What the names of one file refer to, from its imports alone (``ast``; nothing is
imported or run).

``import requests as r`` makes ``r.get`` mean ``requests.get``; ``from requests import
Session`` makes ``Session`` mean ``requests.Session``; ``from requests.sessions import
session`` and ``requests.api.get`` are folded into the public names. A name the file also
binds some other way (an assignment, a ``def``, a parameter...) is dropped: the linter
cannot tell which binding a use sees, and a false alarm costs more than a miss.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

__all__ = [
    "HTTP_METHODS",
    "KEEPWARM_SESSIONS",
    "MODULE_API",
    "SCOPES",
    "SESSION_CLASSES",
    "THREAD_POOLS",
    "Names",
    "module_mentions_http",
    "scope_nodes",
]

#: The request methods of the module-level API and of a ``Session``.
HTTP_METHODS = frozenset({"get", "options", "head", "post", "put", "patch", "delete"})
#: ``requests.get`` & co.: each call builds and drops a ``Session`` (requests/api.py).
MODULE_API = frozenset({f"requests.{m}" for m in (*HTTP_METHODS, "request")})
#: What makes a plain ``requests.Session`` (``requests.session()`` is its old alias).
SESSION_CLASSES = frozenset({"requests.Session"})
#: keepwarm's sessions: a default timeout, shared pools.
KEEPWARM_SESSIONS = frozenset({"keepwarm.Session", "keepwarm.session"})

#: ``concurrent.futures``' thread pool: KW110 compares its size with the adapter's.
THREAD_POOLS = frozenset({"concurrent.futures.ThreadPoolExecutor"})

_HTTP_MODULES = ("requests", "keepwarm")
_MODULES = (*_HTTP_MODULES, "concurrent")

_CANONICAL = {
    **{f"requests.api.{m}": f"requests.{m}" for m in (*HTTP_METHODS, "request")},
    "requests.sessions.Session": "requests.Session",
    "requests.sessions.session": "requests.Session",
    "requests.session": "requests.Session",
    "keepwarm._session.Session": "keepwarm.Session",
    "keepwarm._registry.session": "keepwarm.session",
    "concurrent.futures.thread.ThreadPoolExecutor": "concurrent.futures.ThreadPoolExecutor",
}


def module_mentions_http(source: bytes) -> bool:
    """Cheap pre-check: a file that never spells ``requests`` or ``keepwarm`` cannot
    import them, so the rules need not run on it (most of a large tree)."""
    return b"requests" in source or b"keepwarm" in source


class Names:
    """The imported names of one module that point into ``requests``, ``keepwarm`` or
    ``concurrent.futures``."""

    def __init__(self, tree: ast.Module) -> None:
        aliases: dict[str, str] = {}
        rebound: set[str] = set()
        # ``requests = None`` after a failed optional import is not a rebinding to mind.
        placeholders: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                if isinstance(node.value, ast.Constant) and node.value.value is None:
                    placeholders.update(id(t) for t in node.targets)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    root = alias.name.partition(".")[0]
                    if root not in _MODULES:
                        continue
                    if alias.asname:
                        aliases[alias.asname] = alias.name
                    else:
                        aliases[root] = root
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level or module.partition(".")[0] not in _MODULES:
                    continue
                for alias in node.names:
                    if alias.name != "*":
                        aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                if id(node) not in placeholders:
                    rebound.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                rebound.add(node.name)
            elif isinstance(node, ast.arg):
                rebound.add(node.arg)
        self.aliases = {k: v for k, v in aliases.items() if k not in rebound}

    @property
    def relevant(self) -> bool:
        """Whether the file imports ``requests`` or ``keepwarm`` at all."""
        return any(v.partition(".")[0] in _HTTP_MODULES for v in self.aliases.values())

    def qualname(self, node: ast.expr) -> str | None:
        """``requests.get`` for ``r.get`` after ``import requests as r``; None for a name
        that does not come from an import of requests or keepwarm."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        base = self.aliases.get(node.id)
        if base is None:
            return None
        name = ".".join([base, *reversed(parts)])
        return _CANONICAL.get(name, name)


SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def scope_nodes(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """Every node of a scope's own statements: nested functions, lambdas and classes are
    yielded but not entered (their bodies are scopes of their own)."""
    stack: list[ast.AST] = list(reversed(body))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, SCOPES):
            stack.extend(ast.iter_child_nodes(node))
