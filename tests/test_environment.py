"""The environment (proxies, NO_PROXY, netrc, REQUESTS_CA_BUNDLE) is read once per session.

Plain requests re-reads it on every request; keepwarm takes a snapshot when the session
is created (keepwarm._upstream.environment.EnvironmentSnapshot) and reads it again only in
Session.reload_environment(). trust_env=False ignores all of it, and an explicit
session.verify path is not overridden by REQUESTS_CA_BUNDLE (in plain requests the
variable wins over the attribute: requests issue 3829).

The conftest's autouse fixture removes every proxy, CA-bundle and netrc variable and
points HOME at an empty directory, so each test starts from a clean environment.
"""

from __future__ import annotations

import base64
import pathlib
from collections.abc import Callable
from typing import Any

import pytest
import requests
import trustme

import keepwarm
import keepwarm._config
from servers import LocalServer, ServerRequest, ServerResponse


def _proxy_handler(request: ServerRequest) -> ServerResponse:
    """A stand-in forward proxy: answers itself and tells what it was asked for."""
    return ServerResponse.json({"via": "proxy", "target": request.path})


@pytest.fixture
def proxy(make_server: Callable[..., LocalServer]) -> LocalServer:
    return make_server(_proxy_handler)


@pytest.fixture
def other_ca_bundle(tmp_path: pathlib.Path) -> str:
    """A CA bundle holding a different throwaway CA, which does not trust the servers."""
    path = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


def _get_json(session: requests.Session, url: str, **kwargs: Any) -> Any:
    with session.get(url, **kwargs) as response:
        response.raise_for_status()
        return response.json()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _write_netrc(path: pathlib.Path, host: str, user: str, password: str) -> None:
    path.write_text(f"machine {host}\nlogin {user}\npassword {password}\n")
    path.chmod(0o600)


# -- proxies --------------------------------------------------------------------------------


def test_proxy_set_after_creation_is_not_used_until_reload(
    http_server: LocalServer, proxy: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = http_server.url + "/echo"
    with keepwarm.Session() as session:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)

        direct = _get_json(session, url)
        assert direct["path"] == "/echo"
        assert len(http_server.requests) == 1
        assert proxy.requests == []

        session.reload_environment()
        via_proxy = _get_json(session, url)
        assert via_proxy == {"via": "proxy", "target": url}
        # A forward proxy gets the absolute URL in the request line.
        assert [r.path for r in proxy.requests] == [url]
        assert len(http_server.requests) == 1

        monkeypatch.delenv("HTTP_PROXY")
        # Still the snapshot with the proxy, until the next reload.
        assert _get_json(session, url)["via"] == "proxy"
        session.reload_environment()
        assert _get_json(session, url)["path"] == "/echo"
    assert len(proxy.requests) == 2
    assert len(http_server.requests) == 2


def test_contrast_plain_requests_reads_the_proxy_on_every_request(
    http_server: LocalServer, proxy: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = http_server.url + "/echo"
    with requests.Session() as session:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        assert _get_json(session, url)["via"] == "proxy"
    assert http_server.requests == []


def test_the_snapshot_knows_whether_its_proxies_came_from_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pure logic (nothing is sent). ``from_variables`` decides, on macOS and Windows,
    whether a host is looked up in the platform's proxy bypass settings; where the
    platform has none, the variables are read once, not twice."""
    import urllib.request

    from keepwarm._upstream.environment import EnvironmentSnapshot

    assert EnvironmentSnapshot.capture().from_variables is False  # the conftest cleared them
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    from_variables = EnvironmentSnapshot.capture()
    assert from_variables.proxies == {"https": "http://127.0.0.1:9"}
    assert from_variables.from_variables is True
    # A platform with proxy settings of its own: getproxies() is the variables' proxies,
    # else the platform's (urllib.request on macOS and Windows).
    monkeypatch.setattr(
        urllib.request,
        "getproxies",
        lambda: urllib.request.getproxies_environment() or {"https": "http://system:3128"},
    )
    assert EnvironmentSnapshot.capture().from_variables is True
    monkeypatch.delenv("HTTPS_PROXY")
    from_platform = EnvironmentSnapshot.capture()
    assert from_platform.proxies == {"https": "http://system:3128"}
    assert from_platform.from_variables is False


def test_proxy_present_at_creation_is_used(
    http_server: LocalServer, proxy: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("http_proxy", proxy.url)
    with keepwarm.Session() as session:
        monkeypatch.delenv("http_proxy")
        assert _get_json(session, http_server.url + "/echo")["via"] == "proxy"
    assert http_server.requests == []


def test_proxy_credentials_from_the_environment_are_sent_to_the_proxy(
    http_server: LocalServer, proxy: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://puser:ppass@127.0.0.1:{proxy.port}")
    with keepwarm.Session() as session:
        assert _get_json(session, http_server.url + "/echo")["via"] == "proxy"
    (seen,) = proxy.requests
    assert seen.headers["Proxy-Authorization"] == _basic("puser", "ppass")
    assert http_server.requests == []


def test_no_proxy_hosts_bypass_the_proxy(
    http_server: LocalServer, proxy: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with keepwarm.Session() as session:
        # 127.0.0.1 is in NO_PROXY: straight to the server.
        assert _get_json(session, http_server.url + "/echo")["path"] == "/echo"
        assert proxy.requests == []
        # localhost is not: through the proxy (which answers without resolving it).
        other = f"http://localhost:{http_server.port}/echo"
        assert _get_json(session, other) == {"via": "proxy", "target": other}
    assert len(http_server.requests) == 1
    assert len(proxy.requests) == 1


def _requests_version() -> tuple[int, ...]:
    return tuple(int(p) for p in requests.__version__.split(".")[:2])


@pytest.mark.parametrize("client", ["requests", "keepwarm"])
def test_no_proxy_entry_matches_hosts_not_letters(
    client: str, http_server: LocalServer, proxy: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NO_PROXY=calhost must not bypass the proxy for localhost: it is another name that
    ends in the same letters (requests < 2.34 matched it: requests 7427)."""
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "calhost,.127.0.0.2")
    session = requests.Session() if client == "requests" else keepwarm.Session()
    other = f"http://localhost:{http_server.port}/echo"
    with session:
        answer = _get_json(session, other)
    if client == "requests" and _requests_version() < (2, 34):
        assert answer["path"] == "/echo"  # the old greedy match: straight past the proxy
        return
    assert answer == {"via": "proxy", "target": other}
    assert http_server.requests == []


