"""keepwarm: one shared, tuned, fork-safe requests.Session for the whole process.

Public API (everything else is private)::

    import keepwarm

    s = keepwarm.session()            # the process-wide shared Session
    s.get("https://api.example.com")  # (3, 7) s timeouts, pooled connections, safe retries

    keepwarm.Session(...)             # your own tuned requests.Session subclass
    keepwarm.configure(...)           # defaults for sessions created afterwards
    keepwarm.install()                # plain requests.get() reuses keepwarm's pools
    keepwarm.enable_metrics()         # OpenTelemetry metrics (or KEEPWARM_OTEL_METRICS=1)
"""

import importlib as _importlib
import logging as _logging
from typing import TYPE_CHECKING as _TYPE_CHECKING

if _TYPE_CHECKING:
    from collections.abc import Callable as _Callable
    from collections.abc import Mapping as _Mapping
    from typing import Any as _Any

    from keepwarm.__about__ import __version__
    from keepwarm._config import (
        DEFAULT_POOL_CONNECTIONS,
        DEFAULT_POOL_MAXSIZE,
        DEFAULT_POOL_TIMEOUT,
        DEFAULT_TIMEOUT,
        NO_TIMEOUT,
        Timeout,
        configure,
    )
    from keepwarm._exceptions import (
        ConcurrentMutationWarning,
        CookieScopeWarning,
        DeadlineExceeded,
        HeaderOverrideWarning,
        KeepwarmError,
        KeepwarmWarning,
        NoTimeoutWarning,
        PoolSaturationWarning,
        PoolTimeout,
        SessionChurnWarning,
        SessionClosedError,
        SessionConflictError,
        UnclosedSessionWarning,
    )
    from keepwarm._guards import silence
    from keepwarm._install import install, installed, uninstall
    from keepwarm._metrics import disable_metrics, enable_metrics
    from keepwarm._registry import close_all, session, stats, timings
    from keepwarm._retry import RetryPolicy
    from keepwarm._session import Session, mount
    from keepwarm._stats import HostStats, Stats
    from keepwarm._telemetry import Timings
    from keepwarm._upstream.cookies import share_cookies

# The library logs to "keepwarm" (connection.*, pool.*, request.* events at DEBUG); it
# prints nothing unless the application configures logging.
_logging.getLogger("keepwarm").addHandler(_logging.NullHandler())

#: Every public name and the module it comes from, imported on first use (PEP 562):
#: ``import keepwarm`` alone loads none of them, so a process that imports keepwarm
#: without using it (the ``keepwarm`` command's own process, ``keepwarm run``'s
#: supervisor, a library that imports it at module level) does not load requests for it.
#: The first name used loads what it needs: ``keepwarm.Session`` costs what ``import
#: keepwarm`` used to (docs/PERFORMANCE.md, issue 16).
_ON_DEMAND: dict[str, str] = {
    "__version__": "__about__",
    **dict.fromkeys(
        (
            "DEFAULT_POOL_CONNECTIONS",
            "DEFAULT_POOL_MAXSIZE",
            "DEFAULT_POOL_TIMEOUT",
            "DEFAULT_TIMEOUT",
            "NO_TIMEOUT",
            "Timeout",
            "configure",
        ),
        "_config",
    ),
    **dict.fromkeys(
        (
            "ConcurrentMutationWarning",
            "CookieScopeWarning",
            "DeadlineExceeded",
            "HeaderOverrideWarning",
            "KeepwarmError",
            "KeepwarmWarning",
            "NoTimeoutWarning",
            "PoolSaturationWarning",
            "PoolTimeout",
            "SessionChurnWarning",
            "SessionClosedError",
            "SessionConflictError",
            "UnclosedSessionWarning",
        ),
        "_exceptions",
    ),
    "silence": "_guards",
    **dict.fromkeys(("install", "installed", "uninstall"), "_install"),
    **dict.fromkeys(("disable_metrics", "enable_metrics"), "_metrics"),
    **dict.fromkeys(("close_all", "session", "stats", "timings"), "_registry"),
    "RetryPolicy": "_retry",
    **dict.fromkeys(("Session", "mount"), "_session"),
    **dict.fromkeys(("HostStats", "Stats"), "_stats"),
    "Timings": "_telemetry",
    "share_cookies": "_upstream.cookies",
}


def _on_demand(
    package: str, names: "_Mapping[str, str]", namespace: "dict[str, _Any]"
) -> "_Callable[[str], _Any]":
    # The ``__getattr__`` of ``package`` (this one, and ``keepwarm._probe``): each name in
    # ``names`` from the submodule it maps to (relative to ``package``), stored in
    # ``namespace`` (the package's ``globals()``) once loaded, so the next use is a plain
    # lookup; any other name raises AttributeError, as usual. Defined here rather than in a
    # module of its own: each module a program loads costs it about 0.33 M instructions of
    # the import system's own work (docs/PERFORMANCE.md, issue 16).

    def __getattr__(name: str) -> "_Any":
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(_importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    return __getattr__


__getattr__ = _on_demand(__name__, _ON_DEMAND, globals())


def __dir__() -> list[str]:
    return sorted({*globals(), *_ON_DEMAND})


__all__ = [
    "DEFAULT_POOL_CONNECTIONS",
    "DEFAULT_POOL_MAXSIZE",
    "DEFAULT_POOL_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "NO_TIMEOUT",
    "ConcurrentMutationWarning",
    "CookieScopeWarning",
    "DeadlineExceeded",
    "HeaderOverrideWarning",
    "HostStats",
    "KeepwarmError",
    "KeepwarmWarning",
    "NoTimeoutWarning",
    "PoolSaturationWarning",
    "PoolTimeout",
    "RetryPolicy",
    "Session",
    "SessionChurnWarning",
    "SessionClosedError",
    "SessionConflictError",
    "Stats",
    "Timeout",
    "Timings",
    "UnclosedSessionWarning",
    "__version__",
    "close_all",
    "configure",
    "disable_metrics",
    "enable_metrics",
    "install",
    "installed",
    "mount",
    "session",
    "share_cookies",
    "silence",
    "stats",
    "timings",
    "uninstall",
]
