# ``keepwarm.Session``: a ``requests.Session`` with finite timeouts and a shareable transport.
#
# Everything requests code does with a ``requests.Session`` works the same; the differences
# are the ones a long-running, threaded, forking process needs:
#
# * every request has a timeout, ``(3, 7)`` s unless configured (``None`` means "the
#   session's default"; ``keepwarm.NO_TIMEOUT`` is the explicit way to wait forever);
# * pools sized for thread pools, bounded pool waits, safe retries, shared SSL contexts
#   (see ``_upstream.transport``);
# * the environment (proxies, ``NO_PROXY``, netrc, CA bundle variables) is read when the
#   session is created, not on every request; ``reload_environment()`` reads it again;
# * an explicit ``session.verify`` is not overridden by ``REQUESTS_CA_BUNDLE``; in plain
#   requests the environment variable wins over the session attribute (requests 3829);
# * ``mount()`` is safe while other threads send requests (requests 6366);
# * the cookie jar is safe to share between threads (see ``_upstream.cookies``);
# * a closed session raises :class:`SessionClosedError` instead of silently reconnecting;
# * after ``os.fork()`` the child opens its own connections.
#
# requests' own request path, which keepwarm copies and trims, lives behind the fence in
# ``keepwarm._upstream.session.RequestsSessionBase``; this module holds what keepwarm adds
# (knobs, default timeout, lifecycle) and reaches the copy through ``_join_url`` (base_url).

from __future__ import annotations

import functools
import re
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from http import cookiejar
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeGuard, TypeVar

import requests
import requests.utils
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest, Response
from requests.structures import CaseInsensitiveDict
from urllib3.util import Timeout as Urllib3Timeout

from keepwarm._config import (
    SETTING_NAMES,
    STATE_OPTIONS,
    UNSET,
    AuthTypes,
    CertTypes,
    CookiesTypes,
    HeadersTypes,
    NoTimeout,
    ParamsTypes,
    PoolMaxsize,
    ProxiesTypes,
    RetryTypes,
    Settings,
    Timeout,
    TimeoutTypes,
    VerifyTypes,
    _Unset,
    call_timeout,
    check_setting_names,
    resolve_settings,
    urllib3_timeout,
    validate,
)
from keepwarm._forks import after_fork_in_child

# Binds the package's name too: Session.stats() is annotated with the public keepwarm.Stats,
# which typing.get_type_hints (pydantic, FastAPI, typer...) resolves through the package's
# lazy attributes, loading keepwarm._stats then, not with every session (issue 16: memory).
import keepwarm._values  # isort: skip

# hooks captures requests' and urllib3's own functions, to tell when a tool has replaced
# them: it loads with keepwarm, before a test's mock or a tracer can replace them.
from keepwarm._upstream.hooks import REQUESTS_SEND, REQUESTS_SESSION
from keepwarm._upstream.session import RequestsSessionBase, reset_adapter_after_fork
from keepwarm._upstream.session import load_machinery as _load_upstream_machinery

if TYPE_CHECKING:
    # Bound by load_machinery() below, at run time.
    from keepwarm._deadline import enter_deadline, leave_deadline
    from keepwarm._exceptions import (
        ConcurrentMutationWarning,
        HeaderOverrideWarning,
        SessionClosedError,
    )
    from keepwarm._guards import warn
    from keepwarm._lifecycle import UNTRACKED, Life, track
    from keepwarm._upstream.cookies import ThreadSafeCookieJar, scope_cookies
    from keepwarm._upstream.environment import EnvironmentSnapshot
    from keepwarm._upstream.prepare import SessionHeaders
    from keepwarm._upstream.transport import KeepwarmAdapter
    from keepwarm._urls import redact_url

__all__ = ["Session", "load_machinery", "mount", "stats_of", "transports_of"]

_machinery_loaded = False


