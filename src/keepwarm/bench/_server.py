"""The benchmark's server process: :class:`~keepwarm.bench._engine.LocalServer` serving
:func:`~keepwarm.bench._routes.default_handler`, driven over stdin::

    python -m keepwarm.bench._server [--tls --cert CHAIN.pem [--key KEY.pem]]

It prints its port on the first line of stdout, then answers one command per stdin line:
``stats`` (one JSON line), ``tls_stats`` (one JSON line: TLS handshakes completed and
resumed, from OpenSSL's counters), ``reset`` and ``quit``. End of stdin also stops it, so the
server never outlives a parent that died.
"""

from __future__ import annotations

import argparse
import json
import logging
import ssl
import sys
from collections.abc import Callable, Iterable

from keepwarm.bench._engine import LocalServer
from keepwarm.bench._routes import default_handler

__all__ = ["main"]


def _serve_commands(
    server: LocalServer,
    stdin: Iterable[str],
    out: Callable[[str], None],
    context: ssl.SSLContext | None = None,
) -> None:
    for line in stdin:
        command = line.strip()
        if command == "stats":
            stats = {
                "connections_accepted": server.connections_accepted,
                "requests_handled": server.requests_handled,
            }
            out(json.dumps(stats))
        elif command == "tls_stats":
            # OpenSSL's own counters: handshakes completed in server mode, and how many
            # of them resumed a session (None when serving plain HTTP).
            tls = context.session_stats() if context is not None else None
            out(
                json.dumps(
                    {"handshakes": tls["accept_good"], "resumed": tls["hits"]}
                    if tls is not None
                    else {"handshakes": None, "resumed": None}
                )
            )
        elif command == "reset":
            server.reset()
            out("ok")
        elif command == "quit":
            return
        elif command:
            out(json.dumps({"error": f"unknown command {command[:50]!r}"}))


def main(argv: list[str] | None = None) -> int:
    """Serve :func:`default_handler` until ``quit`` or end of stdin (see module doc)."""
    parser = argparse.ArgumentParser(
        prog="python -m keepwarm.bench._server",
        description="keepwarm's benchmark server: prints its port, then reads commands "
        "(stats, tls_stats, reset, quit) from stdin.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--tls", action="store_true", help="serve HTTPS")
    parser.add_argument("--cert", help="PEM certificate chain (may include the key)")
    parser.add_argument("--key", help="PEM private key, if not in --cert")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="server: %(levelname)s %(message)s")

    context: ssl.SSLContext | None = None
    if args.tls:
        if not args.cert:
            parser.error("--tls needs --cert")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    def out(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    with LocalServer(
        default_handler, ssl_context=context, host=args.host, record_requests=False
    ) as srv:
        out(str(srv.port))
        try:
            _serve_commands(srv, sys.stdin, out, context)
        except (KeyboardInterrupt, BrokenPipeError):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
