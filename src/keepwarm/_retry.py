# keepwarm's retry policy: which requests are retried, on what, and how long it may wait.
#
# :class:`RetryPolicy` is urllib3's ``Retry`` (through its public API: constructor, ``new``
# and ``increment``) with safer defaults; ``retry_signature`` compares two policies, which
# urllib3's ``Retry`` cannot.

from __future__ import annotations

import email.utils
import time
from collections.abc import Collection
from typing import Any, Final

from urllib3 import BaseHTTPResponse
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import InvalidHeader, MaxRetryError, ReadTimeoutError, ResponseError
from urllib3.util.retry import Retry

from keepwarm._deadline import DeadlineStop, current_deadline, doing_when
from keepwarm._validate import check_seconds

__all__ = [
    "DRAIN_MAX_BYTES",
    "DRAIN_MAX_SECONDS",
    "IDEMPOTENT_METHODS",
    "RETRY_STATUSES",
    "RetryPolicy",
    "drain_or_close",
    "retry_signature",
]

#: Methods retried after the request may have reached the server: the idempotent ones of
#: RFC 9110 section 9.2.2. POST and PATCH are retried only on errors that prove the
#: request was never sent (connection refused, connect timeout, DNS failure).
IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
#: Statuses that mean "try again": rate limited, and the three a proxy or load balancer
#: answers while a backend restarts.
RETRY_STATUSES: Final = frozenset({429, 502, 503, 504})
#: The most of a retried response's body read (and thrown away) to keep its connection,
#: and the longest time spent on it. Error pages are small (nginx's 503 page is under
#: 200 bytes); a body longer or slower than this (a 5xx streaming without end) costs the
#: connection instead: urllib3 would read it to the end before retrying, forever.
DRAIN_MAX_BYTES: Final = 64 * 1024
DRAIN_MAX_SECONDS: Final = 1.0
_DRAIN_CHUNK: Final = 16 * 1024


def drain_or_close(
    response: BaseHTTPResponse,
    max_bytes: int = DRAIN_MAX_BYTES,
    max_seconds: float = DRAIN_MAX_SECONDS,
) -> None:
    # Read the rest of *response*'s body, up to *max_bytes* and *max_seconds*, so that
    # its connection can be reused; if the body goes on, close the response (and with it
    # the connection). Either way urllib3's own unbounded drain then finds nothing to read.
    # Each read returns what has arrived (``read1``), so the time bound holds for a
    # trickle too, give or take one read timeout.
    deadline = time.monotonic() + max_seconds
    drained = 0
    try:
        while drained <= max_bytes and time.monotonic() < deadline:
            chunk = response.read1(_DRAIN_CHUNK, decode_content=False)
            if not chunk:
                return
            drained += len(chunk)
    except Exception:  # a broken body: the connection is not worth keeping
        pass
    response.close()
    response.release_conn()  # the closed connection's slot goes back to its pool


