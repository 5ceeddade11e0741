"""What ``keepwarm probe`` is given: its bounds and defaults, the URL and ``--timeout``.

The URL is checked up front (http or https, a host, a port other than 0) and redacted
for display by ``keepwarm._urls.redact_url`` (re-exported here): URL passwords and
query-string values become ``***`` (a user name without a password too, as it is often a
token). ``printable`` escapes whatever else gets printed, so any terminal shows it.
:class:`ProbeError` is how every part of the probe reports a failure: one line on stderr
and an exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Final

from keepwarm._urls import URLProblem, check_http_url, host_port, printable, redact_url

__all__ = [
    "DEFAULT_REQUESTS",
    "DEFAULT_TIMEOUT",
    "EXIT_NETWORK",
    "EXIT_USAGE",
    "MAX_REQUESTS",
    "MAX_TIMEOUT",
    "ProbeError",
    "Target",
    "parse_target",
    "parse_timeout",
    "printable",
    "redact_url",
]

DEFAULT_REQUESTS: Final = 5
MAX_REQUESTS: Final = 100
#: (connect, read) seconds, keepwarm's own default.
DEFAULT_TIMEOUT: Final = (3.0, 7.0)
MAX_TIMEOUT: Final = 600.0

#: Exit codes: usage errors (bad URL, option, CA file) and network errors.
EXIT_USAGE: Final = 2
EXIT_NETWORK: Final = 1


class ProbeError(Exception):
    """A failure reported as one line on stderr with *exit_code*; never a traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_NETWORK) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True)
class Target:
    """The URL to probe, checked, and how to name it in output."""

    url: str
    scheme: str
    host: str
    port: int
    #: The URL with its secrets redacted.
    display: str

    @property
    def address(self) -> str:
        """``host:port`` (IPv6 in brackets), for messages."""
        return printable(host_port(self.host, self.port))


def parse_target(url: str) -> Target:
    """Check *url* (http or https, with a host); :class:`ProbeError` (exit 2) if not."""
    display = redact_url(url)
    try:
        parts = check_http_url(url)
    except URLProblem as problem:
        raise ProbeError(_problem_text(problem, url, display), EXIT_USAGE) from None
    scheme = parts.scheme.lower()
    host, port = str(parts.hostname), parts.port
    default_port = 443 if scheme == "https" else 80
    return Target(url, scheme, host, port or default_port, display)


def _problem_text(problem: URLProblem, url: str, display: str) -> str:
    if problem.kind == "no_scheme":
        return f"malformed URL '{display}': no scheme; did you mean 'http://{redact_url(url)}'?"
    if problem.kind == "scheme":
        return (
            f"unsupported scheme '{printable(problem.detail)}' in '{display}': only http and "
            "https URLs can be probed"
        )
    reason = {
        "whitespace": "it contains spaces or control characters",
        "no_host": "no host name",
        "port_zero": "port 0",
    }.get(problem.kind, problem.detail)
    return f"malformed URL '{display}': {reason}"


def parse_timeout(text: str) -> tuple[float, float]:
    """``--timeout``: ``SECONDS`` for both, or ``CONNECT,READ``; an argparse ``type``."""
    pieces = [p.strip() for p in text.split(",")]
    if len(pieces) > 2:
        raise argparse.ArgumentTypeError(f"expected SECONDS or CONNECT,READ, got {text!r}")
    values = []
    for piece in pieces:
        try:
            value = float(piece)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected seconds (SECONDS or CONNECT,READ), got {text!r}"
            ) from None
        if not math.isfinite(value) or not 0 < value <= MAX_TIMEOUT:
            raise argparse.ArgumentTypeError(
                f"seconds must be above 0 and at most {MAX_TIMEOUT:g}, got {piece!r}"
            )
        values.append(value)
    return (values[0], values[-1])
