"""Security regressions: each test is named after the advisory whose class of bug it guards.

Two servers on two loopback ports stand for two hosts; ``127.0.0.1`` and ``localhost``
are two host names for cookie scope (cookies ignore ports). Every request goes to a
server in this process, and every server records the headers it saw, so "stripped"
means the destination never received the header, not that a client-side dict lacked it.

Where keepwarm behaves like plain requests in a way that is still risky, the test
asserts what happens and says so in its docstring (a FINDING), next to the same call
through plain requests, rather than hiding it.
"""

from __future__ import annotations

import base64
import json
import logging
import pathlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import requests
import trustme
from urllib3.exceptions import InsecureRequestWarning

import keepwarm
from servers import (
    LocalServer,
    RawServer,
    ServerRequest,
    ServerResponse,
    default_handler,
    read_request_head,
    relay,
)

SECRET = "Bearer s3cret-token"
PROXY_USER, PROXY_PASSWORD = "proxyuser", "proxypass"
PROXY_BASIC = "Basic " + base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _as_localhost(url: str) -> str:
    """The same server under the other host name (``localhost`` resolves to 127.0.0.1)."""
    return url.replace("://127.0.0.1:", "://localhost:", 1)


def _redirect(server: LocalServer, to: str, status: int = 302) -> str:
    """A URL on *server* that answers *status* with ``Location: to``."""
    return f"{server.url}/redirect?{urlencode({'to': to, 'status': status})}"


def _last(server: LocalServer, route: str) -> ServerRequest:
    matching = [r for r in server.requests if r.route == route]
    assert matching, f"{server.url} never received {route}"
    return matching[-1]


def _get(client: str, url: str, **kwargs: Any) -> requests.Response:
    """One GET through the named kind of keepwarm client (all must behave the same)."""
    kwargs.setdefault("timeout", 5)
    if client == "session":
        with keepwarm.Session() as session:
            return session.get(url, **kwargs)
    if client == "shared":
        return keepwarm.session().get(url, **kwargs)
    assert client == "installed"
    keepwarm.install()
    return requests.get(url, **kwargs)


CLIENTS = ["session", "shared", "installed"]


# -- CVE-2018-18074 (requests) / CVE-2018-20060 (urllib3): Authorization across hosts -------


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("auth_style", ["header", "auth-tuple"])
@pytest.mark.parametrize("other", ["other-port", "other-host"])
def test_cve_2018_18074_and_urllib3_cve_2018_20060_redirect_to_another_host_strips_authorization(
    make_server: Callable[..., LocalServer], client: str, auth_style: str, other: str
) -> None:
    a = make_server(default_handler)
    b = make_server(default_handler)
    target = b.url if other == "other-port" else _as_localhost(b.url)
    if auth_style == "header":
        kwargs: dict[str, Any] = {"headers": {"Authorization": SECRET}}
        expected = SECRET
    else:
        kwargs = {"auth": ("alice", "pa55")}
        expected = _basic("alice", "pa55")

    response = _get(client, _redirect(a, target + "/headers"), **kwargs)

    assert response.status_code == 200
    assert [h.status_code for h in response.history] == [302]
    assert _last(a, "/redirect").headers.get("Authorization") == expected
    assert "Authorization" not in _last(b, "/headers").headers
    assert "Authorization" not in response.json()


def test_cve_2018_18074_session_auth_is_not_sent_to_the_redirect_target(
    make_server: Callable[..., LocalServer],
) -> None:
    a = make_server(default_handler)
    b = make_server(default_handler)
    with keepwarm.Session(auth=("alice", "pa55")) as session:
        session.get(_redirect(a, _as_localhost(b.url) + "/headers"))
        session.get(_redirect(a, b.url + "/headers", status=307))
    assert _last(a, "/redirect").headers["Authorization"] == _basic("alice", "pa55")
    assert all("Authorization" not in r.headers for r in b.requests)
    assert len(b.requests) == 2


def test_cve_2018_18074_netrc_credentials_are_not_sent_to_the_redirect_target(
    make_server: Callable[..., LocalServer], tmp_home: pathlib.Path
) -> None:
    # keepwarm answers netrc lookups from its own snapshot (not requests' get_netrc_auth):
    # after a redirect it must look up the *new* host, which has no entry here.
    netrc = tmp_home / ".netrc"
    netrc.write_text("machine 127.0.0.1\nlogin alice\npassword n3trc\n")
    netrc.chmod(0o600)
    a = make_server(default_handler)
    b = make_server(default_handler)
    with keepwarm.Session() as session:
        response = session.get(_redirect(a, _as_localhost(b.url) + "/headers"))
    assert _last(a, "/redirect").headers["Authorization"] == _basic("alice", "n3trc")
    assert "Authorization" not in response.json()


