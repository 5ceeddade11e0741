"""KW107 headers-mutated-in-loop: a shared session's headers changed per iteration.

Every offending line ends with an expect comment naming its code; the others must
produce nothing (tests/test_lint.py).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler
from typing import Any

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


class App:  # stands for Flask, FastAPI, Celery... (only the names count)
    def route(self, *a: object, **k: object) -> Any: ...
    def post(self, *a: object, **k: object) -> Any: ...
    def task(self, *a: object, **k: object) -> Any: ...


app = App()


# In a function that runs repeatedly (src/keepwarm/lint/_repeated.py), on a session that
# outlives the run: module-level, a `self` attribute, a parameter.


@app.route("/as/<user>")
def as_user(user: str) -> bytes:
    SESSION.headers["X-User"] = user  # expect: KW107
    return SESSION.get("https://api.example.com/me", timeout=5).content


@app.task()
def with_token(session: requests.Session, token: str) -> None:
    session.headers.update({"Authorization": f"Bearer {token}"})  # expect: KW107
    session.get("https://api.example.com/me", timeout=5)


class Worker:
    def __init__(self) -> None:
        self.http = requests.Session()

    def fetch(self, page: int) -> None:
        self.http.headers["X-Page"] = str(page)  # expect: KW107
        self.http.get("https://api.example.com/items", timeout=5)

    def run(self) -> None:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(self.fetch, range(10)))


# Quiet: headers set once, per request, or on a session made in the loop or in the run.


@app.post("/proxy")
def own_session(token: str) -> bytes:
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {token}"
        session.post("https://api.example.com/login", timeout=5)
        return session.get("https://api.example.com/me", timeout=5).content


@app.route("/plain")
def per_request_headers(user: str) -> bytes:
    return SESSION.get("https://api.example.com/me", headers={"X-User": user}, timeout=5).content


def configure() -> None:  # runs once
    SESSION.headers["User-Agent"] = "crawler/1.0"


class Handler(BaseHTTPRequestHandler):
    def __init__(self) -> None:  # the handler (and its session) is made per request
        self.http = requests.Session()

    def do_GET(self) -> None:
        self.http.headers["X-Path"] = self.path
        self.http.get("https://api.example.com/", timeout=5)
        self.http.close()


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
