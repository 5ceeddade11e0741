"""Servers that break HTTP/1.1's framing on purpose: what each client returns.

Both clients run every scenario against the same raw loopback server; keepwarm must do
at least as well as plain requests, and better where it can.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest
import requests

import keepwarm
from servers import RawServer, read_request_head

FIRST = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"
EXTRA = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEXTRA"
REAL = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nREAL"


def _unsolicited_after_first(conn: socket.socket, server: RawServer) -> None:
    """Answers the first request, then 50 ms later sends a response nobody asked for; on
    a later request (on this or a new connection) answers REAL."""
    first = server.connections_accepted == 1
    read_request_head(conn)
    if first:
        conn.sendall(FIRST)
        time.sleep(0.05)
        conn.sendall(EXTRA)
    else:
        conn.sendall(REAL)
    for _ in range(10):  # later requests on this connection, if any, until EOF or 2 s idle
        if b"\r\n\r\n" not in read_request_head(conn, timeout=2.0):
            return
        conn.sendall(REAL)


@pytest.mark.parametrize("client", ["requests", "keepwarm"])
def test_an_unsolicited_response_on_an_idle_connection_is_never_an_answer(
    client: str, raw_server: Callable[..., RawServer]
) -> None:
    """The extra response lands while the connection is idle in the pool. Both clients
    find unread data at checkout and open a new connection (keepwarm counts it as
    dropped), so the next request gets its own answer. The window left is an extra
    response arriving while the next request is being written: no client can tell that
    one from the real answer."""
    server = raw_server(_unsolicited_after_first)
    session = requests.Session() if client == "requests" else keepwarm.Session(max_retries=0)
    with session:
        assert session.get(server.url + "/1", timeout=5).text == "first"
        time.sleep(0.3)
        assert session.get(server.url + "/2", timeout=5).text == "REAL"
        if isinstance(session, keepwarm.Session):
            assert session.stats().dropped == 1
    assert server.connections_accepted == 2
