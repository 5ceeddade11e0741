"""Client CPU per request: keepwarm.Session against the floor of any client of requests' API.

Issue 16's stretch asks for 0.6 of 16bb57c's client CPU per request, "the floor of a client
that returns requests' objects". This measures that floor in the same process as
keepwarm, on the same server, so the stretch can be read against it:

* ``keepwarm``: ``keepwarm.Session().get(url).content``;
* ``requests_objects``: the least a client can do and still return what requests' API
  returns: a ``PreparedRequest``, a ``requests.Response`` (requests' own constructor) with
  its ``CaseInsensitiveDict`` headers, encoding, elapsed time, and urllib3's
  ``HTTPResponse`` as ``raw`` (with http.client's response under it as urllib3 keeps it),
  the body read. One http.client connection, kept alive, with a socket timeout; keepwarm's
  own lean pieces where they are cheaper (its header parser and body reader, its
  ``HTTPHeaderDict`` and ``CaseInsensitiveDict`` fillers). No pool, retries, hooks,
  cookies, redirects, proxies or environment: none of requests' behaviour, only its
  objects;
* ``http_client``: http.client with keepwarm's header parser, returning the body bytes;
* ``urllib3``: ``urllib3.PoolManager().request(...).data``, for reference.

The clients take turns (order rotating each round), each doing ``--requests`` sequential
GETs of a small body per round, timed by ``time.process_time``. Figures are medians over
rounds; ratios are medians of per-round ratios to keepwarm. Server: nginx ``return 200``
(HTTP and HTTPS); nginx must be on PATH.

    .venv/bin/python benchmarks/requests_floor.py [--rounds 9] [--requests 2000] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import ssl
import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

ROUNDS = 9
REQUESTS_PER_ROUND = 2000
CLIENTS = ("keepwarm", "requests_objects", "http_client", "urllib3")


def _connection(url: str, verify: Any) -> http.client.HTTPConnection:
    from keepwarm._upstream.wire import FastHeadersHTTPResponse

    parts = urlsplit(url)
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=verify)
        conn = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=7, context=context
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=7)
    conn.response_class = FastHeadersHTTPResponse  # keepwarm's parser and body reader
    return conn


def _clients(
    url: str, verify: Any, closing: contextlib.ExitStack
) -> dict[str, Callable[[], bytes]]:
    import requests
    import urllib3
    from requests.cookies import RequestsCookieJar
    from requests.models import PreparedRequest, Response
    from requests.utils import default_headers, get_encoding_from_headers
    from urllib3.response import HTTPResponse

    import keepwarm
    from keepwarm._upstream.connection import header_dict
    from keepwarm._upstream.transport import _response_headers

    session = closing.enter_context(keepwarm.Session(verify=verify))
    pool = urllib3.PoolManager(
        cert_reqs="CERT_REQUIRED" if verify is not True else "CERT_NONE",
        ca_certs=verify if isinstance(verify, str) else None,
        timeout=urllib3.Timeout(connect=3, read=7),
        retries=urllib3.Retry(3, redirect=False),
    )
    closing.callback(pool.clear)
    plain = _connection(url, verify)
    floor = _connection(url, verify)
    closing.callback(plain.close)
    closing.callback(floor.close)
    path = urlsplit(url).path or "/"
    session_headers = default_headers()

    def with_keepwarm() -> bytes:
        return session.get(url).content

    def with_urllib3() -> bytes:
        return pool.request("GET", url).data

    def with_http_client() -> bytes:
        plain.request("GET", path, headers=dict(session_headers))
        return plain.getresponse().read()

    def with_requests_objects() -> bytes:
        prepared = PreparedRequest()
        prepared.method = "GET"
        prepared.url = url
        prepared.headers = session_headers.copy()
        prepared.body = None
        prepared.hooks = {"response": []}
        prepared._cookies = RequestsCookieJar()  # what prepare() sets
        started = time.perf_counter()
        floor.request("GET", path, headers=dict(prepared.headers))
        head = floor.getresponse()
        raw = HTTPResponse(
            body=head,
            headers=header_dict(head.msg._headers),  # type: ignore[attr-defined]
            status=head.status,
            version=head.version,
            reason=head.reason,
            preload_content=False,
            decode_content=False,
            original_response=head,
            request_method="GET",
            request_url=url,
        )
        response = Response()
        response.status_code = raw.status
        response.headers = _response_headers(raw.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = raw
        response.reason = raw.reason
        response.url = url
        response.request = prepared
        response.elapsed = timedelta(seconds=time.perf_counter() - started)
        response._content = head.read()  # what .content caches
        response._content_consumed = True
        assert isinstance(response, requests.Response)
        return response.content

    return {
        "keepwarm": with_keepwarm,
        "requests_objects": with_requests_objects,
        "http_client": with_http_client,
        "urllib3": with_urllib3,
    }


def _cpu_per_request(get: Callable[[], bytes], n: int) -> float:
    started = time.process_time()
    for _ in range(n):
        get()
    return (time.process_time() - started) / n * 1e6


def measure(url: str, verify: Any, rounds: int, n: int) -> dict[str, Any]:
    with contextlib.ExitStack() as closing:
        return _measure(_clients(url, verify, closing), rounds, n)


def _measure(clients: dict[str, Callable[[], bytes]], rounds: int, n: int) -> dict[str, Any]:
    bodies = {name: get() for name, get in clients.items()}
    if len(set(bodies.values())) != 1:
        raise SystemExit(f"the clients read different bodies: {bodies}")
    for get in clients.values():
        _cpu_per_request(get, 200)  # connections open, caches warm
    cpu: dict[str, list[float]] = {name: [] for name in CLIENTS}
    for index in range(rounds):
        order = CLIENTS[index % len(CLIENTS) :] + CLIENTS[: index % len(CLIENTS)]
        for name in order:
            cpu[name].append(_cpu_per_request(clients[name], n))
    keep = cpu["keepwarm"]
    return {
        "cpu_us": {name: round(statistics.median(values), 1) for name, values in cpu.items()},
        "over_keepwarm": {
            name: round(statistics.median(c / k for c, k in zip(values, keep, strict=True)), 3)
            for name, values in cpu.items()
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--requests", type=int, default=REQUESTS_PER_ROUND)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from request_path import on_nginx  # the same servers as the request-path benchmark

    results = on_nginx(lambda url, verify: measure(url, verify, args.rounds, args.requests))
    if results is None:
        return 2
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"client CPU per request, nginx, medians of {args.rounds} rounds of {args.requests}")
    for scheme, result in results.items():
        print(f"\n{scheme}")
        for name in CLIENTS:
            us = result["cpu_us"][name]
            ratio = result["over_keepwarm"][name]
            print(f"  {name:<17} {us:7.1f} us   {ratio:.3f} of keepwarm's")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
