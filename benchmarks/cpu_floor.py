"""Client CPU per request: keepwarm.Session against urllib3.PoolManager and requests.Session.

Issue 16's targets, paired in one run: for sequential keep-alive GETs of a small body,
keepwarm's client CPU per request at most ``urllib3.PoolManager``'s (the floor under
requests' API) and at most half of ``requests.Session``'s, over HTTP and HTTPS, in a
minimal environment (2 variables) and in a large one (requests re-reads the proxy and CA
variables on every request, so its cost grows with the environment; urllib3's and
keepwarm's should not).

Each environment runs in a child process started with exactly that environment; the
three clients take turns (order rotating each round), each doing ``--requests`` GETs per
round timed by ``time.process_time``. Figures are medians over rounds; ratios are medians
of per-round ratios (a slow moment of the shared machine hits every client of a round).
Servers: nginx ``return 200`` when nginx is on PATH (the cheapest server, so the client's
CPU is most of the time), else the embedded server in its own process.

The clients are configured alike: timeouts (3, 7) s and 3 retries
(``keepwarm.Session()``'s defaults), TLS verification against the same bundle.

    .venv/bin/python benchmarks/cpu_floor.py [--rounds 10] [--requests 400]
        [--server nginx|embedded] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

ROUNDS = 10
REQUESTS_PER_ROUND = 400
#: Variables in the large environment: the machine's own, padded with variables named
#: like a CI runner's (a GitHub runner has ~100, a developer's shell often more).
LARGE_ENVIRONMENT = 150
CLIENTS = ("keepwarm", "urllib3", "requests")


def _clients(verify: str | bool) -> dict[str, Callable[[str], bytes]]:
    import requests
    import urllib3

    import keepwarm

    session = keepwarm.Session(verify=verify)
    pool = urllib3.PoolManager(
        cert_reqs="CERT_REQUIRED" if verify else "CERT_NONE",
        ca_certs=verify if isinstance(verify, str) else None,
        timeout=urllib3.Timeout(connect=3, read=7),
        retries=urllib3.Retry(3, redirect=False),
    )
    plain = requests.Session()

    def with_keepwarm(url: str) -> bytes:
        return session.get(url).content

    def with_urllib3(url: str) -> bytes:
        return pool.request("GET", url).data

    def with_requests(url: str) -> bytes:
        # Per request: requests lets REQUESTS_CA_BUNDLE override a session's verify.
        return plain.get(url, timeout=(3, 7), verify=verify).content

    return {"keepwarm": with_keepwarm, "urllib3": with_urllib3, "requests": with_requests}


def _cpu_per_request(get: Callable[[str], bytes], url: str, n: int) -> float:
    started = time.process_time()
    for _ in range(n):
        get(url)
    return (time.process_time() - started) / n * 1e6


def child(url: str, verify: str | bool, rounds: int, n: int) -> dict[str, Any]:
    """In the child process: the paired rounds for one server and environment."""
    clients = _clients(verify)
    for get in clients.values():
        _cpu_per_request(get, url, 50)  # connections open, caches warm
    cpu: dict[str, list[float]] = {name: [] for name in CLIENTS}
    for index in range(rounds):
        order = CLIENTS[index % 3 :] + CLIENTS[: index % 3]
        for name in order:
            cpu[name].append(_cpu_per_request(clients[name], url, n))
    keep = cpu["keepwarm"]
    return {
        "cpu_us": {name: round(statistics.median(values), 1) for name, values in cpu.items()},
        "keepwarm_over_urllib3": round(
            statistics.median(k / u for k, u in zip(keep, cpu["urllib3"], strict=True)), 3
        ),
        "keepwarm_over_requests": round(
            statistics.median(k / r for k, r in zip(keep, cpu["requests"], strict=True)), 3
        ),
        "environment_variables": len(os.environ),
    }


def _environments() -> dict[str, dict[str, str]]:
    minimal = {name: os.environ[name] for name in ("PATH", "HOME") if name in os.environ}
    if "PYTHONPATH" in os.environ:  # an A/B run against another checkout
        minimal["PYTHONPATH"] = os.environ["PYTHONPATH"]
    large = dict(os.environ)
    for index in range(LARGE_ENVIRONMENT - len(large)):
        large[f"RUNNER_SETTING_{index:03d}"] = f"value-{index}-" + "x" * 24
    return {"minimal": minimal, "large": large}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--requests", type=int, default=REQUESTS_PER_ROUND)
    parser.add_argument("--server", choices=("nginx", "embedded"), default=None)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("URL", "VERIFY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, verify = args.child
        result = child(url, verify if verify != "True" else True, args.rounds, args.requests)
        print(json.dumps(result))
        return 0
    from request_path import _server  # the same servers as the request-path benchmark

    kind = args.server or ("nginx" if shutil.which("nginx") else "embedded")
    results: dict[str, Any] = {"server": kind}
    for scheme in ("http", "https"):
        with _server(kind, scheme) as (url, verify):
            for name, env in _environments().items():
                command = [sys.executable, __file__, "--child", url, str(verify)]
                command += ["--rounds", str(args.rounds), "--requests", str(args.requests)]
                done = subprocess.run(
                    command, env=env, capture_output=True, text=True, timeout=900, check=False
                )
                if done.returncode != 0:
                    raise SystemExit(f"the {name} environment's run failed:\n{done.stderr}")
                results[f"{scheme}_{name}_environment"] = json.loads(done.stdout)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"server: {kind}")
        for key, figures in results.items():
            if key != "server":
                print(f"{key}: {figures}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
