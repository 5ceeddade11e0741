"""Run a piece of work in a forked child and bring its result back (tests only)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

CHILD_TIMEOUT = 20.0


def run_in_child(work: Callable[[], Any], timeout: float = CHILD_TIMEOUT) -> Any:
    """Fork; run *work* in the child and return its JSON-able result to the parent.

    The child always ends with os._exit (no atexit handlers, no pytest teardown in the
    child). The parent waits at most *timeout* seconds, then kills the child and fails.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; its coverage is not collected
        code = 1
        try:
            os.close(read_fd)
            try:
                outcome = {"ok": True, "value": work()}
            except BaseException as exc:
                outcome = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            payload = json.dumps(outcome).encode()
            while payload:
                payload = payload[os.write(write_fd, payload) :]
            code = 0
        finally:
            os._exit(code)

    os.close(write_fd)
    deadline = time.monotonic() + timeout
    status = None
    try:
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.01)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the forked child did not finish within {timeout} s")
        chunks = []
        while chunk := os.read(read_fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(read_fd)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child status {status}"
    outcome = json.loads(b"".join(chunks))
    assert outcome["ok"], outcome.get("error")
    return outcome["value"]