def test_cve_2018_18074_same_origin_redirect_keeps_authorization(
    make_server: Callable[..., LocalServer],
) -> None:
    # The counterpart that shows the tests above can see the header at all: a redirect
    # within one origin keeps it (as requests does).
    a = make_server(default_handler)
    with keepwarm.Session() as session:
        response = session.get(_redirect(a, "/headers"), headers={"Authorization": SECRET})
    assert response.json()["Authorization"] == SECRET


@pytest.mark.parametrize("client", CLIENTS)
def test_cve_2018_18074_https_to_http_downgrade_strips_authorization(
    make_server: Callable[..., LocalServer], ca_bundle: str, client: str
) -> None:
    secure = make_server(default_handler, tls=True)
    plain = make_server(default_handler)
    assert secure.host == plain.host == "127.0.0.1"
    response = _get(
        client,
        _redirect(secure, plain.url + "/headers"),
        headers={"Authorization": SECRET},
        verify=ca_bundle,
    )
    assert response.url == plain.url + "/headers"
    assert _last(secure, "/redirect").headers["Authorization"] == SECRET
    assert "Authorization" not in _last(plain, "/headers").headers


def test_urllib3_cve_2018_20060_retry_policy_keeps_urllib3s_redirect_header_removal() -> None:
    # requests follows redirects itself, but keepwarm hands urllib3 its own Retry
    # subclass: it must not lose the headers urllib3 strips on a cross-host redirect.
    removed = {h.lower() for h in keepwarm.RetryPolicy().remove_headers_on_redirect}
    assert {"authorization", "cookie", "proxy-authorization"} <= removed
    removed_after_new = {
        h.lower() for h in keepwarm.RetryPolicy().new(total=1).remove_headers_on_redirect
    }
    assert removed_after_new == removed


# -- CVE-2023-43804 (urllib3): a Cookie header across hosts -----------------------------------


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("other", ["other-port", "other-host"])
def test_urllib3_cve_2023_43804_redirect_to_another_host_drops_a_manual_cookie_header(
    make_server: Callable[..., LocalServer], client: str, other: str
) -> None:
    a = make_server(default_handler)
    b = make_server(default_handler)
    target = b.url if other == "other-port" else _as_localhost(b.url)
    response = _get(client, _redirect(a, target + "/cookies"), headers={"Cookie": "sid=secret"})
    assert _last(a, "/redirect").headers["Cookie"] == "sid=secret"
    assert "Cookie" not in _last(b, "/cookies").headers
    assert response.json() == {}


def test_urllib3_cve_2023_43804_per_request_cookies_do_not_follow_a_cross_host_redirect(
    make_server: Callable[..., LocalServer],
) -> None:
    """Cookies given as ``cookies={...}`` to one call are bound to that call's host:
    plain requests makes them host-less and re-sends them to every redirect target,
    other hosts included (asserted here too, to document the difference)."""
    a = make_server(default_handler)
    b = make_server(default_handler)
    url = _redirect(a, _as_localhost(b.url) + "/cookies")
    with keepwarm.Session() as session:
        assert session.get(url, cookies={"sid": "secret"}).json() == {}
        assert session.get(a.url + "/cookies", cookies={"sid": "secret"}).json() == {
            "sid": "secret"
        }
        assert "sid" not in session.cookies
    through_requests = requests.get(url, cookies={"sid": "secret"}, timeout=5).json()
    assert through_requests == {"sid": "secret"}


# -- CVE-2023-32681 (requests) / CVE-2024-37891 (urllib3): Proxy-Authorization ----------------


def _forward_proxy(location: str) -> Callable[[ServerRequest], ServerResponse]:
    """A "forward proxy" that answers every absolute-form request itself with a 302."""

    def handler(request: ServerRequest) -> ServerResponse:
        if not request.path.startswith("http://"):
            return ServerResponse.text("not a proxy request\n", status=400)
        return ServerResponse(302, [("Location", location)], b"")

    return handler


@pytest.mark.parametrize("target", ["https-direct", "http-direct"])
def test_cve_2023_32681_proxy_authorization_never_reaches_the_redirect_target(
    make_server: Callable[..., LocalServer], ca_bundle: str, target: str
) -> None:
    if target == "https-direct":
        destination = make_server(default_handler, tls=True)
    else:
        destination = make_server(default_handler)
    proxy = make_server(_forward_proxy(destination.url + "/headers"))
    proxy_url = f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{proxy.port}"
    # https-direct: only http goes through the proxy, so the https redirect target is
    # reached directly. http-direct: the proxy is scoped to the origin's host name, so
    # the 127.0.0.1 redirect target is reached directly, in clear text.
    proxies = (
        {"http": proxy_url} if target == "https-direct" else {"http://origin.invalid": proxy_url}
    )
    with keepwarm.Session(verify=ca_bundle) as session:
        response = session.get("http://origin.invalid/start", proxies=proxies)
    assert response.status_code == 200
    assert response.url == destination.url + "/headers"

    at_proxy = proxy.requests
    assert [r.path for r in at_proxy] == ["http://origin.invalid/start"]
    assert at_proxy[0].headers["Proxy-Authorization"] == PROXY_BASIC
    at_destination = destination.requests
    assert len(at_destination) == 1
    assert "Proxy-Authorization" not in at_destination[0].headers


