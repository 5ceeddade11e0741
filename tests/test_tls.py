"""One SSLContext per TLS configuration (keepwarm._upstream.tls), and what follows from it.

* The CA bundle is loaded once per configuration, not once per new connection as plain
  requests does (it hands urllib3 a path, loaded into a fresh context each time).
* The context is part of urllib3's pool key, so a connection opened under one TLS
  configuration never serves a request made under another: an unverified connection is
  not reused for a verified request (CVE-2024-35195), nor a connection presenting client
  certificate A for a request asking for certificate B.
* A CA bundle rewritten on disk (new size or mtime) gets a new context.
"""

from __future__ import annotations

import os
import pathlib
import ssl
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import trustme
from urllib3.exceptions import InsecureRequestWarning

import keepwarm
import keepwarm._config
from keepwarm._upstream import tls as _tls
from servers import LocalServer, default_handler


@pytest.fixture
def client_certs(ca: trustme.CA, tmp_path: pathlib.Path) -> tuple[str, str]:
    """Two client certificates issued by the test CA, each a PEM file with its key."""
    paths = []
    for name in ("client-a.example", "client-b.example"):
        path = tmp_path / f"{name}.pem"
        ca.issue_cert(name).private_key_and_cert_chain_pem.write_to_path(str(path))
        paths.append(str(path))
    return paths[0], paths[1]


@pytest.fixture
def make_tls_server(
    ca: trustme.CA, server_cert: trustme.LeafCert
) -> Iterator[Callable[[ssl.VerifyMode], LocalServer]]:
    """Factory for HTTPS servers that ask clients for a certificate (conftest's shared
    server context must not be changed, so each server gets its own)."""
    servers: list[LocalServer] = []

    def make(verify_mode: ssl.VerifyMode) -> LocalServer:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_cert.configure_cert(context)
        ca.configure_trust(context)
        context.verify_mode = verify_mode
        server = LocalServer(default_handler, ssl_context=context)
        servers.append(server)
        return server.start()

    try:
        yield make
    finally:
        for server in servers:
            server.close()


@pytest.fixture
def count_ca_loads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Record every SSLContext.load_verify_locations call (counting, not mocking: the
    real method still runs)."""
    calls: list[tuple[Any, ...]] = []
    original = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        calls.append((args, kwargs))
        original(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    return calls


@pytest.fixture
def tls_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The clock ``context_for`` reads to decide when to look at its files again, at
    ``clock[0]`` seconds: a test moves it past ``RECHECK_SECONDS`` instead of sleeping."""
    clock = [1000.0]
    monkeypatch.setattr(_tls, "_monotonic", lambda: clock[0])
    monkeypatch.setattr(_tls, "_recent", {})
    return clock


def _echo(session: requests.Session, url: str, **kwargs: Any) -> dict[str, Any]:
    with session.get(url + "/echo", **kwargs) as response:
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


# -- the cache itself (pure logic) ---------------------------------------------------------


def test_one_context_per_configuration(ca_bundle: str, client_certs: tuple[str, str]) -> None:
    cert_a, cert_b = client_certs
    assert _tls.context_for(True) is _tls.context_for(True)
    assert _tls.context_for(False) is _tls.context_for(False)
    assert _tls.context_for(ca_bundle) is _tls.context_for(ca_bundle)
    assert _tls.context_for(ca_bundle, cert_a) is _tls.context_for(ca_bundle, cert_a)

    distinct = [
        _tls.context_for(True),
        _tls.context_for(False),
        _tls.context_for(ca_bundle),
        _tls.context_for(ca_bundle, cert_a),
        _tls.context_for(ca_bundle, cert_b),
        _tls.context_for(False, cert_a),
    ]
    assert len({id(c) for c in distinct}) == len(distinct)


def test_contexts_verify_as_configured(ca_bundle: str) -> None:
    _tls.clear_cache()
    unverified = _tls.context_for(False)
    assert unverified.verify_mode == ssl.CERT_NONE
    assert unverified.check_hostname is False
    verified = _tls.context_for(ca_bundle)
    assert verified.verify_mode == ssl.CERT_REQUIRED
    assert verified.check_hostname is True
    # Only the test CA is loaded for verify=<that bundle>.
    assert verified.cert_store_stats()["x509_ca"] == 1


def test_cert_and_key_in_separate_files_are_their_own_configuration(
    ca: trustme.CA, ca_bundle: str, tmp_path: pathlib.Path
) -> None:
    leaf = ca.issue_cert("client-c.example")
    cert_file, key_file = tmp_path / "c.crt", tmp_path / "c.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert_file))
    leaf.private_key_pem.write_to_path(str(key_file))
    pair = (str(cert_file), str(key_file))
    assert _tls.context_for(ca_bundle, pair) is _tls.context_for(ca_bundle, pair)
    assert _tls.context_for(ca_bundle, pair) is not _tls.context_for(ca_bundle)


