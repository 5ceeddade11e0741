"""What OpenTelemetry metrics cost per request: ``keepwarm.enable_metrics()`` on vs off.

One ``keepwarm.Session`` sends sequential keep-alive GETs to the benchmark server (a
separate process, so its CPU does not count). Rounds alternate metrics off, on, off, on...
(the same session and connection: only the switch changes) and each on-round is compared
with the off-round next to it, so drift in machine load cancels out. Metrics go to the
OpenTelemetry SDK's ``MeterProvider`` with an ``InMemoryMetricReader`` (recording costs
the same whatever the reader; exporting happens off the request path). Reported: the
median over round pairs of the client CPU time per request (``time.process_time``) and
of the wall time per request, and the Python function calls per request (cProfile,
1,000 requests) with metrics off and on.

Off versus before metrics existed is measured with ``benchmarks/request_path.py``
(docs/PERFORMANCE.md, "Issue 17 part 3").

    .venv/bin/python benchmarks/metrics_overhead.py [--rounds 30] [--requests 300]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import sys
import time

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import keepwarm
from keepwarm.bench._runner import ServerProcess, _tls_material

ROUNDS = 30
REQUESTS_PER_ROUND = 300
PROFILED_REQUESTS = 1000


def _round(session: keepwarm.Session, url: str, verify: str | bool, n: int) -> tuple[float, float]:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        session.get(url, verify=verify).raise_for_status()
    return (time.process_time() - cpu0) / n, (time.perf_counter() - wall0) / n


def _calls_per_request(session: keepwarm.Session, url: str, verify: str | bool) -> float:
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(PROFILED_REQUESTS):
        session.get(url, verify=verify)
    profile.disable()
    calls: int = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
    return calls / PROFILED_REQUESTS


def measure(scheme: str, rounds: int, n: int, provider: MeterProvider) -> dict[str, float]:
    with (
        _tls_material([scheme]) as (bundle, cert_chain, _count),
        ServerProcess(cert_chain=cert_chain if scheme == "https" else None) as server,
    ):
        url = server.url + "/"
        verify: str | bool = bundle if scheme == "https" else True
        session = keepwarm.Session()
        try:
            for on in (True, False):  # warm up: connection, TLS context, code paths
                if on:
                    keepwarm.enable_metrics(provider)
                else:
                    keepwarm.disable_metrics()
                _round(session, url, verify, 50)
            calls_off = _calls_per_request(session, url, verify)
            keepwarm.enable_metrics(provider)
            calls_on = _calls_per_request(session, url, verify)
            keepwarm.disable_metrics()
            cpu_ratios, wall_ratios, cpu_on, cpu_off = [], [], [], []
            for i in range(rounds):
                results = {}
                for on in (True, False) if i % 2 == 0 else (False, True):
                    if on:
                        keepwarm.enable_metrics(provider)
                    else:
                        keepwarm.disable_metrics()
                    results[on] = _round(session, url, verify, n)
                keepwarm.disable_metrics()
                cpu_ratios.append(results[True][0] / results[False][0])
                wall_ratios.append(results[True][1] / results[False][1])
                cpu_on.append(results[True][0])
                cpu_off.append(results[False][0])
            assert session.stats().connections_opened == 1, session.stats()
        finally:
            keepwarm.disable_metrics()
            session.close()
    return {
        "cpu_us_per_request_on": statistics.median(cpu_on) * 1e6,
        "cpu_us_per_request_off": statistics.median(cpu_off) * 1e6,
        "cpu_overhead": statistics.median(cpu_ratios) - 1,
        "wall_overhead": statistics.median(wall_ratios) - 1,
        "calls_per_request_off": calls_off,
        "calls_per_request_on": calls_on,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--requests", type=int, default=REQUESTS_PER_ROUND)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        results = {s: measure(s, args.rounds, args.requests, provider) for s in ("http", "https")}
    finally:
        provider.shutdown()
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
    else:
        for scheme, r in results.items():
            print(
                f"{scheme:5}  client CPU/request: on {r['cpu_us_per_request_on']:.1f} us, "
                f"off {r['cpu_us_per_request_off']:.1f} us, overhead "
                f"{r['cpu_overhead']:+.1%} (wall {r['wall_overhead']:+.1%}); calls/request "
                f"off {r['calls_per_request_off']:.0f}, on {r['calls_per_request_on']:.0f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
