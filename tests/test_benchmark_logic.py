"""The benchmarks' pure logic: what a paired ratio's rounds say, and how ``streaming.py``
classifies receive buffers and pools runs. (The measurements themselves are run by hand
and recorded in docs/PERFORMANCE.md; these check the arithmetic that turns them into a
verdict.)"""

from __future__ import annotations

import importlib
import json
import pathlib
import shutil
import socket
import subprocess
import sys
from types import ModuleType
from typing import Any

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def paired(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("_paired")


@pytest.fixture
def streaming(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("streaming")


# -- _paired ------------------------------------------------------------------------------


def test_the_interval_of_equal_rounds_is_that_value(paired: ModuleType) -> None:
    assert paired.median_interval([1.25] * 9) == (1.25, 1.25)


def test_the_interval_holds_the_median_and_is_the_same_for_the_same_rounds(
    paired: ModuleType,
) -> None:
    rounds = [0.91, 0.97, 1.0, 1.02, 1.03, 1.04, 1.08, 1.2, 0.99, 1.01, 1.05]
    low, high = paired.median_interval(rounds)
    assert min(rounds) <= low <= 1.02 <= high <= max(rounds)
    assert low < high
    assert paired.median_interval(rounds) == (low, high)


def test_many_rounds_give_a_narrower_interval_than_few(paired: ModuleType) -> None:
    few = [0.9, 1.1, 0.95, 1.05, 1.0]
    low, high = paired.median_interval(few)
    many_low, many_high = paired.median_interval(few * 20)
    assert many_high - many_low < high - low


@pytest.mark.parametrize(
    ("interval", "at_least", "expected"),
    [
        ((1.0, 1.1), True, "met"),
        ((1.01, 1.1), True, "met"),
        ((0.9, 0.99), True, "not met"),
        ((0.99, 1.01), True, "undecided"),
        ((0.5, 1.0), False, "met"),
        ((1.01, 1.2), False, "not met"),
        ((0.9, 1.1), False, "undecided"),
    ],
)
def test_the_verdict_on_a_target_of_one(
    paired: ModuleType, interval: tuple[float, float], at_least: bool, expected: str
) -> None:
    assert paired.verdict(interval, 1.0, at_least=at_least) == expected


# -- streaming.py -------------------------------------------------------------------------


def test_compare_gives_the_speed_verdict_at_least_as_fast(streaming: ModuleType) -> None:
    cpu = [0.9] * 8
    assert streaming.compare([1.02, 1.05, 1.01, 1.03] * 2, cpu)["verdict"] == "met"
    assert streaming.compare([0.97, 0.95, 0.99, 0.98] * 2, cpu)["verdict"] == "not met"
    straddling = streaming.compare([0.97, 1.03, 0.99, 1.01] * 2, cpu)
    assert straddling["verdict"] == "undecided"
    assert straddling["rounds"] == 8
    assert straddling["speed_rounds"] == [0.97, 1.03, 0.99, 1.01] * 2
    assert straddling["cpu"] == 0.9


def test_compare_gives_the_servers_cpu_where_it_was_measured(streaming: ModuleType) -> None:
    assert "server_cpu" not in streaming.compare([1.0, 1.1], [0.9, 0.9])
    q = streaming.compare([1.0, 1.1, 1.0], [0.9, 0.9, 0.9], [1.04, 1.05, 1.06])
    assert q["server_cpu"] == 1.05
    assert q["server_cpu_interval"][0] <= 1.05 <= q["server_cpu_interval"][1]
    assert q["server_cpu_rounds"] == [1.04, 1.05, 1.06]


def _run(
    streaming: ModuleType,
    https_speed: list[float],
    http_speed: list[float] | None = None,
    server_cpu: float | None = None,
) -> dict[str, Any]:
    # One run's --json, as it reads back from the file (tuples become lists).
    def scheme(speed: list[float]) -> dict[str, Any]:
        server = None if server_cpu is None else [server_cpu] * len(speed)
        return {
            f"{name}/requests": streaming.compare(speed, [1.0] * len(speed), server)
            for name in streaming.COMPARED
        }

    run = {"https": scheme(https_speed)}
    if http_speed is not None:
        run["http"] = scheme(http_speed)
    result: dict[str, Any] = json.loads(json.dumps(run))
    return result


def test_pool_decides_over_every_runs_rounds(streaming: ModuleType) -> None:
    # Two runs that each straddle 1 but lean the same way: pooled, their rounds decide.
    first = _run(streaming, [0.99, 1.02, 1.03, 1.01, 0.995, 1.04])
    second = _run(streaming, [1.02, 0.99, 1.01, 1.03, 1.04, 0.998], http_speed=[1.1] * 6)
    for run in (first, second):
        assert run["https"]["keepwarm/requests"]["verdict"] == "undecided"
    pooled = streaming.pool([first, second] * 3)
    assert pooled["https"]["runs"] == 6
    assert pooled["https"]["keepwarm"]["rounds"] == 36
    assert pooled["https"]["keepwarm"]["verdict"] == "met"
    # A scheme only some runs measured is pooled over those.
    assert pooled["http"]["runs"] == 3
    assert pooled["http"]["keepwarm"]["rounds"] == 18


def test_pool_gives_the_servers_cpu_only_when_every_run_measured_it(
    streaming: ModuleType,
) -> None:
    measured = [
        _run(streaming, [1.0, 1.1], server_cpu=1.02),
        _run(streaming, [1.0], server_cpu=1.04),
    ]
    pooled = streaming.pool(measured)["https"]["keepwarm"]
    assert pooled["server_cpu_rounds"] == [1.02, 1.02, 1.04]
    unmeasured = streaming.pool([*measured, _run(streaming, [1.0])])["https"]["keepwarm"]
    assert "server_cpu" not in unmeasured
    assert unmeasured["rounds"] == 4


def test_pool_refuses_a_run_without_its_rounds(streaming: ModuleType) -> None:
    old = _run(streaming, [1.0, 1.1])
    del old["https"]["keepwarm/requests"]["speed_rounds"]
    with pytest.raises(ValueError, match="no per-round ratios for keepwarm"):
        streaming.pool([_run(streaming, [1.0, 1.1]), old])


def test_pool_on_the_command_line(streaming: ModuleType, tmp_path: pathlib.Path) -> None:
    paths = []
    for i, speed in enumerate(([1.02, 1.05, 1.01], [1.03, 1.04, 1.06])):
        path = tmp_path / f"run{i}.json"
        path.write_text(json.dumps(_run(streaming, speed)))
        paths.append(str(path))
    script = str(BENCHMARKS / "streaming.py")
    done = subprocess.run(
        [sys.executable, script, "--pool", *paths],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "https: 6 rounds of 2 runs, pooled" in done.stdout
    assert "keepwarm vs requests: speed 1.035" in done.stdout
    assert "met" in done.stdout

    missing = tmp_path / "absent.json"
    done = subprocess.run(
        [sys.executable, script, "--pool", paths[0], str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert f"cannot read {missing}" in done.stderr


def _download(streaming: ModuleType, wall: float, buffer: int) -> Any:
    return streaming.Download(wall=wall, cpu=wall / 2, buffer=buffer, waits=0)


def test_regimes_tells_small_buffers_from_grown_ones(
    streaming: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streaming, "_initial_receive_buffer", lambda: 131072)
    size = 100_000_000
    small, grown = 200_000, 2_000_000  # 1.5 and 15 times the initial buffer
    each = {
        "requests": [_download(streaming, 0.1, grown), _download(streaming, 0.125, small)],
        "requests+timeout": [_download(streaming, 0.1, grown)] * 2,
        "keepwarm": [_download(streaming, 0.08, grown), _download(streaming, 0.2, small)],
    }
    out = streaming.regimes(each, size)
    assert out["limit"] == int(131072 * streaming.SMALL_BUFFER)
    assert out["requests"]["small"] == 1 and out["requests"]["grown"] == 1
    assert out["requests"]["mb_s_grown"] == pytest.approx(1000.0)
    assert out["requests"]["mb_s_small"] == pytest.approx(800.0)
    assert out["requests+timeout"]["small"] == 0
    assert out["requests+timeout"]["mb_s_small"] is None
    # Like against like: keepwarm's grown connection over plain requests' grown one,
    # whatever its slow small-buffer one did.
    assert out["keepwarm/requests grown"]["speed"] == pytest.approx(1.25)
    assert out["keepwarm/requests grown"]["cpu"] == pytest.approx(0.8)


def test_regimes_says_nothing_when_a_buffer_or_the_kernels_default_is_unknown(
    streaming: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    each = {name: [_download(streaming, 0.1, 2_000_000)] for name in streaming.CLIENTS}
    monkeypatch.setattr(streaming, "_initial_receive_buffer", lambda: None)
    assert streaming.regimes(each, 100_000_000) is None
    monkeypatch.setattr(streaming, "_initial_receive_buffer", lambda: 131072)
    each["keepwarm"] = [_download(streaming, 0.1, -1)]
    assert streaming.regimes(each, 100_000_000) is None


# -- streaming.py's servers (real ones, on loopback) ---------------------------------------


def _get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        received = bytearray()
        for _ in range(10_000):  # bounded: the servers close after the body here
            data = conn.recv(65536)
            if not data:
                break
            received += data
    return bytes(received)


def test_the_dedicated_server_serves_the_size_asked_and_reports_its_cpu(
    streaming: ModuleType,
) -> None:
    with streaming.server(None) as served:
        before = served.cpu_ns()
        head, _, body = _get(served.port, "/300000?close").partition(b"\r\n\r\n")
        after = served.cpu_ns()
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: 300000" in head
    assert body == (bytes(range(256)) * 2000)[:300000]
    assert after > before > 0


@pytest.mark.skipif(shutil.which("nginx") is None, reason="needs nginx on PATH")
def test_the_nginx_server_serves_the_same_body_and_reports_its_workers_cpu(
    streaming: ModuleType,
) -> None:
    with streaming.nginx(None, None, 300_000, None, keep_alive=False) as served:
        before = served.cpu_ns()
        head, _, body = _get(served.port, "/300000").partition(b"\r\n\r\n")
        after = served.cpu_ns()
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"Connection: close" in head  # a connection per download
    assert body == (bytes(range(256)) * 2000)[:300000]
    assert after > before > 0
