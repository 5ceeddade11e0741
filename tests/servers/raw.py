"""Raw-socket servers that misbehave on purpose, for timeout and failure tests.

``RawServer(script)`` accepts on 127.0.0.1 port 0 and runs ``script(conn, server)`` in a
thread of its own for every accepted connection. The ready-made scripts cover the classic
failures a client must survive: a server that never answers (:func:`silent`), one that
hangs up at once (:func:`close_immediately`), one that resets the connection after the
request (:func:`reset_after_request`) and one that sends fixed bytes
(:func:`respond_with`). :func:`backlog_full_address` gives an address whose connect
attempts time out (Linux only).

Everything is bounded: reads have timeouts, scripts that hold a socket wait on the
server's closing event (at most ``HOLD_SECONDS``), and ``close()`` joins with a deadline.
"""

from __future__ import annotations

import contextlib
import logging
import select
import selectors
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

log = logging.getLogger("tests.servers.raw")

Script = Callable[[socket.socket, "RawServer"], None]

#: Longest time a script holds a connection open waiting for the server to close.
HOLD_SECONDS = 60.0
_JOIN_SECONDS = 5.0


class RawServer:
    """Accept on ``host``:0 and run *script* per connection, each in its own thread.

    Use as a context manager or call :meth:`start` / :meth:`close`. ``close()`` is
    idempotent: it sets :attr:`closing` (scripts waiting on it return), stops accepting,
    shuts every connection down, joins the threads (bounded) and closes every socket.
    Exceptions other than ``OSError`` raised by a script are kept in :attr:`errors`, so a
    test can assert its script did what it meant to.
    """

    def __init__(self, script: Script, *, host: str = "127.0.0.1", backlog: int = 128) -> None:
        self._script = script
        self._host = host
        self._backlog = backlog
        self.closing = threading.Event()
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._connections: list[tuple[socket.socket, threading.Thread]] = []
        self._connections_accepted = 0
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._port = 0
        self._started = False

    def start(self) -> RawServer:
        if self._started:
            return self
        if self.closing.is_set():
            raise RuntimeError("this RawServer is closed; create a new one")
        self._started = True
        listener = socket.create_server((self._host, 0), backlog=self._backlog)
        listener.setblocking(False)
        self._listener = listener
        self._wake_r, self._wake_w = socket.socketpair()
        self._port = listener.getsockname()[1]
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"raw-server-{self._port}-accept", daemon=True
        )
        self._accept_thread.start()
        return self

    def __enter__(self) -> RawServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("RawServer.port is only known after start()")
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        return (self._host, self.port)

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def connections_accepted(self) -> int:
        with self._lock:
            return self._connections_accepted

    def wait_for_connections(self, n: int, timeout: float = 5.0) -> bool:
        """Wait until *n* connections were accepted; False if *timeout* passes first."""
        with self._changed:
            return self._changed.wait_for(lambda: self._connections_accepted >= n, timeout)

    def wait_closed(self, timeout: float = HOLD_SECONDS) -> bool:
        """For scripts: block until the server closes (True) or *timeout* passes."""
        return self.closing.wait(timeout)

    def close(self) -> None:
        with self._lock:
            if self.closing.is_set():
                return
            self.closing.set()
            self._changed.notify_all()
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")
        deadline = time.monotonic() + _JOIN_SECONDS
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=_JOIN_SECONDS)
        with self._lock:
            connections = list(self._connections)
            for conn, _ in connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        for _, thread in connections:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        with self._lock:
            for conn, _ in connections:
                conn.close()
        for sock in (self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()

    def _accept_loop(self) -> None:
        assert self._listener is not None and self._wake_r is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self.closing.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._wake_r:
                        return
                    try:
                        conn, _ = self._listener.accept()
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError as exc:
                        log.warning("accept failed: %s", exc)
                        self.closing.wait(0.05)
                        continue
                    conn.setblocking(True)
                    # Without it a Nagle/delayed-ACK stall adds ~40 ms per exchange.
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    with self._lock:
                        if self.closing.is_set():
                            conn.close()
                            return
                        self._connections_accepted += 1
                        thread = threading.Thread(
                            target=self._run_script,
                            args=(conn,),
                            name=f"raw-server-{self._port}-conn-{self._connections_accepted}",
                            daemon=True,
                        )
                        self._connections.append((conn, thread))
                        self._changed.notify_all()
                    thread.start()

    def _run_script(self, conn: socket.socket) -> None:
        try:
            self._script(conn, self)
        except OSError as exc:
            log.debug("raw script ended: %r", exc)
        except Exception as exc:
            log.exception("raw script failed")
            with self._lock:
                self.errors.append(exc)
        finally:
            with self._lock:
                conn.close()


def refused_url() -> str:
    """A loopback URL nobody listens on (a port bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def read_request_head(conn: socket.socket, timeout: float = 5.0, limit: int = 65536) -> bytes:
    """Read until the blank line that ends a request head, EOF, *limit* bytes or *timeout*."""
    conn.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in data and len(data) < limit and time.monotonic() < deadline:
        try:
            chunk = conn.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return data


def read_request(conn: socket.socket, timeout: float = 5.0, limit: int = 65536) -> bytes:
    """Read one whole request: the head and a ``Content-Length`` body (which may arrive in
    a later TCP segment and must not be mistaken for the next request)."""
    data = read_request_head(conn, timeout, limit)
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return data
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip() or 0)
    deadline = time.monotonic() + timeout
    while len(body) < length and time.monotonic() < deadline:
        try:
            chunk = conn.recv(length - len(body))
        except TimeoutError:
            break
        if not chunk:
            break
        body += chunk
    return head + sep + body


def relay(a: socket.socket, b: socket.socket, server: RawServer, seconds: float = 10.0) -> None:
    """Copy bytes both ways between *a* and *b* until either side closes, the server
    closes or *seconds* pass (a tunnel's inside, for the proxy scripts)."""
    deadline = time.monotonic() + seconds
    peer = {a: b, b: a}
    with selectors.DefaultSelector() as selector:
        selector.register(a, selectors.EVENT_READ)
        selector.register(b, selectors.EVENT_READ)
        while not server.closing.is_set() and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                data = sock.recv(65536)
                if not data:
                    return
                peer[sock].sendall(data)


def _recv_exactly(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"peer closed after {len(data)} of {n} bytes")
        data += chunk
    return data


class Socks5Proxy:
    """A SOCKS5 proxy (RFC 1928) script for a RawServer: ``CONNECT`` only, to loopback only.

    No authentication by default; with *credentials* it demands username/password
    (RFC 1929). Each tunnel's destination ``(host, port)`` as the client sent it (a name
    for ``socks5h://``, an address for ``socks5://``) is kept in :attr:`tunnels`, the
    credentials the client offered in :attr:`logins`.
    """

    RELAY_SECONDS = 10.0

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.credentials = credentials
        self.tunnels: list[tuple[str, int]] = []
        self.logins: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, conn: socket.socket, server: RawServer) -> None:
        conn.settimeout(5.0)
        version, n_methods = _recv_exactly(conn, 2)
        methods = _recv_exactly(conn, n_methods)
        assert version == 5, version
        wanted = 2 if self.credentials else 0
        if wanted not in methods:
            conn.sendall(b"\x05\xff")
            return
        conn.sendall(bytes([5, wanted]))
        if self.credentials:
            _, user_len = _recv_exactly(conn, 2)
            user = _recv_exactly(conn, user_len).decode()
            (password_len,) = _recv_exactly(conn, 1)
            password = _recv_exactly(conn, password_len).decode()
            with self._lock:
                self.logins.append((user, password))
            if (user, password) != self.credentials:
                conn.sendall(b"\x01\x01")
                return
            conn.sendall(b"\x01\x00")
        _, command, _, address_type = _recv_exactly(conn, 4)
        if address_type == 1:
            host = socket.inet_ntop(socket.AF_INET, _recv_exactly(conn, 4))
        elif address_type == 4:
            host = socket.inet_ntop(socket.AF_INET6, _recv_exactly(conn, 16))
        else:
            (name_len,) = _recv_exactly(conn, 1)
            host = _recv_exactly(conn, name_len).decode("idna")
        (port,) = struct.unpack("!H", _recv_exactly(conn, 2))
        with self._lock:
            self.tunnels.append((host, port))
        if command != 1 or host not in ("127.0.0.1", "localhost"):
            # 0x07 command not supported / 0x02 connection not allowed by ruleset.
            reply = 7 if command != 1 else 2
            conn.sendall(bytes([5, reply, 0, 1, 0, 0, 0, 0, 0, 0]))
            return
        with socket.create_connection(("127.0.0.1", port), timeout=5) as upstream:
            bound_host, bound_port = upstream.getsockname()[:2]
            conn.sendall(
                bytes([5, 0, 0, 1]) + socket.inet_aton(bound_host) + struct.pack("!H", bound_port)
            )
            conn.settimeout(None)
            relay(conn, upstream, server, self.RELAY_SECONDS)


def silent(conn: socket.socket, server: RawServer) -> None:
    """Read the request, never answer, hold the socket until the server closes."""
    read_request_head(conn)
    server.wait_closed()


def close_immediately(conn: socket.socket, server: RawServer) -> None:
    """Hang up as soon as the connection is accepted (the client sees a dropped or reset
    connection, or an empty reply, depending on timing)."""
    conn.close()


def reset_after_request(conn: socket.socket, server: RawServer) -> None:
    """Read the request, then close with ``SO_LINGER`` 0 so the kernel sends an RST."""
    read_request_head(conn)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def respond_with(data: bytes, *, close: bool = True) -> Script:
    """A script that reads one request head, sends *data* verbatim, then closes (or, with
    ``close=False``, holds the socket until the server closes). For malformed or
    truncated responses that a real server would never produce."""

    def script(conn: socket.socket, server: RawServer) -> None:
        read_request_head(conn)
        conn.sendall(data)
        if not close:
            server.wait_closed()

    return script


@contextlib.contextmanager
def backlog_full_address(max_fill: int = 64) -> Iterator[tuple[str, int]]:
    """An address on 127.0.0.1 whose new connect attempts time out (Linux only).

    A listener with ``listen(0)`` that never accepts is filled with connections until
    one's SYN goes unanswered: when the accept queue is full, Linux drops incoming SYNs,
    so a client waits for its connect timeout instead of getting "connection refused".
    Other systems answer a full backlog differently (macOS and Windows may refuse or
    reset), so the test calling this is skipped there.
    """
    if not sys.platform.startswith("linux"):
        pytest.skip("backlog_full_address relies on Linux dropping SYNs to a full backlog")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        for _ in range(max_fill):
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            fillers.append(client)
            client.setblocking(False)
            client.connect_ex(address)
            _, writable, _ = select.select([], [client], [], 0.2)
            if not writable:
                break  # this SYN went unanswered: the backlog is full
        else:
            pytest.skip(f"the backlog did not fill after {max_fill} connections")
        yield address
    finally:
        for client in fillers:
            client.close()
        listener.close()
