# HTTP/1.1 heads written and read with less work than http.client and urllib3 do.
#
# **Request heads.** urllib3's ``HTTPConnection.request`` sends each header through two
# ``putheader`` layers (urllib3's, checking for ``SKIP_HEADER``, then http.client's,
# encoding and validating it) after building a set of the header names: a sixth of the
# client CPU time of a small keep-alive request here. :func:`write_request` writes the same
# bytes for the common request (a body in memory or none, headers that are plain ``str``
# or ``bytes``) with the same checks, and hands anything else to urllib3.
# tests/test_http11.py compares the bytes on the wire with urllib3's own.
#
# **Response heads.**
#
# http.client hands every response head to ``email.parser`` (a feed parser built for MIME
# mail): about an eighth of the client CPU time of a small keep-alive request here. Nearly
# every response head is plain ``Name: value`` lines; for those :func:`parse_headers`
# builds the very same ``http.client.HTTPMessage`` directly (same header list, same empty
# payload, no defects; tests/test_http11.py compares the two on generated heads). Anything
# else (folded continuation lines, a line without a colon, a ``From `` line) goes to
# ``email.parser`` exactly as http.client would. One deliberate difference: a bare CR inside
# a header line is read as a space, as RFC 9112 asks, where http.client's email parser
# starts a new header at it (a smuggled ``Set-Cookie``).
#
# **Bodies.** On a plain TCP socket with a timeout, :class:`ReadFirstSocketIO` receives
# without the ``poll()`` CPython makes before every receive on such a socket, and waits
# (polls, with the timeout) only when nothing has arrived; on a TLS socket,
# :class:`TLSSocketIO` reads each record with three Python calls less. A body announced over
# :data:`LARGE_BODY` is then read with no buffer between the socket and the caller's chunks
# (:func:`_large_body_reader`). Streaming 100 MB with ``iter_content(65536)`` over HTTP:
# 8-11 % less client CPU than before, ahead of plain requests without a timeout
# (docs/PERFORMANCE.md, "Issue 16: streaming"). tests/test_streaming.py checks that a
# stalled body still ends at the read timeout, as in requests. A body read whole
# (``session.read_body``) goes to http.client's ``read()`` without the steps of urllib3's
# ``read`` around it (:func:`read_whole`).

from __future__ import annotations

import _socket
import email.message
import email.parser
import http.client
import io
import os
import re
import socket
import ssl
import sys
from collections.abc import Mapping
from http.client import _CS_IDLE, _CS_REQ_SENT, _CS_REQ_STARTED  # type: ignore[attr-defined]
from typing import Any, BinaryIO, Final

from requests.structures import CaseInsensitiveDict
from urllib3 import HTTPHeaderDict
from urllib3.connection import (
    _CONTAINS_CONTROL_CHAR_RE,
    _get_default_user_agent,
    _ResponseOptions,
)
from urllib3.util import SKIP_HEADER
from urllib3.util.request import _METHODS_NOT_EXPECTING_BODY

from keepwarm._bounded import keepable, remember
from keepwarm._upstream.hooks import (
    HC_CHECK_CLOSE,
    HC_RESPONSE_INIT,
    SOCKET_IO_INIT,
    SOCKET_MAKEFILE,
    SSL_SEND,
    SSL_SENDALL,
    body_read_hooked,
    head_steps_hooked,
    http_read_hooked,
    read_status_hooked,
)

__all__ = [
    "LARGE_BODY",
    "MAX_INTERIM_RESPONSES",
    "FastHeadersHTTPResponse",
    "PlainHTTPMessage",
    "ReadFirstSocketIO",
    "TLSSocketIO",
    "header_get",
    "parse_headers",
    "read_whole",
    "write_request",
]

#: A header line the email parser takes as ``name: value`` with nothing special: a name of
#: printable characters other than ":" and space (the feed parser's own rule), a colon,
#: no CR or LF before the line end.
_SIMPLE_LINE: Final = re.compile(rb"[\x21-\x39\x3b-\x7e]+:[^\r\n]*\r?\n\Z")
_END_LINES: Final = (b"\r\n", b"\n", b"")
#: The most interim (1xx) responses skipped before a final one, as http.client bounds
#: the header lines of one head (``_MAXHEADERS``, 100).
MAX_INTERIM_RESPONSES: Final = 100


def _email_parse(lines: list[bytes]) -> http.client.HTTPMessage:
    # A line with a bare CR never matches _SIMPLE_LINE, so plain heads skip this.
    text = b"".join(_bare_cr_to_space(line) for line in lines).decode("iso-8859-1")
    message: http.client.HTTPMessage = email.parser.Parser(_class=http.client.HTTPMessage).parsestr(
        text
    )
    return message


