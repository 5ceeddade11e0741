"""Which files to lint and with which rules: ``[tool.keepwarm.lint]`` in pyproject.toml,
``.gitignore`` files, and the directories never worth reading.

The configuration of a file is the nearest ``pyproject.toml`` above it that has a
``[tool.keepwarm.lint]`` table (ruff's rule); its keys::

    [tool.keepwarm.lint]
    select = ["KW1"]                 # codes or prefixes; default: the rules on by default
    ignore = ["KW104"]
    exclude = ["migrations/", "legacy_*.py"]
    per-file-ignores = { "tests/*" = ["KW103"] }
    fix-timeout = 10                 # what --fix gives a request without a timeout

``.gitignore`` files (and ``exclude``) are matched with git's own rules by pathspec's
``GitIgnoreSpec`` when pathspec is installed (``pip install 'keepwarm[lint]'``; black,
hatchling and mypy depend on it, so it often is): negations, escapes, ``*`` that stops at
``/``, ``**``, and a deeper ``.gitignore`` overriding a higher one. keepwarm itself does
not depend on it. Without it, a built-in subset: blank lines and ``#`` comments are
skipped; a trailing ``/`` matches directories only; a pattern with a ``/`` elsewhere is
anchored to the directory of its ``.gitignore``, one without matches a name at any depth;
``*``, ``?``, ``[...]`` and ``**`` are globs (``*`` also crosses ``/``). What that subset
would read differently from git (a ``!`` negation, which it skips; a backslash escape; a
``*`` in an anchored pattern) is never ignored silently: :func:`notes` names the file and
the feature, and the command prints it on stderr. The ``.gitignore`` files read are those
of the directories walked and of their parents up to the repository root (the first one
holding ``.git``).
"""

from __future__ import annotations

import fnmatch
import importlib
import math
import os
from dataclasses import dataclass, field
from typing import Any

from keepwarm.lint._rules import RULES, expand_codes

__all__ = [
    "DEFAULT_EXCLUDED_DIRECTORIES",
    "Config",
    "ConfigError",
    "Patterns",
    "clear_cache",
    "find_config",
    "fix_timeout",
    "gitignore_patterns",
    "ignored",
    "notes",
]

#: Directories never descended into (they hold tools' state or other people's code);
#: a path given on the command line is linted even if it is one of them.
DEFAULT_EXCLUDED_DIRECTORIES = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        "node_modules",
        "site-packages",
        "__pypackages__",
    }
)
_KEYS = frozenset({"select", "ignore", "exclude", "per-file-ignores", "fix-timeout"})


class ConfigError(ValueError):
    """A pyproject.toml the linter cannot use (a usage error: exit code 2)."""


