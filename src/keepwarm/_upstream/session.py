# requests' ``Session`` request path, copied and trimmed: the part of ``keepwarm.Session``
# that depends on how requests is written inside.
#
# :class:`RequestsSessionBase` is a ``requests.Session`` whose request path is requests'
# own, step for step, with three kinds of change:
#
# * the environment (proxies, ``NO_PROXY``, netrc, CA bundle variables) is read from the
#   session's :class:`~keepwarm._upstream.environment.EnvironmentSnapshot` instead of
#   ``os.environ`` and the disk on every request;
# * work that finds nothing is skipped (cookie extraction for responses without
#   ``Set-Cookie``, the redirect machinery for non-redirects, requests' body generator
#   chain for bodies read in one call);
# * ``mount()`` swaps in a new adapter dict instead of reordering it in place.
#
# What ``keepwarm.Session`` adds on top (knobs, timeouts, lifecycle) lives in
# ``keepwarm._session`` and reaches this class through two override points:
# :meth:`RequestsSessionBase._join_url` (``base_url``) and the ``_environment`` attribute.
# Each method names the requests function it copies; ``tests/test_upstream.py`` holds a
# fingerprint of every one of them for each verified requests version.

from __future__ import annotations

import contextlib
import threading
import zlib
from collections import OrderedDict
from datetime import timedelta
from http import cookiejar
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import requests
from requests import hooks as requests_hooks
from requests.adapters import BaseAdapter, HTTPAdapter
from requests.auth import _basic_auth_str
from requests.exceptions import ChunkedEncodingError, ContentDecodingError
from requests.hooks import default_hooks, dispatch_hook
from requests.models import DEFAULT_REDIRECT_LIMIT, PreparedRequest, Request, Response
from requests.sessions import preferred_clock
from requests.structures import CaseInsensitiveDict
from requests.utils import default_headers, get_auth_from_url
from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.response import HTTPResponse as Urllib3Response

from keepwarm._bounded import remember
from keepwarm._upstream.hooks import REQUESTS_SESSION, session_request_hooked

if TYPE_CHECKING:
    # Bound by load_machinery() below, at run time.
    from keepwarm._deadline import Deadline, current_deadline
    from keepwarm._upstream.cookies import (
        ThreadSafeCookieJar,
        extract_cookies,
        scope_cookies,
    )
    from keepwarm._upstream.environment import EnvironmentSnapshot
    from keepwarm._upstream.prepare import ONLY_RESPONSE, merge_setting, prepare
    from keepwarm._upstream.wire import header_get, read_whole

__all__ = [
    "ONE_READ_MAX",
    "RequestsSessionBase",
    "gunzip",
    "load_machinery",
    "read_body",
    "reset_adapter_after_fork",
]


def load_machinery() -> None:
    # Import what the request path uses and bind it here: cookies, the environment
    # snapshot, request preparation and the total-timeout deadline load with the first
    # session or transport (``keepwarm._session.load_machinery``; the transport module
    # calls this when it loads), not with ``import keepwarm``. A class needs none of them to
    # be defined, and a program that imports keepwarm and sends nothing on a given run
    # need not pay them (issue 16: about a third of what importing keepwarm added to
    # importing requests). Idempotent, and safe from several threads: the imports take
    # the import lock and every thread binds the same objects.
    global Deadline, current_deadline, ThreadSafeCookieJar, extract_cookies, scope_cookies
    global EnvironmentSnapshot, ONLY_RESPONSE, merge_setting, prepare, read_whole, header_get
    from keepwarm._deadline import Deadline, current_deadline
    from keepwarm._upstream.cookies import (
        ThreadSafeCookieJar,
        extract_cookies,
        scope_cookies,
    )
    from keepwarm._upstream.environment import EnvironmentSnapshot
    from keepwarm._upstream.prepare import ONLY_RESPONSE, merge_setting, prepare
    from keepwarm._upstream.wire import header_get, read_whole


