"""``keepwarm.install()``: code that is not keepwarm's reuses keepwarm's connections.

Two levels, both undone exactly by ``uninstall()``:

* ``install()`` replaces ``requests.request``/``requests.api.request`` (what
  ``requests.get()`` and friends call): each call gets a fresh-state session, as
  ``requests.api.request`` builds, that rides the shared session's pools.
* ``install(sessions=True)`` also wraps ``requests.Session.__init__``: a
  ``requests.Session`` (or a subclass) built afterwards, by anyone, gets a
  :class:`SharedTransport` on ``http://`` and ``https://`` in place of the two
  ``HTTPAdapter``\\ s requests gave it. Everything else about the session is its own:
  cookies, auth, headers, hooks, and any adapter its code mounts afterwards.

Both send through the shared session ``keepwarm.session(name)``'s transport (pools, TLS
contexts, idle expiry, stale-connection resend, fork reset, counters), so
``keepwarm.stats()`` counts them.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from typing import Any, Final

import requests
import requests.api
import requests.sessions
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest, Response

from keepwarm._config import NO_TIMEOUT
from keepwarm._exceptions import NoTimeoutWarning, SessionConflictError
from keepwarm._guards import silence
from keepwarm._registry import _check_name, _sessions, session
from keepwarm._session import Session, _is_load_test
from keepwarm._upstream.hooks import REQUESTS_SESSION

__all__ = ["SharedTransport", "install", "installed", "uninstall"]

log = logging.getLogger("keepwarm")

_SCHEMES: Final = ("https://", "http://")

#: What ``requests_defaults=True`` asks of the shared session: requests' own defaults,
#: no timeout and no retries (a dead keep-alive connection is still replaced once when
#: safe: that is connection work, not a retry; docs/api.md).
_REQUESTS_DEFAULTS: Final[dict[str, Any]] = {"timeout": NO_TIMEOUT, "max_retries": 0}


class _Installation:
    """One ``install()``: the shared session's name and what it was asked for."""

    __slots__ = ("name", "overrides", "sessions")

    def __init__(self, name: str, overrides: dict[str, Any], sessions: bool) -> None:
        self.name = name
        self.overrides = overrides
        self.sessions = sessions

    def shared(self) -> Session:
        """The shared session, built with the installation's settings if it was closed."""
        existing = _sessions.get(self.name)
        if existing is not None:
            return existing
        return session(self.name, **self.overrides)

    def calls(self) -> contextlib.AbstractContextManager[object]:
        """What installed calls run under: with ``requests_defaults=True`` no timeout is
        what was asked for, not a pitfall, so NoTimeoutWarning stays quiet."""
        return silence(NoTimeoutWarning) if self.overrides else contextlib.nullcontext()


_lock = threading.Lock()
_installed: _Installation | None = None
#: requests' own functions and ``Session.__init__`` while installed, to put back.
_originals: dict[str, Any] = {}


# requests.get() and friends ---------------------------------------------------------------


def _make_request_function(installation: _Installation, original: Any) -> Any:
    def send(method: str, url: str, kwargs: dict[str, Any]) -> requests.Response:
        cls = requests.sessions.Session
        if cls is not REQUESTS_SESSION:
            # A tool replaced the class requests.get() builds (requests-cache's
            # install_cache()): build that, as requests.get() would, on keepwarm's pools.
            return _request_with(cls, installation.shared(), method, url, kwargs)
        # A fresh-state session per call, as requests.api.request builds, but riding the
        # shared session's connection pools instead of opening a new connection.
        with Session._sharing_transport(installation.shared()) as call_session:
            return call_session.request(method=method, url=url, **kwargs)

    @functools.wraps(original)
    def request(method: str, url: str, **kwargs: Any) -> requests.Response:
        with installation.calls():
            return send(method, url, kwargs)

    request.__keepwarm_installed__ = True  # type: ignore[attr-defined]
    return request


def _request_with(
    cls: type[requests.Session], shared: Session, method: str, url: str, kwargs: dict[str, Any]
) -> requests.Response:
    """``requests.api.request`` with the session class a tool put in its place, its
    ``http://`` and ``https://`` sent through the shared session's transport (taken off
    again before the call's session is closed: the shared pools stay open)."""
    call_session = cls()
    replaced = [call_session.adapters.get(prefix) for prefix in _SCHEMES]
    for prefix in _SCHEMES:
        call_session.mount(prefix, shared.adapters[prefix])
    for old in replaced:
        if old is not None:
            old.close()
    try:
        return call_session.request(method=method, url=url, **kwargs)
    finally:
        for prefix in _SCHEMES:
            call_session.adapters.pop(prefix, None)
        call_session.close()


# Every requests.Session built while installed ------------------------------------------


