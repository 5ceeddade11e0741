"""``keepwarm lint PATH...``: find the HTTP client anti-patterns in Python source before
they ship (requests in loops, a session per call, no timeout, ``verify=False``, pool and
adapter misconfiguration, headers changed per request, use after close, never closed).

The linter reads source with :mod:`ast` only: it never imports or runs the code it checks,
and never imports keepwarm's runtime or requests itself (tests/test_architecture.py holds
it to that). The parts, each one job:

* :mod:`~keepwarm.lint._rules`: the codes, names, defaults, messages; the ``Finding`` type;
* :mod:`~keepwarm.lint._names`: what a file's names refer to, from its imports;
* :mod:`~keepwarm.lint._checker`: the rules, one walk per file;
* :mod:`~keepwarm.lint._lifecycle`: a session's life in a scope: kept, closed, used after
  its close;
* :mod:`~keepwarm.lint._repeated`: which functions run repeatedly (routes, tasks,
  request-handler methods, functions handed to ``map()``);
* :mod:`~keepwarm.lint._config`: ``[tool.keepwarm.lint]``, ``.gitignore``, exclusions;
* :mod:`~keepwarm.lint._engine`: files, parsing, ``# noqa``, the run;
* :mod:`~keepwarm.lint._output`: text, JSON and SARIF;
* :mod:`~keepwarm.lint._command`: the ``keepwarm lint`` command's handler;
* :mod:`~keepwarm.lint._fix`: ``--fix`` and ``--diff``, the safe fixes;
* :mod:`~keepwarm.lint._flake8`: the same rules as the flake8 plugin ``KW``.

Rule docs: docs/lint/README.md.
"""

from __future__ import annotations

from keepwarm.lint._engine import Report, UsageError, lint_paths, lint_source
from keepwarm.lint._rules import RULES, Finding, Rule

__all__ = ["RULES", "Finding", "Report", "Rule", "UsageError", "lint_paths", "lint_source"]
