"""What a tracer costs: keepwarm.Session and requests.Session, traced and not, in one run.

OpenTelemetry's requests instrumentation wraps ``requests.Session.send``; keepwarm then
takes the traced path (requests' own ``send`` through keepwarm's transport; see
``keepwarm._upstream.hooks``). Sequential keep-alive GETs against the embedded server in
a separate process (and nginx when it is on PATH); every round measures the four
combinations (instrumented or not x plain or keepwarm), in alternating orders, and the
figures are medians of client CPU time per request (``time.process_time``). The tracer
is the OpenTelemetry SDK with a batch span processor and an exporter that drops spans
(what a production set-up costs in the client, without an exporter's own I/O).

    .venv/bin/python benchmarks/watched.py [--rounds 8] [--requests 300] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import requests
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import keepwarm
from keepwarm.bench._runner import ServerProcess
from keepwarm.bench._servers import NginxServer

ROUNDS = 8
REQUESTS_PER_ROUND = 300


class _Drop(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _cpu_per_request(session: requests.Session, url: str, n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        session.get(url, timeout=10).raise_for_status()
    return (time.process_time() - start) / n * 1e6


def measure(url: str, rounds: int, n: int) -> dict[str, float]:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_Drop()))
    instrumentor = RequestsInstrumentor()
    plain, kw = requests.Session(), keepwarm.Session()
    cpu: dict[str, list[float]] = {}
    try:
        for session in (plain, kw):  # warm both, untraced and traced
            _cpu_per_request(session, url, 50)
        for i in range(rounds):
            for traced in (False, True) if i % 2 == 0 else (True, False):
                if traced:
                    instrumentor.instrument(tracer_provider=provider)
                try:
                    for session in (plain, kw) if i % 2 == 0 else (kw, plain):
                        name = ("keepwarm" if session is kw else "requests") + (
                            "_traced" if traced else ""
                        )
                        cpu.setdefault(name, []).append(_cpu_per_request(session, url, n))
                finally:
                    if traced:
                        instrumentor.uninstrument()
    finally:
        plain.close()
        kw.close()
        provider.shutdown()
    m = {f"{name}_cpu_us": statistics.median(values) for name, values in cpu.items()}
    return {
        **m,
        "requests_tracer_cost_us": m["requests_traced_cpu_us"] - m["requests_cpu_us"],
        "keepwarm_tracer_cost_us": m["keepwarm_traced_cpu_us"] - m["keepwarm_cpu_us"],
        "cpu_ratio_untraced": m["requests_cpu_us"] / m["keepwarm_cpu_us"],
        "cpu_ratio_traced": m["requests_traced_cpu_us"] / m["keepwarm_traced_cpu_us"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--requests", type=int, default=REQUESTS_PER_ROUND)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with ServerProcess(cert_chain=None) as server:
        results["http/embedded"] = measure(server.url + "/", args.rounds, args.requests)
    if shutil.which("nginx") is not None:
        with NginxServer(tls=None) as nginx:
            results["http/nginx"] = measure(nginx.url + "/", args.rounds, args.requests)
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
        return 0
    for where, r in results.items():
        print(
            f"{where}: requests {r['requests_cpu_us']:.0f} -> {r['requests_traced_cpu_us']:.0f}"
            f" us/request traced (+{r['requests_tracer_cost_us']:.0f}); keepwarm "
            f"{r['keepwarm_cpu_us']:.0f} -> {r['keepwarm_traced_cpu_us']:.0f} "
            f"(+{r['keepwarm_tracer_cost_us']:.0f}); requests/keepwarm CPU "
            f"{r['cpu_ratio_untraced']:.2f}x untraced, {r['cpu_ratio_traced']:.2f}x traced"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