#: The longest announced ``Content-Length`` read in one call (16 MiB). The one call hands
#: the announced length to ``http.client``, which allocates that much before a byte
#: arrives: a server that announces 10**14 bytes and sends five made keepwarm raise
#: MemoryError (2**64: OverflowError) where requests, reading 10 KiB at a time, raises
#: ChunkedEncodingError. What the one call saves is a fixed few microseconds per response
#: (requests' generator chain), which matters for small bodies and is noise next to
#: moving 16 MiB; longer bodies take requests' own path.
ONE_READ_MAX = 16 * 1024 * 1024


class RequestsSessionBase(requests.Session):
    # ``requests.Session`` with its request path copied here (see the module docstring).

    _environment: EnvironmentSnapshot
    _mount_lock: threading.Lock

    def _init_requests_state(self, *, guards: bool = False, strict: bool = False) -> None:
        # requests' ``Session.__init__`` without its two ``HTTPAdapter``\ s (built and
        # thrown away otherwise); the jar is :class:`ThreadSafeCookieJar` (with the
        # cookie-scope guard when ``guards``).
        self.headers = default_headers()
        self.auth = None
        self.proxies = {}
        self.hooks = default_hooks()
        self.params = {}
        self.stream = False
        self.verify = True
        self.cert = None
        self.max_redirects = DEFAULT_REDIRECT_LIMIT
        self.trust_env = True
        self.cookies = ThreadSafeCookieJar(guards=guards, strict=strict)
        self.adapters = OrderedDict()

    def _join_url(self, url: str) -> str:
        # Override point: the URL a request is really sent to (``base_url`` joins here).
        return url

    # Sending -------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        url: str,
        params: Any,
        data: Any,
        headers: Any,
        cookies: Any,
        files: Any,
        auth: Any,
        timeout: Any,
        allow_redirects: bool,
        proxies: Any,
        hooks: Any,
        stream: Any,
        verify: Any,
        cert: Any,
        json: Any,
    ) -> Response:
        # ``super().request(...)`` for a subclass's ``request`` (keepwarm.Session's): what
        # the next ``request`` in the class's order runs. While that is requests' own
        # ``Session.request`` (no class between defines one, no tool replaced it, nor
        # ``Request`` or its constructor) and no hooks are given, requests' steps run here:
        # the ``Request`` is built with the attributes its constructor sets (for no hooks,
        # requests' ``default_hooks()``, nothing registered), in the same order, without
        # the ``super`` object, requests' frame and the constructor's own. requests
        # 2.32-2.34, fingerprinted.
        plain = _PLAIN_REQUEST.get(type(self))
        if plain is None:
            plain = _requests_request_next(type(self))
        if hooks is not None or not plain or session_request_hooked():
            return super().request(
                method,
                url,
                params=params,
                data=data,
                headers=headers,
                cookies=cookies,
                files=files,
                auth=auth,
                timeout=timeout,
                allow_redirects=allow_redirects,
                proxies=proxies,
                hooks=hooks,
                stream=stream,
                verify=verify,
                cert=cert,
                json=json,
            )
        # Request(method=method.upper(), url=url, headers=headers, files=files,
        # data=data or {}, json=json, params=params or {}, auth=auth, cookies=cookies)
        req = _NEW_REQUEST(Request)
        req.hooks = {"response": []} if requests_hooks.HOOKS == ONLY_RESPONSE else default_hooks()
        req.method = method.upper()
        req.url = url
        req.headers = {} if headers is None else headers
        req.files = [] if files is None else files
        req.data = data or {}
        req.json = json
        req.params = params or {}
        req.auth = auth
        req.cookies = cookies
        prep = self.prepare_request(req)
        proxies = proxies or {}
        settings = self.merge_environment_settings(prep.url, proxies, stream, verify, cert)
        send_kwargs = {"timeout": timeout, "allow_redirects": allow_redirects}
        send_kwargs.update(settings)
        return self.send(prep, **send_kwargs)

    def _send(self, request: PreparedRequest, kwargs: dict[str, Any]) -> Response:
        # requests' ``Session.send``, step for step, without cookie work for responses
        # that set no cookie and without the redirect machinery for non-redirects.
        kwargs.setdefault("stream", self.stream)
        kwargs.setdefault("verify", self.verify)
        kwargs.setdefault("cert", self.cert)
        if isinstance(request, Request):
            raise ValueError("You can only send PreparedRequests.")
        allow_redirects = kwargs.pop("allow_redirects", True)
        stream = kwargs.get("stream")
        hooks = request.hooks
        adapter = self.get_adapter(url=str(request.url))
        start = preferred_clock()
        r = adapter.send(request, **kwargs)
        r.elapsed = timedelta(0, preferred_clock() - start)  # (days, seconds): no keyword
        if (hooks or {}).get("response"):  # else requests' dispatch_hook returns r as it is
            r = dispatch_hook("response", hooks, r, **kwargs)
        if r.history:
            # If the hooks create history then we want those cookies too.
            for resp in r.history:
                extract_cookies(self.cookies, resp.request, resp.raw)
        extract_cookies(self.cookies, request, r.raw)
        if allow_redirects:
            history = (
                []
                if _no_location(self, r) or self.get_redirect_target(r) is None
                else list(self.resolve_redirects(r, request, **kwargs))
            )
        else:
            history = []
        if history:
            history.insert(0, r)
            r = history.pop()
            r.history = history
        if not allow_redirects:
            try:
                r._next = next(self.resolve_redirects(r, request, yield_requests=True, **kwargs))  # type: ignore[assignment]
            except StopIteration:
                pass
        if not stream:
            read_body(r)
        return r

    # Environment, read from the snapshot instead of os.environ --------------------------

    def _resolve_proxies(
        self, request: PreparedRequest | Request, proxies: dict[str, str] | None
    ) -> dict[str, str]:
        # requests' ``utils.resolve_proxies`` against the session's snapshot.
        proxies = proxies if proxies is not None else {}
        new_proxies = proxies.copy()
        if self.trust_env:
            url = str(request.url)
            no_proxy = proxies.get("no_proxy")
            if not self._environment.should_bypass(url, no_proxy):
                environ_proxies = self._environment.environ_proxies(url, no_proxy)
                scheme = urlsplit(url).scheme
                proxy = environ_proxies.get(scheme, environ_proxies.get("all"))
                if proxy:
                    new_proxies.setdefault(scheme, proxy)
        return new_proxies

    def merge_environment_settings(
        self,
        url: str | bytes | None,
        proxies: Any,
        stream: Any,
        verify: Any,
        cert: Any,
    ) -> dict[str, Any]:
        # requests' ``Session.merge_environment_settings`` against the snapshot.
        if self.trust_env:
            env = self._environment
            if env.proxies:
                no_proxy = proxies.get("no_proxy") if proxies is not None else None
                env_proxies = env.environ_proxies(str(url), no_proxy)
                if proxies is not None:
                    for k, v in env_proxies.items():
                        proxies.setdefault(k, v)
            # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE apply where nobody chose a CA: a
            # session.verify set to a path or False is a choice and wins (requests 3829).
            if (verify is True or verify is None) and self.verify is True and env.ca_bundle:
                verify = env.ca_bundle
        return {
            "proxies": merge_setting(proxies, self.proxies),
            # merge_setting(None, x) is x.
            "stream": self.stream if stream is None else merge_setting(stream, self.stream),
            "verify": merge_setting(verify, self.verify),
            "cert": self.cert if cert is None else merge_setting(cert, self.cert),
        }

    def prepare_request(self, request: Request) -> PreparedRequest:
        # requests' ``Session.prepare_request`` (see ``prepare``), with netrc read from
        # the snapshot, the URL passed through :meth:`_join_url` (also for
        # ``session.send(session.prepare_request(...))``), and dict cookies bound to the
        # request's host.
        url = request.url
        if isinstance(url, bytes):
            url = url.decode("utf-8")
        if isinstance(url, str):
            url = self._join_url(url)
        cookies: cookiejar.CookieJar | None
        if not request.cookies:
            cookies = None
        elif isinstance(request.cookies, cookiejar.CookieJar):
            cookies = request.cookies
        else:
            # Bound to the request's host, so they do not follow a cross-host redirect.
            cookies = scope_cookies(request.cookies, str(url))
        auth = request.auth
        environment = self._environment
        # No netrc file read at capture (the common case): nothing to ask it.
        if self.trust_env and not auth and environment._netrc is not None and not self.auth:
            auth = environment.netrc_auth(str(url))
        return prepare(
            self, request, str(url), cookies, auth, cookies_replace=cookies is not request.cookies
        )

    def rebuild_auth(self, prepared_request: PreparedRequest, response: Response) -> None:
        # requests' ``Session.rebuild_auth``, with netrc read from the snapshot.
        headers = prepared_request.headers
        url = str(prepared_request.url)
        original_url = str(response.request.url)
        if "Authorization" in headers and self.should_strip_auth(original_url, url):
            del headers["Authorization"]
        new_auth = self._environment.netrc_auth(url) if self.trust_env else None
        if new_auth is not None:
            prepared_request.prepare_auth(new_auth)

    def rebuild_proxies(
        self, prepared_request: PreparedRequest, proxies: dict[str, str] | None
    ) -> dict[str, str]:
        # requests' ``Session.rebuild_proxies``, with the environment read from the
        # snapshot.
        headers = prepared_request.headers
        scheme = urlsplit(str(prepared_request.url)).scheme
        new_proxies = self._resolve_proxies(prepared_request, proxies)
        if "Proxy-Authorization" in headers:
            del headers["Proxy-Authorization"]
        try:
            username, password = get_auth_from_url(new_proxies[scheme])
        except KeyError:
            username, password = None, None
        # Never add it to TLS-tunnelled requests, where it could reach the origin.
        if not scheme.startswith("https") and username and password:
            headers["Proxy-Authorization"] = _basic_auth_str(username, password)
        return new_proxies

    # Adapters ----------------------------------------------------------------------------

    def mount(self, prefix: str, adapter: BaseAdapter) -> None:
        # Register an adapter for a URL prefix; safe while other threads send requests.
        #
        # requests' ``Session.mount`` reorders its adapter dict in place, so a thread inside
        # ``get_adapter`` can fail with "OrderedDict mutated during iteration" (requests
        # 6366). Here a new dict is built and swapped in under a lock; readers see the old
        # or the new one.
        with self._mount_lock:
            adapters: OrderedDict[str, BaseAdapter] = OrderedDict(self.adapters)
            adapters[prefix] = adapter
            for key in [k for k in adapters if len(k) < len(prefix)]:
                adapters[key] = adapters.pop(key)
            self.adapters = adapters


