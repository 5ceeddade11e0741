"""An unmodified program with and without ``keepwarm run`` (issue 17): wall time and
connections, HTTPS.

The program is ``tests/run_fixtures/mixed_client.py``: 40 sequential HTTPS requests
through ``requests.get``/``post``, per-call ``with requests.Session()`` blocks and a
client object holding its own Session, the CA from ``REQUESTS_CA_BUNDLE``. The server is
keepwarm's bench server (HTTP/1.1 keep-alive, TLS) in this process, optionally behind
the bench's latency proxy (``--rtt``, so a TLS handshake costs its round trips as on a
network); connections are counted where they are accepted.

Each round runs, in alternating order, ``python mixed_client.py URL`` and ``python -m
keepwarm run python mixed_client.py URL``: the wall time is the whole command as a user
sees it, interpreter starts, keepwarm run's own process and its report included. A third
pair, the same two commands around a program that only imports requests, gives keepwarm
run's fixed cost. Medians over the rounds.

    .venv/bin/python benchmarks/run_program.py [--rounds 15] [--rtt 0.01]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

import trustme

import keepwarm
from keepwarm.bench._engine import LocalServer
from keepwarm.bench._proxy import LatencyProxy
from keepwarm.bench._routes import default_handler

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "tests" / "run_fixtures" / "mixed_client.py"
IDLE = "import requests"
TIMEOUT = 120


def _timed(command: Sequence[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        command, env=env, check=True, timeout=TIMEOUT, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--rtt", type=float, default=0.0, help="seconds of round trip added")
    args = parser.parse_args()
    if not 1 <= args.rounds <= 200 or not 0 <= args.rtt <= 0.5:
        parser.error("--rounds must be 1..200 and --rtt 0..0.5 seconds")

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    package = pathlib.Path(keepwarm.__file__).resolve().parent.parent
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalServer(default_handler, ssl_context=context) as server,
    ):
        bundle = pathlib.Path(tmp) / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
        env.update(REQUESTS_CA_BUNDLE=str(bundle), PYTHONPATH=str(package))
        for name in ("CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
            env.pop(name, None)
        proxy = LatencyProxy(("127.0.0.1", server.port), args.rtt).start() if args.rtt else None
        try:
            port = proxy.port if proxy else server.port
            url = f"https://127.0.0.1:{port}"
            plain = [sys.executable, str(PROGRAM), url]
            kept = [sys.executable, "-m", "keepwarm", "run", *plain]
            idle_plain = [sys.executable, "-c", IDLE]
            idle_kept = [sys.executable, "-m", "keepwarm", "run", *idle_plain]
            times: dict[str, list[float]] = {k: [] for k in ("plain", "kept", "ip", "ik")}
            connections: dict[str, list[int]] = {"plain": [], "kept": []}
            for index in range(args.rounds):
                order = ("plain", "kept") if index % 2 == 0 else ("kept", "plain")
                for name in order:
                    server.reset()
                    times[name].append(_timed(plain if name == "plain" else kept, env))
                    if server.requests_handled != 40:
                        raise SystemExit(f"{name}: {server.requests_handled} requests, not 40")
                    connections[name].append(server.connections_accepted)
                for name in ("ip", "ik") if index % 2 == 0 else ("ik", "ip"):
                    times[name].append(_timed(idle_plain if name == "ip" else idle_kept, env))
        finally:
            if proxy:
                proxy.close()

    def ms(name: str) -> float:
        return statistics.median(times[name]) * 1000

    print(f"rounds {args.rounds}, rtt {args.rtt * 1000:g} ms, 40 HTTPS requests per run")
    for name, title in (("plain", "python mixed_client.py"), ("kept", "keepwarm run python ...")):
        conns = statistics.median(connections[name])
        print(f"  {title:<26} {ms(name):8.1f} ms   connections {conns:g}")
    print(f"  keepwarm run / plain: {ms('kept') / ms('plain'):.3f}")
    print(
        f"  fixed cost (python -c '{IDLE}'): plain {ms('ip'):.1f} ms, "
        f"under keepwarm run {ms('ik'):.1f} ms (+{ms('ik') - ms('ip'):.1f} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