def load_machinery() -> None:
    # Import what a live session uses and bind it here, once: the guards and the
    # lifecycle tracking, cookies, the environment snapshot, request preparation, the
    # total-timeout deadline, keepwarm's exceptions (and, through
    # ``_upstream.session.load_machinery``, the same for requests' copied request path).
    #
    # Called by every way a session comes to exist (``__init__``, unpickling; the
    # per-call sessions of ``_sharing_transport`` ride a session that did), before
    # anything else they do; ``Session``'s methods run only on a session, so they always
    # find the names bound. Defining the class needs none of it, and importing it was a
    # third of what ``from keepwarm import Session`` added to ``import requests`` (issue
    # 16, docs/PERFORMANCE.md): a program that imports keepwarm and sends nothing on a
    # given run (a command-line tool's ``--help``) need not pay it, and one that makes a
    # session pays it there instead. Idempotent, and safe from several threads: the
    # imports take the import lock, every thread binds the same objects, and the flag is
    # set only once every name is bound (a test fails if it is set first).
    global _machinery_loaded, enter_deadline, leave_deadline, warn, UNTRACKED, Life, track
    global ConcurrentMutationWarning, HeaderOverrideWarning, SessionClosedError
    global ThreadSafeCookieJar, scope_cookies, EnvironmentSnapshot, SessionHeaders, redact_url
    if _machinery_loaded:
        return
    _load_upstream_machinery()
    from keepwarm._deadline import enter_deadline, leave_deadline
    from keepwarm._exceptions import (
        ConcurrentMutationWarning,
        HeaderOverrideWarning,
        SessionClosedError,
    )
    from keepwarm._guards import warn
    from keepwarm._lifecycle import UNTRACKED, Life, track
    from keepwarm._upstream.cookies import ThreadSafeCookieJar, scope_cookies
    from keepwarm._upstream.environment import EnvironmentSnapshot
    from keepwarm._upstream.prepare import SessionHeaders
    from keepwarm._urls import redact_url

    _machinery_loaded = True


_TRANSPORT_MODULE: Final = "keepwarm._upstream.transport"
_TELEMETRY_MODULE: Final = "keepwarm._telemetry"


@functools.cache
def _absolute_url() -> re.Pattern[str]:
    # A URL with a scheme: compiled on first use, not at import (~65 us that only a
    # session with base_url needs), and kept (re.match would look it up in re's cache on
    # every request, 180 ns more).
    return re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def _transport_class() -> type[KeepwarmAdapter]:
    # keepwarm's transport, loaded by the first session rather than by ``import``: the
    # transport stack (``_upstream.transport``, ``pool``, ``connection``, ``wire``,
    # ``tls``, and the live counters, ``_telemetry``) was over a third of what importing
    # keepwarm added to importing requests (counted in instructions), which a program that
    # imports keepwarm and sends nothing on a given run (a command-line tool's ``--help``)
    # need not pay.
    from keepwarm._upstream.transport import KeepwarmAdapter

    return KeepwarmAdapter


def _is_transport(adapter: object) -> TypeGuard[KeepwarmAdapter]:
    # Whether ``adapter`` is keepwarm's transport (none exists before it is loaded).
    transport = sys.modules.get(_TRANSPORT_MODULE)
    return transport is not None and isinstance(adapter, transport.KeepwarmAdapter)


#: Every session alive in this process, so a forked child can reset them all.
_live_sessions: weakref.WeakSet[Session] = weakref.WeakSet()