_NEW_REQUEST: Final = Request.__new__


def _requests_request_next(cls: type) -> bool:
    # Whether ``super(RequestsSessionBase, session).request`` finds requests' own
    # ``Session.request`` for a session of class ``cls``: no class between them in its
    # order defines ``request`` (a mixin's would run there). Stored in
    # :data:`_PLAIN_REQUEST`, which the caller reads first.
    order = cls.__mro__
    after = order[order.index(RequestsSessionBase) + 1 :]
    owner = next((k for k in after if "request" in vars(k)), None)
    return remember(_PLAIN_REQUEST, cls, owner is REQUESTS_SESSION, _PLAIN_REQUEST_MAX)


#: Session class -> :func:`_requests_request_next` of it. Bounded.
_PLAIN_REQUEST: dict[type, bool] = {}
_PLAIN_REQUEST_MAX: Final = 64


#: requests' own ``get_redirect_target`` and ``Response.is_redirect``.
_GET_REDIRECT_TARGET: Final = requests.sessions.SessionRedirectMixin.get_redirect_target
_IS_REDIRECT: Final = Response.__dict__["is_redirect"]


def _no_location(session: requests.Session, r: Response) -> bool:
    # Whether requests' ``get_redirect_target`` would answer None because the response
    # has no Location header (``is_redirect`` checks that first), told from the headers'
    # store: ``"location" in headers`` goes through the Mapping ABC to a KeyError. False
    # (ask ``get_redirect_target``) for a subclass's, or headers that are not requests'.
    headers = r.headers
    return (
        type(session).get_redirect_target is _GET_REDIRECT_TARGET
        and type(r).is_redirect is _IS_REDIRECT
        and type(headers) is CaseInsensitiveDict
        and "location" not in headers._store
    )


