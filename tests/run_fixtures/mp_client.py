"""multiprocessing under ``keepwarm run``: the parent makes 2 requests, then 2 children
(start method argv[2]: fork or spawn) make 5 each, to BASE_URL (argv[1])."""

from __future__ import annotations

import multiprocessing
import sys

import requests


def work(base_url: str) -> None:
    with requests.Session() as session:
        for i in range(5):
            session.get(f"{base_url}/?who=child&i={i}").raise_for_status()


def main() -> int:
    base_url, method = sys.argv[1], sys.argv[2]
    for _ in range(2):
        requests.get(f"{base_url}/?who=parent").raise_for_status()
    context = multiprocessing.get_context(method)
    children = [context.Process(target=work, args=(base_url,)) for _ in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join(30)
    print("children exit codes", [child.exitcode for child in children])
    return 0


if __name__ == "__main__":
    sys.exit(main())
