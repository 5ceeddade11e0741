"""The fence around requests', urllib3's and http.client's internals holds.

``keepwarm/_upstream/INVENTORY.md`` is the inventory of every private upstream name
keepwarm depends on and every upstream function it carries a copy of. These tests keep
that inventory true:

* every listed name exists in the installed requests, urllib3 and Python;
* every private upstream name used inside the fence is listed, and none is used outside
  it except the listed exceptions (a scan of the source with ``ast``);
* every copied upstream function still has a source fingerprint keepwarm was verified
  against (tests/upstream_fingerprints.json; tests/fingerprint.py says what a
  fingerprint ignores). A new release that changes one fails here, naming the keepwarm
  code to re-read; ``scripts/upstream_fingerprints.py`` records a release's fingerprints
  once that code has been checked against it.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.metadata
import inspect
import json
import pathlib
import re
import sys
import sysconfig
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
import requests
import urllib3

import keepwarm._upstream
from fingerprint import fingerprint_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "keepwarm"
FENCE = SRC / "_upstream"
FINGERPRINTS = pathlib.Path(__file__).resolve().parent / "upstream_fingerprints.json"
UPSTREAM_PACKAGES = ("requests", "urllib3", "http", "email")

_ENTRY = re.compile(r"^\* ``(?P<name>[\w.]+)`` \((?P<kind>[^)]*)\)", re.M)


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str
    text: str

    @property
    def since(self) -> tuple[int, ...] | None:
        """The release a name first appears in (``(import; since 2.8.0)``): keepwarm looks
        it up and does without it on earlier releases."""
        found = re.search(r"since (\d+(?:\.\d+)*)", self.kind)
        return tuple(int(p) for p in found.group(1).split(".")) if found else None

    @property
    def exception_file(self) -> str | None:
        found = re.search(r"exception: (\S+?\.py)", self.kind)
        return found.group(1) if found else None

    @property
    def keepwarm_code(self) -> str:
        found = re.search(r"-> ((?:``[\w.]+``(?:,| and)?\s*)+)", self.text)
        return " ".join(re.findall(r"``([\w.]+)``", found.group(1))) if found else "?"


#: The fence's inventory (kept out of the package's docstring: nothing at run time reads it).
INVENTORY = pathlib.Path(keepwarm._upstream.__file__).with_name("INVENTORY.md")


def inventory() -> list[Entry]:
    doc = INVENTORY.read_text(encoding="utf-8")
    matches = list(_ENTRY.finditer(doc))
    entries = []
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following else len(doc)
        text = " ".join(doc[match.start() : end].split())
        entries.append(Entry(match["name"], match["kind"], text))
    return entries


def version_of(name: str) -> str:
    """The installed version a name's fingerprint is recorded under."""
    package = name.split(".")[0]
    if package == "requests":
        return str(requests.__version__)
    if package == "urllib3":
        return str(urllib3.__version__)
    if package in ("h2", "hpack"):
        return str(importlib.metadata.version(package))
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def split_module(name: str) -> tuple[ModuleType, list[str]]:
    """The longest importable module prefix of ``name`` and the attribute path after it."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            return importlib.import_module(".".join(parts[:cut])), parts[cut:]
        except ImportError:
            continue
    raise LookupError(f"no module in {name}")


def _assigned_attributes(cls: type) -> set[str]:
    """Attribute names a class's source (or a base's) assigns, private ones also as Python
    mangles them, and the string keys it uses (``connection_pool_kw["_socks_options"]``)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is object:
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for node in ast.walk(
            ast.parse(inspect.cleandoc("\n" + source) if source[0] == " " else source)
        ):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
                if node.attr.startswith("__") and not node.attr.endswith("__"):
                    # ``self.__state`` in class HTTPConnection is ``_HTTPConnection__state``.
                    names.add(f"_{klass.__name__.lstrip('_')}{node.attr}")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.add(node.value)
    return names


def exists(name: str) -> bool:
    module, path = split_module(name)
    obj: Any = module
    for i, part in enumerate(path):
        if hasattr(obj, part):
            obj = getattr(obj, part)
            continue
        return isinstance(obj, type) and i == len(path) - 1 and part in _assigned_attributes(obj)
    return True


# The scan ---------------------------------------------------------------------------------