#: The email package's default policy, as ``email.message`` holds it: importing
#: ``email.policy`` for it would load the header registry (~2 ms of ``import keepwarm``).
_COMPAT32: Final = email.message.compat32  # type: ignore[attr-defined]


class PlainHTTPMessage(http.client.HTTPMessage):
    # The ``HTTPMessage`` of a plain head, with lookups that skip the email policy for
    # ASCII values.
    #
    # The default ``compat32`` policy hands every value read through ``_sanitize_header``,
    # which changes only a ``str`` holding surrogate escapes; an ASCII ``str`` comes back
    # as it is. http.client, urllib3 and requests look headers up a dozen times per
    # response; anything else (other values, another policy) takes the email package's
    # own path.

    def _fetch(self, name: str, value: Any) -> Any:
        if type(value) is str and value.isascii() and self.policy is _COMPAT32:
            return value
        return self.policy.header_fetch_parse(name, value)

    #: (the header list it was built from, its length, lower-case name -> first index).
    _keepwarm_index: tuple[list[tuple[str, Any]], int, dict[str, int]] | None = None

    def _index(self) -> dict[str, int]:
        # Where each name first occurs, built on the first lookup (http.client, urllib3
        # and requests look up about eight names per response, each a scan of every line
        # otherwise). The email API changes ``_headers`` by appending, by replacing a value
        # in place (same name) or by building a new list, so the list and its length tell
        # whether the index still holds.
        headers = self._headers  # type: ignore[attr-defined]
        cached = self._keepwarm_index
        if cached is not None and cached[0] is headers and cached[1] == len(headers):
            return cached[2]
        index: dict[str, int] = {}
        for i, (k, _) in enumerate(headers):
            index.setdefault(k.lower(), i)
        self._keepwarm_index = (headers, len(headers), index)
        return index

    def get(self, name: str, failobj: Any = None) -> Any:
        headers = self._headers  # type: ignore[attr-defined]
        cached = self._keepwarm_index  # _index(), its check inline: ~8 lookups a response
        if cached is not None and cached[0] is headers and cached[1] == len(headers):
            i = cached[2].get(name.lower())
        else:
            i = self._index().get(name.lower())
        if i is None:
            return failobj
        k, v = headers[i]
        return self._fetch(k, v)

    def items(self) -> list[tuple[str, Any]]:
        if self.policy is _COMPAT32:
            return [
                (k, v) if type(v) is str and v.isascii() else (k, self._fetch(k, v))
                for k, v in self._headers  # type: ignore[attr-defined]
            ]
        return [(k, self._fetch(k, v)) for k, v in self._headers]  # type: ignore[attr-defined]

    def get_payload(self, i: Any = None, decode: bool = False) -> Any:
        # A plain head's payload is "" (parse_headers): the email package would look up
        # Content-Transfer-Encoding and scan "" for surrogates to return it as it is.
        payload = self._payload  # type: ignore[attr-defined]
        if i is None and not decode and type(payload) is str and not payload:
            return payload
        return super().get_payload(i, decode)  # type: ignore[call-overload]

    def __contains__(self, name: str) -> bool:
        headers = self._headers  # type: ignore[attr-defined]
        cached = self._keepwarm_index
        if cached is not None and cached[0] is headers and cached[1] == len(headers):
            return name.lower() in cached[2]
        return name.lower() in self._index()


def header_get(headers: Any, name: str, default: Any = None) -> Any:
    # ``headers.get(name, default)``, read from the store when ``headers`` is urllib3's own
    # ``HTTPHeaderDict`` and ``name`` is lower-case: its ``get`` is the Mapping ABC's, which
    # calls ``__getitem__`` (the store's values joined with ", ") and catches the KeyError
    # a missing name raises (most lookups on the request path are for missing names:
    # Retry-After, Transfer-Encoding, Content-Encoding).
    if type(headers) is HTTPHeaderDict:
        values = headers._container.get(name)
        return default if values is None else ", ".join(values[1:])
    return headers.get(name, default)


def _bare_cr_to_space(line: bytes) -> bytes:
    # RFC 9112 section 2.2: a recipient of a bare CR (one not followed by LF) "MUST
    # consider that element to be invalid or replace each bare CR with SP". http.client's
    # email parser takes it for a line break instead, so ``X-A: a\rSet-Cookie: evil=1``
    # would smuggle a second header (a cookie) past whatever checked the first.
    end = 2 if line.endswith(b"\r\n") else 1 if line.endswith(b"\n") else 0
    body = line[: len(line) - end]
    if b"\r" not in body:
        return line
    return body.replace(b"\r", b" ") + line[len(line) - end :]


