"""``keepwarm run [options] [--] COMMAND...``: a program, unmodified, with keepwarm in it.

The way ``ddtrace-run`` and ``opentelemetry-instrument`` wrap a program, through the
environment: ``bootstrap/`` (a ``sitecustomize``) goes first on ``PYTHONPATH``, the
user's ``PYTHONPATH`` after it, so every Python process under the command installs
keepwarm with ``install(sessions=True)`` when it first imports requests
(``_child.py``). Unlike those tools this process does not ``exec`` the command: it stays
its parent, because the report adds up every process's counters after the command ends.

This process:

* runs the command with stdin, stdout and stderr inherited (nothing of keepwarm's goes
  to stdout), in a private temporary directory named by ``KEEPWARM_RUN_DIR`` where each
  process leaves its counters;
* forwards SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to the command, and SIGINT too
  unless this process is in the terminal's foreground process group (there the terminal
  sent Ctrl-C to the command already; forwarding would deliver it twice);
* exits with the command's exit status, or 128 + N when a signal N ended it, as shells
  do; 127 when the command is not found, 126 when it cannot be executed;
* prints the report (``_report.py``) to stderr, or writes it as JSON to ``--report``.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Final, TextIO

from keepwarm._run._report import (
    Collected,
    collect,
    format_report,
    report_document,
    write_json,
)

__all__ = ["BOOTSTRAP_DIR", "RunError", "RunOptions", "child_environment", "run"]

#: The directory with keepwarm's sitecustomize.py.
BOOTSTRAP_DIR: Final = str(pathlib.Path(__file__).resolve().parent / "bootstrap")

#: Signals passed on to the command (SIGINT: see the module docstring).
FORWARDED: Final = tuple(
    getattr(signal, name)
    for name in ("SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
    if hasattr(signal, name)
)

#: How long to wait, after the command ended, for processes that started but have not
#: reported yet (a helper process such as multiprocessing's resource tracker ends a
#: moment after the program)...
LATE_REPORT_WAIT: Final = 1.0
#: ... and, at most, for one that is still running: a server's worker can outlive its
#: master by more than a second on a loaded machine, and its report came too late.
LIVE_REPORT_WAIT: Final = 10.0


class RunError(Exception):
    """A problem ``keepwarm run`` reports as one line (exit code in ``status``)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RunOptions:
    command: Sequence[str]
    report: pathlib.Path | None = None
    requests_defaults: bool = False
    strict: bool = False
    otel_metrics: bool = False
    sigterm: bool = False


def child_environment(
    environ: Mapping[str, str], options: RunOptions, run_dir: str
) -> dict[str, str]:
    """The command's environment: ``environ`` with the bootstrap first on PYTHONPATH."""
    env = dict(environ)
    # The user's entries exactly as they were (an empty one means the current directory).
    original = env.get("PYTHONPATH", "")
    kept = [p for p in original.split(os.pathsep) if p != BOOTSTRAP_DIR] if original else []
    env["PYTHONPATH"] = os.pathsep.join([BOOTSTRAP_DIR, *kept])
    env["KEEPWARM_RUN_DIR"] = run_dir
    for variable, on in (
        ("KEEPWARM_RUN_REQUESTS_DEFAULTS", options.requests_defaults),
        ("KEEPWARM_RUN_STRICT", options.strict),
        ("KEEPWARM_RUN_SIGTERM", options.sigterm),
    ):
        if on:
            env[variable] = "1"
        else:
            env.pop(variable, None)
    if options.otel_metrics:
        env["KEEPWARM_OTEL_METRICS"] = "1"
    return env


def _resolve(command: Sequence[str], env: Mapping[str, str]) -> str:
    name = command[0]
    if os.sep in name or (os.altsep and os.altsep in name):
        path = name
        if not os.path.exists(path):
            raise RunError(f"command not found: {name}", 127)
    else:
        found = shutil.which(name, path=env.get("PATH", os.defpath))
        if found is None:
            raise RunError(f"command not found: {name} (not on PATH)", 127)
        path = found
    if os.path.isdir(path) or not os.access(path, os.X_OK):
        raise RunError(f"cannot execute {name}: not an executable file", 126)
    return path


def _in_terminal_foreground() -> bool:
    """Whether Ctrl-C in this terminal reaches the command without our help."""
    for stream in (sys.stdin, sys.stderr):
        try:
            return os.tcgetpgrp(stream.fileno()) == os.getpgrp()
        except (OSError, ValueError, AttributeError):
            continue
    return False