def reset_adapter_after_fork(adapter: HTTPAdapter) -> None:
    # Give a plain ``HTTPAdapter`` mounted on a keepwarm session new, empty pools in a
    # forked child (requests' ``HTTPAdapter.__setstate__`` does the same on unpickling).
    adapter.proxy_manager = {}
    adapter.init_poolmanager(
        adapter._pool_connections, adapter._pool_maxsize, block=adapter._pool_block
    )


def read_body(response: Response) -> None:
    # ``response.content``, read in one call instead of requests' generator chain
    # (``iter_content`` -> urllib3 ``stream`` -> ``read`` in 10 KiB pieces), with the same
    # exceptions requests raises. Anything else (a chunked body, whose parse errors urllib3's
    # chunk reader explains better; an announced length over :data:`ONE_READ_MAX`; a
    # response hook that read or replaced the body; a raw object that is not urllib3's)
    # takes requests' own path.
    #
    # A ``Content-Encoding: gzip`` body is inflated by :func:`gunzip`, which, unlike
    # urllib3's decoder, raises ContentDecodingError for a gzip stream cut short (a
    # ``Content-Length`` that matches the bytes sent, but not the whole stream), instead of
    # returning the part as a complete body.
    raw = response.raw
    deadline = current_deadline()
    if (
        deadline is not None
        and type(raw) is Urllib3Response
        and response._content is False
        and not response._content_consumed
    ):
        _read_body_by_deadline(response, raw, deadline)
        return
    if (
        response._content is not False
        or response._content_consumed
        or response.status_code == 0
        or type(raw) is not Urllib3Response
        or raw.chunked
        or (raw.length_remaining or 0) > ONE_READ_MAX
    ):
        response.content  # noqa: B018  (reading the body is the point)
        return
    encoding = _content_encoding(raw)
    gzipped = encoding in _GZIP
    try:
        # urllib3's read steps skipped where they would only pass the bytes on.
        data = read_whole(raw) if gzipped or not encoding else None
        if data is None:
            data = raw.read(decode_content=not gzipped)
        if gzipped:
            data = gunzip(data)
    except _READ_ERRORS as e:
        raise _as_requests_error(e) from e
    # requests' reading ends with a read that finds nothing left, on which urllib3 closes
    # http.client's response (its ``closed`` turns True, as code that looks at
    # ``response.raw._original_response`` sees); one read of the whole body has no such
    # read, so it is closed here.
    original = raw._fp
    if original is not None:
        original.close()
    response._content = data or b""
    response._content_consumed = True