#: Header line -> its (name, value), for plain lines: a server sends the same Server,
#: Content-Type, Connection... lines on every response. Set-Cookie lines and long lines
#: are not kept.
_PARSED: dict[bytes, tuple[str, str]] = {}
_PARSED_MAX: Final = 256
_PARSED_LINE_MAX: Final = 256


def parse_headers(fp: BinaryIO) -> http.client.HTTPMessage:
    # ``http.client.parse_headers(fp)``, without the email parser for plain heads, and with
    # bare CRs read as spaces (RFC 9112 section 2.2), never as line breaks.
    lines: list[bytes] = http.client._read_headers(fp)  # type: ignore[attr-defined]
    headers: list[tuple[str, str]] = []
    known = _PARSED
    for line in lines:
        pair = known.get(line)
        if pair is not None:
            headers.append(pair)
            continue
        if line in _END_LINES:
            break
        if _SIMPLE_LINE.match(line) is None:
            return _email_parse(lines)
        name, _, value = line.decode("iso-8859-1").partition(":")
        pair = (name, value.lstrip(" \t").rstrip("\r\n"))
        headers.append(pair)
        if len(line) <= _PARSED_LINE_MAX and line[:11].lower() != b"set-cookie:":
            remember(known, line, pair, _PARSED_MAX)
    message = PlainHTTPMessage()
    message._headers = headers  # type: ignore[attr-defined]
    message._payload = ""  # type: ignore[attr-defined]
    return message


class _StartFirst:
    # What both raw readers below serve before the socket: the start of a large body,
    # read ahead by the head's buffered reader (see :func:`_large_body_reader`).

    _keepwarm_start: bytes = b""

    def _read_start(self, b: Any) -> int:
        start = self._keepwarm_start
        n = min(len(b), len(start))
        b[:n] = start[:n]
        self._keepwarm_start = start[n:]
        return n


class ReadFirstSocketIO(_StartFirst, socket.SocketIO):
    # The raw reader under a plain-TCP response's buffered ``fp``: reads first, and
    # waits (with the socket's timeout) only when nothing has arrived.
    #
    # A socket with a timeout is non-blocking underneath, and CPython's ``recv_into`` on it
    # calls ``poll()`` before every receive, even with data waiting: a 100 MB body streamed
    # with ``iter_content(65536)`` over loopback takes ~3,300 receives, each with a poll
    # (docs/PERFORMANCE.md, "Issue 16: streaming"). Here a receive is first tried straight
    # on the descriptor (``os.readv``, one system call, nothing waited for); only when it
    # would block does the read go to ``SocketIO.readinto``, which polls with the socket's
    # timeout and raises it as before: a server that stops sending still times out after
    # the read timeout. TLS sockets are not given this reader: OpenSSL already reads first
    # and polls only when a record is incomplete.

    #: The first read of a response waits for the server as CPython's reader does: when
    #: the request was just written its answer has rarely arrived, and a receive tried
    #: first would fail (a system call and an exception per request). Reads after it,
    #: the body's, try the descriptor first.
    _keepwarm_waited: bool = False

    def readinto(self, b: Any) -> int | None:
        if self._keepwarm_start:
            return self._read_start(b)
        if not self._keepwarm_waited:
            self._keepwarm_waited = True
            return super().readinto(b)
        if not self._timeout_occurred and not self.closed:  # type: ignore[attr-defined]
            try:
                return os.readv(self._sock.fileno(), (b,))  # type: ignore[attr-defined]
            except BlockingIOError:
                pass  # nothing has arrived: wait for it within the socket's timeout
        return super().readinto(b)


class TLSSocketIO(_StartFirst, socket.SocketIO):
    # The raw reader under a TLS response's buffered ``fp``: ``SSLSocket.read`` (CPython's,
    # 3.10 to 3.13) called from here, not through ``SocketIO.readinto``, ``recv_into`` and
    # ``read``: three Python calls less per TLS record (16 KiB), 4-5 per 64 KiB chunk.
    #
    # ``_sslobj.read`` waits for an incomplete record with the socket's timeout and raises
    # it as CPython's reader does; after a timeout, once closed or unwrapped, and for
    # anything this does not handle, CPython's own reader runs.

    def readinto(self, b: Any) -> int | None:
        if self._keepwarm_start:
            return self._read_start(b)
        sock = self._sock  # type: ignore[attr-defined]
        sslobj = sock._sslobj
        if sslobj is None or self._timeout_occurred or self.closed:  # type: ignore[has-type]
            return super().readinto(b)
        try:
            got: int = sslobj.read(len(b), b)
        except ssl.SSLError as x:
            if x.args[0] == ssl.SSL_ERROR_EOF and sock.suppress_ragged_eofs:
                return 0
            raise
        except TimeoutError:
            self._timeout_occurred = True
            raise
        return got


