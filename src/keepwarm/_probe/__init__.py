"""``keepwarm probe URL``: a cold request against warm ones, phase by phase.

Like httpstat, but about connection reuse. N GET requests go through one
:class:`keepwarm.Session`; the first one is cold (DNS, TCP, TLS), the others should ride
the same connection. The report shows the phases of the cold request and the median phases
of the warm ones as a text waterfall, the connections opened for the N requests, whether
and for how long the server keeps connections alive, the HTTP and TLS versions, the
protocols the server selects by ALPN, the status codes and keepwarm's advice.

This module is the command: :func:`run_command` checks the options, runs the probe
(:func:`run_probe`: measure, then advise) and prints the report. The parts:

* :mod:`~keepwarm._probe._options`: bounds, defaults, the URL (checked and redacted) and
  ``--timeout``;
* :mod:`~keepwarm._probe._run`: the measurements;
* :mod:`~keepwarm._probe._report`: the advice and the text and JSON outputs.

Nothing printed carries a secret: the URL is shown redacted (:func:`redact_url`), request
headers (``Authorization``, ``Cookie``) are never printed, and error lines are keepwarm's
own (:mod:`~keepwarm._probe._run`), never urllib3's, whose messages include the query
string.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING, Final, TextIO

from keepwarm import _on_demand as on_demand
from keepwarm._probe._options import (
    DEFAULT_REQUESTS,
    DEFAULT_TIMEOUT,
    EXIT_USAGE,
    MAX_REQUESTS,
    ProbeError,
    Target,
    parse_target,
    parse_timeout,
    printable,
    redact_url,
)

if TYPE_CHECKING:
    from keepwarm._probe._report import PHASES, format_report, result_as_dict
    from keepwarm._probe._run import ProbeResult

#: Loaded on first use: the measurements load requests and keepwarm's transport, which
#: ``keepwarm``'s other commands (their parser includes probe's options) do not need.
_ON_DEMAND: Final = {
    "PHASES": "_report",
    "format_report": "_report",
    "result_as_dict": "_report",
    "ProbeResult": "_run",
}


__getattr__ = on_demand(__name__, _ON_DEMAND, globals())


__all__ = [
    "DEFAULT_REQUESTS",
    "DEFAULT_TIMEOUT",
    "MAX_REQUESTS",
    "PHASES",
    "ProbeError",
    "ProbeResult",
    "format_report",
    "parse_target",
    "parse_timeout",
    "redact_url",
    "result_as_dict",
    "run_command",
    "run_probe",
]


def run_probe(
    target: Target,
    *,
    requests_count: int = DEFAULT_REQUESTS,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    verify: bool | str = True,
    http2: bool = False,
) -> ProbeResult:
    """Send *requests_count* GETs to *target* through one new Session, then add
    keepwarm's advice and what else the figures show; raises :class:`ProbeError` for
    network and configuration failures."""
    from keepwarm._probe._report import advise, observations
    from keepwarm._probe._run import measure

    result = measure(
        target, requests_count=requests_count, timeout=timeout, verify=verify, http2=http2
    )
    result.advice = advise(result)
    result.notes.extend(observations(result))
    return result


def run_command(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """``keepwarm probe``: print the report (or JSON); one line on stderr on failure."""
    try:
        target = parse_target(args.url)
        verify: bool | str = True
        if args.insecure:
            verify = False
        elif args.cacert is not None:
            if not os.path.exists(args.cacert):
                raise ProbeError(
                    f"--cacert {printable(args.cacert)}: no such file or directory", EXIT_USAGE
                )
            verify = args.cacert
        result = run_probe(
            target,
            requests_count=args.n,
            timeout=args.timeout,
            verify=verify,
            http2=getattr(args, "http2", False),
        )
    except ProbeError as exc:
        stderr.write(f"keepwarm probe: {exc.message}\n")
        return exc.exit_code
    from keepwarm._probe._report import format_report, result_as_dict

    if args.json:
        json.dump(result_as_dict(result), stdout, indent=2)
        stdout.write("\n")
    else:
        stdout.write(format_report(result))
    return 0
