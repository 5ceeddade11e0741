# Preparing a request: requests' ``Session.prepare_request`` with its per-request waste cut.
#
# The result is the same ``PreparedRequest`` requests builds, made the same way (the same
# ``prepare_*`` steps in the same order, so auth handlers and hooks see what they expect);
# five costs measured on the request path are avoided:
#
# * ``merge_setting`` / ``to_key_val_list`` test ``isinstance(x, SupportsItems)``, a
#   runtime-checkable Protocol that costs tens of microseconds per call on CPython 3.11;
#   ``hasattr(x, "items")`` is the same test (a runtime Protocol check is exactly that).
# * a request without headers of its own gets the session's headers checked and copied
#   once, instead of merged into one dictionary and copied into another.
# * empty query parameters are passed as ``None``: requests would run them through
#   ``_encode_params``, which makes that Protocol check again, to produce nothing; and
#   without parameters the prepared URL is remembered (it depends on the URL alone).
# * without auth and without ``user:password@`` in the URL, the URL is not parsed again to
#   look for credentials that are not there.
# * with no cookie to send, the Cookie header is not computed (http.cookiejar builds a
#   mock request and walks the jar to find nothing); the merged jar is still attached to
#   the prepared request, as redirects need it.

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping
from http import cookiejar
from typing import Any, Final

from requests import hooks as requests_hooks
from requests._internal_utils import to_native_string
from requests.cookies import RequestsCookieJar, merge_cookies
from requests.hooks import default_hooks
from requests.models import PreparedRequest, Request
from requests.sessions import Session
from requests.structures import CaseInsensitiveDict
from requests.utils import check_header_validity

from keepwarm._bounded import keepable, remember
from keepwarm._upstream.cookies import RequestCookieJar, ThreadSafeCookieJar

__all__ = [
    "ONLY_RESPONSE",
    "SessionHeaders",
    "case_insensitive_dict",
    "has_cookies",
    "merge_setting",
    "prepare",
]

#: URL -> requests' prepared form of it. Without query parameters to add, requests'
#: prepare_url (urllib3's parse_url, IDNA, requoting) depends on the URL string alone, and
#: most programs request the same few URLs again and again. Bounded; invalid URLs are
#: never stored, so they raise every time as in requests. URLs with a query or userinfo
#: are not kept (``_bounded.keepable``).
_prepared_urls: dict[str, str] = {}
_PREPARED_URLS_MAX = 1024


#: Session header (name, value) pairs, both str, that passed requests'
#: ``check_header_validity``: a pure check of the two strings, run again for the same
#: session headers on every request otherwise. Bounded; a pair that fails is never
#: stored, so it raises every time as in requests.
_valid_headers: set[tuple[str, str]] = set()
_VALID_HEADERS_MAX = 256


#: The types of ``request.data`` that, when empty, requests' ``prepare_body`` reads as no
#: body (``Session.request`` turns ``data=None`` into ``{}``). Anything else (a stream, an
#: object with ``__len__``) takes requests' own step.
_NO_BODY: Final = (dict, list, tuple, str, bytes)
#: The methods requests' ``prepare_content_length`` adds no ``Content-Length`` to.
_NO_LENGTH_METHODS: Final = ("GET", "HEAD")
#: requests' hook events (``requests.hooks.HOOKS``) as every release has them: while they
#: are these, ``default_hooks()`` is ``{"response": []}``.
ONLY_RESPONSE: Final = ["response"]
_NEW_PREPARED: Final = PreparedRequest.__new__


def case_insensitive_dict(store: OrderedDict[str, tuple[str, Any]]) -> CaseInsensitiveDict[Any]:
    # ``CaseInsensitiveDict()`` holding *store* (lower-case name -> (name, value)), the
    # form requests' ``__init__`` and ``__setitem__`` give it, without the ``update()``
    # through the Mapping ABCs that ``__init__`` makes even for no data.
    result: CaseInsensitiveDict[Any] = CaseInsensitiveDict.__new__(CaseInsensitiveDict)
    result._store = store
    return result


def has_cookies(jar: Any) -> bool:
    # ``bool(jar)``: http.cookiejar counts a jar's cookies by walking them all through
    # a generator, for an empty jar too. A requests jar whose store (``_cookies``, domain ->
    # path -> name -> cookie) is empty holds none; anything else is counted. (A keepwarm
    # session's own jar is told apart by its exact type first: ``isinstance`` against the
    # jar's ABC is a Python-level call.)
    if (
        type(jar) is ThreadSafeCookieJar or isinstance(jar, RequestsCookieJar)
    ) and not jar._cookies:  # type: ignore[attr-defined]
        return False
    return bool(jar)


