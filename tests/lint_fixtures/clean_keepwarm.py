"""Clean: keepwarm's own sessions (a default timeout, shared pools) and ``install()``.

Nothing in this file may produce a finding (tests/test_lint.py).
"""

from __future__ import annotations

import requests

import keepwarm
from keepwarm import Session, session

keepwarm.install()  # every requests.get() in the process rides one shared pool

URLS = ["https://example.com/a", "https://example.com/b"]


def shared() -> None:
    for url in URLS:
        keepwarm.session().get(url)
        session("api").post(url, json={})


def own() -> None:
    with Session(timeout=(2, 30)) as s:
        for url in URLS:
            s.get(url)


def installed() -> list[int]:
    return [requests.get(url).status_code for url in URLS]
