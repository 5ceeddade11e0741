"""KW108 use-after-close: a request on a session already closed in the same block.

Every offending line ends with an expect comment naming its code; the others must
produce nothing (tests/test_lint.py).
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

import keepwarm


def closed_then_used(url: str) -> Any:
    session = requests.Session()
    session.get(url, timeout=5)
    session.close()
    return session.get(url, timeout=5)  # expect: KW108


def after_the_with_block(url: str) -> Any:
    with requests.Session() as session:
        session.get(url, timeout=5)
        session.get(url, timeout=5)
    return session.post(url, timeout=5)  # expect: KW108


class Client:
    def __init__(self) -> None:
        self.http = keepwarm.Session()

    def reset(self, url: str) -> None:
        self.http.close()
        if url:
            self.http.get(url)  # expect: KW108


# Quiet: closed after the last use, reopened, or closed on one branch only.


def closed_last(url: str) -> None:
    session = requests.Session()
    session.get(url, timeout=5)
    session.get(url, timeout=5)
    session.close()


def reopened(url: str) -> None:
    session = requests.Session()
    session.get(url, timeout=5)
    session.close()
    session = requests.Session()
    session.get(url, timeout=5)
    session.close()


def one_branch(url: str, done: bool) -> None:
    session = requests.Session()
    session.get(url, timeout=5)
    if done:
        session.close()
        return
    session.get(url, timeout=5)
    session.close()


def one_with_after_another(url: str) -> None:
    with keepwarm.Session() as s:
        s.get(url)
    with keepwarm.Session(timeout=(1, 5)) as s:
        s.get(url)


def test_closed_sessions_refuse(url: str) -> None:
    session = keepwarm.Session()
    session.close()
    with pytest.raises(keepwarm.SessionClosedError):
        session.get(url)


def other_objects(files: list[Any], url: str) -> None:
    handle = files[0]
    handle.close()
    handle.get(url)
