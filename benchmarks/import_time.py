"""``import keepwarm`` against ``import requests``, each in a fresh interpreter (issue 16:
within 1.05x).

Both are measured from compiled bytecode, as an installed package is: keepwarm's
modules are compiled first (``compileall``; this machine exports
``PYTHONDONTWRITEBYTECODE=1``, which would otherwise make every run compile keepwarm from
source while requests' bytecode came with its wheel). Runs alternate between the two;
medians of the wall time of ``python -c "import X"``, with the bare interpreter's start
shown so the import itself can be compared.

    .venv/bin/python benchmarks/import_time.py [--runs 15]
"""

from __future__ import annotations

import argparse
import compileall
import os
import pathlib
import statistics
import subprocess
import sys
import time

import keepwarm


def _run(statement: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], env=env, check=True)
    return time.perf_counter() - started


#: What is timed. keepwarm's public names load on first use (PEP 562), so ``import
#: keepwarm`` alone loads almost nothing; ``from keepwarm import Session`` is what a
#: program that uses keepwarm pays, and the figure the target is held to.
STATEMENTS = {
    "sys": "import sys",
    "requests": "import requests",
    "keepwarm": "import keepwarm",
    "keepwarm.Session": "from keepwarm import Session",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    package = pathlib.Path(keepwarm.__file__).parent
    compileall.compile_dir(str(package), quiet=1)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(package.parent), env.get("PYTHONPATH", "")])
    times: dict[str, list[float]] = {name: [] for name in STATEMENTS}
    for index in range(args.runs):
        order = list(STATEMENTS) if index % 2 else list(reversed(STATEMENTS))
        for name in order:
            times[name].append(_run(STATEMENTS[name], env))
    median = {name: statistics.median(t) for name, t in times.items()}
    bare, requests_ = median["sys"], median["requests"]
    print(f"python -c 'import sys': {bare * 1000:.1f} ms")
    print(f"import requests: {requests_ * 1000:.1f} ms")
    for name in ("keepwarm", "keepwarm.Session"):
        print(
            f"{STATEMENTS[name]}: {median[name] * 1000:.1f} ms, "
            f"{median[name] / requests_:.3f} of import requests "
            f"(imports alone: {(median[name] - bare) / (requests_ - bare):.3f})"
        )
    print("target: from keepwarm import Session <= 1.05 of import requests")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
