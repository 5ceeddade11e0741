"""keepwarm's request path against plain requests.Session, in one run.

1. Sequential keep-alive GETs: client CPU time (``time.process_time``) and throughput
   per request, keepwarm.Session vs requests.Session, HTTP and HTTPS. Target (issue 5):
   keepwarm's CPU per request <= 1/2 of requests.Session's.
2. New HTTPS connections: the server closes after every response, so every request pays
   a TCP connect and a TLS handshake with full verification against a certifi-sized CA
   bundle. Target: keepwarm's cost per new connection <= 1/5 of plain requests'.

The server runs in a separate process; rounds alternate between the clients and the
figure is the median over rounds. Part 1 runs against the embedded Python server and,
when nginx is on PATH, against nginx too (the server issue 5's reference figures were
measured with): a sequential client waits for the server on every request, so the
server's own time per request is in both clients' throughput and pulls the ratio
towards 1; the faster the server, the closer the throughput ratio is to the CPU ratio.

    .venv/bin/python benchmarks/request_path.py [--rounds 8] [--requests 300]
        [--server embedded|nginx|both]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import requests

import keepwarm
from keepwarm.bench._runner import ServerProcess, _tls_material
from keepwarm.bench._servers import NginxServer, tls_files

ROUNDS = 8
REQUESTS_PER_ROUND = 300
NEW_CONNECTIONS_PER_ROUND = 40


def _round(session: Any, url: str, verify: Any, n: int, **kw: Any) -> tuple[float, float]:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        session.get(url, verify=verify, **kw).raise_for_status()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return cpu / n * 1e6, n / wall


@contextlib.contextmanager
def _server(kind: str, scheme: str) -> Any:
    """``(url, verify)`` of a running server of this kind and scheme."""
    with tls_files([scheme]) as tls:
        verify: Any = tls.bundle if scheme == "https" else True
        if kind == "nginx":
            with NginxServer(tls=tls if scheme == "https" else None) as nginx:
                yield nginx.url + "/", verify
        else:
            with ServerProcess(cert_chain=tls.chain if scheme == "https" else None) as server:
                yield server.url + "/", verify


def on_nginx(measure: Callable[[str, Any], Any]) -> dict[str, Any] | None:
    """``measure(url, verify)`` against nginx over HTTP and over HTTPS, by scheme; None
    (after saying why on stderr) when nginx is not on PATH."""
    if shutil.which("nginx") is None:
        print("nginx is not on PATH: this benchmark needs it", file=sys.stderr)
        return None
    results: dict[str, Any] = {}
    for scheme in ("http", "https"):
        with _server("nginx", scheme) as (url, verify):
            results[scheme] = measure(url, verify)
    return results


def keep_alive(scheme: str, rounds: int, n: int, kind: str = "embedded") -> dict[str, float]:
    with _server(kind, scheme) as (url, verify):
        plain, kw = requests.Session(), keepwarm.Session()
        try:
            _round(plain, url, verify, 50, timeout=10)
            _round(kw, url, verify, 50)
            p_cpu, k_cpu, p_rps, k_rps = [], [], [], []
            for i in range(rounds):
                order = (plain, kw) if i % 2 == 0 else (kw, plain)
                for s in order:
                    cpu, rps = (
                        _round(s, url, verify, n, timeout=10)
                        if s is plain
                        else _round(s, url, verify, n)
                    )
                    (p_cpu if s is plain else k_cpu).append(cpu)
                    (p_rps if s is plain else k_rps).append(rps)
        finally:
            plain.close()
            kw.close()
    p, k = statistics.median(p_cpu), statistics.median(k_cpu)
    return {
        "requests_cpu_us": p,
        "keepwarm_cpu_us": k,
        "cpu_ratio": p / k,
        "requests_rps": statistics.median(p_rps),
        "keepwarm_rps": statistics.median(k_rps),
        "rps_ratio": statistics.median(k_rps) / statistics.median(p_rps),
    }


def new_connections(rounds: int, n: int) -> dict[str, float]:
    """Wall time per request when every request opens a new HTTPS connection."""
    with (
        _tls_material(["https"]) as (bundle, chain, _count),
        ServerProcess(cert_chain=chain) as server,
    ):
        url = server.url + "/"
        close = {"Connection": "close"}
        plain, kw = requests.Session(), keepwarm.Session()
        try:
            p_ms, k_ms = [], []
            for i in range(rounds):
                order = (plain, kw) if i % 2 == 0 else (kw, plain)
                for s in order:
                    _cpu, rps = _round(s, url, bundle, n, headers=close, timeout=10)
                    (p_ms if s is plain else k_ms).append(1000 / rps)
            stats = kw.stats()
            assert stats.connections_opened == stats.requests, stats
        finally:
            plain.close()
            kw.close()
    p, k = statistics.median(p_ms), statistics.median(k_ms)
    return {"requests_ms": p, "keepwarm_ms": k, "cost_ratio": k / p}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--requests", type=int, default=REQUESTS_PER_ROUND)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--server", choices=("embedded", "nginx", "both"), default="both")
    args = parser.parse_args()
    kinds = ["embedded", "nginx"] if args.server == "both" else [args.server]
    if args.server == "both" and shutil.which("nginx") is None:
        print("nginx is not on PATH: embedded server only", file=sys.stderr)
        kinds = ["embedded"]
    results: dict[str, Any] = {
        f"{scheme}/{kind}": keep_alive(scheme, args.rounds, args.requests, kind)
        for kind in kinds
        for scheme in ("http", "https")
    }
    results["new_https_connection"] = new_connections(args.rounds, NEW_CONNECTIONS_PER_ROUND)
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
        return 0
    for key in [k for k in results if "/" in k]:
        r = results[key]
        print(
            f"{key:14} keep-alive  CPU/request: requests.Session {r['requests_cpu_us']:.0f} us,"
            f" keepwarm {r['keepwarm_cpu_us']:.0f} us ({r['cpu_ratio']:.2f}x less);"
            f" req/s {r['requests_rps']:.0f} vs {r['keepwarm_rps']:.0f} ({r['rps_ratio']:.2f}x)"
        )
    c = results["new_https_connection"]
    print(
        f"new HTTPS connection: requests.Session {c['requests_ms']:.2f} ms, keepwarm "
        f"{c['keepwarm_ms']:.2f} ms per request ({c['cost_ratio']:.2f} of plain)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
