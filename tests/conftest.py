"""Shared fixtures: an isolated environment, a throwaway CA, and local servers.

Every server listens on 127.0.0.1 port 0; nothing in the suite talks to any other host.
"""

from __future__ import annotations

import functools
import os
import pathlib
import ssl
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

import pytest
import trustme

from servers import (
    Handler,
    LocalServer,
    RawServer,
    backlog_full_address,
    default_handler,
)
from servers.asgi import HypercornServer
from servers.h2 import H2Server
from servers.nghttpd import NghttpdServer, nghttpd_missing
from servers.nginx_h2 import NginxH2, nginx_h2_missing

# Variables that change what requests (and so keepwarm) does behind a test's back: these
# machines export CA-bundle variables that override ``Session.verify`` in plain requests,
# and a proxy variable would send loopback traffic elsewhere.
_ENV_VARIABLES = (
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "AWS_CA_BUNDLE",
    "NIX_SSL_CERT_FILE",
    "NETRC",
)


@pytest.fixture(autouse=True)
def _isolated_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> pathlib.Path:
    """Run every test without CA-bundle, proxy, netrc and KEEPWARM_* variables, and with
    an empty HOME so no ``~/.netrc`` is read; returns that HOME."""
    for name in list(os.environ):
        upper = name.upper()
        if upper in _ENV_VARIABLES or upper.endswith("_PROXY") or upper.startswith("KEEPWARM_"):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def _fresh_keepwarm() -> Iterator[None]:
    """No test sees another's shared sessions, install() or configure() defaults, or the
    guards' memory of call sites (warned once, churn counts: a helper that builds a session
    per test is not churn; the pytest plugin resets them between tests too)."""
    import keepwarm
    from keepwarm._config import reset_configuration
    from keepwarm._guards import forget_sites

    def reset() -> None:
        keepwarm.uninstall()
        keepwarm.close_all()
        reset_configuration()
        forget_sites()

    reset()
    yield
    reset()


# -- TLS ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """A throwaway certificate authority; nothing outside the test run trusts it."""
    return trustme.CA()


@pytest.fixture(scope="session")
def server_cert(ca: trustme.CA) -> trustme.LeafCert:
    """A server certificate valid for 127.0.0.1 and localhost."""
    return ca.issue_cert("127.0.0.1", "localhost")