#: The raw readers :func:`_large_body_reader` takes.
_BODY_READERS: Final = (ReadFirstSocketIO, TLSSocketIO)


class _NothingYet(socket.SocketIO):
    # The raw reader for a moment, while :func:`_large_body_reader` empties the head's
    # reader: it reads nothing, so that reader gives up its buffer and no more.

    def readinto(self, b: Any) -> int | None:
        return 0


#: A body announced longer than this (under either reader above) is read without a buffer
#: between the socket and the caller (:func:`_large_body_reader`).
LARGE_BODY: Final = 1 << 20


def _large_body_reader(fp: io.BufferedReader) -> io.BufferedReader:
    # A reader for a large body in place of *fp* (the head's reader, 8 KiB buffer): its
    # raw stream, with what *fp* had buffered served first, under a 1-byte buffer.
    #
    # Through an 8 KiB buffer, ``read(65536)`` takes two receives per chunk: one straight
    # into the chunk for all but its last 8 KiB-aligned tail, then an 8 KiB fill of the
    # buffer for the tail. With a 1-byte buffer every read goes straight into the caller's
    # bytes, one receive when the data has arrived. (Measured for ``iter_content(65536)``
    # over 100 MB: 8 KiB, two receives per chunk, 16.0-16.5 ms of CPU; a 256 KiB buffer,
    # one receive per four chunks but a copy of every byte, 16.0-16.4 ms; this, 15.3-15.4 ms.)
    # Only for bodies of a known length: a chunked body is read line by line.
    raw: Any = fp.raw
    cls = type(raw)
    raw.__class__ = _NothingYet
    try:
        start = fp.read1(LARGE_BODY)
    finally:
        raw.__class__ = cls
    fp.detach()
    raw._keepwarm_start = start
    return io.BufferedReader(raw, 1)


def _read_first(fp: Any, sock: Any) -> None:
    # Give *fp* (``sock.makefile("rb")``) a :class:`ReadFirstSocketIO` when *sock* is a
    # plain TCP socket of the standard library's with a timeout (the descriptor is
    # non-blocking then), a :class:`TLSSocketIO` when it is the standard library's TLS socket
    # with a timeout; anything else (gevent's sockets, a blocking socket, a test's fake)
    # keeps its reader.
    if (
        type(fp) is io.BufferedReader
        and type(fp.raw) is socket.SocketIO
        and isinstance(sock, _socket.socket)
        and sock.gettimeout()
    ):
        fp.raw.__class__ = TLSSocketIO if isinstance(sock, ssl.SSLSocket) else ReadFirstSocketIO


def _read_status(response: Any) -> tuple[str, int, str]:
    # http.client's ``HTTPResponse._read_status`` (CPython 3.10 to 3.13, fingerprinted),
    # with its answer for a status line remembered: a server answers with the same few
    # ("HTTP/1.1 200 OK"). Lines it refuses are never kept, and with ``debuglevel`` on
    # every line is printed as it does.
    raw = response.fp.readline(_MAXLINE + 1)
    known = _STATUS_LINES.get(raw)
    if known is not None and response.debuglevel <= 0:
        return known
    line = str(raw, "iso-8859-1")
    if len(line) > _MAXLINE:
        raise http.client.LineTooLong("status line")
    if response.debuglevel > 0:
        print("reply:", repr(line))
    if not line:
        # Presumably, the server closed the connection before
        # sending a valid response.
        raise http.client.RemoteDisconnected("Remote end closed connection without response")
    try:
        version, status, reason = line.split(None, 2)
    except ValueError:
        try:
            version, status = line.split(None, 1)
            reason = ""
        except ValueError:
            # empty version will cause next test to fail.
            version = ""
    if not version.startswith("HTTP/"):
        response._close_conn()
        raise http.client.BadStatusLine(line)
    # The status code is a three-digit number
    try:
        code = int(status)
        if code < 100 or code > 999:
            raise http.client.BadStatusLine(line)
    except ValueError:
        raise http.client.BadStatusLine(line)  # noqa: B904  (as http.client raises it)
    remember(_STATUS_LINES, raw, (version, code, reason), _STATUS_LINES_MAX)
    return version, code, reason