class Session(RequestsSessionBase):
    """A ``requests.Session`` tuned for reuse: finite timeouts, big enough pools, retries.

    Tuning knobs (keyword-only; unset ones come from ``keepwarm.configure()``, then
    ``KEEPWARM_*`` variables, then the defaults documented in ``docs/configuration.md``):

    :param timeout: seconds, ``(connect, read)``, :class:`keepwarm.Timeout` (its
        ``total=`` bounds the whole call, retries and redirects included), or
        :data:`keepwarm.NO_TIMEOUT`. Default ``(3, 7)``, no total.
    :param pool_connections: how many hosts keep a pool of idle connections. Default 32.
    :param pool_maxsize: idle connections kept per host. Default 32.
    :param pool_block: wait for a free connection instead of opening an extra one that is
        thrown away afterwards. Default False.
    :param pool_timeout: with ``pool_block``, the longest wait for a free connection
        before :class:`keepwarm.PoolTimeout`. Default 10 s.
    :param max_retries: a number of retries, a :class:`keepwarm.RetryPolicy` or a urllib3
        ``Retry``; 0 turns the policy's retries off. Default ``RetryPolicy()``: 3 retries,
        idempotent methods only once a request may have been sent. Separate from these,
        a request that finds its reused keep-alive connection dead is resent once on a
        new one when safe (``stale_retries``), with 0 too;
        ``RetryPolicy(total=0, resend_stale=False)`` sends every request once.
    :param base_url: prefix for relative URLs (``session.get("users")``); a relative URL
        never leaves its host (``"//other.example/x"`` is a path under it).
    :param telemetry: count connections and time requests (``session.stats()``,
        ``keepwarm.timings(response)``). Default True.
    :param keepalive_expiry: close pooled connections idle longer than this many seconds
        (shortened by a server's ``Keep-Alive: timeout=N``); None keeps them until the
        server closes them. Default 4 s.
    :param max_connection_age: close connections older than this many seconds at their
        next use; None for no limit. Default None.
    :param guards: check for the silent pitfalls of session reuse and warn about them
        (``docs/guards/``). Default True.
    :param strict: raise the guards' warnings as exceptions. Default False.
    :param http2: offer HTTP/2 by ALPN on HTTPS connections; a server that answers with
        HTTP/1.1 gets HTTP/1.1, remembered per origin (``docs/http2.md``). Needs the h2
        package (``pip install keepwarm[http2]``). Default False.

    Session state, as attributes of ``requests.Session`` (given here for convenience):
    ``headers`` (added to requests' defaults), ``cookies``, ``auth``, ``params``,
    ``proxies``, ``verify``, ``cert``, ``trust_env``.
    """

    _settings: Settings
    _environment: EnvironmentSnapshot
    _default_timeout: Urllib3Timeout
    _default_total: float | None
    _closed: bool
    _owns_transport: bool
    _mount_lock: threading.Lock
    _on_close: Callable[[Session], None] | None
    _life: Life

    def __init__(
        self,
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
        headers: HeadersTypes | None = None,
        cookies: CookiesTypes | None = None,
        auth: AuthTypes | None = None,
        params: ParamsTypes | None = None,
        proxies: ProxiesTypes | None = None,
        verify: VerifyTypes = True,
        cert: CertTypes | None = None,
        trust_env: bool = True,
        **unknown: NoReturn,
    ) -> None:
        arguments = locals()
        load_machinery()
        if unknown:
            _check_mixed_in(type(self), unknown)
            # Python's own "unexpected keyword argument" gives no hint; a misspelt knob
            # deserves one. Typed NoReturn so type checkers flag it before it runs.
            check_setting_names(unknown, "keepwarm.Session()", extra=STATE_OPTIONS)
        # Every tuning knob is a keyword of this signature (a KeyError here means one was
        # added to _config without being added above).
        given = {name: arguments[name] for name in SETTING_NAMES if arguments[name] is not UNSET}
        settings = resolve_settings(given, "keepwarm.Session()")
        self._init_requests_state(guards=settings.guards, strict=settings.strict)
        self._init_keepwarm_state(settings, trust_env=trust_env)
        adapter = _transport_class()(settings)
        self.mount("https://", adapter)
        self.mount("http://", adapter)
        self._apply_state(headers, cookies, auth, params, proxies, verify, cert, trust_env)
        _live_sessions.add(self)
        if settings.guards:
            # Where it was created, for the lifecycle guards (about 1 µs, once).
            self._life = track(self, sys._getframe(1), how="created", strict=settings.strict)

    # Construction helpers --------------------------------------------------------------

    def _init_keepwarm_state(
        self,
        settings: Settings,
        *,
        trust_env: bool,
        environment: EnvironmentSnapshot | None = None,
        owns_transport: bool = True,
    ) -> None:
        self._settings = settings
        self._default_timeout = urllib3_timeout(settings.timeout)
        self._default_total = settings.timeout.total
        if environment is None:
            environment = (
                EnvironmentSnapshot.capture() if trust_env else EnvironmentSnapshot.empty()
            )
        self._environment = environment
        self._closed = False
        self._owns_transport = owns_transport
        self._mount_lock = threading.Lock()
        self._on_close = None
        #: Threads with a request of this session in flight (thread id -> depth), kept
        #: while guards are on, for ConcurrentMutationWarning.
        self._senders: dict[int, int] = {}
        self._life = UNTRACKED

    def _apply_state(
        self,
        headers: Mapping[str, str] | None,
        cookies: Mapping[str, str] | cookiejar.CookieJar | None,
        auth: Any,
        params: Mapping[str, Any] | None,
        proxies: Mapping[str, str] | None,
        verify: bool | str,
        cert: str | tuple[str, str] | None,
        trust_env: bool,
    ) -> None:
        if headers is not None:
            self.headers.update(headers)
        if cookies is not None:
            if isinstance(cookies, cookiejar.CookieJar):
                for cookie in cookies:
                    self.cookies.set_cookie(cookie)
            elif self._settings.base_url is None:
                raise ValueError(
                    "cookies={...} as a dict needs base_url= to know which host the cookies "
                    "belong to: requests would send domain-less cookies to every host. Pass "
                    "base_url, or a CookieJar whose cookies have domains "
                    "(session.cookies.set(name, value, domain='api.example.com'))."
                )
            else:
                self.cookies.update(scope_cookies(cookies, self._settings.base_url))
        self.auth = auth
        if params is not None:
            self.params = dict(params)
        if proxies is not None:
            self.proxies = dict(proxies)
        if not isinstance(verify, (bool, str)):
            raise TypeError(
                f"verify={verify!r} is not valid: verify must be True, False or the path "
                "of a CA bundle file or directory"
            )
        self.verify = verify
        self.cert = cert
        if not isinstance(trust_env, bool):
            raise TypeError(
                f"trust_env={trust_env!r} is not valid: trust_env must be True or False"
            )
        self.trust_env = trust_env

    @classmethod
    def _sharing_transport(cls, owner: Session) -> Session:
        # A fresh-state session (no cookies, auth or extra headers) that rides
        # ``owner``'s connection pools; closing it leaves the pools open. Used by
        # ``keepwarm.install()`` to give every ``requests.get()`` call requests' stateless
        # semantics without a new connection per call.
        self = cls.__new__(cls)
        self._init_requests_state()
        self._init_keepwarm_state(
            owner._settings,
            trust_env=owner.trust_env,
            environment=owner._environment,
            owns_transport=False,
        )
        # Whether to trust the environment is the owner's configuration, not call state.
        self.trust_env = owner.trust_env
        self.adapters = owner.adapters
        return self

    # Session state changed under other threads' requests ------------------------------

    @property  # type: ignore[override]
    def headers(self) -> CaseInsensitiveDict[str | bytes]:
        return self._headers

    @headers.setter
    def headers(self, value: CaseInsensitiveDict[str | bytes]) -> None:
        self._check_mutation("session.headers")
        if type(value) is CaseInsensitiveDict:
            value = SessionHeaders(value, weakref.WeakMethod(self._check_mutation))
        self._headers = value

    @property
    def auth(self) -> Any:
        return self._auth

    @auth.setter
    def auth(self, value: Any) -> None:
        self._check_mutation("session.auth")
        self._auth = value

    def _check_mutation(self, what: str) -> None:
        # ConcurrentMutationWarning when other threads have requests of this session in
        # flight: whether those requests carry the change is a race.
        senders = getattr(self, "_senders", None)
        if not senders or not self._settings.guards:
            return
        me = threading.get_ident()
        others = sum(1 for thread in list(senders) if thread != me)
        if others:
            warn(
                ConcurrentMutationWarning,
                f"{what} changed while {others} other thread(s) had requests of this session "
                "in flight: which of their requests carry the change is a race, and a "
                "request may be sent with half of it. Set session state before sharing the "
                "session between threads, or give per-request values (headers=, auth=) "
                "instead.",
                strict=self._settings.strict,
            )

    # Public properties ---------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The resolved tuning knobs of this session (read-only)."""
        return self._settings

    @property
    def base_url(self) -> str | None:
        """Prefix for relative URLs; settable (checked as the ``base_url=`` knob)."""
        return self._settings.base_url

    @base_url.setter
    def base_url(self, value: str | None) -> None:
        checked = validate({"base_url": value}, "session.base_url")["base_url"]
        self._settings = self._settings.__replace__(base_url=checked)

    @property
    def timeout(self) -> Timeout | NoTimeout:
        """The timeout applied to requests that do not give one."""
        return self._settings.timeout

    @property
    def closed(self) -> bool:
        return self._closed

    def stats(self) -> keepwarm.Stats:
        """Counters of this session's connections, per origin: ``str()`` it for a table,
        ``.as_dict()`` for machines, ``.advice()`` for settings to change."""
        return stats_of(self)

    def reset_stats(self) -> None:
        """Count from zero again (connections and pools are untouched)."""
        for adapter in transports_of(self):
            if adapter.telemetry is not None:
                adapter.telemetry.reset()

    def reload_environment(self) -> None:
        """Read proxies, ``NO_PROXY``, netrc and CA bundle variables again."""
        self._environment = EnvironmentSnapshot.capture()

    # Requests --------------------------------------------------------------------------

    def _check_open(self, url: object) -> None:
        if self._closed:
            raise SessionClosedError(
                f"cannot send a request to {redact_url(str(url))}: this keepwarm.Session was "
                "closed. Create a new Session, or use keepwarm.session() to get the shared "
                "one (closing a shared session removes it, so the next call builds a new one)."
            )

    def request(
        self,
        method: str | bytes,
        url: str | bytes,
        params: Any = None,
        data: Any = None,
        headers: Any = None,
        cookies: Any = None,
        files: Any = None,
        auth: Any = None,
        timeout: Any = None,
        allow_redirects: bool = True,
        proxies: Any = None,
        hooks: Any = None,
        stream: bool | None = None,
        verify: Any = None,
        cert: Any = None,
        json: Any = None,
    ) -> Response:
        """Like ``requests.Session.request``; ``url`` may be relative to ``base_url``."""
        if isinstance(url, bytes):
            url = url.decode("utf-8")
        if isinstance(method, bytes):
            method = method.decode("ascii")
        if self._closed:
            self._check_open(url)
        if headers and self._settings.guards:
            _check_header_override(self, headers)
        # timeout=None, keepwarm.Timeout and NO_TIMEOUT are resolved in send(), which
        # redirects and session.send(prepared) go through as well. ``_request`` is
        # ``super().request(...)`` (requests' steps, or whatever comes next in the class's
        # order), without building a ``super`` object.
        return self._request(
            method,
            url,
            params,
            data,
            headers,
            cookies,
            files,
            auth,
            timeout,
            allow_redirects,
            proxies,
            hooks,
            stream,
            verify,
            cert,
            json,
        )

    def send(self, request: PreparedRequest, **kwargs: Any) -> Response:
        if self._closed:
            self._check_open(request.url)
        self._life.sent += 1
        cookies = self.cookies
        if isinstance(cookies, ThreadSafeCookieJar) and cookies.kw_host_only:
            cookies.check_shared(request)  # the cookie-scope guard, once a host set some
        timeout = kwargs.get("timeout")
        if timeout is None:  # call_timeout's answer for the default, in place
            kwargs["timeout"], total = self._default_timeout, self._default_total
        else:
            kwargs["timeout"], total = call_timeout(
                timeout, self._default_timeout, self._default_total
            )
        if "proxies" not in kwargs:
            kwargs["proxies"] = self._resolve_proxies(request, self.proxies)
        if self._settings.guards:
            return self._send_counted(request, kwargs, total)
        return self._send_bounded(request, kwargs, total)

    def _send_counted(
        self, request: PreparedRequest, kwargs: dict[str, Any], total: float | None
    ) -> Response:
        # :meth:`_send_bounded`, with this thread counted as sending meanwhile (what
        # ConcurrentMutationWarning looks at).
        me = threading.get_ident()
        senders = self._senders
        senders[me] = senders.get(me, 0) + 1
        try:
            return self._send_bounded(request, kwargs, total)
        finally:
            depth = senders.get(me, 1) - 1
            if depth:
                senders[me] = depth
            else:
                senders.pop(me, None)

    def _send_bounded(
        self, request: PreparedRequest, kwargs: dict[str, Any], total: float | None
    ) -> Response:
        # The outermost call sets the deadline; redirects' nested sends keep it.
        token = None if total is None else enter_deadline(total, str(request.url))
        # A tracer or mock that replaced requests.Session.send (OpenTelemetry, ddtrace,
        # requests-mock) gets the request, as with a plain Session: its wrapper runs
        # requests' own send, which reaches keepwarm's transport through get_adapter.
        hook = REQUESTS_SESSION.send
        try:
            if hook is REQUESTS_SEND:
                response = self._send(request, kwargs)
            else:
                response = hook(self, request, **kwargs)
        finally:
            if token is not None:
                leave_deadline(token)
        if not kwargs.get("stream"):
            # The body has been read: the request's total time is known.
            # No Timings exist before the transport has loaded the telemetry module.
            telemetry = sys.modules.get(_TELEMETRY_MODULE)
            if telemetry is not None:
                timings = getattr(response, telemetry.TIMINGS_ATTRIBUTE, None)  # timings_of
                if isinstance(timings, telemetry.Timings):
                    timings.finish(time.perf_counter())
        return response

    def _join_url(self, url: str) -> str:
        # Relative URLs are joined to base_url (also in session.prepare_request()). Every
        # one stays under base_url, "//other.example/x" included: it is the path
        # "other.example/x", never another host, which would get the session's
        # credentials (headers, auth, cookies) meant for base_url's host. httpx never
        # leaves base_url's host either. Another host takes an absolute URL.
        base_url = self._settings.base_url
        if base_url is None or _absolute_url().match(url):
            return url
        return base_url + url.lstrip("/")

    def close(self) -> None:
        """Close the connection pools. Idempotent; later requests raise SessionClosedError."""
        if self._closed:
            return
        self._closed = True
        if self._owns_transport:
            closed: set[int] = set()
            for adapter in self.adapters.values():
                if id(adapter) not in closed:
                    closed.add(id(adapter))
                    adapter.close()
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close(self)
        # Last: in strict mode a per-call session raises SessionChurnWarning here.
        self._life.closed()

    def _reset_after_fork(self) -> None:
        self._mount_lock = threading.Lock()
        self._senders = {}  # the parent's other threads do not exist here
        self._environment.reset_after_fork()
        if isinstance(self.cookies, ThreadSafeCookieJar):
            self.cookies.reset_lock()
        for adapter in self.adapters.values():
            # keepwarm's own transports reset themselves (see transport).
            if isinstance(adapter, HTTPAdapter) and not _is_transport(adapter):
                reset_adapter_after_fork(adapter)

    # Pickling: requests pickles __attrs__; keepwarm adds its settings --------------------

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_settings"] = self._settings
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        load_machinery()
        settings = state.pop("_settings")
        self._init_keepwarm_state(settings, trust_env=bool(state.get("trust_env", True)))
        super().__setstate__(state)
        _live_sessions.add(self)
        if settings.guards:
            self._life = track(self, sys._getframe(1), how="unpickled", strict=settings.strict)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        base = f" base_url={redact_url(self.base_url)!r}" if self.base_url else ""
        s = self._settings
        return (
            f"<keepwarm.Session{base} timeout={s.timeout!r} pool_connections="
            f"{s.pool_connections} pool_maxsize={s.pool_maxsize} {state}>"
        )


