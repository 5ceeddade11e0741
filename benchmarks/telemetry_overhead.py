"""What keepwarm's telemetry costs per request: telemetry on vs off, in one run.

Both sessions send sequential keep-alive GETs to the benchmark server (a separate process,
so its CPU does not count). Rounds alternate on, off, on, off... and each on-round is
compared with the off-round next to it, so drift in machine load cancels out. Reported:
the median over round pairs of the client CPU time per request (``time.process_time``,
what the instrumentation adds) and of the wall time per request.

Target (issue 3): at most 3 % of per-request time on loopback.

    .venv/bin/python benchmarks/telemetry_overhead.py [--rounds 30] [--requests 300]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import keepwarm
from keepwarm.bench._runner import ServerProcess, _tls_material

ROUNDS = 30
REQUESTS_PER_ROUND = 300
TARGET = 0.03


def _round(session: keepwarm.Session, url: str, verify: str | bool, n: int) -> tuple[float, float]:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        session.get(url, verify=verify).raise_for_status()
    return (time.process_time() - cpu0) / n, (time.perf_counter() - wall0) / n


def measure(scheme: str, rounds: int, n: int) -> dict[str, float]:
    with (
        _tls_material([scheme]) as (bundle, cert_chain, _count),
        ServerProcess(cert_chain=cert_chain if scheme == "https" else None) as server,
    ):
        url = server.url + "/"
        verify: str | bool = bundle if scheme == "https" else True
        on = keepwarm.Session(telemetry=True)
        off = keepwarm.Session(telemetry=False)
        try:
            for s in (on, off):  # warm up: connection, TLS context, code paths
                _round(s, url, verify, 50)
            cpu_ratios, wall_ratios = [], []
            cpu_on, cpu_off = [], []
            for i in range(rounds):
                first, second = (on, off) if i % 2 == 0 else (off, on)
                a = _round(first, url, verify, n)
                b = _round(second, url, verify, n)
                r_on, r_off = (a, b) if first is on else (b, a)
                cpu_ratios.append(r_on[0] / r_off[0])
                wall_ratios.append(r_on[1] / r_off[1])
                cpu_on.append(r_on[0])
                cpu_off.append(r_off[0])
            assert on.stats().connections_opened == 1, on.stats()
        finally:
            on.close()
            off.close()
    return {
        "cpu_us_per_request_on": statistics.median(cpu_on) * 1e6,
        "cpu_us_per_request_off": statistics.median(cpu_off) * 1e6,
        "cpu_overhead": statistics.median(cpu_ratios) - 1,
        "wall_overhead": statistics.median(wall_ratios) - 1,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--requests", type=int, default=REQUESTS_PER_ROUND)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {s: measure(s, args.rounds, args.requests) for s in ("http", "https")}
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
    else:
        for scheme, r in results.items():
            print(
                f"{scheme:5}  client CPU/request: on {r['cpu_us_per_request_on']:.0f} us, "
                f"off {r['cpu_us_per_request_off']:.0f} us, overhead "
                f"{r['cpu_overhead']:+.1%} (wall {r['wall_overhead']:+.1%})"
            )
    worst = max(max(r["cpu_overhead"], r["wall_overhead"]) for r in results.values())
    print(f"worst overhead {worst:+.1%} (target <= {TARGET:.0%})")
    return 0 if worst <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