class RetryPolicy(Retry):
    """keepwarm's retry policy: urllib3's ``Retry`` with safer defaults and three additions.

    Defaults: 3 retries in all; exponential backoff 0, 1, 2 s (``backoff_factor=0.5``,
    capped at ``backoff_max=10``); statuses 429/502/503/504 retried for idempotent methods
    only, honouring ``Retry-After``; the last response is returned, not an exception, once
    retries run out (``raise_on_status=False``), so the caller sees the real status.

    Additions:

    * ``retry_after_max`` (default 30 s): a ``Retry-After`` longer than this is not slept
      through; the response is returned at once, so one overloaded server cannot park a
      worker for the hours some servers ask for. (urllib3 >= 2.6.3 has a parameter of the
      same name that instead sleeps the maximum and retries; keepwarm's returns.)
    * ``retry_read_timeouts`` (default False): a read timeout means the server is slow,
      not gone; retrying it multiplies the time a caller waits. Set True to retry them
      (idempotent methods only, as always).
    * ``resend_stale`` (default True): the stale-connection resend, which is not a retry
      of this policy and is not counted against ``total``. A request sent on a *reused*
      keep-alive connection that the server had already closed (reset, or closed before
      any response) is resent once on a new connection when that is safe: an idempotent
      request that got no response, or any request that could not be written whole,
      with a body that can be sent again. It happens with ``total=0`` too, and with
      ``Session(max_retries=0)``; ``RetryPolicy(total=0, resend_stale=False)`` turns
      both off: every request is sent exactly once, as in plain requests. It is read
      from the session's ``max_retries`` (a plain urllib3 ``Retry`` keeps it on).

    Before a retry, the response's body is read (and dropped) only up to
    :data:`DRAIN_MAX_BYTES` or :data:`DRAIN_MAX_SECONDS`, then the connection is closed
    (:func:`drain_or_close`): urllib3 reads it to the end, which never comes for a 5xx
    that streams without end.

    A ``Retry-After`` that does not parse (``soon``, ``-1``, ``1.5``, ``120s``, ``²``, a
    date in the year 99999) is treated as absent: the retry waits the normal backoff.
    urllib3's own ``parse_retry_after`` raises ``InvalidHeader`` (or a bare
    ``ValueError``) there, which would turn the server's answer into an exception.
    """

    DEFAULT_ALLOWED_METHODS = IDEMPOTENT_METHODS

    def __init__(
        self,
        total: bool | int | None = 3,
        connect: int | None = None,
        read: int | None = None,
        redirect: bool | int | None = None,
        status: int | None = None,
        other: int | None = 0,
        allowed_methods: Collection[str] | None = IDEMPOTENT_METHODS,
        status_forcelist: Collection[int] | None = RETRY_STATUSES,
        backoff_factor: float = 0.5,
        backoff_max: float = 10.0,
        raise_on_redirect: bool = True,
        raise_on_status: bool = False,
        history: tuple[Any, ...] | None = None,
        respect_retry_after_header: bool = True,
        remove_headers_on_redirect: Collection[str] = Retry.DEFAULT_REMOVE_HEADERS_ON_REDIRECT,
        backoff_jitter: float = 0.0,
        *,
        retry_after_max: float = 30.0,
        retry_read_timeouts: bool = False,
        resend_stale: bool = True,
    ) -> None:
        super().__init__(
            total=total,
            connect=connect,
            read=read,
            redirect=redirect,
            status=status,
            other=other,
            allowed_methods=allowed_methods,
            status_forcelist=status_forcelist,
            backoff_factor=backoff_factor,
            backoff_max=backoff_max,
            raise_on_redirect=raise_on_redirect,
            raise_on_status=raise_on_status,
            history=history,
            respect_retry_after_header=respect_retry_after_header,
            remove_headers_on_redirect=remove_headers_on_redirect,
            backoff_jitter=backoff_jitter,
        )
        self.retry_after_max = check_seconds("retry_after_max", retry_after_max, allow_zero=True)
        self.retry_read_timeouts = bool(retry_read_timeouts)
        if not isinstance(resend_stale, bool):
            raise TypeError(
                f"resend_stale={resend_stale!r} is not valid: resend_stale must be True or False"
            )
        self.resend_stale = resend_stale

    def new(self, **kw: Any) -> RetryPolicy:
        kw.setdefault("retry_after_max", self.retry_after_max)
        kw.setdefault("retry_read_timeouts", self.retry_read_timeouts)
        kw.setdefault("resend_stale", self.resend_stale)
        new = super().new(**kw)
        assert isinstance(new, RetryPolicy)
        return new

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: Any = None,
    ) -> RetryPolicy:
        if isinstance(error, ReadTimeoutError) and not self.retry_read_timeouts:
            raise error.with_traceback(_stacktrace)
        if response is not None and self.respect_retry_after_header:
            retry_after = _uncapped_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None and retry_after > self.retry_after_max:
                # urllib3 hands the response back instead of raising when
                # raise_on_status is False, so the caller sees the 429/503 at once.
                if self.raise_on_status:
                    drain_or_close(response)
                raise MaxRetryError(
                    _pool,  # type: ignore[arg-type]  # urllib3 passes its pool here
                    url or "",
                    ResponseError(
                        f"Retry-After of {retry_after:g} s is longer than "
                        f"retry_after_max={self.retry_after_max:g} s; not retried"
                    ),
                )
        deadline = current_deadline()
        if deadline is not None:
            deadline.attempts += 1
        try:
            new = super().increment(method, url, response, error, _pool, _stacktrace)
        except MaxRetryError:
            if response is not None and self.raise_on_status:
                drain_or_close(response, max_seconds=_drain_seconds())
            raise
        assert isinstance(new, RetryPolicy)
        if deadline is not None and deadline.remaining() <= new.planned_wait(response):
            # The wait before the next attempt would reach the deadline: stop now instead
            # of sleeping into it. A retryable response is returned as it is (urllib3
            # hands it back when raise_on_status is False), an error raises.
            doing = deadline.retrying()
            if error is not None and deadline.remaining() <= 0:
                doing = doing_when(error, deadline)  # the attempt itself ran out
            elif error is not None:
                doing += f" (last: {type(error).__name__})"
            elif response is not None:
                doing += f" (last: HTTP {response.status})"
                if self.raise_on_status:
                    drain_or_close(response, max_seconds=_drain_seconds())
            raise MaxRetryError(
                _pool,  # type: ignore[arg-type]  # urllib3 passes its pool here
                url or "",
                DeadlineStop(doing),
            )
        if response is not None:
            drain_or_close(response, max_seconds=_drain_seconds())
        return new

    def planned_wait(self, response: BaseHTTPResponse | None = None) -> float:
        """Seconds :meth:`sleep` would wait before the next attempt (urllib3's rule: the
        response's ``Retry-After`` if honoured and given, else the backoff)."""
        if response is not None and self.respect_retry_after_header:
            retry_after = self.get_retry_after(response)
            if retry_after:
                return retry_after
        return self.get_backoff_time()

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        """urllib3's, but never past the call's deadline (``Timeout(total=...)``)."""
        deadline = current_deadline()
        if deadline is None:
            super().sleep(response)
            return
        wait = min(self.planned_wait(response), deadline.remaining())
        if wait > 0:
            time.sleep(wait)

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        """urllib3's, but None (so: the normal backoff) for a header that does not parse."""
        try:
            return super().get_retry_after(response)
        except (InvalidHeader, ValueError, OverflowError):
            return None

    def signature(self) -> tuple[Any, ...]:
        """The configuration as a comparable tuple (urllib3's Retry has no ``__eq__``)."""
        return (
            type(self).__name__,
            self.total,
            self.connect,
            self.read,
            self.status,
            self.other,
            frozenset(self.allowed_methods or ()),
            frozenset(self.status_forcelist or ()),
            self.backoff_factor,
            self.backoff_max,
            self.raise_on_status,
            self.respect_retry_after_header,
            self.retry_after_max,
            self.retry_read_timeouts,
            self.resend_stale,
        )

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RetryPolicy):
            return self.signature() == other.signature() and self.history == other.history
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.signature())

    def __repr__(self) -> str:
        return (
            f"RetryPolicy(total={self.total!r}, connect={self.connect!r}, "
            f"read={self.read!r}, status={self.status!r}, "
            f"backoff_factor={self.backoff_factor!r}, "
            f"status_forcelist={sorted(self.status_forcelist or ())!r}, "
            f"retry_after_max={self.retry_after_max!r}, "
            f"retry_read_timeouts={self.retry_read_timeouts!r}"
            + ("" if self.resend_stale else ", resend_stale=False")
            + ")"
        )