class _TunnellingProxy:
    """A forward proxy on a RawServer: ``CONNECT host:port`` opens a tunnel to a loopback
    port and relays bytes both ways; an absolute-form request is answered with a 302 to
    ``location``. Every request head it received is kept in :attr:`heads`."""

    RELAY_SECONDS = 10.0

    def __init__(self, location: str) -> None:
        self.location = location
        self.heads: list[bytes] = []
        self._lock = threading.Lock()

    def __call__(self, conn: socket.socket, server: RawServer) -> None:
        head = read_request_head(conn)
        with self._lock:
            self.heads.append(head)
        method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
        if method != "CONNECT":
            conn.sendall(
                f"HTTP/1.1 302 Found\r\nLocation: {self.location}\r\n"
                "Content-Length: 0\r\nConnection: close\r\n\r\n".encode("latin-1")
            )
            return
        host, _, port = target.rpartition(":")
        if host not in ("127.0.0.1", "localhost"):
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as upstream:
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            relay(conn, upstream, server, self.RELAY_SECONDS)

    @property
    def connects(self) -> list[bytes]:
        with self._lock:
            return [h for h in self.heads if h.startswith(b"CONNECT ")]


def test_cve_2023_32681_proxy_authorization_is_not_tunnelled_to_an_https_redirect_target(
    make_server: Callable[..., LocalServer], raw_server: Callable[..., RawServer], ca_bundle: str
) -> None:
    # The advisory's own scenario: http and https both go through an authenticating
    # proxy; an http request is redirected to https. requests 2.3.0-2.30.0 re-added
    # Proxy-Authorization to the redirected request, which then travelled inside the
    # CONNECT tunnel to the destination server.
    destination = make_server(default_handler, tls=True)
    tunnel = _TunnellingProxy(_as_localhost(destination.url) + "/headers")
    proxy = raw_server(tunnel)
    proxy_url = f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{proxy.port}"
    with keepwarm.Session(verify=ca_bundle) as session:
        response = session.get(
            "http://origin.invalid/start", proxies={"http": proxy_url, "https": proxy_url}
        )
    assert response.status_code == 200
    assert response.url == _as_localhost(destination.url) + "/headers"

    first = tunnel.heads[0].decode("latin-1")
    assert first.startswith("GET http://origin.invalid/start HTTP/1.1\r\n")
    assert f"Proxy-Authorization: {PROXY_BASIC}" in first.split("\r\n")
    # The proxy got its credentials on the CONNECT, where they belong...
    connects = tunnel.connects
    assert len(connects) == 1
    assert connects[0].startswith(f"CONNECT localhost:{destination.port} ".encode())
    assert f"Proxy-Authorization: {PROXY_BASIC}".encode() in connects[0].split(b"\r\n")
    # ...and the destination, at the other end of the tunnel, never saw them.
    assert len(destination.requests) == 1
    assert "Proxy-Authorization" not in destination.requests[0].headers
    assert "Proxy-Authorization" not in response.json()


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("other", ["other-port", "other-host"])
def test_urllib3_cve_2024_37891_manual_proxy_authorization_is_stripped_on_a_cross_host_redirect(
    make_server: Callable[..., LocalServer], client: str, other: str
) -> None:
    a = make_server(default_handler)
    b = make_server(default_handler)
    target = b.url if other == "other-port" else _as_localhost(b.url)
    response = _get(
        client, _redirect(a, target + "/headers"), headers={"Proxy-Authorization": PROXY_BASIC}
    )
    assert _last(a, "/redirect").headers["Proxy-Authorization"] == PROXY_BASIC
    assert "Proxy-Authorization" not in _last(b, "/headers").headers
    assert "Proxy-Authorization" not in response.json()


# -- CVE-2024-35195 (requests): an unverified connection reused for a verified request --------
#
# tests/test_tls.py already proves the base case (verify=False, then default verification
# to the same origin raises SSLError, and session.verify changed later). Only the
# client-certificate and install() variants are added here.


