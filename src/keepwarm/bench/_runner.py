"""``keepwarm bench``: what reusing one tuned Session saves, against the alternatives.

Method, chosen so that the numbers are honest:

* The server runs in a separate process (:mod:`keepwarm.bench._servers`): a client and
  a Python server in one process would fight for the GIL and distort the timings. With
  ``--server nginx`` it is a real nginx. ``--rtt`` puts a latency proxy, also a separate
  process, between them (:mod:`keepwarm.bench._proxy`).
* HTTPS uses a throwaway CA made with trustme, and every client verifies against a CA
  bundle the size of a real one (certifi's bundle plus that CA). Loading a full bundle is
  a real cost of a fresh connection; a one-certificate bundle would hide it. requests and
  keepwarm get it as ``verify=`` per request, which also wins over ``REQUESTS_CA_BUNDLE``.
* Scenarios run interleaved, round by round (:mod:`keepwarm.bench._scenarios`), so drift
  in machine load hits all alike; requests/second is the median over rounds, ratios are
  the median of per-round ratios, latencies are percentiles over every request.
* Connections, requests and TLS handshakes are counted by the server, not inferred by
  the client; every client sets TCP_NODELAY, as the server does.
* Proxy and CA-bundle variables are removed from this process's environment for the run
  (and restored after), so no proxy can take the traffic elsewhere and
  ``REQUESTS_CA_BUNDLE`` cannot override the bundle, while every client is still called
  the plain way (``session.get(url)``): requests.Session keeps paying for its
  per-request environment look-ups, as it does in real programs.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import ssl
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from keepwarm.bench._child import BenchError
from keepwarm.bench._options import (
    DEFAULT_MAX_SECONDS,
    DEFAULT_REQUESTS,
    DEFAULT_ROUNDS,
    DEFAULT_SERVER_LATENCY,
    DEFAULT_THREADS,
    MAX_LATENCY,
    MAX_REQUESTS,
    MAX_ROUNDS,
    MAX_RTT,
    MAX_SECONDS,
    MAX_THREADS,
    URL_MAX_TOTAL_REQUESTS,
    check_url,
)
from keepwarm.bench._peers import (
    CLIENTS,
    CONCURRENT_CLIENTS,
    SKIPPED_ALWAYS,
    Client,
    Target,
    client_versions,
)
from keepwarm.bench._proxy import ProxyProcess
from keepwarm.bench._report import format_table, write_json
from keepwarm.bench._scenarios import (
    BASELINE,
    Measured,
    Progress,
    paired_ratio,
    run_concurrent,
    run_sequential,
)
from keepwarm.bench._servers import (
    BenchServer,
    ServerProcess,
    TlsFiles,
    nginx_version,
    open_server,
    tls_files,
    trustme_missing,
)

__all__ = [
    "DEFAULT_REQUESTS",
    "DEFAULT_ROUNDS",
    "MAX_REQUESTS",
    "MAX_ROUNDS",
    "MODES",
    "SCHEMES",
    "SERVERS",
    "BenchConfig",
    "BenchError",
    "ServerProcess",
    "format_table",
    "plan_steps",
    "run_bench",
    "url_request_budget",
    "write_json",
]

SCHEMES = ("https", "http")
MODES = ("all", "sequential", "concurrent")
SERVERS = ("embedded", "nginx")


@dataclass(frozen=True)
class BenchConfig:
    """What to run. ``url`` set: client side only, against that server (GET, sequential)."""

    requests: int = DEFAULT_REQUESTS
    rounds: int = DEFAULT_ROUNDS
    schemes: tuple[str, ...] = SCHEMES
    clients: tuple[str, ...] = tuple(CLIENTS)
    mode: str = "all"
    threads: int = DEFAULT_THREADS
    server: str = "embedded"
    rtt: float | None = None
    server_latency: float = DEFAULT_SERVER_LATENCY
    url: str | None = None
    cacert: str | None = None
    max_seconds: float = DEFAULT_MAX_SECONDS

    def __post_init__(self) -> None:
        if not 1 <= self.requests <= MAX_REQUESTS:
            raise ValueError(f"requests must be from 1 to {MAX_REQUESTS}, got {self.requests}")
        if not 1 <= self.rounds <= MAX_ROUNDS:
            raise ValueError(f"rounds must be from 1 to {MAX_ROUNDS}, got {self.rounds}")
        if not self.schemes or any(s not in SCHEMES for s in self.schemes):
            raise ValueError(f"schemes must be some of {SCHEMES}, got {self.schemes}")
        unknown = [c for c in self.clients if c not in CLIENTS]
        if unknown or not self.clients:
            raise ValueError(f"clients must be some of {', '.join(CLIENTS)}, got {unknown}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not 1 <= self.threads <= MAX_THREADS:
            raise ValueError(f"threads must be from 1 to {MAX_THREADS}, got {self.threads}")
        if self.server not in SERVERS:
            raise ValueError(f"server must be one of {SERVERS}, got {self.server!r}")
        if self.rtt is not None and not 0 <= self.rtt <= MAX_RTT:
            raise ValueError(f"rtt must be from 0 to {MAX_RTT} s, got {self.rtt}")
        if not 0 <= self.server_latency <= MAX_LATENCY:
            raise ValueError(f"server latency must be from 0 to {MAX_LATENCY} s")
        if not 0 < self.max_seconds <= MAX_SECONDS:
            raise ValueError(
                f"max seconds must be more than 0 and at most {MAX_SECONDS:g}, "
                f"got {self.max_seconds:g}"
            )
        if self.url is not None:
            check_url(self.url)
            if self.mode == "concurrent":
                raise ValueError("--url measures sequential requests only")
            budget = url_request_budget(self.requests, self.rounds, len(self.clients))
            if budget > URL_MAX_TOTAL_REQUESTS:
                raise ValueError(
                    f"--url would send {budget} requests ({self.requests} x {self.rounds} "
                    f"rounds x {len(self.clients)} clients, plus warm-ups); the cap is "
                    f"{URL_MAX_TOTAL_REQUESTS}: lower --requests, --rounds or --clients"
                )
        elif self.cacert is not None:
            raise ValueError("--cacert only applies to --url")

    @property
    def sequential(self) -> bool:
        return self.mode in ("all", "sequential")

    @property
    def concurrent(self) -> bool:
        return self.mode in ("all", "concurrent") and self.url is None


def url_request_budget(requests: int, rounds: int, clients: int) -> int:
    """Most requests a ``--url`` run sends: every round of every client, and a warm-up each."""
    return (requests * rounds + 1) * clients


#: Variables that would send the traffic elsewhere or change what requests verifies.
_ENVIRONMENT_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@contextlib.contextmanager
def _direct_environment() -> Iterator[None]:
    """Remove proxy and CA-bundle variables from ``os.environ``; put them back after."""
    removed = {
        name: value
        for name, value in os.environ.items()
        if name.upper().endswith("_PROXY") or name.upper() in _ENVIRONMENT_VARIABLES
    }
    for name in removed:
        del os.environ[name]
    try:
        yield
    finally:
        os.environ.update(removed)


@contextlib.contextmanager
def _tls_material(schemes: Sequence[str]) -> Iterator[tuple[str, str | None, int]]:
    """``(ca_bundle, server_cert_chain or None, certificates in the bundle)`` (kept for
    ``benchmarks/telemetry_overhead.py``; see :func:`keepwarm.bench._servers.tls_files`)."""
    with tls_files(schemes) as tls:
        yield tls.bundle, tls.chain, tls.certificates


def _runnable(config: BenchConfig) -> tuple[list[type[Client]], dict[str, str]]:
    """The sequential clients that can run here, and why the others are skipped."""
    skipped: dict[str, str] = dict(SKIPPED_ALWAYS)
    runnable: list[type[Client]] = []
    for key in config.clients:
        why = CLIENTS[key].unavailable()
        if why is None:
            runnable.append(CLIENTS[key])
        else:
            skipped[key] = why
    return runnable, skipped


def _schemes(config: BenchConfig) -> tuple[str, ...]:
    return _plan_schemes(config)[0]


def _plan_schemes(config: BenchConfig) -> tuple[tuple[str, ...], dict[str, str]]:
    """The schemes that will run, and why the others are skipped: without trustme (no
    ``[bench]`` extra) a run of both schemes measures HTTP only and says so; HTTPS alone
    still fails, with the fix (see :func:`keepwarm.bench._servers.tls_files`)."""
    if config.url is not None:
        return (urlsplit(config.url).scheme.lower(),), {}
    if "https" in config.schemes and len(config.schemes) > 1:
        why = trustme_missing()
        if why is not None:
            return tuple(s for s in config.schemes if s != "https"), {"https": why}
    return config.schemes, {}


def plan_steps(config: BenchConfig) -> int:
    """Batches of requests the run will measure (one progress-bar step each)."""
    steps = 0
    if config.sequential:
        steps += len(_runnable(config)[0]) * config.rounds
    if config.concurrent:
        steps += 2 * len(CONCURRENT_CLIENTS) * config.rounds
    return steps * len(_schemes(config))


class _Run:
    """One run: its deadline, its progress report, what was skipped or cut short."""

    def __init__(self, config: BenchConfig, progress: Progress) -> None:
        self.config = config
        self.progress = progress
        self.deadline = time.monotonic() + config.max_seconds
        self.notes: list[str] = []
        self.stopped = False

    def rounds_note(self, what: str, completed: int) -> None:
        if completed < self.config.rounds:
            self.stopped = True
            self.notes.append(
                f"{what}: stopped after {completed} of {self.config.rounds} rounds, "
                f"--max-seconds {self.config.max_seconds:g} reached"
            )


def _summaries(measured: dict[str, Measured]) -> dict[str, dict[str, Any]]:
    baseline = measured.get(BASELINE)
    return {
        key: m.summary(baseline if baseline is not None and baseline.round_rps else None)
        for key, m in measured.items()
        if m.round_rps
    }


def _bench_scheme(
    run: _Run,
    scheme: str,
    bundle_files: TlsFiles,
    sequential: list[type[Client]],
) -> dict[str, Any]:
    config = run.config
    result: dict[str, Any] = {}
    server: BenchServer | None = None
    proxy: ProxyProcess | None = None
    try:
        if config.url is not None:
            base, path = config.url, ""
            parts = urlsplit(config.url)
            client_port: int | None = parts.port or (443 if scheme == "https" else 80)
            expect: bytes | None = None
        else:
            server = open_server(config.server, scheme, bundle_files)
            client_port = server.port
            if config.rtt is not None:
                proxy = ProxyProcess(server.port, config.rtt)
                proxy.start()
                client_port = proxy.port
            base, path, expect = f"{scheme}://127.0.0.1:{client_port}", "/", b"ok"
        label = f"{scheme} sequential"
        if config.sequential and not run.stopped:
            target = Target(base + path, bundle_files.bundle, expect)
            measured, done = run_sequential(
                target,
                sequential,
                server=server,
                client_port=client_port,
                requests=config.requests,
                rounds=config.rounds,
                deadline=run.deadline,
                progress=run.progress,
                label=label,
            )
            run.rounds_note(label, done)
            if done:
                scenarios = _summaries(measured)
                block: dict[str, Any] = {
                    "rounds_completed": done,
                    "baseline": BASELINE if BASELINE in scenarios else None,
                    "scenarios": scenarios,
                }
                if "keepwarm" in measured and "cold" in measured:
                    block["keepwarm_vs_cold"] = paired_ratio(measured["keepwarm"], measured["cold"])
                result["sequential"] = block
        if config.concurrent and not run.stopped and server is not None:
            label = f"{scheme} {config.threads} threads"
            latency_path = server.latency_path(config.server_latency)
            target = Target(base + latency_path, bundle_files.bundle, expect)
            by_pattern, done = run_concurrent(
                target,
                list(CONCURRENT_CLIENTS.values()),
                server=server,
                client_port=client_port,
                requests=config.requests,
                rounds=config.rounds,
                threads=config.threads,
                deadline=run.deadline,
                progress=run.progress,
                label=label,
            )
            run.rounds_note(label, done)
            if done:
                per_thread = -(-config.requests // config.threads)
                result["concurrent"] = {
                    "rounds_completed": done,
                    "threads": config.threads,
                    "requests_per_thread": per_thread,
                    "server_latency_ms": config.server_latency * 1000,
                    "baseline": BASELINE,
                    **{pattern: _summaries(m) for pattern, m in by_pattern.items()},
                }
    finally:
        if proxy is not None:
            proxy.close()
        if server is not None:
            server.close()
    return result


def _environment(config: BenchConfig) -> dict[str, Any]:
    import keepwarm

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "openssl": ssl.OPENSSL_VERSION,
        "keepwarm": keepwarm.__version__,
        **client_versions(),
    }
    if config.server == "nginx" and config.url is None:
        binary = shutil.which("nginx")
        env["nginx"] = nginx_version(binary) if binary else None
    return env


def run_bench(
    config: BenchConfig,
    *,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the benchmark and return its results as a JSON-serialisable dict.

    *progress* is called as ``progress(text, step)``: *text* says what runs, *step* is
    True when a batch of requests finished (one progress-bar step).
    """
    import keepwarm

    if keepwarm.installed():
        raise BenchError(
            "keepwarm.install() is active in this process, so requests.get would reuse "
            "connections too; run the benchmark without it"
        )
    report: Progress = progress if progress is not None else (lambda text, step: None)
    sequential, skipped = _runnable(config)
    if config.sequential and not sequential:
        # Measuring nothing and exiting 0 would look like success.
        why = "; ".join(f"{key}: {skipped[key]}" for key in config.clients)
        raise BenchError(f"none of the clients asked for can run here ({why})")
    schemes, skipped_schemes = _plan_schemes(config)
    skipped.update(skipped_schemes)
    run = _Run(config, report)
    results: dict[str, Any] = {}
    with _direct_environment(), tls_files(schemes, extra_ca=config.cacert) as files:
        for scheme in schemes:
            if run.stopped:
                break
            results[scheme] = _bench_scheme(run, scheme, files, sequential)
        certificates = files.certificates
    if not any(results.values()):
        raise BenchError(
            f"--max-seconds {config.max_seconds:g} ran out before one round completed: "
            "raise it, or lower --requests"
        )
    return {
        "config": {
            "requests": config.requests,
            "rounds": config.rounds,
            "schemes": list(schemes),
            "clients": [c.key for c in sequential],
            "mode": config.mode,
            "threads": config.threads if config.concurrent else None,
            "server": None if config.url else config.server,
            "rtt_ms": None if config.rtt is None else config.rtt * 1000,
            "server_latency_ms": config.server_latency * 1000 if config.concurrent else None,
            "url": config.url,
            "cacert": config.cacert,
            "max_seconds": config.max_seconds,
            "ca_bundle_certificates": certificates,
        },
        "environment": _environment(config),
        "results": results,
        "skipped": skipped,
        "notes": run.notes,
    }