#: requests' own default headers (lowercased name -> value): a request that replaces one
#: of these replaces nothing the user set on the session.
_REQUESTS_DEFAULT_HEADERS: Final = {
    name.lower(): value for name, value in requests.utils.default_headers().items()
}


def _check_header_override(session: Session, headers: Any) -> None:
    # HeaderOverrideWarning: a request's ``headers=`` replaces a header set on the session
    # with another value, or deletes it (``None``). Adding headers the session lacks, or
    # replacing one of requests' own defaults, is quiet. Names only: never a value.
    mine = session.headers
    items = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in items:
        current = mine.get(name)
        if current is None or value == current:
            continue
        if current == _REQUESTS_DEFAULT_HEADERS.get(str(name).lower()):
            continue
        if value is None:
            what = f"deletes the session's {name!r} header (headers={{{name!r}: None}})"
        else:
            what = f"replaces the session's {name!r} header with another value"
        warn(
            HeaderOverrideWarning,
            f"this request's headers= {what}: requests sends the request's and drops the "
            f"session's, for this request only. To change it for every request set "
            f"session.headers[{name!r}]; if this request should differ, wrap the call in "
            "keepwarm.silence(keepwarm.HeaderOverrideWarning).",
            strict=session._settings.strict,
        )
        return


def transports_of(session: requests.Session) -> list[KeepwarmAdapter]:
    # The keepwarm transports mounted on ``session``, each once.
    seen: dict[int, KeepwarmAdapter] = {}
    for adapter in session.adapters.values():
        # install(sessions=True)'s SharedTransport: the shared transport it sends through.
        resolve = getattr(type(adapter), "_keepwarm_transport", None)
        if resolve is not None:
            adapter = resolve(adapter)
        if _is_transport(adapter):
            seen.setdefault(id(adapter), adapter)
    return list(seen.values())


