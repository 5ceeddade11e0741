"""How each scenario is measured: interleaved rounds, server-side counts, TIME_WAIT.

Sequential scenarios: one client object per scenario sends ``requests`` GETs one after
the other per round; the rounds interleave the scenarios (A B C, then B C A, ...) so
drift in machine load hits all alike. Concurrent scenarios: one session shared by N
threads, either *steady* (each thread loops) or *bursty* (all threads released together
by a barrier for every request), against a server that waits ``--server-latency``
before answering, so requests overlap as they do against a real backend.

Around every batch the server's counters are read (connections, requests, TLS
handshakes: counted by the server, not inferred by the client), TIME_WAIT sockets on the
port the client talks to are listed with ``ss``, and in the concurrent runs urllib3's
"Connection pool is full, discarding connection" warnings are counted.
"""

from __future__ import annotations

import logging
import math
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from keepwarm.bench._child import BenchError
from keepwarm.bench._peers import Client, Deadline, Target
from keepwarm.bench._servers import BenchServer, ServerCounts

__all__ = [
    "BASELINE",
    "Measured",
    "Progress",
    "percentile",
    "run_concurrent",
    "run_sequential",
    "time_wait_sockets",
]

#: Ratios are against this scenario of the same run.
BASELINE = "requests"

_BARRIER_SECONDS = 30.0
_JOIN_SECONDS = 60.0
_SS_SECONDS = 5.0

Progress = Callable[[str, bool], None]
"""``progress(text, step)``: *text* describes what runs now; *step* marks a batch done."""


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: a latency some request really had, never interpolated."""
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


# -- TIME_WAIT ------------------------------------------------------------------------


_CLOSING_STATES = ("fin-wait-1", "fin-wait-2", "closing", "last-ack")
_SETTLE_SECONDS = 2.0


def time_wait_sockets(
    port: int, states: Sequence[str] = ("time-wait",)
) -> set[tuple[str, str]] | None:
    """``(local, peer)`` of every TCP socket in TIME_WAIT (or *states*) with *port* at
    either end; None when ``ss`` is missing or fails."""
    ss = shutil.which("ss")
    if ss is None:
        return None
    command = [ss, "-Htan"]
    for state in states:
        command += ["state", state]
    command.append(f"( sport = :{port} or dport = :{port} )")
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=_SS_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    found = set()
    for line in done.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 4:
            found.add((fields[-2], fields[-1]))
    return found


class _TimeWait:
    """Counts TIME_WAIT sockets that appear on a port while a scenario runs."""

    def __init__(self, port: int | None) -> None:
        self.port = port
        self._before: set[tuple[str, str]] | None = None

    def _settle(self) -> None:
        # Let closes in flight finish first: through the latency proxy the last FIN
        # arrives a round trip after close(), and only then is the socket in TIME_WAIT.
        assert self.port is not None
        settle = time.monotonic() + _SETTLE_SECONDS
        while time_wait_sockets(self.port, _CLOSING_STATES) and time.monotonic() < settle:
            time.sleep(0.005)

    def start(self) -> None:
        self._before = None
        if self.port:
            self._settle()
            self._before = time_wait_sockets(self.port)

    def stop(self) -> int | None:
        if self._before is None or self.port is None:
            return None
        self._settle()
        after = time_wait_sockets(self.port)
        return None if after is None else len(after - self._before)


# -- pool-full warnings ---------------------------------------------------------------


class _PoolFullCounter(logging.Handler):
    """Counts urllib3's "Connection pool is full, discarding connection" warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self._logger = logging.getLogger("urllib3.connectionpool")
        self._saved_level = logging.NOTSET

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("Connection pool is full"):
            self.count += 1  # emit() runs under the handler's lock

    def __enter__(self) -> _PoolFullCounter:
        self._saved_level = self._logger.level
        if self._logger.getEffectiveLevel() > logging.WARNING:
            self._logger.setLevel(logging.WARNING)
        self._logger.addHandler(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._saved_level)


# -- results --------------------------------------------------------------------------