#: Status line -> what http.client's ``_read_status`` makes of it. Bounded.
_STATUS_LINES: dict[bytes, tuple[str, int, str]] = {}
_STATUS_LINES_MAX: Final = 64
_MAXLINE: Final[int] = http.client._MAXLINE  # type: ignore[attr-defined]


_PLAIN_SOCKET: Final = socket.socket
_TLS_SOCKET: Final = ssl.SSLSocket
_SOCKET_IO: Final[Any] = socket.SocketIO
_HR: Final[Any] = http.client.HTTPResponse
_UNKNOWN: Final[Any] = http.client._UNKNOWN  # type: ignore[attr-defined]


class FastHeadersHTTPResponse(http.client.HTTPResponse):
    # ``http.client.HTTPResponse`` whose ``begin()`` uses :func:`parse_headers`, and whose
    # body is read by :class:`ReadFirstSocketIO` or :class:`TLSSocketIO` (:func:`_read_first`).
    #
    # ``begin`` is CPython's (3.10 to 3.13 share it), with two changes; http.client offers
    # no other way to change those steps for one class:
    #
    # * the header parsing is :func:`parse_headers`;
    # * every interim (1xx) response but ``101 Switching Protocols`` is skipped, not only
    #   ``100 Continue``, and at most :data:`MAX_INTERIM_RESPONSES` of them: CPython
    #   returns a ``103 Early Hints`` as the final response (with no body), leaving the
    #   real one in the socket for whichever request reuses the connection next.

    def __init__(
        self, sock: Any, debuglevel: int = 0, method: str | None = None, url: str | None = None
    ) -> None:
        # http.client's constructor (CPython 3.10 to 3.13, fingerprinted) with its
        # ``sock.makefile("rb")`` (``socket.makefile`` and ``SocketIO.__init__``, also
        # fingerprinted) in one step, for the standard library's plain or TLS socket with a
        # timeout: the raw reader made a :class:`ReadFirstSocketIO` or :class:`TLSSocketIO`
        # at once (what :func:`_read_first` would make of it), its reference counted on the
        # socket as ``makefile`` counts it, under the same 8 KiB ``BufferedReader``. About
        # 2 us a request: ``makefile`` is Python, with a dozen steps for its mode and
        # buffering. Any other socket, and every socket while a tool has replaced one of
        # those steps, gets http.client's own constructor and :func:`_read_first`.
        cls = type(sock)
        if (
            (cls is _PLAIN_SOCKET or cls is _TLS_SOCKET)
            and cls.makefile is SOCKET_MAKEFILE
            and _SOCKET_IO.__init__ is SOCKET_IO_INIT
            and _HR.__init__ is HC_RESPONSE_INIT
            and sock.gettimeout()
        ):
            reader = TLSSocketIO if cls is _TLS_SOCKET else ReadFirstSocketIO
            raw: Any = reader.__new__(reader)
            raw._sock = sock
            raw._mode = "rb"
            raw._reading = True
            raw._writing = False
            raw._timeout_occurred = False
            sock._io_refs += 1
            self.fp = io.BufferedReader(raw, io.DEFAULT_BUFFER_SIZE)
            self.debuglevel = debuglevel
            self._method = method
            self.headers = self.msg = None  # type: ignore[assignment]
            self.version = _UNKNOWN
            self.status = _UNKNOWN
            self.reason = _UNKNOWN
            self.chunked = _UNKNOWN
            self.chunk_left = _UNKNOWN
            self.length = _UNKNOWN
            self.will_close = _UNKNOWN
            return
        super().__init__(sock, debuglevel, method, url)
        _read_first(self.fp, sock)

    def begin(self) -> None:
        if self.headers is not None:
            return
        interim = 0
        while True:
            if read_status_hooked(type(self)):
                version, status, reason = self._read_status()
            else:
                version, status, reason = _read_status(self)
            if not 100 <= status < 200 or status == http.client.SWITCHING_PROTOCOLS:
                break
            interim += 1
            if interim > MAX_INTERIM_RESPONSES:
                raise http.client.HTTPException(
                    f"got more than {MAX_INTERIM_RESPONSES} interim responses"
                )
            http.client._read_headers(self.fp)
        self.code = self.status = status
        self.reason = reason.strip()
        if version in ("HTTP/1.0", "HTTP/0.9"):
            self.version = 10
        elif version.startswith("HTTP/1."):
            self.version = 11
        else:
            raise http.client.UnknownProtocol(version)
        message = parse_headers(self.fp)
        self.headers = self.msg = message
        if (
            type(message) is PlainHTTPMessage
            and self.version == 11
            and type(self)._check_close is HC_CHECK_CLOSE
        ):
            # The three names read below, from the message's index at once: the values of
            # a head parse_headers just built are the strings ``get`` returns (latin-1, so
            # no surrogates for the email policy to wrap), and http.client's
            # ``_check_close`` (CPython 3.10 to 3.13, fingerprinted) for HTTP/1.1 asks only
            # whether Connection holds "close".
            fields = message._headers
            index = message._index()
            at = index.get("transfer-encoding")
            tr_enc = None if at is None else fields[at][1]
            at = index.get("content-length")
            length = None if at is None else fields[at][1]
            at = index.get("connection")
            connection = None if at is None else fields[at][1]
            will_close = bool(connection and "close" in connection.lower())
        else:
            tr_enc = message.get("transfer-encoding")
            will_close = None
        if tr_enc and tr_enc.lower() == "chunked":
            self.chunked = True
            self.chunk_left = None
        else:
            self.chunked = False
        if will_close is None:
            self.will_close = self._check_close()
            length = message.get("content-length")
        else:
            self.will_close = will_close
        self.length: Any = None
        if length and not self.chunked:
            try:
                self.length = int(length)
            except ValueError:
                self.length = None
            else:
                if self.length < 0:
                    self.length = None
        else:
            self.length = None
        if (
            status in (http.client.NO_CONTENT, http.client.NOT_MODIFIED)
            or 100 <= status < 200
            or self._method == "HEAD"
        ):
            self.length = 0
        if not self.will_close and not self.chunked and self.length is None:
            self.will_close = True
        if (
            self.length is not None
            and self.length > LARGE_BODY
            and type(getattr(self.fp, "raw", None)) in _BODY_READERS
        ):
            self.fp = _large_body_reader(self.fp)


