"""The test servers themselves: keep-alive, TLS, counters, routes, fault scripts, clean close.

These use plain ``requests`` on purpose: the servers must be trustworthy before they are
used to judge keepwarm.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from servers import (
    Flaky,
    Headers,
    LocalServer,
    RawServer,
    ServerRequest,
    ServerResponse,
    close_immediately,
    default_handler,
    reset_after_request,
    respond_with,
    silent,
)


def _server_threads(port: int) -> list[threading.Thread]:
    prefix = f"keepwarm-server-{port}-"
    return [t for t in threading.enumerate() if t.name.startswith(prefix) and t.is_alive()]


def _open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # not Linux
        return None


def _raw_exchange(server: LocalServer, data: bytes, *, timeout: float = 5.0) -> bytes:
    """Send *data* on a fresh connection and read until the server closes it."""
    with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


# -- keep-alive and connection counting ------------------------------------------------


def test_session_reuses_one_connection_for_100_requests(http_server: LocalServer) -> None:
    with requests.Session() as session:
        for _ in range(100):
            response = session.get(http_server.url + "/", timeout=5)
            assert response.status_code == 200
            assert response.content == b"ok"
    assert http_server.connections_accepted == 1
    assert http_server.requests_handled == 100
    assert len(set(http_server.client_ports)) == 1
    assert {r.connection_index for r in http_server.requests} == {0}


def test_requests_get_opens_one_connection_per_call(http_server: LocalServer) -> None:
    for _ in range(100):
        assert requests.get(http_server.url + "/", timeout=5).content == b"ok"
    assert http_server.connections_accepted == 100
    assert http_server.requests_handled == 100
    ports = http_server.client_ports
    assert len(ports) == 100
    assert [r.client_port for r in http_server.requests] == ports


def test_connection_close_from_client_is_honoured(http_server: LocalServer) -> None:
    with requests.Session() as session:
        for _ in range(3):
            session.get(http_server.url + "/", headers={"Connection": "close"}, timeout=5)
    assert http_server.connections_accepted == 3


def test_close_route_ends_the_connection(http_server: LocalServer) -> None:
    with requests.Session() as session:
        response = session.get(http_server.url + "/close", timeout=5)
        assert response.headers["Connection"] == "close"
        assert response.text == "ok"
        session.get(http_server.url + "/", timeout=5)
    assert http_server.connections_accepted == 2


def test_handler_close_and_connection_header(make_server) -> None:
    def handler(request: ServerRequest) -> ServerResponse:
        if request.route == "/header":
            return ServerResponse(200, [("Connection", "close")], b"bye")
        return ServerResponse(200, [], b"bye", close=True)

    server = make_server(handler)
    with requests.Session() as session:
        for path in ("/header", "/flag", "/header"):
            response = session.get(server.url + path, timeout=5)
            assert response.headers["Connection"] == "close"
    assert server.connections_accepted == 3


def test_http10_keep_alive_and_pipelining(http_server: LocalServer) -> None:
    pipelined = (
        b"GET /?a=1 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /?a=2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        b"GET /?a=3 HTTP/1.0\r\n\r\n"
    )
    reply = _raw_exchange(http_server, pipelined)
    assert reply.count(b"HTTP/1.1 200 OK\r\n") == 3
    assert reply.count(b"Connection: keep-alive\r\n") == 1
    assert reply.endswith(b"Connection: close\r\n\r\nok")
    assert http_server.connections_accepted == 1
    assert [r.query["a"] for r in http_server.requests] == ["1", "2", "3"]
    assert [r.http_version for r in http_server.requests] == ["HTTP/1.1", "HTTP/1.0", "HTTP/1.0"]


# -- TLS ------------------------------------------------------------------------------


def test_https_with_the_trustme_ca(https_server: LocalServer, ca_bundle: str) -> None:
    assert https_server.url.startswith("https://127.0.0.1:")
    assert requests.get(https_server.url + "/", verify=ca_bundle, timeout=5).text == "ok"
    with requests.Session() as session:
        for _ in range(20):
            assert session.get(https_server.url + "/", verify=ca_bundle, timeout=5).ok
    assert https_server.connections_accepted == 2
    assert https_server.requests_handled == 21


def test_https_unknown_ca_fails_and_server_survives(
    https_server: LocalServer, ca_bundle: str
) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(https_server.url + "/", timeout=5)  # certifi does not know our CA
    assert requests.get(https_server.url + "/", verify=ca_bundle, timeout=5).ok


def test_tls_handshake_does_not_block_other_clients(
    https_server: LocalServer, ca_bundle: str
) -> None:
    with socket.create_connection((https_server.host, https_server.port)):
        # This client never says hello; another one must still be served promptly.
        assert https_server.wait_for_connections(1)
        started = time.monotonic()
        assert requests.get(https_server.url + "/", verify=ca_bundle, timeout=5).ok
        assert time.monotonic() - started < 2


# -- counters -------------------------------------------------------------------------


def test_recorded_requests_and_reset(http_server: LocalServer) -> None:
    with requests.Session() as session:
        session.post(
            http_server.url + "/echo?x=1&x=2&y=",
            data=b"payload",
            headers={"X-Test": "yes"},
            timeout=5,
        )
        (request,) = http_server.requests
        assert request.method == "POST"
        assert request.path == "/echo?x=1&x=2&y="
        assert request.route == "/echo"
        assert request.query == {"x": "2", "y": ""}
        assert request.query_items == (("x", "1"), ("x", "2"), ("y", ""))
        assert request.headers["x-test"] == "yes"
        assert request.headers["X-TEST"] == "yes"
        assert "Content-Length" in request.headers
        assert request.body == b"payload"
        assert request.client_port == http_server.client_ports[0]
        assert request.connection_index == 0

        http_server.reset()
        assert http_server.connections_accepted == 0
        assert http_server.client_ports == []
        assert http_server.requests_handled == 0
        assert http_server.requests == []

        session.get(http_server.url + "/", timeout=5)  # same kept-alive connection
        assert http_server.connections_accepted == 0
        assert http_server.requests_handled == 1
        assert http_server.requests[0].connection_index == 0


def test_wait_for_requests(http_server: LocalServer) -> None:
    assert not http_server.wait_for_requests(1, timeout=0.05)

    def later() -> None:
        time.sleep(0.05)
        requests.get(http_server.url + "/", timeout=5).close()

    thread = threading.Thread(target=later)
    thread.start()
    try:
        assert http_server.wait_for_requests(1, timeout=5)
    finally:
        thread.join(5)


def test_record_requests_false_keeps_counting(make_server) -> None:
    server = make_server(record_requests=False)
    requests.get(server.url + "/", timeout=5)
    assert server.requests_handled == 1
    assert server.requests == []


def test_headers_mapping() -> None:
    headers = Headers([("Set-Cookie", "a=1"), ("X-One", "1"), ("set-cookie", "b=2")])
    assert headers["SET-COOKIE"] == "a=1, b=2"
    assert headers.get_all("set-cookie") == ["a=1", "b=2"]
    assert list(headers) == ["Set-Cookie", "X-One"]
    assert len(headers) == 2
    assert "x-one" in headers
    assert headers.to_dict() == {"Set-Cookie": "a=1, b=2", "X-One": "1"}
    assert headers.raw[2] == ("set-cookie", "b=2")


# -- default routes -------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 100_000, 10_000_000])
def test_bytes_route(http_server: LocalServer, n: int) -> None:
    response = requests.get(http_server.url + f"/bytes?n={n}", timeout=10)
    assert response.status_code == 200
    assert len(response.content) == n
    assert response.headers["Content-Length"] == str(n)


@pytest.mark.parametrize(
    "path",
    [
        "/bytes?n=-1",
        "/bytes?n=10000001",
        "/bytes?n=abc",
        "/sleep",
        "/sleep?s=31",
        "/sleep?s=nan",
        "/status/99",
        "/status/600",
        "/status/abc",
        "/status/503?retry_after=-1",
        "/redirect",
        "/redirect?to=http://example.com/",
        "/redirect?to=//example.com/",
        "/redirect?to=/&status=300",
        "/cookies/set?bad%20name=1",
        "/cookies/set?a=x%3By",
    ],
)
def test_invalid_parameters_give_400(http_server: LocalServer, path: str) -> None:
    response = requests.get(http_server.url + path, timeout=5, allow_redirects=False)
    assert response.status_code == 400, response.text
    assert response.text.strip()


def test_root_and_unknown_routes(http_server: LocalServer) -> None:
    response = requests.get(http_server.url + "/", timeout=5)
    assert (response.status_code, response.text) == (200, "ok")
    assert requests.get(http_server.url + "/nope", timeout=5).status_code == 404
    head = requests.head(http_server.url + "/bytes?n=10", timeout=5)
    assert head.headers["Content-Length"] == "10"
    assert head.content == b""


def test_echo_headers_and_chunked_body(http_server: LocalServer) -> None:
    echoed = requests.put(
        http_server.url + "/echo?q=1",
        data=iter([b"ab", b"", b"cd"]),  # a generator body is sent chunked
        headers={"X-A": "1"},
        timeout=5,
    ).json()
    assert echoed["method"] == "PUT"
    assert echoed["path"] == "/echo?q=1"
    assert echoed["query"] == {"q": "1"}
    assert echoed["body"] == "abcd"
    assert echoed["headers"]["X-A"] == "1"
    assert echoed["headers"]["Transfer-Encoding"] == "chunked"
    headers = requests.get(http_server.url + "/headers", headers={"X-B": "2"}, timeout=5).json()
    assert headers["X-B"] == "2"
    assert headers["Host"] == f"127.0.0.1:{http_server.port}"


def test_cookie_routes(http_server: LocalServer) -> None:
    with requests.Session() as session:
        response = session.get(http_server.url + "/cookies/set?a=1&b=two", timeout=5)
        assert response.status_code == 200
        assert response.raw.headers.getlist("Set-Cookie") == ["a=1; Path=/", "b=two; Path=/"]
        assert session.get(http_server.url + "/cookies", timeout=5).json() == {
            "a": "1",
            "b": "two",
        }
    assert requests.get(http_server.url + "/cookies", timeout=5).json() == {}


def test_status_route(http_server: LocalServer) -> None:
    response = requests.get(http_server.url + "/status/503?retry_after=2", timeout=5)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    response = requests.get(http_server.url + "/status/429", params={"retry_after": date})
    assert (response.status_code, response.headers["Retry-After"]) == (429, date)
    response = requests.get(http_server.url + "/status/204", timeout=5)
    assert response.status_code == 204
    assert "Content-Length" not in response.headers
    assert "Retry-After" not in requests.get(http_server.url + "/status/500", timeout=5).headers


def test_sleep_route_and_read_timeout(http_server: LocalServer) -> None:
    started = time.monotonic()
    assert requests.get(http_server.url + "/sleep?s=0.2", timeout=5).text == "ok"
    assert time.monotonic() - started >= 0.2
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(http_server.url + "/sleep?s=5", timeout=(2, 0.1))


def test_redirect_route(http_server: LocalServer) -> None:
    response = requests.get(http_server.url + "/redirect?to=/echo&status=307", timeout=5)
    assert response.status_code == 200
    assert response.history[0].status_code == 307
    assert response.json()["path"] == "/echo"
    absolute = f"{http_server.url}/headers"
    response = requests.get(http_server.url + "/redirect", params={"to": absolute}, timeout=5)
    assert response.url == absolute


def test_header_block_too_large_gives_431(http_server: LocalServer) -> None:
    response = requests.get(http_server.url + "/", headers={"X-Big": "a" * 70_000}, timeout=5)
    assert response.status_code == 431
    assert requests.get(http_server.url + "/", timeout=5).ok


def test_malformed_requests(http_server: LocalServer) -> None:
    assert _raw_exchange(http_server, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert _raw_exchange(http_server, b"GET / HTTP/2.0\r\n\r\n").startswith(b"HTTP/1.1 505 ")
    bad_length = b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"
    assert _raw_exchange(http_server, bad_length).startswith(b"HTTP/1.1 400 ")
    bad_chunk = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    assert _raw_exchange(http_server, bad_chunk).startswith(b"HTTP/1.1 400 ")
    huge = b"POST / HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n"
    assert _raw_exchange(http_server, huge).startswith(b"HTTP/1.1 413 ")


def test_expect_100_continue(http_server: LocalServer) -> None:
    with socket.create_connection((http_server.host, http_server.port), timeout=5) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hi")
        assert b'"body": "hi"' in sock.recv(65536)


# -- handlers -------------------------------------------------------------------------


def test_handler_exception_gives_500_and_is_logged(
    make_server, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(request: ServerRequest) -> ServerResponse:
        if request.route == "/boom":
            raise RuntimeError("boom")
        return default_handler(request)

    server = make_server(handler)
    with (
        caplog.at_level(logging.ERROR, logger="keepwarm.bench.server"),
        requests.Session() as session,
    ):
        assert session.get(server.url + "/boom", timeout=5).status_code == 500
        assert session.get(server.url + "/", timeout=5).text == "ok"
    assert server.connections_accepted == 1  # the 500 did not cost the connection
    assert any("handler failed" in r.getMessage() for r in caplog.records)


def test_handler_returning_garbage_gives_500(make_server) -> None:
    server = make_server(lambda request: "not a response")
    assert requests.get(server.url + "/", timeout=5).status_code == 500
    bad_header = make_server(lambda request: ServerResponse(200, [("X", "a\r\nb")]))
    assert requests.get(bad_header.url + "/", timeout=5).status_code == 500


def test_response_delay(make_server) -> None:
    server = make_server(lambda request: ServerResponse(200, [], b"late", delay=0.2))
    started = time.monotonic()
    assert requests.get(server.url + "/", timeout=5).content == b"late"
    assert time.monotonic() - started >= 0.2


def test_flaky_fails_then_recovers_per_path(make_server) -> None:
    flaky = Flaky(times=2, status=503, retry_after=1)
    server = make_server(flaky)
    with requests.Session() as session:
        statuses = [session.get(server.url + "/", timeout=5).status_code for _ in range(3)]
        assert statuses == [503, 503, 200]
        first = session.get(server.url + "/echo", timeout=5)
        assert (first.status_code, first.headers["Retry-After"]) == (503, "1")
    assert flaky.count("/") == 3
    assert flaky.counts == {"/": 3, "/echo": 1}
    flaky.reset()
    assert flaky.counts == {}


def test_flaky_with_custom_then(make_server) -> None:
    flaky = Flaky(times=1, status=429, then=lambda r: ServerResponse(201, [], b"made"))
    server = make_server(flaky)
    assert requests.get(server.url + "/x", timeout=5).status_code == 429
    assert requests.get(server.url + "/x?again", timeout=5).status_code == 201


# -- lifecycle ------------------------------------------------------------------------


def test_close_leaves_no_thread_or_socket(server_ssl_context, ca_bundle: str) -> None:
    # Earlier tests' garbage (a socket in a reference cycle) must not be collected, and
    # its descriptor closed, in the middle of this count.
    gc.collect()
    fds_before = _open_fds()
    for context in (None, server_ssl_context):
        server = LocalServer(default_handler, ssl_context=context).start()
        port = server.port
        verify = ca_bundle if context else True
        session = requests.Session()
        try:
            # An idle kept-alive connection, a client that never sends, a slow request.
            assert session.get(server.url + "/", verify=verify, timeout=5).ok
            idle = socket.create_connection((server.host, port))
            slow = threading.Thread(
                target=_expect_failure,
                args=(server.url + "/sleep?s=10", verify),
            )
            slow.start()
            assert server.wait_for_requests(2)
            assert server.open_connections == 3
            started = time.monotonic()
            server.close()
            server.close()  # idempotent
            assert time.monotonic() - started < 2
            slow.join(5)
            assert not slow.is_alive()
            assert _server_threads(port) == []
            assert server.open_connections == 0
            with pytest.raises(OSError):
                socket.create_connection((server.host, port), timeout=1).close()
        finally:
            idle.close()
            session.close()
            server.close()
    if fds_before is not None:
        assert _open_fds() == fds_before


def _expect_failure(url: str, verify: str | bool) -> None:
    try:
        requests.get(url, verify=verify, timeout=5)
    except requests.exceptions.ConnectionError:
        return
    raise AssertionError("the request should have failed when the server closed")


def test_idle_timeout_closes_quiet_connections(make_server) -> None:
    server = make_server(idle_timeout=0.1)
    with requests.Session() as session:
        assert session.get(server.url + "/", timeout=5).ok
        assert server.wait_for_no_connections(5.0)
        assert session.get(server.url + "/", timeout=5).ok  # urllib3 notices, reconnects
    assert server.connections_accepted == 2


def test_server_refuses_restart_and_port_before_start() -> None:
    server = LocalServer(default_handler)
    with pytest.raises(RuntimeError):
        _ = server.url
    server.close()
    with pytest.raises(RuntimeError):
        server.start()
    with pytest.raises(ValueError):
        LocalServer(default_handler, idle_timeout=0)


def test_server_process_command_protocol() -> None:
    command = [sys.executable, "-m", "keepwarm.bench._server"]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdin is not None and proc.stdout is not None
            port = int(proc.stdout.readline())
            assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).text == "ok"
            proc.stdin.write("stats\n")
            proc.stdin.flush()
            stats = json.loads(proc.stdout.readline())
            assert stats == {"connections_accepted": 1, "requests_handled": 1}
            proc.stdin.write("reset\nstats\nbogus\nquit\n")
            proc.stdin.flush()
            assert proc.stdout.readline().strip() == "ok"
            assert json.loads(proc.stdout.readline())["requests_handled"] == 0
            assert "error" in json.loads(proc.stdout.readline())
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


# -- raw fault servers ----------------------------------------------------------------


def test_silent_server_gives_read_timeout(raw_server) -> None:
    server = raw_server(silent)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(server.url + "/", timeout=(2, 0.2))
    assert time.monotonic() - started < 2
    assert server.connections_accepted == 1


def test_close_immediately_gives_connection_error(raw_server) -> None:
    server = raw_server(close_immediately)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(server.url + "/", timeout=2)
    assert server.errors == []


def test_reset_after_request_gives_connection_error(raw_server) -> None:
    server = raw_server(reset_after_request)
    with pytest.raises(requests.exceptions.ConnectionError) as info:
        requests.get(server.url + "/", timeout=2)
    assert "reset" in str(info.value).lower() or "aborted" in str(info.value).lower()


def test_respond_with_sends_bytes_verbatim(raw_server) -> None:
    server = raw_server(respond_with(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"))
    assert requests.get(server.url + "/", timeout=2).text == "hello"
    truncated = raw_server(respond_with(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nhe"))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):  # IncompleteRead
        requests.get(truncated.url + "/", timeout=2)


def test_raw_server_close_is_prompt_and_complete() -> None:
    server = RawServer(silent).start()
    clients = [socket.create_connection(server.address, timeout=5) for _ in range(3)]
    try:
        for client in clients:
            client.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert server.wait_for_connections(3)
        started = time.monotonic()
        server.close()
        server.close()
        assert time.monotonic() - started < 2
        for client in clients:  # the server side is gone: EOF
            assert client.recv(10) == b""
        raw_threads = [t for t in threading.enumerate() if t.name.startswith("raw-server-")]
        assert [t for t in raw_threads if str(server.port) in t.name] == []
    finally:
        for client in clients:
            client.close()


def test_backlog_full_address_gives_connect_timeout(backlog_full_address) -> None:
    host, port = backlog_full_address
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ConnectTimeout):
        requests.get(f"http://{host}:{port}/", timeout=(0.3, 1))
    assert time.monotonic() - started < 2
