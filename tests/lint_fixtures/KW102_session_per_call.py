"""KW102 session-per-call: a Session made for one request (or one loop pass), then dropped.

Every offending line ends with an expect comment naming its code; the others must
produce nothing (tests/test_lint.py).
"""

from __future__ import annotations

from typing import Any

import requests
from requests import Session

URLS = ["https://example.com/a", "https://example.com/b"]


def fetch(url: str) -> bytes:
    session = requests.Session()  # expect: KW102
    return session.get(url, timeout=5).content


def fetch_with(url: str) -> int:
    with Session() as session:  # expect: KW102
        return session.get(url, timeout=5).status_code


def chained(url: str) -> int:
    return requests.Session().get(url, timeout=5).status_code  # expect: KW102


def old_alias(url: str) -> None:
    s = requests.session()  # expect: KW102
    s.head(url, timeout=5)
    s.close()


def with_in_loop() -> None:
    for url in URLS:
        with requests.Session() as s:  # expect: KW102
            s.get(url, timeout=5)


def assigned_in_loop() -> None:
    for url in URLS:
        s = requests.Session()  # expect: KW102
        s.post(url, timeout=5)
        s.get(url, timeout=5)
        s.close()


for module_url in URLS:
    with requests.Session() as module_session:  # expect: KW102
        module_session.get(module_url, timeout=5)


# Quiet: the session lives on, or serves a whole flow.


def factory() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = "app/1.0"
    return session


def direct_factory() -> requests.Session:
    return requests.Session()


def fixture() -> Any:
    with requests.Session() as session:
        yield session


class Client:
    def __init__(self) -> None:
        self.session = requests.Session()


def stored(registry: dict[str, requests.Session], key: str) -> None:
    registry[key] = requests.Session()


def passed_on(url: str) -> None:
    s = requests.Session()
    run(s, url)


def run(session: requests.Session, url: str) -> None:
    session.get(url, timeout=5)


def flow(urls: list[str]) -> None:
    with requests.Session() as s:
        s.post("https://example.com/login", data={"user": "u"}, timeout=5)
        for url in urls:
            s.get(url, timeout=5)


def two_requests(url: str) -> None:
    with requests.Session() as s:
        s.post("https://example.com/login", data={"user": "u"}, timeout=5)
        s.get(url, timeout=5)


def kept_in_a_loop(n: int) -> list[requests.Session]:
    sessions = []
    for _ in range(n):
        sessions.append(requests.Session())
    return sessions


_GLOBAL: requests.Session | None = None


def set_global() -> None:
    global _GLOBAL
    _GLOBAL = requests.Session()
    _GLOBAL.get(URLS[0], timeout=5)


def closure(url: str) -> Any:
    s = requests.Session()

    def again() -> requests.Response:
        return s.get(url, timeout=5)

    s.get(url, timeout=5)
    return again


def no_request() -> None:
    s = requests.Session()
    s.close()


def worker(batches: list[list[str]]) -> None:
    for batch in batches:
        with requests.Session() as s:
            for url in batch:
                s.get(url, timeout=5)


def rebound(url: str, other: requests.Session | None) -> None:
    s = requests.Session()
    if other is not None:
        s = other
    s.get(url, timeout=5)


SCRIPT_SESSION = requests.Session()
SCRIPT_SESSION.get(URLS[0], timeout=5)
