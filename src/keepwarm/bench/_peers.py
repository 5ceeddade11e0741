"""The clients ``keepwarm bench`` compares, each behind the same small interface.

Every client sends ``GET`` to the same URL, verifies TLS against the same CA bundle and
reads the whole body, called the way its documentation shows: the CA bundle is set once
on the client (``session.verify``, ``verify=ssl_context``, ``ca_certs=``...), requests'
clients get an explicit timeout (keepwarm has its own). Proxy variables are removed from
the environment for the run (see ``_runner``), so every client connects directly. Against
``--url`` no client follows redirects. Each keeps one client object for the whole run
(that is the point), except ``cold``, which is what ``requests.get()`` does: a new
session, connection, TLS context and handshake per call.

niquests is never loaded: installing it brings urllib3-future, which replaces urllib3 in
the same environment, and would change what requests and keepwarm run on.
"""

from __future__ import annotations

import importlib
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from keepwarm.bench._child import BenchError

if TYPE_CHECKING:
    import ssl

__all__ = [
    "CLIENTS",
    "CONCURRENT_CLIENTS",
    "SKIPPED_ALWAYS",
    "Client",
    "Deadline",
    "Target",
    "client_versions",
]

#: Clients that are never run, and why.
SKIPPED_ALWAYS = {
    "niquests": "it replaces urllib3; run it in its own virtualenv",
}

_TIMEOUT = 10.0


class Deadline(Exception):
    """The run's time budget (``--max-seconds``) ran out."""


@dataclass(frozen=True)
class Target:
    """Where the clients send their requests, and what they must get back."""

    url: str
    #: CA bundle every client verifies against (also set for plain HTTP; unused there).
    bundle: str
    #: The body a local server answers; None for ``--url`` (any body, status < 400).
    expect_body: bytes | None = b"ok"

    @property
    def remote(self) -> bool:
        """``--url``: someone's server, where no client follows redirects."""
        return self.expect_body is None

    def ssl_context(self) -> ssl.SSLContext:
        import ssl  # here: the keepwarm command's parser imports this module for CLIENTS

        return ssl.create_default_context(cafile=self.bundle)

    def check(self, status: int, body: bytes) -> None:
        if self.expect_body is None:
            if status >= 400:
                raise BenchError(f"{self.url} answered {status}; benchmark a URL that answers 2xx")
            return
        if status != 200 or body != self.expect_body:
            raise BenchError(
                f"the server answered {status} {body[:60]!r}, expected 200 {self.expect_body!r}"
            )


class Client(ABC):
    """One client object, used for every request of its scenario."""

    key: ClassVar[str]
    label: ClassVar[str]
    #: Module that must be importable, or None.
    requires: ClassVar[str | None] = None

    def __init__(self, target: Target) -> None:
        self.target = target

    @classmethod
    def unavailable(cls) -> str | None:
        """Why this client cannot run here, or None."""
        if cls.requires is None:
            return None
        try:
            importlib.import_module(cls.requires)
        except ImportError:
            return f"not installed: pip install 'keepwarm[bench]' (or {cls.requires})"
        return None

    @abstractmethod
    def get(self) -> None:
        """One request; raises BenchError on an unexpected answer."""

    def batch(self, n: int, deadline: float) -> list[float]:
        """*n* sequential requests; their latencies in seconds."""
        perf = time.perf_counter
        get = self.get
        latencies = []
        for _ in range(n):
            if time.monotonic() > deadline:
                raise Deadline
            t0 = perf()
            get()
            latencies.append(perf() - t0)
        return latencies

    def close(self) -> None:  # noqa: B027 - most clients hold nothing to close
        """Release the client's connections."""

    def idle_expired(self) -> int | None:
        """Idle connections the client closed on its own for idling too long (keepwarm's
        ``keepalive_expiry``), so far; None when the client does not tell."""
        return None


class ColdRequests(Client):
    key = "cold"
    label = "requests.get() per call"

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        import requests

        self._get = requests.get
        self._kwargs: dict[str, Any] = {"verify": target.bundle, "timeout": _TIMEOUT}
        if target.remote:
            self._kwargs["allow_redirects"] = False

    def get(self) -> None:
        r = self._get(self.target.url, **self._kwargs)
        self.target.check(r.status_code, r.content)


class _RequestsLike(Client):
    session: Any
    _kwargs: dict[str, Any]

    def get(self) -> None:
        r = self.session.get(self.target.url, **self._kwargs)
        self.target.check(r.status_code, r.content)

    def close(self) -> None:
        self.session.close()


class RequestsSession(_RequestsLike):
    key = "requests"
    label = "requests.Session"

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        import requests

        self.session = requests.Session()  # requests' default pools: 10 hosts x 10
        self.session.verify = target.bundle
        self._kwargs = {"timeout": _TIMEOUT}  # requests has none by default
        if target.remote:
            self._kwargs["allow_redirects"] = False


