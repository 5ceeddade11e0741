"""keepwarm's prepare_request builds what requests' builds (pure logic, no network)."""

from __future__ import annotations

import http.cookiejar
import io
from collections.abc import Iterator
from typing import Any

import pytest
import requests

import keepwarm

CASES: list[dict[str, Any]] = [
    {"method": "GET", "url": "http://127.0.0.1:8080/a"},
    {"method": "get", "url": "http://127.0.0.1:8080/a b?x=1&y=é"},
    {"method": "GET", "url": "http://example.test/path", "params": {"q": "1", "r": ["a", "b"]}},
    {"method": "GET", "url": "http://example.test/?k=v", "params": [("k", "w")]},
    {"method": "GET", "url": "http://bücher.example/straße"},
    {"method": "POST", "url": "http://example.test/", "data": {"a": "1", "b": None}},
    {"method": "POST", "url": "http://example.test/", "data": b"raw bytes"},
    {"method": "POST", "url": "http://example.test/", "json": {"x": [1, 2]}},
    {"method": "PUT", "url": "http://example.test/", "data": [("a", "1"), ("a", "2")]},
    {"method": "GET", "url": "http://example.test/", "headers": {"X-A": "1", "Accept": None}},
    {"method": "GET", "url": "http://example.test/", "auth": ("user", "pass")},
    {"method": "GET", "url": "http://user:pw@example.test/"},
    {"method": "GET", "url": "http://example.test/", "cookies": {"c": "1"}},
    {"method": "HEAD", "url": "https://example.test:8443/x?y"},
]


def _view(p: requests.PreparedRequest) -> tuple[Any, ...]:
    return (p.method, p.url, dict(p.headers), p.body)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['method']} {c['url']}")
def test_prepared_request_matches_requests(case: dict[str, Any]) -> None:
    session_state = {"headers": {"X-Session": "s"}, "params": {"sp": "1"}}
    with requests.Session() as plain, keepwarm.Session(trust_env=False) as kw:
        plain.trust_env = False
        for s in (plain, kw):
            s.headers.update(session_state["headers"])
            s.params.update(session_state["params"])
        for _ in range(2):  # twice: the second time the prepared URL is remembered
            theirs = plain.prepare_request(requests.Request(**case))
            ours = kw.prepare_request(requests.Request(**case))
            assert _view(ours) == _view(theirs)


SESSION_HEADERS: list[dict[Any, Any]] = [
    {},
    {"X-Drop": None, "Accept": None, "X-Keep": "1"},
    {b"X-Bytes-Name": "v", "X-Bytes-Value": b"raw"},
    {"x-lower": "1", "X-LOWER-TWO": "2"},
]


@pytest.mark.parametrize("extra", SESSION_HEADERS, ids=repr)
@pytest.mark.parametrize("request_headers", [None, {}, {"X-Req": "r"}], ids=repr)
def test_session_headers_prepared_like_requests(
    extra: dict[Any, Any], request_headers: dict[str, str] | None
) -> None:
    with requests.Session() as plain, keepwarm.Session(trust_env=False) as kw:
        plain.trust_env = False
        for s in (plain, kw):
            s.headers.update(extra)
        request = requests.Request("GET", "http://example.test/", headers=request_headers)
        theirs, ours = plain.prepare_request(request), kw.prepare_request(request)
        assert list(ours.headers.items()) == list(theirs.headers.items())
        assert type(ours.headers) is type(theirs.headers)


def test_every_change_to_session_headers_reaches_the_next_request_as_in_requests() -> None:
    # keepwarm remembers the headers a request without its own gets until the session's
    # headers change: every way of changing them must be seen, and a prepared request's
    # headers changed afterwards must not leak into the next one.
    changes = [
        lambda h: h.__setitem__("X-A", "1"),
        lambda h: h.update({"X-B": "2", "Accept": "text/plain"}),
        lambda h: h.__delitem__("x-a"),
        lambda h: h.setdefault("X-C", "3"),
        lambda h: h.pop("X-B"),
        lambda h: h.__setitem__("user-agent", "mine/1"),
        lambda h: h.clear(),
        lambda h: h.update(X_D="4"),
    ]
    with requests.Session() as plain, keepwarm.Session(trust_env=False) as kw:
        plain.trust_env = False
        for change in changes:
            seen = []
            for s in (plain, kw):
                change(s.headers)
                first = s.prepare_request(requests.Request("GET", "http://example.test/"))
                first.headers["X-Prepared-Only"] = "p"
                second = s.prepare_request(requests.Request("GET", "http://example.test/"))
                seen.append(list(second.headers.items()))
            assert seen[0] == seen[1]
            assert "X-Prepared-Only" not in dict(seen[1])


