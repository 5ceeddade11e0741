"""The public surface is exactly what the docs describe (the httpx rule)."""

from __future__ import annotations

import importlib
import pathlib
import re
import subprocess
import sys

import pytest

import keepwarm

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCUMENTED = (ROOT / "README.md").read_text() + (ROOT / "docs" / "api.md").read_text()


def test_all_has_no_duplicates_and_is_importable() -> None:
    # Order is ruff's (RUF022, checked by the lint step); here: no duplicates.
    assert len(set(keepwarm.__all__)) == len(keepwarm.__all__)
    for name in keepwarm.__all__:
        assert hasattr(keepwarm, name), name


def test_every_public_name_is_documented() -> None:
    missing = [
        n
        for n in keepwarm.__all__
        if n != "__version__" and f"`{n}" not in DOCUMENTED and f"keepwarm.{n}" not in DOCUMENTED
    ]
    assert missing == []


def test_nothing_undocumented_is_public() -> None:
    # "@py_builtins" and "@pytest_ar": pytest rewrites the asserts of every module of a
    # distribution that registers a pytest11 plugin (keepwarm's, once installed from a
    # wheel) and puts its helpers in the module's namespace; not names anyone can import.
    public = {n for n in dir(keepwarm) if not n.startswith(("_", "@"))}
    # Submodules are reachable as attributes once imported; they are not API.
    modules = {"bench", "cli", "lint", "pytest_plugin"}
    assert public - modules - set(keepwarm.__all__) == set()


def _private_modules() -> list[str]:
    """Every module with a private name part, in subpackages too: ``keepwarm._session``,
    ``keepwarm.bench._engine``, the package ``keepwarm._probe`` and its modules."""
    names = []
    for path in sorted((ROOT / "src" / "keepwarm").rglob("*.py")):
        parts = list(path.relative_to(ROOT / "src").with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if any(p.startswith("_") and not p.startswith("__") for p in parts[1:]):
            names.append(".".join(parts))
    return names


def test_private_modules_declare_all() -> None:
    names = _private_modules()
    # The walk must find the modules it is meant for, in the package and below it.
    assert {"keepwarm._session", "keepwarm.bench._engine"} <= set(names)
    for name in names:
        module = importlib.import_module(name)
        assert isinstance(getattr(module, "__all__", None), list), name


def test_version_matches_changelog() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## {re.escape(keepwarm.__version__)}\b", changelog, re.M)


def _modules_loaded_by(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return set(out.split())


def test_import_keepwarm_alone_loads_no_http_stack_and_the_first_name_does() -> None:
    """Public names load on first use (PEP 562): a process that only imports keepwarm
    (the keepwarm command's own, a library importing it at module level) pays nothing."""
    alone = _modules_loaded_by("import keepwarm")
    assert not {"requests", "urllib3", "keepwarm._session"} & alone
    used = _modules_loaded_by("import keepwarm\nkeepwarm.Session")
    assert {"requests", "urllib3", "keepwarm._session"} <= used
    assert {"requests", "keepwarm._install"} <= _modules_loaded_by("from keepwarm import install")


#: What the first session loads, not ``from keepwarm import Session``.
_TRANSPORT_STACK = {
    "keepwarm._upstream.transport",
    "keepwarm._upstream.pool",
    "keepwarm._upstream.connection",
    "keepwarm._upstream.wire",
    "keepwarm._upstream.tls",
    "keepwarm._telemetry",
}


@pytest.mark.parametrize(
    "first_use",
    ["keepwarm.Session().close()", "keepwarm.mount(requests.Session()).close()"],
)
def test_the_transport_stack_loads_with_the_first_session(first_use: str) -> None:
    """A program that imports keepwarm and sends nothing on this run (a command-line
    tool's --help) does not pay for the transport; the first session loads it."""
    imported = _modules_loaded_by("import requests\nfrom keepwarm import Session, mount")
    assert "keepwarm._session" in imported
    assert not _TRANSPORT_STACK & imported
    used = _modules_loaded_by(f"import requests, keepwarm\n{first_use}")
    assert used >= _TRANSPORT_STACK


def test_every_public_name_loads_from_the_module_it_is_listed_under() -> None:
    assert set(keepwarm._ON_DEMAND) == set(keepwarm.__all__)
    for name, module in keepwarm._ON_DEMAND.items():
        source = importlib.import_module(f"keepwarm.{module}")
        assert getattr(keepwarm, name) is getattr(source, name), name
    assert set(keepwarm.__all__) <= set(dir(keepwarm))
    with pytest.raises(AttributeError, match="no attribute 'Sesion'"):
        keepwarm.Sesion  # noqa: B018


def test_the_keepwarm_command_loads_no_http_stack_to_run_a_program() -> None:
    loaded = _modules_loaded_by(
        "import sys\nfrom keepwarm.cli import main\n"
        "assert main(['run', '--', sys.executable, '-c', 'pass']) == 0"
    )
    assert not {"requests", "urllib3", "ssl", "keepwarm._config"} & loaded