#: What urllib3 raises while a body is read, and what requests makes of each (the
#: exceptions of ``Response.iter_content``).
_READ_ERRORS: Final = (ProtocolError, DecodeError, ReadTimeoutError, Urllib3SSLError)


def _as_requests_error(error: Exception) -> requests.RequestException:
    if isinstance(error, ProtocolError):
        return ChunkedEncodingError(error)
    if isinstance(error, DecodeError):
        return ContentDecodingError(error)
    if isinstance(error, ReadTimeoutError):
        return requests.exceptions.ConnectionError(error)
    return requests.exceptions.SSLError(error)


def _content_encoding(raw: Urllib3Response) -> str:
    encoding: str = header_get(raw.headers, "content-encoding", "")
    return encoding.strip().lower()


#: The most read per step of a body read under a deadline.
_STEP = 64 * 1024


def _read_body_by_deadline(response: Response, raw: Urllib3Response, deadline: Deadline) -> None:
    # :func:`read_body` for a call with a total deadline: the body in steps of whatever
    # has arrived (``read1``), with the socket's timeout set before each step to the read
    # timeout or the time left, whichever is shorter. One ``read()`` call cannot be cut
    # short: a server that drips a byte per read timeout keeps every single ``recv``
    # inside its timeout. Only taken with a deadline, so calls without one keep the
    # one-call read. Decoding (gzip by :func:`gunzip`, as in :func:`read_body`) and the
    # exceptions are :func:`read_body`'s.
    conn = raw.connection
    sock = getattr(conn, "sock", None)
    per_read = sock.gettimeout() if sock is not None else None
    encoding = _content_encoding(raw)
    gzipped = encoding in _GZIP
    # A body with neither an encoding (no decoder to flush at the end) nor chunks is
    # complete when its announced length has arrived: no read for the end of it.
    whole_at_length = not encoding and not raw.chunked
    chunks: list[bytes] = []
    try:
        while True:
            left = deadline.remaining()
            if left <= 0:
                raw.close()  # the connection is mid-body: not reusable
                raw.release_conn()
                raise deadline.exceeded("reading the response body", response.request)
            if sock is not None:
                sock.settimeout(left if per_read is None else min(per_read, left))
            chunk = raw.read1(_STEP, decode_content=not gzipped)
            if not chunk:
                break
            chunks.append(chunk)
            if whole_at_length and raw.length_remaining == 0:
                break
        data = gunzip(b"".join(chunks)) if gzipped else b"".join(chunks)
    except _READ_ERRORS as e:
        if isinstance(e, ReadTimeoutError) and deadline.remaining() <= 0:
            raise deadline.exceeded("reading the response body", response.request) from e
        raise _as_requests_error(e) from e
    finally:
        if sock is not None and raw.connection is conn:
            with contextlib.suppress(OSError):  # closed meanwhile
                sock.settimeout(per_read)
    raw.release_conn()
    response._content = data
    response._content_consumed = True


_GZIP = ("gzip", "x-gzip")
_GZIP_MAGIC = b"\x1f\x8b"


def gunzip(data: bytes) -> bytes:
    # A whole ``Content-Encoding: gzip`` body, inflated as urllib3's ``GzipDecoder``
    # does (several members concatenated; garbage after a complete member ignored), except
    # that a member cut short raises DecodeError: zlib returns what it could inflate and
    # urllib3 passes that on as the whole body. (After a complete member, what starts with
    # the gzip magic bytes is a member; anything else, garbage.)
    if not data:
        return b""
    out: list[bytes] = []
    first = True
    while data:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out.append(inflater.decompress(data))
        except zlib.error as e:
            if first:
                raise DecodeError(_GZIP_FAILED, e) from e
            break  # trailing garbage after a complete member, as urllib3 allows
        if not inflater.eof:
            if not first and not data.startswith(_GZIP_MAGIC):
                break  # not a gzip member but garbage after one, as urllib3 allows
            raise DecodeError(_GZIP_FAILED, zlib.error("gzip stream cut short"))
        data = inflater.unused_data
        first = False
    return b"".join(out)


#: urllib3's wording for a body that does not decode.
_GZIP_FAILED = "Received response with content-encoding: gzip, but failed to decode it."
