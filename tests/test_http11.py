"""keepwarm's header parser builds exactly the HTTPMessage http.client's email parser does."""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import gzip
import http.client
import io
import logging
import re
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
import urllib3.connection
import urllib3.response
from hypothesis import given, settings
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict
from urllib3 import HTTPHeaderDict
from urllib3.connection import _ResponseOptions
from urllib3.exceptions import DecodeError
from urllib3.util import SKIP_HEADER

import keepwarm
from keepwarm._upstream import wire as wire_module
from keepwarm._upstream.connection import (
    _INIT_SETS,
    _TAKES_SOCK_SHUTDOWN,
    _plain_urllib3_response,
    header_dict,
)
from keepwarm._upstream.session import gunzip
from keepwarm._upstream.transport import _response_headers
from keepwarm._upstream.wire import (
    FastHeadersHTTPResponse,
    PlainHTTPMessage,
    ReadFirstSocketIO,
    TLSSocketIO,
    parse_headers,
    read_whole,
    write_request,
)
from replaced import seen_while_replaced
from servers import LocalServer, RawServer, read_request_head, respond_with

NAME_CHARS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != ":")
names = st.text(alphabet=NAME_CHARS, min_size=1, max_size=12)
values = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=20)
plain_lines = st.builds(
    lambda n, v, sp: f"{n}:{sp}{v}\r\n", names, values, st.sampled_from(["", " ", "  ", "\t"])
)
odd_lines = st.sampled_from(
    [
        " folded continuation\r\n",
        "\tfolded with tab\r\n",
        "no colon here\r\n",
        "From someone@example.com\r\n",
        "Bare: carriage\rreturn\r\n",
        "Name With Space: x\r\n",
        ": empty name\r\n",
        "Lf-Only: value\n",
        "Trailing: spaces   \r\n",
        "Empty:\r\n",
    ]
)
heads = st.lists(st.one_of(plain_lines, plain_lines, odd_lines), max_size=12)


def _state(message: http.client.HTTPMessage) -> dict[str, object]:
    state = dict(vars(message))
    state.pop("_keepwarm_index", None)  # PlainHTTPMessage's lookup cache, not state
    # email's defect objects compare by identity: compare their kind and text.
    state["defects"] = [(type(d), str(d)) for d in message.defects]
    return state


LOOKUPS = ["Content-Length", "content-length", "Set-Cookie", "X", "Missing", "CONNECTION"]


def _lookups(message: http.client.HTTPMessage) -> list[object]:
    """What http.client, urllib3 and requests ask a message, answered."""
    names = [name for name, _ in message._headers] + LOOKUPS  # type: ignore[attr-defined]
    # urllib3's assert_header_parsing asks for the payload (PlainHTTPMessage answers an
    # empty one itself) and the defects.
    payload = [message.is_multipart(), message.get_payload(), message.get_payload(decode=True)]
    return [message.items(), payload, [str(d) for d in message.defects]] + [
        (message.get(n), message.get(n, "fail"), n in message, message.get_all(n)) for n in names
    ]


def _rfc9112(header_lines: bytes) -> bytes:
    """Header lines with each bare CR made a space (RFC 9112 section 2.2), which is how
    keepwarm reads them; http.client takes a bare CR for a line break."""
    return re.sub(rb"\r(?!\n)", b" ", header_lines)


def _both(
    head: bytes, expected: bytes | None = None
) -> tuple[dict[str, object], bytes, dict[str, object], bytes]:
    """keepwarm's parse of ``head`` and http.client's of ``expected`` (default: the same)."""
    ours_fp, theirs_fp = io.BytesIO(head), io.BytesIO(head if expected is None else expected)
    ours = parse_headers(ours_fp)
    theirs = http.client.parse_headers(theirs_fp)
    assert _lookups(ours) == _lookups(theirs)
    return _state(ours), ours_fp.read(), _state(theirs), theirs_fp.read()


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(st.sampled_from(["A", "a", "Retry-After", "X-Y"]), values), max_size=6))
def test_header_get_answers_as_urllib3s_get(fields: list[tuple[str, str]]) -> None:
    headers = HTTPHeaderDict()
    for name, value in fields:
        headers.add(name, value)
    for name in ("a", "retry-after", "x-y", "missing"):
        assert wire_module.header_get(headers, name) == headers.get(name)
        assert wire_module.header_get(headers, name, "") == headers.get(name, "")
    plain = {"retry-after": "1"}  # not urllib3's: its own get
    assert wire_module.header_get(plain, "retry-after") == "1"


def test_plain_message_lookups_after_changes_match_http_client() -> None:
    head = b"Content-Length: 2\r\nX-Caf: caf\xe9\r\n\r\n"
    ours, theirs = parse_headers(io.BytesIO(head)), http.client.parse_headers(io.BytesIO(head))
    assert type(ours) is PlainHTTPMessage
    # Each step is looked up after, so a lookup index built before a change is tested.
    changes: list[Callable[[http.client.HTTPMessage], None]] = [
        lambda m: m.__setitem__("X-Surrogate", "bad\udcff"),  # a Header object comes back
        lambda m: m.__setitem__("X-Added", "1"),
        lambda m: m.__delitem__("content-length"),
        lambda m: m.replace_header("x-added", "2"),
        lambda m: m.__setitem__("Content-Length", "3"),
        lambda m: m.__setitem__("x-added", "again"),
        lambda m: m.__delitem__("X-ADDED"),
    ]
    assert _lookups(ours) == _lookups(theirs)
    for change in changes:
        for message in (ours, theirs):
            change(message)
        assert [str(v) for _, v in ours.items()] == [str(v) for _, v in theirs.items()]
        assert [type(v) for _, v in ours.items()] == [type(v) for _, v in theirs.items()]
        assert _lookups(ours)[1:] == _lookups(theirs)[1:]


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(heads, st.sampled_from([b"\r\n", b"\n"]), st.binary(max_size=8))
def test_same_message_as_http_client(lines: list[str], end: bytes, body: bytes) -> None:
    header_lines = "".join(lines).encode("latin-1")
    head = header_lines + end + body
    ours, ours_rest, theirs, theirs_rest = _both(head, _rfc9112(header_lines) + end + body)
    assert ours == theirs
    assert ours_rest == theirs_rest == body


