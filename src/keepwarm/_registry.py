"""Process-wide named sessions (``install()`` is in ``_install``).

``keepwarm.session(name)`` returns the same :class:`Session` to every caller in the
process: created once under a lock (double-checked, so the common path takes no lock),
rebuilt after it is closed, closed at interpreter exit, and given fresh connection pools
in a child after ``os.fork()`` (see ``Session._reset_after_fork``).
"""

from __future__ import annotations

import atexit
import functools
import threading
from collections.abc import Mapping
from typing import Any, Final, NoReturn

import requests

from keepwarm._config import (
    SETTING_NAMES,
    STATE_OPTIONS,
    UNSET,
    AuthTypes,
    CertTypes,
    CookiesTypes,
    HeadersTypes,
    ParamsTypes,
    PoolMaxsize,
    ProxiesTypes,
    RetryTypes,
    TimeoutTypes,
    VerifyTypes,
    _Unset,
    check_setting_names,
    resolve_settings,
)
from keepwarm._exceptions import SessionConflictError
from keepwarm._forks import after_fork_in_child
from keepwarm._lifecycle import untrack
from keepwarm._session import Session, stats_of
from keepwarm._stats import Stats, merge_stats
from keepwarm._telemetry import Timings, timings_of
from keepwarm._urls import redact_url

__all__ = ["close_all", "session", "stats", "timings"]

_lock = threading.Lock()
_sessions: dict[str, Session] = {}
#: What each shared session was asked for, to tell a repeated request from a conflict.
_requested: dict[str, dict[str, Any]] = {}
#: Every keyword of session() but the name (a KeyError in session() means one was added to
#: _config without being added to session()'s signature).
_KEYWORDS: Final = (*SETTING_NAMES, *STATE_OPTIONS)


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f"name={name!r} is not valid: a session name must be a non-empty string")
    return name


def _conflicts(name: str, existing: Session, overrides: dict[str, Any]) -> None:
    tuning = {k: v for k, v in overrides.items() if k in SETTING_NAMES}
    wanted = resolve_settings(tuning, f"keepwarm.session({name!r})")
    differing = existing.settings.differences(wanted, tuning)
    asked_before = _requested.get(name, {})
    differing += [
        k
        for k in overrides
        if k not in SETTING_NAMES
        and _state_value(k, asked_before.get(k)) != _state_value(k, overrides[k])
    ]
    if differing:
        details = ", ".join(
            _describe(k, asked_before.get(k), overrides[k], existing) for k in differing
        )
        raise SessionConflictError(
            f"keepwarm.session({name!r}) already exists with other settings; asked for "
            f"{details}. Use another name for a differently tuned session, call "
            f"keepwarm.session({name!r}) without settings to get the existing one, or "
            f"close it first (keepwarm.session({name!r}).close())."
        )


#: State keywords whose values carry secrets (bearer tokens, passwords, API keys, session
#: cookies, proxy credentials): a conflict names what differs, never a value.
_MAPPING_STATE: Final = frozenset({"headers", "cookies", "params", "proxies"})


def _describe(key: str, before: object, asked: object, existing: Session) -> str:
    """One differing keyword as a conflict message shows it, without secret values."""
    if key == "auth":
        return "auth (values not shown)"
    if key in _MAPPING_STATE:
        names = _differing_names(key, _state_value(key, before), _state_value(key, asked))
        listed = f"{', '.join(names)}; " if names else ""
        return f"{key} ({listed}values not shown)"
    if key == "base_url":
        mine, theirs = (v if v is None else redact_url(str(v)) for v in (asked, existing.base_url))
        return f"base_url={mine!r} (it has {theirs!r})"
    return f"{key}={asked!r} (it has {_current(existing, key)!r})"


def _differing_names(key: str, before: object, asked: object) -> list[str]:
    """The names (header, cookie, parameter names, proxy keys) whose values differ."""
    if not isinstance(before, Mapping) or not isinstance(asked, Mapping):
        return []  # a cookie jar: its cookies are not listed
    fold = (lambda n: str(n).lower()) if key == "headers" else str
    old = {fold(n): (str(n), v) for n, v in before.items()}
    new = {fold(n): (str(n), v) for n, v in asked.items()}
    return sorted(
        (new.get(n) or old[n])[0]
        for n in old.keys() | new.keys()
        if old.get(n, (None, None))[1] != new.get(n, (None, None))[1]
    )


#: What a Session gets for each state keyword that is not given.
_STATE_DEFAULTS: dict[str, object] = {
    "headers": {},
    "cookies": {},
    "auth": None,
    "params": {},
    "proxies": {},
    "verify": True,
    "cert": None,
    "trust_env": True,
}