@dataclass(frozen=True)
class Patterns:
    """gitignore-style patterns relative to ``base`` (an absolute directory): a pathspec
    ``GitIgnoreSpec`` (``spec``) when pathspec is installed, else the built-in subset
    (``patterns``) and what of the lines it does not read as git would (``unsupported``)."""

    base: str
    patterns: tuple[tuple[str, bool, bool], ...]  # (glob, anchored, directories only)
    spec: Any = None
    unsupported: tuple[str, ...] = ()
    lines: tuple[str, ...] = ()
    use_pathspec: bool = True

    @classmethod
    def parse(cls, base: str, lines: list[str], use_pathspec: bool = True) -> Patterns:
        """The patterns of *lines*; *use_pathspec* False forces the built-in subset."""
        gitignore = _gitignore_spec() if use_pathspec else None
        if gitignore is not None:
            spec = gitignore.from_lines(lines)
            return cls(base, (), spec if len(spec) else None, (), tuple(lines))
        parsed = []
        unsupported: dict[str, None] = {}
        for raw in lines:
            line = raw.rstrip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("!"):
                unsupported["`!` negations (what they re-include stays excluded)"] = None
                continue
            if "\\" in line:
                unsupported["`\\` escapes (read as plain characters)"] = None
            directory_only = line.endswith("/")
            line = line.rstrip("/")
            if line.startswith("**/") and "/" not in line[3:]:
                line = line[3:]
            anchored = "/" in line
            if anchored and "*" in line.replace("**", ""):
                unsupported["`*` in a pattern with a `/` (here it also matches across `/`)"] = None
            parsed.append((line.lstrip("/"), anchored, directory_only))
        return cls(base, tuple(parsed), None, tuple(unsupported), tuple(lines), use_pathspec)

    def without_matches_of(self, directory: str) -> Patterns:
        """These patterns less the lines that exclude the absolute *directory* itself (a
        directory named on the command line: linted, as a named file is)."""
        kept = [
            line
            for line in self.lines
            if not Patterns.parse(self.base, [line], self.use_pathspec).match(directory, True)
        ]
        return Patterns.parse(self.base, kept, self.use_pathspec)

    def __bool__(self) -> bool:
        return bool(self.patterns) or self.spec is not None

    def decide(self, path: str, is_dir: bool) -> bool | None:
        """Whether the absolute *path* is excluded (True), re-included by a negation
        (False), or matched by none of the patterns (None)."""
        relative = os.path.relpath(path, self.base).replace(os.sep, "/")
        if relative.startswith("../") or relative == "..":
            return None
        if self.spec is not None:
            include: bool | None = self.spec.check_file(
                relative + "/" if is_dir else relative
            ).include
            return include
        name = relative.rpartition("/")[2]
        for glob, anchored, directory_only in self.patterns:
            if directory_only and not is_dir:
                continue
            if anchored:
                if fnmatch.fnmatchcase(relative, glob) or (
                    "/**/" in glob and fnmatch.fnmatchcase(relative, glob.replace("/**/", "/"))
                ):
                    return True
            elif fnmatch.fnmatchcase(name, glob):
                return True
        return None

    def match(self, path: str, is_dir: bool) -> bool:
        """Whether the absolute *path* is excluded by these patterns alone."""
        return self.decide(path, is_dir) is True


def ignored(patterns: list[Patterns], path: str, is_dir: bool) -> bool:
    """Whether the absolute *path* is excluded by the ``.gitignore`` files *patterns*
    (outermost first): the deepest file with a pattern that matches decides (git's rule),
    so a negation in a nested ``.gitignore`` re-includes what a parent's excluded."""
    for found in reversed(patterns):
        decided = found.decide(path, is_dir)
        if decided is not None:
            return decided
    return False


def _gitignore_spec() -> Any:
    """pathspec's ``GitIgnoreSpec`` class, or None when pathspec is not installed."""
    try:
        from pathspec import GitIgnoreSpec
    except ImportError:
        return None
    return GitIgnoreSpec


_notes: dict[str, str] = {}


def notes() -> list[str]:
    """One line for each ``.gitignore`` (or ``exclude``) read since :func:`clear_cache`
    that the built-in subset does not read as git would: the file and the features."""
    return list(_notes.values())


def _note(where: str, patterns: Patterns) -> None:
    if patterns.unsupported and where not in _notes:
        _notes[where] = (
            f"{where} uses {', '.join(patterns.unsupported)}, which keepwarm lint's built-in "
            "matcher does not follow as git does; install pathspec "
            "(pip install 'keepwarm[lint]') for git's rules"
        )


def gitignore_patterns(directory: str) -> Patterns | None:
    """The patterns of ``directory/.gitignore``, or None if it has none."""
    path = os.path.join(directory, ".gitignore")
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    patterns = Patterns.parse(directory, lines)
    _note(path, patterns)
    return patterns if patterns else None


