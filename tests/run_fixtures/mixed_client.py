"""A program that knows nothing of keepwarm, the way SDK-heavy code calls requests.

40 HTTPS requests to BASE_URL (argv[1]), the CA from REQUESTS_CA_BUNDLE, one at a time:
10 ``requests.get``/``requests.post`` calls, 10 ``with requests.Session()`` blocks of one
request each, a library-like client holding its own Session (sets a cookie, then 9
requests that send it back), and 10 more plain calls. Prints what it got (no ports, so
the output is the same from run to run) and exits with argv[2] (default 0).

``tests/test_run.py`` runs it with and without ``keepwarm run`` and compares; the
benchmark ``benchmarks/run_program.py`` times it.
"""

from __future__ import annotations

import sys

import requests


class WeatherClient:
    """What an SDK looks like: one Session per client object, its own cookie jar."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "weather-sdk/1.0"

    def login(self) -> str:
        response = self.session.get(f"{self.base_url}/cookies/set?sid=client-secret")
        response.raise_for_status()
        return response.text

    def cookies_seen(self) -> dict[str, str]:
        response = self.session.get(f"{self.base_url}/cookies?who=client")
        response.raise_for_status()
        seen: dict[str, str] = response.json()
        return seen

    def close(self) -> None:
        self.session.close()


def per_call_session(base_url: str, i: int) -> dict[str, str]:
    with requests.Session() as session:
        response = session.get(f"{base_url}/cookies?who=block&i={i}")
        response.raise_for_status()
        seen: dict[str, str] = response.json()
        return seen


def main() -> int:
    base_url = sys.argv[1]
    status = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    for i in range(10):
        if i % 2:
            r = requests.post(f"{base_url}/echo?who=get&i={i}", data=f"body {i}")
            print("post", i, r.status_code, r.json()["body"])
        else:
            r = requests.get(f"{base_url}/?who=get&i={i}")
            print("get", i, r.status_code, r.text)
    for i in range(10):
        print("session block", i, per_call_session(base_url, i))
    client = WeatherClient(base_url)
    print("client login", client.login())
    for i in range(9):
        print("client", i, client.cookies_seen())
    client.close()
    for i in range(10):
        r = requests.get(f"{base_url}/cookies?who=get&i={i + 10}")
        print("get again", i, r.status_code, r.json())
    sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
