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


def _run(module: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], env=env, check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    package = pathlib.Path(keepwarm.__file__).parent
    compileall.compile_dir(str(package), quiet=1)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(package.parent), env.get("PYTHONPATH", "")])
    times: dict[str, list[float]] = {"sys": [], "requests": [], "keepwarm": []}
    for index in range(args.runs):
        order = ("sys", "requests", "keepwarm") if index % 2 else ("keepwarm", "requests", "sys")
        for module in order:
            times[module].append(_run(module, env))
    bare, requests_, keepwarm_ = (
        statistics.median(times[m]) for m in ("sys", "requests", "keepwarm")
    )
    print(f"python -c 'import sys': {bare * 1000:.1f} ms")
    print(f"import requests: {requests_ * 1000:.1f} ms; import keepwarm: {keepwarm_ * 1000:.1f} ms")
    print(f"keepwarm / requests: {keepwarm_ / requests_:.3f} (target <= 1.05)")
    print(
        "imports alone (interpreter start taken off): "
        f"{(keepwarm_ - bare) / (requests_ - bare):.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
