# A cookie jar that many threads can read and write at once.
#
# ``http.cookiejar.CookieJar`` locks its writers (``set_cookie``, ``extract_cookies``) but
# not iteration, and requests iterates the session jar on every request (to merge it with
# the request's cookies) and in ``get_dict()``, ``items()``, ``jar[name]``. A response
# setting a cookie in one thread while another thread iterates raises ``RuntimeError:
# dictionary changed size during iteration`` or skips cookies. Here iteration walks a
# snapshot taken under the jar's own lock, and ``clear`` takes the lock too.
#
# The jar of a keepwarm session also keeps the cookie-scope guard (``docs/guards/
# cookie-scope.md``): a cookie stored without a domain (requests sends it to every host)
# is warned about where the user's code stored it, and host-only cookies (a ``Set-Cookie``
# without ``Domain=``) are noted by host, so a request to a sibling host that goes without
# them is a dictionary lookup away from a warning (:meth:`ThreadSafeCookieJar.check_shared`).
# :func:`share_cookies` shares them across the parent domain on purpose.

from __future__ import annotations

import functools
import http.cookiejar
import ipaddress
import threading
from collections.abc import Iterable, Iterator, Mapping
from email.message import Message
from http.cookiejar import Cookie, CookieJar
from typing import Any, Final
from urllib.parse import urlsplit

import requests
from requests.cookies import (
    MockRequest,
    MockResponse,
    RequestsCookieJar,
    cookiejar_from_dict,
    create_cookie,
    extract_cookies_to_jar,
)
from requests.exceptions import RequestException
from requests.models import PreparedRequest
from requests.structures import CaseInsensitiveDict

from keepwarm._exceptions import CookieScopeWarning
from keepwarm._guards import warn
from keepwarm._upstream.wire import PlainHTTPMessage

__all__ = [
    "RequestCookieJar",
    "ThreadSafeCookieJar",
    "cookie_domain",
    "extract_cookies",
    "scope_cookies",
    "share_cookies",
    "shared_parent",
]


class ThreadSafeCookieJar(RequestsCookieJar):
    # ``RequestsCookieJar`` whose iteration and ``clear`` are safe under threads.
    #
    # With ``guards`` (a keepwarm session's jar; a jar made any other way has them off) it
    # is the cookie-scope guard's too (see the module docstring); ``strict`` raises its
    # warnings as exceptions.

    #: The guard's knobs; a jar unpickled from an older keepwarm has the class's.
    kw_guards: bool = False
    kw_strict: bool = False
    #: Host-only cookies stored, for the guard: parent domain -> host -> names. Empty (the
    #: class's own, never written) until one is stored.
    kw_host_only: dict[str, dict[str, set[str]]] = {}

    def __init__(self, *, guards: bool = False, strict: bool = False) -> None:
        super().__init__()
        if guards:
            self.kw_guards = True
            self.kw_strict = strict

    def set_cookie(self, cookie: Cookie, *args: Any, **kwargs: Any) -> None:
        if self.kw_guards:
            if not cookie.domain:
                warn(CookieScopeWarning, _domainless_message(cookie.name), strict=self.kw_strict)
            elif not cookie.domain_specified:
                self._note_host_only(cookie)
        super().set_cookie(cookie, *args, **kwargs)

    def _note_host_only(self, cookie: Cookie) -> None:
        host = cookie.domain.lower()
        parent = shared_parent(host)
        if parent is None:
            return
        with self._cookies_lock:
            if not self.kw_host_only:
                self.kw_host_only = {}
            self.kw_host_only.setdefault(parent, {}).setdefault(host, set()).add(cookie.name)

    def forget_host_only(self, cookies: Iterable[tuple[str, str]]) -> None:
        # Stop watching these ``(host, name)`` host-only cookies (shared on purpose; a
        # name of "" only drops a host left with none).
        with self._cookies_lock:
            for host, name in cookies:
                parent = shared_parent(host)
                hosts = self.kw_host_only.get(parent) if parent else None
                if parent is None or hosts is None:
                    continue
                names = hosts.get(host, set())
                if name:
                    names.discard(name)
                if not names:
                    hosts.pop(host, None)
                if not hosts:
                    del self.kw_host_only[parent]

    def check_shared(self, request: PreparedRequest) -> None:
        # Warn when ``request`` goes to a sibling of a host whose host-only cookies this
        # jar holds, without them. Called per request only while the jar holds any.
        found = _host_and_parent(_origin(str(request.url)))
        if found is None:
            return
        host, parent = found
        hosts = self.kw_host_only.get(parent)
        if not hosts or (len(hosts) == 1 and host in hosts):
            return
        sent = _cookie_names(request.headers.get("Cookie"))
        missing: dict[str, list[str]] = {}
        with self._cookies_lock:
            for other, names in hosts.items():
                if other == host:
                    continue
                stored = self._cookies.get(other, {})  # type: ignore[attr-defined]
                for name in sorted(names):
                    if name in sent:
                        continue
                    if any(name in by_name for by_name in stored.values()):
                        missing.setdefault(other, []).append(name)
                    else:
                        names.discard(name)  # gone from the jar (expired, deleted)
            # Hosts whose cookies are all gone are not watched any more.
            self.forget_host_only((other, "") for other in list(hosts) if not hosts[other])
        if missing:
            warn(
                CookieScopeWarning, _unshared_message(host, parent, missing), strict=self.kw_strict
            )

    def __iter__(self) -> Iterator[Cookie]:  # type: ignore[override]  # as requests' own
        # In the running Python's order: http.cookiejar's deepvalues sorts domains and
        # paths by name up to CPython 3.10 and keeps insertion order from 3.11 (the order
        # of the Cookie header a jar built by requests sends).
        with self._cookies_lock:
            cookies = list(http.cookiejar.deepvalues(self._cookies))  # type: ignore[attr-defined]
        return iter(cookies)

    def clear(
        self, domain: str | None = None, path: str | None = None, name: str | None = None
    ) -> None:
        with self._cookies_lock:
            super().clear(domain, path, name)
            if domain is None and self.kw_host_only:
                self.kw_host_only = {}  # all gone: nothing to watch

    def copy(self) -> ThreadSafeCookieJar:
        # A copy is nobody's session jar: no guard (requests copies jars for redirects).
        new = ThreadSafeCookieJar()
        new.set_policy(self.get_policy())
        new.update(self)
        return new

    def reset_lock(self) -> None:
        # A fresh lock for a forked child (the parent's may have been held mid-fork).
        self._cookies_lock = threading.RLock()