@pytest.fixture
def client_cert_server(ca: trustme.CA, server_cert: trustme.LeafCert) -> Iterator[LocalServer]:
    """An HTTPS server that requires a client certificate issued by the test CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)
    ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    with LocalServer(default_handler, ssl_context=context) as server:
        yield server


@pytest.fixture
def client_cert(ca: trustme.CA, tmp_path: pathlib.Path) -> str:
    path = tmp_path / "client.pem"
    ca.issue_cert("client.example").private_key_and_cert_chain_pem.write_to_path(str(path))
    return str(path)


def test_cve_2024_35195_unverified_connection_with_a_client_cert_is_not_reused_when_verifying(
    client_cert_server: LocalServer, client_cert: str, ca_bundle: str
) -> None:
    url = client_cert_server.url + "/echo"
    with keepwarm.Session(cert=client_cert, max_retries=0) as session:
        with pytest.warns(InsecureRequestWarning):
            unverified = session.get(url, verify=False).json()
        assert client_cert_server.connections_accepted == 1

        # Same client certificate, default verification: the test CA is not trusted, so
        # this must be a new handshake that fails, not a ride on the unverified connection.
        with pytest.raises(requests.exceptions.SSLError):
            session.get(url)
        assert client_cert_server.connections_accepted == 2
        assert len(client_cert_server.requests) == 1

        verified = session.get(url, verify=ca_bundle).json()
        assert verified["connection_index"] != unverified["connection_index"]
        assert client_cert_server.connections_accepted == 3


def test_cve_2024_35195_installed_callers_do_not_share_an_unverified_connection(
    https_server: LocalServer, ca_bundle: str
) -> None:
    # install() makes every requests.get() in the process share one set of pools: one
    # library's verify=False must not lower verification for another caller.
    keepwarm.install()
    url = https_server.url + "/echo"
    with pytest.warns(InsecureRequestWarning):
        unverified = requests.get(url, verify=False).json()
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url)
    verified = requests.get(url, verify=ca_bundle).json()
    assert verified["connection_index"] != unverified["connection_index"]
    assert https_server.connections_accepted == 3
    assert len(https_server.requests) == 2


# -- base_url: a relative URL never reaches another host -------------------------------------


def test_base_url_scheme_relative_path_never_sends_credentials_to_another_host(
    make_server: Callable[..., LocalServer],
) -> None:
    """``//host/x`` joined to base_url went to ``http://host/x`` with the session's
    Authorization header, auth and cookies. It is now a path under base_url, like every
    relative URL; httpx's base_url never leaves the base host either (it drops the host
    part, asserted here too). Plain requests has no base_url."""
    a = make_server(default_handler)
    b = make_server(default_handler)
    others = [
        f"//127.0.0.1:{b.port}/headers",
        f"//localhost:{b.port}/headers",
        f"///127.0.0.1:{b.port}/headers",
        f"//alice:pw@127.0.0.1:{b.port}/headers",
    ]
    for auth_style in ("header", "auth", "cookies"):
        kwargs: dict[str, Any] = {"base_url": a.url + "/api/"}
        if auth_style == "header":
            kwargs["headers"] = {"Authorization": SECRET}
        elif auth_style == "auth":
            kwargs["auth"] = ("alice", "pa55")
        else:
            kwargs["cookies"] = {"sid": "secret"}
        with keepwarm.Session(**kwargs) as session:
            for url in others:
                response = session.get(url)
                assert response.status_code == 404  # A has no such path; B was not asked
                assert response.url == a.url + "/api/" + url.lstrip("/")
                prepared = session.prepare_request(requests.Request("GET", url))
                assert prepared.url == response.url
    assert b.requests == []
    assert len(a.requests) == 3 * len(others)
    # A got the credentials meant for it.
    assert {r.headers.get("Authorization") for r in a.requests} == {
        SECRET,
        _basic("alice", "pa55"),
        None,
    }
    assert sum(r.headers.get("Cookie") == "sid=secret" for r in a.requests) == len(others)

    with httpx.Client(base_url=a.url + "/api/", headers={"Authorization": SECRET}) as client:
        for url in others:
            assert client.get(url).url.port == a.port
    assert b.requests == []
    assert _last(a, "/api/headers").headers["Authorization"] == SECRET


# -- cookie scope --------------------------------------------------------------------------


def _cookie_domains(jar: Any) -> dict[str, str]:
    return {cookie.name: cookie.domain for cookie in jar}


def test_cookie_scope_keepwarm_never_creates_a_host_less_cookie(
    make_server: Callable[..., LocalServer],
) -> None:
    a = make_server(default_handler)
    b = make_server(default_handler)
    b_local = _as_localhost(b.url)
    shared = keepwarm.session()
    named = keepwarm.session("other", headers={"X-Caller": "named"})

    shared.get(a.url + "/cookies/set", params={"direct": "1"})
    # Set-Cookie on a redirect hop, then on the target of a cross-host redirect.
    shared.get(_redirect(a, b_local + "/cookies/set?at_b=1"))
    shared.get(a.url + "/redirect", params={"to": "/cookies/set?hop=1"})
    named.get(b_local + "/cookies/set", params={"named": "1"})

    keepwarm.install()
    with requests.get(a.url + "/cookies/set", params={"installed": "1"}) as response:
        assert response.cookies.get("installed") == "1"
    with requests.get(_redirect(a, b_local + "/cookies/set?installed_hop=1")):
        pass
    # keepwarm.session() again (as install() does) is the same object, same jar.
    assert keepwarm.session() is shared

    jar = requests.cookies.RequestsCookieJar()
    jar.set("user_scoped", "1", domain="example.test", path="/")
    with keepwarm.Session(cookies=jar) as own:
        own.get(a.url + "/cookies/set", params={"own": "1"})
        own_domains = _cookie_domains(own.cookies)

    shared_domains = _cookie_domains(shared.cookies)
    assert shared_domains == {"direct": "127.0.0.1", "at_b": "localhost.local", "hop": "127.0.0.1"}
    assert _cookie_domains(named.cookies) == {"named": "localhost.local"}
    assert own_domains == {"user_scoped": "example.test", "own": "127.0.0.1"}
    for session in (shared, named):
        for cookie in session.cookies:
            assert cookie.domain, f"{cookie.name} has no domain: it would go to every host"
            assert not cookie.domain_specified  # host-only, as the server asked
    # install()-ed calls stored nothing anywhere.
    assert not any(name.startswith("installed") for name in shared_domains)


def test_cookie_scope_a_host_only_cookie_is_not_sent_to_another_host(
    make_server: Callable[..., LocalServer],
) -> None:
    a = make_server(default_handler)
    b = make_server(default_handler)
    with keepwarm.Session() as session:
        session.get(a.url + "/cookies/set", params={"from_ip": "1"})
        session.get(_as_localhost(b.url) + "/cookies/set", params={"from_name": "1"})

        # Cookies ignore ports: the other port on the same host gets the host's cookie...
        assert session.get(b.url + "/cookies").json() == {"from_ip": "1"}
        # ...but another host name, even on the very same server and port, does not.
        assert session.get(_as_localhost(a.url) + "/cookies").json() == {"from_name": "1"}
        assert session.get(a.url + "/cookies").json() == {"from_ip": "1"}
        # Nor does a cross-host redirect carry it.
        assert session.get(_redirect(a, _as_localhost(b.url) + "/cookies")).json() == {
            "from_name": "1"
        }
        assert _last(a, "/redirect").headers["Cookie"] == "from_ip=1"


def test_cookie_scope_constructor_cookies_dict_is_bound_to_the_base_url_host(
    make_server: Callable[..., LocalServer],
) -> None:
    """``keepwarm.Session(cookies={...}, base_url=...)`` binds the cookies to the base
    URL's host; plain requests' ``cookies.update({...})`` makes them host-less, sent to
    every host (asserted too). Without base_url keepwarm refuses a dict."""
    a = make_server(default_handler)
    b = make_server(default_handler)
    with keepwarm.Session(cookies={"token": "t0k"}, base_url=a.url) as session:
        assert _cookie_domains(session.cookies) == {"token": "127.0.0.1"}
        assert session.get("/cookies").json() == {"token": "t0k"}
        via_redirect = session.get("/redirect", params={"to": _as_localhost(b.url) + "/cookies"})
        direct = session.get(_as_localhost(b.url) + "/cookies")
    assert via_redirect.json() == direct.json() == {}
    with requests.Session() as plain:
        plain.cookies.update({"token": "t0k"})
        assert _cookie_domains(plain.cookies) == {"token": ""}
        plain_direct = plain.get(_as_localhost(b.url) + "/cookies", timeout=5)
    assert plain_direct.json() == {"token": "t0k"}
    with pytest.raises(ValueError, match="needs base_url"):
        keepwarm.Session(cookies={"token": "t0k"})

    # A jar scoped by the caller keeps the cookie on its host.
    jar = requests.cookies.RequestsCookieJar()
    jar.set("token", "t0k", domain="127.0.0.1", path="/")
    with keepwarm.Session(cookies=jar) as session:
        assert session.get(a.url + "/cookies").json() == {"token": "t0k"}
        assert session.get(_as_localhost(b.url) + "/cookies").json() == {}


def _ipv6_loopback_server(make_server: Callable[..., LocalServer]) -> LocalServer:
    """A server on ``[::1]``, or a clean skip where this machine has no IPv6 loopback."""
    if not socket.has_ipv6:
        pytest.skip("Python was built without IPv6 support")
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback on this machine: binding [::1] failed ({exc})")
    return make_server(default_handler, host="::1")


def test_cookie_scope_dict_cookies_reach_an_ipv6_literal_host(
    make_server: Callable[..., LocalServer],
) -> None:
    """http.cookiejar files ``[::1]`` under ``[::1].local``: a cookie bound to ``::1``
    (as urlsplit spells the host) was never sent. Plain requests sends its host-less
    cookie there, and to every other host (asserted too)."""
    v6 = _ipv6_loopback_server(make_server)
    v4 = make_server(default_handler)
    assert v6.url.startswith("http://[::1]:")
    to_v4 = _redirect(v6, v4.url + "/cookies")
    with keepwarm.Session() as session:
        direct = session.get(v6.url + "/cookies", cookies={"sid": "v6"}).json()
        redirected = session.get(to_v4, cookies={"sid": "v6"}).json()
        assert "sid" not in session.cookies
    with requests.Session() as plain:
        plain_direct = plain.get(v6.url + "/cookies", cookies={"sid": "v6"}, timeout=5).json()
        plain_redirected = plain.get(to_v4, cookies={"sid": "v6"}, timeout=5).json()
    assert direct == plain_direct == {"sid": "v6"}
    assert redirected == {}  # bound to [::1]: not sent to 127.0.0.1
    assert plain_redirected == {"sid": "v6"}
    assert _last(v6, "/redirect").headers["Cookie"] == "sid=v6"

    with keepwarm.Session(cookies={"token": "t0k"}, base_url=v6.url) as session:
        assert _cookie_domains(session.cookies) == {"token": "[::1].local"}
        assert session.get("/cookies").json() == {"token": "t0k"}
        assert session.get(v4.url + "/cookies").json() == {}


IDN_URL = "http://bücher.example/shelf"


def _cookie_header(session: requests.Session, url: str, **kwargs: Any) -> str | None:
    prepared = session.prepare_request(requests.Request("GET", url, **kwargs))
    return prepared.headers.get("Cookie")


def test_cookie_scope_dict_cookies_for_an_idn_host_are_bound_to_its_punycode_name() -> None:
    """requests sends an IDN host as IDNA (``xn--bcher-kva.example``), and http.cookiejar
    matches cookies against that; a cookie bound to ``bücher.example`` was never sent.
    An IDN host cannot be reached from a test, so this compares the prepared request's
    Cookie header with plain requests' (which sends its host-less cookie everywhere)."""
    cookies = {"sid": "idn"}
    with keepwarm.Session() as session, requests.Session() as plain:
        ours = _cookie_header(session, IDN_URL, cookies=cookies)
        theirs = _cookie_header(plain, IDN_URL, cookies=cookies)
        assert ours == theirs == "sid=idn"
        # The same host spelt in capitals, with a port, or already in IDNA form.
        for same in ("http://BÜCHER.example:8080/", "http://xn--bcher-kva.example/"):
            assert _cookie_header(session, same, cookies=cookies) == "sid=idn"

    with keepwarm.Session(cookies={"token": "t0k"}, base_url=IDN_URL + "/") as session:
        assert _cookie_domains(session.cookies) == {"token": "xn--bcher-kva.example"}
        assert _cookie_header(session, "books") == "token=t0k"
        assert _cookie_header(session, "http://xn--bcher-kva.example/") == "token=t0k"
        # Bound to that host: not another one, nor a look-alike.
        for other in ("http://bucher.example/", "http://example/", "http://127.0.0.1/"):
            assert _cookie_header(session, other) is None
    with requests.Session() as plain:
        plain.cookies.update({"token": "t0k"})
        assert _cookie_header(plain, "http://bucher.example/") == "token=t0k"


