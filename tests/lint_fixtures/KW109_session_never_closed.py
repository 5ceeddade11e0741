"""KW109 session-never-closed: a session in a function, a script or a test that nothing
closes.

Every offending line ends with an expect comment naming its code; the others must
produce nothing (tests/test_lint.py).
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time

import requests
from requests import Session


def crawl(urls: list[str]) -> None:
    session = requests.Session()  # expect: KW109
    for url in urls:
        session.get(url, timeout=5)


def login_then_fetch(url: str) -> bytes:
    s = Session()  # expect: KW109
    s.post("https://example.com/login", data={"user": "u"}, timeout=5)
    return s.get(url, timeout=5).content


SCRIPT_SESSION = requests.Session()  # expect: KW109


# Quiet: closed, closed by a with block or at exit, or handed over.


def closed(urls: list[str]) -> None:
    session = requests.Session()
    try:
        for url in urls:
            session.get(url, timeout=5)
    finally:
        session.close()


def with_block(urls: list[str]) -> None:
    with requests.Session() as session:
        for url in urls:
            session.get(url, timeout=5)


def with_name(urls: list[str]) -> None:
    session = requests.Session()
    with session:
        for url in urls:
            session.get(url, timeout=5)


def at_exit(urls: list[str]) -> None:
    session = requests.Session()
    atexit.register(session.close)
    for url in urls:
        session.get(url, timeout=5)


def returned() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = "app/1.0"
    return session


def handed_over(stack: contextlib.ExitStack, urls: list[str]) -> None:
    session = requests.Session()
    stack.enter_context(session)
    for url in urls:
        session.get(url, timeout=5)


CLOSED_AT_THE_END = requests.Session()


if __name__ == "__main__":
    for page in ("https://example.com/a", "https://example.com/b"):
        SCRIPT_SESSION.get(page, timeout=5)
        CLOSED_AT_THE_END.get(page, timeout=5)
    CLOSED_AT_THE_END.close()


# Found on real code (docs/lint/real-code.md): quiet too.


class Extractor:  # gallery-dl: stored on `self` in the same statement
    def _init_session(self) -> None:
        self.session = session = requests.Session()
        session.headers.clear()


def prepare_only() -> None:  # requests-toolbelt's tests: no request, no connection
    s = requests.Session()
    s.prepare_request(requests.Request("GET", "https://api.example.com/users"))


def version_check_thread(stop: threading.Event) -> None:  # changedetection.io: lives
    session = requests.Session()  # as long as the process, like a module-level one
    while not stop.is_set():
        session.post("https://example.com/check-ver", timeout=5)
        stop.wait(86400)


def worker_forever(url: str) -> None:
    session = requests.Session()
    while True:
        session.get(url, timeout=5)
        time.sleep(10)
