"""A TCP proxy on 127.0.0.1 that adds a round-trip time, for ``keepwarm bench --rtt``.

Loopback has no distance, so a new connection costs almost nothing there; over a real
network it costs one round trip for TCP and one more for TLS 1.3 before the request can
even leave. This proxy puts the distance back: every byte it forwards, in either
direction, is delivered ``rtt / 2`` after it arrived, so a request and its response take
one RTT and a TLS handshake really costs its round trip.

The TCP handshake is the one thing a userspace proxy cannot delay: the kernel completes
it at once on loopback, so ``connect()`` returns immediately. The proxy charges it
instead to the first bytes of each connection, which are not forwarded before one RTT
after the connection was accepted (when the client could have sent them over a real
network) plus the usual ``rtt / 2``. End to end, a cold HTTP request takes 2 RTT, a warm
one 1 RTT, and a cold HTTPS request 3 RTT, as on a network with that RTT; the time just
shows up after ``connect()`` rather than inside it.

One thread and a selector do all the work; every loop is bounded (select timeouts of at
most 50 ms, a lifetime, a connection cap, a per-direction buffer cap that stops reading
until the other side drains). It runs in a separate process (``python -m
keepwarm.bench._proxy``, like the server) so it never competes with the measured client
for the GIL; :class:`LatencyProxy` can also run in-process, e.g. in tests.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import logging
import selectors
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from keepwarm.bench._child import ChildProcess

__all__ = ["LatencyProxy", "ProxyProcess", "main"]

log = logging.getLogger("keepwarm.bench.proxy")

_RECV_SIZE = 64 * 1024
_MAX_SELECT_SECONDS = 0.05
_CONNECT_SECONDS = 2.0
_JOIN_SECONDS = 5.0
#: The proxy process ends by itself after this long, whatever happens to its parent.
DEFAULT_LIFETIME = 3600.0


class _Pipe:
    """One direction of a proxied connection: bytes from *src* waiting to reach *dst*."""

    __slots__ = ("blocked", "buffered", "done", "dst", "not_before", "queue", "reading", "src")

    def __init__(self, src: socket.socket, dst: socket.socket, not_before: float) -> None:
        self.src = src
        self.dst = dst
        #: Nothing is forwarded before this moment (the emulated TCP handshake).
        self.not_before = not_before
        #: ``(due, data)``; ``data`` None stands for the end of the stream (a FIN).
        self.queue: deque[tuple[float, bytes | None]] = deque()
        self.buffered = 0
        self.reading = True
        self.blocked = False
        self.done = False


class _Link:
    """A client connection and its upstream connection."""

    __slots__ = ("client", "down", "up", "upstream")

    def __init__(self, client: socket.socket, upstream: socket.socket, now: float, rtt: float):
        self.client = client
        self.upstream = upstream
        self.up = _Pipe(client, upstream, now + rtt)
        self.down = _Pipe(upstream, client, now)

    def pipes(self) -> tuple[_Pipe, _Pipe]:
        return self.up, self.down


class LatencyProxy:
    """Forward ``host``:port to *upstream*, each direction delayed by ``rtt / 2``."""

    def __init__(
        self,
        upstream: tuple[str, int],
        rtt: float,
        *,
        host: str = "127.0.0.1",
        max_connections: int = 1024,
        max_buffered: int = 4 * 1024 * 1024,
        lifetime: float = DEFAULT_LIFETIME,
    ) -> None:
        if not 0 <= rtt <= 10:
            raise ValueError(f"rtt must be from 0 to 10 seconds, got {rtt!r}")
        self._upstream = upstream
        self._rtt = rtt
        self._delay = rtt / 2
        self._host = host
        self._max_connections = max_connections
        self._max_buffered = max_buffered
        self._lifetime = lifetime
        self._selector = selectors.DefaultSelector()
        self._links: set[_Link] = set()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self.connections_accepted = 0
        self.port = 0

    def __enter__(self) -> LatencyProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> LatencyProxy:
        listener = socket.create_server((self._host, 0), backlog=128)
        listener.setblocking(False)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._selector.register(listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(
            target=self._loop, name=f"keepwarm-proxy-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the loop, close every connection and socket; idempotent."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._thread is not None:
            self._thread.join(timeout=_JOIN_SECONDS)
            self._thread = None
        for link in list(self._links):
            self._drop(link)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._wake_r.close()
        self._wake_w.close()
        self._selector.close()

    # -- the loop ---------------------------------------------------------------------

    def _loop(self) -> None:
        deadline = time.monotonic() + self._lifetime
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                if now > deadline:
                    log.warning("latency proxy: lifetime of %ss reached, stopping", self._lifetime)
                    return
                for key, mask in self._selector.select(self._next_timeout(now)):
                    if key.data == "wake":
                        return
                    if key.data == "accept":
                        self._accept()
                    else:
                        link, sock = key.data
                        if link in self._links:
                            self._on_event(link, sock, mask)
                self._flush(time.monotonic())
        except Exception:  # pragma: no cover - defensive: never die with a traceback
            log.exception("latency proxy failed")
            self._stopping.set()

    def _next_timeout(self, now: float) -> float:
        timeout = _MAX_SELECT_SECONDS
        for link in self._links:
            for pipe in link.pipes():
                if pipe.queue and not pipe.blocked:
                    timeout = min(timeout, max(0.0, pipe.queue[0][0] - now))
        return timeout

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            client, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.warning("latency proxy: accept failed: %s", exc)
            return
        if len(self._links) >= self._max_connections:
            client.close()
            return
        try:
            upstream = socket.create_connection(self._upstream, timeout=_CONNECT_SECONDS)
        except OSError as exc:
            log.warning("latency proxy: upstream connect failed: %s", exc)
            client.close()
            return
        self.connections_accepted += 1
        for sock in (client, upstream):
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = _Link(client, upstream, time.monotonic(), self._rtt)
        self._links.add(link)
        self._selector.register(client, selectors.EVENT_READ, (link, client))
        self._selector.register(upstream, selectors.EVENT_READ, (link, upstream))

    def _on_event(self, link: _Link, sock: socket.socket, mask: int) -> None:
        outgoing = link.up if sock is link.client else link.down
        incoming = link.down if sock is link.client else link.up
        if mask & selectors.EVENT_WRITE:
            incoming.blocked = False
        if mask & selectors.EVENT_READ and outgoing.reading:
            try:
                data = sock.recv(_RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._drop(link)
                return
            now = time.monotonic()
            due = max(now, outgoing.not_before) + self._delay
            outgoing.queue.append((due, data or None))
            outgoing.buffered += len(data)
            if not data:
                outgoing.reading = False
        self._update_interest(link)

    def _flush(self, now: float) -> None:
        for link in list(self._links):
            for pipe in link.pipes():
                while pipe.queue and not pipe.blocked and not pipe.done:
                    due, data = pipe.queue[0]
                    if due > now:
                        break
                    if data is None:
                        pipe.queue.popleft()
                        pipe.done = True
                        with contextlib.suppress(OSError):
                            pipe.dst.shutdown(socket.SHUT_WR)
                        continue
                    try:
                        sent = pipe.dst.send(data)
                    except (BlockingIOError, InterruptedError):
                        pipe.blocked = True
                        break
                    except OSError:
                        self._drop(link)
                        break
                    pipe.buffered -= sent
                    if sent < len(data):
                        pipe.queue[0] = (due, data[sent:])
                        pipe.blocked = True
                        break
                    pipe.queue.popleft()
            if link not in self._links:
                continue
            if link.up.done and link.down.done:
                self._drop(link)
            else:
                self._update_interest(link)

    def _update_interest(self, link: _Link) -> None:
        for sock, outgoing, incoming in (
            (link.client, link.up, link.down),
            (link.upstream, link.down, link.up),
        ):
            mask = 0
            if outgoing.reading and outgoing.buffered < self._max_buffered:
                mask |= selectors.EVENT_READ
            if incoming.blocked:
                mask |= selectors.EVENT_WRITE
            try:
                if mask:
                    self._selector.modify(sock, mask, (link, sock))
                else:
                    self._selector.unregister(sock)
            except KeyError:
                if mask:
                    self._selector.register(sock, mask, (link, sock))
            except (OSError, ValueError):
                pass

    def _drop(self, link: _Link) -> None:
        self._links.discard(link)
        for sock in (link.client, link.upstream):
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(sock)
            sock.close()


# -- the proxy process ----------------------------------------------------------------


class ProxyProcess(ChildProcess):
    """The latency proxy in a child process, in front of ``127.0.0.1:upstream_port``."""

    what = "latency proxy"

    def __init__(self, upstream_port: int, rtt: float) -> None:
        super().__init__(
            "keepwarm.bench._proxy",
            ["--upstream", f"127.0.0.1:{upstream_port}", "--rtt", repr(rtt)],
        )

    def __enter__(self) -> ProxyProcess:
        super().__enter__()
        return self

    def connections_accepted(self) -> int:
        return int(json.loads(self.command("stats"))["connections_accepted"])


def _serve_commands(proxy: LatencyProxy, stdin: Iterable[str], out: Callable[[str], None]) -> None:
    for line in stdin:
        command = line.strip()
        if command == "stats":
            out(json.dumps({"connections_accepted": proxy.connections_accepted}))
        elif command == "quit":
            return
        elif command:
            out(json.dumps({"error": f"unknown command {command[:50]!r}"}))


def _loopback_address(text: str) -> tuple[str, int]:
    host, _, port_text = text.rpartition(":")
    try:
        port = int(port_text)
        if not ipaddress.ip_address(host.strip("[]")).is_loopback or not 0 < port < 65536:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a loopback HOST:PORT, got {text!r}") from None
    return host.strip("[]"), port


def main(argv: list[str] | None = None) -> int:
    """Proxy until ``quit`` or end of stdin; prints the port first (see module doc)."""
    parser = argparse.ArgumentParser(
        prog="python -m keepwarm.bench._proxy",
        description="keepwarm's latency proxy: prints its port, then reads commands "
        "(stats, quit) from stdin.",
    )
    parser.add_argument("--upstream", type=_loopback_address, required=True)
    parser.add_argument("--rtt", type=float, required=True, help="round-trip time, seconds")
    parser.add_argument("--lifetime", type=float, default=DEFAULT_LIFETIME)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="proxy: %(levelname)s %(message)s")

    def out(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    with LatencyProxy(args.upstream, args.rtt, lifetime=args.lifetime) as proxy:
        out(str(proxy.port))
        try:
            _serve_commands(proxy, sys.stdin, out)
        except (KeyboardInterrupt, BrokenPipeError):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