@functools.cache
def upstream_private_names() -> frozenset[str]:
    """Every ``_name`` requests, urllib3, http.client, http.cookiejar and email define
    or assign (functions, classes, module globals, attributes)."""
    stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"])
    files = [
        *pathlib.Path(inspect.getfile(requests)).parent.rglob("*.py"),
        *pathlib.Path(inspect.getfile(urllib3)).parent.rglob("*.py"),
        stdlib / "http" / "client.py",
        stdlib / "http" / "cookiejar.py",
        *(stdlib / "email").rglob("*.py"),
    ]
    names: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return frozenset(
        n for n in names if n.startswith("_") and not n.startswith("__") and n.strip("_")
    )


@functools.cache
def keepwarm_own_names() -> frozenset[str]:
    """Private attribute names keepwarm defines on its own classes (those that do not
    derive from an upstream class): methods, class attributes, dataclass fields and
    ``self._x = ...`` in their methods. A subclass of an upstream class writing
    ``self._x`` may be writing upstream's attribute, so those do not count."""
    names: set[str] = set()
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text())
        upstream = _upstream_imports(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef) or any(_root(b) in upstream for b in node.bases):
                continue
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names.add(item.name)
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    names.add(item.target.id)
                elif isinstance(item, ast.Assign):
                    names.update(t.id for t in item.targets if isinstance(t, ast.Name))
            for sub in ast.walk(node):
                if (
                    isinstance(sub, ast.Attribute)
                    and isinstance(sub.ctx, ast.Store)
                    and isinstance(sub.value, ast.Name)
                    and sub.value.id in ("self", "cls")
                ):
                    names.add(sub.attr)
    return frozenset(names)


