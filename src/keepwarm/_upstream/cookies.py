"""A cookie jar that many threads can read and write at once.

``http.cookiejar.CookieJar`` locks its writers (``set_cookie``, ``extract_cookies``) but
not iteration, and requests iterates the session jar on every request (to merge it with
the request's cookies) and in ``get_dict()``, ``items()``, ``jar[name]``. A response
setting a cookie in one thread while another thread iterates raises ``RuntimeError:
dictionary changed size during iteration`` or skips cookies. Here iteration walks a
snapshot taken under the jar's own lock, and ``clear`` takes the lock too.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator, Mapping
from email.message import Message
from http.cookiejar import Cookie, CookieJar
from typing import Any
from urllib.parse import urlsplit

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

__all__ = [
    "RequestCookieJar",
    "ThreadSafeCookieJar",
    "cookie_domain",
    "extract_cookies",
    "scope_cookies",
]


class ThreadSafeCookieJar(RequestsCookieJar):
    """``RequestsCookieJar`` whose iteration and ``clear`` are safe under threads."""

    def __iter__(self) -> Iterator[Cookie]:  # type: ignore[override]  # as requests' own
        with self._cookies_lock:
            cookies = [
                cookie
                for domain in list(self._cookies.values())  # type: ignore[attr-defined]
                for path in list(domain.values())
                for cookie in list(path.values())
            ]
        return iter(cookies)

    def clear(
        self, domain: str | None = None, path: str | None = None, name: str | None = None
    ) -> None:
        with self._cookies_lock:
            super().clear(domain, path, name)

    def copy(self) -> ThreadSafeCookieJar:
        new = ThreadSafeCookieJar()
        new.set_policy(self.get_policy())
        new.update(self)
        return new

    def reset_lock(self) -> None:
        """A fresh lock for a forked child (the parent's may have been held mid-fork)."""
        self._cookies_lock = threading.RLock()


class RequestCookieJar(RequestsCookieJar):
    """The cookies of one request (and its redirects) in which the request's own
    ``cookies={...}`` replace the session's cookies of the same name.

    In requests a dict cookie has no domain, so merging it over the session jar replaces
    a session cookie of the same name set the same way (same empty domain, same path),
    and the request sends one value: the request's. keepwarm binds dict cookies to the
    request's host (see :func:`scope_cookies`), which would otherwise leave both in the
    merged jar and send ``foo=session; foo=request`` (the server usually reads the
    first). Here a cookie named like one of the request's is refused unless it has that
    cookie's own domain and path: the session's copies are left out, while a server's
    ``Set-Cookie`` on a redirect response (same host, same path) still updates it.
    ``copy()`` keeps the rule: requests copies the jar for every redirect.
    """

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
    """Cookies given as a plain dict, bound to the host of ``url``.

    requests turns a dict into cookies without a domain, which http.cookiejar sends to
    *every* host: a ``cookies={...}`` given for one request follows a redirect to another
    host (the CVE-2023-43804 class of leak), and one given to a session goes everywhere.
    Bound to the host, they reach that host (any port, and its subdomains, as a domain
    cookie would) and nothing else. The domain is the one http.cookiejar files that host
    under (:func:`cookie_domain`), or the jar would never send them.
    """
    jar = RequestsCookieJar()
    domain = cookie_domain(url) if cookies else None
    if not domain:
        # No host: requests rejects the URL itself (MissingSchema, InvalidURL) next.
        return cookiejar_from_dict(dict(cookies), jar)
    for name, value in cookies.items():
        jar.set_cookie(create_cookie(name, value, domain=domain))
    return jar


def cookie_domain(url: str) -> str | None:
    """The domain http.cookiejar matches a request to ``url`` against (None: no host).

    That is the domain it gives a host-only cookie set by that host (``make_cookies``),
    for the URL as requests prepares it, which is not the host as written: a name is
    IDNA-encoded first (``bücher.example`` is sent, and matched, as
    ``xn--bcher-kva.example``), an IPv6 literal keeps its brackets, and a host without a
    dot gets ``.local`` (``localhost.local``, ``[::1].local``). The URL's user and
    password are left out: a cookie's domain is never a credential.
    """
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
    """requests' ``extract_cookies_to_jar``, skipping the work when there is nothing to
    extract: http.cookiejar only reads ``Set-Cookie`` and ``Set-Cookie2``, and building its
    mock request and response objects for a response without them costs more than the
    rest of cookie handling together."""
    original = getattr(response, "_original_response", None)
    if not original:
        return
    headers = original.msg
    if "Set-Cookie" not in headers and "Set-Cookie2" not in headers:
        return
    extract_cookies_to_jar(jar, request, response)