class RequestCookieJar(RequestsCookieJar):
    # The cookies of one request (and its redirects) in which the request's own
    # ``cookies={...}`` replace the session's cookies of the same name.
    #
    # In requests a dict cookie has no domain, so merging it over the session jar replaces
    # a session cookie of the same name set the same way (same empty domain, same path),
    # and the request sends one value: the request's. keepwarm binds dict cookies to the
    # request's host (see :func:`scope_cookies`), which would otherwise leave both in the
    # merged jar and send ``foo=session; foo=request`` (the server usually reads the
    # first). Here a cookie named like one of the request's is refused unless it has that
    # cookie's own domain and path: the session's copies are left out, while a server's
    # ``Set-Cookie`` on a redirect response (same host, same path) still updates it.
    # ``copy()`` keeps the rule: requests copies the jar for every redirect.

    def __init__(self, overrides: Mapping[str, tuple[str, str]] | None = None) -> None:
        super().__init__()
        #: name -> (domain, path) of the request's own cookie of that name.
        self.kw_overrides: dict[str, tuple[str, str]] = dict(overrides or {})

    def set_cookie(self, cookie: Cookie, *args: Any, **kwargs: Any) -> None:
        key = self.kw_overrides.get(cookie.name)
        if key is not None and key != (cookie.domain, cookie.path):
            return
        super().set_cookie(cookie, *args, **kwargs)

    def copy(self) -> RequestCookieJar:
        new = RequestCookieJar(self.kw_overrides)
        new.set_policy(self.get_policy())
        new.update(self)
        return new


def scope_cookies(cookies: Mapping[str, str], url: str) -> RequestsCookieJar:
    # Cookies given as a plain dict, bound to the host of ``url``.
    #
    # requests turns a dict into cookies without a domain, which http.cookiejar sends to
    # *every* host: a ``cookies={...}`` given for one request follows a redirect to another
    # host (the CVE-2023-43804 class of leak), and one given to a session goes everywhere.
    # Bound to the host, they reach that host (any port, and its subdomains, as a domain
    # cookie would) and nothing else. The domain is the one http.cookiejar files that host
    # under (:func:`cookie_domain`), or the jar would never send them.
    jar = RequestsCookieJar()
    domain = cookie_domain(url) if cookies else None
    if not domain:
        # No host: requests rejects the URL itself (MissingSchema, InvalidURL) next.
        return cookiejar_from_dict(dict(cookies), jar)
    for name, value in cookies.items():
        jar.set_cookie(create_cookie(name, value, domain=domain))
    return jar