@pytest.mark.parametrize(
    "head",
    [
        b"Content-Length: 2\r\nConnection: keep-alive\r\n\r\n",
        b"Set-Cookie: a=1\r\nSet-Cookie:  b=2 \r\n\r\n",
        b"X-Folded: one\r\n two\r\n\r\n",
        b"\r\n",
        b"",
        b"Caf\xe9: cr\xe8me\r\n\r\n",
    ],
)
def test_known_heads(head: bytes) -> None:
    ours, ours_rest, theirs, theirs_rest = _both(head)
    assert ours == theirs
    assert ours_rest == theirs_rest


def _answer(head: bytes) -> Callable[..., None]:
    def script(conn: object, server: RawServer) -> None:
        import socket

        assert isinstance(conn, socket.socket)
        while read_request_head(conn):
            conn.sendall(head)

    return script


def test_folded_and_plain_responses_through_a_session() -> None:
    """Over a real socket: a plain head takes the fast path, a folded one the email
    parser; keepwarm's response headers are plain requests' in both cases, and the
    connection is reused."""
    plain = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\n\r\nok"
    folded = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\n  continued\r\n\r\nok"
    for head in (plain, folded):
        with RawServer(_answer(head)) as server:
            with requests.Session() as plain_session:
                expected = dict(plain_session.get(server.url + "/", timeout=5).headers)
            with keepwarm.Session() as s:
                for _ in range(3):
                    r = s.get(server.url + "/")
                    assert r.text == "ok"
                    assert dict(r.headers) == expected
            assert server.connections_accepted == 2  # one per client


# -- urllib3's headers copied into the Response -----------------------------------------------

header_items = st.lists(
    st.tuples(st.sampled_from(["Set-Cookie", "set-cookie", "X-A", "x-a", "Vary", "VARY"]), values),
    max_size=10,
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(header_items)
def test_response_headers_copy_like_case_insensitive_dict(items: list[tuple[str, str]]) -> None:
    source = HTTPHeaderDict()
    for name, value in items:
        source.add(name, value)
    fast, slow = _response_headers(source), CaseInsensitiveDict(source)
    assert list(fast.items()) == list(slow.items())  # same spellings, order and joins
    assert list(fast.lower_items()) == list(slow.lower_items())
    # Anything that is not urllib3's own class is copied the generic way.
    assert dict(_response_headers({"A": "1"})) == {"A": "1"}


# -- request heads: write_request against urllib3's own request() ----------------------------

header_names = st.sampled_from(
    [
        "Host",
        "host",
        "Accept-Encoding",
        "User-Agent",
        "user-agent",
        "Content-Length",
        "content-length",
        "Transfer-Encoding",
        "X-Thing",
        "x-thing",
        "Cookie",
        "Bad Name",
        "Bad:Name",
        "Caf\u00e9",
    ]
)
header_values = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x17F), max_size=12),
    st.binary(max_size=8),
    st.sampled_from(["a\r\nInjected: 1", "folded\r\n continued", "", SKIP_HEADER, 7]),
)
request_headers = st.lists(st.tuples(header_names, header_values), max_size=6)


def _wire(
    send: Callable[[urllib3.connection.HTTPConnection], object],
    host: str = "example.test",
    port: int = 8080,
) -> tuple[object, bytes]:
    """What ``send(conn)`` returns or raises, and the bytes it put on the wire."""
    conn = urllib3.connection.HTTPConnection(host, port)
    ours, theirs = socket.socketpair()
    conn.sock = ours
    try:
        try:
            outcome: object = send(conn)
        except Exception as exc:  # the exception is the outcome compared
            outcome = (type(exc), str(exc))
        theirs.setblocking(False)
        received = b""
        for _ in range(1000):
            try:
                chunk = theirs.recv(65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            received += chunk
        options = getattr(conn, "_response_options", None)
        return (outcome, options), received
    finally:
        ours.close()
        theirs.close()


#: Connection hosts and ports: a default and another port, an IPv6 address, a host that is
#: not ASCII (http.client IDNA-encodes it), one ending in a dot (urllib3 strips it).
origins = st.sampled_from(
    [
        ("example.test", 8080),
        ("example.test", 80),
        ("127.0.0.1", 80),
        ("::1", 8080),
        ("b\u00fccher.example", 80),
        ("example.test.", 8080),
    ]
)


@settings(max_examples=1000, deadline=None, derandomize=True, database=None)
@given(
    st.sampled_from(
        ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "get", "GE T", "G\u00c9T"]
    ),
    st.sampled_from(
        ["/", "/a?b=c", "", "/x y", "http://example.test/abs", "/\u00e9", "/a\r\nb", "/a\x7fb"]
    ),
    st.one_of(st.none(), st.binary(max_size=20)),
    request_headers,
    st.booleans(),
    origins,
)
def test_write_request_puts_urllib3s_bytes_on_the_wire(
    method: str,
    url: str,
    body: bytes | None,
    pairs: list[tuple[str, object]],
    cid: bool,
    origin: tuple[str, int],
) -> None:
    # The head written in one pass (wire._write_head) or through http.client's steps:
    # the same bytes, result or exception as urllib3's own request().
    headers: Any = CaseInsensitiveDict() if cid else {}
    for name, value in pairs:
        headers[name] = value
    options = {"preload_content": False, "decode_content": True, "enforce_content_length": True}

    def ours(conn: urllib3.connection.HTTPConnection) -> object:
        return write_request(conn, method, url, body, headers, False, options)

    outcome, wire = _wire(ours, *origin)
    if outcome[0] is False:
        # Declined: nothing was written, and urllib3's own request() still works on it.
        assert wire == b""
        return
    expected, expected_wire = _wire(
        lambda c: urllib3.connection.HTTPConnection.request(
            c, method, url, body, headers, **options
        ),
        *origin,
    )
    # Same result (None from urllib3, True from write_request) or the same exception, the
    # same options for the response, the same bytes.
    assert (None if outcome[0] is True else outcome[0]) == expected[0]
    assert outcome[1] == expected[1]
    assert wire == expected_wire


