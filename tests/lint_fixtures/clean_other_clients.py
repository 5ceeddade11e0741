"""Clean: names that look like requests' but are not (another client, a local ``get``,
a ``Session`` class of the project's own).

Nothing in this file may produce a finding (tests/test_lint.py).
"""

from __future__ import annotations

from typing import Any

import requests.exceptions


class Session:
    def get(self, url: str) -> str:
        return url


def get(url: str) -> str:
    return url


def loop(client: Any, urls: list[str]) -> list[Any]:
    mine = Session()
    try:
        return [(client.get(url), get(url), mine.get(url)) for url in urls]
    except requests.exceptions.RequestException:
        return []


def per_call(url: str) -> str:
    return Session().get(url)