def cookie_domain(url: str) -> str | None:
    # The domain http.cookiejar matches a request to ``url`` against (None: no host).
    #
    # That is the domain it gives a host-only cookie set by that host (``make_cookies``),
    # for the URL as requests prepares it, which is not the host as written: a name is
    # IDNA-encoded first (``bücher.example`` is sent, and matched, as
    # ``xn--bcher-kva.example``), an IPv6 literal keeps its brackets, and a host without a
    # dot gets ``.local`` (``localhost.local``, ``[::1].local``). The URL's user and
    # password are left out: a cookie's domain is never a credential.
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if not host:
        return None
    return _origin_cookie_domain(parts.scheme, parts.netloc.rpartition("@")[2])


@functools.lru_cache(maxsize=256)
def _origin_cookie_domain(scheme: str, netloc: str) -> str | None:
    # scheme://host[:port]/ only, through requests' own URL preparation (IDNA, brackets).
    prepared = PreparedRequest()
    try:
        prepared.prepare_url(f"{scheme}://{netloc}/", None)
    except (RequestException, ValueError):
        return None  # requests rejects the URL itself next
    prepared.headers = CaseInsensitiveDict()
    # Ask the jar itself (public API): the domain it gives a host-only cookie this host sets.
    head = Message()
    head["Set-Cookie"] = "keepwarm=1"
    made = CookieJar().make_cookies(MockResponse(head), MockRequest(prepared))  # type: ignore[arg-type]
    return made[0].domain if made else None


def extract_cookies(jar: CookieJar, request: PreparedRequest, response: Any) -> None:
    # requests' ``extract_cookies_to_jar``, skipping the work when there is nothing to
    # extract: http.cookiejar only reads ``Set-Cookie`` and ``Set-Cookie2``, and building its
    # mock request and response objects for a response without them costs more than the
    # rest of cookie handling together.
    original = getattr(response, "_original_response", None)
    if not original:
        return
    headers = original.msg
    if type(headers) is PlainHTTPMessage:  # keepwarm's parse: its lookup index, asked once
        index = headers._index()
        if "set-cookie" not in index and "set-cookie2" not in index:
            return
    elif "Set-Cookie" not in headers and "Set-Cookie2" not in headers:
        return
    extract_cookies_to_jar(jar, request, response)


# The cookie-scope guard's helpers -----------------------------------------------------


def _domainless_message(name: str) -> str:
    return (
        f"the cookie {name!r} was stored on the session without a domain: requests sends a "
        "cookie without a domain to every host the session calls (redirects to other hosts "
        "included). Give it the host it belongs to: "
        f"session.cookies.set({name!r}, value, domain='api.example.com'), or pass "
        "cookies={...} together with base_url= to keepwarm.Session(), which binds them to "
        "base_url's host. (docs/guards/cookie-scope.md)"
    )


def _unshared_message(host: str, parent: str, missing: Mapping[str, list[str]]) -> str:
    which = "; ".join(
        f"{', '.join(repr(n) for n in names)} from {other}" for other, names in missing.items()
    )
    return (
        f"this request to {host} goes without the host-only cookies {which}: a cookie set "
        f"without Domain= is sent back to the host that set it only, never to its sibling "
        f"{host} under {parent}. If {host} needs it, the server should set it with "
        f"Domain={parent}, or share it on purpose once it is set: "
        f"keepwarm.share_cookies(session, domain={parent!r}). If {host} does not need it, "
        "silence this: with keepwarm.silence(keepwarm.CookieScopeWarning): ... "
        "(docs/guards/cookie-scope.md)"
    )


def _cookie_names(header: str | bytes | None) -> set[str]:
    if not header:
        return set()
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    return {part.partition("=")[0].strip() for part in header.split(";")}


def _origin(url: str) -> str:
    # ``scheme://netloc`` of an absolute URL (the part a cookie's host comes from).
    end = url.find("/", url.find("//") + 2)
    return url if end < 0 else url[:end]