@pytest.mark.parametrize(
    ("host", "no_proxy", "bypass"),
    [
        ("example.com", "example.com", True),
        ("api.example.com", "example.com", True),
        ("api.example.com", ".example.com", True),
        ("example.com", ".example.com", True),
        ("notexample.com", "example.com", False),
        ("example.com", "ample.com", False),
        ("example.com:8080", "example.com:8080", True),
        ("example.com:8080", ".example.com:8080", True),
        ("example.com:8081", "example.com:8080", False),
        ("example.com", "other.test, example.com", True),
        ("10.1.2.3", "10.0.0.0/8", True),
        ("10.1.2.3", "10.1.2.4", False),
    ],
)
def test_no_proxy_matching_rules(host: str, no_proxy: str, bypass: bool) -> None:
    """The snapshot's NO_PROXY rule is requests 2.34's (pure logic: no traffic). With
    requests >= 2.34 installed, requests' own function agrees case by case."""
    from keepwarm._upstream.environment import EnvironmentSnapshot

    snapshot = EnvironmentSnapshot.empty()
    url = f"http://{host}/"
    assert snapshot.should_bypass(url, no_proxy) is bypass
    if _requests_version() >= (2, 34):
        from requests.utils import should_bypass_proxies

        assert bool(should_bypass_proxies(url, no_proxy)) is bypass


