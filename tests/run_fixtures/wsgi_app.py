"""The mixed program's calls inside a pre-fork server: a WSGI app for gunicorn under
``keepwarm run`` (tests/test_run.py).

Loaded with ``--preload``, the master makes PRELOAD_REQUESTS requests at import (two
``requests.get``, and the client object logs in and reads its cookie) before it forks
the workers: they inherit those counts and must not report them again. Without
``--preload`` each worker loads it, and makes them, itself. Each request to
the app makes one ``requests.get``, one ``with requests.Session()`` request and one
through the client's own Session (which sends its cookie, and only it), to UPSTREAM_URL.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import requests
from mixed_client import WeatherClient, per_call_session

UPSTREAM = os.environ["UPSTREAM_URL"]
PRELOAD_REQUESTS = 4

for _ in range(2):
    requests.get(f"{UPSTREAM}/?who=preload").raise_for_status()
client = WeatherClient(UPSTREAM)
client.login()
assert client.cookies_seen() == {"sid": "client-secret"}


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    requests.get(f"{UPSTREAM}/?who=get").raise_for_status()
    block = per_call_session(UPSTREAM, 0)
    seen = client.cookies_seen()
    body = f"{os.getpid()} {block} {seen}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