def read_whole(raw: Any) -> bytes | None:
    # ``raw.read(decode_content=False)`` for the whole body of urllib3's ``HTTPResponse``
    # ``raw`` over keepwarm's own connection, with nothing read from it yet; None (nothing
    # done) for any other response, or while a tool has replaced a step of urllib3's read
    # (``hooks.body_read_hooked``).
    #
    # urllib3's ``read`` runs seven calls around the one that reads (``_init_decoder``,
    # ``_raw_read``, ``_fp_read``, ``_decode``, ``_flush_decoder``...): 8.6 us of a 2-byte
    # body against 2.6 us here. Called without ``amt`` and without a decoder, they come
    # down to this: http.client's ``read()`` under urllib3's own ``_error_catcher`` (the
    # same exceptions, the connection released or closed the same way), then the same
    # counts. The caller decodes (``session.read_body``: no encoding or gzip only).
    #
    # ``_error_catcher`` is a generator context manager (0.7 us to enter and leave): it
    # is entered only when the read raised, to map that exception and drop the connection
    # as it would have (the bare ``raise`` inside it is the exception being handled);
    # after a clean read its last step runs here, as it would have run there.
    fp = raw._fp
    if (
        type(fp) is not FastHeadersHTTPResponse
        or raw._fp_bytes_read
        or raw._decoder is not None
        or body_read_hooked()
    ):
        return None
    response: Any = fp  # http.client's response under urllib3's
    try:
        data: bytes
        if response.closed:
            data = b""
        elif (
            response.fp is not None
            and response.length is not None
            and not response.chunked
            and response._method != "HEAD"
            and not http_read_hooked(type(fp))
        ):
            # http.client's read() of a whole body of known length, with its _safe_read
            # and _close_conn (CPython 3.10 to 3.13, fingerprinted), in one step.
            length = response.length
            data = response.fp.read(length)
            if len(data) < length:
                response._close_conn()
                raise http.client.IncompleteRead(data, length - len(data))
            response.length = 0
            body = response.fp
            response.fp = None
            body.close()
        else:
            data = response.read()
    except BaseException:
        with raw._error_catcher():
            raise
    # _error_catcher's clean exit: the connection given back once the body is all read.
    original = raw._original_response
    if original and original.isclosed():
        raw.release_conn()
    if data:
        raw._fp_bytes_read += len(data)
        if raw.length_remaining is not None:
            raw.length_remaining -= len(data)
    if _UNCACHED in raw.__dict__:  # urllib3 2.7+ tells reads that were not cached
        raw._uncached_read_occurred = True
    return data


_UNCACHED: Final = "_uncached_read_occurred"


# Request heads ------------------------------------------------------------------------------

#: http.client's own checks of a header name and value (http/client.py), byte for byte.
_LEGAL_HEADER_NAME: Final = re.compile(rb"[^:\s][^:\r\n]*").fullmatch
_ILLEGAL_HEADER_VALUE: Final = re.compile(rb"\n(?![ \t])|\r(?![ \t\n])").search