@pytest.mark.parametrize("bad", [" leading-space", "line\r\nbreak", 5])
def test_invalid_session_header_raises_like_requests(bad: object) -> None:
    with requests.Session() as plain, keepwarm.Session(trust_env=False) as kw:
        errors = []
        for s in (plain, kw):
            s.headers["X-Bad"] = bad
            with pytest.raises(requests.exceptions.InvalidHeader) as info:
                s.prepare_request(requests.Request("GET", "http://example.test/"))
            errors.append(str(info.value))
        assert errors[0] == errors[1]


def test_prepared_request_with_files_matches_requests() -> None:
    def request() -> requests.Request:
        return requests.Request(
            "POST", "http://example.test/up", files={"f": ("a.txt", io.BytesIO(b"hello"))}
        )

    with requests.Session() as plain, keepwarm.Session(trust_env=False) as kw:
        plain.trust_env = False
        theirs, ours = plain.prepare_request(request()), kw.prepare_request(request())
    boundary = theirs.headers["Content-Type"].split("boundary=")[1].encode()
    ours_boundary = ours.headers["Content-Type"].split("boundary=")[1].encode()
    assert ours.body.replace(ours_boundary, boundary) == theirs.body  # type: ignore[union-attr]


def _prepared_url_or_error(session: requests.Session, url: str) -> Any:
    try:
        return session.prepare_request(requests.Request("GET", url)).url
    except requests.exceptions.RequestException as e:
        return type(e)


# With urllib3 >= 2.8 all four raise (MissingSchema, then InvalidURL). Older urllib3 accepts a
# space in the host: "not a url" is then MissingSchema and "http://exa mple.test/" prepares
# (and fails to connect), in requests as in keepwarm. Whatever requests does, keepwarm does,
# every time: an invalid URL is never remembered as prepared.
@pytest.mark.parametrize(
    "url", ["example.test/path", "not a url", "http://", "http://exa mple.test/"]
)
def test_invalid_urls_raise_every_time(url: str) -> None:
    with requests.Session() as plain, keepwarm.Session() as kw:
        expected = _prepared_url_or_error(plain, url)
        assert [_prepared_url_or_error(kw, url) for _ in range(2)] == [expected, expected]


def _full_view(p: requests.PreparedRequest) -> tuple[Any, ...]:
    """Everything a prepared request carries, in order: headers as sent, hooks, the cookie
    jar attached for redirects."""
    return (
        p.method,
        p.url,
        list(p.headers.items()),
        p.body,
        {event: list(hooks) for event, hooks in p.hooks.items()},
        type(p._cookies).__name__,  # type: ignore[attr-defined]
        sorted((c.name, c.value) for c in p._cookies),  # type: ignore[attr-defined]
    )


def _hook(r: requests.Response, *args: Any, **kwargs: Any) -> None:
    return None


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
@pytest.mark.parametrize(
    "data",
    [None, {}, [], (), "", b"", io.BytesIO(b""), {"a": "1"}, b"x", iter([])],
    ids=lambda d: type(d).__name__ + ("-empty" if not d else ""),
)
def test_requests_without_a_body_are_prepared_like_requests(method: str, data: Any) -> None:
    # keepwarm skips requests' prepare_body for empty data of a built-in type (no body,
    # Content-Length: 0 for methods other than GET and HEAD); anything else takes
    # requests' own step. A stream (BytesIO, an iterator) must never be taken for "empty".
    stream = isinstance(data, io.BytesIO) or type(data).__name__ == "list_iterator"
    with requests.Session() as plain, keepwarm.Session(trust_env=False) as kw:
        plain.trust_env = False
        args = {"method": method, "url": "http://127.0.0.1:8080/x"}
        their_data = (
            (io.BytesIO(b"") if isinstance(data, io.BytesIO) else iter([])) if stream else data
        )
        theirs = _full_view(plain.prepare_request(requests.Request(**args, data=their_data)))
        prepared = kw.prepare_request(requests.Request(**args, data=data))
        ours = _full_view(prepared)
        if stream:  # the stream itself is the body, as requests passes it on
            assert prepared.body is data
            theirs, ours = theirs[:3] + theirs[4:], ours[:3] + ours[4:]
        assert ours == theirs


@pytest.mark.parametrize(
    ("session_hooks", "request_hooks"),
    [
        (None, None),
        ({"response": [_hook]}, None),
        (None, {"response": _hook}),
        (None, {"response": [_hook, _hook]}),
        ({"response": [_hook]}, {"response": [_hook]}),
        (None, {"response": []}),
        (None, {"response": ()}),
    ],
)
def test_hooks_are_prepared_like_requests(session_hooks: Any, request_hooks: Any) -> None:
    with requests.Session() as plain, keepwarm.Session(trust_env=False) as kw:
        plain.trust_env = False
        for s in (plain, kw):
            if session_hooks is not None:
                s.hooks = session_hooks
        theirs = plain.prepare_request(
            requests.Request("GET", "http://127.0.0.1:8080/", hooks=request_hooks)
        )
        ours = kw.prepare_request(
            requests.Request("GET", "http://127.0.0.1:8080/", hooks=request_hooks)
        )
        assert _full_view(ours) == _full_view(theirs)