@pytest.mark.parametrize(
    "method, url",
    [("GET", "/kept"), ("GET", "/a?token=x"), ("GET", "/u:pw@x"), ("GE T", "/")],
)
def test_a_request_line_is_remembered_once_checked(method: str, url: str) -> None:
    # wire._write_head remembers a request line once the method and target passed their
    # checks; asked again, the bytes or the refusal are urllib3's. A target with a query
    # or an "@" (_bounded.keepable) is not kept.
    options = {"preload_content": False, "decode_content": True, "enforce_content_length": True}
    wire_module._REQUEST_LINES.clear()
    for _ in range(2):
        outcome, wire = _wire(lambda c: write_request(c, method, url, None, {}, False, options))
        expected, expected_wire = _wire(
            lambda c: urllib3.connection.HTTPConnection.request(c, method, url, None, {}, **options)
        )
        # True, or the exception urllib3's steps raise ("GE T"): as urllib3's request().
        assert (None if outcome[0] is True else outcome[0]) == expected[0]
        assert wire == expected_wire
    kept = (method, url, "HTTP/1.1") in wire_module._REQUEST_LINES
    assert kept is (url == "/kept")


def test_a_head_in_one_pass_keeps_http_clients_state(monkeypatch: pytest.MonkeyPatch) -> None:
    # A second request before the first response: http.client's CannotSendRequest,
    # nothing more on the wire; a tunnel's Host is the tunnel's: http.client's steps.
    options = {"preload_content": False, "decode_content": False, "enforce_content_length": True}
    one_pass = []
    real = wire_module._write_head

    def counted(*args: Any) -> bool:
        done = real(*args)
        one_pass.append(done)
        return done

    monkeypatch.setattr(wire_module, "_write_head", counted)

    def twice(conn: urllib3.connection.HTTPConnection) -> object:
        write_request(conn, "GET", "/1", None, {}, False, options)
        return write_request(conn, "GET", "/2", None, {}, False, options)

    ours, ours_wire = _wire(twice)
    theirs, theirs_wire = _wire(
        lambda c: (
            urllib3.connection.HTTPConnection.request(c, "GET", "/1", **options),
            urllib3.connection.HTTPConnection.request(c, "GET", "/2", **options),
        )
    )
    assert ours[0] == theirs[0] == (http.client.CannotSendRequest, "Request-sent")
    assert ours_wire == theirs_wire
    assert one_pass == [True, False]

    def tunnelled(conn: urllib3.connection.HTTPConnection) -> object:
        conn._tunnel_host = "origin.test"
        conn._tunnel_port = 443
        return write_request(conn, "GET", "/", None, {}, False, options)

    ours, ours_wire = _wire(tunnelled)
    assert ours[0] is True
    assert ours_wire.startswith(b"GET / HTTP/1.1\r\nHost: origin.test:443\r\n")
    assert one_pass[-1] is False


def test_a_replaced_head_step_sees_the_request(
    http_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # sentry-sdk replaces http.client's putrequest to add its trace headers: keepwarm's
    # requests go through it, as plain requests' do.
    seen = []
    real = http.client.HTTPConnection.putrequest

    def putrequest(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> None:
        seen.append((method, url))
        real(self, method, url, *args, **kwargs)
        self.putheader("X-Traced", "1")

    monkeypatch.setattr(http.client.HTTPConnection, "putrequest", putrequest)
    for session in (requests.Session(), keepwarm.Session()):
        with session:
            session.get(http_server.url + "/echo?n=1", timeout=5).close()
    assert seen == [("GET", "/echo?n=1")] * 2
    assert [r.headers.get("X-Traced") for r in http_server.requests] == ["1", "1"]


def test_write_request_declines_what_it_does_not_handle() -> None:
    options = {"preload_content": True, "decode_content": True, "enforce_content_length": True}
    for body, headers, chunked in [
        (b"x", {}, True),  # chunked
        ("text", {}, False),  # str body: urllib3 encodes it
        (iter([b"x"]), {}, False),  # a generator
        (None, None, False),  # no headers mapping
        (None, {"Transfer-Encoding": "chunked"}, False),
        (None, {b"X-Bytes-Name": "v"}, False),
        (None, {"User-Agent": SKIP_HEADER}, False),
    ]:
        outcome, wire = _wire(
            lambda c, b=body, h=headers, ch=chunked: write_request(
                c, "POST", "/", b, h, ch, options
            )
        )
        assert outcome[0] is False and wire == b"", (body, headers)


@pytest.mark.parametrize("client", ["requests", "keepwarm"])
def test_a_bare_cr_never_smuggles_a_second_header(
    client: str, raw_server: Callable[..., RawServer]
) -> None:
    """``X-A: a<CR>Set-Cookie: evil=1``: plain requests (http.client's email parser) reads
    a second header and stores the cookie; keepwarm reads one header with a space, as RFC
    9112 section 2.2 asks, and stores nothing."""
    head = b"HTTP/1.1 200 OK\r\nX-A: a\rSet-Cookie: evil=1\r\nContent-Length: 2\r\n\r\nok"
    server = raw_server(respond_with(head))
    with requests.Session() if client == "requests" else keepwarm.Session() as s:
        r = s.get(server.url + "/", timeout=5)
        assert r.status_code == 200 and r.content == b"ok"
        if client == "requests":
            assert r.headers["Set-Cookie"] == "evil=1" and s.cookies.get("evil") == "1"
        else:
            assert "Set-Cookie" not in r.headers and not s.cookies
            assert r.headers["X-A"] == "a Set-Cookie: evil=1"


# Gzip bodies read in one call --------------------------------------------------------------


def _urllib3_gunzip(data: bytes) -> bytes:
    decoder = urllib3.response.GzipDecoder()
    return decoder.decompress(data) + decoder.flush()


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    st.lists(st.binary(max_size=3000), min_size=1, max_size=3),
    st.sampled_from([b"", b"\x00", b"garbage", b"\x00" * 16]),
)
def test_gunzip_inflates_whole_streams_as_urllib3(members: list[bytes], tail: bytes) -> None:
    """For complete gzip streams (one to three members, maybe followed by garbage)
    ``gunzip`` returns what urllib3's decoder returns."""
    data = b"".join(gzip.compress(m) for m in members) + tail
    assert gunzip(data) == _urllib3_gunzip(data) == b"".join(members)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.binary(min_size=1, max_size=3000), st.data())
