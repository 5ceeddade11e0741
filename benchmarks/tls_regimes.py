"""Which regime each new TLS connection of a large download runs in, per client.

A diagnostic for ``streaming.py``'s HTTPS figure (docs/PERFORMANCE.md, "A 100 MB download
over TLS"). On the build machine each new loopback TLS connection runs a 100 MB download in
one of two regimes for its whole life: a fast one, or one that costs the client about
20 ms more *system* time per 100 MB (zero-window advertisements, backlog coalescing,
retransmissions), with the speed following; how many connections run slow changes with
the machine's state, which moves ``streaming.py``'s figures for every client. This
tells that apart from a client's own cost. It runs ``--downloads`` new connections per
client, interleaved
(plain requests without a timeout, with keepwarm's default timeout, and keepwarm), each
timed from the response head to the last chunk as ``streaming.py`` times it, and gives
per client: how many downloads were slow (system time over ``--slow-factor`` times the
median of all downloads' system time), the medians of user and system time per 100 MB,
and, for slow and fast downloads, the medians of the kernel's TCP counters
(``/proc/net/netstat``: machine-wide, so run it on an otherwise quiet machine). A slow
connection is one whose receive buffer stayed small (the sixteenth stop found the two
regimes to be that); ``streaming.py`` now counts those directly, by ``SO_RCVBUF``.

    PYTHONPATH=src .venv/bin/python benchmarks/tls_regimes.py [--downloads 40] [--mb 100]
        [--slow-factor 1.5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
from collections.abc import Callable
from typing import Any

from streaming import CLIENTS, TIMEOUT, _cpus, server

#: The kernel's TCP counters reported for slow and fast downloads (``/proc/net/netstat``).
COUNTERS = (
    "TCPToZeroWindowAdv",
    "TCPBacklogCoalesce",
    "TCPRcvCoalesce",
    "TCPHPHits",
    "TCPFastRetrans",
    "TCPRcvCollapsed",
    "PruneCalled",
)


def _netstat() -> dict[str, int]:
    """The TcpExt counters of ``/proc/net/netstat`` (empty where it does not exist)."""
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    counters: dict[str, int] = {}
    for names, values in zip(lines[0::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            for name, value in zip(names.split()[1:], values.split()[1:], strict=False):
                counters[name] = int(value)
    return counters


def _one(get: Callable[[], Any], size: int) -> dict[str, float]:
    """One streamed download: user and system CPU (ms per 100 MB) and counter deltas."""
    scale = 100e6 / size
    with get() as r:
        r.raise_for_status()
        before, usage = _netstat(), resource.getrusage(resource.RUSAGE_SELF)
        got = 0
        for chunk in r.iter_content(65536):
            got += len(chunk)
        done, after = resource.getrusage(resource.RUSAGE_SELF), _netstat()
    if got != size:
        raise RuntimeError(f"read {got} bytes of {size}")
    row = {
        "user_ms": (done.ru_utime - usage.ru_utime) * 1e3 * scale,
        "system_ms": (done.ru_stime - usage.ru_stime) * 1e3 * scale,
    }
    for name in COUNTERS:
        row[name] = after.get(name, 0) - before.get(name, 0)
    return row


def run(downloads: int, size: int, slow_factor: float) -> dict[str, Any]:
    import requests

    import keepwarm
    from keepwarm.bench._servers import tls_files

    rows: dict[str, list[dict[str, float]]] = {name: [] for name in CLIENTS}
    with tls_files(["https"]) as tls:
        server_cpu, client_cpu = _cpus(True)
        with server(tls.chain, server_cpu) as served:
            if client_cpu is not None:
                os.sched_setaffinity(0, {client_cpu})
            url = f"https://127.0.0.1:{served.port}/{size}?close"
            plain, timed, kw = requests.Session(), requests.Session(), keepwarm.Session()
            gets: dict[str, Callable[[], Any]] = {
                "requests": lambda: plain.get(url, stream=True, verify=tls.bundle),
                "requests+timeout": lambda: timed.get(
                    url, stream=True, verify=tls.bundle, timeout=TIMEOUT
                ),
                "keepwarm": lambda: kw.get(url, stream=True, verify=tls.bundle),
            }
            try:
                for name in CLIENTS:
                    _one(gets[name], size)  # warm up
                for i in range(downloads):
                    for name in CLIENTS[i % 3 :] + CLIENTS[: i % 3]:
                        rows[name].append(_one(gets[name], size))
            finally:
                plain.close()
                timed.close()
                kw.close()
    threshold = slow_factor * statistics.median(
        row["system_ms"] for client in rows.values() for row in client
    )
    result: dict[str, Any] = {"downloads": downloads, "slow_system_ms_over": round(threshold, 1)}
    for name, client in rows.items():
        slow = [row for row in client if row["system_ms"] > threshold]
        fast = [row for row in client if row["system_ms"] <= threshold]
        result[name] = {
            "slow": len(slow),
            "user_ms": round(statistics.median(row["user_ms"] for row in client), 1),
            "system_ms": round(statistics.median(row["system_ms"] for row in client), 1),
            "slow_counters": _medians(slow),
            "fast_counters": _medians(fast),
        }
    return result


def _medians(rows: list[dict[str, float]]) -> dict[str, float]:
    return {name: statistics.median(row[name] for row in rows) for name in COUNTERS} if rows else {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--downloads", type=int, default=40, help="new connections per client")
    parser.add_argument("--mb", type=int, default=100, help="body size in MB (10**6 bytes)")
    parser.add_argument("--slow-factor", type=float, default=1.5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.downloads < 1 or args.mb < 1 or args.slow_factor <= 1:
        parser.error("--downloads and --mb must be at least 1, --slow-factor over 1")
    result = run(args.downloads, args.mb * 1_000_000, args.slow_factor)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"https: {args.downloads} new connections of {args.mb} MB per client, interleaved;"
        f" slow = system time over {result['slow_system_ms_over']} ms per 100 MB"
    )
    for name in CLIENTS:
        c = result[name]
        print(
            f"  {name:17} slow {c['slow']:3}/{args.downloads}  user {c['user_ms']:5.1f} ms"
            f"  system {c['system_ms']:5.1f} ms per 100 MB"
        )
        for regime in ("slow", "fast"):
            counters = c[f"{regime}_counters"]
            if counters:
                shown = ", ".join(f"{k} {v:g}" for k, v in counters.items())
                print(f"    {regime}: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
