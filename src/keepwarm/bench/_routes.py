"""The routes the bench server serves: :func:`default_handler`.

``keepwarm bench`` measures against them (mostly ``GET /``) and the tests drive every
client feature through them (echo, cookies, redirects, status codes, delays). Query
parameters are validated, and a bad one is answered 400, so no request can make the server
allocate without bound, sleep for long or redirect off this machine.
"""

from __future__ import annotations

import email.utils
import ipaddress
import math
from urllib.parse import urlsplit

from keepwarm.bench._engine import ServerRequest, ServerResponse

__all__ = ["MAX_BYTES_PARAM", "MAX_SLEEP_SECONDS", "default_handler"]

#: Bounds of the query parameters of :func:`default_handler`.
MAX_BYTES_PARAM = 10_000_000
MAX_SLEEP_SECONDS = 30.0


class _BadParam(Exception):
    """A query parameter of a default route is missing or out of bounds (answer 400)."""


def _int_param(request: ServerRequest, name: str, default: int | None, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        if default is None:
            raise _BadParam(f"missing query parameter {name!r}")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _BadParam(f"{name} must be an integer, got {raw[:30]!r}") from None
    if not lo <= value <= hi:
        raise _BadParam(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _float_param(request: ServerRequest, name: str, lo: float, hi: float) -> float:
    raw = request.query.get(name)
    if raw is None:
        raise _BadParam(f"missing query parameter {name!r}")
    try:
        value = float(raw)
    except ValueError:
        raise _BadParam(f"{name} must be a number, got {raw[:30]!r}") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise _BadParam(f"{name} must be between {lo} and {hi}, got {raw[:30]!r}")
    return value


def _is_loopback_url(url: str) -> bool:
    """Redirect targets stay on this machine: relative, or to a loopback host."""
    if url.startswith("/") and not url.startswith("//"):
        return True
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
_PATTERN = b"0123456789abcdef" * 4096


def _parse_cookie_header(value: str) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for part in value.split(";"):
        name, sep, val = part.strip().partition("=")
        if sep and name:
            cookies[name.strip()] = val.strip()
    return cookies


def _route(request: ServerRequest) -> ServerResponse:
    route = request.route
    if route == "/":
        return ServerResponse.text("ok")
    if route == "/bytes":
        n = _int_param(request, "n", 1024, 0, MAX_BYTES_PARAM)
        body = (_PATTERN * (n // len(_PATTERN) + 1))[:n]
        return ServerResponse(200, [("Content-Type", "application/octet-stream")], body)
    if route == "/echo":
        return ServerResponse.json(
            {
                "method": request.method,
                "path": request.path,
                "query": request.query,
                "headers": request.headers.to_dict(),
                "body": request.body.decode("utf-8", errors="replace"),
                "client_port": request.client_port,
                "connection_index": request.connection_index,
            }
        )
    if route == "/headers":
        return ServerResponse.json(request.headers.to_dict())
    if route == "/cookies":
        return ServerResponse.json(_parse_cookie_header(request.headers.get("cookie", "")))
    if route == "/cookies/set":
        headers = []
        for name, value in request.query_items:
            if not name or not set(name) <= _TOKEN_CHARS:
                raise _BadParam(f"invalid cookie name {name[:30]!r}")
            if any(c in value for c in ';,\r\n\0" '):
                raise _BadParam(f"invalid cookie value {value[:30]!r}")
            headers.append(("Set-Cookie", f"{name}={value}; Path=/"))
        return ServerResponse.text("ok", headers=headers)
    if route.startswith("/status/"):
        code_text = route[len("/status/") :]
        if not code_text.isdigit() or not 200 <= int(code_text) <= 599:
            raise _BadParam(f"status must be an integer from 200 to 599, got {code_text[:10]!r}")
        headers = []
        retry_after = request.query.get("retry_after")
        if retry_after is not None:
            if not (
                (retry_after.isdigit() and int(retry_after) <= 86400)
                or email.utils.parsedate_tz(retry_after) is not None
            ):
                raise _BadParam("retry_after must be 0..86400 seconds or an HTTP date")
            headers.append(("Retry-After", retry_after))
        return ServerResponse(int(code_text), headers, b"")
    if route == "/sleep":
        seconds = _float_param(request, "s", 0.0, MAX_SLEEP_SECONDS)
        response = ServerResponse.text("ok")
        response.delay = seconds
        return response
    if route == "/redirect":
        to = request.query.get("to")
        if not to or not _is_loopback_url(to) or any(c in to for c in "\r\n\0"):
            raise _BadParam("to must be a path or an http(s) URL on a loopback host")
        status = _int_param(request, "status", 302, 301, 308)
        if status not in (301, 302, 303, 307, 308):
            raise _BadParam(f"status must be 301, 302, 303, 307 or 308, got {status}")
        return ServerResponse(status, [("Location", to)], b"")
    if route == "/close":
        response = ServerResponse.text("ok")
        response.close = True
        return response
    return ServerResponse.text(f"no route {route[:100]!r}\n", status=404)


def default_handler(request: ServerRequest) -> ServerResponse:
    """The routes tests and the benchmark rely on (query parameters validated, else 400).

    ``/`` → 200 ``ok``; ``/bytes?n=N`` → N bytes (N ≤ 10 MB, default 1024); ``/echo`` →
    JSON of method, path, query, headers, body, client_port, connection_index;
    ``/headers`` → JSON of the request headers; ``/cookies`` → JSON of the Cookie header;
    ``/cookies/set?a=1&b=2`` → one ``Set-Cookie: name=value; Path=/`` per pair;
    ``/status/<code>[?retry_after=N]``; ``/sleep?s=F`` (F ≤ 30) → 200 after F seconds;
    ``/redirect?to=<path or loopback URL>[&status=302]``; ``/close`` → 200 then close.
    """
    try:
        return _route(request)
    except _BadParam as exc:
        return ServerResponse.text(f"{exc}\n", status=400)
