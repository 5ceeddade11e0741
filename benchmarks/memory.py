"""Resident memory after 10,000 requests: keepwarm.Session against requests.Session
(issue 16: keepwarm within 1 MiB of requests).

Each client runs in its own fresh interpreter against the embedded benchmark server in
another process, and makes sequential keep-alive GETs on one session (``keepwarm.Session()``
with its defaults, telemetry on; ``requests.Session()`` with ``timeout=10``, reading each
body), both from compiled bytecode. The child reads ``VmRSS`` from ``/proc/self/status``
(after ``gc.collect()``) at start, after importing its client, after 100 warm-up requests
and after all of them, and ``VmHWM`` (the peak) at the end. Rounds alternate which client
goes first; figures are medians over rounds, with each round's difference (keepwarm -
requests) and the growth per request after the warm-up.

    .venv/bin/python benchmarks/memory.py [--rounds 5] [--requests 10000] [--scheme http]
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import gc
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time
from typing import Any

WARM_UP = 100
MIB = 1024 * 1024


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _rss() -> int:
    """Resident bytes now, after a full collection."""
    gc.collect()
    return _status_kib("VmRSS") * 1024


def child(client: str, url: str, verify: str, n: int) -> dict[str, Any]:
    """One client's figures; runs in a fresh interpreter (``--child``)."""
    figures: dict[str, Any] = {"start": _rss()}
    verify_arg: Any = True if verify == "-" else verify
    if client == "keepwarm":
        import keepwarm

        figures["imported"] = _rss()
        session: Any = keepwarm.Session()
        kwargs: dict[str, Any] = {}
    else:
        import requests

        figures["imported"] = _rss()
        session = requests.Session()
        kwargs = {"timeout": 10}
    with session:
        started = time.perf_counter()
        for i in range(n):
            response = session.get(url, verify=verify_arg, **kwargs)
            response.raise_for_status()
            response.content  # noqa: B018 - read the body, as a caller does
            if i + 1 == WARM_UP:
                figures["warm"] = _rss()
        figures["seconds"] = time.perf_counter() - started
        figures["end"] = _rss()
    figures["peak"] = _status_kib("VmHWM") * 1024
    figures["per_request"] = (figures["end"] - figures["warm"]) / (n - WARM_UP)
    return figures


def _run_child(client: str, url: str, verify: str, n: int) -> dict[str, Any]:
    import keepwarm

    env = dict(os.environ)
    package_parent = str(pathlib.Path(keepwarm.__file__).parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([package_parent, env.get("PYTHONPATH", "")])
    command = [sys.executable, __file__, "--child", client, url, verify, str(n)]
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@contextlib.contextmanager
def _server(scheme: str) -> Any:
    """``(url, verify)`` of the embedded server in a child process."""
    from keepwarm.bench._runner import ServerProcess
    from keepwarm.bench._servers import tls_files

    with tls_files([scheme]) as tls:
        chain = tls.chain if scheme == "https" else None
        with ServerProcess(cert_chain=chain) as server:
            yield server.url + "/", tls.bundle if scheme == "https" else "-"


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        client, url, verify, n = sys.argv[2:6]
        print(json.dumps(child(client, url, verify, int(n))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--scheme", choices=("http", "https"), default="http")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import keepwarm

    # From bytecode, as an installed package is imported (compiling from source, which
    # PYTHONDONTWRITEBYTECODE=1 would make every child do, leaves its own garbage).
    compileall.compile_dir(str(pathlib.Path(keepwarm.__file__).parent), quiet=1)
    runs: dict[str, list[dict[str, Any]]] = {"requests": [], "keepwarm": []}
    with _server(args.scheme) as (url, verify):
        for i in range(args.rounds):
            order = ("requests", "keepwarm") if i % 2 == 0 else ("keepwarm", "requests")
            for client in order:
                runs[client].append(_run_child(client, url, verify, args.requests))
    keys = ("start", "imported", "warm", "end", "peak", "per_request", "seconds")
    medians = {c: {k: statistics.median(r[k] for r in runs[c]) for k in keys} for c in runs}
    differences = [
        k["end"] - r["end"] for k, r in zip(runs["keepwarm"], runs["requests"], strict=True)
    ]
    if args.json:
        json.dump({"medians": medians, "end_differences": differences}, sys.stdout, indent=2)
        print()
        return 0
    print(f"{args.requests} sequential keep-alive GETs over {args.scheme}, {args.rounds} rounds")
    print(f"{'':10} {'start':>8} {'imported':>9} {'warm':>8} {'end':>8} {'peak':>8} {'B/req':>7}")
    for client, m in medians.items():
        cells = " ".join(f"{m[k] / MIB:8.2f}" for k in ("start", "imported", "warm", "end"))
        print(f"{client:10} {cells} {m['peak'] / MIB:8.2f} {m['per_request']:7.1f}")
    shown = ", ".join(f"{d / MIB:+.2f}" for d in differences)
    print(f"keepwarm - requests after {args.requests} (MiB, per round): {shown}")
    median = statistics.median(differences) / MIB
    print(f"median {median:+.2f} MiB (target <= +1.00 MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
