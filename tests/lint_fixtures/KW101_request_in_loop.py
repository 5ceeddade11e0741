"""KW101 request-in-loop: the module-level API called once per loop iteration.

Every offending line ends with an expect comment naming its code; the others must
produce nothing (tests/test_lint.py).
"""

from __future__ import annotations

import requests
import requests as r
from requests import get, post

URLS = ["https://example.com/a", "https://example.com/b"]


def each_url() -> None:
    for url in URLS:
        requests.get(url, timeout=5)  # expect: KW101


def aliased() -> None:
    for url in URLS:
        r.head(url, timeout=5)  # expect: KW101
        get(url, timeout=5)  # expect: KW101


def while_body() -> None:
    pending = list(URLS)
    while pending:
        post(pending.pop(), data=b"x", timeout=5)  # expect: KW101


def while_test() -> None:
    while requests.get(URLS[0], timeout=5).status_code != 200:  # expect: KW101
        pass


def comprehensions() -> None:
    pages = [requests.get(u, timeout=5) for u in URLS]  # expect: KW101
    codes = {u: requests.request("GET", u, timeout=5).status_code for u in URLS}  # expect: KW101
    sizes = {len(requests.options(u, timeout=5).content) for u in URLS}  # expect: KW101
    lazy = (requests.put(u, timeout=5) for u in URLS)  # expect: KW101
    print(pages, codes, sizes, lazy)


async def async_loop(items: list[str]) -> None:
    for url in items:
        requests.delete(url, timeout=5)  # expect: KW101


def nested_loops() -> None:
    for url in URLS:
        for _ in range(3):
            requests.patch(url, timeout=5)  # expect: KW101


for module_url in URLS:
    requests.get(module_url, timeout=5)  # expect: KW101


# Quiet: each of these calls runs once.


def iterable_runs_once() -> None:
    for item in requests.get(URLS[0], timeout=5).json():
        print(item)
    first = [x for x in requests.get(URLS[0], timeout=5).json()]
    print(first)


def retries() -> requests.Response:
    for _attempt in range(3):
        try:
            return requests.get(URLS[0], timeout=5)
        except requests.ConnectionError:
            continue
    raise RuntimeError("gave up")


def defined_in_a_loop() -> list[object]:
    handlers: list[object] = []
    for url in URLS:

        def fetch(u: str = url) -> requests.Response:
            return requests.get(u, timeout=5)

        handlers.append(fetch)
    return handlers


def else_runs_once() -> None:
    for url in URLS:
        print(url)
    else:
        requests.get(URLS[0], timeout=5)


def other_gets(cache: dict[str, str]) -> None:
    for url in URLS:
        cache.get(url)