@pytest.fixture(scope="session")
def ca_bundle(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path of a PEM file holding only the throwaway CA's certificate (for ``verify=``)."""
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="session")
def server_ssl_context(server_cert: trustme.LeafCert) -> ssl.SSLContext:
    """A server-side SSL context presenting :func:`server_cert`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)
    return context


# -- servers --------------------------------------------------------------------------


class _Server(Protocol):
    def start(self) -> Any: ...
    def close(self) -> None: ...


_ServerT = TypeVar("_ServerT", bound=_Server)


def _started(build: Callable[..., _ServerT]) -> Iterator[Callable[..., _ServerT]]:
    """A factory fixture's body: yields ``make(*args, **kwargs)``, which builds a server
    with ``build`` and starts it; every server made is closed after the test."""
    made: list[_ServerT] = []

    def make(*args: Any, **kwargs: Any) -> _ServerT:
        server = build(*args, **kwargs)
        made.append(server)
        server.start()
        return server

    try:
        yield make
    finally:
        for server in made:
            server.close()


@pytest.fixture
def make_server(server_ssl_context: ssl.SSLContext) -> Iterator[Callable[..., LocalServer]]:
    """Factory: ``make_server(handler=None, tls=False, **LocalServer_kwargs)`` returns a
    started :class:`LocalServer`; every server it made is closed after the test."""

    def build(handler: Handler | None = None, tls: bool = False, **kwargs: Any) -> LocalServer:
        context = server_ssl_context if tls else None
        return LocalServer(handler or default_handler, ssl_context=context, **kwargs)

    yield from _started(build)


@pytest.fixture
def http_server(make_server: Callable[..., LocalServer]) -> LocalServer:
    """A started plain-HTTP :class:`LocalServer` with the default routes."""
    return make_server(default_handler)


@pytest.fixture
def https_server(make_server: Callable[..., LocalServer]) -> LocalServer:
    """A started HTTPS :class:`LocalServer` (certificate from :func:`ca`, so pass
    ``verify=ca_bundle``) with the default routes."""
    return make_server(default_handler, tls=True)


@pytest.fixture
def raw_server() -> Iterator[Callable[..., RawServer]]:
    """Factory: ``raw_server(script, **RawServer_kwargs)`` returns a started
    :class:`RawServer`; all are closed after the test."""
    yield from _started(RawServer)


@pytest.fixture(name="backlog_full_address")
def _backlog_full_address() -> Iterator[tuple[str, int]]:
    """``(host, port)`` on 127.0.0.1 whose connect attempts time out (Linux only; the
    test is skipped elsewhere with the reason)."""
    with backlog_full_address() as address:
        yield address


@pytest.fixture
def tmp_home(_isolated_env: pathlib.Path) -> pathlib.Path:
    """The empty HOME that :func:`_isolated_env` set for this test (write a ``.netrc``
    there to test netrc handling)."""
    return _isolated_env


# -- tracing --------------------------------------------------------------------------


@pytest.fixture
def tracing() -> Iterator[Any]:
    """OpenTelemetry's requests instrumentation for the test: yields the in-memory span
    exporter (``get_finished_spans()``, ``clear()``)."""
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = RequestsInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        yield exporter
    finally:
        instrumentor.uninstrument()
        provider.shutdown()


# -- HTTP/2 servers -------------------------------------------------------------------


@pytest.fixture
def h2_server(server_cert: trustme.LeafCert) -> Iterator[Callable[..., H2Server]]:
    """Factory: ``h2_server(**H2Server_options)`` returns a started :class:`H2Server`
    (``.url`` is ``https://127.0.0.1:PORT``, ``.recorder`` what it saw; verify with
    ``ca_bundle``); every server it made is closed after the test."""
    yield from _started(functools.partial(H2Server, server_cert))


@pytest.fixture
def h1_tls_server(h2_server: Callable[..., H2Server]) -> H2Server:
    """An HTTP/1.1-only TLS server (ALPN offers only ``http/1.1``) with the same routes
    as :func:`h2_server`."""
    return h2_server(alpn=("http/1.1",))


@pytest.fixture(scope="session")
def server_cert_files(
    server_cert: trustme.LeafCert, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str]:
    """``(certfile, keyfile)``: :func:`server_cert`'s chain and key as PEM files, for
    servers in other processes (hypercorn, nginx, nghttpd)."""
    folder = tmp_path_factory.mktemp("server-cert")
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    certfile.write_bytes(b"".join(pem.bytes() for pem in server_cert.cert_chain_pems))
    server_cert.private_key_pem.write_to_path(str(keyfile))
    return str(certfile), str(keyfile)


@pytest.fixture(scope="session")
def _hypercorn_process(
    server_cert_files: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HypercornServer]:
    pytest.importorskip("hypercorn", reason="hypercorn is not installed (the test extra has it)")
    certfile, keyfile = server_cert_files
    workdir = str(tmp_path_factory.mktemp("hypercorn"))
    with HypercornServer(certfile, keyfile, workdir=workdir) as server:
        yield server


@pytest.fixture
def hypercorn_server(_hypercorn_process: HypercornServer) -> HypercornServer:
    """hypercorn on 127.0.0.1 over TLS (ALPN h2, http/1.1; verify with ``ca_bundle``),
    one process for the session; ``.seen_versions()`` starts empty in every test."""
    _hypercorn_process.reset_seen()
    return _hypercorn_process


@pytest.fixture
def nginx_h2(server_cert_files: tuple[str, str]) -> Iterator[Callable[..., NginxH2]]:
    """Factory: ``nginx_h2(keepalive_requests=10, max_concurrent_streams=128, files=None)``
    returns a started :class:`NginxH2` (``.url``, ``.requests()`` the parsed access log);
    skips with the reason when nginx or its http_v2_module is missing."""
    missing = nginx_h2_missing()
    if missing:
        pytest.skip(missing)
    certfile, keyfile = server_cert_files
    yield from _started(functools.partial(NginxH2, certfile, keyfile, keepalive_requests=10))


@pytest.fixture
def nghttpd_server(server_cert_files: tuple[str, str]) -> Iterator[Callable[..., NghttpdServer]]:
    """Factory: ``nghttpd_server(files={name: bytes}, max_concurrent_streams=None,
    window_bits=None, connection_window_bits=None, echo_upload=True)`` returns a started
    :class:`NghttpdServer` (``.url``; ALPN h2 only); skips with the reason when nghttpd is
    missing."""
    missing = nghttpd_missing()
    if missing:
        pytest.skip(missing)
    certfile, keyfile = server_cert_files
    yield from _started(functools.partial(NghttpdServer, certfile, keyfile))