def test_missing_files_raise_os_error_naming_the_path(
    tmp_path: pathlib.Path, ca_bundle: str
) -> None:
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(OSError, match="Could not find a suitable TLS CA certificate bundle"):
        _tls.context_for(missing)
    with pytest.raises(OSError, match=r"certificate file, invalid path: .*nope\.pem"):
        _tls.context_for(ca_bundle, missing)
    with pytest.raises(OSError, match=r"key file, invalid path: .*nope\.pem"):
        _tls.context_for(ca_bundle, (ca_bundle, missing))
    with pytest.raises(OSError, match="Could not find a suitable TLS CA certificate bundle"):
        _tls.context_for("")


def test_rewritten_ca_bundle_gets_a_new_context(
    ca: trustme.CA, tmp_path: pathlib.Path, tls_clock: list[float]
) -> None:
    path = tmp_path / "rotating.pem"
    ca.cert_pem.write_to_path(str(path))
    before = _tls.context_for(str(path))
    assert _tls.context_for(str(path)) is before

    # Bigger file (a bundle gained a line): seen once RECHECK_SECONDS have passed, not
    # before (a stat per request was 1-3 us of an HTTPS request's CPU).
    path.write_bytes(path.read_bytes() + b"\n")
    tls_clock[0] += _tls.RECHECK_SECONDS / 2
    assert _tls.context_for(str(path)) is before
    tls_clock[0] += _tls.RECHECK_SECONDS
    after_size = _tls.context_for(str(path))
    assert after_size is not before

    # Same size, other modification time.
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 10_000_000_000))
    tls_clock[0] += _tls.RECHECK_SECONDS
    after_mtime = _tls.context_for(str(path))
    assert after_mtime is not after_size
    assert _tls.context_for(str(path)) is after_mtime