class KeepwarmSession(_RequestsLike):
    key = "keepwarm"
    label = "keepwarm.Session"

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        import keepwarm

        self.session = keepwarm.Session(verify=target.bundle)  # its own (3, 7) s timeout
        self._kwargs = {"allow_redirects": False} if target.remote else {}

    def idle_expired(self) -> int | None:
        return int(self.session.stats().idle_expired)


class HttpxClient(Client):
    key = "httpx"
    label = "httpx.Client"
    requires = "httpx"

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        import httpx

        self._client = httpx.Client(verify=target.ssl_context(), trust_env=False, timeout=_TIMEOUT)

    def get(self) -> None:
        r = self._client.get(self.target.url)
        self.target.check(r.status_code, r.content)

    def close(self) -> None:
        self._client.close()


class Urllib3Pool(Client):
    key = "urllib3"
    label = "urllib3.PoolManager"

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        import urllib3

        self._pool = urllib3.PoolManager(
            cert_reqs="CERT_REQUIRED", ca_certs=target.bundle, timeout=_TIMEOUT, retries=False
        )

    def get(self) -> None:
        if self.target.remote:
            r = self._pool.request("GET", self.target.url, redirect=False)
        else:
            r = self._pool.request("GET", self.target.url)
        self.target.check(r.status, r.data)

    def close(self) -> None:
        self._pool.clear()


class HttpClientRaw(Client):
    """``http.client`` with one kept-alive connection: the floor for a Python client."""

    key = "http.client"
    label = "http.client keep-alive"

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        import http.client

        parts = urlsplit(target.url)
        host = parts.hostname or "127.0.0.1"
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._conn: http.client.HTTPConnection
        if parts.scheme == "https":
            self._conn = http.client.HTTPSConnection(
                host, parts.port, timeout=_TIMEOUT, context=target.ssl_context()
            )
        else:
            self._conn = http.client.HTTPConnection(host, parts.port, timeout=_TIMEOUT)

    def get(self) -> None:
        self._conn.request("GET", self._path)
        response = self._conn.getresponse()
        body = response.read()
        self.target.check(response.status, body)

    def close(self) -> None:
        self._conn.close()


class AiohttpSession(Client):
    """One ``aiohttp.ClientSession`` in one event loop, awaiting requests one by one."""

    key = "aiohttp"
    label = "aiohttp.ClientSession"
    requires = "aiohttp"

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        import asyncio

        import aiohttp

        self._asyncio = asyncio
        self._loop = asyncio.new_event_loop()
        context = target.ssl_context()

        async def make() -> Any:
            return aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=context),
                timeout=aiohttp.ClientTimeout(total=_TIMEOUT),
            )

        try:
            self._session = self._loop.run_until_complete(make())
        except BaseException:
            self._loop.close()
            raise

    async def _one(self) -> None:
        follow = not self.target.remote
        async with self._session.get(self.target.url, allow_redirects=follow) as r:
            body = await r.read()
            self.target.check(r.status, body)

    async def _batch(self, n: int, deadline: float) -> list[float]:
        perf = time.perf_counter
        latencies = []
        for _ in range(n):
            if time.monotonic() > deadline:
                raise Deadline
            t0 = perf()
            await self._one()
            latencies.append(perf() - t0)
        return latencies

    def get(self) -> None:
        self._loop.run_until_complete(self._one())

    def batch(self, n: int, deadline: float) -> list[float]:
        return self._loop.run_until_complete(self._batch(n, deadline))

    def close(self) -> None:
        try:
            self._loop.run_until_complete(self._session.close())
            # Let the transports' close callbacks run before the loop goes away.
            self._loop.run_until_complete(self._asyncio.sleep(0.01))
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        finally:
            self._loop.close()


#: Every sequential scenario, in report order. ``requests`` is the baseline.
CLIENTS: dict[str, type[Client]] = {
    cls.key: cls
    for cls in (
        ColdRequests,
        RequestsSession,
        KeepwarmSession,
        HttpxClient,
        Urllib3Pool,
        AiohttpSession,
        HttpClientRaw,
    )
}
#: The clients of the concurrency runs: default-pool requests against keepwarm.
CONCURRENT_CLIENTS: dict[str, type[Client]] = {
    "requests": RequestsSession,
    "keepwarm": KeepwarmSession,
}


def client_versions() -> dict[str, str | None]:
    """Installed versions of the libraries measured (None: not installed)."""
    import importlib.metadata  # ~12 ms: only when a report is made

    versions: dict[str, str | None] = {}
    for name in ("requests", "urllib3", "httpx", "aiohttp", "rich"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    try:
        versions["urllib3-future"] = importlib.metadata.version("urllib3-future")
    except importlib.metadata.PackageNotFoundError:
        pass
    return versions
