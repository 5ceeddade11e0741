"""KW103 missing-timeout: requests that can wait forever.

Every offending line ends with an expect comment naming its code; the others must
produce nothing (tests/test_lint.py).
"""

from __future__ import annotations

from typing import Any

import requests
from requests import Session
from requests.adapters import HTTPAdapter

import keepwarm

URL = "https://example.com/items"


def module_api(url: str) -> None:
    requests.get(url)  # expect: KW103
    requests.post(url, json={})  # expect: KW103
    requests.request("GET", url)  # expect: KW103
    requests.get(  # expect: KW103
        url,
        params={"q": "1"},
    )


def local_session(url: str) -> None:
    s = requests.Session()
    s.get(url)  # expect: KW103
    s.request("GET", url)  # expect: KW103
    s.close()


def with_session(urls: list[str]) -> None:
    with Session() as s:
        for url in urls:
            s.patch(url, data=b"")  # expect: KW103


def plain_adapter(url: str) -> None:
    s = requests.Session()
    adapter = HTTPAdapter(pool_maxsize=20, pool_connections=20)
    s.mount("https://", adapter)
    s.mount("http://", adapter)
    s.get(url)  # expect: KW103
    s.get(url, timeout=5)
    s.close()


class Api:
    def __init__(self) -> None:
        self.http = requests.Session()

    def items(self) -> Any:
        return self.http.get(URL)  # expect: KW103

    def close(self) -> None:
        self.http.close()


def annotated(session: requests.Session, url: str) -> Any:
    return session.delete(url)  # expect: KW103


def optional(session: requests.Session | None, url: str) -> None:
    if session is not None:
        session.put(url)  # expect: KW103


def string_annotation(session: requests.Session, url: str) -> None:
    session.options(url)  # expect: KW103


SHARED = requests.Session()


def module_session(url: str) -> Any:
    return SHARED.head(url)  # expect: KW103


# Quiet: a timeout is given, may be given, or comes from the session.


def with_timeouts(url: str, s: requests.Session) -> None:
    requests.get(url, timeout=5)
    s.get(url, timeout=(3, 7))
    s.request("GET", url, None, None, None, None, None, None, 5)
    s.get(url, timeout=None)


def forwarded(url: str, s: requests.Session, *args: Any, **kwargs: Any) -> None:
    requests.get(url, **kwargs)
    s.request(*args)
    s.post(url, **kwargs)


def keepwarm_sessions(url: str, shared: keepwarm.Session) -> None:
    keepwarm.session().get(url)
    own = keepwarm.Session()
    own.get(url)
    own.post(url)
    own.close()
    shared.get(url)


def unknown_receivers(client: Any, cache: dict[str, str], url: str) -> None:
    client.get(url)
    cache.get(url)


class TimeoutAdapter(HTTPAdapter):
    def send(self, request: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", 5)
        return super().send(request, **kwargs)


def custom_adapter(url: str) -> None:
    s = requests.Session()
    s.mount("https://", TimeoutAdapter())
    s.mount("http://", TimeoutAdapter())
    s.get(url)
    s.get(url)
    s.close()


class WithTimeoutAdapter:
    def __init__(self) -> None:
        self.http = requests.Session()
        self.http.mount("https://", TimeoutAdapter())
        self.http.mount("http://", TimeoutAdapter())

    def items(self) -> Any:
        return self.http.get(URL)


class Reassigned:
    def __init__(self) -> None:
        self.http = requests.Session()

    def use_keepwarm(self) -> None:
        self.http = keepwarm.session()

    def items(self) -> Any:
        return self.http.get(URL)


def shadowed(SHARED: Any) -> None:
    SHARED.get(URL)


def replaces_a_response(session: requests.Session, other: requests.Response) -> None:
    """`response.request = ...` sets an attribute: it gives no session a timeout."""
    response = session.get(URL)  # expect: KW103
    response.request = other.request