def test_files_are_looked_at_once_per_recheck_interval(
    ca_bundle: str, tls_clock: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    stats: list[str] = []
    real_stat = os.stat

    def counting(path: Any, *args: Any, **kwargs: Any) -> Any:
        stats.append(str(path))
        return real_stat(path, *args, **kwargs)

    _tls.context_for(ca_bundle)
    monkeypatch.setattr(_tls.os, "stat", counting)
    for _ in range(100):
        _tls.context_for(ca_bundle)
    assert stats == []
    tls_clock[0] += _tls.RECHECK_SECONDS
    _tls.context_for(ca_bundle)
    assert stats == [ca_bundle]


# -- the CA bundle is loaded once, not per connection ---------------------------------------


def test_new_connections_do_not_reload_the_ca_bundle(
    https_server: LocalServer, ca_bundle: str, count_ca_loads: list[tuple[Any, ...]]
) -> None:
    n = 8
    _tls.clear_cache()
    with keepwarm.Session(verify=ca_bundle) as session:
        for _ in range(n):
            # /close: the server closes after answering, so each request connects anew.
            with session.get(https_server.url + "/close") as response:
                assert response.text == "ok"
    assert https_server.connections_accepted == n
    assert len(count_ca_loads) == 1

    # Many sessions with the same configuration share the context too.
    for _ in range(4):
        with keepwarm.Session() as session:
            assert _echo(session, https_server.url, verify=ca_bundle)["method"] == "GET"
    assert https_server.connections_accepted == n + 4
    assert len(count_ca_loads) == 1


def test_contrast_plain_requests_reloads_the_ca_bundle_per_connection(
    https_server: LocalServer, ca_bundle: str, count_ca_loads: list[tuple[Any, ...]]
) -> None:
    n = 8
    with requests.Session() as session:
        session.verify = ca_bundle
        for _ in range(n):
            with session.get(https_server.url + "/close") as response:
                assert response.text == "ok"
    assert https_server.connections_accepted == n
    assert len(count_ca_loads) == n


# -- CVE-2024-35195: an unverified connection is never reused for a verified request --------


def test_unverified_connection_is_not_reused_for_a_verified_request(
    https_server: LocalServer, ca_bundle: str
) -> None:
    url = https_server.url
    with keepwarm.Session() as session:
        with pytest.warns(InsecureRequestWarning):
            unverified = _echo(session, url, verify=False)
        assert https_server.connections_accepted == 1

        # session.verify is True and the environment is isolated: the test CA is not
        # trusted, so this must fail the handshake on a new connection instead of
        # riding the pooled unverified one.
        with pytest.raises(requests.exceptions.SSLError):
            _echo(session, url)
        assert https_server.connections_accepted == 2
        assert len(https_server.requests) == 1

        verified = _echo(session, url, verify=ca_bundle)
        assert verified["connection_index"] != unverified["connection_index"]
        assert https_server.connections_accepted == 3

        # Each configuration keeps reusing its own connection.
        with pytest.warns(InsecureRequestWarning):
            again = _echo(session, url, verify=False)
        assert again["connection_index"] == unverified["connection_index"]
        assert (
            _echo(session, url, verify=ca_bundle)["connection_index"]
            == verified["connection_index"]
        )
        assert https_server.connections_accepted == 3


def test_unverified_connection_is_not_reused_after_session_verify_changes(
    https_server: LocalServer, ca_bundle: str
) -> None:
    url = https_server.url
    with keepwarm.Session(verify=False) as session:
        with pytest.warns(InsecureRequestWarning):
            _echo(session, url)
        session.verify = True
        with pytest.raises(requests.exceptions.SSLError):
            _echo(session, url)
        session.verify = ca_bundle
        _echo(session, url)
    assert https_server.connections_accepted == 3


# -- client certificates ---------------------------------------------------------------------


def test_different_client_certs_use_different_connections(
    make_tls_server: Callable[[ssl.VerifyMode], LocalServer],
    ca_bundle: str,
    client_certs: tuple[str, str],
) -> None:
    server = make_tls_server(ssl.CERT_OPTIONAL)
    cert_a, cert_b = client_certs
    with keepwarm.Session(verify=ca_bundle) as session:
        with_a = _echo(session, server.url, cert=cert_a)
        with_b = _echo(session, server.url, cert=cert_b)
        assert server.connections_accepted == 2
        assert with_a["connection_index"] != with_b["connection_index"]

        without = _echo(session, server.url)
        assert server.connections_accepted == 3

        # Asking for A again rides A's connection, and so on.
        again_a = _echo(session, server.url, cert=cert_a)
        assert again_a["connection_index"] == with_a["connection_index"]
        again_b = _echo(session, server.url, cert=cert_b)
        assert again_b["connection_index"] == with_b["connection_index"]
        assert _echo(session, server.url)["connection_index"] == without["connection_index"]
        session.cert = cert_b
        assert _echo(session, server.url)["connection_index"] == with_b["connection_index"]
    assert server.connections_accepted == 3


def test_client_cert_is_presented_from_the_cached_context(
    make_tls_server: Callable[[ssl.VerifyMode], LocalServer],
    ca_bundle: str,
    client_certs: tuple[str, str],
) -> None:
    server = make_tls_server(ssl.CERT_REQUIRED)
    cert_a, _ = client_certs
    # No retries: a rejected handshake is not worth retrying here.
    with keepwarm.Session(verify=ca_bundle, max_retries=0) as session:
        with pytest.raises(requests.exceptions.ConnectionError):
            _echo(session, server.url)
        assert len(server.requests) == 0
        for _ in range(2):
            assert _echo(session, server.url, cert=cert_a)["method"] == "GET"
    assert len(server.requests) == 2


# -- CA bundle rotation ------------------------------------------------------------------------


def test_rewritten_ca_bundle_means_new_connections(
    https_server: LocalServer, ca: trustme.CA, tmp_path: pathlib.Path, tls_clock: list[float]
) -> None:
    path = tmp_path / "rotating.pem"
    ca.cert_pem.write_to_path(str(path))
    with keepwarm.Session(verify=str(path)) as session, requests.Session() as plain:
        first = _echo(session, https_server.url)
        assert _echo(session, https_server.url)["connection_index"] == first["connection_index"]
        assert https_server.connections_accepted == 1
        plain_first = _echo(plain, https_server.url, verify=str(path))

        path.write_bytes(path.read_bytes() + b"\n")
        # Plain requests keeps its connection: a new bundle is loaded only by the next
        # new connection. keepwarm opens new ones within RECHECK_SECONDS.
        plain_after = _echo(plain, https_server.url, verify=str(path))
        assert plain_after["connection_index"] == plain_first["connection_index"]
        tls_clock[0] += _tls.RECHECK_SECONDS
        rotated = _echo(session, https_server.url)
        assert rotated["connection_index"] != first["connection_index"]
        assert https_server.connections_accepted == 3  # keepwarm's 2, plain requests' 1
        assert _echo(session, https_server.url)["connection_index"] == rotated["connection_index"]
    assert https_server.connections_accepted == 3
