"""A Python helper process driven over its stdin and stdout (server, proxy).

The child prints one line when it is ready (its port), then answers one line per command
line. Every wait is bounded; :meth:`ChildProcess.close` asks the child to quit, then
terminates, then kills it, so it never outlives the benchmark, and the children exit by
themselves when their stdin closes (the parent died).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import queue
import subprocess
import sys
import tempfile
import threading
from typing import IO

__all__ = ["BenchError", "ChildProcess", "child_env"]

_STARTUP_SECONDS = 20.0
_COMMAND_SECONDS = 10.0
_STOP_SECONDS = 5.0


class BenchError(Exception):
    """A failure to report as one line, without a traceback."""


def child_env() -> dict[str, str]:
    """This environment, with this very keepwarm importable in a child, installed or not."""
    env = dict(os.environ)
    package_root = str(pathlib.Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    return env


class ChildProcess:
    """``python -m MODULE ARGS...``, whose first stdout line is its port."""

    #: Names the child in error messages.
    what = "helper process"

    def __init__(self, module: str, args: list[str]) -> None:
        self._command = [sys.executable, "-m", module, *args]
        self._proc: subprocess.Popen[str] | None = None
        self._stderr: IO[bytes] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader: threading.Thread | None = None
        self.port = 0

    def __enter__(self) -> ChildProcess:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        # Lives as long as the child; closed in close().
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self._proc = subprocess.Popen(
            self._command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=child_env(),
        )
        self._reader = threading.Thread(
            target=self._read_stdout, name="keepwarm-bench-child-stdout", daemon=True
        )
        self._reader.start()
        line = self._next_line(_STARTUP_SECONDS, "start")
        try:
            self.port = int(line)
        except ValueError:
            raise BenchError(f"{self.what} printed {line[:80]!r} instead of its port") from None

    def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            for line in self._proc.stdout:
                self._lines.put(line.rstrip("\n"))
        except (OSError, ValueError):  # the pipe was closed under us: nothing more to read
            pass
        finally:
            self._lines.put(None)

    def _next_line(self, timeout: float, what: str) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise BenchError(f"{self.what} did not {what} within {timeout:.0f} s") from None
        if line is None:
            raise BenchError(f"{self.what} exited during {what}: {self._stderr_tail()}")
        return line

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return "no output"
        self._stderr.seek(0)
        lines = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else "no output"

    def command(self, command: str) -> str:
        """Send one command line and return the child's one-line answer."""
        if self._proc is None or self._proc.stdin is None:
            raise BenchError(f"{self.what} is not running")
        try:
            self._proc.stdin.write(command + "\n")
            self._proc.stdin.flush()
        except OSError as exc:
            raise BenchError(f"{self.what} is gone ({exc}): {self._stderr_tail()}") from None
        return self._next_line(_COMMAND_SECONDS, f"answer {command!r}")

    def close(self) -> None:
        """Stop the child (quit, then terminate, then kill) and release every pipe."""
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                if proc.stdin is not None:
                    with contextlib.suppress(OSError):
                        proc.stdin.write("quit\n")
                        proc.stdin.flush()
                    with contextlib.suppress(OSError):
                        proc.stdin.close()
                try:
                    proc.wait(timeout=_STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    proc.terminate()
                    try:
                        proc.wait(timeout=_STOP_SECONDS)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(timeout=_STOP_SECONDS)
            finally:
                if proc.poll() is None:  # pragma: no cover - only if kill() did not work
                    proc.kill()
                if self._reader is not None:
                    self._reader.join(timeout=_STOP_SECONDS)
                if proc.stdout is not None:
                    proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
