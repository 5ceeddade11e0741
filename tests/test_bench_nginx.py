"""``keepwarm bench --server nginx``: a real nginx, counted from its access log.

Skipped where nginx is not installed (CI has none); the error without it is tested
everywhere.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest

from keepwarm.cli import main

needs_nginx = pytest.mark.skipif(
    shutil.which("nginx") is None,
    reason="nginx is not installed (e.g. apt-get install nginx-light)",
)


@needs_nginx
def test_nginx_sequential_and_threaded_counts(capsys: pytest.CaptureFixture[str]) -> None:
    # nginx cannot wait, so the latency proxy's RTT makes the 12 threads' requests overlap:
    # 60 ms, as test_bench.py's server latency. Through 20 ms, a thread that started ~40 ms
    # late on a loaded machine once found a returned connection in every burst (plain
    # requests' HTTP bursty run discarded none, one clean-clone run in seven).
    args = ["--server", "nginx", "--rtt", "60ms", "--requests", "3", "--rounds", "1"]
    code = main(["bench", *args, "--threads", "12", "--clients", "cold,keepwarm", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    assert result["config"]["server"] == "nginx"
    assert result["environment"]["nginx"]
    assert result["config"]["server_latency_ms"] == 0  # nginx cannot wait: 0 by default
    for scheme in ("https", "http"):
        scenarios = result["results"][scheme]["sequential"]["scenarios"]
        assert scenarios["cold"]["connections"] == 3
        assert scenarios["keepwarm"]["connections"] == 1
        handshakes = 3 if scheme == "https" else 0
        assert scenarios["cold"]["tls_handshakes"] == handshakes
        threaded = result["results"][scheme]["concurrent"]
        for pattern in ("steady", "bursty"):
            assert threaded[pattern]["requests"]["pool_full_discards"] > 0, (scheme, pattern)
            assert threaded[pattern]["keepwarm"]["pool_full_discards"] == 0, (scheme, pattern)
            assert threaded[pattern]["keepwarm"]["connections"] <= 12


def test_nginx_missing_is_one_line_with_the_fix(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_which = shutil.which

    def which(name: str, *args: Any, **kwargs: Any) -> str | None:
        return None if name == "nginx" else real_which(name, *args, **kwargs)

    monkeypatch.setattr(shutil, "which", which)
    assert main(["bench", "--server", "nginx", "--requests", "1", "--rounds", "1"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "keepwarm bench: error: --server nginx needs nginx on PATH: install nginx, "
        "e.g. apt-get install nginx-light\n"
    )
