"""keepwarm._urls: one rule each for redacting, naming origins, IP checks and URL checks
(pure logic: no traffic)."""

from __future__ import annotations

import pytest

import keepwarm
from keepwarm._urls import URLProblem, check_http_url, is_ip, origin, redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://api.example.com/x", "https://api.example.com/x"),
        ("https://user:pw@h/x?token=abc&flag", "https://user:***@h/x?token=***&***"),
        ("https://TOKEN@h/", "https://***@h/"),
        ("https://:pw@h/", "https://***@h/"),
        ("http://h/#frag", "http://h/#***"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_lone_user_name_never_reaches_a_session_repr() -> None:
    with keepwarm.Session(base_url="https://SECRET-TOKEN@api.example.com/") as s:
        assert "SECRET-TOKEN" not in repr(s)
    with pytest.raises(keepwarm.SessionClosedError) as raised:
        s.get("x")
    assert "SECRET-TOKEN" not in str(raised.value)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("https", "example.com", None), "https://example.com:443"),
        (("http", "::1", 8080), "http://[::1]:8080"),
        (("http", "[::1]", 80), "http://[::1]:80"),
    ],
)
def test_origin(args: tuple[str, str, int | None], expected: str) -> None:
    assert origin(*args) == expected


@pytest.mark.parametrize(
    ("host", "answer"),
    [("127.0.0.1", True), ("[::1]", True), ("fe80::1%eth0", True), ("localhost", False)],
)
def test_is_ip(host: str, answer: bool) -> None:
    assert is_ip(host) is answer


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://exa mple/", "whitespace"),
        ("example.com/x", "no_scheme"),
        ("ftp://example.com/", "scheme"),
        ("http://example.com:99999/", "malformed"),
        ("http://[::1/", "malformed"),
        ("http:///path", "no_host"),
        ("http://example.com:0/", "port_zero"),
    ],
)
def test_check_http_url_names_the_problem(url: str, kind: str) -> None:
    with pytest.raises(URLProblem) as raised:
        check_http_url(url)
    assert raised.value.kind == kind


def test_check_http_url_accepts_what_requests_sends_to() -> None:
    assert check_http_url("HTTPS://[::1]:8443/x?q=1").port == 8443
    assert check_http_url("http://bücher.example/").hostname == "bücher.example"