def _upstream_imports(tree: ast.Module) -> set[str]:
    """Local names bound to upstream modules or objects by ``tree``'s imports."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom)
            and (node.module or "").split(".")[0] in UPSTREAM_PACKAGES
        ):
            names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in UPSTREAM_PACKAGES:
                    names.add((alias.asname or alias.name).split(".")[0])
    return names


def private_uses(path: pathlib.Path) -> dict[str, list[int]]:
    """Private upstream names ``path`` uses: private imports, private attributes read or
    written (also through ``getattr``/``hasattr`` and string keys), private methods
    overridden in subclasses of upstream classes."""
    tree = ast.parse(path.read_text(), str(path))
    vocabulary = upstream_private_names()
    own = keepwarm_own_names()
    upstream_bases = _upstream_imports(tree)
    uses: dict[str, list[int]] = {}

    def use(name: str, line: int) -> None:
        uses.setdefault(name, []).append(line)

    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom)
            and (node.module or "").split(".")[0] in UPSTREAM_PACKAGES
        ):
            module = node.module or ""
            for alias in node.names:
                upstream_bases.add(alias.asname or alias.name)
                if alias.name.startswith("_") or any(p.startswith("_") for p in module.split(".")):
                    use(
                        alias.name if alias.name.startswith("_") else module.split(".")[-1],
                        node.lineno,
                    )
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in UPSTREAM_PACKAGES:
                    upstream_bases.add((alias.asname or alias.name).split(".")[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in vocabulary and node.attr not in own:
            use(node.attr, node.lineno)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value in vocabulary and node.value not in own and node.value.isidentifier():
                use(node.value, node.lineno)
        elif isinstance(node, ast.ClassDef) and any(
            _root(base) in upstream_bases for base in node.bases
        ):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name in vocabulary:
                    use(item.name, item.lineno)
    return uses


def _root(node: ast.expr) -> str:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else ""


# Tests ----------------------------------------------------------------------------------


def test_the_inventory_is_read() -> None:
    entries = inventory()
    assert len(entries) > 40
    kinds = {e.kind.split(";")[0] for e in entries}
    assert kinds == {"copy", "override", "import", "attribute"}
    send = next(e for e in entries if e.name == "requests.sessions.Session.send")
    assert send.keepwarm_code == "session.RequestsSessionBase._send"
    assert [e.exception_file for e in entries if e.exception_file] == ["_config.py"] * 2


@pytest.mark.parametrize("entry", inventory(), ids=lambda e: e.name)
def test_every_listed_name_exists_upstream(entry: Entry) -> None:
    if entry.name.startswith("urllib3.contrib.socks") or "SOCKSProxyManager" in entry.name:
        pytest.importorskip("socks")
    installed = tuple(int(p) for p in re.findall(r"\d+", version_of(entry.name))[:3])
    if entry.since is not None and installed < entry.since:
        # Before the release that brought it, the name must be absent (else "since" is
        # wrong); keepwarm's code runs without it there (the suite's lowest versions).
        assert not exists(entry.name), f"{entry.name} exists before {entry.since}"
        return
    assert exists(entry.name), (
        f"{entry.name} no longer exists in the installed "
        f"{entry.name.split('.')[0]} {version_of(entry.name)}: keepwarm's "
        f"{entry.keepwarm_code} depends on it ({entry.kind}); re-read it"
    )


def test_every_private_name_the_fence_uses_is_listed() -> None:
    listed = {part for e in inventory() for part in e.name.split(".")}
    unlisted = {
        f"{path.relative_to(SRC)}:{lines[0]} {name}"
        for path in sorted(FENCE.rglob("*.py"))
        for name, lines in private_uses(path).items()
        if name not in listed
    }
    assert unlisted == set(), "list these in keepwarm._upstream's inventory"


def test_no_private_upstream_name_outside_the_fence() -> None:
    allowed = {(e.exception_file, e.name.rsplit(".", 1)[-1]) for e in inventory()}
    found = {
        f"{path.relative_to(SRC)}:{lines[0]} {name}"
        for path in sorted(SRC.rglob("*.py"))
        if FENCE not in path.parents
        for name, lines in private_uses(path).items()
        if (path.name, name) not in allowed
    }
    assert found == set(), "move these behind the fence (src/keepwarm/_upstream/)"


def test_the_scan_sees_private_uses(tmp_path: pathlib.Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from urllib3.connectionpool import HTTPConnectionPool\n"
        "from requests.auth import _basic_auth_str\n"
        "class P(HTTPConnectionPool):\n"
        "    def _get_conn(self, timeout=None): ...\n"
        "def f(r): return r._content, getattr(r, '_original_response', None)\n"
    )
    assert set(private_uses(sample)) == {
        "_basic_auth_str",
        "_get_conn",
        "_content",
        "_original_response",
    }


# Drift ----------------------------------------------------------------------------------


def _copies() -> list[Entry]:
    return [e for e in inventory() if e.kind == "copy"]


def fingerprint_of(name: str) -> str:
    module, path = split_module(name)
    source = inspect.getsourcefile(module)
    assert source is not None, name
    return fingerprint_file(source, ".".join(path))


@functools.cache
def recorded() -> dict[str, dict[str, str]]:
    data: dict[str, dict[str, str]] = json.loads(FINGERPRINTS.read_text())
    return data


def test_every_copy_has_recorded_fingerprints() -> None:
    assert sorted(recorded()) == sorted(e.name for e in _copies())


@pytest.mark.parametrize("entry", _copies(), ids=lambda e: e.name)
def test_copied_upstream_code_has_not_changed(entry: Entry) -> None:
    """A copy is only as good as the upstream code it was made from."""
    known = recorded()[entry.name]
    version = version_of(entry.name)
    current = fingerprint_of(entry.name)
    package = entry.name.split(".")[0]
    package = "Python" if package in ("http", "email", "ssl", "socket") else package
    where = f"{package} {version}"
    if version in known:
        assert current == known[version], (
            f"{entry.name} in {where} is not the code recorded for {where} "
            f"(fingerprint {current}, recorded {known[version]})"
        )
        return
    assert current in known.values(), (
        f"{where} changed {entry.name} (fingerprint {current}; keepwarm was checked "
        f"against {', '.join(sorted(known))}). Re-read keepwarm._upstream."
        f"{entry.keepwarm_code} against the new upstream code and port what matters "
        f"(a fix that keepwarm's copy lacks does not reach keepwarm's users), then record "
        f"it: python scripts/upstream_fingerprints.py"
    )


def test_the_drift_check_fails_on_changed_code(tmp_path: pathlib.Path) -> None:
    before = "def f(x: int) -> int:\n    '''Doc.'''\n    return x + 1  # one\n"
    same = "def f(x):\n    # reworded\n    return x+1\n"
    changed = "def f(x):\n    return x + 2\n"
    paths = []
    for i, text in enumerate((before, same, changed)):
        paths.append(tmp_path / f"v{i}.py")
        paths[-1].write_text(text)
    prints = [fingerprint_file(str(p), "f") for p in paths]
    assert prints[0] == prints[1] != prints[2]
    overloaded = tmp_path / "overloaded.py"
    overloaded.write_text(
        "from typing import overload\n@overload\ndef f(x: int) -> int: ...\n" + changed
    )
    assert fingerprint_file(str(overloaded), "f") == prints[2]