# -- install(): concurrent callers share connections, never state ---------------------------


def test_install_two_threads_never_see_each_others_auth_or_cookies(
    http_server: LocalServer,
) -> None:
    keepwarm.install()
    rounds = 60
    barrier = threading.Barrier(2, timeout=10)
    errors: list[BaseException] = []
    url = http_server.url

    def caller(me: int) -> None:
        token = f"Bearer caller-{me}"
        try:
            barrier.wait()
            for i in range(rounds):
                echo = requests.get(
                    url + "/echo",
                    headers={"Authorization": token},
                    cookies={"who": f"caller-{me}"},
                ).json()
                seen = echo["headers"]
                assert seen.get("Authorization") == token, seen
                assert seen.get("Cookie") == f"who=caller-{me}", seen
                # A Set-Cookie answered to this caller stays with this one response.
                with requests.get(url + "/cookies/set", params={f"set_by_{me}": str(i)}) as r:
                    assert r.cookies.get_dict() == {f"set_by_{me}": str(i)}
                assert requests.get(url + "/cookies").json() == {}
                # Basic auth from the auth= keyword is per call too.
                auth = requests.get(url + "/headers", auth=(f"user{me}", "pw")).json()
                assert auth["Authorization"] == _basic(f"user{me}", "pw")
                bare = requests.get(url + "/headers").json()
                assert "Authorization" not in bare
                assert "Cookie" not in bare
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(n,), daemon=True) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert http_server.requests_handled == 2 * rounds * 5
    # They shared pooled connections (at most one each), which is the point of install().
    assert http_server.connections_accepted <= 2
    assert len(keepwarm.session().cookies) == 0
    assert keepwarm.session().auth is None


