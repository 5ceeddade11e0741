"""Clean: one session for the whole process, or one injected by the caller.

Nothing in this file may produce a finding (tests/test_lint.py).
"""

from __future__ import annotations

from typing import Any

import requests

SESSION = requests.Session()
URLS = ["https://example.com/a", "https://example.com/b"]


def crawl() -> list[int]:
    return [SESSION.get(url, timeout=5).status_code for url in URLS]


def crawl_with(session: requests.Session, urls: list[str]) -> None:
    for url in urls:
        session.get(url, timeout=(3, 7)).raise_for_status()


class Service:
    def __init__(self, session: requests.Session | None = None) -> None:
        self.session = session or requests.Session()

    def fetch_all(self, urls: list[str]) -> list[Any]:
        return [self.session.get(url, timeout=5).json() for url in urls]


class Owned:
    def __init__(self) -> None:
        self.session = requests.Session()

    def fetch_all(self, urls: list[str]) -> list[bytes]:
        return [self.session.get(url, timeout=5).content for url in urls]

    def close(self) -> None:
        self.session.close()