def _drain_seconds() -> float:
    # :data:`DRAIN_MAX_SECONDS`, or less when the call's deadline is nearer.
    deadline = current_deadline()
    if deadline is None:
        return DRAIN_MAX_SECONDS
    return max(0.0, min(DRAIN_MAX_SECONDS, deadline.remaining()))


def _uncapped_retry_after(header: str | None) -> float | None:
    # Seconds a ``Retry-After`` header asks for, without urllib3's cap (urllib3 >= 2.6.3
    # caps the value it returns at its own ``retry_after_max`` and then sleeps that long,
    # which would hide a longer request from RetryPolicy). None if absent or unparsable.
    if header is None:
        return None
    text = header.strip()
    if text.isascii() and text.isdigit():  # urllib3's rule is [0-9]+: not "²"
        return float(text)
    try:
        parsed = email.utils.parsedate_tz(text)
        if parsed is None:
            return None
        return max(0.0, email.utils.mktime_tz(parsed) - time.time())
    except (ValueError, OverflowError):  # "Fri, 31 Dec 99999 ...": year out of range
        return None


_RETRY_FIELDS: Final = (
    "total",
    "connect",
    "read",
    "redirect",
    "status",
    "other",
    "backoff_factor",
    "backoff_max",
    "backoff_jitter",
    "raise_on_redirect",
    "raise_on_status",
    "respect_retry_after_header",
)


def retry_signature(retry: Retry) -> tuple[Any, ...]:
    # Equal for two Retry objects configured alike (urllib3's Retry has no __eq__).
    if isinstance(retry, RetryPolicy):
        return retry.signature()
    return (
        type(retry).__qualname__,
        *(getattr(retry, name, None) for name in _RETRY_FIELDS),
        frozenset(retry.allowed_methods or ()),
        frozenset(retry.status_forcelist or ()),
    )
