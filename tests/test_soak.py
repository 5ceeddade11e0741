"""Soak: tens of thousands of requests through the shared session leak nothing.

The server runs in this process (``record_requests=False``, so its memory stays flat), so
the file-descriptor count covers both ends of every connection. Sampled after a warm-up:

* open file descriptors of this process (``/proc/self/fd``);
* TIME_WAIT sockets towards the server's port (``ss``): a new connection per request
  leaves one behind each time, for a minute;
* resident memory (``VmRSS`` in ``/proc/self/status``).

The contrast at the end shows the leak keepwarm avoids: plain ``requests.get()`` leaves a
TIME_WAIT socket per call. Run with ``-s`` to see the measured figures.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests

import keepwarm
from servers import LocalServer, default_handler

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.path.isdir("/proc/self/fd"), reason="needs /proc (Linux) to count fds and RSS"
    ),
]

HTTP_WARMUP = 1_000
HTTP_REQUESTS = 20_000
HTTP_SAMPLE_EVERY = 2_000
HTTPS_WARMUP = 200
HTTPS_REQUESTS = 2_000
HTTPS_SAMPLE_EVERY = 500
#: No soak may run longer than this, whatever the machine (the loops are also bounded
#: by count); measured here: about 7 s for the 20,000 HTTP requests.
SOAK_DEADLINE_SECONDS = 120.0
MAX_FD_SPREAD = 2
MAX_TIME_WAIT_SPREAD = 2
MAX_RSS_GROWTH_KB = 5 * 1024
SS = shutil.which("ss")


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def _rss_kb() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS line in /proc/self/status")


def _time_wait(port: int) -> int | None:
    """TIME_WAIT sockets from or to *port*; None when ``ss`` is not installed."""
    if SS is None:
        return None
    result = subprocess.run(
        [SS, "-tan", "state", "time-wait", f"( dport = :{port} or sport = :{port} )"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    # The first line is the column header.
    return max(0, len(lines) - 1)


@dataclass(frozen=True)
class Sample:
    after: int
    fds: int
    time_wait: int | None
    rss_kb: int


def _sample(after: int, port: int) -> Sample:
    return Sample(after, _fd_count(), _time_wait(port), _rss_kb())


def _soak(
    get: Callable[[], int], port: int, warmup: int, total: int, every: int
) -> tuple[list[Sample], float]:
    """*warmup* requests, then *total* more with a sample before and after every *every*;
    returns the samples and the requests per second of the sampled part."""
    started = time.monotonic()
    for _ in range(warmup):
        assert get() == 200
    samples = [_sample(0, port)]
    measured = 0.0
    done = 0
    while done < total:
        chunk_started = time.perf_counter()
        for _ in range(every):
            assert get() == 200
        measured += time.perf_counter() - chunk_started
        done += every
        samples.append(_sample(done, port))
        assert time.monotonic() - started < SOAK_DEADLINE_SECONDS, (
            f"soak still running after {SOAK_DEADLINE_SECONDS} s at {done} requests"
        )
    return samples, done / measured


def _report(label: str, samples: list[Sample], rate: float) -> str:
    fds = [s.fds for s in samples]
    rss = [s.rss_kb for s in samples]
    tw = [s.time_wait for s in samples]
    lines = [
        f"{label}: {samples[-1].after} requests after warm-up, {rate:,.0f} requests/s",
        f"  fds       {fds}",
        f"  TIME_WAIT {tw}",
        f"  RSS kB    {rss} (growth {rss[-1] - rss[0]:+d} kB)",
    ]
    text = "\n".join(lines)
    print(text)
    return text


def _assert_flat(samples: list[Sample], text: str) -> None:
    fds = [s.fds for s in samples]
    assert max(fds) - min(fds) <= MAX_FD_SPREAD, text
    growth = samples[-1].rss_kb - samples[0].rss_kb
    assert growth < MAX_RSS_GROWTH_KB, text
    time_wait = [s.time_wait for s in samples if s.time_wait is not None]
    if time_wait:
        assert max(time_wait) - min(time_wait) <= MAX_TIME_WAIT_SPREAD, text


def _server_on_a_fresh_port(**kwargs: Any) -> LocalServer:
    """A started LocalServer on a port with no TIME_WAIT socket yet: listeners bind with
    SO_REUSEADDR, so the OS may hand out a port that an earlier client connection used
    and whose TIME_WAIT would then be counted (and expire mid-soak)."""
    for _ in range(10):
        server = LocalServer(default_handler, record_requests=False, **kwargs).start()
        if not _time_wait(server.port):
            return server
        server.close()
    raise AssertionError("no port without TIME_WAIT sockets in 10 tries")


def _skip_if_time_wait_unchecked() -> None:
    if SS is None:
        pytest.skip("fds and RSS checked; TIME_WAIT not checked: `ss` (iproute2) is missing")


def test_soak_20000_requests_through_the_shared_session_leak_nothing() -> None:
    with _server_on_a_fresh_port() as server:
        session = keepwarm.session()
        url = server.url + "/"

        def get() -> int:
            with session.get(url) as response:
                return response.status_code

        samples, rate = _soak(get, server.port, HTTP_WARMUP, HTTP_REQUESTS, HTTP_SAMPLE_EVERY)
        text = _report("HTTP soak, keepwarm.session()", samples, rate)
        _assert_flat(samples, text)

        total = HTTP_WARMUP + HTTP_REQUESTS
        assert server.requests_handled == total
        assert server.connections_accepted == 1
        stats = session.stats()
        assert stats.requests == total
        assert stats.connections_opened == 1
        assert stats.reused == total - 1
        assert stats.discarded == stats.dropped == stats.retries == 0
    _skip_if_time_wait_unchecked()


def test_soak_2000_requests_over_https_leak_nothing(
    server_ssl_context: ssl.SSLContext, ca_bundle: str
) -> None:
    with _server_on_a_fresh_port(ssl_context=server_ssl_context) as server:
        session = keepwarm.session("soak-tls", verify=ca_bundle)
        url = server.url + "/"

        def get() -> int:
            with session.get(url) as response:
                return response.status_code

        samples, rate = _soak(get, server.port, HTTPS_WARMUP, HTTPS_REQUESTS, HTTPS_SAMPLE_EVERY)
        text = _report("HTTPS soak, keepwarm.session('soak-tls')", samples, rate)
        _assert_flat(samples, text)

        total = HTTPS_WARMUP + HTTPS_REQUESTS
        assert server.requests_handled == total
        assert server.connections_accepted == 1
        stats = session.stats()
        assert stats.tls_handshakes == 1
        assert stats.reused == total - 1
    _skip_if_time_wait_unchecked()


@pytest.mark.skipif(SS is None, reason="`ss` (iproute2) is needed to count TIME_WAIT sockets")
def test_contrast_plain_requests_get_leaves_a_time_wait_socket_per_call() -> None:
    # What keepwarm avoids: requests.get() builds and closes a Session per call, so every
    # call opens a connection and, closing it first, leaves the socket in TIME_WAIT.
    n = 300
    with _server_on_a_fresh_port() as server:
        assert _time_wait(server.port) == 0
        started = time.perf_counter()
        for _ in range(n):
            with requests.get(server.url + "/", timeout=5) as response:
                assert response.status_code == 200
        rate = n / (time.perf_counter() - started)
        after = _time_wait(server.port)
        print(
            f"plain requests.get(): {n} calls, {server.connections_accepted} connections, "
            f"{after} TIME_WAIT sockets, {rate:,.0f} requests/s"
        )
        assert server.connections_accepted == n
        assert after is not None and after >= 250
