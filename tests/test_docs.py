"""What the docs say about keepwarm's behaviour is what keepwarm does (each check reads
the doc and compares it with the code; no traffic)."""

from __future__ import annotations

import pathlib
import re

import pytest

import keepwarm
from keepwarm._config import SETTING_NAMES
from keepwarm._stats import HostStats, Stats

ROOT = pathlib.Path(__file__).resolve().parent.parent
NUMBERS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
]


def test_configuration_counts_and_lists_every_knob() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    stated = re.search(r"has (\w+) tuning knobs", text)
    assert stated is not None
    assert stated.group(1) == NUMBERS[len(SETTING_NAMES)]
    table = {m.group(1) for m in re.finditer(r"^\| `(\w+)` \|", text, re.M)}
    assert set(SETTING_NAMES) <= table


def test_readme_stats_table_is_what_str_stats_prints() -> None:
    readme = (ROOT / "README.md").read_text()
    shown = [
        line.removeprefix("# ")
        for line in readme.splitlines()
        if line.startswith(("# origin", "# https://api.example.com:443 "))
    ]
    origin = "https://api.example.com:443"
    host = HostStats(
        origin=origin,
        requests=100,
        connections_opened=1,
        reused=99,
        tls_handshakes=1,
        peak_in_flight=1,
    )
    assert shown == str(Stats(hosts={origin: host})).splitlines()


def test_timings_print_seconds_to_the_microsecond() -> None:
    t = keepwarm.Timings(dns=0.000123456789, total=0.1 / 3)
    assert "dns=0.000123," in repr(t)
    assert "total=0.033333," in repr(t)
    assert not re.search(r"\d{8,}", repr(t))


@pytest.mark.parametrize("variable", ["KEEPWARM_POOL_MAXSIZE", "KEEPWARM_NOT_A_KNOB"])
def test_bad_keepwarm_variables_fail_when_a_session_is_created_not_at_import(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """configuration.md: read and checked when a session is created."""
    monkeypatch.setenv(variable, "zero")
    keepwarm.configure()  # configure() alone reads no variable
    with pytest.raises(ValueError, match=variable):
        keepwarm.Session()
