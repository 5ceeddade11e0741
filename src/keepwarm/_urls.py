# URL helpers with one rule each, shared by the library, the probe and the bench.
#
# * :func:`redact_url`: a URL as keepwarm shows it in reprs, logs, errors and reports:
#   without its password (or lone user name, a token as often as not), query values and
#   fragment;
# * :func:`origin`: ``scheme://host:port`` as the counters and advice name an origin;
# * :func:`is_ip`: whether a host is an IP address (no name resolution for it);
# * :func:`check_http_url`: whether a URL is one keepwarm can send a request to (an absolute
#   ``http``/``https`` URL with a host and a usable port), for ``base_url``, the probe's
#   target and the bench's ``--url``; each caller words the problem for its own users.

from __future__ import annotations

import ipaddress
from typing import Final, Literal
from urllib.parse import SplitResult, urlsplit

__all__ = [
    "DEFAULT_PORTS",
    "URLProblem",
    "check_http_url",
    "host_port",
    "is_ip",
    "origin",
    "printable",
    "redact_url",
]

DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_REDACTED: Final = "***"


def printable(text: str) -> str:
    # ``text`` with control and non-ASCII characters escaped, so any terminal prints it.
    return "".join(
        c if 32 <= ord(c) < 127 else c.encode("unicode_escape").decode("ascii") for c in text
    )


def redact_url(url: str) -> str:
    # ``url`` for display: the password (or a lone user name), every query-string value
    # and the fragment replaced by ``***``; works on malformed URLs too.
    #
    # Query strings carry tokens as often as passwords do (``?access_token=...``), and
    # ``https://TOKEN@host/`` puts one where a user name goes; parameter names stay, so
    # the message still says which URL it was.
    url, hash_mark, fragment = url.partition("#")
    base, question_mark, query = url.partition("?")
    scheme_end = base.find("://")
    if scheme_end >= 0:
        start = scheme_end + 3
        slash = base.find("/", start)
        end = slash if slash >= 0 else len(base)
        authority = base[start:end]
        if "@" in authority:
            userinfo, _, hostport = authority.rpartition("@")
            user, colon, _password = userinfo.partition(":")
            shown = f"{user}:{_REDACTED}" if colon and user else _REDACTED
            base = f"{base[:start]}{shown}@{hostport}{base[end:]}"
    if question_mark:
        parts = []
        for part in query.split("&"):
            name, equals, _value = part.partition("=")
            parts.append(f"{name}={_REDACTED}" if equals else (_REDACTED if part else ""))
        base = f"{base}?{'&'.join(parts)}"
    if hash_mark:
        base = f"{base}#{_REDACTED}" if fragment else f"{base}#"
    return printable(base)


def host_port(host: str, port: int | None) -> str:
    # ``host:port``, an IPv6 address in brackets.
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def origin(scheme: str, host: str, port: int | None) -> str:
    # ``scheme://host:port``, the port always given, an IPv6 address in brackets.
    return f"{scheme}://{host_port(host, port or DEFAULT_PORTS.get(scheme))}"


def is_ip(host: str) -> bool:
    # Whether ``host`` is an IPv4 or IPv6 address (brackets and a zone id allowed).
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


ProblemKind = Literal["whitespace", "no_scheme", "scheme", "malformed", "no_host", "port_zero"]


class URLProblem(ValueError):
    # Why a URL is not an absolute http(s) URL with a host; ``kind`` says which rule failed
    # and ``detail`` holds what the rule found (the scheme, urllib's complaint).

    def __init__(self, kind: ProblemKind, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind: ProblemKind = kind
        self.detail = detail


def check_http_url(url: str) -> SplitResult:
    # ``urlsplit(url)`` if ``url`` is an absolute ``http``/``https`` URL with a host and a
    # valid port other than 0, without spaces or control characters; else
    # :class:`URLProblem`. The scheme is matched case-insensitively, as requests does.
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise URLProblem("whitespace")
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        raise URLProblem("no_scheme")
    if scheme.lower() not in DEFAULT_PORTS:
        raise URLProblem("scheme", scheme.lower())
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError as exc:  # a bad port, or brackets that do not close
        raise URLProblem("malformed", str(exc)) from None
    if not host:
        raise URLProblem("no_host")
    if port == 0:
        raise URLProblem("port_zero")
    return parts
