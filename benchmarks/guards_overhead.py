"""What keepwarm's guards cost per request when nothing is wrong: guards on vs off, in one run.

Two sessions, ``guards=True`` and ``guards=False``, send sequential keep-alive GETs to the
benchmark server (a separate process, so its CPU does not count), once plain and once with
a per-request header the session lacks (the header-override guard's check runs, and finds
nothing). Rounds alternate on, off, off, on... and each on-round is compared with the
off-round next to it, so drift in machine load cancels out. Reported: the median over round
pairs of the ratio of client CPU time per request (``time.process_time``).

Target (issue 13): at most 2 % more CPU per request with the guards on.

    .venv/bin/python benchmarks/guards_overhead.py [--rounds 30] [--requests 300] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import keepwarm
from keepwarm.bench._runner import ServerProcess

ROUNDS = 30
REQUESTS_PER_ROUND = 300
TARGET = 0.02


def _round(session: keepwarm.Session, url: str, n: int, headers: Any) -> float:
    cpu0 = time.process_time()
    for _ in range(n):
        session.get(url, headers=headers).raise_for_status()
    return (time.process_time() - cpu0) / n


def measure(url: str, rounds: int, n: int, headers: Any) -> dict[str, float]:
    on = keepwarm.Session(guards=True, headers={"X-Team": "bench"})
    off = keepwarm.Session(guards=False, headers={"X-Team": "bench"})
    try:
        for s in (on, off):  # warm up: connection, code paths
            _round(s, url, 50, headers)
        ratios, cpu_on, cpu_off = [], [], []
        for i in range(rounds):
            first, second = (on, off) if i % 2 == 0 else (off, on)
            a = _round(first, url, n, headers)
            b = _round(second, url, n, headers)
            r_on, r_off = (a, b) if first is on else (b, a)
            ratios.append(r_on / r_off)
            cpu_on.append(r_on)
            cpu_off.append(r_off)
        assert on.stats().connections_opened == 1, on.stats()
    finally:
        on.close()
        off.close()
    return {
        "on_cpu_us": statistics.median(cpu_on) * 1e6,
        "off_cpu_us": statistics.median(cpu_off) * 1e6,
        "cpu_overhead": statistics.median(ratios) - 1,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--requests", type=int, default=REQUESTS_PER_ROUND)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with ServerProcess(cert_chain=None) as server:
        url = server.url + "/"
        results = {
            "plain GET": measure(url, args.rounds, args.requests, None),
            "GET with headers=": measure(url, args.rounds, args.requests, {"X-Request-Id": "1"}),
        }
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
    else:
        for name, r in results.items():
            print(
                f"{name}: guards on {r['on_cpu_us']:.1f} us, off {r['off_cpu_us']:.1f} us CPU per "
                f"request; overhead {r['cpu_overhead']:+.2%} (target <= {TARGET:.0%})"
            )
    worst = max(r["cpu_overhead"] for r in results.values())
    return 0 if worst <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
