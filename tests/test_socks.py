"""SOCKS proxies (``socks5://``, ``socks5h://``), as ``requests[socks]`` supports them.

urllib3's ``SOCKSProxyManager`` builds its pools from SOCKS connection classes that take
the proxy options; keepwarm's instrumented pools must keep that, or every request through
a SOCKS proxy fails with a ``TypeError`` (found by running requests' own test suite
against keepwarm.Session: ``test_use_proxy_from_environment``). The proxy here is a real
SOCKS5 server on loopback (``servers.Socks5Proxy``) relaying to the local test servers.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
import requests

import keepwarm
from servers import LocalServer, RawServer, Socks5Proxy


def _proxy(raw_server: Callable[..., RawServer], **kwargs: object) -> tuple[Socks5Proxy, str]:
    proxy = Socks5Proxy(**kwargs)  # type: ignore[arg-type]
    server = raw_server(proxy)
    return proxy, f"127.0.0.1:{server.port}"


def test_http_through_socks5_is_counted_and_reused(
    http_server: LocalServer, raw_server: Callable[..., RawServer]
) -> None:
    proxy, address = _proxy(raw_server)
    proxies = {"http": f"socks5://{address}"}
    with keepwarm.Session() as session:
        first = session.get(http_server.url + "/echo", proxies=proxies)
        second = session.get(http_server.url + "/echo", proxies=proxies)
        stats = session.stats()
    assert first.status_code == second.status_code == 200
    assert first.json()["path"] == "/echo"
    # socks5:// resolves the name on the client: the proxy is asked for an address.
    assert proxy.tunnels == [("127.0.0.1", http_server.port)]
    assert len(http_server.requests) == 2
    assert (stats.requests, stats.connections_opened, stats.reused) == (2, 1, 1)
    cold, warm = keepwarm.timings(first), keepwarm.timings(second)
    assert cold is not None and warm is not None
    assert cold.connect is not None and cold.connect > 0 and not cold.reused
    assert warm.reused and warm.connect is None


def test_https_through_socks5h_resolves_at_the_proxy_and_verifies(
    https_server: LocalServer, raw_server: Callable[..., RawServer], ca_bundle: str
) -> None:
    proxy, address = _proxy(raw_server)
    url = f"https://localhost:{https_server.port}/echo"
    with keepwarm.Session(verify=ca_bundle) as session:
        response = session.get(url, proxies={"https": f"socks5h://{address}"})
        stats = session.stats()
        timings = keepwarm.timings(response)
    assert response.status_code == 200
    # socks5h:// sends the name; the TLS handshake inside the tunnel checks the
    # certificate against it.
    assert proxy.tunnels == [("localhost", https_server.port)]
    assert (stats.connections_opened, stats.tls_handshakes) == (1, 1)
    assert timings is not None and timings.tls is not None and timings.tls_version


def test_https_through_socks_still_rejects_an_untrusted_certificate(
    https_server: LocalServer, raw_server: Callable[..., RawServer]
) -> None:
    _, address = _proxy(raw_server)
    url = f"https://localhost:{https_server.port}/echo"
    with keepwarm.Session() as session, pytest.raises(requests.exceptions.SSLError):
        session.get(url, proxies={"https": f"socks5h://{address}"})


def test_socks5_username_and_password(
    http_server: LocalServer, raw_server: Callable[..., RawServer]
) -> None:
    proxy, address = _proxy(raw_server, credentials=("alice", "s3cret"))
    with keepwarm.Session(max_retries=0) as session:
        ok = session.get(
            http_server.url + "/echo", proxies={"http": f"socks5://alice:s3cret@{address}"}
        )
        assert ok.status_code == 200
        with pytest.raises(requests.exceptions.ConnectionError):
            session.get(
                http_server.url + "/echo", proxies={"http": f"socks5://alice:wrong@{address}"}
            )
    assert proxy.logins == [("alice", "s3cret"), ("alice", "wrong")]
    # The credentials go to the proxy only, never to the server as a header.
    assert all("Proxy-Authorization" not in r.headers for r in http_server.requests)


def test_socks_proxy_from_the_environment(
    http_server: LocalServer,
    raw_server: Callable[..., RawServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy, address = _proxy(raw_server)
    monkeypatch.setenv("ALL_PROXY", f"socks5://{address}")
    with keepwarm.Session() as session:  # reads the environment when created
        response = session.get(http_server.url + "/echo")
    assert response.status_code == 200
    assert proxy.tunnels == [("127.0.0.1", http_server.port)]


def test_a_refused_socks_tunnel_is_a_connection_error(
    http_server: LocalServer, raw_server: Callable[..., RawServer]
) -> None:
    proxy, address = _proxy(raw_server)
    # The proxy refuses destinations other than loopback names and addresses.
    session = keepwarm.Session(max_retries=keepwarm.RetryPolicy(backoff_factor=0))
    with session, pytest.raises(requests.exceptions.ConnectionError):
        session.get(
            f"http://refused.invalid:{http_server.port}/echo",
            proxies={"http": f"socks5h://{address}"},
        )
    # Asked once, then again by each retry of the default policy; never let through.
    assert len(proxy.tunnels) == 1 + keepwarm.RetryPolicy().total
    assert set(proxy.tunnels) == {("refused.invalid", http_server.port)}
    assert http_server.requests == []


def test_missing_pysocks_names_the_extra_to_install() -> None:
    """Without PySocks, requests says "Missing dependencies for SOCKS support."; keepwarm
    says the same and which extra brings the dependency. (A subprocess, with the socks
    module blocked before requests is imported; nothing is sent anywhere: the error comes
    before any connection.)"""
    code = (
        "import sys; sys.modules['socks'] = None\n"
        "import requests, keepwarm\n"
        "for s in (requests.Session(), keepwarm.Session(max_retries=0)):\n"
        "    try:\n"
        "        s.get('http://127.0.0.1:9/', proxies={'http': 'socks5://127.0.0.1:9'})\n"
        "    except requests.exceptions.InvalidSchema as e:\n"
        "        print(type(s).__module__, e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout.splitlines()
    assert out[0] == "requests.sessions Missing dependencies for SOCKS support."
    assert out[1].startswith("keepwarm._session Missing dependencies for SOCKS support.")
    assert "pip install 'keepwarm[socks]'" in out[1]