# -- secrets in keepwarm's own messages -------------------------------------------------------
#
# Every secret below is planted once; a test fails with the text that leaked it. Each URL
# form carries credentials as users write them: a password (``user:pass@``), a token in
# the user-name place (``TOKEN@``), and a token in the query (``?access_token=...``).

PLANTED = {
    "header": "hdr-S3CRET-1",
    "auth": "auth-S3CRET-2",
    "proxy": "proxy-S3CRET-3",
    "cookie": "cookie-S3CRET-4",
    "param": "param-S3CRET-5",
    "url_password": "urlpw-S3CRET-6",
    "url_token": "urltoken-S3CRET-7",
    "query": "query-S3CRET-8",
}


def _assert_no_planted_secret(where: str, text: str) -> None:
    leaked = [name for name, secret in PLANTED.items() if secret in text]
    assert not leaked, f"{where} shows the planted {leaked}: {text!r}"


def _urls_with_credentials(port: int, path: str = "/") -> list[str]:
    host = f"127.0.0.1:{port}"
    query = f"?access_token={PLANTED['query']}&page=2"
    return [
        f"http://alice:{PLANTED['url_password']}@{host}{path}{query}",
        f"http://{PLANTED['url_token']}@{host}{path}{query}",
        f"http://{host}{path}{query}",
    ]


