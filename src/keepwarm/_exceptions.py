"""keepwarm's exceptions and warnings.

Errors raised by keepwarm itself sit beside the requests exception tree, so code that
already catches ``requests.RequestException`` keeps catching every network failure::

    Exception
    ├── KeepwarmError                       base of everything keepwarm raises itself
    │   ├── SessionClosedError (RuntimeError)  a request on a closed Session
    │   └── SessionConflictError (ValueError)  keepwarm.session(name) asked with other settings
    └── OSError
        └── requests.RequestException
            └── requests.Timeout
                ├── PoolTimeout (KeepwarmError)  no pooled connection became free in time
                └── DeadlineExceeded (KeepwarmError)  the call outlasted Timeout(total=...)

    Warning
    └── KeepwarmWarning (UserWarning)        base of the silent-pitfall warnings

Invalid settings raise plain ``ValueError`` / ``TypeError`` whose message names the setting,
the value given and what is allowed.
"""

from __future__ import annotations

import requests

__all__ = [
    "DeadlineExceeded",
    "KeepwarmError",
    "KeepwarmWarning",
    "PoolTimeout",
    "SessionClosedError",
    "SessionConflictError",
]


class KeepwarmError(Exception):
    """Base class of the errors keepwarm raises itself."""


class SessionClosedError(KeepwarmError, RuntimeError):
    """A request was made on a Session after ``close()``.

    Plain requests silently opens new connections on a closed Session, which hides the
    bug that closed it too early (and leaks the new sockets). keepwarm refuses instead.
    """


class SessionConflictError(KeepwarmError, ValueError):
    """``keepwarm.session(name, ...)`` was asked for settings other than the existing one's."""


class PoolTimeout(requests.exceptions.Timeout, KeepwarmError):
    """Every connection of a blocking pool stayed busy for longer than ``pool_timeout``.

    Plain requests never passes a pool timeout to urllib3, so with ``pool_block=True`` a
    request waits forever for a free connection (requests issue 3825).
    """


class DeadlineExceeded(requests.exceptions.Timeout, KeepwarmError):
    """The whole call (connect, reads, retries, their sleeps, redirects) took longer than
    ``keepwarm.Timeout(total=...)``.

    A ``requests.Timeout``, so code that already catches timeouts catches it. The message
    names the total, what was in progress when it ran out (resolving the name,
    connecting, waiting for the response, reading the body, retrying after N attempts)
    and the URL without its query values or credentials.
    """


class KeepwarmWarning(UserWarning):
    """Base class of keepwarm's warnings, so they can be filtered or escalated as one."""
