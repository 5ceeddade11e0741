"""Logging and secrets: keepwarm's DEBUG events, its silence by default, and that no
credential, cookie or query-string token leaks into logs, stats, advice, reprs or errors.

Events are logged to the ``keepwarm`` logger, each message starting with its name
(``connection.connect_tcp.started origin=127.0.0.1:8080``), so the tests read the first
word of every record.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest
import requests

import keepwarm
from servers import Flaky, LocalServer, ServerRequest, ServerResponse, reset_after_request

ServerFactory = Callable[..., LocalServer]
SECRETS = [f"SECRET{i}" for i in range(1, 7)]
#: How "user:SECRET4" travels once requests turns URL credentials into Basic auth.
SECRET4_BASIC = base64.b64encode(b"user:SECRET4").decode()


def keepwarm_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "keepwarm" or r.name.startswith("keepwarm.")]


def events(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The event names logged to ``keepwarm``, in order."""
    return [r.getMessage().split()[0] for r in keepwarm_records(caplog)]


def fetch(session: requests.Session, url: str, **kwargs: Any) -> requests.Response:
    with session.get(url, timeout=10, **kwargs) as response:
        _ = response.content
    return response


def refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- events ---------------------------------------------------------------------------------


def test_cold_and_warm_https_request_events(
    https_server: LocalServer, ca_bundle: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="keepwarm")
    with keepwarm.Session(verify=ca_bundle) as s:
        fetch(s, https_server.url)
        cold = events(caplog)
        caplog.clear()
        fetch(s, https_server.url)
        warm = events(caplog)
    assert cold == [
        "connection.connect_tcp.started",
        "connection.connect_tcp.complete",
        "connection.start_tls.complete",
    ]
    assert warm == ["connection.reused"]


def test_event_messages_carry_origin_and_durations(
    https_server: LocalServer, ca_bundle: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="keepwarm")
    with keepwarm.Session(verify=ca_bundle) as s:
        fetch(s, https_server.url)
        fetch(s, https_server.url)
    where = f"origin=127.0.0.1:{https_server.port}"
    messages = {r.getMessage().split()[0]: r.getMessage() for r in keepwarm_records(caplog)}
    assert all(where in m for m in messages.values()), messages
    assert "seconds=" in messages["connection.connect_tcp.complete"]
    assert "seconds=" in messages["connection.start_tls.complete"]
    assert "version=TLS" in messages["connection.start_tls.complete"]
    assert all(r.levelno == logging.DEBUG for r in keepwarm_records(caplog))


def test_cold_http_request_has_no_tls_event(
    http_server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="keepwarm")
    with keepwarm.Session() as s:
        fetch(s, http_server.url)
        fetch(s, http_server.url)
    assert events(caplog) == [
        "connection.connect_tcp.started",
        "connection.connect_tcp.complete",
        "connection.reused",
    ]


def test_refused_connection_event(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="keepwarm")
    port = refused_port()
    with keepwarm.Session(max_retries=0) as s, pytest.raises(requests.ConnectionError):
        s.get(f"http://127.0.0.1:{port}/", timeout=5)
    assert events(caplog) == ["connection.connect_tcp.started", "connection.connect_tcp.failed"]
    failed = keepwarm_records(caplog)[-1].getMessage()
    assert f"origin=127.0.0.1:{port}" in failed
    assert "error=ConnectionRefusedError" in failed


def test_status_retry_event(make_server: ServerFactory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="keepwarm")
    server = make_server(Flaky(times=2, status=503))
    with keepwarm.Session(max_retries=keepwarm.RetryPolicy(backoff_factor=0)) as s:
        assert fetch(s, server.url).status_code == 200
    retries = [
        r.getMessage() for r in keepwarm_records(caplog) if "request.retry" in r.getMessage()
    ]
    assert len(retries) == 2
    assert retries[0].startswith(f"request.retry origin=http://127.0.0.1:{server.port} ")
    assert "attempt=1 status=503" in retries[0]
    assert "attempt=2 status=503" in retries[1]


def test_connection_error_retry_event(
    raw_server: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="keepwarm")
    server = raw_server(reset_after_request)
    policy = keepwarm.RetryPolicy(total=1, backoff_factor=0)
    with keepwarm.Session(max_retries=policy) as s, pytest.raises(requests.ConnectionError):
        s.get(server.url + "/", timeout=5)
    assert server.connections_accepted == 2
    assert events(caplog).count("request.retry") == 1