class _Forwarder:
    """The signal handler: passes signals on to the command, and holds the ones that
    arrive before it is started (they are delivered as soon as it is)."""

    def __init__(self) -> None:
        self.child: subprocess.Popen[bytes] | None = None
        self.pending: list[int] = []

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and _in_terminal_foreground():
            return
        if self.child is None:
            self.pending.append(signum)
            return
        with contextlib.suppress(ProcessLookupError):
            self.child.send_signal(signum)

    def attach(self, child: subprocess.Popen[bytes]) -> None:
        self.child = child
        for signum in self.pending:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)
        self.pending.clear()


@contextlib.contextmanager
def _forwarding() -> Iterator[_Forwarder]:
    forwarder = _Forwarder()
    previous = {}
    for signum in (*FORWARDED, signal.SIGINT):
        previous[signum] = signal.signal(signum, forwarder)
    try:
        yield forwarder
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _exit_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _collect(directory: pathlib.Path) -> Collected:
    collected = collect(directory)
    began = time.monotonic()
    while collected.waiting:
        waited = time.monotonic() - began
        if waited >= LIVE_REPORT_WAIT:
            break
        if waited >= LATE_REPORT_WAIT and not any(map(_running, collected.waiting)):
            break
        time.sleep(0.05)
        collected = collect(directory)
    return collected


def _running(pid: str) -> bool:
    """Whether the process is still running (not ended, not a zombie); False where that
    cannot be told (Windows: ``os.kill(pid, 0)`` would end the process there)."""
    if os.name != "posix" or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process of that id: not ours to judge, wait
    except OSError:
        return False
    try:  # an ended process not yet reaped by its parent is a zombie (Linux)
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _check_otel_switch() -> None:
    """``--otel-metrics`` only where this keepwarm reads ``KEEPWARM_OTEL_METRICS``: an
    unknown ``KEEPWARM_*`` variable would fail every session the program creates."""
    from keepwarm._config import settings_from_environment

    try:
        settings_from_environment({"KEEPWARM_OTEL_METRICS": "1"})
    except ValueError:
        raise RunError(
            "--otel-metrics: this keepwarm has no OpenTelemetry metrics export "
            "(KEEPWARM_OTEL_METRICS); upgrade keepwarm, or run without --otel-metrics",
            2,
        ) from None


def _check_settings(environ: Mapping[str, str]) -> None:
    """A bad ``KEEPWARM_*`` variable fails here, before the program starts, rather than
    in the program's first request (where keepwarm reads it, creating the session).
    Without any, nothing is loaded for it: the settings module loads requests, ~60 ms
    that this process, which sends nothing, would otherwise add to every command."""
    if not any(
        name.startswith("KEEPWARM_") and not name.startswith("KEEPWARM_RUN_") for name in environ
    ):
        return
    from keepwarm._config import settings_from_environment

    try:
        settings_from_environment(environ)
    except ValueError as exc:
        raise RunError(f"{exc} (the program was not started)", 2) from None


def run(options: RunOptions, stderr: TextIO) -> int:
    """Run the command under keepwarm; its exit status (see the module docstring)."""
    if not options.command:
        raise RunError("no command given: keepwarm run [options] [--] COMMAND...", 2)
    if options.otel_metrics:
        _check_otel_switch()
    _check_settings(os.environ)
    with tempfile.TemporaryDirectory(prefix="keepwarm-run-") as run_dir:
        env = child_environment(os.environ, options, run_dir)
        executable = _resolve(options.command, env)
        with _forwarding() as forwarder:
            try:
                child = subprocess.Popen(list(options.command), executable=executable, env=env)
            except OSError as exc:
                message = f"cannot run {options.command[0]}: {exc.strerror or exc}"
                raise RunError(message, 126) from None
            forwarder.attach(child)
            while True:
                try:
                    returncode = child.wait()
                    break
                except KeyboardInterrupt:  # a handler raised it: keep waiting
                    continue
        status = _exit_status(returncode)
        collected = _collect(pathlib.Path(run_dir))
        if options.report is not None:
            write_json(options.report, report_document(collected, status))
        else:
            stderr.write(format_report(collected, sigterm=options.sigterm) + "\n")
            stderr.flush()
    return status
