"""The routes the HTTP/2 test servers share (:mod:`servers.h2` and its HTTP/1.1 fallback).

:func:`plan` turns one request into a :class:`Reply`: what to send, how, and which fault
to act out. The servers do the sending, each in its own protocol, so a route means the
same over HTTP/2 and over HTTP/1.1 (an HTTP/1.1-only TLS server answers the same paths).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import urllib.parse
from dataclasses import dataclass, field

__all__ = [
    "FAULTS",
    "HALF_BODY_DECLARED",
    "HALF_BODY_SENT",
    "STREAM_PAUSE_SECONDS",
    "Reply",
    "Request",
    "deterministic_bytes",
    "plan",
]

#: ``/half`` declares this many body bytes and sends only the first ``HALF_BODY_SENT``.
HALF_BODY_DECLARED = 1000
HALF_BODY_SENT = 100
#: Pause between the chunks of ``/stream/N`` (``/stream/N?pause=MS`` for another, at most
#: 5 s).
STREAM_PAUSE_SECONDS = 0.01
#: Paths whose reply is a fault rather than a response.
FAULTS = ("/reset", "/refuse", "/goaway", "/close", "/silent", "/half", "/short", "/upper")

_BLOCK = bytes(range(256)) * 256  # 64 KiB


def deterministic_bytes(n: int) -> bytes:
    """The body of ``/bytes/N``: ``bytes(i % 256 for i in range(n))``, built fast."""
    repeats = n // len(_BLOCK) + 1
    return (_BLOCK * repeats)[:n]


@dataclass
class Request:
    """One request as a server received it (pseudo-headers included in ``headers``)."""

    method: str
    path: str  # with the query string
    headers: list[tuple[str, str]]
    body: bytes
    http_version: str  # "2" or "1.1"

    @property
    def route(self) -> str:
        return urllib.parse.urlsplit(self.path).path

    @property
    def query(self) -> list[tuple[str, str]]:
        return urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query)


@dataclass
class Reply:
    """What to answer. ``fault`` (one of :data:`FAULTS`) overrides the rest."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    #: Seconds to wait before answering (``/delay/MS``).
    delay: float = 0.0
    #: When set, the body is sent as these chunks with a pause before each but the first.
    chunks: list[bytes] | None = None
    #: That pause, in seconds.
    pause: float = STREAM_PAUSE_SECONDS
    fault: str | None = None
    #: An answer to HEAD: the headers of the GET answer (its Content-Length), no body.
    head_only: bool = False


def _json(data: object, status: int = 200) -> Reply:
    body = json.dumps(data, sort_keys=True).encode()
    return Reply(status, [("content-type", "application/json")], body)


def _number(text: str, default: int = 0) -> int:
    try:
        return int(text)
    except ValueError:
        return default


def plan(request: Request) -> Reply:
    """The reply to *request* (404 for unknown paths); to HEAD, the GET reply's headers."""
    reply = _plan(request)
    reply.head_only = request.method == "HEAD"
    if reply.status in (204, 304):
        reply.body = b""  # no body, whatever the route had in mind (RFC 9110 6.4.1)
    return reply


def _plan(request: Request) -> Reply:
    route = request.route
    head, _, tail = route.lstrip("/").partition("/")
    if route in FAULTS:
        return Reply(fault=route)
    if route == "/get":
        return _json({"method": request.method, "path": request.path, "http": request.http_version})
    if head == "bytes" and tail.isdigit():
        body = deterministic_bytes(int(tail))
        return Reply(200, [("content-type", "application/octet-stream")], body)
    if route == "/echo":
        digest = hashlib.sha256(request.body).hexdigest()
        headers = [
            ("content-type", "application/octet-stream"),
            ("x-body-length", str(len(request.body))),
            ("x-body-sha256", digest),
        ]
        return Reply(200, headers, request.body)
    if head == "delay" and tail.isdigit():
        reply = _json({"delay_ms": int(tail), "http": request.http_version})
        reply.delay = int(tail) / 1000
        return reply
    if route == "/gzip":
        payload = json.dumps({"gzipped": True, "http": request.http_version}).encode()
        headers = [("content-type", "application/json"), ("content-encoding", "gzip")]
        return Reply(200, headers, gzip.compress(payload, mtime=0))
    if head == "status" and tail.isdigit():
        return Reply(_number(tail, 500), [("content-type", "text/plain")], tail.encode())
    if route == "/redirect":
        target = dict(request.query).get("to", "/get")
        return Reply(302, [("location", target), ("content-type", "text/plain")], b"redirect")
    if route == "/set-cookie":
        cookies = [("set-cookie", f"{name}={value}; Path=/") for name, value in request.query]
        return Reply(200, [("content-type", "text/plain"), *cookies], b"cookies set")
    if route == "/headers":
        seen: dict[str, str] = {}
        for name, value in request.headers:
            joiner = "; " if name == "cookie" else ", "
            seen[name] = f"{seen[name]}{joiner}{value}" if name in seen else value
        return _json(seen)
    if head == "big-head" and tail.isdigit():
        # N KiB of response header lines, 4 KiB each (http.client takes lines up to 64 KiB,
        # 100 of them).
        lines = [(f"x-big-{i}", "v" * 4000) for i in range(max(1, min(int(tail), 1024) // 4))]
        return Reply(200, [("content-type", "text/plain"), *lines], b"big head")
    if head == "stream" and tail.isdigit():
        chunks = [json.dumps({"chunk": i}).encode() + b"\n" for i in range(int(tail))]
        pause_ms = min(_number(dict(request.query).get("pause", "0")), 5000)
        return Reply(
            200,
            [("content-type", "application/x-ndjson")],
            chunks=chunks,
            pause=pause_ms / 1000 if pause_ms > 0 else STREAM_PAUSE_SECONDS,
        )
    return Reply(404, [("content-type", "text/plain")], b"not found")
