# How a guard speaks: once per call site, as an exception in strict mode, never when
# silenced.
#
# A guard is a check, at the place keepwarm already handles the thing it checks, for a
# pitfall plain requests lets pass silently (``docs/guards/``). When one trips it calls
# :func:`warn` with its warning class (``_exceptions``) and a message that names the cause
# and the fix. :func:`warn`:
#
# * finds the *call site*: the first frame outside keepwarm, requests, urllib3 and the
#   standard library's HTTP modules, which is the user's line that led to it;
# * in strict mode raises the warning class as an exception, every time;
# * otherwise issues the warning at the call site (``warnings.warn_explicit``, so warning
#   filters by category, module or line apply as usual), once per call site and class, so
#   a loop does not flood the log;
# * does nothing inside :func:`silence` for that class.
#
# Nothing here runs while nothing is wrong: the checks are at the guards' own places and
# cost what a comparison costs; this module is reached only once one has tripped.

from __future__ import annotations

import contextlib
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from types import FrameType
from typing import Final

import requests
import urllib3

from keepwarm._exceptions import KeepwarmWarning

__all__ = ["call_site", "silence", "warn"]

#: Source directories whose frames are never the call site.
_LIBRARY_DIRS: Final = tuple(
    os.path.dirname(os.path.abspath(path)) + os.sep
    for path in (__file__, requests.__file__ or "", urllib3.__file__ or "")
)
#: Standard-library modules the request passes through on its way down.
_STDLIB_FILES: Final = (
    "http/client.py",
    "http/cookiejar.py",
    "contextlib.py",
    "functools.py",
    # copy.copy(session) and pickle's Python implementation call Session.__setstate__.
    "/copy.py",
    "/pickle.py",
    # MutableMapping.update (jar.update(...), headers.update(...)): a frozen module from
    # CPython 3.11 (skipped as "<frozen ...>"), a file up to 3.10.
    "/_collections_abc.py",
)

_silenced: ContextVar[frozenset[type[KeepwarmWarning]]] = ContextVar(
    "keepwarm_silenced", default=frozenset()
)
_seen: set[tuple[type[KeepwarmWarning], str, int]] = set()
_seen_lock = threading.Lock()
#: What else forget_sites() resets (a guard's own per-site counts).
_forget_hooks: list[Callable[[], None]] = []


class Site:
    # Where user code led to a guard: file, line and module name.

    __slots__ = ("filename", "lineno", "module")

    def __init__(self, filename: str, lineno: int, module: str) -> None:
        self.filename = filename
        self.lineno = lineno
        self.module = module

    def __str__(self) -> str:
        return f"{self.filename}:{self.lineno}"


def _is_library(filename: str) -> bool:
    return filename.startswith(_LIBRARY_DIRS) or filename.endswith(_STDLIB_FILES)


def call_site(frame: FrameType | None = None) -> Site:
    # The first frame, from ``frame`` (default: the caller's) outward, that is not in
    # keepwarm, requests, urllib3 or the standard library's HTTP modules.
    f: FrameType | None = frame if frame is not None else sys._getframe(1)
    outermost: FrameType | None = f
    while f is not None:
        filename = f.f_code.co_filename
        if not _is_library(os.path.abspath(filename)) and not filename.startswith("<frozen"):
            return Site(filename, f.f_lineno, f.f_globals.get("__name__", "?"))
        outermost = f
        f = f.f_back
    if outermost is None:
        return Site("?", 0, "?")
    return Site(outermost.f_code.co_filename, outermost.f_lineno, "?")


def warn(
    category: type[KeepwarmWarning],
    message: str,
    *,
    strict: bool,
    site: Site | None = None,
) -> None:
    # Tell the user about a pitfall (see the module docstring).
    if category in _silenced.get():
        return
    if strict:
        raise category(message)
    where = site if site is not None else call_site(sys._getframe(1))
    key = (category, where.filename, where.lineno)
    with _seen_lock:
        if key in _seen:
            return
        _seen.add(key)
    warnings.warn_explicit(message, category, where.filename, where.lineno, module=where.module)


@contextlib.contextmanager
def silence(*categories: type[KeepwarmWarning]) -> Iterator[None]:
    """Silence the guards of these warning classes (all of them when none is given) for
    the code run inside the ``with`` block, in this thread or task only; strict mode
    included. For code that does on purpose what a guard warns about::

        with keepwarm.silence(keepwarm.HeaderOverrideWarning):
            session.get(url, headers={"Authorization": other_token})
    """
    for category in categories:
        if not (isinstance(category, type) and issubclass(category, KeepwarmWarning)):
            raise TypeError(
                f"keepwarm.silence() takes keepwarm's warning classes "
                f"(keepwarm.HeaderOverrideWarning, ...), not {category!r}"
            )
    chosen = frozenset(categories or _ALL)
    token = _silenced.set(_silenced.get() | chosen)
    try:
        yield
    finally:
        _silenced.reset(token)


def _subclasses(cls: type[KeepwarmWarning]) -> list[type[KeepwarmWarning]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_subclasses(sub))
    return found


#: Every guard's class (silence() with no argument).
_ALL: Final = frozenset(_subclasses(KeepwarmWarning))


def forget_sites() -> None:
    # Warn again at call sites that were warned about, and count per-site guards (churn)
    # from zero (tests, and the pytest plugin between tests).
    with _seen_lock:
        _seen.clear()
    for hook in _forget_hooks:
        hook()


def on_forget(hook: Callable[[], None]) -> None:
    # Have :func:`forget_sites` call ``hook`` too.
    _forget_hooks.append(hook)


def silenced() -> frozenset[type[KeepwarmWarning]]:
    # The guard classes :func:`silence` silences here (this thread or task), now.
    return _silenced.get()
