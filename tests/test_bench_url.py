"""``keepwarm bench --url`` (client side only, bounded, GET only), ``--plot``, the rich
report, and the parsing of durations and URLs."""

from __future__ import annotations

import importlib.util
import io
import json
import pathlib
import sys
from typing import Any

import pytest
import trustme

from keepwarm.bench._options import check_url, format_duration, parse_duration
from keepwarm.bench._report import make_rich_progress, print_rich
from keepwarm.cli import main
from servers import LocalServer

SMALL = ["--requests", "3", "--rounds", "1"]


def bench(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["bench", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_url_runs_the_clients_against_that_server(
    http_server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = http_server.url + "/echo?x=1"
    clients = "cold,requests,keepwarm,urllib3,http.client"
    code, out, err = bench(capsys, "--url", url, *SMALL, "--clients", clients, "--json")
    assert code == 0, err
    # The warning says how much traffic goes to someone's server, before anything is sent.
    assert err == (
        f"keepwarm bench: warning: this sends up to 20 GET requests to {url} "
        "(3 x 1 rounds x 5 clients, plus one warm-up each), for at most 30 s\n"
    )
    assert http_server.requests_handled == 20
    assert {r.method for r in http_server.requests} == {"GET"}
    result = json.loads(out)
    assert result["config"]["url"] == url
    assert result["config"]["server"] is None
    assert result["config"]["threads"] is None  # no threaded runs against your server
    assert result["config"]["max_seconds"] == 30
    assert list(result["results"]) == ["http"]
    block = result["results"]["http"]
    assert "concurrent" not in block
    scenarios = block["sequential"]["scenarios"]
    assert list(scenarios) == clients.split(",")
    for s in scenarios.values():
        assert s["requests"] == 3
        assert s["connections"] is None and s["tls_handshakes"] is None  # no server counts


def test_url_over_https_with_cacert(
    https_server: LocalServer,
    ca: trustme.CA,
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cacert = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cacert))
    args = ["--url", https_server.url + "/", *SMALL, "--clients", "keepwarm,httpx,aiohttp"]
    code, out, err = bench(capsys, *args, "--cacert", str(cacert))
    assert code == 0, err
    assert "certifi's + the --cacert file" in out
    assert "client side only, against https://127.0.0.1:" in out
    assert "keepwarm.Session" in out
    assert "n/a" in out  # connections are not counted without our server


def test_url_without_the_ca_fails_in_one_line(
    https_server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = bench(capsys, "--url", https_server.url + "/", *SMALL, "--clients", "cold")
    assert code == 1
    assert out == ""
    lines = err.splitlines()
    assert lines[0].startswith("keepwarm bench: warning: this sends up to 4 GET requests")
    assert len(lines) == 2 and lines[1].startswith("keepwarm bench: error: ")
    assert "CERTIFICATE_VERIFY_FAILED" in lines[1]
    assert "Traceback" not in err


def test_url_error_status_fails_in_one_line(
    http_server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = http_server.url + "/status/404"
    code, _, err = bench(capsys, "--url", url, *SMALL, "--clients", "keepwarm", "--json")
    assert code == 1
    assert err.splitlines()[-1] == (
        f"keepwarm bench: error: {url} answered 404; benchmark a URL that answers 2xx"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "ftp://127.0.0.1/"], "only http:// and https:// URLs can be benchmarked"),
        (["--url", "file:///etc/passwd"], "only http:// and https:// URLs"),
        (["--url", "127.0.0.1:8080/"], "only http:// and https:// URLs"),
        (["--url", "http:///path"], "the URL has no host"),
        (["--url", "http://127.0.0.1:99999/"], "invalid port"),
        (["--url", "http://u:p@127.0.0.1/"], "the URL carries credentials"),
        (["--url", "http://127.0.0.1/a b"], "whitespace or control characters"),
        (["--url", "http://127.0.0.1/", "--requests", "5000"], "the cap is 10000"),
        (["--url", "http://127.0.0.1/", "--max-seconds", "0"], "must be more than 0"),
        (["--url", "http://127.0.0.1/", "--max-seconds", "nan"], "must be more than 0"),
        (["--url", "http://127.0.0.1/", "--max-seconds", "1000"], "at most 600"),
        (["--url", "http://127.0.0.1/", "--rtt", "20ms"], "--rtt does not apply to --url"),
        (["--url", "http://127.0.0.1/", "--threads", "4"], "--threads does not apply"),
        (["--url", "http://127.0.0.1/", "--mode", "concurrent"], "--mode concurrent does not"),
        (["--url", "http://127.0.0.1/", "--server", "nginx"], "--server does not apply"),
        (["--url", "http://127.0.0.1/", "--scheme", "http"], "--scheme does not apply"),
    ],
)
def test_url_refuses_unsafe_input(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = bench(capsys, *args)
    assert code == 2
    assert out == ""
    assert message in err
    assert "warning" not in err  # refused before announcing or sending anything
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if not line.startswith("usage:")]) == 1


