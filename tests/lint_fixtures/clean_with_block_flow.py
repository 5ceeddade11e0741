"""Clean: a ``with requests.Session()`` block that serves a whole flow.

Nothing in this file may produce a finding (tests/test_lint.py).
"""

from __future__ import annotations

import requests

BASE = "https://api.example.com"


def sync(ids: list[int]) -> list[dict[str, object]]:
    results = []
    with requests.Session() as session:
        session.headers["Authorization"] = "Bearer token"
        session.post(f"{BASE}/login", json={"user": "me"}, timeout=10)
        for item in ids:
            response = session.get(f"{BASE}/items/{item}", timeout=10)
            response.raise_for_status()
            results.append(response.json())
    return results


def main() -> None:
    with requests.Session() as session:
        pages = [session.get(f"{BASE}/page/{n}", timeout=10) for n in range(10)]
    print(len(pages))


if __name__ == "__main__":
    main()
