"""The ``keepwarm`` command: ``keepwarm bench``, ``keepwarm probe``, ``keepwarm lint`` and
``keepwarm run``.

Each subcommand registers itself in :func:`build_parser` with an ``_add_<name>`` function
that sets ``handler``; :func:`main` turns every failure into one line on stderr and a
non-zero exit code, never a traceback, because this is a tool people run in terminals
and CI logs. The library itself is imported only inside the handlers, so ``--help`` and
option errors stay fast and work even if an import would fail.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from keepwarm.__about__ import __version__

if TYPE_CHECKING:
    from keepwarm.bench._runner import BenchConfig

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


def _bench_duration(maximum: float) -> Callable[[str], float]:
    """An argparse ``type`` for ``20ms`` / ``0.5s`` up to *maximum* seconds."""

    def parse(text: str) -> float:
        from keepwarm.bench._options import parse_duration

        try:
            return parse_duration(text, maximum=maximum)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _bench_seconds(text: str) -> float:
    from keepwarm.bench._options import MAX_SECONDS

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value > MAX_SECONDS:  # also refuses nan and inf: never unbounded
        raise argparse.ArgumentTypeError(
            f"must be more than 0 and at most {MAX_SECONDS:g} (the run is always bounded), "
            f"got {text!r}"
        )
    return value


def _bench_clients(text: str) -> tuple[str, ...]:
    from keepwarm.bench._peers import CLIENTS

    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [name for name in names if name not in CLIENTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown client {', '.join(unknown) or repr(text)}; choose from {', '.join(CLIENTS)}"
        )
    return names


def doc_path(name: str) -> str:
    """Where the page ``docs/NAME`` is on this machine: next to the installed package (the
    wheel carries the docs), else in the source tree keepwarm runs from."""
    package = pathlib.Path(__file__).resolve().parent
    for candidate in (package / "docs" / name, package.parent.parent / "docs" / name):
        if candidate.is_file():
            return str(candidate)
    return f"docs/{name} in keepwarm's source distribution"


def _add_bench(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from keepwarm.bench import _options as o
    from keepwarm.bench._peers import CLIENTS

    parser = subparsers.add_parser(
        "bench",
        usage="%(prog)s [options]",
        help="measure requests.get per call, requests.Session, keepwarm and other clients",
        description="Measure requests.get() per call, requests.Session, keepwarm.Session "
        "and, when installed, httpx, urllib3, aiohttp and a raw http.client loop, over HTTP "
        "and HTTPS, sequentially and with threads, against a local server in a separate "
        "process (embedded, or nginx). Nothing leaves 127.0.0.1 unless --url is given. "
        f"Exit codes: 0 done, 1 failure, 2 usage error. See {doc_path('bench.md')}.",
    )
    parser.add_argument(
        "--requests",
        type=_bounded_int(1, o.MAX_REQUESTS),
        metavar="N",
        help=f"requests per round and scenario (1..{o.MAX_REQUESTS}; default "
        f"{o.DEFAULT_REQUESTS}, or {o.SLOW_DEFAULT_REQUESTS} with --rtt or --url)",
    )
    parser.add_argument(
        "--rounds",
        type=_bounded_int(1, o.MAX_ROUNDS),
        metavar="R",
        help=f"interleaved rounds (1..{o.MAX_ROUNDS}; default {o.DEFAULT_ROUNDS}, or "
        f"{o.SLOW_DEFAULT_ROUNDS} with --rtt or --url)",
    )
    parser.add_argument(
        "--scheme",
        choices=("http", "https", "both"),
        default="both",
        help="which scheme to measure (default both)",
    )
    parser.add_argument(
        "--clients",
        type=_bench_clients,
        metavar="LIST",
        help=f"comma-separated sequential scenarios (default all): {','.join(CLIENTS)}",
    )
    parser.add_argument(
        "--mode",
        choices=("all", "sequential", "concurrent"),
        default="all",
        help="sequential scenarios, the threaded ones, or both (default all)",
    )
    parser.add_argument(
        "--threads",
        type=_bounded_int(1, o.MAX_THREADS),
        metavar="N",
        help=f"threads of the concurrent runs (1..{o.MAX_THREADS}, default {o.DEFAULT_THREADS})",
    )
    parser.add_argument(
        "--server",
        choices=("embedded", "nginx"),
        default="embedded",
        help="the local server: the embedded Python one, or nginx from PATH (default embedded)",
    )
    parser.add_argument(
        "--rtt",
        type=_bench_duration(o.MAX_RTT),
        metavar="DURATION",
        help="add this round-trip time with a latency proxy, e.g. 20ms or 0.5s (max 2s)",
    )
    parser.add_argument(
        "--server-latency",
        type=_bench_duration(o.MAX_LATENCY),
        metavar="DURATION",
        help="what the embedded server waits before answering in the concurrent runs "
        f"(default {o.format_duration(o.DEFAULT_SERVER_LATENCY)}, max 1s)",
    )
    parser.add_argument(
        "--url",
        metavar="URL",
        help="client side only: GET this http(s) URL of your own server instead "
        f"(sequential, at most {o.URL_MAX_TOTAL_REQUESTS} requests in all)",
    )
    parser.add_argument(
        "--cacert", metavar="PATH", help="with --url: also trust the CA certificates in PATH"
    )
    parser.add_argument(
        "--max-seconds",
        type=_bench_seconds,
        metavar="S",
        help=f"stop after S seconds, keeping the rounds completed (default "
        f"{o.DEFAULT_MAX_SECONDS:g}, or {o.URL_DEFAULT_MAX_SECONDS:g} with --url; max "
        f"{o.MAX_SECONDS:g})",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the result as JSON on stdout, no table"
    )
    parser.add_argument(
        "--plot",
        metavar="FILE",
        help="also draw the results to FILE: .html (self-contained), or .png/.svg "
        "(needs the plot extra: pip install 'keepwarm[plot]')",
    )
    parser.set_defaults(handler=_run_bench)


def _bench_config(args: argparse.Namespace) -> BenchConfig:
    """The BenchConfig of *args*; ValueError for a combination that cannot run."""
    from keepwarm.bench import _options as o
    from keepwarm.bench._runner import SCHEMES, BenchConfig

    slow = args.rtt is not None or args.url is not None
    if args.url is not None:
        for given, option in (
            (args.rtt is not None, "--rtt"),
            (args.server != "embedded", "--server"),
            (args.server_latency is not None, "--server-latency"),
            (args.threads is not None, "--threads"),
            (args.mode == "concurrent", "--mode concurrent"),
            (args.scheme != "both", "--scheme"),
        ):
            if given:
                raise ValueError(f"{option} does not apply to --url (client side only)")
        o.check_url(args.url)
    latency = args.server_latency
    if latency is None:
        latency = 0.0 if args.server == "nginx" else o.DEFAULT_SERVER_LATENCY
    elif latency > 0 and args.server == "nginx":
        raise ValueError("--server-latency needs the embedded server (nginx cannot wait)")
    if args.url is None:
        max_seconds = args.max_seconds or o.DEFAULT_MAX_SECONDS
    else:
        max_seconds = args.max_seconds or o.URL_DEFAULT_MAX_SECONDS
    kwargs: dict[str, Any] = {}
    if args.clients is not None:
        kwargs["clients"] = args.clients
    return BenchConfig(
        requests=args.requests or (o.SLOW_DEFAULT_REQUESTS if slow else o.DEFAULT_REQUESTS),
        rounds=args.rounds or (o.SLOW_DEFAULT_ROUNDS if slow else o.DEFAULT_ROUNDS),
        schemes=SCHEMES if args.scheme == "both" else (args.scheme,),
        mode="sequential" if args.url is not None else args.mode,
        threads=args.threads or o.DEFAULT_THREADS,
        server=args.server,
        rtt=args.rtt,
        server_latency=latency,
        url=args.url,
        cacert=args.cacert,
        max_seconds=max_seconds,
        **kwargs,
    )


def _run_bench(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    import shutil

    from keepwarm.bench._plot import check_plot_path, write_plot
    from keepwarm.bench._report import (
        format_table,
        make_rich_progress,
        print_rich,
        rich_available,
        write_json,
    )
    from keepwarm.bench._runner import BenchError, plan_steps, run_bench, url_request_budget
    from keepwarm.bench._servers import NGINX_MISSING

    try:
        config = _bench_config(args)
        if args.plot is not None:
            check_plot_path(args.plot)
    except ValueError as exc:
        stderr.write(f"keepwarm bench: error: {exc}\n")
        return 2
    except BenchError as exc:
        raise CommandError(str(exc)) from None
    if config.server == "nginx" and shutil.which("nginx") is None:
        raise CommandError(NGINX_MISSING)
    if config.url is not None:
        budget = url_request_budget(config.requests, config.rounds, len(config.clients))
        stderr.write(
            f"keepwarm bench: warning: this sends up to {budget} GET requests to {config.url} "
            f"({config.requests} x {config.rounds} rounds x {len(config.clients)} clients, "
            f"plus one warm-up each), for at most {config.max_seconds:g} s\n"
        )
        stderr.flush()

    live = not args.json and stdout.isatty() and rich_available()

    def plain_progress(text: str, step: bool) -> None:
        if not args.json and not step:
            stderr.write(f"keepwarm bench: {text}\n")
            stderr.flush()

    try:
        if live:
            with make_rich_progress(stdout, plan_steps(config)) as bar:
                result = run_bench(config, progress=bar)
        else:
            result = run_bench(config, progress=plain_progress)
        if args.plot is not None:
            write_plot(result, args.plot)
    except BenchError as exc:
        raise CommandError(str(exc)) from None
    except Exception as exc:  # a client's own error (TLS, connection...): still one line
        text = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise CommandError(text[:500]) from None
    if args.json:
        write_json(result, stdout)
    elif live:
        print_rich(result, stdout)
    else:
        # A terminal without rich: fit its width too; a pipe or a file: lines as they are.
        width = shutil.get_terminal_size().columns if stdout.isatty() else None
        stdout.write(format_table(result, width))
    if args.plot is not None and not args.json:
        stderr.write(f"keepwarm bench: wrote {args.plot}\n")
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
        "--http2",
        action="store_true",
        help="offer HTTP/2 as keepwarm.Session(http2=True) does (needs keepwarm[http2])",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the result as JSON on stdout, no table"
    )
    parser.set_defaults(handler=_run_probe)


def _run_probe(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from keepwarm._probe import run_command

    return run_command(args, stdout, stderr)


# -- keepwarm lint --------------------------------------------------------------------


def _add_lint(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "lint",
        usage="%(prog)s [options] PATH...",
        help="find requests anti-patterns in Python source: loops, per-call sessions, no timeout",
        description="Read Python files and directories (never importing or running them) "
        "and report requests.get() in loops, a Session made per call, requests without a "
        "timeout and verify=False, as path:line:col: CODE message. Directories skip what "
        ".gitignore and [tool.keepwarm.lint] exclude in pyproject.toml. "
        "Exit codes: 0 nothing found, 1 findings, 2 usage error. "
        f"Rules: {doc_path('lint/README.md')}.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files and directories")
    parser.add_argument(
        "--select",
        metavar="CODES",
        help="comma-separated codes or prefixes to run instead of the default set (KW1, ALL)",
    )
    parser.add_argument("--ignore", metavar="CODES", help="comma-separated codes to skip")
    parser.add_argument(
        "--format",
        choices=("text", "json", "sarif"),
        default="text",
        help="text lines, a JSON array, or SARIF 2.1.0 (default text)",
    )
    parser.add_argument(
        "--jobs",
        type=_bounded_int(1, 64),
        metavar="N",
        help="worker processes for large trees (1..64; default one per CPU)",
    )
    parser.add_argument(
        "--force-exclude",
        action="store_true",
        help="skip excluded files even when named on the command line (for pre-commit)",
    )
    parser.add_argument(
        "--fix",
        action="store_true",
        help="apply the safe fixes (timeout= for KW103) and report what remains",
    )
    parser.add_argument(
        "--diff",
        action="store_true",
        help="print the fixes as a unified diff instead of applying them (exit 1 if there is one)",
    )
    parser.add_argument(
        "--fix-timeout",
        type=_fix_timeout,
        metavar="SECONDS",
        help="the timeout --fix writes (default: fix-timeout in [tool.keepwarm.lint], or 10)",
    )
    parser.set_defaults(handler=_run_lint)


def _fix_timeout(text: str) -> int | float:
    from keepwarm.lint._config import ConfigError, fix_timeout

    try:
        return fix_timeout(text, "--fix-timeout", text=True)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--fix-timeout: ")) from None


def _run_lint(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from keepwarm.lint._command import run_command

    return run_command(args, stdout, stderr)


# -- keepwarm run ---------------------------------------------------------------------


def _report_path(text: str) -> pathlib.Path:
    path = pathlib.Path(text)
    parent = path.parent if str(path.parent) else pathlib.Path(".")
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text!r}: directory {str(parent)!r} does not exist (create it, or name a file "
            "in an existing directory)"
        )
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a directory: name a file to write")
    return path


def _add_run(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        usage="%(prog)s [options] [--] COMMAND...",
        help="run a Python program with keepwarm installed, then report connection reuse",
        description="Run COMMAND (python app.py, python -m module, a console script, "
        "gunicorn ...) with keepwarm.install(sessions=True) in every Python process under "
        "it, from interpreter start, through PYTHONPATH (no change to the program): "
        "requests.get() and every requests.Session() ride keepwarm's shared pools, each "
        "session keeping its own cookies, auth and headers. At exit, a report of every "
        "process's requests, connections opened and reused, TLS handshakes saved, the top "
        "origins and advice goes to stderr (or, as JSON, to --report FILE); stdin and "
        "stdout are the program's. Exit code: the command's (128+N if signal N ended it; "
        f"127 command not found; 2 usage error). See {doc_path('run.md')}.",
    )
    parser.add_argument(
        "--report",
        type=_report_path,
        metavar="FILE",
        help="write the report as JSON to FILE instead of printing it to stderr",
    )
    parser.add_argument(
        "--requests-defaults",
        action="store_true",
        help="keep requests' own defaults for installed calls: no default timeout, no "
        "retries (keepwarm's default is a (3, 7) s timeout and safe retries)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="fail the program's `import requests` if keepwarm cannot be installed in a "
        "process (default: one note on stderr, and the program runs without it)",
    )
    parser.add_argument(
        "--sigterm",
        action="store_true",
        help="let a process ended by SIGTERM (a server's master stopping its workers) "
        "write its counters first, then end as SIGTERM ends it; without it, such a "
        "process is reported as not reporting",
    )
    parser.add_argument(
        "--otel-metrics",
        action="store_true",
        help="also export keepwarm's counters as OpenTelemetry metrics (sets "
        "KEEPWARM_OTEL_METRICS=1; needs opentelemetry-api and a configured MeterProvider "
        "in the program)",
    )
    parser.add_argument(
        "program",
        nargs=argparse.REMAINDER,
        metavar="COMMAND",
        help="the command to run, with its arguments",
    )
    parser.set_defaults(handler=_run_run)


def _run_run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from keepwarm._run import RunError, RunOptions, run

    program = list(args.program)
    if program and program[0] == "--":
        program = program[1:]
    if not program:
        stderr.write(
            "usage: keepwarm run [options] [--] COMMAND...\n"
            "keepwarm run: error: no command given (for example: keepwarm run python app.py)\n"
        )
        return 2
    options = RunOptions(
        command=program,
        report=args.report,
        requests_defaults=args.requests_defaults,
        strict=args.strict,
        otel_metrics=args.otel_metrics,
        sigterm=args.sigterm,
    )
    try:
        return run(options, stderr)
    except RunError as exc:
        stderr.write(f"keepwarm run: error: {exc}\n")
        return exc.status


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
    _add_lint(subparsers)
    _add_run(subparsers)
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