# -- --plot ---------------------------------------------------------------------------

PLOT_RUN = [*SMALL, "--scheme", "http", "--threads", "2", "--clients", "cold,requests,keepwarm"]


def test_plot_html_is_self_contained(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bench.html"
    code, _, err = bench(capsys, *PLOT_RUN, "--plot", str(path))
    assert code == 0, err
    assert f"keepwarm bench: wrote {path}" in err
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 2  # sequential and threaded panels
    assert "keepwarm.Session" in page and "requests.get() per call" in page
    assert "<script" not in page and "src=" not in page and "href=" not in page  # no CDN
    assert "<table>" in page


@pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None,
    reason="matplotlib is not installed (the plot extra: pip install 'keepwarm[plot]')",
)
@pytest.mark.parametrize(("suffix", "magic"), [(".png", b"\x89PNG"), (".svg", b"<?xml")])
def test_plot_png_and_svg(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], suffix: str, magic: bytes
) -> None:
    path = tmp_path / f"bench{suffix}"
    code, _, err = bench(capsys, *PLOT_RUN, "--json", "--plot", str(path))
    assert code == 0, err
    assert path.read_bytes().startswith(magic)


def test_plot_without_matplotlib_names_the_extra_before_running(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    code, out, err = bench(capsys, *PLOT_RUN, "--plot", str(tmp_path / "bench.png"))
    assert code == 1
    assert out == ""
    assert err == (
        "keepwarm bench: error: --plot .png needs matplotlib: pip install 'keepwarm[plot]' "
        "(an .html plot needs nothing extra)\n"
    )  # one line, and no progress line: nothing ran
    assert not (tmp_path / "bench.png").exists()


# -- the rich report ------------------------------------------------------------------


def _small_result(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, _ = bench(capsys, *PLOT_RUN, "--json")
    assert code == 0
    result: dict[str, Any] = json.loads(out)
    return result


@pytest.mark.skipif(importlib.util.find_spec("rich") is None, reason="rich is not installed")
def test_rich_report_and_progress(capsys: pytest.CaptureFixture[str]) -> None:
    result = _small_result(capsys)
    out = io.StringIO()
    with make_rich_progress(out, 3) as bar:
        bar("http sequential: round 1/1", False)
        bar("http sequential: round 1/1", True)
    print_rich(result, out)
    text = out.getvalue()
    assert "one client object per scenario" in text
    assert "disc: connections closed on return because the pool was full" in text
    # Console(file=StringIO) is 80 columns wide: the tables fit it, no number cut short.
    assert "…" not in text
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "niquests: skipped (it replaces urllib3; run it in its own virtualenv)" in text


# -- parsing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("20ms", 0.02), ("0.5s", 0.5), ("0ms", 0.0), (" 2S ", 2.0), (".5s", 0.5), ("250ms", 0.25)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text, maximum=2) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("20", "give a unit: 20ms or 20s"),
        ("-5ms", "expected a duration"),
        ("1e3ms", "expected a duration"),
        ("2.5s", "must be at most 2s"),
        ("inf", "expected a duration"),
    ],
)
def test_parse_duration_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text, maximum=2)


def test_format_duration_round_trips() -> None:
    for seconds in (0.005, 0.02, 0.5, 1.0, 1.5):
        assert parse_duration(format_duration(seconds), maximum=2) == pytest.approx(seconds)


def test_check_url_accepts_http_and_https() -> None:
    for url in ("http://127.0.0.1:8080/x?y=1", "https://localhost/", "HTTP://[::1]:80/"):
        assert check_url(url) == url
