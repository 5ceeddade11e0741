"""The latency proxy of ``keepwarm bench --rtt``: it adds the round trips it promises,
forwards every byte, half-closes properly, and stops cleanly."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from keepwarm.bench._proxy import LatencyProxy, ProxyProcess
from keepwarm.bench._proxy import main as proxy_main
from keepwarm.cli import main
from servers import LocalServer

RTT = 0.04
NO_PROXY = {"no_proxy": "127.0.0.1"}


@pytest.fixture
def proxy(http_server: LocalServer) -> Iterator[LatencyProxy]:
    with LatencyProxy(("127.0.0.1", http_server.port), RTT) as p:
        yield p


def timed_get(session: Any, url: str) -> float:
    started = time.perf_counter()
    response = session.get(url, timeout=5, proxies=NO_PROXY)
    assert response.status_code == 200
    return time.perf_counter() - started


def test_cold_costs_two_round_trips_warm_one(proxy: LatencyProxy, http_server: LocalServer) -> None:
    url = f"http://127.0.0.1:{proxy.port}/"
    cold = [timed_get(requests, url) for _ in range(2)]
    with requests.Session() as session:
        timed_get(session, url)  # opens the connection
        warm = [timed_get(session, url) for _ in range(3)]
    # TCP handshake (charged to the first bytes) + request/response: 2 RTT; then 1 RTT.
    assert min(cold) >= 2 * RTT * 0.95
    assert min(warm) >= RTT * 0.95
    assert max(warm) < RTT + 0.5  # generous: a loaded 2-core machine
    assert proxy.connections_accepted == 3
    assert http_server.connections_accepted == 3


def test_forwards_large_bodies_both_ways(proxy: LatencyProxy) -> None:
    base = f"http://127.0.0.1:{proxy.port}"
    with requests.Session() as session:
        big = session.get(f"{base}/bytes?n=3000000", timeout=10, proxies=NO_PROXY)
        assert len(big.content) == 3_000_000
        assert big.content[:32] == b"0123456789abcdef" * 2
        body = b"x" * 1_500_000
        echoed = session.post(f"{base}/echo", data=body, timeout=10, proxies=NO_PROXY)
        assert len(echoed.json()["body"]) == len(body)


def test_half_close_delivers_the_whole_response(proxy: LatencyProxy) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"GET /bytes?n=100000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)  # our FIN travels behind the request
        received = bytearray()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert len(body) == 100_000


def test_upstream_refusing_closes_the_client(unused_port: int) -> None:
    with (
        LatencyProxy(("127.0.0.1", unused_port), RTT) as p,
        socket.create_connection(("127.0.0.1", p.port), timeout=5) as sock,
    ):
        assert sock.recv(10) == b""  # closed, not hung
        assert p.connections_accepted == 0


def test_close_stops_the_thread_and_is_idempotent(http_server: LocalServer) -> None:
    p = LatencyProxy(("127.0.0.1", http_server.port), RTT).start()
    idle = socket.create_connection(("127.0.0.1", p.port), timeout=5)
    try:
        assert http_server.wait_for_connections(1)  # the proxy accepted and connected on
        p.close()
        p.close()
        names = [t.name for t in threading.enumerate()]
        assert not [name for name in names if name.startswith("keepwarm-proxy-")]
        idle.settimeout(2)
        assert idle.recv(10) == b""  # the proxy closed its side
    finally:
        idle.close()


def test_refuses_non_loopback_upstreams_and_bad_rtt() -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exc:
        proxy_main(["--upstream", "192.0.2.1:80", "--rtt", "0.01"])
    assert exc.value.code == 2
    assert "expected a loopback HOST:PORT" in err.getvalue()
    with pytest.raises(ValueError):
        LatencyProxy(("127.0.0.1", 1), -1)


def test_proxy_process_protocol(http_server: LocalServer) -> None:
    with ProxyProcess(http_server.port, 0.0) as p:
        response = requests.get(f"http://127.0.0.1:{p.port}/", timeout=5, proxies=NO_PROXY)
        assert response.text == "ok"
        assert p.connections_accepted() == 1
        assert "error" in json.loads(p.command("bogus"))


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_bench_rtt_makes_cold_requests_pay_round_trips(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["--rtt", "20ms", "--requests", "3", "--rounds", "1", "--mode", "sequential"]
    assert main(["bench", *args, "--clients", "cold,keepwarm", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    rtt = 0.020 * 1000
    assert result["config"]["rtt_ms"] == pytest.approx(rtt)
    for scheme, round_trips in (("http", 2), ("https", 3)):
        scenarios = result["results"][scheme]["sequential"]["scenarios"]
        cold, warm = scenarios["cold"], scenarios["keepwarm"]
        assert cold["connections"] == 3 and warm["connections"] == 1  # still server-counted
        # Generous bounds: at least the round trips, whatever the machine's load.
        assert cold["p50_ms"] >= round_trips * rtt * 0.9, scheme
        assert warm["p50_ms"] >= rtt * 0.9, scheme
        assert cold["p50_ms"] - warm["p50_ms"] >= (round_trips - 1) * rtt * 0.8, scheme
