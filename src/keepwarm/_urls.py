"""URL helpers with one rule each, shared by the library, the probe and the bench.

* :func:`redact_url`: a URL as keepwarm shows it in reprs, logs, errors and reports:
  without its password (or lone user name, a token as often as not), query values and
  fragment;
* :func:`origin`: ``scheme://host:port`` as the counters and advice name an origin;
* :func:`is_ip`: whether a host is an IP address (no name resolution for it).
"""

from __future__ import annotations

import ipaddress
from typing import Final

__all__ = ["DEFAULT_PORTS", "is_ip", "origin", "printable", "redact_url"]

DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_REDACTED: Final = "***"


def printable(text: str) -> str:
    """``text`` with control and non-ASCII characters escaped, so any terminal prints it."""
    return "".join(
        c if 32 <= ord(c) < 127 else c.encode("unicode_escape").decode("ascii") for c in text
    )


def redact_url(url: str) -> str:
    """``url`` for display: the password (or a lone user name), every query-string value
    and the fragment replaced by ``***``; works on malformed URLs too.

    Query strings carry tokens as often as passwords do (``?access_token=...``), and
    ``https://TOKEN@host/`` puts one where a user name goes; parameter names stay, so
    the message still says which URL it was.
    """
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


def origin(scheme: str, host: str, port: int | None) -> str:
    """``scheme://host:port``, the port always given, an IPv6 address in brackets."""
    port = port or DEFAULT_PORTS.get(scheme)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def is_ip(host: str) -> bool:
    """Whether ``host`` is an IPv4 or IPv6 address (brackets and a zone id allowed)."""
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True
