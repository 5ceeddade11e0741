"""How many files per second ``keepwarm lint`` reads on the standard library.

The running Python's ``Lib/`` (its site-packages excluded, as in any run), linted with all
rules selected: once in one process (the pure ``ast`` pass) and once with one worker
process per CPU (what ``keepwarm lint`` does on a large tree). Each mode runs ``ROUNDS``
times and the best round is kept (the least disturbed by the machine's other work).

Target (issue 14): >= 100 files/s on the project's 2-core build machine.

    .venv/bin/python benchmarks/lint_speed.py [--rounds 3] [--json] [PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import sysconfig
import time

from keepwarm.lint import RULES, lint_paths

ROUNDS = 3
TARGET = 100.0


def measure(path: str, jobs: int, rounds: int) -> dict[str, float]:
    best = float("inf")
    files = findings = 0
    for _ in range(rounds):
        started = time.perf_counter()
        report = lint_paths([path], select=set(RULES), jobs=jobs)
        best = min(best, time.perf_counter() - started)
        files, findings = report.files, len(report.findings)
    return {
        "jobs": jobs,
        "files": files,
        "findings": findings,
        "seconds": round(best, 3),
        "files_per_second": round(files / best, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=sysconfig.get_paths()["stdlib"])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    results = [measure(args.path, 1, args.rounds)]
    if cpus > 1:
        results.append(measure(args.path, cpus, args.rounds))
    if args.json:
        print(json.dumps({"path": args.path, "cpus": cpus, "results": results}, indent=2))
    else:
        print(
            f"{args.path} on {cpus} CPUs, Python {sys.version.split()[0]}, best of {args.rounds}:"
        )
        for r in results:
            print(
                f"  {r['jobs']} process(es): {r['files']:.0f} files in {r['seconds']:.2f} s = "
                f"{r['files_per_second']:.0f} files/s, {r['findings']:.0f} findings"
            )
    best = max(r["files_per_second"] for r in results)
    return 0 if best >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
