"""keepwarm._forks: after-fork handlers that run in forked children without keeping their
modules alive until the interpreter is cleared (which made finalization walk them, and
all they refer to, again in each of its passes: docs/PERFORMANCE.md, issue 16).

Each handler lives in a module made for the test, so that the test can drop the module
and see whether the registration still holds it, against ``os.register_at_fork``.
"""

from __future__ import annotations

import gc
import os
import types
import weakref
from typing import Any

import pytest

from forking import run_in_child
from keepwarm._forks import after_fork_in_child

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork() does not exist here"),
    pytest.mark.filterwarnings(
        r"ignore:This process \(pid=\d+\) is multi-threaded, use of fork\(\) may lead to "
        r"deadlocks in the child:DeprecationWarning"
    ),
]

_SOURCE = """
import os

class Sentinel:
    pass

sentinel = Sentinel()

def handler():
    seen.append(os.getpid())

class Watcher:
    def reset(self):
        seen.append(-os.getpid())

watcher = Watcher()
"""


def _module(seen: list[int]) -> types.ModuleType:
    """A module as a package's would be: a handler function and an object with a method,
    appending to ``seen`` (which the test holds) when they run."""
    module = types.ModuleType("keepwarm_forks_test_module")
    module.__dict__["seen"] = seen
    exec(compile(_SOURCE, "<keepwarm_forks_test_module>", "exec"), module.__dict__)
    return module


def test_a_module_level_function_and_a_method_run_in_every_child() -> None:
    seen: list[int] = []
    module = _module(seen)
    after_fork_in_child(module.handler)
    after_fork_in_child(module.watcher.reset)

    def child() -> Any:
        return [seen, os.getpid()]

    for _ in range(2):
        child_seen, child_pid = run_in_child(child)
        # In registration order, as os.register_at_fork runs them.
        assert child_seen == [child_pid, -child_pid]
    assert seen == []  # not in the parent


def test_a_handler_whose_module_is_gone_no_longer_runs_or_fails() -> None:
    seen: list[int] = []
    module = _module(seen)
    after_fork_in_child(module.handler)
    after_fork_in_child(module.watcher.reset)
    del module
    gc.collect()

    assert run_in_child(lambda: list(seen)) == []


def test_a_registered_handler_does_not_keep_its_module_alive() -> None:
    # The same module registered with os.register_at_fork stays alive for good: the
    # callable holds its function, and the function its module's globals.
    kept_alive = _module([])
    kept = weakref.ref(kept_alive.sentinel)
    os.register_at_fork(after_in_child=kept_alive.handler)
    dropped = _module([])
    gone = weakref.ref(dropped.sentinel)
    after_fork_in_child(dropped.handler)
    after_fork_in_child(dropped.watcher.reset)

    del kept_alive, dropped
    gc.collect()

    assert kept() is not None
    assert gone() is None


def test_a_function_made_inside_another_is_refused_with_the_fix() -> None:
    seen: list[int] = []

    def local() -> None:
        seen.append(1)

    for handler in (local, lambda: seen.append(1)):
        with pytest.raises(TypeError, match="define the handler at module level"):
            after_fork_in_child(handler)