class SharedTransport(HTTPAdapter):
    """The adapter ``install(sessions=True)`` mounts on ``http://`` and ``https://`` of a
    ``requests.Session`` built while it is active, in place of requests' own two.

    It sends through the shared session's transport (looked up per request, so a shared
    session closed and rebuilt, or reset after ``fork()``, is followed), and ``close()``
    leaves the shared pools open: closing one session must not close everyone's
    connections. It builds no pool manager of its own.

    Code that reads the adapter's attributes (``max_retries``, ``poolmanager``) sees the
    shared transport's. Code that *changes* one (``adapter.max_retries = Retry(5)``,
    ``adapter.init_poolmanager(...)``) asked for something of this session's own that a
    shared transport cannot honour, so the adapter becomes requests' own ``HTTPAdapter``
    for this session, with the change applied: the session then behaves exactly as under
    plain requests (its own connections), never silently ignoring the change.
    """

    # Not HTTPAdapter.__init__: no pool manager of its own is built.
    def __init__(self, installation: _Installation) -> None:
        object.__setattr__(self, "_keepwarm_installation", installation)
        object.__setattr__(self, "_keepwarm_own", None)

    _keepwarm_installation: _Installation
    _keepwarm_own: HTTPAdapter | None

    def _keepwarm_transport(self) -> Any:
        """The adapter requests go through now: the shared session's for the URL scheme's
        prefix, or this session's own once it took one."""
        own = self._keepwarm_own
        if own is not None:
            return own
        return self._keepwarm_installation.shared().adapters["https://"]

    def send(  # type: ignore[override]
        self, request: PreparedRequest, **kwargs: Any
    ) -> Response:
        own = self._keepwarm_own
        if own is not None:
            return own.send(request, **kwargs)
        installation = self._keepwarm_installation
        adapter = installation.shared().get_adapter(request.url or "")
        with installation.calls():
            return adapter.send(request, **kwargs)

    def close(self) -> None:
        own = self._keepwarm_own
        if own is not None:
            own.close()

    def _keepwarm_detach(self, why: str) -> HTTPAdapter:
        own = self._keepwarm_own
        if own is None:
            own = HTTPAdapter()
            object.__setattr__(self, "_keepwarm_own", own)
            log.debug(
                "install.detached name=%s: a session changed its adapter's %s; it uses "
                "requests' own HTTPAdapter from now on",
                self._keepwarm_installation.name,
                why,
            )
        return own

    def __getattr__(self, name: str) -> Any:
        # Only for attributes not found the usual way: HTTPAdapter's instance state
        # (max_retries, config, poolmanager, proxy_manager, _pool_*), read from the
        # adapter requests go through now.
        if name.startswith("_keepwarm"):
            raise AttributeError(name)
        return getattr(self._keepwarm_transport(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._keepwarm_detach(name), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._keepwarm_detach(name), name)

    def __getstate__(self) -> dict[str, Any]:
        installation = self._keepwarm_installation
        return {
            "name": installation.name,
            "overrides": installation.overrides,
            "own": self._keepwarm_own,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Unpickled elsewhere (another process): the shared session of that name there.
        installation = _Installation(state["name"], state["overrides"], sessions=True)
        object.__setattr__(self, "_keepwarm_installation", installation)
        object.__setattr__(self, "_keepwarm_own", state["own"])

    def __repr__(self) -> str:
        name = self._keepwarm_installation.name
        if self._keepwarm_own is not None:
            return (
                f"<SharedTransport of keepwarm.session({name!r}), detached: {self._keepwarm_own!r}>"
            )
        return f"<SharedTransport of keepwarm.session({name!r})>"


def _adopt(session: requests.Session, installation: _Installation) -> None:
    """Swap the two adapters requests' ``Session.__init__`` just mounted for shared ones."""
    if isinstance(session, Session) or _is_load_test(session):
        # keepwarm's own sessions have their transport; a load test's simulated users
        # each keep their own connections, as they would as separate clients.
        return
    adapters = session.adapters
    # The class requests' __init__ builds now (a tool may have put its own there).
    default = getattr(requests.sessions, "HTTPAdapter", HTTPAdapter)
    replaced = []
    for prefix in _SCHEMES:
        adapter = adapters.get(prefix)
        if type(adapter) is default:
            adapters[prefix] = SharedTransport(installation)
            replaced.append(adapter)
    for adapter in replaced:
        adapter.close()


def _make_session_init(original: Any) -> Any:
    @functools.wraps(original)
    def __init__(self: requests.Session, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        installation = _installed
        if installation is not None and installation.sessions:
            _adopt(self, installation)

    __init__.__keepwarm_installed__ = True  # type: ignore[attr-defined]
    return __init__


# install() / uninstall() ------------------------------------------------------------------


def install(
    name: str = "default", *, sessions: bool = False, requests_defaults: bool = False
) -> None:
    """Make plain ``requests.request/get/post/...`` calls reuse keepwarm's connections;
    with ``sessions=True``, every ``requests.Session()`` built afterwards too.

    Covers every caller in the process, third-party libraries included. Both send
    through the shared session ``keepwarm.session(name)``'s transport: its pools, TLS
    contexts, idle expiry, fork safety and counters (``keepwarm.stats()``).

    * ``requests.get()`` and friends keep their stateless semantics: each call starts
      with no cookies, auth or extra headers, and nothing it receives is seen by the next
      call.
    * ``sessions=True``: a ``requests.Session`` (or subclass) built after this call gets a
      :class:`SharedTransport` on ``http://`` and ``https://`` instead of requests' two
      ``HTTPAdapter``\\ s, and keeps its own cookies, auth, headers, hooks and any adapter
      its code mounts itself. Sessions built before, ``keepwarm.Session``\\ s and locust's
      ``HttpSession`` (each simulated user keeps its own connections) are left alone.

    What changes for the code covered: connections are reused, and calls without a
    timeout get the shared session's default (``(3, 7)`` s unless configured) and its
    retry policy (3 retries of idempotent requests) instead of requests' none.
    ``requests_defaults=True`` keeps requests' defaults instead (no timeout, no retries;
    a dead keep-alive connection is still replaced once when safe), by building the
    shared session with ``timeout=NO_TIMEOUT, max_retries=0``: it raises
    :class:`SessionConflictError` if ``keepwarm.session(name)`` already exists with other
    settings.

    The environment (proxies, netrc, CA bundle variables) of ``requests.get()`` calls is
    the shared session's snapshot, read when it was created (call
    ``keepwarm.session(name).reload_environment()`` after changing it); sessions covered
    by ``sessions=True`` read it as requests does, per request.

    Installing again with the same name adds what is asked (``sessions=True`` after a
    plain ``install()``) and never takes anything away; another name, or other defaults,
    raise :class:`SessionConflictError`: call ``keepwarm.uninstall()`` first.

    Not covered: code that bound ``requests.api.request`` to a local name (``from
    requests.api import request``) before ``install()`` ran.
    """
    global _installed
    _check_name(name)
    for keyword, value in (("sessions", sessions), ("requests_defaults", requests_defaults)):
        if not isinstance(value, bool):
            raise TypeError(f"{keyword}={value!r} is not valid: it must be True or False")
    overrides = dict(_REQUESTS_DEFAULTS) if requests_defaults else {}
    with _lock:
        current = _installed
        if current is not None:
            if current.name != name or current.overrides != overrides:
                raise SessionConflictError(
                    f"keepwarm.install() is already active with session {current.name!r}"
                    f"{' and requests_defaults=True' if current.overrides else ''}; call "
                    f"keepwarm.uninstall() before installing {name!r}"
                    f"{' with requests_defaults=True' if overrides else ''}."
                )
            if sessions and not current.sessions:
                current.sessions = True
                _wrap_session_init()
            return
        if overrides:
            # Built now, so a conflict with an existing shared session shows here.
            session(name, **overrides)
        installation = _Installation(name, overrides, sessions)
        _originals["api"] = requests.api.request
        _originals["top"] = requests.request
        replacement = _make_request_function(installation, requests.api.request)
        _installed = installation
        requests.api.request = replacement
        requests.request = replacement
        if sessions:
            _wrap_session_init()


def _wrap_session_init() -> None:
    original = REQUESTS_SESSION.__dict__["__init__"]
    _originals["session_init"] = original
    REQUESTS_SESSION.__init__ = _make_session_init(original)  # type: ignore[method-assign]


def uninstall() -> None:
    """Undo :func:`install`: requests' own functions and ``Session.__init__`` are put back,
    the identical objects. Sessions built while installed keep their shared transport
    (they go on working; a session is never changed under its owner)."""
    global _installed
    with _lock:
        if _installed is None:
            return
        requests.api.request = _originals.pop("api")
        requests.request = _originals.pop("top")
        original_init = _originals.pop("session_init", None)
        if original_init is not None:
            current = REQUESTS_SESSION.__dict__["__init__"]
            if getattr(current, "__keepwarm_installed__", False):
                REQUESTS_SESSION.__init__ = original_init  # type: ignore[method-assign]
            else:
                # A tool wrapped __init__ after install(): taking ours out from under it
                # would drop its wrapper. Ours stays in its chain and, with _installed
                # None, only calls requests' own __init__.
                log.debug("install.uninstall: requests.Session.__init__ was wrapped again")
        _installed = None


def installed() -> bool:
    """Whether :func:`install` is active."""
    return _installed is not None
