"""The HTTP/1.1 server engine: :class:`LocalServer`, threaded, keep-alive, on loopback.

Why not :mod:`http.server`? Its ``ThreadingHTTPServer`` cannot be stopped promptly while a
kept-alive connection sits idle in ``recv`` (``shutdown()`` only stops the accept loop), it
does the TLS handshake wherever the socket gets wrapped (easily the accept loop, where one
silent client stalls everybody), it leaves Nagle on (a 40 ms delayed-ACK stall per request
that makes connection reuse look slow), and it cannot tell which connection served which
request. Connection reuse is exactly what keepwarm is about, so this server counts
connections, records peer ports, and can be closed at any moment without leaving a thread
or a socket behind.

What it serves is up to a :data:`Handler` (a function from :class:`ServerRequest` to
:class:`ServerResponse`); without one it serves the routes of
:mod:`keepwarm.bench._routes`. The tests use it in-process; ``keepwarm bench`` runs it in a
child process (:mod:`keepwarm.bench._server`).
"""

from __future__ import annotations

import contextlib
import http
import json
import logging
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from keepwarm._urls import origin

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_HEADER_BYTES",
    "Handler",
    "Headers",
    "LocalServer",
    "ServerRequest",
    "ServerResponse",
]

log = logging.getLogger("keepwarm.bench.server")

#: Largest request head (request line + headers) accepted; bigger gets 431 and a close.
MAX_HEADER_BYTES = 64 * 1024
#: Largest request body accepted; bigger gets 413 and a close.
MAX_BODY_BYTES = 64 * 1024 * 1024

_RECV_SIZE = 256 * 1024
_MAX_LINE = 8 * 1024
# A server-initiated close drains what the client still sends for at most this long, so
# that closing with unread data does not turn into an RST that destroys our own response.
_LINGER_SECONDS = 1.0
_LINGER_MAX_BYTES = 4 * 1024 * 1024
_JOIN_SECONDS = 5.0


class Headers(Mapping[str, str]):
    """Request headers in arrival order, looked up case-insensitively.

    Repeated fields read as one value joined with ``", "`` (as RFC 9110 allows), while
    :meth:`get_all` and :attr:`raw` keep every field as sent, so tests can check both the
    meaning and the exact bytes a client produced.
    """

    __slots__ = ("_index", "_names", "_raw")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._raw: tuple[tuple[str, str], ...] = tuple(items)
        index: dict[str, str] = {}
        names: dict[str, str] = {}
        for name, value in self._raw:
            key = name.lower()
            if key in index:
                index[key] = f"{index[key]}, {value}"
            else:
                index[key] = value
                names[key] = name
        self._index = index
        self._names = names

    def __getitem__(self, name: str) -> str:
        return self._index[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._names.values())

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        return f"Headers({list(self._raw)!r})"

    @property
    def raw(self) -> tuple[tuple[str, str], ...]:
        """Every field as received, in order, names in their original case."""
        return self._raw

    def get_all(self, name: str) -> list[str]:
        """Every value of the field *name* (case-insensitive), in arrival order."""
        key = name.lower()
        return [value for field_name, value in self._raw if field_name.lower() == key]

    def to_dict(self) -> dict[str, str]:
        """A plain dict (names in the case first seen), e.g. to serialise as JSON."""
        return {self._names[key]: value for key, value in self._index.items()}


