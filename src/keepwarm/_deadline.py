# The total deadline of one call: ``keepwarm.Timeout(total=...)``.
#
# A per-phase timeout (connect, read) bounds one wait; nothing in requests or urllib3
# bounds a whole call: retries, their backoff and ``Retry-After`` sleeps, redirects, and a
# server that drips a byte per read timeout all add up. The deadline is an absolute
# ``time.monotonic()`` instant, set by ``Session.send`` for the outermost call and held in a
# :class:`contextvars.ContextVar` for as long as that call runs, so every layer below reads
# the same instant without it being threaded through urllib3's arguments: the redirects'
# nested sends, the adapter, the pool (each attempt's connect and read timeouts are cut to
# the time left), the retry policy (no sleep past the deadline), name resolution and the
# body reader. A ContextVar, not a thread-local: it follows the call into
# ``contextvars.copy_context()`` and asyncio tasks, and another thread's call never sees it.
#
# Without a total nothing is set, and every check below is one ``ContextVar.get()``.

from __future__ import annotations

import time
from contextvars import ContextVar, Token
from typing import Final

from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
)
from urllib3.util import Timeout as Urllib3Timeout

from keepwarm._exceptions import DeadlineExceeded
from keepwarm._urls import redact_url

__all__ = [
    "Deadline",
    "DeadlineStop",
    "current_deadline",
    "doing_when",
    "enter_deadline",
    "leave_deadline",
]

_monotonic = time.monotonic


class Deadline:
    # The absolute end of one call, and what the message needs when it passes.

    __slots__ = ("at", "attempts", "doing", "total", "url")

    def __init__(self, total: float, url: str) -> None:
        self.total = total
        self.at = _monotonic() + total
        self.url = url
        #: Attempts that failed or were answered with a retryable status so far.
        self.attempts = 0
        #: What was in progress, where the exception alone cannot tell (name resolution).
        self.doing: str | None = None

    def remaining(self) -> float:
        # Seconds left (negative once passed).
        return self.at - _monotonic()

    def clamp(self, timeout: Urllib3Timeout) -> Urllib3Timeout:
        # *timeout* with its connect and read phases cut to the time left (the same
        # object when both already fit, so the usual case allocates nothing).
        left = max(self.at - _monotonic(), 0.001)
        connect = timeout.connect_timeout
        read = timeout.read_timeout
        if _fits(connect, left) and _fits(read, left):
            return timeout
        return Urllib3Timeout(connect=_cut(connect, left), read=_cut(read, left))

    def retrying(self) -> str:
        # What was in progress between attempts: ``retrying after 2 attempts``.
        attempts = self.attempts
        return f"retrying after {attempts} attempt{'s' if attempts != 1 else ''}"

    def exceeded(self, doing: str, request: object = None) -> DeadlineExceeded:
        # The exception for a call whose deadline passed while *doing*.
        return DeadlineExceeded(
            f"the call to {redact_url(self.url)} did not finish within its total "
            f"deadline of {self.total:g} s (keepwarm.Timeout(total={self.total:g})); "
            f"it ran out while {doing}. Raise total= if the server is slow but alive, "
            "or retry the call later.",
            request=request,
        )


def doing_when(error: object, deadline: Deadline) -> str:
    # What was in progress when *error* ended an attempt under *deadline*.
    if deadline.doing is not None:
        return deadline.doing
    if isinstance(error, ConnectTimeoutError) and not isinstance(error, NewConnectionError):
        return "connecting"
    if isinstance(error, ReadTimeoutError):
        return "waiting for the response"
    return "sending the request"


def _fits(phase: object, left: float) -> bool:
    return isinstance(phase, (int, float)) and phase <= left


def _cut(phase: object, left: float) -> float:
    return min(phase, left) if isinstance(phase, (int, float)) else left


class DeadlineStop(HTTPError):
    # The reason inside urllib3's ``MaxRetryError`` when the retry policy stops because
    # the next attempt (or the wait before it) would pass the deadline; the adapter turns
    # it into :class:`~keepwarm.DeadlineExceeded`. ``doing`` is what was in progress.

    def __init__(self, doing: str) -> None:
        super().__init__(doing)
        self.doing = doing


#: The deadline of the call running in this context (None: no total).
_current: Final[ContextVar[Deadline | None]] = ContextVar("keepwarm_deadline", default=None)

current_deadline = _current.get


def enter_deadline(total: float, url: str) -> Token[Deadline | None] | None:
    # Start a deadline for the outermost call; a call nested in one (a redirect's send,
    # a request made from a response hook) keeps the outer deadline (returns None).
    if _current.get() is not None:
        return None
    return _current.set(Deadline(total, url))


def leave_deadline(token: Token[Deadline | None] | None) -> None:
    if token is not None:
        _current.reset(token)