@dataclass
class Measured:
    """Everything measured of one scenario over the completed rounds."""

    key: str
    label: str
    round_rps: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    requests: int = 0
    connections: int | None = 0
    tls_handshakes: int | None = 0
    time_wait: int | None = 0
    discards: int | None = None
    #: Idle connections the client closed itself (keepwarm's keepalive_expiry); None:
    #: the client does not tell.
    idle_expired: int | None = None

    def add(
        self,
        latencies: list[float],
        elapsed: float,
        counts: tuple[ServerCounts, ServerCounts] | None,
        time_wait: int | None,
        discards: int | None = None,
    ) -> None:
        n = len(latencies)
        self.round_rps.append(n / elapsed if elapsed > 0 else float("inf"))
        self.latencies.extend(latencies)
        self.requests += n
        if counts is None:
            self.connections = self.tls_handshakes = None
        else:
            before, after = counts
            if self.connections is not None:
                self.connections += after.connections - before.connections
            if self.tls_handshakes is not None:
                self.tls_handshakes += after.tls_handshakes - before.tls_handshakes
        self.add_time_wait(time_wait)
        if discards is not None:
            self.discards = (self.discards or 0) + discards

    def add_time_wait(self, time_wait: int | None) -> None:
        if time_wait is None or self.time_wait is None:
            self.time_wait = None
        else:
            self.time_wait += time_wait

    def summary(self, baseline: Measured | None) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        result: dict[str, Any] = {
            "scenario": self.label,
            "requests": self.requests,
            "rounds": len(self.round_rps),
            "connections": self.connections,
            "tls_handshakes": self.tls_handshakes,
            "time_wait": self.time_wait,
            "idle_expired": self.idle_expired,
            "requests_per_second": statistics.median(self.round_rps),
            "rounds_requests_per_second": self.round_rps,
            "p50_ms": percentile(ordered, 50) * 1000,
            "p99_ms": percentile(ordered, 99) * 1000,
        }
        if self.discards is not None:
            result["pool_full_discards"] = self.discards
        if baseline is not None:
            result["vs_baseline"] = paired_ratio(self, baseline)
        return result


def paired_ratio(a: Measured, b: Measured) -> float:
    """Median over rounds of a's requests/s over b's in the same round."""
    pairs = list(zip(a.round_rps, b.round_rps, strict=False))
    return statistics.median(x / y for x, y in pairs) if pairs else float("nan")


class _Batch:
    """Reads the server's counters and TIME_WAIT around one batch of requests."""

    def __init__(self, server: BenchServer | None, time_wait: _TimeWait) -> None:
        self._server = server
        self._time_wait = time_wait
        self._before: ServerCounts | None = None

    def __enter__(self) -> _Batch:
        self._before = self._server.counts() if self._server is not None else None
        self._time_wait.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def finish(
        self, expected: int, label: str
    ) -> tuple[tuple[ServerCounts, ServerCounts] | None, int | None]:
        time_wait = self._time_wait.stop()
        if self._server is None or self._before is None:
            return None, time_wait
        after = self._server.counts(expect_requests=self._before.requests + expected)
        seen = after.requests - self._before.requests
        if seen != expected:
            raise BenchError(f"the server saw {seen} requests of {label!r}, expected {expected}")
        return (self._before, after), time_wait


def _rotated(keys: Sequence[str], index: int) -> list[str]:
    shift = index % len(keys) if keys else 0
    return [*keys[shift:], *keys[:shift]]


def _close_all(clients: dict[str, Client], measured: dict[str, Measured], tw: _TimeWait) -> None:
    """Close every client, counting the TIME_WAIT sockets each close leaves (and, just
    before, reading the idle connections it closed itself)."""
    for key, client in clients.items():
        if key in measured:
            measured[key].idle_expired = client.idle_expired()
        tw.start()
        try:
            client.close()
        finally:
            if key in measured:
                measured[key].add_time_wait(tw.stop())


def _warm_up(target: Target, client_classes: Sequence[type[Client]], deadline: float) -> None:
    """One untimed, uncounted request per client library with a throwaway client: pays
    imports and one-off set-up (lazy imports, the bundle file into the page cache) before
    anything is measured. The measured clients still open their own connection."""
    for cls in client_classes:
        if time.monotonic() > deadline:
            raise Deadline
        warm = cls(target)
        try:
            warm.get()
        finally:
            warm.close()


# -- sequential -----------------------------------------------------------------------


def run_sequential(
    target: Target,
    client_classes: Sequence[type[Client]],
    *,
    server: BenchServer | None,
    client_port: int | None,
    requests: int,
    rounds: int,
    deadline: float,
    progress: Progress,
    label: str,
) -> tuple[dict[str, Measured], int]:
    """Interleaved sequential rounds; returns the measurements and the rounds completed."""
    clients: dict[str, Client] = {}
    measured = {cls.key: Measured(cls.key, cls.label) for cls in client_classes}
    tw = _TimeWait(client_port)
    completed = 0
    try:
        _warm_up(target, client_classes, deadline)
        for cls in client_classes:
            clients[cls.key] = cls(target)
        keys = list(clients)
        for round_index in range(rounds):
            progress(f"{label}: round {round_index + 1}/{rounds}", False)
            pending = []
            for key in _rotated(keys, round_index):
                with _Batch(server, tw) as batch:
                    started = time.perf_counter()
                    latencies = clients[key].batch(requests, deadline)
                    elapsed = time.perf_counter() - started
                    counts, time_wait = batch.finish(requests, measured[key].label)
                pending.append((key, latencies, elapsed, counts, time_wait))
                progress(f"{label}: round {round_index + 1}/{rounds}", True)
            for key, latencies, elapsed, counts, time_wait in pending:
                measured[key].add(latencies, elapsed, counts, time_wait)
            completed += 1
    except Deadline:
        pass
    finally:
        _close_all(clients, measured, tw)
    return measured, completed


