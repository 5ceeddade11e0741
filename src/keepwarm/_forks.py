# What keepwarm does in a forked child, registered without keeping its modules alive.
#
# ``os.register_at_fork`` holds each callable until the interpreter itself is cleared, after
# every module has been torn down, and a function holds its module's globals. A module that
# registered one of its functions therefore stayed alive through the whole finalization,
# and with it everything it refers to (requests' and urllib3's classes, their modules'
# globals): the collector walked them again in each of finalization's passes. Measured
# with callgrind at exit: ``keepwarm._config``'s one handler cost 1.85 M instructions, and
# the two registered by ``from keepwarm import Session`` 2.5 M, more than half of what
# keepwarm added to the whole process's exit (docs/PERFORMANCE.md, issue 16).
#
# :func:`after_fork_in_child` registers a small callable that holds the handler by weak
# reference: it runs the handler for as long as the handler's module holds it, and nothing
# once finalization has cleared that module. The order of registration and the reporting
# of a handler's error are ``os.register_at_fork``'s own, unchanged.

from __future__ import annotations

import os
import types
import weakref
from collections.abc import Callable

__all__ = ["after_fork_in_child"]


class _WeakHandler:
    # Calls a handler held by weak reference (a bound method through ``WeakMethod``,
    # which a plain reference to the short-lived bound method object would lose at once).

    __slots__ = ("_handler",)

    def __init__(self, handler: Callable[[], None]) -> None:
        self._handler: Callable[[], Callable[[], None] | None] = (
            weakref.WeakMethod(handler)
            if isinstance(handler, types.MethodType)
            else weakref.ref(handler)
        )

    def __call__(self) -> None:
        handler = self._handler()
        if handler is not None:
            handler()


def after_fork_in_child(handler: Callable[[], None]) -> None:
    # Run ``handler()`` in every child forked from now on, as
    # ``os.register_at_fork(after_in_child=handler)`` does, for as long as something else
    # (its module, for a module's function or a module-level object's method) holds it.
    #
    # A function made inside another (a closure, a lambda) is refused: nothing would hold
    # it, and it would never run.
    if isinstance(handler, types.FunctionType) and (
        "<locals>" in handler.__qualname__ or handler.__name__ == "<lambda>"
    ):
        raise TypeError(
            f"after_fork_in_child({handler.__qualname__}): only a module-level function "
            "or a method of a module-level object is held for the process's lifetime; "
            "define the handler at module level"
        )
    if hasattr(os, "register_at_fork"):  # not on Windows, where nothing forks
        os.register_at_fork(after_in_child=_WeakHandler(handler))
