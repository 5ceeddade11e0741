"""``keepwarm probe``: run in-process against real loopback servers; nothing leaves 127.0.0.1."""

from __future__ import annotations

import json
import pathlib
import socket
import ssl
import sys
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import trustme

from keepwarm._probe import redact_url
from keepwarm._probe._report import slow_warm_advice
from keepwarm._telemetry import Timings
from keepwarm.cli import main
from servers import (
    LocalServer,
    RawServer,
    ServerRequest,
    ServerResponse,
    default_handler,
    read_request_head,
    respond_with,
    silent,
)

PHASE_NAMES = ("dns", "connect", "tls", "send", "wait", "receive")


def probe(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``keepwarm probe ARGS``; returns (exit code, stdout, stderr)."""
    code = main(["probe", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def probe_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, out, err = probe(capsys, *args, "--json")
    assert (code, err) == (0, "")
    result: dict[str, Any] = json.loads(out)
    return result


def row(out: str, label: str) -> str:
    """The text of the summary row *label* (e.g. "reused")."""
    for line in out.splitlines():
        if line.startswith(label + " "):
            return line[len(label) :].strip()
    raise AssertionError(f"no {label!r} row in:\n{out}")


def closing(request: ServerRequest) -> ServerResponse:
    response = ServerResponse.text("ok")
    response.close = True
    return response


def announcing_keep_alive(request: ServerRequest) -> ServerResponse:
    return ServerResponse.text("ok", headers=[("Keep-Alive", "timeout=5, max=100")])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# -- plain HTTP -----------------------------------------------------------------------


def test_http_keep_alive_table(
    http_server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = probe(capsys, http_server.url + "/")
    assert (code, err) == (0, "")
    assert f"keepwarm probe {http_server.url}/" in out
    assert "5 GET requests on one keepwarm.Session" in out
    assert row(out, "connections") == "1 opened for 5 requests (4 reused a connection)"
    assert row(out, "reused").startswith("yes")
    assert row(out, "keep-alive") == "not announced (no Keep-Alive header)"
    assert row(out, "HTTP") == "HTTP/1.1"
    assert row(out, "TLS") == "not applicable (http)"
    assert row(out, "ALPN") == "not applicable (http)"
    assert row(out, "status") == "200 (all 5)"
    assert row(out, "advice") == "no advice: connections were reused"
    assert "cold: request 1, new connection" in out
    assert "warm: median of requests 2-5, 4 of 4 on a reused connection" in out
    indented = [line.split() for line in out.splitlines() if line.startswith("  ")]
    axis, phase_lines = indented[0], [words[0] for words in indented[1:]]
    assert axis[:2] == ["0", "ms"] and axis[-1] == "ms"  # the scale of the bars
    assert phase_lines == [*PHASE_NAMES, "total"] * 2
    cold = out.split("cold:")[1].split("warm:")[0]
    warm = out.split("warm:")[1].split("connections")[0]
    connect_cold = next(line for line in cold.splitlines() if line.startswith("  connect"))
    connect_warm = next(line for line in warm.splitlines() if line.startswith("  connect"))
    assert "ms" in connect_cold and "#" in connect_cold  # a bar and a duration
    assert connect_warm.split() == ["connect", "-"]  # no connect on a reused connection
    assert "dns" in cold and "(IP address: no lookup)" in cold
    assert http_server.connections_accepted == 1
    assert http_server.requests_handled == 5


def test_http_keep_alive_json(http_server: LocalServer, capsys: pytest.CaptureFixture[str]) -> None:
    result = probe_json(capsys, http_server.url + "/", "-n", "4")
    summary = result["summary"]
    assert summary["requests"] == 4
    assert summary["connections_opened"] == 1
    assert summary["reused"] == 3
    assert summary["warm_reused"] == 3
    assert summary["kept_alive"] is True
    assert summary["http_version"] == "HTTP/1.1"
    assert summary["tls_version"] is None
    assert summary["status_codes"] == {"200": 4}
    assert summary["keep_alive_timeout"] is None
    assert summary["connection_close"] is False
    assert result["url"] == http_server.url + "/"
    assert result["origin"] == http_server.url
    assert result["timeout"] == {"connect": 3.0, "read": 7.0}
    assert result["alpn"] is None
    assert result["advice"] == []

    requests = result["per_request"]
    assert [r["index"] for r in requests] == [1, 2, 3, 4]
    cold, warm = requests[0], requests[1:]
    assert cold["reused"] is False
    assert cold["connect"] is not None and cold["connect"] > 0
    assert cold["dns"] is None  # an IP address: nothing to resolve
    assert cold["tls"] is None  # plain HTTP
    for r in warm:
        assert r["reused"] is True
        assert r["connect"] is None and r["dns"] is None and r["tls"] is None
    for r in requests:
        assert r["status"] == 200
        for name in ("send", "wait", "receive", "total"):
            assert r[name] is not None and r[name] >= 0
    assert result["cold"]["connect"] == cold["connect"]
    assert result["warm_median"]["connect"] is None
    assert result["warm_median"]["total"] > 0


def test_one_request_has_no_warm_part(
    http_server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = probe(capsys, http_server.url + "/", "-n", "1")
    assert code == 0
    assert "warm: none (-n 1)" in out
    assert row(out, "reused") == "unknown: one request only (use -n 2 or more)"
    # Nothing claims a reuse that one request cannot show.
    assert row(out, "advice") == "no advice: one request cannot show reuse (use -n 2 or more)"
    assert "were reused" not in out
    result = probe_json(capsys, http_server.url + "/", "-n", "1")
    assert result["warm_median"] is None
    assert result["summary"]["kept_alive"] is None


@pytest.mark.parametrize("columns", [60, 150])
def test_bars_fit_the_terminal(
    http_server: LocalServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    columns: int,
) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    code, out, _ = probe(capsys, http_server.url + "/")
    assert code == 0
    bar_lines = [line for line in out.splitlines() if "#" in line]
    assert len(bar_lines) >= 6
    assert max(len(line) for line in bar_lines) <= columns
    totals = [line for line in out.splitlines() if line.startswith("  total")]
    assert len(totals) == 2
    # the slower total (cold or warm) spans the whole bar area, one column short of the edge
    assert max(len(line) for line in totals) == columns - 1
    assert out.isascii()


def test_redirects_are_shown_not_followed(
    http_server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = http_server.url + "/redirect?to=/%3Ftoken%3Dsecret&status=302"
    result = probe_json(capsys, url, "-n", "2")
    assert result["summary"]["status_codes"] == {"302": 2}
    assert result["per_request"][0]["location"] == "/?token=***"
    assert any("redirects (302) to /?token=***" in note for note in result["notes"])
    assert "secret" not in json.dumps(result)
    assert http_server.requests_handled == 2  # the target was not requested


def test_telemetry_off_in_the_environment_is_overridden(
    http_server: LocalServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEPWARM_TELEMETRY", "false")
    result = probe_json(capsys, http_server.url + "/", "-n", "3")
    assert result["summary"]["connections_opened"] == 1
    assert result["summary"]["requests"] == 3


# -- HTTPS ----------------------------------------------------------------------------


def test_https_with_cacert(
    https_server: LocalServer, ca_bundle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = probe(capsys, https_server.url + "/", "--cacert", ca_bundle)
    assert (code, err) == (0, "")
    assert row(out, "TLS") in ("TLSv1.3", "TLSv1.2")
    # LocalServer's context sets no ALPN protocols: the server selects none.
    assert row(out, "ALPN") == "none negotiated (the server selects no protocol by ALPN)"
    assert row(out, "connections") == "1 opened for 5 requests (4 reused a connection)"
    cold = out.split("cold:")[1].split("warm:")[0]
    warm = out.split("warm:")[1].split("connections")[0]
    tls_cold = next(line for line in cold.splitlines() if line.startswith("  tls"))
    tls_warm = next(line for line in warm.splitlines() if line.startswith("  tls"))
    assert "ms" in tls_cold and "#" in tls_cold
    assert tls_warm.split() == ["tls", "-"]

    result = probe_json(capsys, https_server.url + "/", "--cacert", ca_bundle)
    requests = result["per_request"]
    assert requests[0]["tls"] is not None and requests[0]["tls"] > 0
    assert all(r["tls"] is None for r in requests[1:])
    assert {r["tls_version"] for r in requests} <= {"TLSv1.3", "TLSv1.2"}
    assert result["summary"]["tls_handshakes"] == 1
    assert result["verify"] == ca_bundle
    assert result["alpn"] == []
    assert result["alpn_checks"] == [
        {"offered": ["h2"], "selected": None, "error": None},
        {"offered": ["http/1.1"], "selected": None, "error": None},
    ]


@pytest.mark.parametrize(
    ("server_alpn", "expected", "text"),
    [
        (
            ["h2", "http/1.1"],
            ["h2", "http/1.1"],
            "h2, http/1.1 (keepwarm offers h2 with http2=True, --http2 here)",
        ),
        (["h2"], ["h2"], "h2 only (keepwarm offers h2 with http2=True, --http2 here)"),
        (["http/1.1"], ["http/1.1"], "http/1.1 only"),
    ],
)
def test_https_alpn_offered_by_the_server(
    server_cert: trustme.LeafCert,
    ca_bundle: str,
    capsys: pytest.CaptureFixture[str],
    server_alpn: list[str],
    expected: list[str],
    text: str,
) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)
    context.set_alpn_protocols(server_alpn)
    with LocalServer(default_handler, ssl_context=context) as server:
        result = probe_json(capsys, server.url + "/", "--cacert", ca_bundle, "-n", "2")
        code, out, _ = probe(capsys, server.url + "/", "--cacert", ca_bundle, "-n", "2")
    assert result["alpn"] == expected
    assert result["summary"]["http_version"] == "HTTP/1.1"  # what the probe itself spoke
    assert result["summary"]["connections_opened"] == 1
    assert code == 0
    assert row(out, "ALPN") == text


def test_https_insecure(https_server: LocalServer, capsys: pytest.CaptureFixture[str]) -> None:
    filters_before = list(warnings.filters)
    # pytest runs with -W error: an InsecureRequestWarning would fail this test.
    code, out, err = probe(capsys, https_server.url + "/", "--insecure", "-n", "2")
    assert (code, err) == (0, "")
    assert "note: TLS certificate verification is off (--insecure)" in out
    assert row(out, "TLS") in ("TLSv1.3", "TLSv1.2")
    assert warnings.filters == filters_before  # silenced for the probe only
    result = probe_json(capsys, https_server.url + "/", "--insecure", "-n", "2")
    assert result["verify"] is False
    assert result["alpn"] == []


# -- connections the server does not keep ---------------------------------------------


def test_server_closing_after_each_response(
    make_server: Callable[..., LocalServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = make_server(closing)
    code, out, err = probe(capsys, server.url + "/")
    assert (code, err) == (0, "")
    assert row(out, "connections") == "5 opened for 5 requests (0 reused a connection)"
    assert row(out, "reused") == "no: every request opened a new connection"
    assert row(out, "keep-alive") == "none: the server sent Connection: close"
    advice = out.split("\nadvice", 1)[1]
    assert "the server answered Connection: close" in advice
    assert "no advice" not in advice
    assert server.connections_accepted == 5

    result = probe_json(capsys, server.url + "/")
    summary = result["summary"]
    assert summary["connections_opened"] == 5
    assert summary["requests"] == 5
    assert summary["reused"] == 0
    assert summary["kept_alive"] is False
    assert summary["connection_close"] is True
    assert all(r["connect"] is not None for r in result["per_request"])
    assert result["warm_median"]["connect"] is not None
    assert len(result["advice"]) == 1
    assert "Connection: close" in result["advice"][0]


def test_server_closing_without_saying_so(
    raw_server: Callable[..., RawServer], capsys: pytest.CaptureFixture[str]
) -> None:
    # HTTP/1.1 keep-alive by default, then the server hangs up anyway.
    server = raw_server(respond_with(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    result = probe_json(capsys, server.url + "/", "-n", "3")
    summary = result["summary"]
    assert summary["connections_opened"] == 3
    assert summary["warm_reused"] == 0
    assert summary["kept_alive"] is False
    assert summary["connection_close"] is False
    assert len(result["advice"]) == 1
    assert "without announcing it (no Connection: close)" in result["advice"][0]
    assert server.connections_accepted == 3


HTTP10 = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


@pytest.mark.parametrize("n", ["3", "20"])  # 20: the counters' own reuse advice fires too
def test_http10_server_is_named_as_the_cause(
    raw_server: Callable[..., RawServer], capsys: pytest.CaptureFixture[str], n: str
) -> None:
    # Like python -m http.server: HTTP/1.0, no Connection header, a close after each answer.
    server = raw_server(respond_with(HTTP10))
    code, out, err = probe(capsys, server.url + "/", "-n", n)
    assert (code, err) == (0, "")
    assert row(out, "HTTP") == "HTTP/1.0"  # the server's version, not the client's
    result = probe_json(capsys, server.url + "/", "-n", n)
    assert result["summary"]["http_version"] == "HTTP/1.0"
    assert all(r["http_version"] == "HTTP/1.0" for r in result["per_request"])
    assert result["summary"]["warm_reused"] == 0
    assert len(result["advice"]) == 1, result["advice"]
    advice = result["advice"][0]
    assert "speaks HTTP/1.0 and closes the connection after every response" in advice
    assert f"{n} of {n} requests paid a new connection" in advice
    assert "keep-alive settings" not in advice  # not blamed on keep-alive settings


def nagle_server(conn: socket.socket, server: RawServer) -> None:
    """Keep-alive HTTP/1.1 with Nagle on, each response written in three small sends: the
    later sends wait for the ACK of the first, which the client delays (~40 ms on Linux)."""
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
    for _ in range(20):  # bounded: at most 20 requests per connection
        if not read_request_head(conn):
            return
        conn.send(b"HTTP/1.1 200 OK\r\n")
        conn.send(b"Content-Length: 2\r\n\r\n")
        conn.send(b"ok")


@pytest.mark.skipif(sys.platform != "linux", reason="the 40 ms delayed ACK is Linux's")
def test_nagle_and_delayed_ack_stall_is_named(
    raw_server: Callable[..., RawServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = raw_server(nagle_server)
    result = probe_json(capsys, server.url + "/", "-n", "4")
    assert result["summary"]["warm_reused"] == 3
    assert result["warm_median"]["wait"] > result["cold"]["wait"] + 0.025
    assert len(result["advice"]) == 1, result["advice"]
    advice = result["advice"][0]
    assert "Nagle's algorithm on the server meeting delayed ACKs" in advice
    assert "set TCP_NODELAY on the server's sockets" in advice
    assert server.connections_accepted == 1


def _t(server_ms: float, reused: bool = True) -> Timings:
    return Timings(wait=server_ms / 1000 * 0.9, receive=server_ms / 1000 * 0.1, reused=reused)


@pytest.mark.parametrize(
    ("cold", "warm", "advised"),
    [
        (1.0, [41.0, 43.0, 42.0, 44.0], True),  # Linux's 40 ms, every time
        (2.0, [202.0, 205.0, 201.0], True),  # a 200 ms delayed-ACK timer
        (1.0, [41.0, 43.0, 1.0, 44.0], True),  # 3 of 4 stalled: still consistent
        (1.0, [41.0, 1.0], False),  # one stall of two: a hiccup, not a pattern
        (1.0, [41.0], False),  # one warm request cannot show a pattern
        (1.0, [1.2, 0.9, 1.1, 0.8], False),  # warm as fast as cold
        (60.0, [90.0, 95.0, 92.0], False),  # a slow server, not a stall (< 2x cold)
        (1.0, [10.0, 12.0, 11.0], False),  # slower, but under any delayed-ACK timer
    ],
)
def test_slow_warm_rule(cold: float, warm: list[float], advised: bool) -> None:
    advice = slow_warm_advice("http://h:80", _t(cold, reused=False), [_t(ms) for ms in warm])
    assert bool(advice) is advised
    if advised:
        assert "TCP_NODELAY" in advice[0]


def test_slow_warm_rule_counts_only_reused_connections() -> None:
    # Warm requests on new connections are not the pattern (their slowness is elsewhere).
    warm = [_t(41.0, reused=False), _t(43.0, reused=False), _t(42.0, reused=False)]
    assert slow_warm_advice("http://h:80", _t(1.0, reused=False), warm) == []


def test_keep_alive_timeout_header(
    make_server: Callable[..., LocalServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = make_server(announcing_keep_alive)
    code, out, _ = probe(capsys, server.url + "/")
    assert code == 0
    assert row(out, "keep-alive") == "5 s (Keep-Alive: timeout=5, max=100)"
    assert row(out, "reused").startswith("yes")
    result = probe_json(capsys, server.url + "/")
    assert result["summary"]["keep_alive_timeout"] == 5.0
    assert result["summary"]["keep_alive_header"] == "timeout=5, max=100"
    # keepwarm already closes idle connections before the server does (4 s < 5 s).
    assert result["advice"] == []


# -- errors: one line on stderr, an exit code, no traceback ---------------------------


def check_error(
    capsys: pytest.CaptureFixture[str], args: list[str], exit_code: int, *fragments: str
) -> str:
    code, out, err = probe(capsys, *args)
    assert code == exit_code, err
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("keepwarm probe: ")
    for fragment in fragments:
        assert fragment in err
    return err


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://", "malformed URL 'http://': no host name"),
        ("example.com/path", "malformed URL 'example.com/path': no scheme"),
        ("http://127.0.0.1:99999/", "malformed URL 'http://127.0.0.1:99999/'"),
        ("http://[::1/", "malformed URL 'http://[::1/'"),
        ("http://a b/", "spaces or control characters"),
        ("ftp://127.0.0.1/", "unsupported scheme 'ftp' in 'ftp://127.0.0.1/'"),
    ],
)
def test_bad_urls(capsys: pytest.CaptureFixture[str], url: str, fragment: str) -> None:
    check_error(capsys, [url], 2, fragment)


def test_connection_refused(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    err = check_error(capsys, [f"http://127.0.0.1:{port}/"], 1)
    assert (
        err == f"keepwarm probe: connection refused by 127.0.0.1:{port}: is the server running?\n"
    )


def test_dns_failure(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[object] = []

    def no_such_host(host: object, *args: object, **kwargs: object) -> Any:
        asked.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    check_error(
        capsys,
        ["http://no-such-host.invalid/"],
        1,
        "cannot resolve the host name 'no-such-host.invalid' (DNS): Name or service not known",
    )
    assert asked == ["no-such-host.invalid"]


def test_read_timeout(
    raw_server: Callable[..., RawServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = raw_server(silent)
    check_error(
        capsys,
        [server.url + "/", "--timeout", "0.5"],
        1,
        f"127.0.0.1:{server.port} sent no response within 0.5 s (read timeout",
        "--timeout",
    )


def test_connect_timeout(
    backlog_full_address: tuple[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    host, port = backlog_full_address
    check_error(
        capsys,
        [f"http://{host}:{port}/", "--timeout", "0.3,5"],
        1,
        f"timed out connecting to {host}:{port} after 0.3 s",
    )


def test_untrusted_certificate(
    https_server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # _isolated_env removed REQUESTS_CA_BUNDLE & co: the default bundle does not know our CA.
    check_error(
        capsys,
        [https_server.url + "/"],
        1,
        f"TLS certificate of 127.0.0.1:{https_server.port} is not trusted",
        "--cacert",
        "--insecure",
    )


def test_https_to_a_plain_http_server(
    http_server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = http_server.url.replace("http://", "https://") + "/"
    # LocalServer waits for a request head that a ClientHello never completes.
    check_error(capsys, [url, "--timeout", "0.3", "--insecure"], 1, "sent no response")


def test_plain_http_to_an_https_server(
    https_server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = https_server.url.replace("https://", "http://") + "/"
    check_error(capsys, [url], 1, "closed the connection without a complete response")


def test_missing_cacert(capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "nope.pem"
    check_error(
        capsys,
        ["https://127.0.0.1:1/", "--cacert", str(missing)],
        2,
        f"--cacert {missing}: no such file or directory",
    )


def test_cacert_that_is_not_a_ca_bundle(
    https_server: LocalServer, capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    check_error(capsys, [https_server.url + "/", "--cacert", str(junk)], 2, "holds no usable CA")
    assert https_server.connections_accepted == 0  # refused before any request


# -- secrets --------------------------------------------------------------------------


def secret_url(base: str) -> str:
    scheme, rest = base.split("://")
    return f"{scheme}://user:password@{rest}/echo?token=secret&page=2"


def test_secrets_never_printed_table_and_json(
    http_server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = secret_url(http_server.url)
    code, out, err = probe(capsys, url, "-n", "2")
    assert code == 0
    assert f"user:***@127.0.0.1:{http_server.port}/echo?token=***&page=***" in out
    code, json_out, json_err = probe(capsys, url, "-n", "2", "--json")
    assert code == 0
    assert json.loads(json_out)["url"] == redact_url(url)
    for text in (out, err, json_out, json_err):
        assert "password" not in text
        assert "secret" not in text
        assert "Authorization" not in text and "Basic " not in text
    # the credentials did reach the server: they were used, only not printed
    assert http_server.requests[0].headers["Authorization"].startswith("Basic ")


def test_secrets_never_printed_in_errors(
    https_server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    for url in (secret_url(f"http://127.0.0.1:{port}"), secret_url(https_server.url)):
        code, out, err = probe(capsys, url)
        assert code == 1
        assert "password" not in out + err
        assert "secret" not in out + err


def test_secrets_in_a_proxy_url_are_redacted(
    http_server: LocalServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", http_server.url.replace("://", "://proxyuser:proxypass@"))
    # the proxy (our loopback server) gets the request: no name is resolved
    code, out, err = probe(capsys, "http://example.invalid/?token=secret", "-n", "2")
    assert code == 0
    assert f"proxy http://proxyuser:***@127.0.0.1:{http_server.port}" in out
    assert "proxypass" not in out + err and "secret" not in out + err
    assert row(out, "status") == "404 (all 2)"  # LocalServer is no real proxy
    assert http_server.requests_handled == 2


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@host/p?token=abc", "https://user:***@host/p?token=***"),
        ("https://tok@host/", "https://***@host/"),
        ("https://:pw@host:8443/", "https://***@host:8443/"),
        ("http://host/p?a=1&b&c=", "http://host/p?a=***&***&c=***"),
        ("http://host/p#access_token=x", "http://host/p#***"),
        ("http://u:p@[::1/?x=1", "http://u:***@[::1/?x=***"),
        ("http://host/p", "http://host/p"),
        ("http://h\x1b[31m/", "http://h\\x1b[31m/"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


# -- options --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["-n", "0"], "argument -n: must be from 1 to 100, got 0"),
        (["-n", "101"], "argument -n: must be from 1 to 100, got 101"),
        (["-n", "many"], "argument -n: expected an integer, got 'many'"),
        (["--timeout", "0"], "argument --timeout: seconds must be above 0"),
        (["--timeout", "nan"], "argument --timeout: seconds must be above 0"),
        (["--timeout", "1,2,3"], "argument --timeout: expected SECONDS or CONNECT,READ"),
        (["--cacert", "x.pem", "--insecure"], "not allowed with argument"),
    ],
)
def test_option_errors(
    capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    code, out, err = probe(capsys, "http://127.0.0.1:1/", *options)
    assert code == 2
    assert out == ""
    assert message in err


def test_timeout_option_sets_connect_and_read(
    http_server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert probe_json(capsys, http_server.url + "/", "--timeout", "2")["timeout"] == {
        "connect": 2.0,
        "read": 2.0,
    }
    assert probe_json(capsys, http_server.url + "/", "--timeout", "1.5,9")["timeout"] == {
        "connect": 1.5,
        "read": 9.0,
    }
    code, out, _ = probe(capsys, http_server.url + "/", "--timeout", "1.5,9")
    assert code == 0
    assert "(timeout connect 1.5 s, read 9 s, no retries)" in out


def test_help_lists_probe(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "probe" in capsys.readouterr().out
    assert main(["probe", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("-n N", "--timeout SECONDS", "--cacert PATH", "--insecure", "--json"):
        assert option in out
