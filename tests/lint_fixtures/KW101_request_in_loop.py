"""KW101 request-in-loop: the module-level API called once per loop iteration.

Every offending line ends with an expect comment naming its code; the others must
produce nothing (tests/test_lint.py).
"""

from __future__ import annotations

import time

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


def wait_until_up(address: str) -> str:  # hvac's tests: a polling loop
    attempts = 20
    while attempts > 0:
        try:
            requests.get(f"http://{address}/health", timeout=5).raise_for_status()
            return address
        except requests.RequestException:
            time.sleep(0.5)
            attempts -= 1
    raise RuntimeError("not up")


def activate(url: str) -> None:  # praw's release tool: a retry loop
    retries = 0
    while True:
        if requests.patch(url, timeout=5).status_code == 204:
            break
        retries += 1
        time.sleep(30)


def crawl_politely() -> None:  # sleeps, but never leaves early: reported
    for url in URLS:
        requests.get(url, timeout=5)  # expect: KW101
        time.sleep(1)


def poll_each(urls: list[str]) -> None:  # a loop inside the retry loop still counts
    while True:
        for url in urls:
            requests.get(url, timeout=5)  # expect: KW101
        if urls:
            break
        time.sleep(1)
