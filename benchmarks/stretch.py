"""Client CPU per request: this checkout's keepwarm against another tree's (issue 16's stretch).

Issue 16's stretch is a ratio to an older keepwarm: 0.6 of 16bb57c's client CPU per
sequential keep-alive GET of a small body. This measures that ratio directly: the two
trees' ``keepwarm.Session().get(url).content`` in alternating child processes (each
with only its tree's ``src`` on ``PYTHONPATH``), on one nginx, and gives the median of
the per-round ratios with a 90 % bootstrap interval and the verdict on ``--target``.
Under each, the same for the user-space CPU alone (its ratio, interval and verdict on the
same target), and the system (kernel) CPU of each tree: the sends and receives cost the
kernel the same whichever client makes them.

    git worktree add --detach /tmp/kw-16bb57c 16bb57c
    .venv/bin/python benchmarks/stretch.py --tree /tmp/kw-16bb57c [--rounds 16]
        [--requests 3000] [--target 0.6] [--json]

nginx must be on PATH. Compile both trees' bytecode first (``python -m compileall``): a
child that writes it in its first round would be charged for it.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
from typing import Any

from _paired import median_interval, verdict

ROUNDS = 16
REQUESTS_PER_ROUND = 3000
TARGET = 0.6
HERE = pathlib.Path(__file__).resolve().parent.parent

#: One child: warm up, then the CPU per request of ``n`` GETs, in microseconds: the
#: process's whole CPU time (``process_time``), then its user and system parts
#: (``getrusage``: the kernel's accounting, which ``process_time`` sums).
CHILD = """
import resource, sys, time, keepwarm
url, verify, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with keepwarm.Session(verify=True if verify == "True" else verify) as session:
    for _ in range(300):
        session.get(url).content
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.process_time()
    for _ in range(n):
        session.get(url).content
    cpu = time.process_time() - started
    done = resource.getrusage(resource.RUSAGE_SELF)
    user = done.ru_utime - usage.ru_utime
    system = done.ru_stime - usage.ru_stime
    print(cpu / n * 1e6, user / n * 1e6, system / n * 1e6)
"""


def _cpu(src: pathlib.Path, url: str, verify: Any, n: int) -> tuple[float, float, float]:
    env = dict(os.environ, PYTHONPATH=str(src))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, url, str(verify), str(n)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the child on {src} failed:\n{done.stderr}")
    cpu, user, system = (float(value) for value in done.stdout.split())
    return cpu, user, system


def measure(
    tree: pathlib.Path, url: str, verify: Any, rounds: int, n: int, target: float
) -> dict[str, Any]:
    sources = {"this": HERE / "src", "other": tree / "src"}
    cpu: dict[str, list[float]] = {name: [] for name in sources}
    user: dict[str, list[float]] = {name: [] for name in sources}
    system: dict[str, list[float]] = {name: [] for name in sources}
    for index in range(rounds):
        order = list(sources) if index % 2 == 0 else list(reversed(sources))
        for name in order:
            total, in_user, in_system = _cpu(sources[name], url, verify, n)
            cpu[name].append(total)
            user[name].append(in_user)
            system[name].append(in_system)
    ratios = [a / b for a, b in zip(cpu["this"], cpu["other"], strict=True)]
    interval = median_interval(ratios)
    user_ratios = [a / b for a, b in zip(user["this"], user["other"], strict=True)]
    user_interval = median_interval(user_ratios)
    return {
        "cpu_us": {name: round(statistics.median(values), 1) for name, values in cpu.items()},
        "ratio": round(statistics.median(ratios), 3),
        "interval": [round(bound, 3) for bound in interval],
        "verdict": verdict(interval, target),
        # Where the time went: the client's own code (user) and the kernel's work for its
        # system calls (system: the sends and receives, the loopback TCP stack), which no
        # change to the client's Python reaches.
        "user_us": {name: round(statistics.median(values), 1) for name, values in user.items()},
        "system_us": {name: round(statistics.median(values), 1) for name, values in system.items()},
        "user_ratio": round(statistics.median(user_ratios), 3),
        "user_interval": [round(bound, 3) for bound in user_interval],
        "user_verdict": verdict(user_interval, target),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=pathlib.Path, required=True, help="the other checkout")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--requests", type=int, default=REQUESTS_PER_ROUND)
    parser.add_argument("--target", type=float, default=TARGET)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not (args.tree / "src" / "keepwarm").is_dir():
        print(f"{args.tree} has no src/keepwarm: pass a keepwarm checkout", file=sys.stderr)
        return 2
    from request_path import on_nginx  # the same servers as the request-path benchmark

    results = on_nginx(
        lambda url, verify: measure(args.tree, url, verify, args.rounds, args.requests, args.target)
    )
    if results is None:
        return 2
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"client CPU per request, this tree over {args.tree} (nginx, {args.rounds} "
        f"alternating rounds of {args.requests}; target {args.target:g})"
    )
    for scheme, result in results.items():
        low, high = result["interval"]
        print(
            f"  {scheme:<5} {result['cpu_us']['this']:7.1f} against "
            f"{result['cpu_us']['other']:7.1f} us: {result['ratio']:.3f} "
            f"[{low:.3f}, {high:.3f}] {result['verdict']}"
        )
        user_low, user_high = result["user_interval"]
        print(
            f"        user {result['user_us']['this']:.1f} against "
            f"{result['user_us']['other']:.1f} us: {result['user_ratio']:.3f} "
            f"[{user_low:.3f}, {user_high:.3f}] {result['user_verdict']}; system "
            f"{result['system_us']['this']:.1f} against {result['system_us']['other']:.1f} us"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