def test_gunzip_refuses_a_cut_stream(payload: bytes, data: st.DataObject) -> None:
    """A gzip stream cut anywhere before its last byte raises DecodeError (urllib3's
    decoder returns the part as the whole body, or raises for a cut inside the header)."""
    whole = gzip.compress(payload)
    cut = data.draw(st.integers(min_value=1, max_value=len(whole) - 1))
    with pytest.raises(DecodeError):
        gunzip(whole[:cut])
    assert gunzip(b"") == b""


# urllib3's response, built by keepwarm's copy of its getresponse ------------------------------

_HEADS = {
    "plain": b"Server: t\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n",
    "repeated": (
        b"Set-Cookie: a=1\r\nset-cookie: b=2\r\nX-A: 1\r\nX-B: 2\r\nx-a: 3\r\nContent-Length: 2\r\n"
    ),
    "folded": b"X-Folded: one\r\n two\r\nContent-Length: 2\r\n",
    "defect": b"X-A: 1\r\nno colon here\r\nContent-Length: 2\r\n",
    "latin-1": b"X-Caf\xe9: cr\xe8me\r\nContent-Length: 2\r\n",
    "empty-value": b"X-Empty:\r\nX-Spaces:    \r\nContent-Length: 2\r\n",
}


def _urllib3_view(r: Any) -> tuple[Any, ...]:
    headers = r.headers
    return (
        r.status,
        r.version,
        getattr(r, "version_string", None),
        r.reason,
        list(headers.items()),
        {name: headers.getlist(name) for name in headers},
        type(headers).__name__,
        r.read(),
        r.length_remaining,
    )


@pytest.mark.parametrize("kind", sorted(_HEADS))
def test_urllib3_response_as_urllib3_builds_it(
    kind: str, raw_server: Callable[..., RawServer], caplog: pytest.LogCaptureFixture
) -> None:
    # keepwarm's connections build urllib3's HTTPResponse with their own copy of urllib3's
    # getresponse (the headers of a plain head put in its store directly): the same
    # response as urllib3's own, and the same warning for a head with a defect.
    head = b"HTTP/1.1 200 Fine\r\n" + _HEADS[kind] + b"\r\nok"
    server = raw_server(respond_with(head))
    views, warnings = [], []
    with keepwarm.Session(max_retries=0) as s, urllib3.PoolManager(retries=False) as pool:
        for client in ("urllib3", "keepwarm"):
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="urllib3.connection"):
                if client == "urllib3":
                    response = pool.request("GET", server.url + "/", preload_content=False)
                    views.append(_urllib3_view(response))
                    response.release_conn()
                else:
                    with s.get(server.url + "/", stream=True) as r:
                        views.append(_urllib3_view(r.raw))
            warnings.append([(r.name, r.getMessage().split(" (url=")[0]) for r in caplog.records])
    assert views[1] == views[0]
    assert warnings[1] == warnings[0]
    # A line without a colon, and a name the email parser does not take (non-ASCII).
    assert bool(warnings[0]) == (kind in ("defect", "latin-1"))


