"""``keepwarm bench``: counts that prove what was measured, and clear option errors.

One full run (every client, both schemes, sequential and threaded) is shared by the tests
of its JSON, so the module stays fast; the other files test the proxy, ``--url``, the
plots and nginx.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import pathlib
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import keepwarm
from keepwarm.bench._report import format_table
from keepwarm.cli import main

SCENARIO_FIELDS = {
    "scenario",
    "requests",
    "rounds",
    "connections",
    "tls_handshakes",
    "time_wait",
    "idle_expired",
    "requests_per_second",
    "rounds_requests_per_second",
    "p50_ms",
    "p99_ms",
    "vs_baseline",
}
SEQUENTIAL = ("cold", "requests", "keepwarm", "httpx", "urllib3", "aiohttp", "http.client")
OPTIONAL = {"httpx": "httpx", "aiohttp": "aiohttp"}
REQUESTS, ROUNDS, THREADS = 5, 2, 12


def run_json(*args: str) -> dict[str, Any]:
    """``keepwarm bench ARGS --json``, outside pytest's capture (for module fixtures)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["bench", *args, "--json"])
    assert code == 0, err.getvalue()
    assert err.getvalue() == ""  # no progress chatter in JSON mode
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


@pytest.fixture(scope="module")
def full_run() -> Iterator[dict[str, Any]]:
    """One run of everything, small: 5 requests x 2 rounds, 12 threads, the server
    waiting 60 ms so that the 12 threads' requests overlap: released together by a
    barrier, a thread would have to start 60 ms late to miss the others. At 20 ms the
    second round's burst once reused a returned connection on a loaded machine (12
    connections where the pool of 10 forces more)."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            upper = name.upper()
            if upper.endswith(("_PROXY", "CA_BUNDLE")):
                mp.delenv(name)
        yield run_json(
            *("--requests", str(REQUESTS), "--rounds", str(ROUNDS)),
            *("--threads", str(THREADS), "--server-latency", "60ms"),
        )


def test_config_and_environment(full_run: dict[str, Any]) -> None:
    config = full_run["config"]
    assert config["requests"] == REQUESTS
    assert config["rounds"] == ROUNDS
    assert config["schemes"] == ["https", "http"]
    assert config["threads"] == THREADS
    assert config["server"] == "embedded"
    assert config["server_latency_ms"] == pytest.approx(60)
    assert config["rtt_ms"] is None
    assert config["ca_bundle_certificates"] > 10  # certifi's bundle, not just ours
    env = full_run["environment"]
    assert {"python", "openssl", "requests", "urllib3", "keepwarm", "cpus"} <= set(env)
    assert env["keepwarm"] == keepwarm.__version__
    assert full_run["notes"] == []


def test_sequential_scenarios_and_counts(full_run: dict[str, Any]) -> None:
    total = REQUESTS * ROUNDS
    for scheme in ("https", "http"):
        block = full_run["results"][scheme]["sequential"]
        assert block["rounds_completed"] == ROUNDS
        assert block["baseline"] == "requests"
        scenarios = block["scenarios"]
        for key, s in scenarios.items():
            assert set(s) == SCENARIO_FIELDS, (scheme, key)
            assert s["requests"] == total
            assert s["rounds"] == ROUNDS
            assert len(s["rounds_requests_per_second"]) == ROUNDS
            assert s["requests_per_second"] > 0
            assert 0 < s["p50_ms"] <= s["p99_ms"]
            # Counted by the server: one connection per requests.get, one per reused client.
            expected = total if key == "cold" else 1
            assert s["connections"] == expected, (scheme, key)
            assert s["tls_handshakes"] == (expected if scheme == "https" else 0), (scheme, key)
        assert scenarios["requests"]["vs_baseline"] == pytest.approx(1.0)
        assert scenarios["cold"]["scenario"] == "requests.get() per call"
        assert scenarios["keepwarm"]["scenario"] == "keepwarm.Session"
        assert block["keepwarm_vs_cold"] > 0
        cold_tw = scenarios["cold"]["time_wait"]
        if scheme == "http" and cold_tw is not None:  # None: no `ss` on this machine
            assert 0 < cold_tw <= total
    # Loading the CA bundle and a full handshake per request: cold HTTPS loses clearly.
    assert full_run["results"]["https"]["sequential"]["keepwarm_vs_cold"] > 3


def test_peers_present_when_importable(full_run: dict[str, Any]) -> None:
    skipped = full_run["skipped"]
    assert skipped["niquests"] == "it replaces urllib3; run it in its own virtualenv"
    assert full_run["environment"].get("urllib3-future") is None
    for scheme in ("https", "http"):
        scenarios = full_run["results"][scheme]["sequential"]["scenarios"]
        for key in SEQUENTIAL:
            module = OPTIONAL.get(key)
            if module is None or importlib.util.find_spec(module) is not None:
                assert key in scenarios, (scheme, key)
            else:
                assert key not in scenarios
                assert "pip install 'keepwarm[bench]'" in skipped[key]
        assert list(scenarios) == [k for k in SEQUENTIAL if k in scenarios]  # report order


def test_concurrency_discards_with_default_pools_only(full_run: dict[str, Any]) -> None:
    for scheme in ("https", "http"):
        block = full_run["results"][scheme]["concurrent"]
        assert block["threads"] == THREADS
        assert block["requests_per_thread"] == 1
        assert block["rounds_completed"] == ROUNDS
        for pattern in ("steady", "bursty"):
            plain, tuned = block[pattern]["requests"], block[pattern]["keepwarm"]
            assert plain["requests"] == tuned["requests"] == THREADS * ROUNDS
            # 12 overlapping requests, a pool of 10: connections thrown away every round.
            # A round after the first needs new ones only if all 12 overlap again: a thread
            # that starts 60 ms late on a loaded machine finds a returned one (seen once in
            # a full run on a slower machine: 12 connections, 2 discarded).
            assert plain["pool_full_discards"] > 0, (scheme, pattern)
            assert plain["connections"] >= THREADS, (scheme, pattern)
            # keepwarm's 32-connection pool keeps them all, and reuses them next round.
            assert tuned["pool_full_discards"] == 0, (scheme, pattern)
            assert tuned["connections"] <= THREADS, (scheme, pattern)
            assert tuned["requests_per_second"] > 0
            if scheme == "https":
                assert plain["tls_handshakes"] == plain["connections"]


def test_table_without_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--requests", "3", "--rounds", "2", "--scheme", "http", "--threads", "2"]
    assert main(["bench", *args, "--clients", "cold,requests,keepwarm"]) == 0
    out, err = capsys.readouterr()
    assert "http sequential: round 2/2" in err  # progress on stderr
    assert "\x1b[" not in out  # plain text: stdout is not a terminal
    assert "requests.get() per call" in out
    assert "http: keepwarm.Session / requests.get() per call = " in out
    assert "Concurrent, http: 2 threads share one session" in out
    assert "niquests: skipped (it replaces urllib3; run it in its own virtualenv)" in out
    assert "https" not in out.split("\n\n", 1)[1]  # only the scheme asked for
    connections = {
        label: line.split()[-3]
        for line in out.splitlines()
        for label in ("requests.get() per call", "keepwarm.Session", "requests.Session")
        if line.startswith(f"{label}  ")
    }
    assert connections == {
        "requests.get() per call": "6",  # 3 requests x 2 rounds
        "requests.Session": "1",
        "keepwarm.Session": "1",  # kept across rounds
    }


def test_idle_expiry_explains_extra_connections(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # keepwarm's own keepalive_expiry (4 s by default) closing its idle connection while the
    # other clients run their batches: the report says so instead of leaving 'conns 3'
    # unexplained. 5 ms makes it happen between every pair of its batches.
    monkeypatch.setenv("KEEPWARM_KEEPALIVE_EXPIRY", "0.005")
    args = ["--requests", "5", "--rounds", "3", "--scheme", "http", "--mode", "sequential"]
    args += ["--clients", "cold,requests,keepwarm"]
    result = run_json(*args)
    scenarios = result["results"]["http"]["sequential"]["scenarios"]
    expired = scenarios["keepwarm"]["idle_expired"]
    assert expired >= 1
    assert scenarios["keepwarm"]["connections"] == 1 + expired
    assert scenarios["requests"]["idle_expired"] is None  # requests does not tell
    assert main(["bench", *args]) == 0
    out = capsys.readouterr().out
    notes = [line for line in out.splitlines() if "keepalive_expiry" in line]
    assert len(notes) == 1, out
    assert notes[0].startswith("http: keepwarm.Session reopened ")
    assert notes[0].endswith("that its keepalive_expiry closed while idle between batches")


def test_no_idle_note_without_idle_expiry(full_run: dict[str, Any]) -> None:
    # The default 4 s expiry never fires in a run this short: no line about it.
    assert full_run["results"]["http"]["sequential"]["scenarios"]["keepwarm"]["idle_expired"] == 0
    assert "keepalive_expiry" not in format_table(full_run)


def test_time_budget_keeps_completed_rounds() -> None:
    result = run_json(
        *("--requests", "300", "--rounds", "1000", "--max-seconds", "1.5"),
        *("--scheme", "http", "--mode", "sequential", "--clients", "keepwarm"),
    )
    block = result["results"]["http"]["sequential"]
    assert 1 <= block["rounds_completed"] < 1000
    assert block["scenarios"]["keepwarm"]["requests"] == 300 * block["rounds_completed"]
    assert "--max-seconds 1.5 reached" in result["notes"][0]


def test_time_budget_too_short_for_one_round(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--requests", "100000", "--max-seconds", "0.3", "--scheme", "http"]
    assert main(["bench", *args, "--mode", "sequential", "--clients", "keepwarm", "--json"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("keepwarm bench: error: --max-seconds 0.3 ran out before one round")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--requests", "0"], "argument --requests: must be from 1 to 100000, got 0"),
        (["--requests", "100001"], "argument --requests: must be from 1 to 100000"),
        (["--requests", "many"], "argument --requests: expected an integer, got 'many'"),
        (["--rounds", "0"], "argument --rounds: must be from 1 to 1000, got 0"),
        (["--threads", "0"], "argument --threads: must be from 1 to 256, got 0"),
        (["--scheme", "ftp"], "argument --scheme: invalid choice: 'ftp'"),
        (["--rtt", "20"], "argument --rtt: give a unit: 20ms or 20s"),
        (["--rtt", "fast"], "expected a duration like 20ms or 0.5s, got 'fast'"),
        (["--rtt", "3s"], "argument --rtt: must be at most 2s"),
        (["--server-latency", "2s"], "argument --server-latency: must be at most 1s"),
        (["--max-seconds", "0"], "must be more than 0 and at most 600"),
        (["--max-seconds", "inf"], "must be more than 0 and at most 600"),
        (["--max-seconds", "601"], "must be more than 0 and at most 600"),
        (["--clients", "requests,niquests"], "unknown client niquests"),
        (["--server", "apache"], "argument --server: invalid choice: 'apache'"),
        (["--server", "nginx", "--server-latency", "10ms"], "needs the embedded server"),
        (["--cacert", "ca.pem"], "--cacert only applies to --url"),
        (["--plot", "out.pdf"], "--plot writes .png, .svg or .html"),
        (["--plot", "/no/such/folder/out.html"], "--plot: no folder"),
        (["--nope"], "unrecognized arguments: --nope"),
    ],
)
def test_bad_options_exit_2_with_one_clear_line(
    capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    assert main(["bench", *options]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert message in err
    assert "Traceback" not in err
    # The error is one line (argparse's own errors add one short usage line before it).
    errors = [line for line in err.splitlines() if not line.startswith("usage:")]
    assert len(errors) == 1, err
    assert errors[0].startswith(("keepwarm bench: error: ", "keepwarm: error: "))


def test_no_command_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"keepwarm {keepwarm.__version__}"


def test_missing_trustme_is_one_line_with_the_fix(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "trustme", None)  # makes `import trustme` fail
    assert main(["bench", "--requests", "1", "--rounds", "1", "--scheme", "https"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("keepwarm bench: error: ")
    assert "pip install 'keepwarm[bench]'" in err


def test_missing_peer_is_skipped_with_the_fix(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)
    args = ["--requests", "1", "--rounds", "1", "--scheme", "http", "--mode", "sequential"]
    assert main(["bench", *args, "--clients", "keepwarm,httpx", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result["results"]["http"]["sequential"]["scenarios"]) == ["keepwarm"]
    assert "pip install 'keepwarm[bench]'" in result["skipped"]["httpx"]


def test_refuses_to_run_while_installed(capsys: pytest.CaptureFixture[str]) -> None:
    keepwarm.install()
    try:
        assert main(["bench", "--requests", "1", "--rounds", "1", "--scheme", "http"]) == 1
    finally:
        keepwarm.uninstall()
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "keepwarm.install() is active" in err


def test_proxy_and_ca_variables_cannot_redirect_or_break_the_run(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: pathlib.Path,
) -> None:
    # A proxy nobody listens on, and a CA bundle that would make every check fail.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    args = ["--requests", "2", "--rounds", "1", "--mode", "sequential"]
    assert main(["bench", *args, "--clients", "cold,requests,keepwarm", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for scheme in ("https", "http"):
        assert result["results"][scheme]["sequential"]["scenarios"]["requests"]["requests"] == 2
    # ... and the variables are back afterwards.
    assert os.environ["HTTP_PROXY"] == "http://127.0.0.1:9"
    assert os.environ["https_proxy"] == "http://127.0.0.1:9"
    assert os.environ["REQUESTS_CA_BUNDLE"] == str(tmp_path / "missing.pem")