@dataclass(frozen=True)
class Config:
    """The settings of one ``[tool.keepwarm.lint]`` table (or the defaults)."""

    root: str
    source: str = "defaults"
    select: frozenset[str] | None = None
    ignore: frozenset[str] = frozenset()
    exclude: Patterns | None = None
    per_file_ignores: tuple[tuple[str, frozenset[str]], ...] = field(default=())
    fix_timeout: int | float | None = None  # None: --fix's default

    def enabled(self, select: set[str] | None, ignore: set[str]) -> frozenset[str]:
        """The codes that run: the command line's ``--select`` replaces the file's
        ``select``; both ``ignore`` lists apply."""
        chosen = select if select is not None else self.select
        if chosen is None:
            chosen = {code for code, rule in RULES.items() if rule.default}
        return frozenset(set(chosen) - self.ignore - ignore)

    def ignored_for(self, path: str) -> frozenset[str]:
        """The codes ``per-file-ignores`` turns off for the absolute *path*."""
        if not self.per_file_ignores:
            return frozenset()
        relative = os.path.relpath(path, self.root).replace(os.sep, "/")
        name = relative.rpartition("/")[2]
        codes: set[str] = set()
        for glob, ignored in self.per_file_ignores:
            if fnmatch.fnmatchcase(relative, glob) or (
                "/" not in glob and fnmatch.fnmatchcase(name, glob)
            ):
                codes |= ignored
        return frozenset(codes)


_cache: dict[str, Config] = {}


def find_config(directory: str) -> Config:
    """The configuration for files in the absolute *directory*: the nearest pyproject.toml
    above it with a ``[tool.keepwarm.lint]`` table, else the defaults (rooted at the
    current directory)."""
    seen: list[str] = []
    current = directory
    found: Config | None = None
    while True:
        if current in _cache:
            found = _cache[current]
            break
        seen.append(current)
        candidate = os.path.join(current, "pyproject.toml")
        if os.path.isfile(candidate):
            found = _read(candidate)
            if found is not None:
                break
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    if found is None:
        found = Config(root=os.getcwd())
    for directory_seen in seen:
        _cache[directory_seen] = found
    return found


def clear_cache() -> None:
    """Forget the configurations read (a long-lived process whose files changed) and the
    notes about them."""
    _cache.clear()
    _notes.clear()


def _read(path: str) -> Config | None:
    try:
        toml: Any = importlib.import_module("tomllib")
    except ImportError:  # Python 3.10
        try:
            toml = importlib.import_module("tomli")
        except ImportError:
            raise ConfigError(f"{path}: reading it needs Python 3.11 or tomli") from None
    try:
        with open(path, "rb") as file:
            data = toml.load(file)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    table = data.get("tool", {}).get("keepwarm", {}).get("lint")
    if table is None:
        return None
    where = f"{path} [tool.keepwarm.lint]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})"
        )
    root = os.path.dirname(path)
    select = table.get("select")
    per_file = table.get("per-file-ignores", {})
    if not isinstance(per_file, dict):
        raise ConfigError(f"{where}: per-file-ignores must be a table of glob = [codes]")
    return Config(
        root=root,
        source=path,
        select=None
        if select is None
        else frozenset(expand_codes(_strings(select, where, "select"), where)),
        ignore=frozenset(expand_codes(_strings(table.get("ignore", []), where, "ignore"), where)),
        exclude=_exclude(root, _strings(table.get("exclude", []), where, "exclude"), where),
        per_file_ignores=tuple(
            (
                glob,
                frozenset(
                    expand_codes(_strings(codes, where, f"per-file-ignores {glob!r}"), where)
                ),
            )
            for glob, codes in per_file.items()
        ),
        fix_timeout=None
        if table.get("fix-timeout") is None
        else fix_timeout(table["fix-timeout"], f"{where} fix-timeout"),
    )


def _exclude(root: str, lines: list[str], where: str) -> Patterns | None:
    patterns = Patterns.parse(root, lines)
    _note(f"{where} exclude", patterns)
    return patterns if patterns else None


def fix_timeout(value: object, where: str, text: bool = False) -> int | float:
    """*value* as the seconds ``--fix`` writes into ``timeout=``: a finite number above
    zero (a TOML number; with *text*, the command line's text of one); anything else
    raises :class:`ConfigError`, naming *where* it came from."""
    number: object = value
    if text and isinstance(value, str):
        try:
            number = int(value)
        except ValueError:
            try:
                number = float(value)
            except ValueError:
                number = None
    if (
        isinstance(number, (int, float))
        and not isinstance(number, bool)
        and math.isfinite(number)
        and number > 0
    ):
        return number
    raise ConfigError(f"{where}: expected a number of seconds above 0, got {value!r}")


def _strings(value: object, where: str, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {key} must be a list of strings")
    return list(value)