_CONSTRUCTED = {
    # name: (method, response head and body)
    "length": ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    "chunked": (
        "GET",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    ),
    "gzip-chunked": (
        "GET",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip , Chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    ),
    "until-close": ("GET", b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end"),
    "head": ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
    "no-content": ("GET", b"HTTP/1.1 204 No Content\r\n\r\n"),
    "two-lengths": ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"),
    "lengths-differ": ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok"),
    "http-1.0": ("GET", b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    # How long urllib3 takes the body to be (_init_length), for lengths read either way:
    "length-zeros": ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 0002\r\n\r\nok"),
    "length-list": ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok"),
    "length-signed": ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok"),
    "length-negative": ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok"),
    "length-underscore": ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 0_2\r\n\r\nok"),
    "length-not-ascii": (  # "\xb2" is "²", a digit to str.isdigit, not to int()
        "GET",
        b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\nok",
    ),
    "length-empty": ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\nok"),
    "length-and-chunked": (
        "GET",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\n\r\n",
    ),
    "no-content-length": ("GET", b"HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\n"),
    "not-modified-length": ("GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 2\r\n\r\n"),
    "head-length": ("HEAD", b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\n"),
}


#: The attributes urllib3's response constructors set on every release keepwarm supports,
#: and those three later releases added (2.3, 2.7, 2.8).
_RESPONSE_ATTRIBUTES = frozenset(
    {
        "headers",
        "status",
        "version",
        "version_string",
        "reason",
        "decode_content",
        "_has_decoded_content",
        "_request_url",
        "_retries",
        "chunked",
        "_decoder",
        "enforce_content_length",
        "auto_close",
        "_body",
        "_fp",
        "_original_response",
        "_fp_bytes_read",
        "msg",
        "_pool",
        "_connection",
        "chunk_left",
        "length_remaining",
        "_decoded_buffer",
    }
)
_LATER_ATTRIBUTES = frozenset({"_sock_shutdown", "_uncached_read_occurred", "_decoder_initialized"})


@pytest.mark.parametrize("kind", sorted(_CONSTRUCTED))
@pytest.mark.parametrize("decode_content, enforce_content_length", [(False, True), (True, False)])
def test_urllib3_response_built_as_its_constructor_builds_it(
    kind: str, decode_content: bool, enforce_content_length: bool
) -> None:
    # keepwarm's connections build urllib3's HTTPResponse attribute by attribute
    # (connection._plain_urllib3_response): the same attributes, set in the same order to
    # the same values, the same exception, and the same body read, as urllib3's constructor.
    method, data = _CONSTRUCTED[kind]
    options = _ResponseOptions(
        request_method=method,
        request_url="/p",
        preload_content=False,
        decode_content=decode_content,
        enforce_content_length=enforce_content_length,
    )
    outcomes = []
    for build in ("urllib3", "keepwarm"):
        ours, theirs = socket.socketpair()
        try:
            theirs.sendall(data)
            theirs.shutdown(socket.SHUT_WR)
            body = FastHeadersHTTPResponse(ours, method=method)
            body.begin()
            headers = header_dict(body.msg._headers)
            shutdown = ours.shutdown
            try:
                if build == "urllib3":
                    extra = {"sock_shutdown": shutdown} if _TAKES_SOCK_SHUTDOWN else {}
                    r = urllib3.response.HTTPResponse(
                        body=body,
                        headers=headers,
                        status=body.status,
                        version=body.version,
                        version_string="HTTP/1.1",
                        reason=body.reason,
                        preload_content=False,
                        decode_content=decode_content,
                        original_response=body,
                        enforce_content_length=enforce_content_length,
                        request_method=method,
                        request_url="/p",
                        **extra,
                    )
                else:
                    r = _plain_urllib3_response(body, headers, "HTTP/1.1", options, shutdown)
            except Exception as e:  # the exception is what is compared
                outcomes.append((type(e), str(e)))
                continue
            state = dict(vars(r))
            order = list(state)
            buffer = state.pop("_decoded_buffer")
            assert type(buffer) is urllib3.response.BytesQueueBuffer and len(buffer) == 0
            assert state.pop("headers") is headers
            assert state.pop("_fp") is body and state.pop("_original_response") is body
            assert state.pop("_sock_shutdown", shutdown) == shutdown
            outcomes.append((order, state, r.read()))
        finally:
            ours.close()
            theirs.close()
    assert outcomes[1] == outcomes[0]
    if len(outcomes[0]) == 3:  # built, not raised: every attribute the constructor sets
        assert set(outcomes[0][0]) == _RESPONSE_ATTRIBUTES | (_LATER_ATTRIBUTES & _INIT_SETS)


def test_a_replaced_urllib3_response_constructor_builds_keepwarms(
    http_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A tool that replaces urllib3's HTTPResponse.__init__ sees keepwarm's responses built.
    original = urllib3.response.HTTPResponse.__init__
    seen: list[int] = []

    def wrapped(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        seen.append(self.status)

    monkeypatch.setattr(urllib3.response.HTTPResponse, "__init__", wrapped)
    with keepwarm.Session(max_retries=0) as s:
        assert s.get(http_server.url + "/").status_code == 200
    assert seen == [200]


def test_a_replaced_urllib3_init_length_is_called(
    http_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # keepwarm reads a plain Content-Length itself; a tool that replaced urllib3's
    # _init_length (to see or change the length a body is read to) is called.
    original = urllib3.response.HTTPResponse._init_length
    seen: list[Any] = []

    def wrapped(self: Any, request_method: Any) -> Any:
        length = original(self, request_method)
        seen.append(length)
        return length

    with keepwarm.Session(max_retries=0) as s:
        assert s.get(http_server.url + "/").status_code == 200
        assert seen == []
        monkeypatch.setattr(urllib3.response.HTTPResponse, "_init_length", wrapped)
        r = s.get(http_server.url + "/")
    assert seen == [len(r.content)]


def test_a_replaced_urllib3_getresponse_is_called(
    http_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A tracer or recorder that wraps urllib3's getresponse sees keepwarm's responses:
    # keepwarm's connections then call it instead of their copy.
    original = urllib3.connection.HTTPConnection.getresponse
    seen: list[int] = []

    def wrapped(self: Any) -> Any:
        response = original(self)
        seen.append(response.status)
        return response

    with keepwarm.Session(max_retries=0) as s:
        assert s.get(http_server.url + "/").status_code == 200
        monkeypatch.setattr(urllib3.connection.HTTPConnection, "getresponse", wrapped)
        assert s.get(http_server.url + "/").status_code == 200
        assert seen == [200]
        monkeypatch.undo()
        assert s.get(http_server.url + "/").status_code == 200
        assert seen == [200]


@pytest.mark.parametrize("point", ["urlopen", "_make_request"])
def test_a_wrapped_urlopen_gets_the_headers_as_requests_passes_them(
    http_server: Any, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    # keepwarm hands its own pools the request headers as a plain dict, unless a tool
    # (OpenTelemetry's or ddtrace's urllib3 instrumentation) wraps urlopen or
    # _make_request: it reads them case-insensitively, as from plain requests.
    original = getattr(urllib3.connectionpool.HTTPConnectionPool, point)
    seen: dict[str, list[Any]] = {"requests": [], "keepwarm": []}
    client = ["requests"]

    def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
        headers = kwargs["headers"]  # requests and urllib3 pass it by name
        seen[client[0]].append((type(headers).__name__, headers.get("user-agent")))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(urllib3.connectionpool.HTTPConnectionPool, point, wrapped)
    with requests.Session() as plain, keepwarm.Session(max_retries=0) as kw:
        plain.get(http_server.url + "/")
        client[0] = "keepwarm"
        kw.get(http_server.url + "/")
    assert seen["keepwarm"] == seen["requests"]
    assert seen["requests"][0][0] in ("CaseInsensitiveDict", "HTTPHeaderDict")


# urllib3's response, read whole by keepwarm's short cut of its read() -------------------------

_GZIPPED = gzip.compress(b"inflated")
_BODIES = {
    # name: (method, response bytes, server holds the connection open after them)
    "plain": ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", False),
    "empty": ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", False),
    "until-close": ("GET", b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end", False),
    "head": ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", False),
    "no-content": ("GET", b"HTTP/1.1 204 No Content\r\n\r\n", False),
    "not-modified": ("GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", False),
    "gzip": (
        "GET",
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(_GZIPPED)
        + _GZIPPED,
        False,
    ),
    "cut-short": ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok", False),
    "stalled": ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok", True),
}


def _read_outcome(raw: Any, read: Callable[[Any], Any]) -> tuple[Any, ...]:
    try:
        outcome: Any = read(raw)
    except Exception as e:  # the exception is what is compared
        outcome = (type(e), str(e), type(e.__cause__))
    return (
        outcome,
        raw._fp_bytes_read,
        raw.tell(),
        raw.length_remaining,
        getattr(raw, "_uncached_read_occurred", None),
        raw._fp.isclosed(),
        raw._connection is None,  # given back to the pool, or dropped
    )


@pytest.mark.parametrize("kind", sorted(_BODIES))
def test_a_whole_body_read_leaves_the_response_as_urllib3s_read_does(
    kind: str, raw_server: Callable[..., RawServer]
) -> None:
    # read_whole is urllib3's read() cut to what it does for a whole body with no decoder
    # (session.read_body's common case): the same bytes or the same exception, and the
    # response left the same (counts, closed, connection released) as urllib3's own.
    method, data, hold = _BODIES[kind]
    server = raw_server(respond_with(data, close=not hold))
    outcomes = []
    with keepwarm.Session(max_retries=0, timeout=(3, 0.3)) as s:
        for read in (lambda raw: raw.read(decode_content=False), read_whole):
            with s.request(method, server.url + "/", stream=True) as r:
                outcomes.append(_read_outcome(r.raw, read))
    assert outcomes[1] == outcomes[0]
    if kind == "gzip":
        assert outcomes[0][0] == _GZIPPED
    if kind == "stalled":
        assert outcomes[0][0][0] is urllib3.exceptions.ReadTimeoutError


def test_a_whole_body_read_declines_what_it_does_not_handle(
    http_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with keepwarm.Session(max_retries=0) as s:
        with s.get(http_server.url + "/", stream=True) as r:
            assert r.raw.read(1, decode_content=False)  # something read already
            assert read_whole(r.raw) is None
        with s.get(http_server.url + "/", stream=True) as r:
            monkeypatch.setattr(r.raw, "_fp", io.BytesIO(b"ok"))  # not keepwarm's own head
            assert read_whole(r.raw) is None


_READ_STEPS = [
    *(
        (urllib3.response.HTTPResponse, step)
        for step in ("read", "_raw_read", "_fp_read", "_init_decoder", "_decode", "_error_catcher")
    ),
    *((http.client.HTTPResponse, step) for step in ("read", "_safe_read", "_close_conn")),
]


@pytest.mark.parametrize(
    "owner, step", _READ_STEPS, ids=[f"{o.__module__}-{step}" for o, step in _READ_STEPS]
)
def test_a_replaced_read_step_sees_the_body(
    http_server: Any, monkeypatch: pytest.MonkeyPatch, owner: type, step: str
) -> None:
    # A tool that wraps a step of urllib3's HTTPResponse.read, or of http.client's read of
    # a whole body, (to record or trace bodies) sees keepwarm's bodies: they are then read
    # through those steps, not keepwarm's copies (wire.read_whole).
    original = getattr(owner, step)
    calls: list[str] = []

    def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(step)
        return original(self, *args, **kwargs)

    with keepwarm.Session(max_retries=0) as s:
        before = s.get(http_server.url + "/").content
        assert calls == []
        monkeypatch.setattr(owner, step, wrapped)
        assert s.get(http_server.url + "/").content == before
        assert calls
        monkeypatch.undo()
        calls.clear()
        assert s.get(http_server.url + "/").content == before
        assert calls == []


def test_urllib3s_error_catcher_is_known_under_a_wrapper() -> None:
    # hooks compares urllib3's ``_error_catcher`` (a contextlib.contextmanager) with the
    # function contextmanager made of urllib3's generator, also when a tool wrapped it
    # before keepwarm was imported; anything else is a replacement.
    from keepwarm._upstream import hooks

    own = urllib3.response.HTTPResponse._error_catcher
    assert hooks._own_context_manager(own, urllib3.response) is own

    @functools.wraps(own)
    def wrapper(self: Any) -> Any:
        return own(self)

    assert hooks._own_context_manager(wrapper, urllib3.response) is own
    assert isinstance(
        hooks._own_context_manager(
            contextlib.contextmanager(lambda: iter([None])), urllib3.response
        ),
        hooks._Unknown,
    )


# A request the server does not read ----------------------------------------------------------


@pytest.mark.parametrize("client", ["requests", "keepwarm"])
def test_a_head_the_server_does_not_read_waits_the_connect_timeout(
    client: str, raw_server: Callable[..., RawServer]
) -> None:
    # urllib3 sends a request under the connect timeout: a head larger than the socket
    # buffers, to a server that never reads, ends after the connect timeout (not the read
    # timeout), with the same exception from keepwarm's head writer as from requests.
    server = raw_server(lambda conn, srv: srv.wait_closed())
    huge = "x" * (16 * 1024 * 1024)
    session = requests.Session() if client == "requests" else keepwarm.Session(max_retries=0)
    started = time.monotonic()
    with session, pytest.raises(requests.ConnectionError) as caught:
        session.get(server.url + "/", headers={"X-Huge": huge}, timeout=(0.5, 60))
    assert time.monotonic() - started < 30  # the read timeout would be 60 s
    aborted = caught.value.args[0]
    assert type(aborted) is urllib3.exceptions.ProtocolError
    assert aborted.args[0] == "Connection aborted."
    assert type(aborted.args[1]) is TimeoutError


# The status line, read by a copy of http.client's _read_status that remembers its answers ------


def _status_outcome(read: Callable[[Any], Any], line: bytes, debuglevel: int = 0) -> Any:
    response: Any = http.client.HTTPResponse.__new__(http.client.HTTPResponse)
    response.fp = io.BufferedReader(io.BytesIO(line + b"Server: x\r\n\r\n"))  # type: ignore[arg-type]
    response.debuglevel = debuglevel
    try:
        outcome: Any = read(response)
    except Exception as e:  # the exception is what is compared
        outcome = (type(e), str(e), type(e.__context__))
    return outcome, response.fp is None or response.fp.read()


_STATUS_LINE_PARTS = st.sampled_from(
    [
        "HTTP/1.1",
        "HTTP/1.0",
        "HTTP/2",
        "HTTPS/1.1",
        "http/1.1",
        "",
        " ",
        "200",
        "99",
        "1000",
        "2OO",
        "+200",
        "OK",
        "Not Found",
        "\t",
        "\x85",
        "\xe9t\xe9",
    ]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_STATUS_LINE_PARTS, max_size=4), st.sampled_from(["\r\n", "\n", ""]))
def test_a_status_line_reads_as_http_client_reads_it(parts: list[str], end: str) -> None:
    # Asked once and again (the second from what it remembered), the same answer, the
    # same exception (the connection closed for a line that is not HTTP), the same bytes
    # left, as http.client's _read_status.
    line = (" ".join(parts) + end).encode("latin-1")
    expected = _status_outcome(http.client.HTTPResponse._read_status, line)  # type: ignore[attr-defined]
    for _ in range(2):
        assert _status_outcome(wire_module._read_status, line) == expected


def test_a_long_status_line_and_debug_output_as_http_client(
    capsys: pytest.CaptureFixture[str],
) -> None:
    long_line = b"HTTP/1.1 200 " + b"x" * 70000 + b"\r\n"
    expected = _status_outcome(http.client.HTTPResponse._read_status, long_line)  # type: ignore[attr-defined]
    assert _status_outcome(wire_module._read_status, long_line) == expected
    line = b"HTTP/1.1 200 OK\r\n"
    for _ in range(2):  # remembered or not, each line is printed under debuglevel
        for read in (http.client.HTTPResponse._read_status, wire_module._read_status):  # type: ignore[attr-defined]
            assert _status_outcome(read, line, debuglevel=1)[0] == ("HTTP/1.1", 200, "OK\r\n")
    assert capsys.readouterr().out == "reply: 'HTTP/1.1 200 OK\\r\\n'\n" * 4


def test_a_replaced_status_reader_is_called(
    http_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = http.client.HTTPResponse._read_status  # type: ignore[attr-defined]
    seen: list[int] = []

    def wrapped(self: Any) -> Any:
        version, status, reason = original(self)
        seen.append(status)
        return version, status, reason

    with keepwarm.Session(max_retries=0) as s:
        assert s.get(http_server.url + "/").status_code == 200
        assert seen == []
        monkeypatch.setattr(http.client.HTTPResponse, "_read_status", wrapped)
        assert s.get(http_server.url + "/").status_code == 200
    assert seen == [200]


@pytest.mark.parametrize("client", ["requests", "keepwarm"])
def test_a_replaced_http_client_getresponse_that_edits_the_head_is_seen(
    client: str, http_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A tool that replaced http.client's getresponse, and changed the message, is seen
    # in the response's headers as requests sees it.
    original = http.client.HTTPConnection.getresponse

    def edited(self: Any) -> Any:
        response = original(self)
        response.msg["X-Added"] = "1"
        response.msg.replace_header("Content-Type", "text/edited")
        return response

    monkeypatch.setattr(http.client.HTTPConnection, "getresponse", edited)
    session = requests.Session() if client == "requests" else keepwarm.Session(max_retries=0)
    with session:
        r = session.get(http_server.url + "/")
    assert r.headers["X-Added"] == "1"
    assert r.headers["Content-Type"] == "text/edited"


# -- the response's reader, made in one step -----------------------------------------------


def _connected_sockets(
    scheme: str, server_ssl_context: ssl.SSLContext, ca_bundle: str
) -> tuple[socket.socket, socket.socket]:
    """A connected (client, server) pair with a timeout on the client: the standard library's
    plain sockets, or its TLS sockets over them."""
    client, server = socket.socketpair()
    client.settimeout(5)
    server.settimeout(5)
    if scheme == "http":
        return client, server
    context = ssl.create_default_context(cafile=ca_bundle)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        accepted = pool.submit(server_ssl_context.wrap_socket, server, server_side=True)
        tls_client = context.wrap_socket(client, server_hostname="localhost")
        return tls_client, accepted.result(timeout=10)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_the_response_reader_is_made_as_makefile_makes_it(
    scheme: str, server_ssl_context: ssl.SSLContext, ca_bundle: str
) -> None:
    """FastHeadersHTTPResponse builds its reader without ``sock.makefile``: the same state as
    http.client's constructor leaves, the same reference counted on the socket (and
    released on close), the same 8 KiB buffer; only the raw reader's class differs."""
    reader = TLSSocketIO if scheme == "https" else ReadFirstSocketIO
    pairs = [_connected_sockets(scheme, server_ssl_context, ca_bundle) for _ in range(2)]
    (ours_sock, ours_peer), (theirs_sock, theirs_peer) = pairs
    try:
        ours = FastHeadersHTTPResponse(ours_sock, method="GET")
        theirs = http.client.HTTPResponse(theirs_sock, method="GET")
        assert ours_sock._io_refs == theirs_sock._io_refs == 1  # type: ignore[attr-defined]
        state = {k: v for k, v in vars(ours).items() if k != "fp"}
        assert state == {k: v for k, v in vars(theirs).items() if k != "fp"}
        assert type(ours.fp) is type(theirs.fp) is io.BufferedReader
        assert type(ours.fp.raw) is reader
        assert type(theirs.fp.raw) is socket.SocketIO
        assert ours.fp.raw._sock is ours_sock  # type: ignore[attr-defined]
        assert theirs.fp.raw._sock is theirs_sock  # type: ignore[attr-defined]
        assert dict(vars(ours.fp.raw), _sock=None) == dict(vars(theirs.fp.raw), _sock=None)
        for probe in ("mode", "closed", "readable", "writable", "seekable"):
            mine, other = getattr(ours.fp, probe), getattr(theirs.fp, probe)
            assert (mine() if callable(mine) else mine) == (other() if callable(other) else other)
        assert ours.fp.name == ours.fp.fileno() == ours_sock.fileno()
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n"
        body = bytes(range(256)) * 78 + b"x" * 32
        for peer in (ours_peer, theirs_peer):
            peer.sendall(head + body)
        for response in (ours, theirs):
            response.begin()
        # The same buffer: the first peek after the head holds what one 8 KiB fill left.
        assert len(ours.fp.peek()) == len(theirs.fp.peek())
        assert ours.read() == theirs.read() == body
        assert ours.isclosed() and theirs.isclosed()
        assert ours_sock._io_refs == theirs_sock._io_refs == 0  # type: ignore[attr-defined]
    finally:
        for sock in (ours_sock, ours_peer, theirs_sock, theirs_peer):
            sock.close()
    assert ours_sock.fileno() == theirs_sock.fileno() == -1


READER_STEPS: dict[str, tuple[type, str]] = {
    "socket.makefile": (socket.socket, "makefile"),
    "SocketIO.__init__": (socket.SocketIO, "__init__"),
    "HTTPResponse.__init__": (http.client.HTTPResponse, "__init__"),
}


@pytest.mark.parametrize("step", sorted(READER_STEPS))
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_replaced_reader_step_is_called_as_under_requests(
    step: str,
    scheme: str,
    make_server: Callable[..., LocalServer],
    ca_bundle: str,
) -> None:
    """While a tool has replaced a step of making a response's reader, keepwarm's response
    class calls it as often as plain requests does, and the bodies read the same."""
    server = make_server(tls=scheme == "https")
    owner, attribute = READER_STEPS[step]
    original = getattr(owner, attribute)
    calls: list[str] = []

    @functools.wraps(original)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        calls.append(step)
        return original(*args, **kwargs)

    plain, ours = seen_while_replaced(server.url + "/", ca_bundle, owner, attribute, wrapped, calls)
    assert ours == plain
    assert len(ours[0]) >= 3


TLS_SEND_STEPS: dict[str, tuple[type, str]] = {
    "SSLSocket.sendall": (ssl.SSLSocket, "sendall"),
    "SSLSocket.send": (ssl.SSLSocket, "send"),
}


@pytest.mark.parametrize("step", sorted(TLS_SEND_STEPS))
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_replaced_tls_send_step_is_called_as_under_requests(
    step: str,
    scheme: str,
    make_server: Callable[..., LocalServer],
    ca_bundle: str,
) -> None:
    """A head goes out on a TLS socket in one write of its own, not through
    ``SSLSocket.sendall`` and ``send``; while a tool has replaced either, it is called
    as often as under plain requests, with the same request lines."""
    server = make_server(tls=scheme == "https")
    owner, attribute = TLS_SEND_STEPS[step]
    original = getattr(owner, attribute)
    calls: list[bytes] = []

    @functools.wraps(original)
    def wrapped(sock: Any, data: Any, *args: Any) -> Any:
        line = bytes(data).split(b"\r\n", 1)[0]
        if not line.startswith(b"HTTP/"):  # not the local server's replies
            calls.append(line)
        return original(sock, data, *args)

    plain, ours = seen_while_replaced(server.url + "/", ca_bundle, owner, attribute, wrapped, calls)
    assert ours == plain
    assert ours[0] == ([b"GET / HTTP/1.1"] * 3 if scheme == "https" else [])


# -- what begin() makes of a head ---------------------------------------------------------

_HEAD_FIELDS = st.tuples(
    st.sampled_from(
        ["Connection", "connection", "Transfer-Encoding", "Content-Length", "Keep-Alive", "X-A"]
    ),
    st.sampled_from(
        [
            "close",
            "Close",
            "keep-alive",
            "Keep-Alive, close",
            "chunked",
            "gzip, chunked",
            "2",
            "0",
            "-1",
            "",
            "x",
            "timeout=5",
        ]
    ),
)


def _begun(cls: type[http.client.HTTPResponse], head: bytes, method: str) -> dict[str, Any]:
    ours, theirs = socket.socketpair()
    try:
        ours.settimeout(5)
        theirs.sendall(head)
        theirs.shutdown(socket.SHUT_WR)
        response = cls(ours, method=method)
        response.begin()
        state = {k: v for k, v in vars(response).items() if k not in ("fp", "headers", "msg")}
        state["headers"] = response.msg.items()
        response.close()
        return state
    finally:
        ours.close()
        theirs.close()


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    st.sampled_from(["HTTP/1.1 200 OK", "HTTP/1.0 200 OK", "HTTP/1.1 204 No Content"]),
    st.lists(_HEAD_FIELDS, max_size=4),
    st.sampled_from(["GET", "HEAD"]),
)
def test_begin_reads_a_head_as_http_client_does(
    status_line: str, fields: list[tuple[str, str]], method: str
) -> None:
    """Chunked or not, the length, and whether the connection closes after the response:
    keepwarm's ``begin`` (which reads those from a plain head's index at once for HTTP/1.1)
    leaves the state http.client's leaves."""
    lines = "".join(f"{name}: {value}\r\n" for name, value in fields)
    head = f"{status_line}\r\n{lines}\r\n".encode("latin-1")
    expected = _begun(http.client.HTTPResponse, head, method)
    assert _begun(FastHeadersHTTPResponse, head, method) == expected


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_replaced_check_close_is_called_as_under_requests(
    scheme: str,
    make_server: Callable[..., LocalServer],
    ca_bundle: str,
) -> None:
    """``begin`` works out http.client's ``_check_close`` in place only while it is
    http.client's own (``hooks.HC_CHECK_CLOSE``): a replacement is called once a response,
    as under plain requests, and its answer is taken."""
    server = make_server(tls=scheme == "https")
    original = http.client.HTTPResponse._check_close  # type: ignore[attr-defined]
    calls: list[bool] = []

    @functools.wraps(original)
    def wrapped(self: Any) -> bool:
        answer: bool = original(self)
        calls.append(answer)
        return answer

    plain, ours = seen_while_replaced(
        server.url + "/", ca_bundle, http.client.HTTPResponse, "_check_close", wrapped, calls
    )
    assert ours == plain
    assert ours[0] == [False, False, False]
