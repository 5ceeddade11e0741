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
    └── KeepwarmWarning (UserWarning)        base of the guards' warnings (docs/guards/)
        ├── HeaderOverrideWarning           a request's header replaced or deleted a session header
        ├── CookieScopeWarning              a cookie sent to every host, or not shared as expected
        ├── UnclosedSessionWarning          a session collected without close()
        ├── SessionChurnWarning             many short-lived sessions: one per call
        ├── PoolSaturationWarning           more requests in flight to a host than pool_maxsize
        ├── NoTimeoutWarning                a request sent with timeouts disabled
        └── ConcurrentMutationWarning       session.headers/auth changed during others' requests

Invalid settings raise plain ``ValueError`` / ``TypeError`` whose message names the setting,
the value given and what is allowed.

A guard warns once per call site (the first line outside keepwarm, requests and urllib3);
with ``strict=True`` (``KEEPWARM_STRICT=1``) it raises the same class instead, as an
exception, every time. ``keepwarm.silence(*categories)`` silences guards for a block of
code; ``guards=False`` (``KEEPWARM_GUARDS=0``) turns them off for a session.
"""

from __future__ import annotations

import requests

__all__ = [
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


class HeaderOverrideWarning(KeepwarmWarning):
    """A per-request ``headers=`` value replaced a header set on the session with another
    value (or ``None`` deleted it): requests sends the request's, silently."""


class CookieScopeWarning(KeepwarmWarning):
    """A cookie's scope is not what the code likely meant: one set on the session without a
    domain (requests sends it to every host), or a host-only cookie from one subdomain
    not sent to a sibling the code is now calling."""


class UnclosedSessionWarning(KeepwarmWarning):
    """A session was garbage-collected without ``close()``: its connections stayed open
    until then. The message names where the session was created."""


class SessionChurnWarning(KeepwarmWarning):
    """Many sessions created, used once or twice and dropped in a short time from one
    place: a new session (and connection) per call, the pattern keepwarm exists to end."""


class PoolSaturationWarning(KeepwarmWarning):
    """More requests were in flight to one host than the pool keeps connections
    (``pool_maxsize``): the extra connections are opened and thrown away."""


class NoTimeoutWarning(KeepwarmWarning):
    """A request was sent with timeouts disabled (``keepwarm.NO_TIMEOUT``): a server that
    stops answering holds the calling thread forever."""


class ConcurrentMutationWarning(KeepwarmWarning):
    """``session.headers`` or ``session.auth`` changed while other threads had requests in
    flight on the same session: which of those requests carry the change is a race."""
