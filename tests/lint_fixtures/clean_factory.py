"""Clean: a factory that builds, tunes and returns its session.

Nothing in this file may produce a finding (tests/test_lint.py).
"""

from __future__ import annotations

import functools

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry


def make_session(token: str) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=Retry(total=3))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"Authorization": f"Bearer {token}"})
    return session


@functools.cache
def shared_session() -> requests.Session:
    return make_session("token")


def sessions_by_host(hosts: list[str]) -> dict[str, requests.Session]:
    return {host: requests.Session() for host in hosts}


def fetch(url: str) -> bytes:
    return shared_session().get(url, timeout=5).content
