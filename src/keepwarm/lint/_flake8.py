"""``keepwarm lint`` as a flake8 plugin: ``flake8 --select KW`` runs the same rules on the
tree flake8 has already parsed, and flake8 does the rest (which codes are selected or
ignored, ``per-file-ignores``, ``# noqa``, the output).

Registered as the ``flake8.extension`` entry point ``KW`` (pyproject.toml), so flake8 adds
``KW`` to its default selection: a plain ``flake8`` run reports keepwarm's findings too.
What differs from ``keepwarm lint`` (docs/lint/README.md, "flake8"):

* Rules off by default in keepwarm (KW105, KW106, KW109) stay off under flake8 unless
  ``--select``/``--extend-select`` names them by a prefix longer than the plugin's
  ``KW``: ``KW105``, ``KW10`` or ``KW1`` turn them on, ``KW`` alone does not. This is
  flake8-bugbear's rule for its opinionated B9xx warnings (``B`` alone does not select
  them), and flake8 itself has no per-code "off by default" (``off_by_default`` only
  exists for a whole plugin).
* ``# noqa`` is flake8's: the plugin reports every hit and never reads comments, so a
  comment is not applied twice. Both read it on the finding's own line (flake8 also on
  every line of a multi-line string the line is part of).
* ``[tool.keepwarm.lint]`` is not read: flake8's configuration decides.
* A file that does not parse is flake8's E999, not KW001 (flake8 runs no tree plugin on it).

This module imports nothing but the linter's own modules (tests/test_architecture.py);
importing it still runs the ``keepwarm`` package's ``__init__``, which imports requests
(~0.3 s, once per flake8 process).
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Iterator
from typing import ClassVar

from keepwarm.__about__ import __version__
from keepwarm.lint._checker import Checker as _Rules
from keepwarm.lint._names import Names
from keepwarm.lint._rules import RULES

__all__ = ["ENTRY_POINT", "Checker"]

#: The entry point's name, which flake8 adds to its default selection.
ENTRY_POINT = "KW"
_OFF_BY_DEFAULT = frozenset(code for code, rule in RULES.items() if not rule.default)

#: What flake8 expects from a tree plugin's ``run()``: line (1-based), column (0-based),
#: ``"CODE message"`` and the plugin's class.
Result = tuple[int, int, str, type]


class Checker:
    """The flake8 tree plugin: one instance per file, ``run()`` yields its findings."""

    name = "keepwarm"
    version = __version__
    #: The rules off by default that flake8's ``select``/``extend-select`` turned on; set
    #: by :meth:`parse_options` once per flake8 run (in every worker process too).
    opted_in: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, tree: ast.AST, filename: str = "<source>") -> None:
        self.tree = tree
        self.filename = filename

    @classmethod
    def parse_options(cls, options: argparse.Namespace) -> None:
        """flake8 hands over its options: note which default-off rules were asked for."""
        chosen = [
            *(getattr(options, "select", None) or ()),
            *(getattr(options, "extend_select", None) or ()),
        ]
        cls.opted_in = opted_in(chosen)

    def run(self) -> Iterator[Result]:
        if not isinstance(self.tree, ast.Module):
            return
        names = Names(self.tree)
        if not names.relevant:
            return
        try:
            hits = _Rules(self.tree, names, self.filename).run()
        except RecursionError:
            message = "KW001 cannot analyse: the code is nested too deeply"
            yield 1, 0, message, type(self)
            return
        for line, col, code, message in sorted(hits):
            if code in _OFF_BY_DEFAULT and code not in self.opted_in:
                continue
            yield line, col - 1, f"{code} {message}", type(self)


def opted_in(chosen: list[str]) -> frozenset[str]:
    """The default-off codes that the flake8 ``select``/``extend-select`` entries *chosen*
    name by a prefix longer than ``KW`` (``KW105``, ``KW10``, ``KW1``)."""
    prefixes = [c.strip().upper() for c in chosen]
    return frozenset(
        code
        for code in _OFF_BY_DEFAULT
        if any(len(p) > len(ENTRY_POINT) and code.startswith(p) for p in prefixes)
    )
