"""Response headers parsed without the ``email`` package, for ordinary responses.

http.client hands every response head to ``email.parser`` (a feed parser built for MIME
mail): about an eighth of the client CPU time of a small keep-alive request here. Nearly
every response head is plain ``Name: value`` lines; for those :func:`parse_headers`
builds the very same ``http.client.HTTPMessage`` directly (same header list, same empty
payload, no defects; tests/test_http11.py compares the two on generated heads). Anything
else (folded continuation lines, a line without a colon, a bare CR inside a line, a
``From `` line) goes to ``email.parser`` exactly as http.client would.
"""

from __future__ import annotations

import email.parser
import http.client
import re
from typing import Any, BinaryIO, Final

__all__ = ["FastHeadersHTTPResponse", "parse_headers"]

#: A header line the email parser takes as ``name: value`` with nothing special: a name of
#: printable characters other than ":" and space (the feed parser's own rule), a colon,
#: no CR or LF before the line end.
_SIMPLE_LINE: Final = re.compile(rb"[\x21-\x39\x3b-\x7e]+:[^\r\n]*\r?\n\Z")
_END_LINES: Final = (b"\r\n", b"\n", b"")


def _email_parse(lines: list[bytes]) -> http.client.HTTPMessage:
    text = b"".join(lines).decode("iso-8859-1")
    message: http.client.HTTPMessage = email.parser.Parser(_class=http.client.HTTPMessage).parsestr(
        text
    )
    return message


def parse_headers(fp: BinaryIO) -> http.client.HTTPMessage:
    """``http.client.parse_headers(fp)``, without the email parser for plain heads."""
    lines: list[bytes] = http.client._read_headers(fp)  # type: ignore[attr-defined]
    headers: list[tuple[str, str]] = []
    for line in lines:
        if line in _END_LINES:
            break
        if _SIMPLE_LINE.match(line) is None:
            return _email_parse(lines)
        name, _, value = line.decode("iso-8859-1").partition(":")
        headers.append((name, value.lstrip(" \t").rstrip("\r\n")))
    message = http.client.HTTPMessage()
    message._headers = headers  # type: ignore[attr-defined]
    message._payload = ""  # type: ignore[attr-defined]
    return message


class FastHeadersHTTPResponse(http.client.HTTPResponse):
    """``http.client.HTTPResponse`` whose ``begin()`` uses :func:`parse_headers`.

    ``begin`` is CPython's (3.10 to 3.13 share it), with only the header parsing
    swapped; http.client offers no other way to change that step for one class.
    """

    def begin(self) -> None:
        if self.headers is not None:
            return
        while True:
            version, status, reason = self._read_status()
            if status != http.client.CONTINUE:
                break
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