def _jars() -> Iterator[tuple[str, Any]]:
    yield "empty", requests.cookies.RequestsCookieJar()
    one = requests.cookies.RequestsCookieJar()
    one.set("a", "1", domain="127.0.0.1", path="/")
    yield "one", one
    cleared = requests.cookies.RequestsCookieJar()
    cleared.set("a", "1", domain="127.0.0.1", path="/")
    cleared.clear()
    yield "cleared", cleared
    # clear(domain, path, name) leaves the domain's and the path's dictionaries behind,
    # empty: a store that is not empty but holds no cookie.
    emptied = requests.cookies.RequestsCookieJar()
    emptied.set("a", "1", domain="127.0.0.1", path="/")
    emptied.clear("127.0.0.1", "/", "a")
    yield "emptied", emptied
    plain = http.cookiejar.CookieJar()
    yield "stdlib-empty", plain
    from keepwarm._upstream.cookies import ThreadSafeCookieJar

    yield "session-empty", ThreadSafeCookieJar()  # a keepwarm session's own jar
    session_one = ThreadSafeCookieJar()
    session_one.set("a", "1", domain="127.0.0.1", path="/")
    yield "session-one", session_one

    class Subclassed(requests.cookies.RequestsCookieJar):
        pass

    yield "subclass-empty", Subclassed()


@pytest.mark.parametrize("kind", [kind for kind, _ in _jars()])
def test_a_jar_is_empty_exactly_when_it_holds_no_cookie(kind: str) -> None:
    from keepwarm._upstream.prepare import has_cookies

    jar = dict(_jars())[kind]
    assert has_cookies(jar) is bool(jar)
    with requests.Session() as plain, keepwarm.Session(trust_env=False) as kw:
        plain.trust_env = False
        plain.cookies = dict(_jars())[kind]
        kw.cookies = jar
        request = requests.Request("GET", "http://127.0.0.1:8080/")
        assert _full_view(kw.prepare_request(request)) == _full_view(plain.prepare_request(request))


_SETTINGS = [None, True, False, "/ca.pem", b"x", 0, 1.5, ("cert", "key"), {}, {"a": "1"}]


@pytest.mark.parametrize("session_setting", _SETTINGS)
@pytest.mark.parametrize("request_setting", _SETTINGS)
def test_merge_setting_is_requests(request_setting: Any, session_setting: Any) -> None:
    from requests.sessions import merge_setting as theirs

    from keepwarm._upstream.prepare import merge_setting as ours

    assert ours(request_setting, session_setting) == theirs(request_setting, session_setting)


@pytest.mark.parametrize("method", ["GET", "get", "pAtCh", "HEAD", "OPTIONS", "ﬀ-custom", "ß"])
@pytest.mark.parametrize("session_auth", [None, ("s", "p")], ids=["no-auth", "session-auth"])
@pytest.mark.parametrize("params", [None, {}, {"q": "1"}], ids=repr)
def test_a_prepared_request_is_built_as_requests_builds_it(
    method: str, session_auth: Any, params: Any
) -> None:
    # keepwarm builds the PreparedRequest without its constructor and prepare_method, and
    # skips merge_setting for empty params and no session auth: the same attributes, in
    # the same order, with hooks of its own per request.
    with requests.Session() as plain, keepwarm.Session(trust_env=False) as kw:
        plain.trust_env = False
        prepared = []
        for s in (plain, kw):
            s.auth = session_auth
            made = [
                s.prepare_request(requests.Request(method, "http://127.0.0.1:8080/", params=params))
                for _ in range(2)
            ]
            assert made[0].hooks is not made[1].hooks
            assert made[0].hooks["response"] is not made[1].hooks["response"]
            prepared.append(made[0])
        theirs, ours = prepared
        assert list(vars(ours)) == list(vars(theirs))
        assert _full_view(ours) == _full_view(theirs)
        assert (ours._body_position, type(ours.method)) == (theirs._body_position, str)  # type: ignore[attr-defined]


def test_requests_hook_events_are_read_when_they_change(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests' default_hooks() makes one list per event of requests.hooks.HOOKS; while
    # that is not ["response"], keepwarm asks it.
    monkeypatch.setattr(requests.hooks, "HOOKS", ["response", "extra"])
    with requests.Session() as plain, keepwarm.Session(trust_env=False) as kw:
        plain.trust_env = False
        for s in (plain, kw):
            request = requests.Request("GET", "http://127.0.0.1:8080/")
            assert request.hooks == {"response": [], "extra": []}
            assert s.prepare_request(request).hooks == {"response": [], "extra": []}
