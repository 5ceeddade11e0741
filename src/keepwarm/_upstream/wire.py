"""HTTP/1.1 heads written and read with less work than http.client and urllib3 do.

**Request heads.** urllib3's ``HTTPConnection.request`` sends each header through two
``putheader`` layers (urllib3's, checking for ``SKIP_HEADER``, then http.client's,
encoding and validating it) after building a set of the header names: a sixth of the
client CPU time of a small keep-alive request here. :func:`write_request` writes the same
bytes for the common request (a body in memory or none, headers that are plain ``str``
or ``bytes``) with the same checks, and hands anything else to urllib3.
tests/test_http11.py compares the bytes on the wire with urllib3's own.

**Response heads.**

http.client hands every response head to ``email.parser`` (a feed parser built for MIME
mail): about an eighth of the client CPU time of a small keep-alive request here. Nearly
every response head is plain ``Name: value`` lines; for those :func:`parse_headers`
builds the very same ``http.client.HTTPMessage`` directly (same header list, same empty
payload, no defects; tests/test_http11.py compares the two on generated heads). Anything
else (folded continuation lines, a line without a colon, a ``From `` line) goes to
``email.parser`` exactly as http.client would. One deliberate difference: a bare CR inside
a header line is read as a space, as RFC 9112 asks, where http.client's email parser
starts a new header at it (a smuggled ``Set-Cookie``).
"""

from __future__ import annotations

import email.message
import email.parser
import http.client
import re
from collections.abc import Mapping
from typing import Any, BinaryIO, Final

from requests.structures import CaseInsensitiveDict
from urllib3.connection import _get_default_user_agent, _ResponseOptions
from urllib3.util import SKIP_HEADER
from urllib3.util.request import _METHODS_NOT_EXPECTING_BODY

