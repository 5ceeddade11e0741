"""The HTTP/2 test servers themselves: every route and fault does what it says.

The client tests of keepwarm's HTTP/2 engine lean on these servers, so their behaviour is
pinned here with third-party clients (httpx with ``http2=True``) and a raw ``h2`` client
(:mod:`servers.h2_client`) where frames matter: GOAWAY's last_stream_id, RST_STREAM codes,
concurrency seen by the server.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import ssl
import time
from collections.abc import Callable

import h2.settings
import httpx
import pytest
from h2.connection import ConnectionState
from h2.errors import ErrorCodes

from servers.asgi import HypercornServer
from servers.h2 import H2Server
from servers.h2_client import RawH2Client
from servers.nghttpd import NghttpdServer
from servers.nginx_h2 import NginxH2
from servers.routes import HALF_BODY_DECLARED, HALF_BODY_SENT, deterministic_bytes

MakeH2 = Callable[..., H2Server]


def _client(ca_bundle: str, *, http2: bool = True) -> httpx.Client:
    verify = ssl.create_default_context(cafile=ca_bundle)
    return httpx.Client(http2=http2, verify=verify, timeout=5.0, trust_env=False)


def test_deterministic_bytes() -> None:
    assert deterministic_bytes(300) == bytes(i % 256 for i in range(300))
    assert len(deterministic_bytes(70_000)) == 70_000


def test_core_routes_over_h2(h2_server: MakeH2, ca_bundle: str) -> None:
    server = h2_server()
    with _client(ca_bundle) as client:
        got = client.get(f"{server.url}/get")
        assert got.http_version == "HTTP/2"
        assert got.json() == {"method": "GET", "path": "/get", "http": "2"}
        assert client.get(f"{server.url}/bytes/1000").content == deterministic_bytes(1000)
        echo = client.post(f"{server.url}/echo", content=b"hello")
        assert echo.content == b"hello"
        assert echo.headers["x-body-length"] == "5"
        assert echo.headers["x-body-sha256"] == hashlib.sha256(b"hello").hexdigest()
        assert client.get(f"{server.url}/delay/30").json()["delay_ms"] == 30
        zipped = client.get(f"{server.url}/gzip", headers={"accept-encoding": "gzip"})
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.json()["gzipped"] is True
        assert client.get(f"{server.url}/status/418").status_code == 418
        moved = client.get(f"{server.url}/redirect?to=/get")
        assert (moved.status_code, moved.headers["location"]) == (302, "/get")
        cookies = client.get(f"{server.url}/set-cookie?a=1&b=2")
        assert cookies.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
        seen = client.get(f"{server.url}/headers", headers={"x-test": "yes"}).json()
        assert seen[":method"] == "GET"
        assert seen[":path"] == "/headers"
        assert seen[":authority"] == f"127.0.0.1:{server.port}"
        assert seen["x-test"] == "yes"
        with client.stream("GET", f"{server.url}/stream/3") as streamed:
            lines = [json.loads(line) for line in streamed.iter_lines() if line]
        assert lines == [{"chunk": 0}, {"chunk": 1}, {"chunk": 2}]
        assert client.get(f"{server.url}/nowhere").status_code == 404
    recorder = server.recorder
    assert recorder.wait_for_streams(11)
    assert recorder.connections_accepted == 1
    assert set(recorder.http_versions()) == {"2"}
    echo_record = next(s for s in recorder.streams if s.path == "/echo")
    assert (echo_record.method, echo_record.body_length) == ("POST", 5)
    assert all(s.processed and not s.refused for s in recorder.streams)
    assert server.errors == []


def test_ten_megabytes_both_ways_with_small_windows(h2_server: MakeH2, ca_bundle: str) -> None:
    # The default 64 KiB windows and 16 KiB frames: the download waits for the client's
    # WINDOW_UPDATEs and the upload for the server's.
    server = h2_server(initial_window_size=65_535, max_frame_size=16_384)
    size = 10_000_000
    body = deterministic_bytes(size)
    with _client(ca_bundle) as client:
        down = client.get(f"{server.url}/bytes/{size}")
        assert hashlib.sha256(down.content).digest() == hashlib.sha256(body).digest()
        up = client.post(f"{server.url}/echo", content=body)
        assert up.headers["x-body-length"] == str(size)
        assert up.headers["x-body-sha256"] == hashlib.sha256(body).hexdigest()
        assert len(up.content) == size
    assert server.recorder.wait_for_streams(2)
    assert server.recorder.streams[1].body_length == size


def test_streams_are_processed_concurrently(h2_server: MakeH2, ca_bundle: str) -> None:
    server = h2_server()
    with RawH2Client(server.port, ca_bundle) as client:
        sids = [client.request("/delay/200") for _ in range(8)]
        assert client.run_until(client.done(*sids))
        assert {client.streams[s].status for s in sids} == {200}
    recorder = server.recorder
    assert recorder.wait_for_streams(8)
    assert recorder.connections_accepted == 1
    assert recorder.max_open_streams == 8
    streams = recorder.streams
    # Every stream's answer overlaps every other's: the last one opened before the first
    # one closed.
    first_closed = min(s.closed or 0.0 for s in streams)
    assert max(s.opened for s in streams) < first_closed


def test_response_delay_does_not_serialise(h2_server: MakeH2, ca_bundle: str) -> None:
    server = h2_server(response_delay=0.1)
    with RawH2Client(server.port, ca_bundle) as client:
        sids = [client.request("/get") for _ in range(4)]
        assert client.run_until(client.done(*sids))
    assert server.recorder.wait_for_streams(4)
    assert server.recorder.max_open_streams == 4


def test_settings_are_announced(h2_server: MakeH2, ca_bundle: str) -> None:
    server = h2_server(max_concurrent_streams=3, initial_window_size=1000, max_frame_size=20000)
    with RawH2Client(server.port, ca_bundle) as client:
        assert client.run_until(lambda c: bool(c.settings))
        codes = h2.settings.SettingCodes
        assert client.settings[codes.MAX_CONCURRENT_STREAMS] == 3
        assert client.settings[codes.INITIAL_WINDOW_SIZE] == 1000
        assert client.settings[codes.MAX_FRAME_SIZE] == 20000
        # A body larger than the stream window still arrives (WINDOW_UPDATEs).
        sid = client.request("/echo", method="POST", body=b"x" * 1000)
        assert client.run_until(client.done(sid))
        assert bytes(client.streams[sid].body) == b"x" * 1000


def test_streams_beyond_the_limit_are_refused_not_fatal(h2_server: MakeH2, ca_bundle: str) -> None:
    server = h2_server(max_concurrent_streams=2)
    with RawH2Client(server.port, ca_bundle) as client:
        # Sent before the server's SETTINGS are read: the client cannot know the limit.
        sids = [client.request("/delay/100") for _ in range(4)]
        assert client.run_until(client.done(*sids))
        assert [client.streams[s].status for s in sids] == [200, 200, None, None]
        assert [client.streams[s].reset for s in sids][2:] == [ErrorCodes.REFUSED_STREAM] * 2
        again = client.request("/get")  # the connection lives on
        assert client.run_until(client.done(again))
        assert client.streams[again].status == 200
    assert server.recorder.wait_for(lambda r: len(r.refused) == 2)
    assert server.recorder.max_open_streams == 2


def test_goaway_after_n_streams(h2_server: MakeH2, ca_bundle: str) -> None:
    server = h2_server(goaway_after=2)
    with RawH2Client(server.port, ca_bundle) as client:
        sids = [client.request("/delay/50") for _ in range(4)]  # 1, 3, 5, 7
        assert client.run_until(lambda c: c.done(1, 3)(c) and c.closed)
        assert client.goaway is not None
        assert client.goaway.last_stream_id == 3
        assert client.goaway.error_code == ErrorCodes.NO_ERROR
        assert [client.streams[s].status for s in sids] == [200, 200, None, None]
    recorder = server.recorder
    assert recorder.wait_for(lambda r: len(r.streams) == 4 and r.connections[0].closed)
    assert [s.stream_id for s in recorder.processed] == [1, 3]
    assert [s.stream_id for s in recorder.refused] == [5, 7]
    assert recorder.connections[0].goaway_last_stream_id == 3


def test_goaway_after_waits_for_the_last_streams_upload(h2_server: MakeH2, ca_bundle: str) -> None:
    # GOAWAY goes out when the head arrives; the body (beyond one 64 KiB window) follows.
    server = h2_server(goaway_after=1)
    body = deterministic_bytes(300_000)
    with RawH2Client(server.port, ca_bundle) as client:
        sid = client.request("/echo", method="POST", body=body)
        assert client.run_until(lambda c: c.done(sid)(c) and c.closed)
        assert client.goaway is not None and client.goaway.last_stream_id == sid
        assert bytes(client.streams[sid].body) == body


@pytest.mark.parametrize("first", ["/delay/100", "/get"])
def test_goaway_route_refuses_its_own_stream(h2_server: MakeH2, ca_bundle: str, first: str) -> None:
    # The earlier stream still running, or already answered: last_stream_id is it.
    server = h2_server()
    with RawH2Client(server.port, ca_bundle) as client:
        slow = client.request(first)
        if first == "/get":
            assert client.run_until(client.done(slow))
        refused = client.request("/goaway")
        assert client.run_until(lambda c: c.done(slow)(c) and c.closed)
        assert client.goaway is not None
        assert client.goaway.last_stream_id == slow < refused
        assert client.streams[slow].status == 200
        assert client.streams[refused].status is None
    assert server.recorder.wait_for(lambda r: r.connections[0].closed)
    assert [s.stream_id for s in server.recorder.refused] == [refused]


def test_client_goaway_lets_open_streams_finish(h2_server: MakeH2, ca_bundle: str) -> None:
    server = h2_server()
    with RawH2Client(server.port, ca_bundle) as client:
        sid = client.request("/delay/100")
        client.conn.close_connection(last_stream_id=0)
        client.sock.sendall(client.conn.data_to_send())
        client.conn.state_machine.state = ConnectionState.CLIENT_OPEN  # to read the answer
        assert client.run_until(lambda c: c.done(sid)(c) and c.closed)
        assert client.streams[sid].status == 200
        assert client.goaway is not None and client.goaway.last_stream_id == sid
    assert server.errors == []


def test_reset_after_headers(h2_server: MakeH2, ca_bundle: str) -> None:
    server = h2_server()
    with RawH2Client(server.port, ca_bundle) as client:
        sid = client.request("/reset")
        assert client.run_until(client.done(sid))
        assert client.streams[sid].status == 200
        assert client.streams[sid].reset == ErrorCodes.INTERNAL_ERROR
        # The connection lives on.
        ok = client.request("/get")
        assert client.run_until(client.done(ok))
        assert client.streams[ok].status == 200


def test_refuse_before_processing(h2_server: MakeH2, ca_bundle: str) -> None:
    server = h2_server()
    with RawH2Client(server.port, ca_bundle) as client:
        sid = client.request("/refuse")
        assert client.run_until(client.done(sid))
        assert client.streams[sid].status is None
        assert client.streams[sid].reset == ErrorCodes.REFUSED_STREAM
    assert server.recorder.wait_for(lambda r: len(r.refused) == 1)
    assert server.recorder.processed == []


def test_close_drops_the_connection_without_goaway(h2_server: MakeH2, ca_bundle: str) -> None:
    server = h2_server()
    with RawH2Client(server.port, ca_bundle) as client:
        sid = client.request("/close")
        assert client.run_until(lambda c: c.closed)
        assert client.goaway is None
        assert client.streams[sid].status is None


def test_silent_and_half_keep_the_connection_open(h2_server: MakeH2, ca_bundle: str) -> None:
    server = h2_server()
    with RawH2Client(server.port, ca_bundle) as client:
        silent = client.request("/silent")
        half = client.request("/half")
        assert client.run_until(lambda c: len(c.streams[half].body) == HALF_BODY_SENT)
        assert not client.run_until(lambda c: c.closed or c.streams[silent].status, 0.3)
        result = client.streams[half]
        assert result.status == 200
        assert dict(result.headers)["content-length"] == str(HALF_BODY_DECLARED)
        assert not result.ended
        assert not client.closed
    assert server.recorder.wait_for(lambda r: len(r.processed) == 2)


def test_h1_tls_server_answers_http11(h1_tls_server: H2Server, ca_bundle: str) -> None:
    server = h1_tls_server
    with _client(ca_bundle) as client:  # offers h2 and http/1.1
        got = client.get(f"{server.url}/get")
        assert got.http_version == "HTTP/1.1"
        assert got.json()["http"] == "1.1"
        body = deterministic_bytes(200_000)
        echo = client.post(f"{server.url}/echo", content=body)
        assert echo.headers["x-body-sha256"] == hashlib.sha256(body).hexdigest()
        with client.stream("GET", f"{server.url}/stream/3") as streamed:
            assert len([line for line in streamed.iter_lines() if line]) == 3
        raw = client.get(f"{server.url}/gzip", headers={"accept-encoding": "gzip"})
        assert raw.headers["content-encoding"] == "gzip"
        assert raw.json()["gzipped"] is True
        assert client.get(f"{server.url}/status/503").status_code == 503
    recorder = server.recorder
    assert recorder.wait_for_streams(5)
    assert recorder.connections_accepted == 1  # keep-alive
    assert set(recorder.http_versions()) == {"1.1"}
    assert recorder.connections[0].alpn == "http/1.1"


def test_h1_tls_server_refuses_h2_only_clients_alpn(
    h1_tls_server: H2Server, ca_bundle: str
) -> None:
    with RawH2Client(h1_tls_server.port, ca_bundle) as client:
        assert client.alpn is None  # no common protocol: the client must not speak h2


def test_h2_server_serves_http11_clients(h2_server: MakeH2, ca_bundle: str) -> None:
    server = h2_server()
    with _client(ca_bundle, http2=False) as client:
        got = client.get(f"{server.url}/get")
        assert got.http_version == "HTTP/1.1"
    assert server.recorder.http_versions() == ["1.1"]


@pytest.mark.parametrize("path", ["/silent", "/half", "/delay/60000"])
def test_close_returns_promptly_with_open_streams(
    h2_server: MakeH2, ca_bundle: str, path: str
) -> None:
    server = h2_server()
    with RawH2Client(server.port, ca_bundle) as client:
        client.request(path)
        assert server.recorder.wait_for(lambda r: len(r.streams) == 1)
        server.close()
        assert client.run_until(lambda c: c.closed, timeout=2.0)


# -- hypercorn --------------------------------------------------------------------------


def test_hypercorn_serves_h2_and_records_versions(
    hypercorn_server: HypercornServer, ca_bundle: str
) -> None:
    url = hypercorn_server.url
    with _client(ca_bundle) as client:
        got = client.get(f"{url}/get")
        assert got.http_version == "HTTP/2"
        assert got.json()["http"] == "2"
        assert client.get(f"{url}/bytes/100000").content == deterministic_bytes(100_000)
        echo = client.post(f"{url}/echo", content=b"abc")
        assert (echo.content, echo.headers["x-body-length"]) == (b"abc", "3")
        assert echo.headers["x-body-sha256"] == hashlib.sha256(b"abc").hexdigest()
        assert client.get(f"{url}/status/201").status_code == 201
        seen = client.get(f"{url}/headers").json()
        assert (seen[":method"], seen[":path"]) == ("GET", "/headers")
        assert client.get(f"{url}/delay/10").json() == {"delay_ms": 10}
    with _client(ca_bundle, http2=False) as client:
        assert client.get(f"{url}/get").http_version == "HTTP/1.1"
    assert hypercorn_server.seen_versions() == ["2"] * 6 + ["1.1"]
    assert [entry["path"] for entry in hypercorn_server.seen()][:2] == ["/get", "/bytes/100000"]


def test_hypercorn_delays_overlap_on_one_connection(
    hypercorn_server: HypercornServer, ca_bundle: str
) -> None:
    with RawH2Client(hypercorn_server.port, ca_bundle) as client:
        sids = [client.request("/delay/300") for _ in range(20)]
        started = time.monotonic()
        assert client.run_until(client.done(*sids))
        # Twenty 300 ms delays at once take one delay, not twenty (hypercorn's own
        # concurrency, which the benchmark's "server latency" relies on).
        assert time.monotonic() - started < 3.0
        assert {client.streams[s].status for s in sids} == {200}
    assert hypercorn_server.seen_versions() == ["2"] * 20


def test_hypercorn_options(
    server_cert_files: tuple[str, str], ca_bundle: str, tmp_path: pathlib.Path
) -> None:
    certfile, keyfile = server_cert_files
    with (
        HypercornServer(
            certfile, keyfile, workdir=str(tmp_path), max_concurrent_streams=7
        ) as server,
        RawH2Client(server.port, ca_bundle) as client,
    ):
        assert client.run_until(lambda c: bool(c.settings))
        assert client.settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] == 7
    assert server.port  # closed: the child was killed
    assert server._proc is None


# -- nginx ------------------------------------------------------------------------------

MakeNginx = Callable[..., NginxH2]


def test_nginx_h2_logs_http2_and_connections(nginx_h2: MakeNginx, ca_bundle: str) -> None:
    server = nginx_h2(keepalive_requests=1000, files={"big.bin": deterministic_bytes(300_000)})
    with _client(ca_bundle) as client:
        for _ in range(3):
            assert client.get(f"{server.url}/").text == "ok"
        assert client.get(f"{server.url}/files/big.bin").content == deterministic_bytes(300_000)
        if server.has_put:
            upload = deterministic_bytes(1_000_000)
            assert client.put(f"{server.url}/files/up.bin", content=upload).status_code == 201
            assert client.get(f"{server.url}/files/up.bin").content == upload
    with _client(ca_bundle, http2=False) as client:
        assert client.get(f"{server.url}/").http_version == "HTTP/1.1"
    h2_count = 6 if server.has_put else 4
    entries = server.requests(expect=h2_count + 1)
    assert [e.protocol for e in entries] == ["HTTP/2.0"] * h2_count + ["HTTP/1.1"]
    assert [e.connection_requests for e in entries] == [*range(1, h2_count + 1), 1]
    assert len({e.connection for e in entries}) == server.connections() == 2
    assert entries[3].uri == "/files/big.bin"


def test_nginx_keepalive_requests_sends_goaway_before_the_last_answer(
    nginx_h2: MakeNginx, ca_bundle: str
) -> None:
    # What the HTTP/2 client must survive: with keepalive_requests N, nginx answers the
    # Nth request's HEADERS with GOAWAY(NO_ERROR, last_stream_id=that stream) *before*
    # the Nth response, never processes later streams (no RST_STREAM for them), and
    # closes once the Nth response is out.
    server = nginx_h2(keepalive_requests=3)
    with RawH2Client(server.port, ca_bundle) as client:
        sids = [client.request(f"/burst{i}") for i in range(5)]  # 1, 3, 5, 7, 9
        assert client.run_until(lambda c: c.closed)
        assert client.goaway is not None
        assert (client.goaway.last_stream_id, client.goaway.error_code) == (5, 0)
        assert [client.streams[s].status for s in sids] == [200, 200, 200, None, None]
        assert [client.streams[s].reset for s in sids] == [None] * 5
        order = client.events
        assert order.index(("ConnectionTerminated", 0)) < order.index(("ResponseReceived", 5))
    entries = server.requests(expect=3)
    assert [e.uri for e in entries] == ["/burst0", "/burst1", "/burst2"]
    assert {e.protocol for e in entries} == {"HTTP/2.0"}


def test_nginx_answers_before_reading_the_body_then_resets_no_error(
    nginx_h2: MakeNginx, ca_bundle: str
) -> None:
    # A body beyond nginx's 64 KiB stream window to a route that never reads it: nginx
    # answers in full, then RST_STREAM(NO_ERROR) (RFC 9113 8.1); the answer stands.
    # (httpx 0.29.0 waits for a WINDOW_UPDATE that never comes here: ReadTimeout.)
    server = nginx_h2(keepalive_requests=100)
    with RawH2Client(server.port, ca_bundle) as client:
        sid = client.request("/", method="POST", body=b"x" * 200_000)
        assert client.run_until(lambda c: c.streams[sid].reset is not None)
        result = client.streams[sid]
        assert (result.status, bytes(result.body), result.ended) == (200, b"ok", True)
        assert result.reset == ErrorCodes.NO_ERROR


# -- nghttpd ----------------------------------------------------------------------------


def test_nghttpd_serves_files_and_echoes_uploads_with_its_settings(
    nghttpd_server: Callable[..., NghttpdServer], ca_bundle: str
) -> None:
    data = deterministic_bytes(1_000_000)
    server = nghttpd_server(files={"big.bin": data}, max_concurrent_streams=4, window_bits=14)
    with RawH2Client(server.port, ca_bundle) as client:
        assert client.alpn == "h2"
        assert client.run_until(lambda c: bool(c.settings))
        codes = h2.settings.SettingCodes
        assert client.settings[codes.MAX_CONCURRENT_STREAMS] == 4
        assert client.settings[codes.INITIAL_WINDOW_SIZE] == 2**14 - 1
    with _client(ca_bundle) as client:
        got = client.get(f"{server.url}/big.bin")
        assert got.http_version == "HTTP/2"
        assert got.content == data
        # A 16 KiB stream window: the upload needs many WINDOW_UPDATEs from nghttpd.
        echoed = client.post(f"{server.url}/big.bin", content=data)
        assert echoed.content == data
        assert client.get(f"{server.url}/missing").status_code == 404


def test_nghttpd_speaks_only_h2(
    nghttpd_server: Callable[..., NghttpdServer], ca_bundle: str
) -> None:
    server = nghttpd_server(files={"a.txt": b"hello"})
    with _client(ca_bundle, http2=False) as client, pytest.raises(httpx.RemoteProtocolError):
        client.get(f"{server.url}/a.txt")
    with _client(ca_bundle) as client:
        assert client.get(f"{server.url}/a.txt").text == "hello"