def _secret_state(variant: str, port: int) -> dict[str, Any]:
    """Session state keywords carrying every kind of secret, *variant* making them differ."""
    return {
        "base_url": f"http://alice:{PLANTED['url_password']}{variant}@127.0.0.1:{port}/",
        "headers": {"Authorization": f"Bearer {PLANTED['header']}{variant}", "X-Team": "core"},
        "auth": ("alice", PLANTED["auth"] + variant),
        "proxies": {"https": f"http://proxyuser:{PLANTED['proxy']}{variant}@127.0.0.1:9"},
        "cookies": {"sid": PLANTED["cookie"] + variant},
        "params": {"api_key": PLANTED["param"] + variant},
    }


def test_secrets_session_conflict_error_names_the_settings_not_their_values(
    http_server: LocalServer,
) -> None:
    keepwarm.session("api", **_secret_state("a", http_server.port))
    with pytest.raises(keepwarm.SessionConflictError) as caught:
        keepwarm.session("api", timeout=9, **_secret_state("b", http_server.port))
    message = str(caught.value)
    _assert_no_planted_secret("str(SessionConflictError)", message)
    _assert_no_planted_secret("repr(SessionConflictError)", repr(caught.value))
    # It still says which settings differ, and within headers, cookies, params and
    # proxies, which names; a tuning setting keeps its values.
    for shown in (
        "timeout=9 (it has Timeout(connect=3.0, read=7.0))",
        "headers (Authorization; values not shown)",
        "auth (values not shown)",
        "proxies (https; values not shown)",
        "cookies (sid; values not shown)",
        "params (api_key; values not shown)",
        "base_url='http://alice:***@127.0.0.1:",
    ):
        assert shown in message
    assert "X-Team" not in message  # the same in both: not a difference
    # The session is untouched, secrets and all.
    assert keepwarm.session("api").headers["Authorization"] == f"Bearer {PLANTED['header']}a"


def test_secrets_setting_errors_do_not_echo_a_base_url_or_an_unknown_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bad = f"http://{PLANTED['url_token']}@127.0.0.1:1/?access_token={PLANTED['query']}"
    with pytest.raises(ValueError, match="base_url must be a URL without") as caught:
        keepwarm.Session(base_url=bad)
    _assert_no_planted_secret("base_url= error", str(caught.value))
    monkeypatch.setenv("KEEPWARM_BASE_URL", bad)
    with pytest.raises(ValueError, match="KEEPWARM_BASE_URL") as caught:
        keepwarm.Session()
    _assert_no_planted_secret("KEEPWARM_BASE_URL error", str(caught.value))
    monkeypatch.delenv("KEEPWARM_BASE_URL")
    # A KEEPWARM_* variable keepwarm does not read may be another program's secret.
    monkeypatch.setenv("KEEPWARM_API_TOKEN", PLANTED["url_token"])
    with pytest.raises(ValueError, match="unknown environment variable KEEPWARM_API_TOKEN"):
        keepwarm.Session()
    with pytest.raises(ValueError) as caught:
        keepwarm.Session()
    _assert_no_planted_secret("unknown variable error", str(caught.value))


