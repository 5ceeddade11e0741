"""hypercorn serving a small ASGI app over TLS, ALPN ``h2`` and ``http/1.1``: a real
HTTP/2 server from the package index, for the HTTP/2 tests and benchmark.

Routes: ``/get``, ``/bytes/N`` (:func:`servers.routes.deterministic_bytes`), ``/echo``
(the body, with ``x-body-length`` and ``x-body-sha256``), ``/delay/MS`` (an asyncio sleep:
a hundred concurrent delays cost one delay, so it can stand for server latency in a
benchmark), ``/headers`` (JSON; HTTP/2 pseudo-headers are not part of ASGI's headers, so
``:method``, ``:path``, ``:authority`` and ``:scheme`` are rebuilt from the scope),
``/status/N``. Every request appends one JSON line ``{"http_version", "method", "path"}``
to the *seen* file before it is answered, so the version the server saw is known once the
response is.

As a script (what :class:`HypercornServer` runs, and what a benchmark may run)::

    python tests/servers/asgi.py --certfile CERT --keyfile KEY [--seen FILE]

binds 127.0.0.1 port 0 itself, prints the port on one line, then serves (hypercorn takes
the bound socket by ``fd://``) until killed. ``--max-concurrent-streams N`` sets
hypercorn's SETTINGS_MAX_CONCURRENT_STREAMS (its default 100).

hypercorn's ``keep_alive_max_requests`` (``--keep-alive-max-requests``, off here) does not
make a usable GOAWAY over HTTP/2 (hypercorn 0.18.0, checked with a raw h2 client at 3):
sequential requests get answers 1-3, then the 4th gets GOAWAY(NO_ERROR,
last_stream_id=that stream) and is never answered nor closed; six requests sent at once
get several GOAWAYs, the last PROTOCOL_ERROR, and no answer at all. Use nginx or
:class:`servers.h2.H2Server` for GOAWAY tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import pathlib
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TextIO

__all__ = ["NO_REQUEST_LIMIT", "HypercornServer", "app", "main", "throwaway_tls"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: hypercorn's own default keep_alive_max_requests is 1000, and over HTTP/2 its GOAWAY
#: is broken (module doc): a long benchmark would hit it, so the default here is none.
NO_REQUEST_LIMIT = 10**9
_START_SECONDS = 15.0
_STOP_SECONDS = 5.0
_SEEN: list[str] = []  # the seen file's path, set by main()
_BLOCK = bytes(range(256)) * 256


def _bytes(n: int) -> bytes:
    # Same as servers.routes.deterministic_bytes; this file also runs as a bare script.
    return (_BLOCK * (n // len(_BLOCK) + 1))[:n]


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    head = [(b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI application (see module doc)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path: str = scope["path"]
    method: str = scope["method"]
    version: str = scope.get("http_version", "")
    if _SEEN:
        line = json.dumps({"http_version": version, "method": method, "path": path})
        with open(_SEEN[0], "a", encoding="utf-8") as seen_file:
            seen_file.write(line + "\n")
    body = await _read_body(receive)
    head, _, tail = path.lstrip("/").partition("/")
    as_json = [(b"content-type", b"application/json")]
    if path == "/get":
        payload = {"method": method, "path": path, "http": version}
        await _respond(send, 200, json.dumps(payload).encode(), as_json)
    elif head == "bytes" and tail.isdigit():
        await _respond(send, 200, _bytes(int(tail)))
    elif path == "/echo":
        extra = [
            (b"x-body-length", str(len(body)).encode()),
            (b"x-body-sha256", hashlib.sha256(body).hexdigest().encode()),
        ]
        await _respond(send, 200, body, extra)
    elif head == "delay" and tail.isdigit():
        await asyncio.sleep(int(tail) / 1000)
        await _respond(send, 200, json.dumps({"delay_ms": int(tail)}).encode(), as_json)
    elif path == "/headers":
        seen: dict[str, str] = {}
        if version == "2":
            authority = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            seen[":method"] = method
            seen[":path"] = scope["raw_path"].decode("latin-1")
            seen[":scheme"] = scope["scheme"]
            seen[":authority"] = authority
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
            seen[name] = f"{seen[name]}, {value}" if name in seen else value
        await _respond(send, 200, json.dumps(seen).encode(), as_json)
    elif head == "status" and tail.isdigit():
        await _respond(send, int(tail), tail.encode())
    else:
        await _respond(send, 404, b"not found")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--certfile", required=True)
    parser.add_argument("--keyfile", required=True)
    parser.add_argument("--seen", help="append one JSON line per request to this file")
    parser.add_argument(
        "--keep-alive-max-requests",
        type=int,
        default=NO_REQUEST_LIMIT,
        help="requests per connection before hypercorn sends GOAWAY (see module doc)",
    )
    parser.add_argument("--max-concurrent-streams", type=int, default=100)
    args = parser.parse_args(argv)
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    if args.seen:
        _SEEN.append(args.seen)
    sock = socket.create_server(("127.0.0.1", 0), backlog=1024)
    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    config.certfile = args.certfile
    config.keyfile = args.keyfile
    config.alpn_protocols = ["h2", "http/1.1"]
    config.accesslog = None
    config.keep_alive_max_requests = args.keep_alive_max_requests
    config.h2_max_concurrent_streams = args.max_concurrent_streams
    print(sock.getsockname()[1], flush=True)
    asyncio.run(serve(app, config))  # type: ignore[arg-type]
    return 0


def throwaway_tls(workdir: str) -> tuple[str, str, str]:
    """``(certfile, keyfile, ca_bundle)`` in *workdir*: a trustme CA and a certificate for
    127.0.0.1 it signed (for a benchmark script; the tests use their session CA)."""
    import trustme

    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    certfile = os.path.join(workdir, "server-cert.pem")
    keyfile = os.path.join(workdir, "server-key.pem")
    bundle = os.path.join(workdir, "ca.pem")
    pathlib.Path(certfile).write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(keyfile)
    ca.cert_pem.write_to_path(bundle)
    return certfile, keyfile, bundle


class HypercornServer:
    """:func:`main` in a child process: ``start()`` waits (bounded) for its port,
    ``close()`` always kills it. *certfile*/*keyfile*: PEM files of a certificate for
    127.0.0.1 (the chain, and the key)."""

    def __init__(
        self,
        certfile: str,
        keyfile: str,
        *,
        workdir: str,
        max_concurrent_streams: int = 100,
        keep_alive_max_requests: int = NO_REQUEST_LIMIT,
    ) -> None:
        self.certfile = certfile
        self.keyfile = keyfile
        self.options = [
            f"--max-concurrent-streams={max_concurrent_streams}",
            f"--keep-alive-max-requests={keep_alive_max_requests}",
        ]
        self.seen_path = os.path.join(workdir, "seen.jsonl")
        self.stderr_path = os.path.join(workdir, "hypercorn.log")
        self.port = 0
        self._proc: subprocess.Popen[str] | None = None
        self._stderr: TextIO | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> HypercornServer:
        pathlib.Path(self.seen_path).write_text("")
        self._stderr = open(self.stderr_path, "w", encoding="utf-8")  # noqa: SIM115
        command = [sys.executable, __file__, "--certfile", self.certfile]
        command += ["--keyfile", self.keyfile, "--seen", self.seen_path, *self.options]
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        assert self._proc.stdout is not None
        try:
            ready, _, _ = select.select([self._proc.stdout], [], [], _START_SECONDS)
            line = self._proc.stdout.readline() if ready else ""
            if not line.strip().isdigit():
                self.close()
                raise RuntimeError(f"hypercorn did not start: {self.error_text()}")
            self.port = int(line)
        finally:
            if self._proc is not None and self._proc.stdout is not None:
                self._proc.stdout.close()
        return self

    def error_text(self) -> str:
        with contextlib.suppress(OSError):
            return pathlib.Path(self.stderr_path).read_text()[-2000:] or "no output"
        return "no output"

    def seen(self) -> list[dict[str, str]]:
        """Every request since the start (or :meth:`reset_seen`), in arrival order."""
        text = pathlib.Path(self.seen_path).read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def seen_versions(self) -> list[str]:
        """The HTTP version hypercorn saw per request: ``"2"`` or ``"1.1"``."""
        return [entry["http_version"] for entry in self.seen()]

    def reset_seen(self) -> None:
        pathlib.Path(self.seen_path).write_text("")

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                if proc.poll() is not None:
                    break
                with contextlib.suppress(OSError):
                    proc.send_signal(sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=_STOP_SECONDS)
            if proc.stdout is not None:
                proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> HypercornServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


if __name__ == "__main__":
    # Run as a script, this folder is sys.path[0], and its h2.py would shadow the h2
    # package hypercorn imports.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    sys.exit(main())
