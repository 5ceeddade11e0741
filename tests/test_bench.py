"""``keepwarm bench``: counts that prove what was measured, and clear option errors."""

from __future__ import annotations

import json
import sys

import pytest

import keepwarm
from keepwarm.cli import main

SCENARIO_FIELDS = {
    "scenario",
    "requests",
    "connections",
    "requests_per_second",
    "rounds_requests_per_second",
    "p50_ms",
    "p99_ms",
}


def test_bench_json_counts_connections(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--requests", "5", "--rounds", "1", "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == ""  # no progress chatter in JSON mode
    result = json.loads(out)

    assert result["config"]["requests"] == 5
    assert result["config"]["rounds"] == 1
    assert result["config"]["schemes"] == ["https", "http"]
    assert result["config"]["ca_bundle_certificates"] > 10  # certifi's bundle, not just ours
    assert {"python", "requests", "urllib3", "keepwarm"} <= set(result["environment"])
    assert set(result["results"]) == {"https", "http"}
    for scheme, scheme_result in result["results"].items():
        cold, warm = scheme_result["cold"], scheme_result["keepwarm"]
        assert set(cold) == SCENARIO_FIELDS, scheme
        assert set(warm) == SCENARIO_FIELDS, scheme
        assert cold["scenario"] == "requests.get per call"
        assert warm["scenario"] == "keepwarm.Session reused"
        assert cold["requests"] == warm["requests"] == 5
        assert cold["connections"] == 5, scheme  # one new connection per requests.get
        assert warm["connections"] == 1, scheme  # one connection, reused
        for scenario in (cold, warm):
            assert scenario["requests_per_second"] > 0
            assert len(scenario["rounds_requests_per_second"]) == 1
            assert 0 < scenario["p50_ms"] <= scenario["p99_ms"]
        assert scheme_result["speedup"] == pytest.approx(
            warm["requests_per_second"] / cold["requests_per_second"]
        )


def test_bench_table_over_rounds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--requests", "3", "--rounds", "2", "--scheme", "http"]) == 0
    out, err = capsys.readouterr()
    assert "http: round 2/2" in err
    assert "requests.get per call" in out
    assert "keepwarm.Session reused" in out
    assert "speed-up (keepwarm / cold)" in out
    assert "https" not in out.split("\n\n", 1)[1]  # only the scheme asked for
    connections = {
        label: line.split()[-1]
        for line in out.splitlines()
        for label in ("requests.get per call", "keepwarm.Session reused")
        if label in line
    }
    assert connections == {
        "requests.get per call": "6",  # 3 requests x 2 rounds
        "keepwarm.Session reused": "1",  # kept across rounds
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--requests", "0"], "argument --requests: must be from 1 to 100000, got 0"),
        (["--requests", "100001"], "argument --requests: must be from 1 to 100000"),
        (["--requests", "many"], "argument --requests: expected an integer, got 'many'"),
        (["--rounds", "0"], "argument --rounds: must be from 1 to 1000, got 0"),
        (["--scheme", "ftp"], "argument --scheme: invalid choice: 'ftp'"),
        (["--nope"], "unrecognized arguments: --nope"),
    ],
)
def test_bad_options_exit_2_with_a_clear_message(
    capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    assert main(["bench", *options]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert message in err
    assert "Traceback" not in err


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


def test_refuses_to_run_while_installed(capsys: pytest.CaptureFixture[str]) -> None:
    keepwarm.install()
    try:
        assert main(["bench", "--requests", "1", "--rounds", "1", "--scheme", "http"]) == 1
    finally:
        keepwarm.uninstall()
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "keepwarm.install() is active" in err