def stats_of(session: requests.Session) -> keepwarm.Stats:
    # The counters of the keepwarm transports mounted on ``session``.
    from keepwarm._stats import merge_stats  # the read side loads when first read

    return merge_stats(adapter.stats() for adapter in transports_of(session))


def _check_mixed_in(cls: type, unknown: Mapping[str, object]) -> None:
    # Unknown keywords to a class that puts keepwarm.Session before another Session
    # subclass (``class X(keepwarm.Session, OAuth2Session)``): say how to mix them.
    others = [
        c
        for c in cls.__mro__
        if issubclass(c, requests.Session)
        and c is not requests.Session
        and not issubclass(Session, c)
        and not issubclass(c, Session)
    ]
    if not others:
        return
    other = others[0].__name__
    raise TypeError(
        f"{cls.__name__}() got keywords keepwarm.Session does not take "
        f"({', '.join(sorted(unknown))}): keepwarm.Session does not pass keywords on to "
        f"{other}. Put keepwarm.Session after it in the bases (class "
        f"{cls.__name__}({other}, keepwarm.Session)), or build a plain {other} and call "
        f"keepwarm.mount(session) on it."
    )


def mount(
    session: _S,
    *,
    timeout: TimeoutTypes | _Unset = UNSET,
    pool_connections: int | _Unset = UNSET,
    pool_maxsize: PoolMaxsize | _Unset = UNSET,
    pool_block: bool | _Unset = UNSET,
    pool_timeout: float | _Unset = UNSET,
    max_retries: RetryTypes | _Unset = UNSET,
    telemetry: bool | _Unset = UNSET,
    keepalive_expiry: float | _Unset | None = UNSET,
    max_connection_age: float | _Unset | None = UNSET,
    guards: bool | _Unset = UNSET,
    strict: bool | _Unset = UNSET,
    http2: bool | _Unset = UNSET,
    **unknown: NoReturn,
) -> _S:
    """Send ``session``'s ``http://`` and ``https://`` requests through a keepwarm
    transport of its own: keepwarm's pools (sized, idle expiry, stale-connection resend,
    counted: ``keepwarm.stats(session)``), safe retries, the default timeout for calls
    that give none (``timeout=None``), TLS context cache and fork safety.

    For any ``requests.Session`` that keepwarm cannot be (a library's subclass such as
    requests-oauthlib's ``OAuth2Session``, requests-cache's ``CachedSession``, locust's
    ``HttpSession``): everything else about the session (its class, cookies, auth,
    hooks, ``send``) stays its own. Knobs are ``keepwarm.Session``'s transport knobs;
    ``base_url`` stays with the session. On locust's ``HttpSession`` retries default to
    off (``max_retries=0``): a load test is there to see failures, not to have them
    retried away. Returns ``session``.
    """
    arguments = locals()
    if unknown:
        where = "keepwarm.mount()"
        if "base_url" in unknown:
            raise TypeError(
                f"{where} takes no base_url: the mounted session keeps its own URLs. Give "
                "absolute URLs, or use keepwarm.Session(base_url=...)."
            )
        check_setting_names(unknown, where)
    if not isinstance(session, requests.Session):
        raise TypeError(
            f"keepwarm.mount() takes a requests.Session (or a subclass), not "
            f"{type(session).__name__}"
        )
    if isinstance(session, Session):
        raise TypeError(
            "keepwarm.mount() is for sessions that are not keepwarm's: this keepwarm.Session "
            "already sends through keepwarm's transport; give its knobs to "
            "keepwarm.Session(...) instead."
        )
    given = {
        name: arguments[name]
        for name in SETTING_NAMES
        if name in arguments and arguments[name] is not UNSET
    }
    if max_retries is UNSET and _is_load_test(session):
        given["max_retries"] = 0
    adapter = _transport_class()(resolve_settings(given, "keepwarm.mount()"))
    replaced = [session.adapters.get(prefix) for prefix in _SCHEMES]
    for prefix in _SCHEMES:
        session.mount(prefix, adapter)
    for old in replaced:
        if old is not None and old not in session.adapters.values():
            old.close()
    return session


_SCHEMES: Final = ("https://", "http://")
_S = TypeVar("_S", bound=requests.Session)


def _is_load_test(session: requests.Session) -> bool:
    # Whether ``session`` is locust's ``HttpSession`` (looked up only if locust is
    # already imported: a session of its class cannot exist otherwise).
    clients = sys.modules.get("locust.clients")
    http_session = getattr(clients, "HttpSession", None)
    return isinstance(http_session, type) and isinstance(session, http_session)


def _after_fork_in_child() -> None:
    for session in list(_live_sessions):
        session._reset_after_fork()


after_fork_in_child(_after_fork_in_child)
