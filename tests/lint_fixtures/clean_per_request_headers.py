"""Clean: per-request ``headers=`` on a shared session, in a loop.

Nothing in this file may produce a finding (tests/test_lint.py).
"""

from __future__ import annotations

import requests

SESSION = requests.Session()
SESSION.headers.update({"User-Agent": "crawler/1.0"})


def fetch_as(users: dict[str, str], url: str) -> list[int]:
    codes = []
    for user, token in users.items():
        response = SESSION.get(
            url, headers={"Authorization": f"Bearer {token}", "X-User": user}, timeout=5
        )
        codes.append(response.status_code)
    return codes