def _key_val_list(value: Any) -> list[tuple[Any, Any]]:
    if isinstance(value, (str, bytes, bool, int)):
        raise ValueError("cannot encode objects that are not 2-tuples")
    if hasattr(value, "items"):
        return list(value.items())
    return list(value)


def merge_setting(
    request_setting: Any, session_setting: Any, dict_class: type = OrderedDict
) -> Any:
    # requests' ``sessions.merge_setting``, with the Protocol check replaced by hasattr,
    # and two ``dict``s (proxies, params: the common case) told apart from other mappings
    # without the ``Mapping`` ABC's ``isinstance`` (a Python-level call each).
    if session_setting is None:
        return request_setting
    if request_setting is None:
        return session_setting
    if not (
        (type(session_setting) is dict and type(request_setting) is dict)
        or (
            type(session_setting) is not bool  # stream, verify: no Mapping ABC check
            and isinstance(session_setting, Mapping)
            and isinstance(request_setting, Mapping)
        )
    ):
        return request_setting
    if not session_setting and not request_setting:  # the common case: {} and {}
        return dict_class()
    merged = dict_class(_key_val_list(session_setting))
    merged.update(_key_val_list(request_setting))
    for key in [k for (k, v) in merged.items() if v is None]:
        del merged[key]
    return merged


class SessionHeaders(CaseInsensitiveDict):  # type: ignore[type-arg]
    # A keepwarm session's ``headers``: requests' CaseInsensitiveDict that reports every
    # change of an item to its session first (``on_change``, held weakly: the session owns
    # the headers), for ConcurrentMutationWarning. Stored as its base class stores, so
    # :func:`prepare` reads it as fast as a plain one.

    def __init__(
        self, data: Any, on_change: weakref.WeakMethod[Callable[[str], None]] | None = None
    ) -> None:
        self._on_change = None  # none while the base class fills it
        #: Counts changes; ``_keepwarm_prepared`` holds the headers a request without headers of
        #: its own gets (:func:`_prepare_session_headers`) as of one count.
        self._keepwarm_version = 0
        self._keepwarm_prepared: tuple[int, Any] | None = None
        super().__init__(data)
        self._on_change = on_change

    def _changing(self, what: str) -> None:
        on_change = self._on_change
        callback = on_change() if on_change is not None else None
        if callback is not None:
            callback(what)

    def __setitem__(self, key: str, value: Any) -> None:
        self._changing(f"session.headers[{key!r}]")
        self._keepwarm_version += 1
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self._changing(f"del session.headers[{key!r}]")
        self._keepwarm_version += 1
        super().__delitem__(key)

    def __reduce__(self) -> Any:
        # Pickled (with its session) as requests' own class: the callback is not picklable.
        return (CaseInsensitiveDict, (list(self.items()),))


def _prepare_session_headers(p: PreparedRequest, headers: CaseInsensitiveDict[Any]) -> None:
    # ``p.prepare_headers(merge_setting({}, headers, CaseInsensitiveDict))`` for a request
    # without headers of its own: the session's headers, less those set to None, each
    # checked by requests' ``check_header_validity``, without building the merged
    # dictionary first and copying it again; for a :class:`SessionHeaders` unchanged since
    # its last request, a copy of what that request got.
    prepared = case_insensitive_dict(OrderedDict())
    session_headers = type(headers) is SessionHeaders
    if session_headers:
        version = headers._keepwarm_version  # type: ignore[attr-defined]
        cached = headers._keepwarm_prepared  # type: ignore[attr-defined]
        if cached is not None and cached[0] == version:
            prepared._store = cached[1].copy()
            p.headers = prepared
            return
    store = prepared._store
    valid = _valid_headers
    for name, value in list(headers._store.values()):
        if value is None:
            continue
        pair = (name, value)
        if type(name) is not str or type(value) is not str:
            check_header_validity(pair)  # bytes, or a type that fails: checked each time
        elif pair not in valid:
            check_header_validity(pair)
            if len(valid) >= _VALID_HEADERS_MAX:
                valid.clear()
            valid.add(pair)
        name = to_native_string(name)
        store[name.lower()] = (name, value)
    p.headers = prepared
    if session_headers:
        headers._keepwarm_prepared = (version, store.copy())  # type: ignore[attr-defined]