#: (name, value) -> (header line, lower-case name) for str pairs that passed the checks
#: below: a session sends the same few headers on every request. Credentials and cookies
#: are not kept (they change, and need not linger here).
_LINES: dict[tuple[str, str], tuple[bytes, str]] = {}
_LINES_MAX: Final = 256
_NOT_KEPT: Final = frozenset({"authorization", "proxy-authorization", "cookie"})


def _header_lines(headers: Mapping[Any, Any]) -> tuple[list[bytes], set[str]] | None:
    # The lines http.client's ``putheader`` would buffer for ``headers``, and the
    # lower-cased names; None when a header needs urllib3's and http.client's own handling
    # (bytes names, ``SKIP_HEADER``, other value types, characters they reject).
    items = headers._store.values() if type(headers) is CaseInsensitiveDict else headers.items()
    lines: list[bytes] = []
    names: set[str] = set()
    known = _LINES
    for name, value in items:
        if type(name) is not str:
            return None
        if type(value) is str:
            hit = known.get((name, value))
            if hit is not None:
                lines.append(hit[0])
                names.add(hit[1])
                continue
            if value == SKIP_HEADER:
                return None
            try:
                raw = value.encode("latin-1")
            except UnicodeEncodeError:
                return None
        elif type(value) is bytes:
            raw = value
        else:
            return None
        try:
            raw_name = name.encode("ascii")
        except UnicodeEncodeError:
            return None
        if not _LEGAL_HEADER_NAME(raw_name) or _ILLEGAL_HEADER_VALUE(raw):
            return None
        line = raw_name + b": " + raw
        lower = name.lower()
        lines.append(line)
        names.add(lower)
        if type(value) is str and lower not in _NOT_KEPT:
            remember(known, (name, value), (line, lower), _LINES_MAX)
    return lines, names


def write_request(
    conn: Any,
    method: str,
    url: str,
    body: Any,
    headers: Mapping[Any, Any] | None,
    chunked: bool,
    options: dict[str, bool],
) -> bool:
    # Send a request the way urllib3's ``HTTPConnection.request`` does, on a connected
    # ``conn``; False (nothing done) when the request is not one this handles.
    #
    # Handled: no body or a ``bytes`` body, not chunked, headers as :func:`_header_lines`
    # takes them. The head is the same: request line, ``Host`` and ``Accept-Encoding``
    # from http.client's ``putrequest`` unless given, ``Content-Length`` as urllib3
    # computes it unless given, urllib3's ``User-Agent`` unless given, then the headers in
    # order; then the body, in a send of its own as urllib3 does.
    if chunked or headers is None or not (body is None or type(body) is bytes):
        return False
    plan = _header_lines(headers)
    if plan is None or "transfer-encoding" in plan[1]:
        return False
    lines, names = plan
    conn.sock.settimeout(conn.timeout)
    conn._response_options = _ResponseOptions(request_method=method, request_url=url, **options)
    length = (
        None
        if "content-length" in names or (body is None and method in _METHODS_NOT_EXPECTING_BODY)
        else _content_length_line(method, body)
    )
    if not _write_head(conn, method, url, length, lines, names):
        conn.putrequest(
            method,
            url,
            skip_accept_encoding="accept-encoding" in names,
            skip_host="host" in names,
        )
        output = conn._output
        if length is not None:
            output(length)
        if "user-agent" not in names:
            conn.putheader("User-Agent", _get_default_user_agent())
        for line in lines:
            output(line)
        conn.endheaders()
    if body:
        conn.send(body)
    return True


def _content_length_line(method: str, body: bytes | None) -> bytes | None:
    # The ``Content-Length`` line urllib3's ``request`` adds when none is given: the body's
    # length, 0 for no body with a method that expects one, else none.
    if body is not None:
        return b"Content-Length: %d" % len(body)
    if method.upper() not in _METHODS_NOT_EXPECTING_BODY:
        return b"Content-Length: 0"
    return None


