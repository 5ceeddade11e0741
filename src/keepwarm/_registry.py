"""Process-wide named sessions, and ``install()`` for plain ``requests.get()`` calls.

``keepwarm.session(name)`` returns the same :class:`Session` to every caller in the
process: created once under a lock (double-checked, so the common path takes no lock),
rebuilt after it is closed, closed at interpreter exit, and given fresh connection pools
in a child after ``os.fork()`` (see ``Session._reset_after_fork``).
"""

from __future__ import annotations

import atexit
import functools
import os
import threading
from collections.abc import Mapping
from typing import Any, Final, NoReturn

import requests
import requests.api

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
from keepwarm._lifecycle import untrack
from keepwarm._session import Session, stats_of
from keepwarm._stats import Stats, merge_stats
from keepwarm._telemetry import Timings, timings_of
from keepwarm._upstream.hooks import REQUESTS_SESSION
from keepwarm._urls import redact_url

__all__ = ["close_all", "install", "installed", "session", "stats", "timings", "uninstall"]

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


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# install() ------------------------------------------------------------------------------

_installed: dict[str, Any] | None = None


def _make_request_function(name: str, original: Any) -> Any:
    @functools.wraps(original)
    def request(method: str, url: str, **kwargs: Any) -> requests.Response:
        cls = requests.sessions.Session
        if cls is not REQUESTS_SESSION:
            # A tool replaced the class requests.get() builds (requests-cache's
            # install_cache()): build that, as requests.get() would, on keepwarm's pools.
            return _request_with(cls, session(name), method, url, kwargs)
        # A fresh-state session per call, as requests.api.request builds, but riding the
        # shared session's connection pools instead of opening a new connection.
        with Session._sharing_transport(session(name)) as call_session:
            return call_session.request(method=method, url=url, **kwargs)

    request.__keepwarm_installed__ = True  # type: ignore[attr-defined]
    return request


def _request_with(
    cls: type[requests.Session], shared: Session, method: str, url: str, kwargs: dict[str, Any]
) -> requests.Response:
    """``requests.api.request`` with the session class a tool put in its place, its
    ``http://`` and ``https://`` sent through the shared session's transport (taken off
    again before the call's session is closed: the shared pools stay open)."""
    call_session = cls()
    prefixes = ("https://", "http://")
    replaced = [call_session.adapters.get(prefix) for prefix in prefixes]
    for prefix in prefixes:
        call_session.mount(prefix, shared.adapters[prefix])
    for old in replaced:
        if old is not None:
            old.close()
    try:
        return call_session.request(method=method, url=url, **kwargs)
    finally:
        for prefix in prefixes:
            call_session.adapters.pop(prefix, None)
        call_session.close()


def install(name: str = "default") -> None:
    """Make plain ``requests.request/get/post/...`` calls reuse keepwarm's connections.

    Covers every caller in the process that goes through ``requests.get`` and friends or
    ``requests.request``, third-party libraries included. Each call keeps the stateless
    semantics of ``requests.get``: it starts with no cookies, auth or extra headers, and
    nothing it receives is seen by the next call. What changes: connections are reused,
    and calls without a timeout get the shared session's default instead of none.

    The environment (proxies, netrc, CA bundle variables) is the shared session's
    snapshot, read when it was created: after changing it, call
    ``keepwarm.session(name).reload_environment()``. A shared session created with
    ``trust_env=False`` makes installed calls ignore the environment too.

    Not covered: code that builds its own ``requests.Session()``, and code that bound
    ``requests.api.request`` to a local name (``from requests.api import request``)
    before ``install()`` ran.
    """
    global _installed
    _check_name(name)
    with _lock:
        if _installed is not None:
            if _installed["name"] == name:
                return
            raise SessionConflictError(
                f"keepwarm.install() is already active with session {_installed['name']!r}; "
                f"call keepwarm.uninstall() before installing {name!r}."
            )
        original_api = requests.api.request
        original_top = requests.request
        replacement = _make_request_function(name, original_api)
        _installed = {"name": name, "api": original_api, "top": original_top}
        requests.api.request = replacement
        requests.request = replacement


def uninstall() -> None:
    """Undo :func:`install`: requests' own functions are put back exactly as they were."""
    global _installed
    with _lock:
        if _installed is None:
            return
        requests.api.request = _installed["api"]
        requests.request = _installed["top"]
        _installed = None


def installed() -> bool:
    """Whether :func:`install` is active."""
    return _installed is not None