def _merge_hooks(request_hooks: Any, session_hooks: Any) -> Any:
    if session_hooks is None or session_hooks.get("response") == []:
        return request_hooks
    if request_hooks is None or request_hooks.get("response") == []:
        return session_hooks
    return merge_setting(request_hooks, session_hooks)


def prepare(
    session: Session,
    request: Request,
    url: str,
    cookies: cookiejar.CookieJar | None,
    auth: Any,
    cookies_replace: bool = False,
) -> PreparedRequest:
    # The ``PreparedRequest`` requests' ``Session.prepare_request`` would build.
    #
    # ``url`` is the request's URL made absolute, ``cookies`` the request's own cookies
    # made a jar (None or empty for none), ``auth`` the request's auth or the netrc
    # lookup's (the caller's work). With ``cookies_replace`` (a dict given as the request's
    # cookies) they replace the session's cookies of the same name, as in requests.
    merged_cookies = (
        RequestCookieJar({c.name: (c.domain, c.path) for c in cookies})
        if cookies and cookies_replace
        else RequestsCookieJar()
    )
    # has_cookies' answers for a keepwarm session's empty jar and an empty merged jar
    # (a jar whose store is empty holds no cookie), in place.
    session_cookies = session.cookies
    empty = type(session_cookies) is ThreadSafeCookieJar and not session_cookies._cookies  # type: ignore[attr-defined]
    if not empty and has_cookies(session_cookies):
        merge_cookies(merged_cookies, session_cookies)
    if cookies:
        merge_cookies(merged_cookies, cookies)
    # merge_setting's answer is empty when both are: not asked then.
    request_params = request.params
    session_params = session.params
    params = (
        merge_setting(request_params, session_params) if request_params or session_params else None
    )
    # ``PreparedRequest()`` and ``prepare_method``: the attributes its constructor sets, in
    # its order, the method upper-cased (a ``str``, so to_native_string leaves it as is)
    # and requests' default hooks, without the three Python-level calls.
    p = _NEW_PREPARED(PreparedRequest)
    p.method = str(request.method).upper()
    p.url = None
    p.headers = None  # type: ignore[assignment]
    p._cookies = None
    p.body = None
    p.hooks = {"response": []} if requests_hooks.HOOKS == ONLY_RESPONSE else default_hooks()
    p._body_position = None
    if params:
        p.prepare_url(url, params)
    else:
        prepared_url = _prepared_urls.get(url)
        if prepared_url is None:
            p.prepare_url(url, None)
            prepared: str = p.url  # type: ignore[assignment]
            if keepable(url):
                remember(_prepared_urls, url, prepared, _PREPARED_URLS_MAX)
        else:
            p.url = prepared_url
    session_headers = session.headers
    headers_type = type(session_headers)
    if not request.headers and (
        headers_type is SessionHeaders or headers_type is CaseInsensitiveDict
    ):
        _prepare_session_headers(p, session_headers)
    else:
        p.prepare_headers(merge_setting(request.headers, session_headers, CaseInsensitiveDict))
    if merged_cookies._cookies and has_cookies(merged_cookies):  # type: ignore[attr-defined]
        p.prepare_cookies(merged_cookies)
    else:
        p._cookies = merged_cookies
    data = request.data
    if not data and not request.files and request.json is None and type(data) in _NO_BODY:
        # requests' prepare_body for no body at all: no Content-Type, and Content-Length: 0
        # for a method other than GET and HEAD (its checks for a stream, a mapping and a
        # JSON body, three ABC isinstance calls, all come out "no"); prepare_content_length
        # does nothing for a GET or a HEAD.
        if p.method not in _NO_LENGTH_METHODS:
            p.prepare_content_length(None)
        p.body = None
    else:
        p.prepare_body(data, request.files, request.json)
    session_auth = session.auth
    if session_auth is not None:  # merge_setting(auth, None) is auth
        auth = merge_setting(auth, session_auth)
    if auth is not None or "@" in p.url:  # type: ignore[operator]
        # Without auth and without "user:password@" in the URL, requests' prepare_auth
        # parses the URL to find none, and does nothing.
        p.prepare_auth(auth, url)
    hooks = _merge_hooks(request.hooks, session.hooks)
    if not (type(hooks) is dict and len(hooks) == 1 and hooks.get("response") == []):
        # requests' default hooks ({"response": []}) register nothing: the prepared
        # request already holds them.
        p.prepare_hooks(hooks)
    return p
