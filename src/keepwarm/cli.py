"""The ``keepwarm`` command: ``keepwarm bench`` and ``keepwarm probe`` (``lint`` to come).

Each subcommand registers itself in :func:`build_parser` with an ``_add_<name>`` function
that sets ``handler``; :func:`main` turns every failure into one line on stderr and a
non-zero exit code, never a traceback, because this is a tool people run in terminals
and CI logs. The library itself is imported only inside the handlers, so ``--help`` and
option errors stay fast and work even if an import would fail.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from keepwarm.__about__ import __version__

__all__ = ["build_parser", "main"]

_Handler = Callable[[argparse.Namespace, TextIO, TextIO], int]


class CommandError(Exception):
    """A failure a subcommand reports as one line on stderr (exit code 1)."""


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type`` accepting integers from *low* to *high* with a clear message."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {value}")
        return value

    return parse


# -- keepwarm bench -------------------------------------------------------------------


def _add_bench(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from keepwarm.bench._runner import (
        DEFAULT_REQUESTS,
        DEFAULT_ROUNDS,
        MAX_REQUESTS,
        MAX_ROUNDS,
    )

    parser = subparsers.add_parser(
        "bench",
        help="measure requests.get per call against one reused keepwarm.Session",
        description="Measure requests.get() per call (a new connection and TLS handshake "
        "each time) against one reused keepwarm.Session, over HTTP and HTTPS, against a "
        "local server in a separate process. Nothing leaves 127.0.0.1.",
    )
    parser.add_argument(
        "--requests",
        type=_bounded_int(1, MAX_REQUESTS),
        default=DEFAULT_REQUESTS,
        metavar="N",
        help=f"requests per round and scenario (1..{MAX_REQUESTS}, default {DEFAULT_REQUESTS})",
    )
    parser.add_argument(
        "--rounds",
        type=_bounded_int(1, MAX_ROUNDS),
        default=DEFAULT_ROUNDS,
        metavar="R",
        help=f"interleaved rounds (1..{MAX_ROUNDS}, default {DEFAULT_ROUNDS})",
    )
    parser.add_argument(
        "--scheme",
        choices=("http", "https", "both"),
        default="both",
        help="which scheme to measure (default both)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the result as JSON on stdout, no table"
    )
    parser.set_defaults(handler=_run_bench)


def _run_bench(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from keepwarm.bench._runner import (
        SCHEMES,
        BenchConfig,
        BenchError,
        format_table,
        run_bench,
        write_json,
    )

    schemes = SCHEMES if args.scheme == "both" else (args.scheme,)
    config = BenchConfig(requests=args.requests, rounds=args.rounds, schemes=schemes)

    def progress(message: str) -> None:
        if not args.json:
            stderr.write(f"keepwarm bench: {message}\n")
            stderr.flush()

    try:
        result = run_bench(config, progress=progress)
    except BenchError as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        write_json(result, stdout)
    else:
        stdout.write(format_table(result))
    return 0


# -- keepwarm probe -------------------------------------------------------------------


def _add_probe(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from keepwarm._probe import DEFAULT_REQUESTS, DEFAULT_TIMEOUT, MAX_REQUESTS, parse_timeout

    parser = subparsers.add_parser(
        "probe",
        help="show a cold request against warm ones: phases, reuse, keep-alive, ALPN",
        description="Send N GET requests to URL through one keepwarm.Session (no retries) "
        "and show where the time of the cold request and of the warm ones went, whether "
        "the server kept the connection alive, HTTP/TLS versions, ALPN and advice. "
        "Exit codes: 0 done, 1 network error, 2 usage error.",
    )
    parser.add_argument("url", metavar="URL", help="an http:// or https:// URL")
    parser.add_argument(
        "-n",
        type=_bounded_int(1, MAX_REQUESTS),
        default=DEFAULT_REQUESTS,
        metavar="N",
        help=f"requests to send (1..{MAX_REQUESTS}, default {DEFAULT_REQUESTS})",
    )
    parser.add_argument(
        "--timeout",
        type=parse_timeout,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="timeout in seconds, or CONNECT,READ (default 3,7)",
    )
    trust = parser.add_mutually_exclusive_group()
    trust.add_argument("--cacert", metavar="PATH", help="trust the CA certificates in PATH")
    trust.add_argument("--insecure", action="store_true", help="do not verify the TLS certificate")
    parser.add_argument(
        "--json", action="store_true", help="print the result as JSON on stdout, no table"
    )
    parser.set_defaults(handler=_run_probe)


def _run_probe(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from keepwarm._probe import run_command

    return run_command(args, stdout, stderr)


# -- the command ----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``keepwarm`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="keepwarm",
        description="Tools for keepwarm, the tuned shared requests.Session.",
    )
    parser.add_argument("--version", action="version", version=f"keepwarm {__version__}")
    subparsers = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", required=True
    )
    _add_bench(subparsers)
    _add_probe(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``keepwarm`` with *argv* (default ``sys.argv[1:]``); returns the exit code.

    Option errors exit 2 with argparse's usage line; any other failure prints one line
    ``keepwarm <command>: error: ...`` and returns 1 (130 on Ctrl-C).
    """
    stdout, stderr = sys.stdout, sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exc:  # --help, --version or an option error, already printed
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    handler: _Handler = args.handler
    prefix = f"keepwarm {args.command}"
    try:
        return handler(args, stdout, stderr)
    except KeyboardInterrupt:
        stderr.write(f"{prefix}: interrupted\n")
        return 130
    except CommandError as exc:
        stderr.write(f"{prefix}: error: {exc}\n")
        return 1
    except Exception as exc:  # a bug or an environment problem: still one clear line
        stderr.write(f"{prefix}: error: {type(exc).__name__}: {exc}\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
