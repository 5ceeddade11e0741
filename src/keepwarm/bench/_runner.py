"""``keepwarm bench``: what reusing one tuned Session saves over ``requests.get`` per call.

Method, chosen so that the numbers are honest:

* The server runs in a separate process (:mod:`keepwarm.bench._server`): a client and a
  Python server in one process would fight for the GIL and distort the timings.
* HTTPS uses a throwaway CA made with trustme, and the client verifies against a CA
  bundle the size of a real one (certifi's bundle plus that CA), passed as ``verify=`` per
  request to both scenarios. Loading a full bundle is a real cost of a fresh connection;
  a one-certificate bundle would hide it. A per-request ``verify`` also wins over
  ``REQUESTS_CA_BUNDLE`` in the environment, so both scenarios verify the same way.
* The scenarios run interleaved (cold, reused, cold, reused, ...) so drift in machine load
  hits both alike; requests/second is the median over rounds, latencies are percentiles
  over every request.
* Connections are counted by the server (the difference of its counter around each
  batch), not inferred by the client.
* Every request passes ``proxies={"no_proxy": ...}`` for the loopback addresses, so a
  proxy variable in the environment can never take the benchmark's traffic off this
  machine; both scenarios pay the same for it.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import math
import os
import pathlib
import platform
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, TextIO

__all__ = [
    "DEFAULT_REQUESTS",
    "DEFAULT_ROUNDS",
    "MAX_REQUESTS",
    "MAX_ROUNDS",
    "SCHEMES",
    "BenchConfig",
    "BenchError",
    "ServerProcess",
    "format_table",
    "run_bench",
    "write_json",
]

#: Requests per round per scenario. A cold HTTPS request with a full CA bundle costs
#: 16-50 ms on a 2-core machine (loading the bundle dominates), so 100 x 5 rounds keeps
#: a default run of both schemes to about 10 s at 16 ms and under 30 s at 50 ms.
DEFAULT_REQUESTS = 100
DEFAULT_ROUNDS = 5
MAX_REQUESTS = 100_000
MAX_ROUNDS = 1_000
SCHEMES = ("https", "http")

_NO_PROXY = {"no_proxy": "127.0.0.1,localhost,::1"}
_STARTUP_SECONDS = 20.0
_COMMAND_SECONDS = 10.0
_STOP_SECONDS = 5.0

SessionFactory = Callable[[], Any]


class BenchError(Exception):
    """A failure to report as one line, without a traceback."""


@dataclass(frozen=True)
class BenchConfig:
    """What to run: *requests* per round and scenario, *rounds* rounds, per scheme."""

    requests: int = DEFAULT_REQUESTS
    rounds: int = DEFAULT_ROUNDS
    schemes: tuple[str, ...] = SCHEMES

    def __post_init__(self) -> None:
        if not 1 <= self.requests <= MAX_REQUESTS:
            raise ValueError(f"requests must be from 1 to {MAX_REQUESTS}, got {self.requests}")
        if not 1 <= self.rounds <= MAX_ROUNDS:
            raise ValueError(f"rounds must be from 1 to {MAX_ROUNDS}, got {self.rounds}")
        if not self.schemes or any(s not in SCHEMES for s in self.schemes):
            raise ValueError(f"schemes must be some of {SCHEMES}, got {self.schemes}")


class ServerProcess:
    """The benchmark server in a child process, driven over its stdin and stdout.

    The child prints its port, then answers ``stats``/``reset``/``quit``. Every wait is
    bounded; :meth:`close` asks the child to quit, then terminates, then kills it, so it
    never outlives the benchmark (and it also exits by itself when its stdin closes).
    """

    def __init__(self, *, cert_chain: str | None = None) -> None:
        self._cert_chain = cert_chain
        self._proc: subprocess.Popen[str] | None = None
        self._stderr: IO[bytes] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        scheme = "https" if self._cert_chain else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerProcess:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        command = [sys.executable, "-m", "keepwarm.bench._server"]
        if self._cert_chain:
            command += ["--tls", "--cert", self._cert_chain]
        env = dict(os.environ)
        # Make the child import this very keepwarm, installed or not.
        package_root = str(pathlib.Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        # Lives as long as the child; closed in close().
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=env,
        )
        self._reader = threading.Thread(
            target=self._read_stdout, name="keepwarm-bench-server-stdout", daemon=True
        )
        self._reader.start()
        line = self._next_line(_STARTUP_SECONDS, "start")
        try:
            self.port = int(line)
        except ValueError:
            raise BenchError(
                f"benchmark server printed {line[:80]!r} instead of its port"
            ) from None

    def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            for line in self._proc.stdout:
                self._lines.put(line.rstrip("\n"))
        except (OSError, ValueError):  # the pipe was closed under us: nothing more to read
            pass
        finally:
            self._lines.put(None)

    def _next_line(self, timeout: float, what: str) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise BenchError(f"benchmark server did not {what} within {timeout:.0f} s") from None
        if line is None:
            raise BenchError(f"benchmark server exited during {what}: {self._stderr_tail()}")
        return line

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return "no output"
        self._stderr.seek(0)
        lines = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else "no output"

    def command(self, command: str) -> str:
        """Send one command line and return the child's one-line answer."""
        if self._proc is None or self._proc.stdin is None:
            raise BenchError("benchmark server is not running")
        try:
            self._proc.stdin.write(command + "\n")
            self._proc.stdin.flush()
        except OSError as exc:
            raise BenchError(f"benchmark server is gone ({exc}): {self._stderr_tail()}") from None
        return self._next_line(_COMMAND_SECONDS, f"answer {command!r}")

    def stats(self) -> tuple[int, int]:
        """``(connections_accepted, requests_handled)`` since the server started."""
        answer = json.loads(self.command("stats"))
        return int(answer["connections_accepted"]), int(answer["requests_handled"])

    def close(self) -> None:
        """Stop the child (quit, then terminate, then kill) and release every pipe."""
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                if proc.stdin is not None:
                    with contextlib.suppress(OSError):
                        proc.stdin.write("quit\n")
                        proc.stdin.flush()
                    with contextlib.suppress(OSError):
                        proc.stdin.close()
                try:
                    proc.wait(timeout=_STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    proc.terminate()
                    try:
                        proc.wait(timeout=_STOP_SECONDS)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(timeout=_STOP_SECONDS)
            finally:
                if proc.poll() is None:  # pragma: no cover - only if kill() did not work
                    proc.kill()
                if self._reader is not None:
                    self._reader.join(timeout=_STOP_SECONDS)
                if proc.stdout is not None:
                    proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


@dataclass
class _Scenario:
    key: str
    label: str
    call: Callable[[str], Any]
    round_rps: list[float]
    latencies: list[float]
    connections: int = 0
    requests: int = 0

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {
            "scenario": self.label,
            "requests": self.requests,
            "connections": self.connections,
            "requests_per_second": statistics.median(self.round_rps),
            "rounds_requests_per_second": self.round_rps,
            "p50_ms": _percentile(ordered, 50) * 1000,
            "p99_ms": _percentile(ordered, 99) * 1000,
        }


def _percentile(ordered: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: a latency some request really had, never interpolated."""
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@contextlib.contextmanager
def _tls_material(schemes: Sequence[str]) -> Iterator[tuple[str, str | None, int]]:
    """Yield ``(ca_bundle, server_cert_chain or None, certificates in the bundle)``.

    The bundle is certifi's (what requests verifies against by default) plus, for HTTPS, a
    throwaway CA that signed the server's certificate; everything lives in a temporary
    directory removed afterwards.
    """
    import certifi

    with tempfile.TemporaryDirectory(prefix="keepwarm-bench-") as tmp:
        bundle_text = pathlib.Path(certifi.where()).read_text(encoding="ascii")
        chain: str | None = None
        if "https" in schemes:
            try:
                import trustme
            except ImportError:
                raise BenchError(
                    "HTTPS needs trustme to make a throwaway CA: pip install 'keepwarm[bench]'"
                ) from None
            ca = trustme.CA()
            chain = os.path.join(tmp, "server.pem")
            ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(chain)
            bundle_text = bundle_text.rstrip("\n") + "\n" + ca.cert_pem.bytes().decode("ascii")
        bundle = os.path.join(tmp, "bundle.pem")
        pathlib.Path(bundle).write_text(bundle_text, encoding="ascii")
        yield bundle, chain, bundle_text.count("-----BEGIN CERTIFICATE-----")


def _check(response: Any) -> None:
    status = response.status_code
    content = response.content
    if status != 200 or content != b"ok":
        raise BenchError(f"benchmark server answered {status} {content[:60]!r}, expected 200 ok")


def _run_batch(scenario: _Scenario, server: ServerProcess, url: str, n: int) -> None:
    conns_before, reqs_before = server.stats()
    latencies = scenario.latencies
    call = scenario.call
    perf = time.perf_counter
    started = perf()
    for _ in range(n):
        t0 = perf()
        _check(call(url))
        latencies.append(perf() - t0)
    elapsed = perf() - started
    conns_after, reqs_after = server.stats()
    if reqs_after - reqs_before != n:
        raise BenchError(
            f"the server saw {reqs_after - reqs_before} requests of {scenario.label!r}, "
            f"expected {n}"
        )
    scenario.round_rps.append(n / elapsed if elapsed > 0 else float("inf"))
    scenario.connections += conns_after - conns_before
    scenario.requests += n


def _bench_scheme(
    scheme: str,
    config: BenchConfig,
    bundle: str,
    chain: str | None,
    session_factory: SessionFactory,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    import requests

    with ServerProcess(cert_chain=chain if scheme == "https" else None) as server:
        url = server.url + "/"

        def cold(target: str) -> Any:
            return requests.get(target, verify=bundle, timeout=10, proxies=dict(_NO_PROXY))

        # Untimed, uncounted: pays one-off costs both scenarios share (lazy imports, the
        # bundle file into the page cache) before anything is measured.
        _check(cold(url))

        session = session_factory()
        try:

            def reused(target: str) -> Any:
                return session.get(target, verify=bundle, proxies=dict(_NO_PROXY))

            scenarios = [
                _Scenario("cold", "requests.get per call", cold, [], []),
                _Scenario("keepwarm", "keepwarm.Session reused", reused, [], []),
            ]
            for round_index in range(config.rounds):
                progress(f"{scheme}: round {round_index + 1}/{config.rounds}")
                for scenario in scenarios:
                    _run_batch(scenario, server, url, config.requests)
        finally:
            session.close()

    result: dict[str, Any] = {s.key: s.summary() for s in scenarios}
    result["speedup"] = (
        result["keepwarm"]["requests_per_second"] / result["cold"]["requests_per_second"]
    )
    return result


def _default_session_factory() -> Any:
    import keepwarm

    return keepwarm.Session()


def run_bench(
    config: BenchConfig,
    *,
    progress: Callable[[str], None] | None = None,
    session_factory: SessionFactory | None = None,
) -> dict[str, Any]:
    """Run the benchmark and return its results as a JSON-serialisable dict.

    *session_factory* exists for the library's own tests; the benchmark proper always
    measures ``keepwarm.Session()``.
    """
    import keepwarm

    if keepwarm.installed():
        raise BenchError(
            "keepwarm.install() is active in this process, so requests.get would reuse "
            "connections too; run the benchmark without it"
        )
    report = progress if progress is not None else (lambda message: None)
    factory = session_factory if session_factory is not None else _default_session_factory
    with _tls_material(config.schemes) as (bundle, chain, certificates):
        results = {
            scheme: _bench_scheme(scheme, config, bundle, chain, factory, report)
            for scheme in config.schemes
        }
    return {
        "config": {
            "requests": config.requests,
            "rounds": config.rounds,
            "schemes": list(config.schemes),
            "ca_bundle_certificates": certificates,
        },
        "environment": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "keepwarm": keepwarm.__version__,
            "requests": importlib.metadata.version("requests"),
            "urllib3": importlib.metadata.version("urllib3"),
        },
        "results": results,
    }


def format_table(result: dict[str, Any]) -> str:
    """The human-readable report of :func:`run_bench`'s result."""
    config = result["config"]
    env = result["environment"]
    lines = [
        f"keepwarm bench: {config['requests']} requests x {config['rounds']} rounds per "
        "scenario, server in a separate process on 127.0.0.1",
        f"CA bundle: {config['ca_bundle_certificates']} certificates (certifi's + a "
        "throwaway CA), passed as verify= by both scenarios",
        f"Python {env['python']}, requests {env['requests']}, urllib3 {env['urllib3']}, "
        f"keepwarm {env['keepwarm']}, {env['cpus']} CPUs",
        "",
    ]
    header = ("scheme", "scenario", "req/s", "p50 ms", "p99 ms", "connections")
    rows: list[tuple[str, ...]] = [header]
    for scheme, scheme_result in result["results"].items():
        for key in ("cold", "keepwarm"):
            s = scheme_result[key]
            rows.append(
                (
                    scheme,
                    s["scenario"],
                    f"{s['requests_per_second']:.1f}",
                    f"{s['p50_ms']:.2f}",
                    f"{s['p99_ms']:.2f}",
                    str(s["connections"]),
                )
            )
        rows.append((scheme, "speed-up (keepwarm / cold)", f"{scheme_result['speedup']:.1f}x"))
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(len(header))]
    for row in rows:
        cells = [
            cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def write_json(result: dict[str, Any], out: TextIO) -> None:
    """Write *result* as one JSON document."""
    json.dump(result, out, indent=2, sort_keys=True)
    out.write("\n")