def _refused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _status_503(request: ServerRequest) -> ServerResponse:
    return ServerResponse(503, [], b"")


@pytest.mark.parametrize("failure", ["connection-refused", "503-until-retries-run-out"])
def test_secrets_error_after_retries_has_no_query_values(
    make_server: Callable[..., LocalServer], caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    """urllib3 words the error ``Max retries exceeded with url: /path?access_token=...``
    and logs each retry (WARNING) with the same URL; requests shows that text as its own.
    Plain requests raises the same text, by default for a refused connection and with
    keepwarm's policy mounted for both (asserted too: keepwarm is not worse); keepwarm,
    which retries, shows the query values as ``***`` in the exception and in urllib3's
    WARNING records of its retries. urllib3's DEBUG line for every request (``"GET
    /orders?access_token=... HTTP/1.1" 503``) shows the URL for plain requests too:
    whoever turns urllib3's DEBUG on sees request URLs."""
    caplog.set_level(logging.DEBUG)
    if failure == "connection-refused":
        port = _refused_port()
        expected: type[Exception] = requests.exceptions.ConnectionError
        policy = keepwarm.RetryPolicy(backoff_factor=0)
    else:
        server = make_server(_status_503)
        port = server.port
        expected = requests.exceptions.RetryError
        policy = keepwarm.RetryPolicy(backoff_factor=0, raise_on_status=True)
    urls = _urls_with_credentials(port, "/orders")
    with requests.Session() as plain:
        if failure == "connection-refused":
            with pytest.raises(expected) as through_plain:
                plain.get(urls[2], timeout=5)
            assert PLANTED["query"] in str(through_plain.value)
        plain.mount("http://", requests.adapters.HTTPAdapter(max_retries=policy))
        with pytest.raises(expected) as through_plain:
            plain.get(urls[2], timeout=5)
        assert PLANTED["query"] in str(through_plain.value)
    caplog.clear()

    texts: list[str] = []
    # max_retries=0 and a 503: the response is returned, as in plain requests.
    for max_retries in (policy, 0) if failure == "connection-refused" else (policy,):
        with keepwarm.Session(max_retries=max_retries) as session:
            for url in urls:
                with pytest.raises(requests.exceptions.RequestException) as caught:
                    session.get(url, timeout=5)
                if max_retries:
                    assert isinstance(caught.value, expected)
                texts += [str(caught.value), repr(caught.value), repr(caught.value.args)]
                assert "access_token=***&page=***" in str(caught.value)
                # The URL is still there for code that needs it.
                assert caught.value.request is not None
                assert caught.value.request.url is not None
                assert PLANTED["query"] in caught.value.request.url
            texts += [str(session.stats()), *session.stats().advice(), repr(session)]
    retried = [r for r in caplog.records if r.getMessage().startswith("Retrying")]
    assert len(retried) == (3 * len(urls) if failure == "connection-refused" else 0)
    for text in texts:
        _assert_no_planted_secret("error after retries", text)
    for record in caplog.records:
        if record.name.startswith("keepwarm") or record.levelno >= logging.WARNING:
            _assert_no_planted_secret(f"{record.name} record", record.getMessage())


def test_secrets_stay_out_of_repr_closed_errors_logs_and_stats(
    make_server: Callable[..., LocalServer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="keepwarm")
    server = make_server(default_handler)
    state = _secret_state("", server.port)
    del state["proxies"]  # the proxy is not listening: see the conflict test above
    # A 100 s read timeout against a fast server gives advice to read.
    session = keepwarm.Session(timeout=(3, 100), max_retries=0, **state)
    texts = [repr(session)]
    # Enough requests for the read-timeout advice (25).
    for url in _urls_with_credentials(server.port, "/echo") * 8:
        echo = session.get(url).json()
        assert echo["query"]["access_token"] == PLANTED["query"]
        assert echo["query"]["api_key"] == PLANTED["param"]
    for path in ("echo?access_token=" + PLANTED["query"], "/echo"):
        session.get(path)
    stats = session.stats()
    assert stats.advice()
    texts += [str(stats), repr(stats), json.dumps(stats.as_dict()), *stats.advice()]
    texts += [repr(session), str(session.settings)]
    session.close()
    for url in _urls_with_credentials(server.port):
        with pytest.raises(keepwarm.SessionClosedError) as caught:
            session.get(url)
        texts += [str(caught.value), repr(caught.value)]
    records = [r for r in caplog.records if r.name.startswith("keepwarm")]
    assert records
    texts += [r.getMessage() for r in records]
    for text in texts:
        _assert_no_planted_secret("repr, errors, logs or stats", text)