@dataclass(frozen=True)
class ServerRequest:
    """One request as the server received it; handlers get it and tests inspect it.

    ``path`` is the request target exactly as sent (with its query string, like
    :attr:`http.server.BaseHTTPRequestHandler.path`); ``route`` is the same without the
    query. ``query`` keeps the last value of each name, ``query_items`` all of them.
    ``connection_index`` numbers the server's connections from 0 in accept order (it is
    not reset by :meth:`LocalServer.reset`), so two requests with the same index went over
    the same connection.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: Headers
    body: bytes
    client_port: int
    connection_index: int
    query_items: tuple[tuple[str, str], ...] = ()
    http_version: str = "HTTP/1.1"

    @property
    def route(self) -> str:
        """The path without its query string."""
        return self.path.partition("?")[0]


@dataclass
class ServerResponse:
    """What a handler answers.

    ``Content-Length`` is added when missing (and the status allows a body). ``close``
    makes the server send ``Connection: close`` and close the connection after this
    response; a ``Connection: close`` header from the handler does the same. ``delay``
    waits that many seconds before answering (cut short when the server closes), which is
    how timeouts get tested without a handler blocking a thread in ``time.sleep``.
    """

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    close: bool = False
    delay: float = 0.0

    @classmethod
    def text(
        cls, text: str, status: int = 200, headers: Iterable[tuple[str, str]] = ()
    ) -> ServerResponse:
        """A ``text/plain`` UTF-8 response."""
        return cls(
            status,
            [("Content-Type", "text/plain; charset=utf-8"), *headers],
            text.encode("utf-8"),
        )

    @classmethod
    def json(
        cls, value: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()
    ) -> ServerResponse:
        """An ``application/json`` response (keys sorted so bodies are reproducible)."""
        body = json.dumps(value, sort_keys=True).encode("utf-8")
        return cls(status, [("Content-Type", "application/json"), *headers], body)


Handler = Callable[[ServerRequest], ServerResponse]


class _HttpError(Exception):
    """The request cannot be served: answer *status* and close the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _ClientGone(Exception):
    """The client closed the connection in the middle of a request."""


class _Connection:
    """Book-keeping for one accepted connection (guarded by the server lock)."""

    __slots__ = ("client_port", "index", "sock", "thread")

    def __init__(self, index: int, sock: socket.socket, client_port: int) -> None:
        self.index = index
        self.sock = sock
        self.client_port = client_port
        self.thread: threading.Thread | None = None


