"""keepwarm run's bootstrap: Python imports this ``sitecustomize`` at interpreter start.

``keepwarm run`` puts this directory first on ``PYTHONPATH``, so every Python process
under it (the program, its subprocesses, ``multiprocessing`` spawn children, server
workers) imports this module at start-up. It only uses the standard library, imports
nothing heavy and changes nothing until the program imports ``requests``:

1. It takes its own directory off ``sys.path`` (the program sees the ``sys.path`` it
   would see without keepwarm run) and runs the ``sitecustomize`` the environment would
   have run without it (the next one on ``sys.path``: a distribution's, pyenv's, the
   user's), with the errors ``site`` reports for it as usual.
2. When ``requests`` is first imported, right after it is, keepwarm is installed
   (``keepwarm._run._child.start``); if the program imports keepwarm first (which
   imports requests), once keepwarm's own import is complete. A process that never
   imports requests pays nothing and is not counted. If keepwarm cannot be imported in
   this interpreter (another virtual environment), one note goes to stderr, once per
   run, and the program runs on without it; with ``KEEPWARM_RUN_STRICT=1`` the import
   of requests fails instead.
"""

from __future__ import annotations

import os
import sys
from importlib.machinery import PathFinder

# Not `typing` (about 14 ms at every interpreter start): type checkers read this name.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any

__all__: list[str] = []

_HERE = os.path.dirname(os.path.abspath(__file__))


def _same_directory(entry: str) -> bool:
    try:
        return os.path.abspath(entry) == _HERE or os.path.samefile(entry, _HERE)
    except OSError:
        return False


def _note(message: str) -> None:
    """One line on stderr, once per ``keepwarm run`` (not once per process)."""
    directory = os.environ.get("KEEPWARM_RUN_DIR")
    if directory:
        try:
            os.close(os.open(os.path.join(directory, "note"), os.O_CREAT | os.O_EXCL, 0o600))
        except OSError:
            return  # another process of this run said it already (or the run is over)
    try:
        sys.stderr.write(f"keepwarm run: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass


def _strict() -> bool:
    return os.environ.get("KEEPWARM_RUN_STRICT", "").strip().lower() in ("1", "true", "yes")


class _Progress:
    """Where this process is: installed yet, keepwarm's own import under way."""

    installed = False
    keepwarm_loading = False


def _install() -> None:
    """Install keepwarm in this process (once): requests has been imported."""
    if _Progress.installed:
        return
    _Progress.installed = True
    for finder in [f for f in sys.meta_path if isinstance(f, _Watcher)]:
        sys.meta_path.remove(finder)
    try:
        from keepwarm._run import _child
    except Exception as exc:  # not importable here (another environment), or broken
        if _strict():
            raise
        _note(
            f"keepwarm is not importable in {sys.executable} ({type(exc).__name__}: {exc}); "
            "this program runs without it (install keepwarm in that environment)"
        )
        return
    _child.start(strict=_strict(), note=_note)


class _Loader:
    """The module's own loader, and keepwarm's installation once the module has run."""

    def __init__(self, loader: Any, name: str) -> None:
        self._loader = loader
        self._name = name

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        created: ModuleType | None = self._loader.create_module(spec)
        return created

    def exec_module(self, module: ModuleType) -> None:
        # The module's own loader again, for anyone who looks at it afterwards.
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        module.__loader__ = self._loader
        if self._name == "requests":
            self._loader.exec_module(module)
            if not _Progress.keepwarm_loading:
                _install()
            return
        # keepwarm imported by the program before requests: it imports requests itself,
        # and can only be installed once its own import is complete.
        _Progress.keepwarm_loading = True
        try:
            self._loader.exec_module(module)
        finally:
            _Progress.keepwarm_loading = False
        _install()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _Watcher:
    """A ``sys.meta_path`` finder that finds ``requests`` and ``keepwarm`` with the
    finders after it and wraps their loaders; gone once keepwarm is installed."""

    def find_spec(
        self, name: str, path: Any = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name not in ("requests", "keepwarm") or _Progress.installed:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec: ModuleSpec | None = find(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader, name)  # type: ignore[assignment]
                return spec
        return None


def _chain() -> None:
    """Run the ``sitecustomize`` this environment would have run without keepwarm run."""
    rest = [entry for entry in sys.path if not _same_directory(entry)]
    sys.path[:] = rest
    spec = PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    from importlib.util import module_from_spec

    module = module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        # As a failed import would: site.py then prints its usual "Error in sitecustomize".
        sys.modules.pop("sitecustomize", None)
        raise


def _bootstrap() -> None:
    if "requests" in sys.modules:  # imported by something before us: install right away
        _install()
    else:
        sys.meta_path.insert(0, _Watcher())
    _chain()


# Only as the interpreter's sitecustomize: imported as keepwarm._run.bootstrap.sitecustomize
# (by a tool walking the package), it does nothing.
if __name__ == "sitecustomize":
    _bootstrap()
