"""KW107 headers-mutated-in-loop: a shared session's headers changed per iteration.

Every offending line ends with an expect comment naming its code; the others must
produce nothing (tests/test_lint.py).
"""

from __future__ import annotations

import requests

import keepwarm

SESSION = requests.Session()


def as_each_user(tokens: dict[str, str], url: str) -> None:
    for token in tokens.values():
        SESSION.headers["Authorization"] = f"Bearer {token}"  # expect: KW107
        SESSION.get(url, timeout=5)


def update_in_loop(pages: int, url: str) -> None:
    with requests.Session() as session:
        for page in range(pages):
            session.headers.update({"X-Page": str(page)})  # expect: KW107
            session.get(url, timeout=5)
            del session.headers["X-Page"]  # expect: KW107


class Crawler:
    def __init__(self) -> None:
        self.session = keepwarm.Session()

    def crawl(self, agents: list[str], url: str) -> None:
        for agent in agents:
            self.session.headers.setdefault("User-Agent", agent)  # expect: KW107
            self.session.get(url)


# Quiet: headers set once, per request, or on a session made in the loop.


def once(url: str) -> None:
    SESSION.headers["User-Agent"] = "crawler/1.0"
    for page in range(3):
        SESSION.get(url, params={"page": page}, headers={"X-Page": str(page)}, timeout=5)


def fresh_each_time(tokens: list[str], url: str) -> list[requests.Session]:
    sessions = []
    for token in tokens:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        sessions.append(session)
    return sessions


def other_headers(rows: list[dict[str, str]]) -> None:
    headers: dict[str, str] = {}
    for row in rows:
        headers.update(row)
    print(headers)