class LocalServer:
    """Threaded HTTP/1.1 keep-alive server on ``host``:0, one thread per connection.

    *handler* answers every request (the bench's routes are
    :func:`~keepwarm.bench._routes.default_handler`). Use it as a context manager
    (``with LocalServer(handler) as srv: ... srv.url``) or call
    :meth:`start` and :meth:`close`. ``close()`` is idempotent, wakes every connection
    thread (even one blocked in ``recv`` on an idle kept-alive connection or in a TLS
    handshake), joins them and closes every socket, so tests stay free of
    ``ResourceWarning``.

    With ``ssl_context`` the server speaks HTTPS; the handshake runs in the connection's
    own thread (bounded by ``handshake_timeout``), never in the accept loop, so a client
    that never handshakes cannot block the others. ``idle_timeout`` closes connections
    that stay silent that long between requests (``None``: keep them until the client
    or :meth:`close` ends them), which lets tests produce stale pooled connections.
    ``record_requests=False`` keeps only the counters (the benchmark server uses it so a
    long run does not accumulate every request).
    """

    def __init__(
        self,
        handler: Handler,
        *,
        ssl_context: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
        idle_timeout: float | None = None,
        handshake_timeout: float = 10.0,
        record_requests: bool = True,
    ) -> None:
        if idle_timeout is not None and not idle_timeout > 0:
            raise ValueError(f"idle_timeout must be > 0 or None, got {idle_timeout!r}")
        if not handshake_timeout > 0:
            raise ValueError(f"handshake_timeout must be > 0, got {handshake_timeout!r}")
        self._handler: Handler = handler
        self._ssl_context = ssl_context
        self._host = host
        self._idle_timeout = idle_timeout
        self._handshake_timeout = handshake_timeout
        self._record_requests = record_requests

        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._started = False
        self._closed = False
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._port = 0
        self._live: dict[int, _Connection] = {}
        self._next_index = 0

        self._connections_accepted = 0
        self._client_ports: list[int] = []
        self._requests_handled = 0
        self._requests: list[ServerRequest] = []

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> LocalServer:
        """Bind ``host``:0, listen and start the accept thread; returns ``self``."""
        with self._lock:
            if self._closed:
                raise RuntimeError("this LocalServer is closed; create a new one")
            if self._started:
                return self
            self._started = True
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        listener = socket.create_server((self._host, 0), family=family, backlog=128)
        try:
            listener.setblocking(False)
            wake_r, wake_w = socket.socketpair()
        except BaseException:
            listener.close()
            raise
        self._listener, self._wake_r, self._wake_w = listener, wake_r, wake_w
        self._port = listener.getsockname()[1]
        thread = threading.Thread(
            target=self._accept_loop,
            args=(listener, wake_r),
            name=f"keepwarm-server-{self._port}-accept",
            daemon=True,
        )
        self._accept_thread = thread
        try:
            thread.start()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop accepting, end every connection, join the threads, close every socket."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stopping.set()
            self._changed.notify_all()
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")
        deadline = time.monotonic() + _JOIN_SECONDS
        if self._accept_thread is not None and self._accept_thread.ident is not None:
            self._accept_thread.join(timeout=_JOIN_SECONDS)
        with self._lock:
            connections = list(self._live.values())
            for conn in connections:
                _shutdown(conn.sock)
        for conn in connections:
            if conn.thread is not None and conn.thread.ident is not None:
                conn.thread.join(timeout=max(0.0, deadline - time.monotonic()))
        for sock in (self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        stuck = [c.index for c in connections if c.thread is not None and c.thread.is_alive()]
        if stuck:  # pragma: no cover - only if a handler ignores the shutdown
            log.warning("connection threads %s did not stop within %ss", stuck, _JOIN_SECONDS)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- address ----------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The address the server listens on (an IP literal, e.g. ``127.0.0.1``)."""
        return self._host

    @property
    def port(self) -> int:
        """The port the OS picked; only known after :meth:`start`."""
        if not self._port:
            raise RuntimeError("LocalServer.port is only known after start()")
        return self._port

    @property
    def scheme(self) -> str:
        """``https`` when serving TLS, else ``http``."""
        return "https" if self._ssl_context is not None else "http"

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:41234``."""
        return origin(self.scheme, self._host, self.port)

    # -- counters ---------------------------------------------------------------------

    @property
    def connections_accepted(self) -> int:
        """Connections accepted since start (or the last :meth:`reset`)."""
        with self._lock:
            return self._connections_accepted

    @property
    def client_ports(self) -> list[int]:
        """Peer port of every accepted connection, in accept order (a copy)."""
        with self._lock:
            return list(self._client_ports)

    @property
    def requests_handled(self) -> int:
        """Requests received in full (counted before the handler runs, so a request the
        client saw answered is always counted, and so is one whose answer it gave up on)."""
        with self._lock:
            return self._requests_handled

    @property
    def requests(self) -> list[ServerRequest]:
        """Every recorded request, in arrival order (a copy; empty if not recording)."""
        with self._lock:
            return list(self._requests)

    @property
    def open_connections(self) -> int:
        """Connections whose thread is still running."""
        with self._lock:
            return len(self._live)

    def reset(self) -> None:
        """Zero the counters and forget the recorded requests (connections stay open)."""
        with self._lock:
            self._connections_accepted = 0
            self._client_ports.clear()
            self._requests_handled = 0
            self._requests.clear()
            self._changed.notify_all()

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> bool:
        """Wait until ``requests_handled >= n``; False if *timeout* seconds pass first."""
        with self._changed:
            return self._changed.wait_for(lambda: self._requests_handled >= n, timeout)

    def wait_for_connections(self, n: int, timeout: float = 5.0) -> bool:
        """Wait until ``connections_accepted >= n``; False if *timeout* seconds pass first."""
        with self._changed:
            return self._changed.wait_for(lambda: self._connections_accepted >= n, timeout)

    def wait_for_no_connections(self, timeout: float = 5.0) -> bool:
        """Wait until every connection has ended (the client or the server closed it);
        False if *timeout* passes first."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._live, timeout)

    # -- accepting --------------------------------------------------------------------

    def _accept_loop(self, listener: socket.socket, wake_r: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        try:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(wake_r, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is wake_r:
                        return
                    self._accept_one(listener)
        except Exception:  # pragma: no cover - defensive: never die with a traceback
            log.exception("accept loop failed")
        finally:
            selector.close()

    def _accept_one(self, listener: socket.socket) -> None:
        try:
            sock, address = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # e.g. EMFILE: back off briefly instead of spinning
            log.warning("accept failed: %s", exc)
            self._stopping.wait(0.05)
            return
        sock.setblocking(True)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            if self._stopping.is_set():
                sock.close()
                return
            index = self._next_index
            self._next_index += 1
            self._connections_accepted += 1
            self._client_ports.append(address[1])
            conn = _Connection(index, sock, address[1])
            conn.thread = threading.Thread(
                target=self._serve_connection,
                args=(conn,),
                name=f"keepwarm-server-{self._port}-conn-{index}",
                daemon=True,
            )
            self._live[index] = conn
            self._changed.notify_all()
        try:
            conn.thread.start()
        except RuntimeError:  # pragma: no cover - "can't start new thread"
            log.warning("cannot start a thread for connection %d", index)
            with self._lock:
                self._live.pop(index, None)
                sock.close()

    # -- serving a connection ---------------------------------------------------------

    def _serve_connection(self, conn: _Connection) -> None:
        sock = conn.sock
        try:
            if self._ssl_context is not None:
                sock.settimeout(self._handshake_timeout)
                tls = self._ssl_context.wrap_socket(
                    sock, server_side=True, do_handshake_on_connect=False
                )
                sock = tls
                with self._lock:
                    conn.sock = tls
                    if self._stopping.is_set():
                        return
                tls.do_handshake()
            sock.settimeout(self._idle_timeout)
            self._serve_requests(conn, sock)
        except (OSError, _ClientGone) as exc:  # includes ssl.SSLError and timeouts
            log.debug("connection %d ended: %r", conn.index, exc)
        except Exception:  # pragma: no cover - defensive: never an unraisable exception
            log.exception("connection %d failed", conn.index)
        finally:
            with self._lock:
                self._live.pop(conn.index, None)
                sock.close()
                self._changed.notify_all()

    def _serve_requests(self, conn: _Connection, sock: socket.socket) -> None:
        buf = bytearray()
        while not self._stopping.is_set():
            try:
                head = _read_head(sock, buf)
                if head is None:
                    return  # the client closed between requests: the normal end
                method, target, version, headers = _parse_head(head)
                body = _read_body(sock, buf, version, headers)
            except _HttpError as err:
                self._send_error(sock, err)
                return
            query_items = _query_items(target)
            request = ServerRequest(
                method=method,
                path=target,
                query=dict(query_items),
                headers=headers,
                body=body,
                client_port=conn.client_port,
                connection_index=conn.index,
                query_items=query_items,
                http_version=version,
            )
            self._record(request)
            response, head_bytes, close = self._respond(request)
            if response.delay > 0 and self._stopping.wait(response.delay):
                return
            payload = (
                b"" if method == "HEAD" or not _body_allowed(response.status) else response.body
            )
            if len(payload) <= 64 * 1024:
                sock.sendall(head_bytes + payload)
            else:  # avoid copying big bodies just to save one segment
                sock.sendall(head_bytes)
                sock.sendall(payload)
            if close:
                _lingering_close(sock)
                return

    def _record(self, request: ServerRequest) -> None:
        with self._lock:
            self._requests_handled += 1
            if self._record_requests:
                self._requests.append(request)
            self._changed.notify_all()

    def _respond(self, request: ServerRequest) -> tuple[ServerResponse, bytes, bool]:
        """Run the handler; any failure (including an unencodable response) becomes 500."""
        try:
            response = self._handler(request)
            if not isinstance(response, ServerResponse):
                raise TypeError(f"handler returned {type(response).__name__}, not ServerResponse")
            close = response.close or self._stopping.is_set() or not _client_keeps_alive(request)
            head, close = _encode_head(response, close)
        except Exception:
            log.exception("handler failed on %s %s", request.method, request.path)
            response = ServerResponse.text("internal server error\n", status=500)
            close = not _client_keeps_alive(request)
            head, close = _encode_head(response, close)
        if close or request.http_version != "HTTP/1.0":
            return response, head, close
        # An HTTP/1.0 client only keeps the connection when told so explicitly.
        return response, head[:-2] + b"Connection: keep-alive\r\n\r\n", close

    def _send_error(self, sock: socket.socket, err: _HttpError) -> None:
        log.debug("rejecting request: %d %s", err.status, err.message)
        response = ServerResponse.text(err.message + "\n", status=err.status)
        head, _ = _encode_head(response, True)
        with contextlib.suppress(OSError):
            sock.sendall(head + response.body)
            _lingering_close(sock)


# -- HTTP/1.1 wire helpers ------------------------------------------------------------


def _shutdown(sock: socket.socket) -> None:
    """Wake a thread blocked on *sock* (plain or TLS) by shutting the descriptor down.

    ``SSLSocket.shutdown`` would also drop the TLS object under the reading thread's feet,
    so the plain socket method is called on the descriptor instead.
    """
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _lingering_close(sock: socket.socket) -> None:
    """Half-close, then drain the client's leftovers briefly before the caller closes.

    Closing a socket that still has unread input makes the kernel send an RST, which can
    destroy the response we just sent before the client reads it.
    """
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_WR)
        deadline = time.monotonic() + _LINGER_SECONDS
        drained = 0
        while drained < _LINGER_MAX_BYTES:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            sock.settimeout(remaining)
            chunk = socket.socket.recv(sock, 65536)
            if not chunk:
                return
            drained += len(chunk)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(_RECV_SIZE)
    except ssl.SSLEOFError:  # the client closed without a TLS close_notify: an EOF
        return b""


def _read_head(sock: socket.socket, buf: bytearray) -> bytes | None:
    """Read up to the blank line ending the request head; None on a clean EOF first."""
    start = 0
    while True:
        while buf[:2] == b"\r\n":  # RFC 9112 2.2: ignore empty lines before a request
            del buf[:2]
        end = buf.find(b"\r\n\r\n", start)
        if end >= 0:
            if end + 4 > MAX_HEADER_BYTES:
                raise _HttpError(431, "request header fields too large")
            head = bytes(buf[:end])
            del buf[: end + 4]
            return head
        if len(buf) > MAX_HEADER_BYTES:
            raise _HttpError(431, "request header fields too large")
        start = max(0, len(buf) - 3)
        chunk = _recv(sock)
        if not chunk:
            if buf:
                raise _ClientGone("EOF inside a request head")
            return None
        buf += chunk


def _parse_head(head: bytes) -> tuple[str, str, str, Headers]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise _HttpError(400, f"malformed request line {lines[0][:100]!r}")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise _HttpError(505, f"unsupported protocol version {version[:20]!r}")
    items: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or " " in name:
            raise _HttpError(400, f"malformed header line {line[:100]!r}")
        items.append((name, value.strip(" \t")))
    return method, target, version, Headers(items)


def _read_exact(sock: socket.socket, buf: bytearray, n: int) -> bytes:
    while len(buf) < n:
        chunk = _recv(sock)
        if not chunk:
            raise _ClientGone("EOF inside a request body")
        buf += chunk
    data = bytes(buf[:n])
    del buf[:n]
    return data


def _read_line(sock: socket.socket, buf: bytearray) -> bytes:
    start = 0
    while True:
        end = buf.find(b"\r\n", start)
        if end >= 0:
            line = bytes(buf[:end])
            del buf[: end + 2]
            return line
        if len(buf) > _MAX_LINE:
            raise _HttpError(400, "chunk line too long")
        start = max(0, len(buf) - 1)
        chunk = _recv(sock)
        if not chunk:
            raise _ClientGone("EOF inside a chunked body")
        buf += chunk


def _read_body(sock: socket.socket, buf: bytearray, version: str, headers: Headers) -> bytes:
    transfer_encoding = headers.get("transfer-encoding")
    length_field = headers.get("content-length")
    if transfer_encoding is not None:
        if transfer_encoding.split(",")[-1].strip().lower() != "chunked":
            raise _HttpError(400, f"unsupported transfer-encoding {transfer_encoding[:50]!r}")
        _maybe_continue(sock, buf, version, headers)
        return _read_chunked(sock, buf)
    if length_field is None:
        return b""
    if not length_field.isdigit() or len(length_field) > 18:
        raise _HttpError(400, f"invalid content-length {length_field[:30]!r}")
    length = int(length_field)
    if length > MAX_BODY_BYTES:
        raise _HttpError(413, f"request body larger than {MAX_BODY_BYTES} bytes")
    if length:
        _maybe_continue(sock, buf, version, headers)
    return _read_exact(sock, buf, length)


def _maybe_continue(sock: socket.socket, buf: bytearray, version: str, headers: Headers) -> None:
    expect = headers.get("expect", "").lower()
    if version == "HTTP/1.1" and expect == "100-continue" and not buf:
        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")


def _read_chunked(sock: socket.socket, buf: bytearray) -> bytes:
    body = bytearray()
    while True:
        size_field = _read_line(sock, buf).split(b";", 1)[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError:
            raise _HttpError(400, f"invalid chunk size {size_field[:20]!r}") from None
        if size < 0:
            raise _HttpError(400, "negative chunk size")
        if size == 0:
            while _read_line(sock, buf):  # trailer fields, ignored, until the blank line
                pass
            return bytes(body)
        if len(body) + size > MAX_BODY_BYTES:
            raise _HttpError(413, f"request body larger than {MAX_BODY_BYTES} bytes")
        body += _read_exact(sock, buf, size)
        if _read_exact(sock, buf, 2) != b"\r\n":
            raise _HttpError(400, "chunk not followed by CRLF")


def _client_keeps_alive(request: ServerRequest) -> bool:
    tokens = {t.strip().lower() for t in request.headers.get("connection", "").split(",")}
    if request.http_version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


def _body_allowed(status: int) -> bool:
    return not (100 <= status < 200 or status in (204, 304))


def _encode_head(response: ServerResponse, close: bool) -> tuple[bytes, bool]:
    """Serialise status line and headers; returns them and whether to close after."""
    status = response.status
    if not isinstance(status, int) or not 100 <= status <= 999:
        raise ValueError(f"invalid status {status!r}")
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}"]
    framed = False
    for name, value in response.headers:
        if any(c in name or c in value for c in "\r\n\0") or not name or ":" in name:
            raise ValueError(f"invalid header {name!r}: {value!r}")
        lname = name.lower()
        if lname == "connection":
            close = close or "close" in value.lower()
            continue
        framed = framed or lname in ("content-length", "transfer-encoding")
        lines.append(f"{name}: {value}")
    if not framed and _body_allowed(status):
        lines.append(f"Content-Length: {len(response.body)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), close


def _query_items(target: str) -> tuple[tuple[str, str], ...]:
    query = urlsplit(target).query
    return tuple(parse_qsl(query, keep_blank_values=True, max_num_fields=1000))