def test_pool_discarded_event(make_server: ServerFactory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="keepwarm")
    server = make_server(lambda r: ServerResponse(200, [], b"ok", delay=0.1))
    # guards=False: the pool saturates on purpose (the guard has tests of its own).
    with keepwarm.Session(pool_maxsize=1, guards=False) as s:
        threads = [threading.Thread(target=fetch, args=(s, server.url)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        discarded = s.stats().discarded
    assert discarded > 0
    assert events(caplog).count("pool.discarded") == discarded


# -- silent by default ----------------------------------------------------------------------


def test_keepwarm_logger_has_only_a_null_handler() -> None:
    logger = logging.getLogger("keepwarm")
    assert any(isinstance(h, logging.NullHandler) for h in logger.handlers)
    assert all(isinstance(h, logging.NullHandler) for h in logger.handlers)
    assert logger.propagate is True
    assert logger.level == logging.NOTSET  # the application decides


def test_nothing_printed_by_default(
    https_server: LocalServer, ca_bundle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with keepwarm.Session(verify=ca_bundle, pool_maxsize=1, max_retries=0) as s:
        for _ in range(3):
            fetch(s, https_server.url)
        with pytest.raises(requests.ConnectionError):
            s.get(f"http://127.0.0.1:{refused_port()}/", timeout=5)
        str(s.stats())
        s.stats().advice()
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


_SILENT_SCRIPT = """
import sys, threading
import keepwarm

url = sys.argv[1]
# guards=False: the guard's PoolSaturationWarning is a warning, not logging (test_guards*).
with keepwarm.Session(
    pool_maxsize=1, max_retries=keepwarm.RetryPolicy(backoff_factor=0), guards=False
) as s:
    def get():
        s.get(url + "/sleep?s=0.05", timeout=10).close()
    threads = [threading.Thread(target=get) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    s.get(url + "/status/503", timeout=10).close()
    assert s.stats().discarded > 0, s.stats()
"""


def test_a_fresh_process_prints_nothing(http_server: LocalServer) -> None:
    # Without pytest's logging handlers: no logging configured at all, as in an application
    # that never called logging.basicConfig(). Pool-full discards and retries happen.
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", _SILENT_SCRIPT, http_server.url],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == ""


# -- secrets --------------------------------------------------------------------------------


def _secret_handler(request: ServerRequest) -> ServerResponse:
    headers = [("Set-Cookie", "sid=SECRET6; Path=/"), ("Keep-Alive", "timeout=1, max=100")]
    if request.route == "/fail":
        return ServerResponse(503, headers, b"")
    return ServerResponse(200, headers, b"ok")


SECRET_HEADERS = {
    "Authorization": "Bearer SECRET1",
    "Cookie": "s=SECRET2",
    "Proxy-Authorization": "Basic SECRET3",
}


def _assert_no_secret(where: str, text: str) -> None:
    leaked = [s for s in (*SECRETS, SECRET4_BASIC) if s in text]
    assert not leaked, f"{where} contains {leaked}: {text!r}"


@pytest.fixture
def secret_server(make_server: ServerFactory) -> LocalServer:
    return make_server(_secret_handler, tls=True)


def _secret_url(server: LocalServer, path: str = "/", userinfo: bool = True) -> str:
    """A URL with a password and a token; without *userinfo* the ``Authorization`` header
    of the session is sent (requests replaces it by the URL's credentials otherwise)."""
    credentials = "user:SECRET4@" if userinfo else ""
    return f"https://{credentials}127.0.0.1:{server.port}{path}?token=SECRET5"


def test_secrets_stay_out_of_logs_stats_and_advice(
    secret_server: LocalServer, ca_bundle: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="keepwarm")
    policy = keepwarm.RetryPolicy(total=1, backoff_factor=0)
    # A 100 s read timeout against a fast server: advice to check for secrets.
    with keepwarm.Session(
        verify=ca_bundle, max_retries=policy, headers=SECRET_HEADERS, timeout=(3, 100)
    ) as s:
        for i in range(25):
            fetch(s, _secret_url(secret_server, userinfo=i % 2 == 0))
        fetch(s, _secret_url(secret_server, "/fail"))
        with s.get(_secret_url(secret_server), stream=True, timeout=10) as streamed:
            streamed_timings = keepwarm.timings(streamed)
        response = fetch(s, _secret_url(secret_server))
        stats = s.stats()
        session_repr = repr(s)
        cookies = {c.value for c in s.cookies if c.name == "sid"}
    # The secrets really were sent and received.
    sent = secret_server.requests
    assert {r.headers["Authorization"] for r in sent} == {
        "Bearer SECRET1",
        f"Basic {SECRET4_BASIC}",
    }
    assert all(r.headers["Proxy-Authorization"] == "Basic SECRET3" for r in sent)
    assert all(r.headers["Cookie"] == "s=SECRET2" for r in sent)
    assert response.headers["Set-Cookie"] == "sid=SECRET6; Path=/"
    assert cookies == {"SECRET6"}
    assert all("token=SECRET5" in r.path for r in sent)
    assert stats.retries == 1
    assert stats.advice(), "expected some advice to check (read timeout far above need)"

    records = keepwarm_records(caplog)
    assert {"connection.start_tls.complete", "connection.reused", "request.retry"} <= {
        r.getMessage().split()[0] for r in records
    }
    _assert_no_secret("keepwarm log records", "\n".join(r.getMessage() for r in records))
    _assert_no_secret("caplog.text", caplog.text)
    _assert_no_secret("str(stats)", str(stats))
    _assert_no_secret("stats.as_dict()", json.dumps(stats.as_dict()))
    _assert_no_secret("stats.advice()", "\n".join(stats.advice()))
    _assert_no_secret("repr(stats)", repr(stats))
    _assert_no_secret("repr(session)", session_repr)
    _assert_no_secret("repr(timings)", repr(keepwarm.timings(response)))
    _assert_no_secret("timings.as_dict()", json.dumps(keepwarm.timings(response).as_dict()))  # type: ignore[union-attr]
    _assert_no_secret("repr(streamed timings)", repr(streamed_timings))


def test_secrets_stay_out_of_shared_stats(secret_server: LocalServer, ca_bundle: str) -> None:
    s = keepwarm.session(verify=ca_bundle, headers=SECRET_HEADERS)
    fetch(s, _secret_url(secret_server))
    fetch(s, _secret_url(secret_server))
    stats = keepwarm.stats()
    assert stats.requests == 2
    _assert_no_secret("str(keepwarm.stats())", str(stats))
    _assert_no_secret("keepwarm.stats().as_dict()", json.dumps(stats.as_dict()))
    _assert_no_secret("repr(shared session)", repr(s))


def test_repr_of_a_session_with_credentials_in_base_url(secret_server: LocalServer) -> None:
    with keepwarm.Session(base_url=f"https://user:SECRET4@127.0.0.1:{secret_server.port}/") as s:
        _assert_no_secret("repr(session)", repr(s))
        assert "user:***@" in repr(s)


def test_pool_timeout_message_has_no_secrets(
    secret_server: LocalServer, ca_bundle: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="keepwarm")
    with (
        keepwarm.Session(
            verify=ca_bundle,
            headers=SECRET_HEADERS,
            pool_maxsize=1,
            pool_block=True,
            pool_timeout=0.2,
        ) as s,
        s.get(_secret_url(secret_server), stream=True, timeout=10) as held,
    ):
        with pytest.raises(keepwarm.PoolTimeout) as caught:
            s.get(_secret_url(secret_server), timeout=10)
        _ = held.content
    assert "pool_timeout=0.2" in str(caught.value)
    _assert_no_secret("str(PoolTimeout)", str(caught.value))
    _assert_no_secret("repr(PoolTimeout)", repr(caught.value))
    _assert_no_secret("caplog.text", caplog.text)


def test_session_closed_error_has_no_secrets(secret_server: LocalServer) -> None:
    s = keepwarm.Session(headers=SECRET_HEADERS)
    s.close()
    with pytest.raises(keepwarm.SessionClosedError) as caught:
        s.get(_secret_url(secret_server))
    message = str(caught.value)
    assert f"127.0.0.1:{secret_server.port}" in message
    _assert_no_secret("str(SessionClosedError)", message)
    _assert_no_secret("repr(SessionClosedError)", repr(caught.value))
