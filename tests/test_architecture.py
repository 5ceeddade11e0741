"""The package's shape: no import circles, and dependencies that point one way.

Every ``import`` in ``src/keepwarm`` counts, wherever it stands: at module level, inside a
function, or under ``if TYPE_CHECKING:`` (a type-only import is still a dependency a
reader has to hold in their head, and it turns into a real one the first time someone
needs the name at run time).

The layers, from the top (docs/ARCHITECTURE.md)::

    cli / pytest_plugin -> bench / probe / lint -> keepwarm (the public API) -> registry
        -> session -> _upstream (the fence) -> telemetry -> stats -> config / exceptions

A module may import modules of its own layer or of a lower one, never of a higher one.
"""

from __future__ import annotations

import ast
import pathlib
import sys

import pytest

SRC = pathlib.Path(__file__).resolve().parent.parent / "src" / "keepwarm"

#: Layer of each module, by dotted name below ``keepwarm`` (prefixes match subpackages).
LAYERS: dict[str, int] = {
    "__about__": 0,
    "_exceptions": 0,
    "_validate": 0,
    "_values": 0,
    "_forks": 0,
    "_bounded": 0,
    "_retry": 0,
    "_config": 0,
    "_urls": 0,
    "_deadline": 0,
    "_guards": 0,
    "_lifecycle": 0,
    "_stats": 1,
    "_advice": 1,
    "_telemetry": 2,
    "_metrics": 2,
    "_upstream": 3,
    "_session": 4,
    "_registry": 5,
    "_install": 5,
    "__init__": 6,
    "__main__": 8,
    "bench": 7,
    "probe": 7,
    "_probe": 7,
    "_run": 7,
    "lint": 7,
    "cli": 8,
    "pytest_plugin": 8,
}


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> int:
    for prefix in sorted(LAYERS, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return LAYERS[prefix]
    raise AssertionError(f"keepwarm.{module} has no layer in tests/test_architecture.py")


def _imports(path: pathlib.Path, module: str) -> set[str]:
    """The keepwarm modules ``path`` imports, as names below ``keepwarm``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package and package != "__init__" else []
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
                names = [f"keepwarm.{target}" if target else "keepwarm"]
            else:
                names = [node.module or ""]
            # ``from keepwarm import _tls`` imports a module, not a name.
            names += [f"{names[0]}.{a.name}" for a in node.names if names[0] == "keepwarm"]
        else:
            continue
        for name in names:
            if name == "keepwarm":
                found.add("__init__")
            elif name.startswith("keepwarm."):
                found.add(name.removeprefix("keepwarm."))
    return {_existing(name) for name in found} - {module, ""}


def _existing(name: str) -> str:
    """The module ``name`` refers to (``bench._server.LocalServer`` -> ``bench._server``)."""
    parts = name.split(".")
    while parts:
        candidate = SRC.joinpath(*parts)
        if candidate.with_suffix(".py").is_file() or (candidate / "__init__.py").is_file():
            return ".".join(parts)
        parts.pop()
    return "__init__"


def _graph() -> dict[str, set[str]]:
    graph = {}
    for path in sorted(SRC.rglob("*.py")):
        module = _module_name(path)
        graph[module] = _imports(path, module)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return result


def test_the_graph_is_read() -> None:
    graph = _graph()
    assert "_upstream.pool" in graph["_upstream.transport"]
    assert "_session" in graph["_registry"]
    assert "_stats" in graph["_telemetry"]


def test_no_import_circles() -> None:
    assert _cycles(_graph()) == []


def test_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_dependencies_point_down() -> None:
    upward = [
        f"keepwarm.{module} (layer {_layer(module)}) imports keepwarm.{target} "
        f"(layer {_layer(target)})"
        for module, targets in sorted(_graph().items())
        for target in sorted(targets)
        if _layer(target) > _layer(module)
    ]
    assert upward == []


@pytest.mark.parametrize(
    "module",
    [
        "_config",
        "_exceptions",
        "_stats",
        "_telemetry",
        "_session",
        "_registry",
        "_install",
        "__init__",
    ],
)
def test_the_runtime_never_imports_the_tools(module: str) -> None:
    tools = {m for m in _graph() if _layer(m) >= LAYERS["bench"]}
    reachable: set[str] = set()
    todo = [module]
    graph = _graph()
    while todo:
        current = todo.pop()
        for target in graph.get(current, ()):
            if target not in reachable:
                reachable.add(target)
                todo.append(target)
    assert reachable & tools == set()


def test_the_linter_never_imports_the_runtime() -> None:
    """docs/ARCHITECTURE.md: the linter reads code, it does not run requests. Its modules
    import only each other, ``keepwarm.__about__`` and the standard library, so linting
    works (and stays fast) whatever is installed."""
    graph = _graph()
    lint = {m for m in graph if m == "lint" or m.startswith("lint.")}
    assert {"lint._engine", "lint._checker"} <= lint
    assert {target for m in lint for target in graph[m]} <= lint | {"__about__"}
    outside = set()
    for path in sorted((SRC / "lint").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                roots = [a.name.partition(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                roots = [(node.module or "").partition(".")[0]]
            else:
                continue
            outside.update(
                f"{path.name}: {root}"
                for root in roots
                if root != "keepwarm" and root not in sys.stdlib_module_names
            )
    # The one exception: pathspec (the `lint` extra) matches .gitignore files when it is
    # installed, imported where it is used and only if it is there (docs/lint/README.md).
    assert outside == {"_config.py: pathspec"}
