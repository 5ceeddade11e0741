"""A worker stopped by SIGTERM under ``keepwarm run``: the parent makes 1 request, starts
a ``multiprocessing`` child (start method argv[2]: fork or spawn) that makes 2 and waits,
then ends it with ``Process.terminate()`` (SIGTERM), as hypercorn's master ends a worker
still running once another has exited; prints the child's exit code."""

from __future__ import annotations

import multiprocessing
import sys
import time
from typing import Any

import requests


def work(base_url: str, ready: Any) -> None:
    with requests.Session() as session:
        for i in range(2):
            session.get(f"{base_url}/?who=child&i={i}").raise_for_status()
    ready.set()
    time.sleep(60)  # ended by the parent's SIGTERM long before


def main() -> int:
    base_url, method = sys.argv[1], sys.argv[2]
    requests.get(f"{base_url}/?who=parent").raise_for_status()
    context = multiprocessing.get_context(method)
    ready = context.Event()
    child = context.Process(target=work, args=(base_url, ready))
    child.start()
    if not ready.wait(30):
        child.kill()
        raise SystemExit("the child did not make its requests within 30 s")
    child.terminate()
    child.join(30)
    print("child exit code", child.exitcode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
