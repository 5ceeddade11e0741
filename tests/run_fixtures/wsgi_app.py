"""A WSGI app for gunicorn under ``keepwarm run`` (tests/test_run.py).

Loaded with ``--preload``, the master makes PRELOAD_REQUESTS requests at import, before
it forks the workers: they inherit those counts and must not report them again. Each
request to the app makes one ``requests.get``, one ``with requests.Session()`` request
and one through a client object's own Session, to UPSTREAM (an HTTPS server).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import requests

UPSTREAM = os.environ["UPSTREAM_URL"]
PRELOAD_REQUESTS = 4

for _ in range(PRELOAD_REQUESTS):
    requests.get(f"{UPSTREAM}/?who=preload").raise_for_status()


class Client:
    def __init__(self) -> None:
        self.session = requests.Session()


_client = Client()


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    requests.get(f"{UPSTREAM}/?who=get").raise_for_status()
    with requests.Session() as session:
        session.get(f"{UPSTREAM}/cookies?who=block").raise_for_status()
    _client.session.get(f"{UPSTREAM}/?who=client").raise_for_status()
    body = f"worker {os.getpid()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
