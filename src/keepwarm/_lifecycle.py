# The lifecycle guards: a session collected without ``close()``
# (:class:`UnclosedSessionWarning`), and sessions made per call
# (:class:`SessionChurnWarning`). ``docs/guards/unclosed-session.md`` and
# ``docs/guards/session-churn.md`` say what each catches and how to silence it.
#
# What each session pays, all of it outside the request path:
#
# * at construction, :func:`track`: the creation site (``call_site``, about 1 µs:
#   one frame looked at, two for a subclass's ``__init__``), a :class:`Life` and a
#   ``weakref.finalize`` (about 2 µs together, against about 190 µs for building the
#   session);
# * per request, ``Session.send`` adds one to ``Life.sent`` (an attribute increment);
# * at ``close()`` or collection, :func:`_ended`: one clock read, two comparisons and, for a
#   short-lived session, an append to its site's bounded deque.
#
# The churn rule (``docs/guards/session-churn.md`` gives the evidence): a session is
# *short-lived* when it sent one or two requests and ended (closed or collected) within
# :data:`CHURN_WINDOW` seconds of being created; :data:`CHURN_SESSIONS` short-lived sessions
# from one creation site ending within :data:`CHURN_WINDOW` seconds of each other is churn.
# A session that sent nothing opened no connection: it is neither a leak nor churn.
#
# Not tracked: shared sessions (``keepwarm.session()``: held by the registry, closed at
# exit), the per-call sessions of ``keepwarm.install()`` (they ride the shared pools: the
# fix, not the pitfall), sessions made with ``guards=False``, and, per class, sessions
# created inside ``keepwarm.silence(...)`` of that class (the creation scope is the one the
# user controls; the collector runs finalizers wherever it happens to be).

from __future__ import annotations

import collections
import time
import warnings
import weakref
from types import FrameType
from typing import Final

from keepwarm._exceptions import KeepwarmWarning, SessionChurnWarning, UnclosedSessionWarning
from keepwarm._guards import Site, call_site, on_forget, silenced, warn

__all__ = ["CHURN_SESSIONS", "CHURN_WINDOW", "UNTRACKED", "Life", "forget", "track", "untrack"]

#: Short-lived sessions from one site that make churn ...
CHURN_SESSIONS: Final = 10
#: ... when they end within this many seconds of each other (and each lived no longer).
CHURN_WINDOW: Final = 10.0
#: A session that sent more requests than this was reused: not churn.
CHURN_MAX_REQUESTS: Final = 2

_STRICT_NOTE: Final = (
    " (strict mode: raised as an exception where it can be; the garbage collector cannot "
    "raise, so this one is a warning)"
)


class Life:
    # What the lifecycle guards know about one session; never refers to it, so the
    # finalizer holding it does not keep the session alive.

    __slots__ = ("born", "churn", "finalizer", "how", "sent", "site", "strict")

    def __init__(self, site: Site, how: str, strict: bool, churn: bool) -> None:
        self.site = site
        self.how = how
        self.strict = strict
        self.churn = churn
        self.born = time.monotonic()
        #: Requests sent (``Session.send``, redirects' hops included); unlocked, so
        #: concurrent sends may lose a count: it only tells one or two from more.
        self.sent = 0
        self.finalizer: weakref.finalize[..., object] | None = None

    def closed(self) -> None:
        # The session was closed: no leak; maybe churn (strict mode raises it here).
        if self.finalizer is not None:
            self.finalizer.detach()
            self.finalizer = None
        _ended(self, collected=False)


#: The shared stand-in of sessions nothing is tracked for: ``send`` counts on it as on
#: any other (the count is never read), so the request path has no branch.
UNTRACKED: Final = Life(Site("?", 0, "?"), "untracked", strict=False, churn=False)

#: End times of the short-lived sessions of each creation site, newest last.
_ends: dict[tuple[str, int], collections.deque[float]] = {}


def track(session: object, frame: FrameType, *, how: str, strict: bool) -> Life:
    # Start tracking ``session`` (created or unpickled, ``how``), whose construction
    # was called from ``frame``; the caller checked ``guards``.
    quiet = silenced()
    unclosed = UnclosedSessionWarning not in quiet
    churn = SessionChurnWarning not in quiet
    if not (unclosed or churn):
        return UNTRACKED
    # A subclass's __init__ (class Client(keepwarm.Session)) is not where the session was
    # created: its caller is.
    f: FrameType | None = frame
    while f is not None and f.f_code.co_name == "__init__" and f.f_locals.get("self") is session:
        f = f.f_back
    life = Life(call_site(f or frame), how, strict, churn)
    if unclosed:
        finalizer = weakref.finalize(session, _ended, life, collected=True)
        # A session still referenced at exit is one held for the process, the fix: the
        # operating system closes its sockets.
        finalizer.atexit = False
        life.finalizer = finalizer
    return life


def untrack(life: Life) -> None:
    # Stop tracking (a shared session, which the registry holds and closes at exit).
    if life.finalizer is not None:
        life.finalizer.detach()
        life.finalizer = None
    life.churn = False


def _ended(life: Life, *, collected: bool) -> None:
    if collected:
        life.finalizer = None
        if life.sent:
            _report(
                UnclosedSessionWarning,
                f"a keepwarm.Session {life.how} at {life.site} was garbage-collected without "
                "close(): its pooled connections stayed open until then. Close it: "
                "`with keepwarm.Session() as s: ...` or `s.close()`; or use "
                "keepwarm.session() for a shared session held for the process.",
                life,
                can_raise=False,
            )
    if not life.churn or not 0 < life.sent <= CHURN_MAX_REQUESTS:
        return
    now = time.monotonic()
    if now - life.born > CHURN_WINDOW:
        return
    key = (life.site.filename, life.site.lineno)
    ends = _ends.get(key)
    if ends is None:
        ends = _ends.setdefault(key, collections.deque(maxlen=CHURN_SESSIONS))
    ends.append(now)
    # Only appends, never pops: a full deque stays full, so ends[0] cannot vanish under a
    # concurrent append (it may move to a newer time, which only shortens the span).
    if len(ends) < CHURN_SESSIONS:
        return
    span = now - ends[0]
    if span > CHURN_WINDOW:
        return
    _report(
        SessionChurnWarning,
        f"{CHURN_SESSIONS} keepwarm.Sessions {life.how} at {life.site} each sent at most "
        f"{CHURN_MAX_REQUESTS} requests and were closed or dropped within {span:.1f} s "
        f"(the guard's window is {CHURN_WINDOW:g} s): a session per call opens a new "
        "connection per call (TCP and TLS handshakes every time). Hold one "
        "keepwarm.Session for the process (or per worker), use keepwarm.session() for a "
        "shared one, or keepwarm.install() so plain requests.get() calls reuse connections.",
        life,
        can_raise=not collected,
    )


def _report(category: type[KeepwarmWarning], message: str, life: Life, *, can_raise: bool) -> None:
    site = life.site
    if not life.strict:
        warn(category, message, strict=False, site=site)
    elif can_raise:
        warn(category, message, strict=True, site=site)
    elif category not in silenced():
        # Strict, in a finalizer: an exception here would be printed and lost, so it is a
        # warning, every time (strict mode's rule), pointing at the creation site.
        warnings.warn_explicit(
            message + _STRICT_NOTE, category, site.filename, site.lineno, module=site.module
        )


def forget() -> None:
    # Count churn from zero again (``_guards.forget_sites()`` calls this).
    _ends.clear()


on_forget(forget)
