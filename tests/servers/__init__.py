"""Servers for the tests, all on 127.0.0.1 port 0.

``LocalServer`` (a real HTTP/1.1 keep-alive server, shared with ``keepwarm bench``) comes
from :mod:`keepwarm.bench._engine` and its default routes from
:mod:`keepwarm.bench._routes`; :mod:`servers.flaky` adds a handler that fails before it
recovers, and :mod:`servers.raw` raw-socket servers that misbehave on purpose (never
answer, close at once, reset) and a backlog-full address.
"""

from __future__ import annotations

from keepwarm.bench._engine import (
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    Handler,
    Headers,
    LocalServer,
    ServerRequest,
    ServerResponse,
)
from keepwarm.bench._routes import default_handler

from .flaky import Flaky
from .raw import (
    RawServer,
    Script,
    Socks5Proxy,
    backlog_full_address,
    close_immediately,
    read_request,
    read_request_head,
    refused_url,
    relay,
    reset_after_request,
    respond_with,
    silent,
)

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_HEADER_BYTES",
    "Flaky",
    "Handler",
    "Headers",
    "LocalServer",
    "RawServer",
    "Script",
    "ServerRequest",
    "ServerResponse",
    "Socks5Proxy",
    "backlog_full_address",
    "close_immediately",
    "default_handler",
    "read_request",
    "read_request_head",
    "refused_url",
    "relay",
    "reset_after_request",
    "respond_with",
    "silent",
]
