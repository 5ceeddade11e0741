"""keepwarm's prepare_request builds what requests' builds (pure logic, no network)."""

from __future__ import annotations

import io
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
