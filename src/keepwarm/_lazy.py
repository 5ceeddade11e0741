"""Names of a package loaded on first use (PEP 562), for ``keepwarm`` and its commands.

``import keepwarm`` must not load requests (``keepwarm run``'s supervisor, the
``keepwarm`` command's parser), so a package lists which of its names come from which
submodule and gets a module ``__getattr__`` that imports it when one is first used and
keeps the value in the package's namespace, so the next use is a plain lookup.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["on_demand"]


def on_demand(
    package: str, names: Mapping[str, str], namespace: dict[str, Any]
) -> Callable[[str], Any]:
    """The ``__getattr__`` of ``package``: each name in ``names`` from the submodule it
    maps to (relative to ``package``), stored in ``namespace`` (the package's
    ``globals()``) once loaded; any other name raises AttributeError, as usual."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    return __getattr__