@functools.lru_cache(maxsize=256)
def _host_and_parent(origin: str) -> tuple[str, str] | None:
    # The host (as :func:`cookie_domain`) of ``scheme://netloc`` and the parent domain
    # its siblings share (:func:`shared_parent`); None without one.
    host = cookie_domain(origin + "/")
    parent = shared_parent(host) if host else None
    return None if host is None or parent is None else (host, parent)


@functools.lru_cache(maxsize=256)
def shared_parent(host: str) -> str | None:
    # The domain ``host``'s siblings share, as http.cookiejar names hosts
    # (:func:`cookie_domain`): ``host`` less its first label, when that is a name of two
    # labels or more (``a.example.com`` -> ``example.com``; ``example.com`` -> None, as
    # ``com`` is shared by strangers). None for IP addresses and ``localhost``. Not a
    # public-suffix list: ``a.co.uk`` -> ``co.uk``.
    host = host.lower().rstrip(".")
    if not _shareable(host):
        return None
    parent = host.partition(".")[2]
    return parent if _shareable(parent) else None


def _shareable(domain: str) -> bool:
    # Whether ``domain`` names hosts of one owner: two labels or more, not an IP
    # address, not localhost.
    if "." not in domain.strip(".") or domain.startswith("["):
        return False
    if domain in ("localhost", "localhost.local"):
        return False
    try:
        ipaddress.ip_address(domain)
    except ValueError:
        return True
    return False


def share_cookies(
    session: requests.Session, domain: str, names: Iterable[str] | None = None
) -> int:
    """Share host-only cookies across ``domain`` on purpose: every cookie in
    ``session.cookies`` that a host set without ``Domain=`` (so it is sent back to that
    host only), where the host is ``domain`` or under it (``a.example.com`` for
    ``example.com``), is copied into a cookie for ``.example.com``, which requests sends
    to every host under ``example.com``. ``names`` limits it to cookies of those names.
    Returns how many were copied.

    The copies are what the cookies are now: call it again after a server changes one.
    ``domain`` must have two labels or more (never a top-level domain such as ``com``,
    an IP address or ``localhost``). For a server that should set ``Domain=`` itself
    but does not (``docs/guards/cookie-scope.md``).
    """
    if not isinstance(session, requests.Session):
        raise TypeError(
            f"keepwarm.share_cookies() takes a requests.Session (or a subclass), not "
            f"{type(session).__name__}"
        )
    jar: CookieJar = session.cookies
    if not isinstance(domain, str) or not domain.strip("."):
        raise ValueError(f"domain={domain!r} is not valid: give a domain such as 'example.com'")
    domain = domain.strip(".").lower()
    if not _shareable(domain):
        raise ValueError(
            f"domain={domain!r} is not valid: cookies shared with every host under it would "
            "reach strangers (a top-level domain, an IP address or localhost); give a domain "
            "of two labels or more, such as 'example.com'"
        )
    if isinstance(names, str):
        raise TypeError(f"names={names!r} is not valid: give a list of cookie names, or None")
    wanted = None if names is None else set(names)
    suffix = "." + domain
    chosen = [
        cookie
        for cookie in list(jar)
        if not cookie.domain_specified
        and cookie.domain
        and (cookie.domain.lower() == domain or cookie.domain.lower().endswith(suffix))
        and (wanted is None or cookie.name in wanted)
    ]
    for cookie in chosen:
        # HttpOnly and SameSite, as the server set them (HttpOnly's value is None).
        rest: dict[str, Any] = {
            key: cookie.get_nonstandard_attr(key)
            for key in _NONSTANDARD
            if cookie.has_nonstandard_attr(key)
        }
        jar.set_cookie(
            Cookie(
                version=cookie.version,
                name=cookie.name,
                value=cookie.value,
                port=cookie.port,
                port_specified=cookie.port_specified,
                domain=suffix,
                domain_specified=True,
                domain_initial_dot=True,
                path=cookie.path,
                path_specified=cookie.path_specified,
                secure=cookie.secure,
                expires=cookie.expires,
                discard=cookie.discard,
                comment=cookie.comment,
                comment_url=cookie.comment_url,
                rest=rest,
                rfc2109=cookie.rfc2109,
            )
        )
    if isinstance(jar, ThreadSafeCookieJar):
        jar.forget_host_only((c.domain.lower(), c.name) for c in chosen)
    return len(chosen)


#: The attributes beyond RFC 2965 that http.cookiejar keeps (and requests' create_cookie).
_NONSTANDARD: Final = ("HttpOnly", "SameSite")