# -- concurrent -----------------------------------------------------------------------


def _threaded_batch(
    client: Client, threads: int, per_thread: int, bursty: bool, deadline: float
) -> tuple[list[float], float]:
    """*threads* threads share *client*; each sends *per_thread* requests, one per burst
    when *bursty*. Returns every latency and the wall time from the common start."""
    start = threading.Barrier(threads + 1)
    burst = threading.Barrier(threads)
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []
    perf = time.perf_counter

    def work(index: int) -> None:
        mine = latencies[index]
        try:
            start.wait(_BARRIER_SECONDS)
            for _ in range(per_thread):
                if bursty:
                    burst.wait(_BARRIER_SECONDS)
                if time.monotonic() > deadline:
                    raise Deadline
                t0 = perf()
                client.get()
                mine.append(perf() - t0)
        except threading.BrokenBarrierError:
            pass  # another thread failed and broke the barrier; its error is reported
        except BaseException as exc:
            errors.append(exc)
            burst.abort()

    workers = [
        threading.Thread(target=work, args=(i,), name=f"keepwarm-bench-{i}", daemon=True)
        for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    try:
        start.wait(_BARRIER_SECONDS)
    except threading.BrokenBarrierError:
        pass
    started = perf()
    # The threads stop at the run's deadline; past it, allow a last request each.
    join_deadline = max(time.monotonic(), deadline) + _JOIN_SECONDS
    for worker in workers:
        worker.join(timeout=max(0.0, join_deadline - time.monotonic()))
    elapsed = perf() - started
    if any(worker.is_alive() for worker in workers):
        burst.abort()
        raise BenchError("concurrent requests did not finish in time")
    if errors:
        if any(isinstance(e, Deadline) for e in errors):
            raise Deadline
        first = errors[0]
        if isinstance(first, BenchError):
            raise first
        raise BenchError(f"a concurrent request failed: {type(first).__name__}: {first}")
    return [x for mine in latencies for x in mine], elapsed


PATTERNS = ("steady", "bursty")


def run_concurrent(
    target: Target,
    client_classes: Sequence[type[Client]],
    *,
    server: BenchServer | None,
    client_port: int | None,
    requests: int,
    rounds: int,
    threads: int,
    deadline: float,
    progress: Progress,
    label: str,
) -> tuple[dict[str, dict[str, Measured]], int]:
    """Interleaved concurrent rounds of each pattern and client; per pattern, one client
    object per library serves every round (its pool stays warm, as in a service)."""
    per_thread = max(1, math.ceil(requests / threads))
    expected = per_thread * threads
    clients: dict[str, Client] = {}
    measured: dict[str, Measured] = {}
    tw = _TimeWait(client_port)
    completed = 0
    try:
        _warm_up(target, client_classes, deadline)
        for pattern in PATTERNS:
            for cls in client_classes:
                clients[f"{pattern}/{cls.key}"] = cls(target)
                measured[f"{pattern}/{cls.key}"] = Measured(cls.key, cls.label)
        keys = list(clients)
        for round_index in range(rounds):
            progress(f"{label}: round {round_index + 1}/{rounds}", False)
            pending = []
            for key in _rotated(keys, round_index):
                with _Batch(server, tw) as batch, _PoolFullCounter() as discards:
                    latencies, elapsed = _threaded_batch(
                        clients[key], threads, per_thread, key.startswith("bursty/"), deadline
                    )
                    counts, time_wait = batch.finish(expected, f"{key} x {threads} threads")
                pending.append((key, latencies, elapsed, counts, time_wait, discards.count))
                progress(f"{label}: round {round_index + 1}/{rounds}", True)
            for key, latencies, elapsed, counts, time_wait, discarded in pending:
                measured[key].add(latencies, elapsed, counts, time_wait, discarded)
            completed += 1
    except Deadline:
        pass
    finally:
        _close_all(clients, measured, tw)
    by_pattern: dict[str, dict[str, Measured]] = {p: {} for p in PATTERNS}
    for key, value in measured.items():
        pattern, _, client_key = key.partition("/")
        by_pattern[pattern][client_key] = value
    return by_pattern, completed