def test_no_proxy_set_after_creation_is_not_seen_until_reload(
    http_server: LocalServer, proxy: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    url = http_server.url + "/echo"
    with keepwarm.Session() as session:
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert _get_json(session, url)["via"] == "proxy"
        session.reload_environment()
        assert _get_json(session, url)["path"] == "/echo"


# -- netrc ----------------------------------------------------------------------------------


def test_netrc_in_home_sends_authorization(
    http_server: LocalServer, tmp_home: pathlib.Path
) -> None:
    _write_netrc(tmp_home / ".netrc", "127.0.0.1", "alice", "s3cret")
    with keepwarm.Session() as session:
        headers = _get_json(session, http_server.url + "/headers")
        assert headers["Authorization"] == _basic("alice", "s3cret")
        # Explicit auth wins over netrc.
        headers = _get_json(session, http_server.url + "/headers", auth=("bob", "pw"))
        assert headers["Authorization"] == _basic("bob", "pw")


def test_netrc_named_by_the_netrc_variable(
    http_server: LocalServer, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "credentials"
    _write_netrc(path, "127.0.0.1", "carol", "pw1")
    monkeypatch.setenv("NETRC", str(path))
    with keepwarm.Session() as session:
        headers = _get_json(session, http_server.url + "/headers")
    assert headers["Authorization"] == _basic("carol", "pw1")


def test_netrc_for_another_host_is_not_sent(
    http_server: LocalServer, tmp_home: pathlib.Path
) -> None:
    _write_netrc(tmp_home / ".netrc", "example.invalid", "alice", "s3cret")
    with keepwarm.Session() as session:
        assert "Authorization" not in _get_json(session, http_server.url + "/headers")


def test_netrc_changes_after_creation_are_seen_only_after_reload(
    http_server: LocalServer, tmp_home: pathlib.Path
) -> None:
    netrc = tmp_home / ".netrc"
    url = http_server.url + "/headers"
    with keepwarm.Session() as session:
        # Written after the session was created: not read yet.
        _write_netrc(netrc, "127.0.0.1", "alice", "first")
        assert "Authorization" not in _get_json(session, url)
        session.reload_environment()
        assert _get_json(session, url)["Authorization"] == _basic("alice", "first")

        # Changed: the snapshot still has the old credentials.
        _write_netrc(netrc, "127.0.0.1", "alice", "second")
        assert _get_json(session, url)["Authorization"] == _basic("alice", "first")
        session.reload_environment()
        assert _get_json(session, url)["Authorization"] == _basic("alice", "second")

        # Removed: likewise.
        netrc.unlink()
        assert _get_json(session, url)["Authorization"] == _basic("alice", "second")
        session.reload_environment()
        assert "Authorization" not in _get_json(session, url)


# -- trust_env=False --------------------------------------------------------------------------


@pytest.fixture
def everything_in_the_environment(
    proxy: LocalServer,
    tmp_home: pathlib.Path,
    ca_bundle: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_bundle)
    _write_netrc(tmp_home / ".netrc", "127.0.0.1", "alice", "s3cret")


@pytest.mark.usefixtures("everything_in_the_environment")
def test_trust_env_false_ignores_the_environment(
    http_server: LocalServer, https_server: LocalServer, proxy: LocalServer
) -> None:
    with keepwarm.Session(trust_env=False) as session:
        echoed = _get_json(session, http_server.url + "/echo")
        # Not through the proxy, no netrc credentials.
        assert echoed["path"] == "/echo"
        assert "Authorization" not in echoed["headers"]
        # REQUESTS_CA_BUNDLE ignored: the test CA is not trusted.
        with pytest.raises(requests.exceptions.SSLError):
            _get_json(session, https_server.url + "/echo")
        session.reload_environment()
        assert "Authorization" not in _get_json(session, http_server.url + "/headers")
    assert proxy.requests == []


@pytest.mark.usefixtures("everything_in_the_environment")
def test_trust_env_set_false_after_creation_ignores_the_snapshot(
    http_server: LocalServer, https_server: LocalServer, proxy: LocalServer
) -> None:
    with keepwarm.Session() as session:
        # With trust_env the environment applies (the proxy answers for http://)...
        assert _get_json(session, http_server.url + "/echo")["via"] == "proxy"
        session.trust_env = False
        # ...without it, nothing of it does.
        echoed = _get_json(session, http_server.url + "/echo")
        assert echoed["path"] == "/echo"
        assert "Authorization" not in echoed["headers"]
        with pytest.raises(requests.exceptions.SSLError):
            _get_json(session, https_server.url + "/echo")
    assert len(proxy.requests) == 1


# -- CA bundle variables ----------------------------------------------------------------------


def test_requests_ca_bundle_makes_a_default_session_trust_the_server(
    https_server: LocalServer, ca_bundle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_bundle)
    with keepwarm.Session() as session:
        assert session.verify is True
        assert _get_json(session, https_server.url + "/echo")["method"] == "GET"


def test_curl_ca_bundle_is_read_too(
    https_server: LocalServer, ca_bundle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CURL_CA_BUNDLE", ca_bundle)
    with keepwarm.Session() as session:
        assert _get_json(session, https_server.url + "/echo")["method"] == "GET"


def test_requests_ca_bundle_set_after_creation_is_seen_only_after_reload(
    https_server: LocalServer, ca_bundle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with keepwarm.Session() as session:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_bundle)
        with pytest.raises(requests.exceptions.SSLError):
            _get_json(session, https_server.url + "/echo")
        session.reload_environment()
        assert _get_json(session, https_server.url + "/echo")["method"] == "GET"


def test_explicit_session_verify_wins_over_requests_ca_bundle(
    https_server: LocalServer,
    ca_bundle: str,
    other_ca_bundle: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", other_ca_bundle)
    url = https_server.url + "/echo"
    with keepwarm.Session(verify=ca_bundle) as session:
        assert _get_json(session, url)["method"] == "GET"
    with keepwarm.Session() as session:
        # Where nobody chose a CA, the variable applies (and does not trust the server)...
        with pytest.raises(requests.exceptions.SSLError):
            _get_json(session, url)
        # ...a session.verify set later is a choice, and wins.
        session.verify = ca_bundle
        assert _get_json(session, url)["method"] == "GET"
        # A per-request verify wins too.
        session.verify = True
        assert _get_json(session, url, verify=ca_bundle)["method"] == "GET"


def test_contrast_plain_requests_lets_requests_ca_bundle_override_session_verify(
    https_server: LocalServer,
    ca_bundle: str,
    other_ca_bundle: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # requests issue 3829: the variable replaces the per-request verify=None before the
    # merge with session.verify, so the attribute never gets a say.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", other_ca_bundle)
    url = https_server.url + "/echo"
    with requests.Session() as session:
        session.verify = ca_bundle
        with pytest.raises(requests.exceptions.SSLError):
            _get_json(session, url)
        # Only a per-request verify gets through.
        assert _get_json(session, url, verify=ca_bundle)["method"] == "GET"


def test_session_verify_false_wins_over_requests_ca_bundle(
    https_server: LocalServer, other_ca_bundle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from urllib3.exceptions import InsecureRequestWarning

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", other_ca_bundle)
    with keepwarm.Session(verify=False) as session, pytest.warns(InsecureRequestWarning):
        assert _get_json(session, https_server.url + "/echo")["method"] == "GET"
