"""The bounds of ``keepwarm bench`` and the parsing of its durations and ``--url``.

Everything a run may do is bounded here, in one place: requests per round, rounds,
threads, delays, and wall time. ``--url`` sends traffic to someone's real server, so it
has tighter caps and its own checks (:func:`check_url`).
"""

from __future__ import annotations

import math
import re
from typing import Final

from keepwarm._urls import URLProblem, check_http_url

__all__ = [
    "DEFAULT_MAX_SECONDS",
    "DEFAULT_REQUESTS",
    "DEFAULT_ROUNDS",
    "DEFAULT_SERVER_LATENCY",
    "DEFAULT_THREADS",
    "MAX_LATENCY",
    "MAX_REQUESTS",
    "MAX_ROUNDS",
    "MAX_RTT",
    "MAX_SECONDS",
    "MAX_THREADS",
    "SLOW_DEFAULT_REQUESTS",
    "SLOW_DEFAULT_ROUNDS",
    "URL_DEFAULT_MAX_SECONDS",
    "URL_MAX_TOTAL_REQUESTS",
    "check_url",
    "format_duration",
    "parse_duration",
]

#: Requests per round and scenario, and interleaved rounds, of a default local run. Chosen
#: so that ``keepwarm bench`` with no options (7 clients x 2 schemes sequentially, then 2
#: clients x 2 patterns x 2 schemes with 16 threads) ends within a minute on 2 cores.
DEFAULT_REQUESTS = 100
DEFAULT_ROUNDS = 5
#: The defaults with ``--rtt`` or ``--url``, where every request costs at least a round trip.
SLOW_DEFAULT_REQUESTS = 20
SLOW_DEFAULT_ROUNDS = 3
MAX_REQUESTS = 100_000
MAX_ROUNDS = 1_000

DEFAULT_THREADS = 16
MAX_THREADS = 256
#: What the embedded server waits before answering in the concurrency runs, so that
#: requests overlap the way they do against a real backend.
DEFAULT_SERVER_LATENCY = 0.005
MAX_LATENCY = 1.0
MAX_RTT = 2.0

#: Wall-time bound of a whole run (local servers), and of a ``--url`` run.
DEFAULT_MAX_SECONDS = 600.0
URL_DEFAULT_MAX_SECONDS = 30.0
MAX_SECONDS = 600.0
#: Most requests ``--url`` may send in all (every client, round and warm-up).
URL_MAX_TOTAL_REQUESTS = 10_000

_DURATION = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ms|s)")


def parse_duration(text: str, *, maximum: float) -> float:
    """Seconds from ``20ms``, ``0.5s`` or ``0ms``; a bare number or anything above
    *maximum* seconds is refused with a message saying what to write instead."""
    cleaned = text.strip().lower()
    match = _DURATION.fullmatch(cleaned)
    if match is None:
        if re.fullmatch(r"[\d.]+", cleaned):
            raise ValueError(f"give a unit: {cleaned}ms or {cleaned}s, not {text!r}")
        raise ValueError(f"expected a duration like 20ms or 0.5s, got {text!r}")
    number, unit = match.groups()
    seconds = float(number) / (1000.0 if unit == "ms" else 1.0)
    if not math.isfinite(seconds) or seconds > maximum:
        raise ValueError(f"must be at most {format_duration(maximum)}, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """``0.02`` -> ``20ms``, ``1.5`` -> ``1.5s``: the inverse of :func:`parse_duration`."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"


_PROBLEMS: Final = {
    "whitespace": "the URL contains whitespace or control characters",
    "no_scheme": "only http:// and https:// URLs can be benchmarked (scheme: none)",
    "scheme": "only http:// and https:// URLs can be benchmarked (scheme: {scheme})",
    "malformed": "the URL has an invalid port: {url!r}",
    "no_host": "the URL has no host: {url!r}",
    "port_zero": "the URL has port 0",
}


def check_url(url: str) -> str:
    """*url* if it is an absolute ``http``/``https`` URL with a host, else ValueError.

    The benchmark only ever sends ``GET`` to it, without following redirects.
    """
    try:
        parts = check_http_url(url)
    except URLProblem as problem:
        raise ValueError(_PROBLEMS[problem.kind].format(url=url, scheme=problem.detail)) from None
    if parts.username is not None or parts.password is not None:
        raise ValueError("the URL carries credentials; the benchmark sends no credentials")
    return url