def _state_value(key: str, value: object) -> object:
    """A state keyword's value as the Session applies it (None means not given)."""
    return _STATE_DEFAULTS[key] if value is None else value


def _current(session: Session, key: str) -> object:
    if key in SETTING_NAMES:
        return getattr(session.settings, key)
    return getattr(session, key, None)


def session(
    name: str = "default",
    *,
    timeout: TimeoutTypes | _Unset = UNSET,
    pool_connections: int | _Unset = UNSET,
    pool_maxsize: PoolMaxsize | _Unset = UNSET,
    pool_block: bool | _Unset = UNSET,
    pool_timeout: float | _Unset = UNSET,
    max_retries: RetryTypes | _Unset = UNSET,
    base_url: str | _Unset | None = UNSET,
    telemetry: bool | _Unset = UNSET,
    keepalive_expiry: float | _Unset | None = UNSET,
    max_connection_age: float | _Unset | None = UNSET,
    guards: bool | _Unset = UNSET,
    strict: bool | _Unset = UNSET,
    http2: bool | _Unset = UNSET,
    headers: HeadersTypes | _Unset | None = UNSET,
    cookies: CookiesTypes | _Unset | None = UNSET,
    auth: AuthTypes | _Unset | None = UNSET,
    params: ParamsTypes | _Unset | None = UNSET,
    proxies: ProxiesTypes | _Unset | None = UNSET,
    verify: VerifyTypes | _Unset = UNSET,
    cert: CertTypes | _Unset | None = UNSET,
    trust_env: bool | _Unset = UNSET,
    **unknown: NoReturn,
) -> Session:
    """The process-wide shared session called ``name``, created on first use.

    The keywords are :class:`Session`'s, used when the session is created; only the ones
    given count. Asking again with settings that differ from the existing session's raises
    :class:`SessionConflictError` rather than silently handing back a session tuned
    differently from what the caller asked for.
    """
    existing = _sessions.get(name)
    # The common call, with no keywords, builds nothing and takes no lock (install() makes
    # one per request); order does not matter here, only that every keyword is listed.
    # Identity, not ==: a value whose __eq__ says yes to anything (mock.ANY) is given.
    given = (
        timeout,
        pool_connections,
        pool_maxsize,
        pool_block,
        pool_timeout,
        max_retries,
        base_url,
        telemetry,
        keepalive_expiry,
        max_connection_age,
        guards,
        strict,
        http2,
        headers,
        cookies,
        auth,
        params,
        proxies,
        verify,
        cert,
        trust_env,
    )
    if existing is not None and not unknown and all(value is UNSET for value in given):
        return existing
    arguments = locals()
    overrides: dict[str, Any] = {
        key: arguments[key] for key in _KEYWORDS if arguments[key] is not UNSET
    }
    # Typed NoReturn so type checkers flag a misspelt keyword; at run time it gets a hint.
    overrides.update(unknown)
    _check_name(name)
    check_setting_names(overrides, f"keepwarm.session({name!r})", extra=STATE_OPTIONS)
    with _lock:
        existing = _sessions.get(name)
        if existing is not None:
            if overrides:
                _conflicts(name, existing, overrides)
            return existing
        created = Session(**overrides)
        # Held here and closed at exit: never a leak, never churn.
        untrack(created._life)
        created._on_close = functools.partial(_forget, name)
        _sessions[name] = created
        _requested[name] = dict(overrides)
        return created


def _forget(name: str, closed: Session) -> None:
    with _lock:
        if _sessions.get(name) is closed:
            del _sessions[name]
            _requested.pop(name, None)


def stats(session: requests.Session | None = None) -> Stats:
    """Counters of every shared session (and of ``install()``-ed calls), per origin; or,
    given a session, of that one: a ``keepwarm.Session`` or one that
    :func:`keepwarm.mount` gave keepwarm's transport."""
    if session is not None:
        return stats_of(session)
    with _lock:
        sessions = list(_sessions.values())
    return merge_stats(s.stats() for s in sessions)


def timings(response: requests.Response) -> Timings | None:
    """Where the time of this response went (DNS, connect, TLS, send, wait, receive).

    None for a response that did not come through a keepwarm session with telemetry on.
    """
    return timings_of(response)


def close_all() -> None:
    """Close every shared session; the next ``keepwarm.session()`` call builds a new one."""
    with _lock:
        sessions = list(_sessions.values())
    for s in sessions:
        s.close()


atexit.register(close_all)


def _after_fork_in_child() -> None:
    # The parent may have held the lock while forking; the child has one thread now.
    global _lock
    _lock = threading.Lock()


after_fork_in_child(_after_fork_in_child)