__all__ = [
    "MAX_INTERIM_RESPONSES",
    "FastHeadersHTTPResponse",
    "PlainHTTPMessage",
    "parse_headers",
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
    """The ``HTTPMessage`` of a plain head, with lookups that skip the email policy for
    ASCII values.

    The default ``compat32`` policy hands every value read through ``_sanitize_header``,
    which changes only a ``str`` holding surrogate escapes; an ASCII ``str`` comes back
    as it is. http.client, urllib3 and requests look headers up a dozen times per
    response; anything else (other values, another policy) takes the email package's
    own path.
    """

    def _fetch(self, name: str, value: Any) -> Any:
        if type(value) is str and value.isascii() and self.policy is _COMPAT32:
            return value
        return self.policy.header_fetch_parse(name, value)

    def get(self, name: str, failobj: Any = None) -> Any:
        lower = name.lower()
        for k, v in self._headers:  # type: ignore[attr-defined]
            if k.lower() == lower:
                return self._fetch(k, v)
        return failobj

    def items(self) -> list[tuple[str, Any]]:
        return [(k, self._fetch(k, v)) for k, v in self._headers]  # type: ignore[attr-defined]

    def __contains__(self, name: str) -> bool:
        lower = name.lower()
        return any(k.lower() == lower for k, _ in self._headers)  # type: ignore[attr-defined]


def _bare_cr_to_space(line: bytes) -> bytes:
    """RFC 9112 section 2.2: a recipient of a bare CR (one not followed by LF) "MUST
    consider that element to be invalid or replace each bare CR with SP". http.client's
    email parser takes it for a line break instead, so ``X-A: a\\rSet-Cookie: evil=1``
    would smuggle a second header (a cookie) past whatever checked the first."""
    end = 2 if line.endswith(b"\r\n") else 1 if line.endswith(b"\n") else 0
    body = line[: len(line) - end]
    if b"\r" not in body:
        return line
    return body.replace(b"\r", b" ") + line[len(line) - end :]


def parse_headers(fp: BinaryIO) -> http.client.HTTPMessage:
    """``http.client.parse_headers(fp)``, without the email parser for plain heads, and with
    bare CRs read as spaces (RFC 9112 section 2.2), never as line breaks."""
    lines: list[bytes] = http.client._read_headers(fp)  # type: ignore[attr-defined]
    headers: list[tuple[str, str]] = []
    for line in lines:
        if line in _END_LINES:
            break
        if _SIMPLE_LINE.match(line) is None:
            return _email_parse(lines)
        name, _, value = line.decode("iso-8859-1").partition(":")
        headers.append((name, value.lstrip(" \t").rstrip("\r\n")))
    message = PlainHTTPMessage()
    message._headers = headers  # type: ignore[attr-defined]
    message._payload = ""  # type: ignore[attr-defined]
    return message


class FastHeadersHTTPResponse(http.client.HTTPResponse):
    """``http.client.HTTPResponse`` whose ``begin()`` uses :func:`parse_headers`.

    ``begin`` is CPython's (3.10 to 3.13 share it), with two changes; http.client offers
    no other way to change those steps for one class:

    * the header parsing is :func:`parse_headers`;
    * every interim (1xx) response but ``101 Switching Protocols`` is skipped, not only
      ``100 Continue``, and at most :data:`MAX_INTERIM_RESPONSES` of them: CPython
      returns a ``103 Early Hints`` as the final response (with no body), leaving the
      real one in the socket for whichever request reuses the connection next.
    """

    def begin(self) -> None:
        if self.headers is not None:
            return
        interim = 0
        while True:
            version, status, reason = self._read_status()
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
        self.headers = self.msg = parse_headers(self.fp)
        tr_enc = self.headers.get("transfer-encoding")
        if tr_enc and tr_enc.lower() == "chunked":
            self.chunked = True
            self.chunk_left = None
        else:
            self.chunked = False
        self.will_close = self._check_close()
        self.length: Any = None
        length = self.headers.get("content-length")
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


# Request heads ------------------------------------------------------------------------------

#: http.client's own checks of a header name and value (http/client.py), byte for byte.
_LEGAL_HEADER_NAME: Final = re.compile(rb"[^:\s][^:\r\n]*").fullmatch
_ILLEGAL_HEADER_VALUE: Final = re.compile(rb"\n(?![ \t])|\r(?![ \t\n])").search


def _header_lines(headers: Mapping[Any, Any]) -> tuple[list[bytes], set[str]] | None:
    """The lines http.client's ``putheader`` would buffer for ``headers``, and the
    lower-cased names; None when a header needs urllib3's and http.client's own handling
    (bytes names, ``SKIP_HEADER``, other value types, characters they reject)."""
    items = headers._store.values() if type(headers) is CaseInsensitiveDict else headers.items()
    lines: list[bytes] = []
    names: set[str] = set()
    for name, value in items:
        if type(name) is not str:
            return None
        if type(value) is str:
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
        lines.append(raw_name + b": " + raw)
        names.add(name.lower())
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
    """Send a request the way urllib3's ``HTTPConnection.request`` does, on a connected
    ``conn``; False (nothing done) when the request is not one this handles.

    Handled: no body or a ``bytes`` body, not chunked, headers as :func:`_header_lines`
    takes them. The head is the same: request line, ``Host`` and ``Accept-Encoding``
    from http.client's ``putrequest`` unless given, ``Content-Length`` as urllib3
    computes it unless given, urllib3's ``User-Agent`` unless given, then the headers in
    order; then the body, in a send of its own as urllib3 does.
    """
    if chunked or headers is None or not (body is None or type(body) is bytes):
        return False
    plan = _header_lines(headers)
    if plan is None or "transfer-encoding" in plan[1]:
        return False
    lines, names = plan
    conn.sock.settimeout(conn.timeout)
    conn._response_options = _ResponseOptions(request_method=method, request_url=url, **options)
    conn.putrequest(
        method,
        url,
        skip_accept_encoding="accept-encoding" in names,
        skip_host="host" in names,
    )
    output = conn._output
    if "content-length" not in names:
        if body is not None:
            output(b"Content-Length: %d" % len(body))
        elif method.upper() not in _METHODS_NOT_EXPECTING_BODY:
            output(b"Content-Length: 0")
    if "user-agent" not in names:
        conn.putheader("User-Agent", _get_default_user_agent())
    for line in lines:
        output(line)
    conn.endheaders()
    if body:
        conn.send(body)
    return True