def _write_head(
    conn: Any,
    method: str,
    url: str,
    length: bytes | None,
    lines: list[bytes],
    names: set[str],
) -> bool:
    # The head :func:`write_request` writes through ``putrequest``, ``putheader`` and
    # ``endheaders``, in one pass: urllib3's and http.client's ``putrequest`` (CPython 3.10
    # to 3.13: the connection's state, the method's and target's checks, the request line,
    # ``Host`` and ``Accept-Encoding``), ``putheader`` for ``User-Agent``, ``endheaders``,
    # ``_send_output`` and ``send`` (the audit event, one ``sendall``). False, with
    # nothing done, for a head those steps write or refuse differently: a step replaced
    # (``hooks.head_steps_hooked``), debug output on, HTTP/1.0, a method or target they
    # reject, a request in progress, a ``Host`` of a proxy's absolute target, a tunnel, an
    # IPv6 or non-ASCII host. The caller then takes the steps, which raise as they do.
    if conn.debuglevel > 0 or conn._http_vsn != 11 or head_steps_hooked(type(conn)):
        return False
    host_line = None
    if "host" not in names:
        if url.startswith("http") or conn._tunnel_host:
            return False
        key = (conn.host, conn.port, conn.default_port)
        host_line = _HOST_LINES.get(key)  # _host_line's remembered answer, without the call
        if host_line is None:
            host_line = _host_line(*key)
        if host_line is None:
            return False
    target = url or "/"
    line_key = (method, target, conn._http_vsn_str)
    request_line = _REQUEST_LINES.get(line_key)
    if request_line is None and _CONTAINS_CONTROL_CHAR_RE.search(method):  # urllib3's
        return False
    response = conn._HTTPConnection__response
    if response and response.isclosed():
        conn._HTTPConnection__response = None
    if conn._HTTPConnection__state != _CS_IDLE:
        return False
    if request_line is None:
        try:
            conn._validate_method(method)
            conn._validate_path(target)
            request_line = f"{method} {target} {conn._http_vsn_str}".encode("ascii")
        except (ValueError, UnicodeEncodeError):  # InvalidURL is a ValueError
            return False
        if keepable(target):
            remember(_REQUEST_LINES, line_key, request_line, _REQUEST_LINES_MAX)
    conn._HTTPConnection__state = _CS_REQ_STARTED
    conn._method = method
    head = conn._buffer
    head.append(request_line)
    if host_line is not None:
        head.append(host_line)
    if "accept-encoding" not in names:
        head.append(b"Accept-Encoding: identity")
    if length is not None:
        head.append(length)
    if "user-agent" not in names:
        head.append(_USER_AGENT_LINE)
    head.extend(lines)
    conn._HTTPConnection__state = _CS_REQ_SENT
    head.extend((b"", b""))
    data = b"\r\n".join(head)
    del head[:]
    _audit("http.client.send", conn, data)
    sock = conn.sock
    if (
        type(sock) is _SSLSocket
        and _SSLSocket.sendall is SSL_SENDALL
        and _SSLSocket.send is SSL_SEND
        and (sslobj := sock._sslobj) is not None  # type: ignore[attr-defined]
    ):
        # ``SSLSocket.sendall`` through ``send``, for an open TLS socket and no flags: one
        # ``_sslobj.write`` of the whole head (OpenSSL writes all of it or raises, CPython
        # not asking for partial writes), without the two Python calls, two checks and the
        # memoryview around it.
        sslobj.write(data)
    else:
        sock.sendall(data)
    return True


#: (method, target, version) -> the request line for them, once urllib3's and http.client's
#: checks of the method and target (pure functions of the strings, not replaced: see
#: ``hooks.head_steps_hooked``) have passed them: a client sends the same few. Targets with
#: a query or userinfo are not kept (``_bounded.keepable``). Bounded.
_REQUEST_LINES: dict[tuple[str, str, str], bytes] = {}
_REQUEST_LINES_MAX: Final = 256


def _host_line(host: str, port: Any, default_port: int) -> bytes | None:
    # http.client's ``Host`` line for an origin-form target without a tunnel, for an
    # ASCII host without ":" (IPv6 hosts are bracketed and, from 3.11, stripped of their
    # zone differently across releases); None for any other host or a value ``putheader``
    # rejects.
    key = (host, port, default_port)
    line = _HOST_LINES.get(key)
    if line is None:
        if type(host) is not str or not host.isascii() or ":" in host:
            return None
        value = host if port == default_port else f"{host}:{port}"
        raw = value.encode("latin-1")
        if _ILLEGAL_HEADER_VALUE(raw):
            return None
        line = b"Host: " + raw
        remember(_HOST_LINES, key, line, _HOST_LINES_MAX)
    return line


#: (host, port, default port) -> the ``Host`` line http.client writes. Bounded.
_HOST_LINES: dict[tuple[Any, Any, int], bytes] = {}
_HOST_LINES_MAX: Final = 256
_USER_AGENT_LINE: Final = b"User-Agent: " + _get_default_user_agent().encode("latin-1")
_audit = sys.audit
_SSLSocket = ssl.SSLSocket
