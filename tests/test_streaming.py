"""Streamed bodies read first and wait only when nothing has arrived (issue 16).

A large body on a plain TCP socket with a read timeout is read by
``keepwarm._upstream.wire.ReadFirstSocketIO`` (a receive without the poll CPython puts
before each one), over TLS by ``TLSSocketIO`` (``SSLSocket.read`` without the layers
above it), with no buffer between the socket and ``iter_content``'s chunks. The
read timeout must hold as before: a server that stops sending mid-body is cut after the
read timeout, with the same exception plain requests raises on the same server. Every
server here is on 127.0.0.1 and bounded (``HOLD_SECONDS``, the server's close).
"""

from __future__ import annotations

import socket
import ssl
import time
from typing import Any

import pytest
import requests
from urllib3.exceptions import ReadTimeoutError

import keepwarm
from keepwarm._upstream.wire import LARGE_BODY, ReadFirstSocketIO, TLSSocketIO
from servers import RawServer, read_request_head

READ_TIMEOUT = 0.5
#: "Cut soon after the read timeout": generous, for loaded machines.
MARGIN = 1.5
BODY = 8 * LARGE_BODY
PATTERN = bytes(range(256)) * 256


def over_tls(script: Any, context: ssl.SSLContext | None) -> Any:
    """*script* on the connection wrapped in TLS (as it is, with no *context*)."""
    if context is None:
        return script

    def wrapped(conn: socket.socket, server: RawServer) -> None:
        conn.settimeout(5.0)
        try:
            tls = context.wrap_socket(conn, server_side=True)
        except (OSError, ssl.SSLError):
            return
        with tls:
            script(tls, server)

    return wrapped


def stalls_after(sent: int, context: ssl.SSLContext | None = None) -> Any:
    """Announce ``BODY`` bytes, send the first *sent*, then send nothing more."""

    def script(conn: socket.socket, server: RawServer) -> None:
        if not read_request_head(conn):
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BODY)
        left = sent
        while left:
            step = min(left, len(PATTERN))
            conn.sendall(PATTERN[:step])
            left -= step
        server.wait_closed()

    return over_tls(script, context)


def sends_all(conn: socket.socket, server: RawServer) -> None:
    """Serve ``BODY`` bytes per request, kept alive (at most 5 requests)."""
    for _ in range(5):
        if not read_request_head(conn):
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BODY)
        for _ in range(BODY // len(PATTERN)):
            conn.sendall(PATTERN)


def stream(session: requests.Session, url: str, **kw: Any) -> tuple[int, Any, float]:
    """``(bytes read, exception or None, seconds)`` of an ``iter_content(65536)`` loop."""
    got = 0
    start = time.monotonic()
    try:
        with session.get(url, stream=True, **kw) as r:
            for chunk in r.iter_content(65536):
                got += len(chunk)
    except requests.RequestException as exc:
        return got, exc, time.monotonic() - start
    return got, None, time.monotonic() - start


@pytest.mark.parametrize("sent", [100, 3 * LARGE_BODY], ids=["in-the-head-buffer", "mid-body"])
def test_stalled_large_body_is_cut_at_the_read_timeout_as_in_requests(sent: int) -> None:
    """The chunks before the stall arrive (a chunk cut short by the stall is lost, in
    requests as here), then the read timeout ends the loop with requests' own exception."""
    with RawServer(stalls_after(sent)) as server:
        with requests.Session() as plain:
            p_got, p_exc, p_secs = stream(plain, server.url, timeout=(3, READ_TIMEOUT))
        with keepwarm.Session(timeout=keepwarm.Timeout(3, READ_TIMEOUT)) as kw:
            k_got, k_exc, k_secs = stream(kw, server.url)
    assert k_got == p_got == sent - sent % 65536
    assert type(k_exc) is type(p_exc) is requests.exceptions.ConnectionError
    assert isinstance(k_exc.args[0], ReadTimeoutError)
    assert READ_TIMEOUT <= k_secs < READ_TIMEOUT + MARGIN
    assert READ_TIMEOUT <= p_secs < READ_TIMEOUT + MARGIN


def test_stalled_large_body_over_tls_is_cut_at_the_read_timeout_as_in_requests(
    server_ssl_context: ssl.SSLContext, ca_bundle: str
) -> None:
    """Over TLS, ``TLSSocketIO`` reads the records; the same outcome as requests'."""
    with RawServer(stalls_after(3 * LARGE_BODY, server_ssl_context)) as server:
        url = server.url.replace("http://", "https://")
        with requests.Session() as plain:
            p_got, p_exc, _ = stream(plain, url, timeout=(3, READ_TIMEOUT), verify=ca_bundle)
        with keepwarm.Session(timeout=keepwarm.Timeout(3, READ_TIMEOUT)) as kw:
            k_got, k_exc, k_secs = stream(kw, url, verify=ca_bundle)
    assert p_got == k_got == 3 * LARGE_BODY
    assert type(k_exc) is type(p_exc) is requests.exceptions.ConnectionError
    assert READ_TIMEOUT <= k_secs < READ_TIMEOUT + MARGIN


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_large_body_is_read_whole_and_the_connection_reused(
    scheme: str, server_ssl_context: ssl.SSLContext, ca_bundle: str
) -> None:
    expected = PATTERN * (BODY // len(PATTERN))
    context = server_ssl_context if scheme == "https" else None
    reader = TLSSocketIO if scheme == "https" else ReadFirstSocketIO
    with RawServer(over_tls(sends_all, context)) as server, keepwarm.Session() as kw:
        kw.verify = ca_bundle
        url = server.url.replace("http://", f"{scheme}://")
        with kw.get(url, stream=True) as r:
            assert type(r.raw._fp.fp.raw) is reader  # the path under test
            assert b"".join(r.iter_content(65536)) == expected
        assert kw.get(url).content == expected
        with kw.get(url, stream=True) as r:
            assert r.raw.read(7) == expected[:7]
            assert r.raw.read() == expected[7:]
        assert server.connections_accepted == 1


def test_without_a_timeout_the_socket_reader_is_cpythons() -> None:
    """No read timeout: the socket blocks, and CPython's reader does not poll: nothing to
    change."""
    timeout = keepwarm.Timeout(connect=3, read=None)
    with (
        RawServer(sends_all) as server,
        keepwarm.Session(timeout=timeout) as kw,
        kw.get(server.url, stream=True) as r,
    ):
        assert type(r.raw._fp.fp.raw) is socket.SocketIO
        assert len(r.content) == BODY
