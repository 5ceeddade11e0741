"""The mixed program's calls in an ASGI app for hypercorn's ``--workers`` (spawned
``multiprocessing`` children) under ``keepwarm run`` (tests/test_run.py): each request
makes one ``requests.get``, one ``with requests.Session()`` request and one through a
client object's own Session, to UPSTREAM_URL (blocking calls: a test, not a pattern)."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

import requests
from mixed_client import WeatherClient, per_call_session

UPSTREAM = os.environ["UPSTREAM_URL"]
client = WeatherClient(UPSTREAM)


async def app(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    requests.get(f"{UPSTREAM}/?who=get").raise_for_status()
    block = per_call_session(UPSTREAM, 0)
    seen = client.cookies_seen()
    body = f"{os.getpid()} {block} {seen}\n".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
